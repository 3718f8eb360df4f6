/*
 * spmm_bsr.cu - block-sparse (BSR, square blocks of 16, 32 or 64) SpMM on
 * the dense tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate).
 *
 * One CTA owns one block row (bs rows of W) and BN rows of X; its K chunks
 * are the stored blocks of that row: for each, the CTA copies X[:, col*bs ..
 * +bs] into shared memory and the warps multiply it by the block, whose
 * values the upload re-packed into 16x16 A fragments of 512 B (lane l's 16 B
 * = a0..a3). CTAs walk block rows longest first (row_order) so the tail of
 * the grid is short rows.
 *
 * Grouped configurations (FBsrG): one CTA owns a group of
 * SP_CUDA_BSR_GROUP consecutive block rows, one warp row per block row,
 * and walks the union of their block columns: each X chunk is copied into
 * shared memory once for all block rows of the group that have a block in
 * that column (at 50 % block sparsity about 2 of 4), instead of once per
 * block. A warp whose block row has no block in a chunk skips it, so the
 * tensor-core work stays that of the stored blocks. X read from L2 drops
 * from nblocks * bs * N * 2 bytes to one copy per union chunk (about half
 * at 50 %). Measured (bench/results/bsr-grouped-h100-2026-11-27.md): that
 * halving bought only 10-34 %, and deeper pipelines nothing, so neither X
 * traffic nor copy latency is what bounds these kernels; what does was not
 * found.
 */
#include "kernels/cuda/spmm_bsr_sm90.h"
#include "kernels/cuda/spmm_common.cuh"

#include <stdlib.h>
#include <string.h>

namespace spmm {

template <int WM_> struct FBsr {
    static constexpr int WM = WM_; /* = bs / 16: a warp owns the whole block row */
    static constexpr int CW = 16 * WM_;
    static constexpr bool W_SMEM = true;
    struct Params {
        const uint4 *frags;
        const int32_t *block_ptr, *block_col, *row_order;
    };
    struct Frag {};
    template <int BM> __host__ __device__ static constexpr int wchunk() { return WM * WM * 512; }
    __device__ static int row_block(const Params &p, int bx) { return __ldg(p.row_order + bx); }
    __device__ static int nchunks(const Params &p, int mb) {
        return __ldg(p.block_ptr + mb + 1) - __ldg(p.block_ptr + mb);
    }
    /* the block columns of the CTA's chunks, in shared memory */
    static constexpr int META_CAP = 1024;
    template <int BM>
    __device__ static int meta_load(const Params &p, int *ms, int mb, int cbeg, int cend) {
        if (cend - cbeg > META_CAP) return -1;
        const int64_t b0 = __ldg(p.block_ptr + mb) + cbeg;
        for (int i = threadIdx.x; i < cend - cbeg; i += blockDim.x) ms[i] = __ldg(p.block_col + b0 + i);
        return 0;
    }
    __device__ static int chunk_k0(const Params &p, int mb, int c, const Meta &mt) {
        if (mt.ptr) return mt.ptr[c - mt.cbeg] * CW;
        return __ldg(p.block_col + __ldg(p.block_ptr + mb) + c) * CW;
    }
    template <int BM, int CPS, int NT> struct WPre {};
    template <class Q> __device__ static void w_pre(const Params &, Q &, int, int, int, const Meta &) {}
    template <int BM, int CPS, int NT>
    __device__ static void load_w(const Params &p, const WPre<BM, CPS, NT> &, unsigned char *dst,
                                  int mb, int c0, int cend) {
        constexpr int PPC = WM * WM * 32;
        const int64_t b0 = __ldg(p.block_ptr + mb);
        for (int i = threadIdx.x; i < CPS * PPC; i += NT) {
            const int cc = i / PPC, q = i % PPC;
            const int c = c0 + cc;
            const bool ok = c < cend;
            cp_async16(dst + cc * wchunk<BM>() + q * 16,
                       ok ? (const void *)(p.frags + (b0 + c) * PPC + q) : (const void *)p.frags,
                       ok ? 16 : 0);
        }
    }
    template <int WN, int LD>
    __device__ static void mma_s(const Params &, const unsigned char *w, float (&acc)[WM][WN][4],
                                 const __half *xw, int, int, int lane) {
        /* one 16-column step of A at a time keeps bs = 64 inside the registers */
#pragma unroll
        for (int kk = 0; kk < WM; kk++) {
            uint32_t a[WM][4];
#pragma unroll
            for (int i = 0; i < WM; i++) {
                const uint4 v = *reinterpret_cast<const uint4 *>(w + (i * WM + kk) * 512 + lane * 16);
                a[i][0] = v.x; a[i][1] = v.y; a[i][2] = v.z; a[i][3] = v.w;
            }
#pragma unroll
            for (int j = 0; j < WN; j++) {
                uint32_t b[2];
                ldmatrix_x2(b, xw + (j * 8 + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int i = 0; i < WM; i++) mma_16816(acc[i][j], a[i], b[0], b[1]);
            }
        }
    }
};

/* A group of G = SP_CUDA_BSR_GROUP block rows (BM = G * bs): chunk = one
 * column of the group's union; its shared-memory W area is a 32-byte
 * header (an int per block row: its block is there) and then G blocks of
 * fragments in FBsr's layout (absent ones left unwritten and skipped). */
template <int WM_> struct FBsrG {
    static constexpr int WM = WM_;
    static constexpr int CW = 16 * WM_;
    static constexpr int G = SP_CUDA_BSR_GROUP;
    static constexpr int MS = 1 + G; /* ints of metadata per chunk */
    static constexpr int HDR = 32;
    static constexpr int BLK = WM * WM * 512; /* bytes of one block's fragments */
    static constexpr int PPC = BLK / 16;      /* its 16-byte pieces */
    static constexpr bool W_SMEM = true;
    static_assert(G * 4 <= HDR, "the header holds a flag per block row");
    struct Params {
        const uint4 *frags;
        const int32_t *grp_ptr, *grp_meta, *grp_order;
    };
    struct Frag {};
    template <int BM> __host__ __device__ static constexpr int wchunk() { return HDR + G * BLK; }
    __device__ static int row_block(const Params &p, int bx) { return __ldg(p.grp_order + bx); }
    __device__ static int nchunks(const Params &p, int g) {
        return __ldg(p.grp_ptr + g + 1) - __ldg(p.grp_ptr + g);
    }
    static constexpr int META_CAP = 1020; /* 204 chunks */
    template <int BM>
    __device__ static int meta_load(const Params &p, int *ms, int g, int cbeg, int cend) {
        if ((cend - cbeg) * MS > META_CAP) return -1;
        const int64_t b0 = (int64_t)(__ldg(p.grp_ptr + g) + cbeg) * MS;
        for (int i = threadIdx.x; i < (cend - cbeg) * MS; i += blockDim.x) ms[i] = __ldg(p.grp_meta + b0 + i);
        return 0;
    }
    /* entry j of chunk c's metadata (0: block column, 1 + r: block of row r) */
    __device__ static int meta(const Params &p, int g, int c, int j, const Meta &mt) {
        if (mt.ptr) return mt.ptr[(c - mt.cbeg) * MS + j];
        return __ldg(p.grp_meta + (int64_t)(__ldg(p.grp_ptr + g) + c) * MS + j);
    }
    __device__ static int chunk_k0(const Params &p, int g, int c, const Meta &mt) {
        return meta(p, g, c, 0, mt) * CW;
    }
    /* the block behind each of this thread's W pieces of a stage, read a
     * stage ahead (-1: none) */
    template <int BM, int CPS, int NT> struct WPre {
        static constexpr int R = (CPS * G * PPC + NT - 1) / NT;
        int blk[R];
    };
    template <int BM, int CPS, int NT>
    __device__ static void w_pre(const Params &p, WPre<BM, CPS, NT> &q, int g, int c0, int cend,
                                 const Meta &mt) {
#pragma unroll
        for (int r = 0; r < WPre<BM, CPS, NT>::R; r++) {
            const int i = threadIdx.x + r * NT;
            const int c = c0 + i / (G * PPC), slot = (i / PPC) % G;
            q.blk[r] = i < CPS * G * PPC && c < cend ? meta(p, g, c, 1 + slot, mt) : -1;
        }
    }
    /* the flags go in with plain stores: the pipeline's __syncthreads before
     * the stage is read publishes them with the copies */
    template <int BM, int CPS, int NT>
    __device__ static void load_w(const Params &p, const WPre<BM, CPS, NT> &q, unsigned char *dst, int,
                                  int, int) {
#pragma unroll
        for (int r = 0; r < WPre<BM, CPS, NT>::R; r++) {
            const int i = threadIdx.x + r * NT;
            if (i >= CPS * G * PPC) break;
            const int cc = i / (G * PPC), slot = (i / PPC) % G, pc = i % PPC;
            unsigned char *chunk = dst + cc * wchunk<BM>();
            if (pc == 0) reinterpret_cast<int *>(chunk)[slot] = q.blk[r] >= 0;
            if (q.blk[r] >= 0)
                cp_async16(chunk + HDR + slot * BLK + pc * 16, p.frags + (int64_t)q.blk[r] * PPC + pc, 16);
        }
    }
    template <int WN, int LD>
    __device__ static void mma_s(const Params &, const unsigned char *w, float (&acc)[WM][WN][4],
                                 const __half *xw, int wm, int mtile0, int lane) {
        if (!reinterpret_cast<const int *>(w)[wm]) return; /* uniform over the warp */
        FBsr<WM>::template mma_s<WN, LD>(typename FBsr<WM>::Params{}, w + HDR + wm * BLK, acc, xw, wm,
                                         mtile0, lane);
    }
};

template <bool B, class T, class F> struct Pick { using type = T; };
template <class T, class F> struct Pick<false, T, F> { using type = F; };

/* GRP: the grouped layout (FBsrG, a warp row per block row of a group) */
template <int WM, int WN, int WARPS_N, int WARPS_K, int KSUB, int STAGES, bool VEC, bool GRP>
static int run_bsr(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, int per_sm,
                   int maxblk, sp_cuda_status *st) {
    using KT = typename Pick<GRP, Kernel<FBsrG, WM, WN, SP_CUDA_BSR_GROUP, WARPS_N, WARPS_K, KSUB, STAGES, VEC>,
                                         Kernel<FBsr, WM, WN, 1, WARPS_N, WARPS_K, KSUB, STAGES, VEC>>::type;
    /* a configuration whose accumulators or stages do not fit this block size */
    if constexpr (WM * WN > 32 || KT::SMEM > 227 * 1024) {
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "bsr spmm: launch configuration does not fit this block size");
    } else if constexpr (GRP) {
        if (!w->grp_ptr) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: weight has no grouped layout");
        typename FBsrG<WM>::Params p;
        p.frags = (const uint4 *)w->frags;
        p.grp_ptr = w->grp_ptr;
        p.grp_meta = w->grp_meta;
        p.grp_order = w->grp_order;
        return launch<KT>(p, w->ngroups, w->grp_max, per_sm, a, w->k, e, st);
    } else {
        typename FBsr<WM>::Params p;
        p.frags = (const uint4 *)w->frags;
        p.block_ptr = w->block_ptr;
        p.block_col = w->block_col;
        p.row_order = w->row_order;
        return launch<KT>(p, w->mb, maxblk, per_sm, a, w->k, e, st);
    }
}

/* Launch configurations: warp tile (WM = bs/16 16-row tiles, the whole block
 * row) x WN 8-column steps, warps along N and K, blocks per warp per stage,
 * pipeline stages, CTAs per SM a split-K may count on. A CTA owns one block
 * row; its warps along K take different blocks of it. spmm_bench --bsr-sweep
 * times them all; bench/results/bsr-sweep-h200-2026-11-26.md has the sweep
 * of 13 configurations (block sizes 16 and 32, 50-90 %, N = 16 to 4096,
 * M = K = 4096, H200) from which these 7 and the defaults in kBsrDefault
 * come. Against the former choices (which took 256 columns of X per CTA at
 * N > 64, and for 16-wide blocks 8 blocks per stage on 4 warps at N <= 16):
 * 0.97-1.13x at N = 16, 1.65-2.32x at N = 128, 1.18-2.03x at N >= 1024. */
struct BsrCfg {
    int wn, warps_n, warps_k, ksub, stages, per_sm, grp;
};
static constexpr BsrCfg kBsrCfg[] = {
    {2, 1, 4, 1, 4, 2, 0}, /* 0: BN 16, 4 blocks per stage */
    {2, 1, 8, 1, 4, 1, 0}, /* 1: BN 16, 8 warps, 8 blocks per stage */
    {2, 1, 8, 2, 3, 1, 0}, /* 2: BN 16, 8 warps, 16 blocks per stage */
    {4, 2, 2, 1, 3, 1, 0}, /* 3: BN 64 */
    {4, 2, 2, 2, 3, 1, 0}, /* 4: BN 64, 4 blocks per stage */
    {2, 4, 1, 1, 3, 1, 0}, /* 5: BN 64, 4 warps along N */
    {4, 4, 2, 1, 3, 1, 0}, /* 6: BN 128, 8 warps */
    /* grouped (FBsrG): 4 warp rows, one per block row of the group */
    {8, 2, 1, 2, 3, 1, 1}, /* 7: BN 128, 8 warps, 2 union chunks per stage */
    {4, 2, 1, 2, 4, 2, 1}, /* 8: BN 64, 8 warps */
    {8, 1, 1, 2, 4, 2, 1}, /* 9: BN 64, 4 warps */
    {2, 1, 2, 2, 4, 2, 1}, /* 10: BN 16, 8 warps (2 along K), 4 union chunks per stage */
    {4, 1, 2, 1, 4, 2, 1}, /* 11: BN 32, 8 warps (2 along K) */
};
static const int kBsrCfgs = (int)(sizeof kBsrCfg / sizeof kBsrCfg[0]);

/* instantiation of configuration I (its row of kBsrCfg spelled out) */
#define SP_BSR_CFGS(X)                                                                         \
    X(0, 2, 1, 4, 1, 4, 0) X(1, 2, 1, 8, 1, 4, 0) X(2, 2, 1, 8, 2, 3, 0) X(3, 4, 2, 2, 1, 3, 0) \
    X(4, 4, 2, 2, 2, 3, 0) X(5, 2, 4, 1, 1, 3, 0) X(6, 4, 4, 2, 1, 3, 0) X(7, 8, 2, 1, 2, 3, 1) \
    X(8, 4, 2, 1, 2, 4, 1) X(9, 8, 1, 1, 2, 4, 1) X(10, 2, 1, 2, 2, 4, 1) X(11, 4, 1, 2, 1, 4, 1)
#define SP_BSR_CHECK(I, WN, N, K, KS, S, GR)                                                  \
    static_assert(WN == kBsrCfg[I].wn && N == kBsrCfg[I].warps_n && K == kBsrCfg[I].warps_k && \
                      KS == kBsrCfg[I].ksub && S == kBsrCfg[I].stages && GR == kBsrCfg[I].grp, \
                  "kBsrCfg row and instantiation differ");
SP_BSR_CFGS(SP_BSR_CHECK)
#undef SP_BSR_CHECK

template <int WM, bool VEC>
static int run_bsr_cfg(int i, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                       int maxblk, sp_cuda_status *st) {
#define SP_BSR_CASE(I, WN, N, K, KS, S, GR)                                                   \
    case I: return run_bsr<WM, WN, N, K, KS, S, VEC, GR != 0>(w, a, e, kBsrCfg[I].per_sm, maxblk, st);
    switch (i) {
        SP_BSR_CFGS(SP_BSR_CASE)
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no such launch configuration");
    }
#undef SP_BSR_CASE
}

/* The configuration sp_cuda_bsr_spmm takes, per block size (16, 32, 64):
 * slot 0 for n <= n_max[0], 1 for n <= n_max[1], else 2; in each, the
 * grouped configuration grp[slot] (-1: none) where the weight's blocks per
 * union chunk (nblocks / grp_chunks: how many block rows of a group share
 * each X copy, out of SP_CUDA_BSR_GROUP) reach share_min[slot], else
 * cfg[slot]. cfg: for 16- and 32-wide blocks the best of the sweep at N =
 * 16, 128 and 1024-4096 (50-90 %; where two were within 5 %, the one ahead
 * at the lower sparsities); 64-wide blocks were not swept and keep the
 * former choices. grp: bench/results/bsr-grouped-h100-2026-11-27.md (H100,
 * M = K = 4096, random blocks; sharing 2.13 at 50 %, 1.58 at 70 %, 1.16 at
 * 90 %): BSR16 above N = 128 grouped 1.03-1.34x faster at every sparsity;
 * at N = 128 grouped 1.20x (BSR16) and 1.16x (BSR32) at 50 % and 3-6 %
 * slower at 70 %; BSR32 above N = 128 and every N <= 16 ungrouped. */
struct BsrDefault {
    int64_t n_max[2];
    int cfg[3];
    int grp[3];
    double share_min[3];
};
static constexpr BsrDefault kBsrDefault[3] = {
    {{16, 128}, {2, 4, 6}, {-1, 7, 7}, {0.0, 1.8, 0.0}},
    {{16, 128}, {1, 3, 5}, {-1, 8, -1}, {0.0, 1.8, 0.0}},
    {{16, 64}, {0, 3, 5}, {-1, -1, -1}, {0.0, 0.0, 0.0}},
};
constexpr int bsr_wm_index(int wm) { return wm == 1 ? 0 : wm == 2 ? 1 : 2; }

/* The sm_90 kernel's configuration for a weight and n (run_bsr_sm90), or
 * -1 where the mma.sync kernel takes the shape. From the sweep of
 * bench/results/bsr-wgmma-h100-2026-11-27.md (H100, M = K = 4096, random
 * blocks, 50 / 70 / 90 %): at N = 16 the mma.sync kernel (one CTA per block
 * row, no padding of N to 64) is 1.1-2.0x faster; at N = 128 the wgmma one
 * is 1.1-1.5x faster at 50-70 % and 1.5-1.6x slower at 90 %, so up to
 * dense_max_n it takes block densities from dens_min only; above, it is
 * 1.1-3.6x faster everywhere. cfg_small serves n up to large_min_n,
 * cfg_large the rest (0: 2 warpgroups, 128 rows of X per CTA; 1: one, 64
 * rows, two CTAs per SM): with split-K summed in the CTA cluster, 32-wide
 * blocks at N = 64-256 ran 1.03-1.57x faster on one warpgroup than on two,
 * at N = 512 alike (bench/results/bsr-cluster-split-h100-2026-11-28.md).
 * 64-wide blocks were not swept: they take the 32-wide ones' choices.
 * forced (SP_CUDA_BSR_WGMMA): the configuration for n whatever n and the
 * density. */
struct BsrWgDefault {
    int64_t n_min, dense_max_n, large_min_n;
    double dens_min;
    int cfg_small, cfg_large;
};
static constexpr BsrWgDefault kBsrWgDefault[3] = {
    {17, 128, 128, 0.2, 1, 1}, /* bs 16 */
    {17, 128, 256, 0.2, 1, 0}, /* bs 32 */
    {17, 128, 256, 0.2, 1, 0}, /* bs 64 */
};
static int bsr_wg_default(const sp_cuda_bsr *w, int64_t n, bool forced) {
    /* The kernel on 64-row units (spmm_bsr_tall_sm90.cu) where the upload
     * built their layout (units holding at most SP_CUDA_BSR_TALL_FILL of
     * the dense weight) and n > 32, its CTA tile 64 tokens up to n = 192,
     * 128 up to 384, else 256. H200, M = K = 4096, random blocks of 16 and
     * 32 at 50 / 70 / 90 % (bench/results/bsr-tall-units-h200-2026-11-28.md):
     * against the configurations below, 0.99-1.51x at N = 512-4096 with 256
     * tokens (BSR32 at 70 %, N = 4096: 145.0 against 165.6 us, and 1.16x
     * cuBLAS), 1.16-1.63x at N = 256 with 128 and 1.03-1.21x at N = 128
     * with 64; at N = 16 the mma.sync kernel stays ahead, and so it does at
     * N <= 128 for 16-wide blocks below 15 % block density (at 90-98 %,
     * N = 128: 0.79-1.28x cuBLAS on units against 0.82-1.50x; at 80 %
     * 0.60x against 0.51x; 32-wide ones gain there: 1.13-1.54x against
     * 0.91-1.43x at 90-98 %). */
    const BsrWgDefault d = kBsrWgDefault[w->bs == 16 ? 0 : w->bs == 32 ? 1 : 2];
    const double dens = w->mb * w->kb > 0 ? (double)w->nblocks / ((double)w->mb * (double)w->kb) : 0.0;
    const bool sparse16 = w->bs == 16 && n <= d.dense_max_n && dens < 0.15;
    if (w->tall.blocks && n > 32 && w->mb * w->bs >= 64 && (forced || !sparse16))
        return kBsrWgCfgs + (n > 384 ? 0 : n > 192 ? 1 : 2);
    const int cfg = n > d.large_min_n ? d.cfg_large : d.cfg_small;
    if (forced) return cfg;
    /* a group less than half full (M < 128) shares each X chunk among too
     * few blocks (not measured on its own; plan-time tuning times both) */
    if (n < d.n_min || w->mb * w->bs < SP_CUDA_BSR_WG_ROWS / 2) return -1;
    if (n > d.dense_max_n) return cfg;
    return dens >= d.dens_min ? cfg : -1;
}

/* configuration I with the scalar X copies */
template <int WM, int I>
static int run_bsr_scalar(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, int maxblk,
                          sp_cuda_status *st) {
    constexpr BsrCfg c = kBsrCfg[I];
    return run_bsr<WM, c.wn, c.warps_n, c.warps_k, c.ksub, c.stages, false, c.grp != 0>(w, a, e, c.per_sm,
                                                                                        maxblk, st);
}

/* X rows that are not 16-byte aligned take the scalar copies, in the
 * ungrouped default configuration for n only (the others are not
 * instantiated for them) */
template <int WM>
static int dispatch_bsr(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                        int maxblk, sp_cuda_status *st) {
    constexpr BsrDefault d = kBsrDefault[bsr_wm_index(WM)];
    const int slot = a->n <= d.n_max[0] ? 0 : a->n <= d.n_max[1] ? 1 : 2;
    if (x_vec_ok(a, w->k)) {
        if (cfg < 0) {
            const bool grp = d.grp[slot] >= 0 && w->grp_chunks > 0 &&
                             (double)w->nblocks >= d.share_min[slot] * (double)w->grp_chunks;
            cfg = grp ? d.grp[slot] : d.cfg[slot];
        }
        return run_bsr_cfg<WM, true>(cfg, w, a, e, maxblk, st);
    }
    switch (slot) {
    case 0: return run_bsr_scalar<WM, d.cfg[0]>(w, a, e, maxblk, st);
    case 1: return run_bsr_scalar<WM, d.cfg[1]>(w, a, e, maxblk, st);
    default: return run_bsr_scalar<WM, d.cfg[2]>(w, a, e, maxblk, st);
    }
}

} // namespace spmm

using namespace spmm;

/* order[0..n) = 0..n-1 by decreasing ptr[i + 1] - ptr[i] (stable: ties by
 * index; left in index order when the count array cannot be allocated) */
static void order_by_length(const int32_t *ptr, int64_t n, int32_t *order) {
    for (int64_t r = 0; r < n; r++) order[r] = (int32_t)r;
    int64_t maxlen = 0;
    for (int64_t r = 0; r < n; r++)
        if (ptr[r + 1] - ptr[r] > maxlen) maxlen = ptr[r + 1] - ptr[r];
    int64_t *cnt = (int64_t *)calloc((size_t)maxlen + 2, sizeof(int64_t));
    if (!cnt) return;
    for (int64_t r = 0; r < n; r++) cnt[maxlen - (ptr[r + 1] - ptr[r]) + 1]++;
    for (int64_t i = 1; i <= maxlen + 1; i++) cnt[i] += cnt[i - 1];
    for (int64_t r = 0; r < n; r++) order[cnt[maxlen - (ptr[r + 1] - ptr[r])]++] = (int32_t)r;
    free(cnt);
}

/* at[c * G + r] = the block of row g * G + r in block column c, or -1:
 * group g's (G consecutive block rows) column map, at [kb * G] */
static void group_blocks(const sp_bsr *w, int64_t g, int G, int32_t *at) {
    for (int64_t i = 0; i < w->kb * G; i++) at[i] = -1;
    for (int r = 0; r < G && g * G + r < w->mb; r++) {
        const int64_t row = g * G + r;
        for (int32_t b = w->block_ptr[row]; b < w->block_ptr[row + 1]; b++) at[(int64_t)w->block_col[b] * G + r] = b;
    }
}

/* The grouped layout's host arrays (see sp_cuda_bsr): gptr [ngroups + 1],
 * gmeta [chunks * (1 + G)] (at most nblocks chunks), gorder [ngroups];
 * the caller frees them. 0, or -1 when out of host memory. */
static int build_groups(const sp_bsr *w, int64_t ngroups, int32_t **gptr, int32_t **gmeta, int32_t **gorder,
                        int32_t *gmax) {
    constexpr int G = SP_CUDA_BSR_GROUP;
    *gptr = (int32_t *)malloc(sizeof(int32_t) * (size_t)(ngroups + 1));
    *gmeta = (int32_t *)malloc(sizeof(int32_t) * (size_t)(w->nblocks + 1) * (1 + G));
    *gorder = (int32_t *)malloc(sizeof(int32_t) * (size_t)ngroups);
    int32_t *at = (int32_t *)malloc(sizeof(int32_t) * (size_t)w->kb * G); /* [col][row in group] */
    if (!*gptr || !*gmeta || !*gorder || !at) {
        free(at);
        return -1;
    }
    int32_t u = 0;
    *gmax = 0;
    (*gptr)[0] = 0;
    for (int64_t g = 0; g < ngroups; g++) {
        group_blocks(w, g, G, at);
        for (int64_t c = 0; c < w->kb; c++) {
            int any = 0;
            for (int r = 0; r < G; r++) any |= at[c * G + r] >= 0;
            if (!any) continue;
            int32_t *e = *gmeta + (int64_t)u * (1 + G);
            e[0] = (int32_t)c;
            for (int r = 0; r < G; r++) e[1 + r] = at[c * G + r];
            u++;
        }
        (*gptr)[g + 1] = u;
        if (u - (*gptr)[g] > *gmax) *gmax = u - (*gptr)[g];
    }
    free(at);
    order_by_length(*gptr, ngroups, *gorder);
    return 0;
}

/* One of the sm_90 layouts (sp_cuda_bsr_units; sp_cuda_bsr's wg and tall)
 * on the device, from w: groups of group_rows rows of W, units of ub block
 * rows. tall: built only where its units hold at most SP_CUDA_BSR_TALL_FILL
 * of the dense weight (else out stays empty). 0, or the error, recorded in
 * st, with whatever was allocated left in out for sp_cuda_bsr_free; the
 * device bytes are added to *bytes. */
static int upload_units(const sp_bsr *w, int group_rows, int ub, bool tall, sp_cuda_bsr_units *out, size_t *bytes,
                        cudaStream_t sm, sp_cuda_status *st) {
    const int bs = w->br, R = group_rows / bs, nu = R / ub;
    const int64_t ngroups = (w->mb + R - 1) / R;
    const size_t blk = (size_t)bs * bs; /* elements per block */
    int32_t *at = (int32_t *)malloc(sizeof(int32_t) * (size_t)w->kb * R); /* [col][row in group] */
    if (!at) return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "bsr upload: host malloc (sm_90 layout)");
    /* first pass: the units stored (every block of a unit with one) */
    int64_t units = 0;
    for (int64_t g = 0; g < ngroups; g++) {
        group_blocks(w, g, R, at);
        for (int64_t c = 0; c < w->kb; c++)
            for (int u = 0; u < nu; u++) {
                int any = 0;
                for (int r = u * ub; r < (u + 1) * ub; r++) any |= at[c * R + r] >= 0;
                units += any;
            }
    }
    if (tall && (double)units * ub > SP_CUDA_BSR_TALL_FILL * (double)(ngroups * R) * (double)w->kb) {
        free(at);
        return 0;
    }
    if (units * ub * (int64_t)blk * 2 / 16 > INT32_MAX) {
        free(at);
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr upload: matrix too large (sm_90 layout)");
    }
    int32_t *gptr = (int32_t *)malloc(sizeof(int32_t) * (size_t)(ngroups + 1));
    int32_t *gorder = (int32_t *)malloc(sizeof(int32_t) * (size_t)ngroups);
    int32_t *chunks = (int32_t *)malloc(sizeof(int32_t) * 4 * (size_t)(units ? units : 1));
    /* an absent block of a stored unit: calloc's zeros */
    uint16_t *hb = (uint16_t *)calloc(blk * (size_t)ub * (size_t)(units ? units : 1), sizeof(uint16_t));
    if (!gptr || !gorder || !chunks || !hb) {
        free(gptr);
        free(gorder);
        free(chunks);
        free(at);
        free(hb);
        return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "bsr upload: host malloc (sm_90 layout)");
    }
    const uint16_t *v = (const uint16_t *)w->values;
    int64_t u = 0, placed = 0; /* chunks and blocks so far */
    int32_t gmax = 0;
    gptr[0] = 0;
    for (int64_t g = 0; g < ngroups; g++) {
        group_blocks(w, g, R, at);
        for (int64_t c = 0; c < w->kb; c++) {
            uint32_t mask = 0; /* bit q: unit q (block rows ub q .. ub q + ub - 1) */
            for (int r = 0; r < R; r++)
                if (at[c * R + r] >= 0) mask |= 1u << (r / ub);
            if (!mask) continue;
            int32_t *e = chunks + 4 * u;
            e[0] = (int32_t)c;
            e[1] = (int32_t)mask;
            e[2] = (int32_t)(placed * (int64_t)(blk * 2 / 16));
            e[3] = 0;
            for (int r = 0; r < R; r++) {
                if (!(mask & (1u << (r / ub)))) continue;
                const int32_t b = at[c * R + r];
                if (b >= 0) {
                    /* block b, row-major, its 16-byte pieces swizzled (8 fp16 each) */
                    const uint16_t *src = v + (size_t)b * blk;
                    uint16_t *dst = hb + (size_t)placed * blk;
                    for (int i = 0; i < bs; i++)
                        for (int j = 0; j < bs; j++)
                            dst[i * bs + (((j >> 3) ^ bsr_wg_swizzle(bs, i)) << 3) + (j & 7)] = src[i * bs + j];
                }
                placed++;
            }
            u++;
        }
        gptr[g + 1] = (int32_t)u;
        if (u - gptr[g] > gmax) gmax = (int32_t)(u - gptr[g]);
    }
    free(at);
    order_by_length(gptr, ngroups, gorder);
    const size_t pb = sizeof(int32_t) * (size_t)(ngroups + 1), ob = sizeof(int32_t) * (size_t)ngroups;
    const size_t cb = sizeof(int32_t) * 4 * (size_t)(u ? u : 1), bb = sizeof(uint16_t) * blk * (size_t)(placed ? placed : 1);
    cudaError_t e = SP_CUDA_CHECK(st, cudaMalloc(&out->ptr, pb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->order, ob));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->chunks, cb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->blocks, bb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->ptr, gptr, pb, cudaMemcpyHostToDevice, sm));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->order, gorder, ob, cudaMemcpyHostToDevice, sm));
    if (!e && u) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->chunks, chunks, cb, cudaMemcpyHostToDevice, sm));
    if (!e && placed) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->blocks, hb, bb, cudaMemcpyHostToDevice, sm));
    /* the host arrays must outlive the copies */
    if (!e) e = SP_CUDA_CHECK(st, cudaStreamSynchronize(sm));
    free(gptr);
    free(gorder);
    free(chunks);
    free(hb);
    if (e) return (int)e;
    out->ngroups = ngroups;
    out->max = gmax;
    *bytes += pb + ob + cb + bb;
    return 0;
}

static void free_units(sp_cuda_bsr_units *u) {
    if (u->ptr) cudaFree(u->ptr);
    if (u->order) cudaFree(u->order);
    if (u->chunks) cudaFree(u->chunks);
    if (u->blocks) cudaFree(u->blocks);
}

extern "C" int sp_cuda_bsr_upload(const sp_bsr *w, sp_cuda_bsr *out, void *stream,
                                  sp_cuda_status *st) {
    if (!out) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr upload: NULL out");
    memset(out, 0, sizeof *out);
    if (!w || w->m <= 0 || w->k <= 0 || !w->block_ptr || (w->nblocks && (!w->values ||
                                                                        !w->block_col)))
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr upload: bad sp_bsr");
    if (w->vtype != SP_VT_F16)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr upload: fp16 values only");
    const int bs = w->br;
    if (w->bc != bs || (bs != 16 && bs != 32 && bs != 64))
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "bsr upload: square blocks of 16, 32 or 64 only");
    if (w->mb > INT32_MAX || w->nblocks > INT32_MAX / (bs * bs))
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr upload: matrix too large");
    const int s = bs / 16;
    const size_t fbytes = (size_t)w->nblocks * bs * bs * 2;
    uint16_t *hf = (uint16_t *)malloc(fbytes ? fbytes : 1);
    int32_t *order = (int32_t *)malloc(sizeof(int32_t) * (size_t)w->mb);
    if (!hf || !order) {
        free(hf);
        free(order);
        return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "bsr upload: host malloc");
    }
    const uint16_t *v = (const uint16_t *)w->values;
    for (int64_t b = 0; b < w->nblocks; b++)
        for (int i = 0; i < s; i++)
            for (int kk = 0; kk < s; kk++) {
                uint16_t *f = hf + ((b * s + i) * s + kk) * 256;
                for (int lane = 0; lane < 32; lane++) {
                    const int gid = lane >> 2, tig = lane & 3;
                    for (int reg = 0; reg < 4; reg++)
                        for (int h = 0; h < 2; h++) {
                            const int r = i * 16 + gid + (reg & 1) * 8;
                            const int c = kk * 16 + tig * 2 + h + (reg >> 1) * 8;
                            f[lane * 8 + reg * 2 + h] = v[b * bs * bs + r * bs + c];
                        }
                }
            }
    /* block rows by decreasing block count */
    order_by_length(w->block_ptr, w->mb, order);
    const int64_t ngroups = (w->mb + SP_CUDA_BSR_GROUP - 1) / SP_CUDA_BSR_GROUP;
    int32_t *gptr = NULL, *gmeta = NULL, *gorder = NULL, gmax = 0;
    if (build_groups(w, ngroups, &gptr, &gmeta, &gorder, &gmax)) {
        free(hf);
        free(order);
        free(gptr);
        free(gmeta);
        free(gorder);
        return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "bsr upload: host malloc (groups)");
    }
    cudaStream_t sm = (cudaStream_t)stream;
    const size_t pb = sizeof(int32_t) * (size_t)(w->mb + 1);
    const size_t cb = sizeof(int32_t) * (size_t)(w->nblocks ? w->nblocks : 1);
    const size_t ob = sizeof(int32_t) * (size_t)w->mb;
    cudaError_t e = SP_CUDA_CHECK(st, cudaMalloc(&out->block_ptr, pb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->block_col, cb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->row_order, ob));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->frags, fbytes ? fbytes : 16));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->block_ptr, w->block_ptr, pb,
                                                  cudaMemcpyHostToDevice, sm));
    if (!e && w->nblocks)
        e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->block_col, w->block_col,
                                              sizeof(int32_t) * (size_t)w->nblocks,
                                              cudaMemcpyHostToDevice, sm));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->row_order, order, ob,
                                                  cudaMemcpyHostToDevice, sm));
    if (!e && fbytes)
        e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->frags, hf, fbytes, cudaMemcpyHostToDevice, sm));
    const int64_t chunks = gptr[ngroups];
    const size_t gpb = sizeof(int32_t) * (size_t)(ngroups + 1);
    const size_t gmb = sizeof(int32_t) * (size_t)(chunks ? chunks : 1) * (1 + SP_CUDA_BSR_GROUP);
    const size_t gob = sizeof(int32_t) * (size_t)ngroups;
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->grp_ptr, gpb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->grp_meta, gmb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->grp_order, gob));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->grp_ptr, gptr, gpb, cudaMemcpyHostToDevice, sm));
    if (!e && chunks)
        e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->grp_meta, gmeta, gmb, cudaMemcpyHostToDevice, sm));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->grp_order, gorder, gob, cudaMemcpyHostToDevice, sm));
    if (!e) e = SP_CUDA_CHECK(st, cudaStreamSynchronize(sm));
    free(hf);
    free(order);
    free(gptr);
    free(gmeta);
    free(gorder);
    if (e) {
        sp_cuda_bsr_free(out);
        return (int)e;
    }
    out->m = w->m;
    out->k = w->k;
    out->bs = bs;
    out->mb = w->mb;
    out->kb = w->kb;
    out->nblocks = w->nblocks;
    out->ngroups = ngroups;
    out->grp_max = gmax;
    out->grp_chunks = chunks;
    out->bytes = fbytes + pb + cb + ob + gpb + gmb + gob;
    /* the sm_90 kernels' layouts, where they can run */
    if (sm90_ok()) {
        int rc = upload_units(w, SP_CUDA_BSR_WG_ROWS, bsr_wg_pair(bs) ? 2 : 1, false, &out->wg, &out->bytes, sm, st);
        if (!rc) rc = upload_units(w, SP_CUDA_BSR_TALL_ROWS, 64 / bs, true, &out->tall, &out->bytes, sm, st);
        if (rc) {
            sp_cuda_bsr_free(out);
            return rc;
        }
    }
    return 0;
}

extern "C" void sp_cuda_bsr_free(sp_cuda_bsr *w) {
    if (!w) return;
    if (w->block_ptr) cudaFree(w->block_ptr);
    if (w->block_col) cudaFree(w->block_col);
    if (w->row_order) cudaFree(w->row_order);
    if (w->frags) cudaFree(w->frags);
    if (w->grp_ptr) cudaFree(w->grp_ptr);
    if (w->grp_meta) cudaFree(w->grp_meta);
    if (w->grp_order) cudaFree(w->grp_order);
    free_units(&w->wg);
    free_units(&w->tall);
    memset(w, 0, sizeof *w);
}

/* sm_90 configuration c: the kernel on blocks' (kBsrWgCfgs), then the one
 * on 64-row units' (kBsrTallCfgs) */
static int run_sm90(int c, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    if (c < kBsrWgCfgs) return run_bsr_sm90(c, w, a, e, st);
    return run_bsr_tall_sm90(c - kBsrWgCfgs, w, a, e, st);
}

/* cfg: a launch configuration (kBsrCfg's, then the sm_90 kernels'), or -1
 * for the rule's choice on the path (SP_CUDA_BSR_*) */
static int bsr_spmm(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int cfg, int path, sp_cuda_status *st) {
    if (!w || !w->block_ptr) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no weight");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
    /* the sm_90 kernel: its configurations (numbered after kBsrCfg's), or
     * the rule's choice where it takes the shape */
    const bool xvec = x_vec_ok(a, w->k);
    const bool wg = w->wg.blocks && sm90_ok() && xvec;
    if (cfg >= kBsrCfgs) {
        if (wg) return run_sm90(cfg - kBsrCfgs, w, a, e, st);
        if (xvec)
            return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                                "bsr spmm: the wgmma configurations need sm_90 and the weight's sm_90 layout");
        cfg = -1; /* X rows not 16-byte aligned: the default for n */
    }
    if (cfg < 0 && wg && path != SP_CUDA_BSR_MMA) {
        const int c = bsr_wg_default(w, a->n, path == SP_CUDA_BSR_WGMMA);
        if (c >= 0) return run_sm90(c, w, a, e, st);
    }
    /* the split-K factor is sized for the longest row (the kernel splits each
     * row's own block list evenly) */
    const int maxblk = (int)(w->nblocks / (w->mb ? w->mb : 1)) + 1;
    switch (w->bs) {
    case 16: return dispatch_bsr<1>(cfg, w, a, e, maxblk, st);
    case 32: return dispatch_bsr<2>(cfg, w, a, e, maxblk, st);
    case 64: return dispatch_bsr<4>(cfg, w, a, e, maxblk, st);
    }
    return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr spmm: block size");
}

extern "C" int sp_cuda_bsr_spmm(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a,
                                sp_cuda_status *st) {
    return bsr_spmm(w, a, -1, SP_CUDA_BSR_AUTO, st);
}

extern "C" int sp_cuda_bsr_spmm_path(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int path,
                                     sp_cuda_status *st) {
    if (path != SP_CUDA_BSR_AUTO && path != SP_CUDA_BSR_MMA && path != SP_CUDA_BSR_WGMMA)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: unknown path");
    return bsr_spmm(w, a, -1, path, st);
}

extern "C" int sp_cuda_bsr_configs(void) { return kBsrCfgs + kBsrWgCfgs + kBsrTallCfgs; }

extern "C" int sp_cuda_bsr_wg_configs(void) { return kBsrWgCfgs + kBsrTallCfgs; }

extern "C" int sp_cuda_bsr_spmm_config(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int config,
                                       sp_cuda_status *st) {
    if (config < 0 || config >= kBsrCfgs + kBsrWgCfgs + kBsrTallCfgs)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no such launch configuration");
    return bsr_spmm(w, a, config, SP_CUDA_BSR_AUTO, st);
}
