/*
 * spmm_cuda.h - sparse-weight x dense-activation products on NVIDIA GPUs.
 *
 * Every kernel here computes
 *
 *     Y[n, m] = act( sum_k W[m, k] * X[n, k] + bias[m] + residual[n, m] )
 *
 * with W a constant sparse weight [M, K] in one of the layouts of
 * loaders/sparse_format.h, and activations "N-major" as everywhere in the
 * runtime's GPU backend: X is [N, K] row-major (K contiguous, leading
 * dimension ldx), Y and residual are [N, M] row-major (M contiguous, ldy,
 * ldr). Inputs and outputs are fp16 with fp32 accumulation; the CUDA-core CSR
 * path also takes fp32 (vtype of the uploaded weight and of X/Y must match).
 *
 * Typical use (one weight, many calls):
 *
 *     sp_cuda_status st = {0};
 *     sp_cuda_24 w;                                // device copy, re-packed
 *     if (sp_cuda_24_upload(&host_24, &w, stream, &st)) fail(st.msg);
 *     size_t wsb = sp_cuda_spmm_workspace_bytes(M, N);
 *     cudaMalloc(&ws, wsb); cudaMemset(ws, 0, wsb); // once; kernels keep it 0
 *     sp_cuda_spmm_args a = {.n = N, .x = X, .ldx = K, .y = Y, .ldy = M,
 *                            .bias = b, .act = SP_CUDA_ACT_RELU,
 *                            .workspace = ws, .workspace_bytes = wsb,
 *                            .stream = stream};
 *     if (sp_cuda_24_spmm(&w, &a, &st)) fail(st.msg);
 *     sp_cuda_24_free(&w);
 *
 * Status: every function returns 0 on success, else a cudaError_t value or
 * SP_CUDA_E_INVALID / SP_CUDA_E_UNSUPPORTED (cuda_check.h), and records the
 * first failure with its reason in *st (st may be NULL). Nothing aborts.
 *
 * Threads and streams: an uploaded weight is immutable and may be used by
 * any number of threads and streams at once. A workspace may be used by one
 * stream at a time (split-K partial sums live there between the CTAs of one
 * launch). Launchers allocate nothing and never synchronize, so they can be
 * captured in CUDA graphs; uploads allocate and synchronize on their stream.
 *
 * Memory: *_free releases every device allocation of the struct; it accepts
 * a zeroed or already freed struct.
 *
 * Kernels (sm_80+, tuned for sm_90 / H100):
 *  - 2:4 on the sparse tensor cores, the weight as the sparse A operand and
 *    X^T as B. W is re-packed at upload into register-fragment order: each
 *    16 x 32 tile is 512 B of values (16 B per lane, one coalesced load) +
 *    64 B of metadata = 1.125 bytes per weight element, the minimum for 2:4
 *    fp16. Two kernels read that layout: on sm_90 (X 16-byte aligned),
 *    wgmma.mma_async.sp with TMA loads and producer/consumer warpgroups
 *    (spmm_24_sm90.cu); elsewhere mma.sp::ordered_metadata m16n8k32
 *    (spmm_24.cu).
 *  - SDDMM (sp_cuda_sddmm, sddmm.cu): dot products of A and B rows sampled
 *    at a CSR pattern, for sparse attention.
 *  - BSR on the dense tensor cores, square blocks of 16, 32 or 64: on sm_90
 *    (X 16-byte aligned, N past a threshold per block size) wgmma with X as
 *    the register A operand and W's blocks as B, a CTA owning 256 rows of W
 *    so that each X chunk serves every block of the group in that column
 *    (spmm_bsr_sm90.cu), or with W's blocks stacked into 64-row units as
 *    the A operand and X as B, m64 x n(up to 256 tokens) wgmmas that skip
 *    the units with no block (spmm_bsr_tall_sm90.cu); elsewhere mma.sync
 *    m16n8k16 with values re-packed into fragment order per block
 *    (spmm_bsr.cu). On sm_90 the upload keeps all three layouts (the tall
 *    one only where its units hold at most SP_CUDA_BSR_TALL_FILL of the
 *    dense weight): up to twice the weight's bytes plus its units'.
 *  - CSR, two paths chosen per call by sp_cuda_csr_spmm:
 *    (a) tensor cores on a tiled bitmap layout built at upload ("TB16x64"):
 *        W is cut into 16 x 64 tiles, each stored as a 1024-bit occupancy
 *        bitmap (128 B) in mma fragment order plus its nonzero values (fp16).
 *        Tiles are staged through shared memory; each lane expands its 32
 *        elements of the tile straight into mma.sync A registers (on sm_90
 *        into wgmma's register A instead, spmm_csr_sm90.cu). Bytes per element: 0.125 + 2*density, i.e.
 *        less than CSR's 4 B per nonzero whenever density > 1/16. Below
 *        SP_CSR_PAIR_TILES_BELOW density (runtime/cost_model.h) the upload
 *        builds the pair layout instead: a 512-bit bitmap, a bit per pair
 *        of adjacent columns, and every pair holding a nonzero stored whole
 *        (more bytes, half the expansion instructions: 1.03-1.26x faster
 *        from 70 % sparsity on the H100, one case excepted).
 *    (b) CUDA cores, a warp per row, for very sparse weights (fp16: X
 *        transposed once per call into the workspace, then gathered from
 *        L2; size the workspace with sp_cuda_csr_workspace_bytes), fp32,
 *        or when the tiled layout was not built.
 *    (c) only where chosen (sp_cuda_csr_add_split24 built it): the weight
 *        split into a 2:4 part, run by the 2:4 kernel on the sparse tensor
 *        cores, and the few nonzeros that overflow 2:4, run first by (b)
 *        (spmm_csr_split24.cu).
 *
 * Measured speed against cuBLAS, cuSPARSE and cuSPARSELt on the H100:
 * bench/results/spmm-h100-2026-11-25.md (bench/spmm/run.sh reproduces it).
 *
 * Split-K: when M x N gives too few CTAs to fill the GPU, the K range is cut
 * over several CTAs that add fp32 partial sums into the workspace; the last
 * CTA of an output tile applies the epilogue and zeroes the workspace again.
 * With workspace == NULL the kernels run without split-K (slower at small N).
 */
#ifndef SPRUN_SPMM_CUDA_H
#define SPRUN_SPMM_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cuda_check.h"
#include "loaders/sparse_format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activations of the epilogue: the IR's SP_ACT_* values (runtime/graph.h),
 * with the same alpha / beta meanings. */
enum {
    SP_CUDA_ACT_NONE = 0,
    SP_CUDA_ACT_RELU = 1,
    SP_CUDA_ACT_CLIP = 2,        /* min alpha, max beta */
    SP_CUDA_ACT_SIGMOID = 3,
    SP_CUDA_ACT_GELU = 4,        /* erf form */
    SP_CUDA_ACT_TANH = 5,
    SP_CUDA_ACT_HARDSWISH = 6,
    SP_CUDA_ACT_HARDSIGMOID = 7, /* max(0, min(1, alpha x + beta)) */
    SP_CUDA_ACT_LEAKYRELU = 8    /* alpha */
};

typedef struct sp_cuda_spmm_args {
    int64_t n;            /* N: rows of X, Y and residual */
    const void *x;        /* [n, k] row-major, ldx elements apart */
    int64_t ldx;          /* >= k */
    void *y;              /* [n, m] row-major, ldy elements apart */
    int64_t ldy;          /* >= m */
    const void *bias;     /* [m], element type of Y, or NULL */
    const void *residual; /* [n, m] with ldr, element type of Y, or NULL */
    int64_t ldr;
    int act;              /* SP_CUDA_ACT_* */
    float alpha, beta;    /* the activation's parameters (CLIP, HARDSIGMOID, LEAKYRELU) */
    void *workspace;      /* sp_cuda_spmm_workspace_bytes(m, n) bytes, zeroed once */
    size_t workspace_bytes;
    void *stream;         /* cudaStream_t; NULL = legacy default stream */
    int config;           /* launch configuration: 0 = chosen from the shape; the sm_90 2:4 kernel
                             (sp_cuda_24_spmm, sp_cuda_24_conv_implicit) also takes
                             1..SP_CUDA_24_TILE_HINTS (see sp_cuda_24_set_tile_hint), which the
                             runtime's plan-time tuning times per layer; other kernels ignore it */
} sp_cuda_spmm_args;

/* Workspace needed for split-K on an [m] x [n] output (fp32 partials and one
 * counter per output tile). Zero it once after allocation. */
size_t sp_cuda_spmm_workspace_bytes(int64_t m, int64_t n);

/* Tuning knob for benchmarks: the split-K choice aims at SMs * hint CTAs
 * instead of the resident slots the occupancy API reports (0 restores it). Process-wide, not
 * thread-safe; the runtime never calls it. */
void sp_cuda_spmm_set_split_hint(int ctas_per_sm);
/* Benchmark and test knob for the split-K of the sm_90 2:4 and BSR
 * kernels: 1 (the default) sums the partial tiles of a split launch through
 * distributed shared memory, the split's CTAs forming one cluster, where at
 * most 8 of them share a tile and all clusters fit the GPU at once (a
 * deeper split, or one whose clusters do not fit, shrinks to 8, 4 or 2 CTAs
 * per tile while each keeps at most 64 stages; splits even without a
 * workspace); 0 sums them through the workspace (fp32 atomics and a counter
 * per tile), as the other kernels do. Process-wide, not thread-safe; the
 * runtime never calls it. */
void sp_cuda_spmm_set_cluster_split(int on);
/* Benchmark knob: 0 makes the BSR and tiled-CSR kernels read their index
 * data (block columns, tile offsets) from global memory a stage ahead
 * instead of copying a CTA's share into shared memory once at its start
 * (1, the default). Process-wide, not thread-safe; the runtime never calls
 * it. */
void sp_cuda_spmm_set_meta_preload(int on);
/* Benchmark knob for the sm_90 2:4 kernel: 1-SP_CUDA_24_TILE_HINTS force
 * one launch configuration (CTA tile BM x BN, CTAs per SM): 1-9 one CTA per
 * SM, 64x16, 128x16, 64x32, 128x32, 64x64, 128x64, 64x128, 128x128,
 * 256x128; 10-15 several, 64x128/2, 128x128/2, 64x64/3, 64x64/4,
 * 128x64/2 (two consumer warpgroups), 128x64/2 (one); 16-17 one CTA per SM,
 * 192x128 (three consumer warpgroups), 128x256; 18-19 persistent (one CTA
 * per SM walking the tiles, the stores by the producer warpgroup's idle
 * warps; only where the fp16 epilogue applies, else the choice by M, N and
 * K), 192x128, 128x256. 0 restores the choice by M, N and K.
 * Process-wide, not thread-safe; the runtime never calls it. */
#define SP_CUDA_24_TILE_HINTS 19
#define SP_CUDA_24_PT_FIRST 18
void sp_cuda_24_set_tile_hint(int hint);
/* Benchmark knob for the sm_90 2:4 kernel: 1 (the default) launches it
 * with programmatic dependent launch, so it starts while the previous
 * kernel in the stream finishes, loads its first stages of the constant
 * weight, and waits for that kernel only before it reads activations or
 * writes outputs; 0 launches it plainly (the stream's full ordering).
 * The environment's SPRUN_CUDA_PDL=0 sets the initial value to 0.
 * Process-wide, not thread-safe; the runtime never calls it. */
void sp_cuda_24_set_pdl(int on);
/* Benchmark knob for the sm_90 2:4 kernel's epilogue: 1 (the default)
 * stages the output tile in shared memory as fp16 (bias, and ReLU when no
 * residual follows, applied in registers first; the residual and the other
 * activations on the way out) where the launch has no split-K and its rows
 * are 16-byte pieces; 0 always stages it as fp32 (store_ctile).
 * Process-wide, not thread-safe; the runtime never calls it. */
void sp_cuda_24_set_fp16_epilogue(int on);
/* The 2:4 launch configurations worth timing per layer on this GPU (for
 * sp_cuda_spmm_args.config), 0 (the shape's rule) first: fills cfg[0..max)
 * and returns how many; 1 where only the rule applies (not sm_90).
 * Thread-safe. */
int sp_cuda_24_tune_configs(int *cfg, int max);

/* ---- 2:4 ---------------------------------------------------------------- */
typedef struct sp_cuda_24 {
    int64_t m, k;   /* logical shape */
    int64_t mt, kt; /* 16-row tiles, 32-column tiles (K padded with zeros; kt even) */
    void *tiles;    /* [mt][kt] tiles of 576 B: 32 lanes x 16 B values, then
                       16 x 4 B metadata words (lane gid*2 + (tig & 1)) */
    size_t bytes;   /* device bytes of tiles */
} sp_cuda_24;

/* Re-packs an fp16 sp_24 into fragment order and copies it to the device.
 * Groups with fewer than 2 nonzeros may carry any metadata in the host copy:
 * the upload rewrites them into two distinct ordered positions. */
int sp_cuda_24_upload(const sp_24 *w, sp_cuda_24 *out, void *stream, sp_cuda_status *st);
void sp_cuda_24_free(sp_cuda_24 *w);
int sp_cuda_24_spmm(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, sp_cuda_status *st);
/* Kernel choice for tests and benchmarks: AUTO (what sp_cuda_24_spmm does:
 * wgmma on sm_90 when X is 16-byte aligned with K % 8 == 0, else
 * mma.sp), WGMMA (fails with SP_CUDA_E_UNSUPPORTED where it cannot run), MMA. */
enum { SP_CUDA_24_AUTO = 0, SP_CUDA_24_WGMMA = 1, SP_CUDA_24_MMA = 2 };
int sp_cuda_24_spmm_path(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, int path,
                         sp_cuda_status *st);

/* A convolution as an implicit GEMM (no patch matrix): Y[b*oh*ow, m] =
 * conv(X, W) for an NHWC fp16 input X [b, h, w, c] (a->x, 16-byte aligned)
 * and a 2:4 weight whose K runs in (ky, kx, ci) order (KRSC; kh * kw * c
 * columns); a->n = b * oh * ow, a->ldx is ignored; the epilogue is the
 * SpMM's. sm_90 only (the wgmma kernel), c % 64 == 0; otherwise
 * SP_CUDA_E_UNSUPPORTED. The patches are gathered by the copy engine in
 * im2col mode (symmetric padding, strides up to 8, window corners within
 * 128 pixels of the edges) or else, and when `gather` is
 * SP_CUDA_GATHER_COPIES, by the producer warps' 16-byte copies. */
enum { SP_CUDA_GATHER_AUTO = 0, SP_CUDA_GATHER_COPIES = 1 };
typedef struct sp_cuda_conv_geom {
    int64_t b, h, w, c;   /* input */
    int64_t oh, ow;       /* output */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int gather;           /* SP_CUDA_GATHER_* */
} sp_cuda_conv_geom;
int sp_cuda_24_conv_implicit(const sp_cuda_24 *w, const sp_cuda_conv_geom *g, const sp_cuda_spmm_args *a,
                             sp_cuda_status *st);
/* 1 when the current device runs sp_cuda_24_conv_implicit (sm_90), else 0.
 * Thread-safe (cached per device). */
int sp_cuda_24_conv_implicit_ok(void);

/* ---- dense twin (sm_90) --------------------------------------------------
 * A dense fp16 weight through the same pipeline and epilogue as the sm_90
 * 2:4 kernel (gemm_sm90.cu): for dense layers whose activation cuBLASLt
 * cannot fuse (erf GELU and the rest), and as the like-for-like dense
 * reference of the 2:4 kernel. W is [m][k] row-major, rows ldw elements
 * apart (ldw % 8 == 0, W 16-byte aligned); not owned, not copied: it must
 * stay valid while launches that use it run. X needs ldx % 8 == 0 and 16-byte
 * alignment. a->config 0 picks the tile from the shape, 1..
 * SP_CUDA_DENSE_CONFIGS force one (128x256, 256x128, 128x128, 192x128,
 * 128x64 with split-K). Thread-safe; launch only. */
typedef struct sp_cuda_dense {
    const void *w;
    int64_t m, k, ldw;
} sp_cuda_dense;

#define SP_CUDA_DENSE_CONFIGS 5

int sp_cuda_dense_gemm(const sp_cuda_dense *w, const sp_cuda_spmm_args *a, sp_cuda_status *st);
/* 1 when the current device runs sp_cuda_dense_gemm (sm_90), else 0. Thread-safe. */
int sp_cuda_dense_gemm_ok(void);
/* The configurations worth timing at plan time, 0 (the shape's rule) first;
 * fills cfg[0..max) and returns how many (1 off sm_90). Thread-safe. */
int sp_cuda_dense_tune_configs(int *cfg, int max);

/* ---- BSR ---------------------------------------------------------------- */
/* A BSR weight grouped for an sm_90 kernel (sp_cuda_bsr's wg and tall):
 * groups of consecutive block rows; a group's chunks are the block columns
 * where any of its rows has a block, ascending; chunk u of group g is the
 * int32 quadruple chunks[4 * (ptr[g] + u) ..]: block column, mask of the
 * group's units with a block there (bit r: unit r of the group), offset of
 * the chunk's units in blocks (16-byte pieces), 0. A chunk's units lie
 * contiguous, in mask order, each unit's blocks in row order, each block
 * bs x bs row-major with its 16-byte pieces swizzled as wgmma reads them
 * (bsr_wg_swizzle, spmm_bsr_sm90.h): one bulk copy per chunk. */
typedef struct sp_cuda_bsr_units {
    int64_t ngroups;
    int32_t max;         /* most chunks in one group */
    int32_t *ptr;        /* [ngroups + 1] */
    int32_t *order;      /* [ngroups] groups by decreasing chunk count */
    int32_t *chunks;     /* [ptr[ngroups]][4] */
    void *blocks;        /* [blocks stored][bs][bs] fp16, swizzled */
} sp_cuda_bsr_units;

typedef struct sp_cuda_bsr {
    int64_t m, k;
    int32_t bs;          /* square block size: 16, 32 or 64 */
    int64_t mb, kb, nblocks;
    int32_t *block_ptr;  /* [mb + 1] */
    int32_t *block_col;  /* [nblocks] */
    int32_t *row_order;  /* [mb] block rows by decreasing block count */
    void *frags;         /* [nblocks][bs/16][bs/16] 16x16 fragments of 512 B */
    /* Groups of SP_CUDA_BSR_GROUP consecutive block rows, for the launch
     * configurations whose CTA takes a whole group: one copy of each X
     * chunk then serves every block row of the group that has a block in
     * that column. A group's chunks are the union of its rows' block
     * columns, ascending; chunk u of group g is grp_meta[(grp_ptr[g] + u) *
     * (1 + SP_CUDA_BSR_GROUP) ...]: the block column, then for each block
     * row of the group the index of its block there (into frags) or -1. */
    int64_t ngroups;
    int64_t grp_chunks;  /* chunks of all groups */
    int32_t grp_max;     /* most chunks in one group */
    int32_t *grp_ptr;    /* [ngroups + 1] */
    int32_t *grp_meta;   /* [grp_ptr[ngroups]][1 + SP_CUDA_BSR_GROUP] */
    int32_t *grp_order;  /* [ngroups] groups by decreasing chunk count */
    /* The layouts of the sm_90 kernels, built at upload when the current
     * device is sm_90 (all NULL elsewhere).
     * wg (spmm_bsr_sm90.cu): groups of SP_CUDA_BSR_WG_ROWS / bs block rows;
     * its unit is a block, or for bs = 16 a pair of block rows (2r, 2r + 1)
     * whose two blocks are both stored, zeros for an absent one
     * (bsr_wg_pair, spmm_bsr_sm90.h).
     * tall (spmm_bsr_tall_sm90.cu): groups of SP_CUDA_BSR_TALL_ROWS / bs
     * block rows; its unit is 64 / bs block rows stacked (64 rows x bs
     * columns, a wgmma A operand as it is), every block of a unit with a
     * block stored, zeros for the absent ones. Built where the weight's
     * units hold no more than SP_CUDA_BSR_TALL_FILL of the dense size. */
    sp_cuda_bsr_units wg, tall;
    size_t bytes;        /* device bytes of every array above */
} sp_cuda_bsr;

/* block rows per group of sp_cuda_bsr's grouped layout */
#define SP_CUDA_BSR_GROUP 4
/* rows of W per group (and per CTA) of the sm_90 layouts */
#define SP_CUDA_BSR_WG_ROWS 256
#define SP_CUDA_BSR_TALL_ROWS 128
/* the tall layout is built where its units hold at most this share of
 * the dense weight's elements (it adds them to the device memory the
 * weight takes) */
#define SP_CUDA_BSR_TALL_FILL 0.97

int sp_cuda_bsr_upload(const sp_bsr *w, sp_cuda_bsr *out, void *stream, sp_cuda_status *st);
void sp_cuda_bsr_free(sp_cuda_bsr *w);
int sp_cuda_bsr_spmm(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st);
/* sp_cuda_bsr_spmm on one of the two kernels: SP_CUDA_BSR_MMA (mma.sync,
 * spmm_bsr.cu; its configuration for n) or SP_CUDA_BSR_WGMMA (the sm_90
 * kernel in its configuration for n, whatever the block density; where it
 * cannot run, no sm_90 layout or X not 16-byte aligned, the mma.sync one),
 * or SP_CUDA_BSR_AUTO (= sp_cuda_bsr_spmm). The runtime's plan-time tuning
 * times both per layer. Same contract as sp_cuda_bsr_spmm. */
enum { SP_CUDA_BSR_AUTO = 0, SP_CUDA_BSR_MMA = 1, SP_CUDA_BSR_WGMMA = 2 };
int sp_cuda_bsr_spmm_path(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int path, sp_cuda_status *st);
/* For benchmarks and tests: one of sp_cuda_bsr_configs() launch
 * configurations (table in spmm_bsr.cu), whatever n is; fails with
 * SP_CUDA_E_UNSUPPORTED where it does not fit the block size. X rows that
 * are not 16-byte aligned take the default configuration for n. Same
 * contract as sp_cuda_bsr_spmm. */
int sp_cuda_bsr_configs(void);
/* how many of those are the sm_90 kernels' (numbered last: the kernel on
 * blocks, then the one on 64-row units) */
int sp_cuda_bsr_wg_configs(void);
int sp_cuda_bsr_spmm_config(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int config,
                            sp_cuda_status *st);

/* ---- CSR ---------------------------------------------------------------- */
struct sp_cuda_csr_split24;
typedef struct sp_cuda_csr {
    int64_t m, k, nnz;
    sp_sparse_vtype vtype;
    /* CUDA-core path: the sp_csr arrays as they are (col_idx widened to 32 bit
     * only when k > 65536). */
    int32_t *row_ptr;    /* [m + 1] */
    uint16_t *col16;     /* [nnz] or NULL */
    int32_t *col32;      /* [nnz] or NULL */
    int32_t *row_order;  /* [m] */
    void *values;        /* [nnz] */
    /* Tensor-core path (fp16 only; built when with_tiles was set):
     * tiles of 16 rows x 64 columns, [mt][kt] */
    int64_t mt, kt;
    void *tiles;         /* 16-byte pieces; tile t at tile_off[t]: 8 pieces of
                            bitmap (word l = lane l's 32 fragment positions,
                            see spmm_csr.cu), then its fp16 values lane
                            by lane (positions increasing), zero-padded to
                            a whole piece */
    int32_t *tile_off;   /* [mt*kt + 1], in 16-byte pieces */
    int32_t tile_max;    /* the largest tile, in 16-byte pieces (picks the
                            kernel's shared-memory slot size) */
    int32_t tile_pairs;  /* 1: the pair layout: 4 pieces of bitmap (a 16-bit
                            word per lane, a bit per pair of adjacent
                            positions), then the pairs with a nonzero, both
                            halves (see spmm_csr.cu) */
    size_t bytes;        /* device bytes of the path(s) built */
    size_t tile_bytes;   /* of which the tiled layout */
    /* The split path (sp_cuda_csr_add_split24), or NULL: host-allocated,
     * owned by this struct, released by sp_cuda_csr_free. */
    struct sp_cuda_csr_split24 *split24;
} sp_cuda_csr;

/* An unstructured weight as a 2:4 part on the sparse tensor cores plus the
 * few nonzeros that do not fit 2:4 (loaders' sp_csr_split24): at 90 %
 * sparsity 0.1 % of the positions overflow, at 80 % 0.7 % (random
 * pattern). */
typedef struct sp_cuda_csr_split24 {
    sp_cuda_24 base;      /* two nonzeros of each group of four */
    sp_cuda_csr overflow; /* the third and fourth ones (CUDA-core path) */
    uint32_t *overflow_cv; /* [overflow.nnz] (or 1): column | fp16 value << 16,
                              in the overflow's order (the overflow kernel's
                              entries: one 4-byte load each) */
    /* The fused path's overflow, or NULL where some 64-row slab of W has more
     * than 32 distinct overflow columns in a 128-column window or more than a
     * fifth of the windows hold any (the layout:
     * spmm_csr_split24.cu, sp_cuda_csr_add_split24): per (slab, window) a
     * 2096-byte segment, [slabs][pairs], then per segment with more than 16
     * columns a 2048-byte second fragment set (fused_a1). */
    void *fused;
    void *fused_a1;
    int64_t fused_pairs;  /* windows per slab: ceil(K / 128) */
    size_t fused_bytes;   /* device bytes of both */
} sp_cuda_csr_split24;

/* Workspace for an [m, k] CSR weight at n columns:
 * sp_cuda_spmm_workspace_bytes(m, n) for split-K, rounded up to 256 bytes,
 * then room for X transposed, which the CUDA-core path of fp16 weights with
 * 16-bit columns rewrites on every call at the END of the workspace it is
 * given (workspace_bytes; that part needs no zeroing). A workspace shared by
 * several weights must therefore hold the largest split-K area (rounded up
 * to 256 bytes) plus the largest X part (this minus
 * sp_cuda_spmm_workspace_bytes), so that no call overwrites another's
 * split-K area. With less room, that path falls back to its slower kernel,
 * which stages X in shared memory. */
size_t sp_cuda_csr_workspace_bytes(int64_t m, int64_t k, int64_t n);

/* with_tiles: also build the tiled bitmap layout (fp16 weights only; the
 * position or the pair layout by density, see sp_cuda_csr.tile_pairs). */
int sp_cuda_csr_upload(const sp_csr *w, int with_tiles, sp_cuda_csr *out, void *stream,
                       sp_cuda_status *st);
void sp_cuda_csr_free(sp_cuda_csr *w);

/* Builds the split path of an uploaded CSR weight out (uploaded from the
 * same w by sp_cuda_csr_upload): w split by sp_csr_split24, the 2:4 part
 * uploaded as sp_cuda_24_upload does and the overflow as a CUDA-core CSR
 * weight; out->bytes grows by both. fp16 weights with 16-bit columns only
 * (else SP_CUDA_E_UNSUPPORTED). Allocates and synchronizes on stream; not
 * thread-safe for the same out. */
int sp_cuda_csr_add_split24(const sp_csr *w, sp_cuda_csr *out, void *stream, sp_cuda_status *st);

/* Benchmark and test knob: how the split path runs its overflow: 0
 * (default) inside the 2:4 kernel (the fused path) where it was built, the
 * GPU is sm_90, N >= 512 and its tiles fill half the GPU or K <= 768
 * (spmm_csr_split24.cu's fused_runs), else as 3; 4 as 0 without the last
 * condition (tests: the fused kernel on small shapes); 3: a pass of its own before the 2:4
 * part, through its own kernel where X's rows are 16-byte aligned and K
 * fits (spmm_csr_split24.cu), else the CUDA-core path; 1 that pass always
 * through the CUDA-core path; 2 as 3 but the overflow pass alone, without
 * the 2:4 part (to time the parts: Y is then not the product).
 * Process-wide, not thread-safe; the runtime never calls it. */
void sp_cuda_csr_set_split24_overflow(int mode);

/* 1 if sp_cuda_csr_spmm(w, a, SP_CUDA_CSR_SPLIT24, ...) would run the fused
 * form (the overflow inside the 2:4 kernel) for these arguments under the
 * current sp_cuda_csr_set_split24_overflow mode, else 0 (the two-pass form,
 * or no split built). Reads w, a, that mode and the device's properties
 * (cached per device); thread-safe as the launches are. */
int sp_cuda_csr_split24_fused_runs(const sp_cuda_csr *w, const sp_cuda_spmm_args *a);

enum { SP_CUDA_CSR_AUTO = 0, SP_CUDA_CSR_TC = 1, SP_CUDA_CSR_SIMT = 2, SP_CUDA_CSR_SPLIT24 = 3 };
/* path: SP_CUDA_CSR_AUTO takes TC whenever the tiles exist (fp16), else
 * SIMT; TC fails with SP_CUDA_E_UNSUPPORTED without tiles.
 * SP_CUDA_CSR_SPLIT24 (only when chosen; AUTO never takes it) runs the
 * split path: Y = overflow * X + residual on the CUDA cores (no bias, no
 * activation), then Y = act(base * X + bias + Y) on the sparse tensor
 * cores, reading as its residual the Y it writes (each element read before
 * it is written, by the thread that writes it); SP_CUDA_E_UNSUPPORTED when
 * the split was not built. Same workspace as the other paths
 * (sp_cuda_csr_workspace_bytes). */
int sp_cuda_csr_spmm(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, int path,
                     sp_cuda_status *st);
/* For benchmarks and tests: the tiled path in one of its
 * sp_cuda_csr_tc_configs() launch configurations (table in spmm_csr.cu),
 * whatever n is. Same contract as sp_cuda_csr_spmm. */
int sp_cuda_csr_tc_configs(void);
int sp_cuda_csr_spmm_tc_config(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, int config,
                               sp_cuda_status *st);
/* Benchmark and test knob: 0 makes the tiled path stage every weight in
 * full-size tile slots (the kernels before compact slots), 1 (default)
 * restores the smallest slot the weight's largest tile fits. Process-wide,
 * not thread-safe; the runtime never calls it. */
void sp_cuda_csr_set_compact_slots(int on);
/* Benchmark and test knob: the tiled layout later uploads build.
 * SP_CUDA_CSR_TILES_POSITION: a bitmap bit per position; SP_CUDA_CSR_TILES_PAIR:
 * a bit per pair of adjacent positions, each pair with a nonzero stored
 * whole (more bytes, half the expansion work); 0 (default): the upload's
 * rule. Process-wide, not thread-safe; the runtime never calls it. */
enum { SP_CUDA_CSR_TILES_RULE = 0, SP_CUDA_CSR_TILES_POSITION = 1, SP_CUDA_CSR_TILES_PAIR = 2 };
void sp_cuda_csr_set_tile_layout(int layout);

/* ---- SDDMM -------------------------------------------------------------- */
/* Sampled dense-dense product on a CSR pattern [m, n] (sparse attention
 * scores): out[p] = scale * sum_k A[i, k] * B[col_idx[p], k] for every stored
 * position p of row i; fp16 A, B and out, fp32 accumulation. A [m, k] and
 * B [n, k] are row-major with leading dimensions lda, ldb >= k (Q and K of
 * attention as they are); row_ptr [m + 1] and col_idx [nnz] are int32 device
 * arrays that the caller keeps valid (the pattern is not validated on the
 * device: columns must lie in [0, n)). out holds nnz values in pattern order.
 * Launch only: no allocation, no synchronization (graph-capturable). Float64
 * reference: kernels/cpu/sddmm_ref.h. */
typedef struct sp_cuda_sddmm_args {
    int64_t m, n, k, nnz;
    const int32_t *row_ptr;
    const int32_t *col_idx;
    const void *a;
    int64_t lda;
    const void *b;
    int64_t ldb;
    void *out;
    float scale;
    void *stream; /* cudaStream_t; NULL = legacy default stream */
} sp_cuda_sddmm_args;

int sp_cuda_sddmm(const sp_cuda_sddmm_args *args, sp_cuda_status *st);

#ifdef __cplusplus
}
#endif
#endif
