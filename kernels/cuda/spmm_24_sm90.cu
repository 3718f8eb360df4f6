/*
 * spmm_24_sm90.cu - 2:4 SpMM on Hopper's warpgroup sparse tensor cores
 * (wgmma.mma_async.sp m64nNk32, N = 16, 32, 64 or 128, sm_90a).
 * Same weight layout as spmm_24.cu (576-byte 16 x 32 tiles in mma fragment
 * order, kt even), same arguments and epilogue; sp_cuda_24_spmm picks this
 * kernel on sm_90 when X's rows are 16-byte aligned, else the mma.sp one.
 *
 * GEMM view: M = output features (W rows), N = activation rows, K.
 *  - A CTA computes a BM x BN output tile, BM = 64 * MI * WGS, with one
 *    producer warpgroup and WGS consumer warpgroups (setmaxnreg moves the
 *    registers to the consumers).
 *  - Producer (one lane): per 64-column step of K, waits for a free stage,
 *    arms the stage's "full" mbarrier with its byte count and issues two TMA
 *    loads: X (2-D box of 64 columns x BN rows, 128-byte swizzle, zeros past
 *    N and K) and W (3-D box: 2 consecutive 576-byte tiles x BM/16 tile rows,
 *    zeros past M). STAGES deep.
 *  - Consumers: warpgroup g owns MI slabs of 64 rows; warp w of it holds rows
 *    16w..16w+15 of each slab = one 576-byte tile per 32 columns, so its A
 *    operand (compressed values + metadata) is one 16-byte and one 4-byte
 *    shared load per k32 step, fed to wgmma from registers; B (X, K-major) is
 *    read by the tensor cores through a swizzled shared-memory descriptor.
 *    After the stage's wgmmas complete the consumers release it ("empty").
 *  - The tile goes through shared memory: as fp16 (stmatrix.trans, bias and
 *    ReLU applied in registers, residual and other activations on the way
 *    out; acc_to_h / h_to_y) when the launch has no split-K and its rows
 *    are 16-byte pieces, else as fp32 to spmm_common.cuh's store_ctile
 *    (split-K over gridDim.z through the workspace when the tiles alone do
 *    not fill the GPU). The residual's rows are prefetched into L2 at the
 *    tile's start (prefetch_residual). Against the fp32 tile without the
 *    prefetch (H100, bench/results/spmm24-epilogue-h100-2026-11-26.md):
 *    plain 0.82-1.02x the time, bias + residual + ReLU 0.74x at BERT's
 *    3072 x 768 and 4096 tokens.
 *  - Persistent CTAs (PT, configurations 18-19) where the fp16 epilogue
 *    applies: one CTA per SM walks the tiles, the producer keeps loading
 *    across them, and the consumers hand each finished fp16 C tile (bias,
 *    residual and activation applied) to the producer warpgroup's idle
 *    warps, which store it while the consumers run the next tile's wgmmas.
 *  - Launched with programmatic dependent launch: a CTA may start while the
 *    previous kernel in the stream finishes, loads its first stages of the
 *    (constant) weight, and waits for that kernel (griddepcontrol.wait)
 *    before it reads X or the residual or writes anything.
 * Measured against cuBLAS and cuSPARSELt: bench/results/spmm-h100-*.md.
 */
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/sm90_wgmma_ra.cuh"
#include "kernels/cuda/spmm_common.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <string.h>

namespace spmm {

#ifdef SP_WGMMA_OK
/* D[64 x 16] += A(64 x 32, 2:4, registers) * B(32 x 16, shared, K-major) */
__device__ __forceinline__ void wgmma_sp_m64n16k32(float (&d)[8], const uint4 &a, uint64_t bdesc,
                                                 uint32_t e) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sp.sync.aligned.m64n16k32.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7}, "
        "{%8, %9, %10, %11}, %12, %13, 0, p, 1, 1, 0;\n}\n"
        : SP_ACC8(0)
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(bdesc), "r"(e));
}

/* D[64 x 32] += A(64 x 32, 2:4, registers) * B(32 x 32, shared, K-major) */
__device__ __forceinline__ void wgmma_sp_m64n32k32(float (&d)[16], const uint4 &a, uint64_t bdesc,
                                                 uint32_t e) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sp.sync.aligned.m64n32k32.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
        "{%16, %17, %18, %19}, %20, %21, 0, p, 1, 1, 0;\n}\n"
        : SP_ACC16(0)
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(bdesc), "r"(e));
}

/* D[64 x 64] += A(64 x 32, 2:4, registers) * B(32 x 64, shared, K-major) */
__device__ __forceinline__ void wgmma_sp_m64n64k32(float (&d)[32], const uint4 &a, uint64_t bdesc,
                                                 uint32_t e) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sp.sync.aligned.m64n64k32.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, %37, 0, p, 1, 1, 0;\n}\n"
        : SP_ACC32(0)
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(bdesc), "r"(e));
}

/* D[64 x 128] += A(64 x 32, 2:4, registers) * B(32 x 128, shared, K-major) */
__device__ __forceinline__ void wgmma_sp_m64n128k32(float (&d)[64], const uint4 &a, uint64_t bdesc,
                                                 uint32_t e) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sp.sync.aligned.m64n128k32.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "{%64, %65, %66, %67}, %68, %69, 0, p, 1, 1, 0;\n}\n"
        : SP_ACC64(0)
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(bdesc), "r"(e));
}

/* D[64 x 256] += A(64 x 32, 2:4, registers) * B(32 x 256, shared, K-major) */
__device__ __forceinline__ void wgmma_sp_m64n256k32(float (&d)[128], const uint4 &a, uint64_t bdesc,
                                                  uint32_t e) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sp.sync.aligned.m64n256k32.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
        "{%128, %129, %130, %131}, %132, %133, 0, p, 1, 1, 0;\n}\n"
        : SP_ACC128
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(bdesc), "r"(e));
}

template <int BN>
__device__ __forceinline__ void wgmma_sp(float (&d)[BN / 2], const uint4 &a, uint64_t b, uint32_t e) {
    if constexpr (BN == 16) wgmma_sp_m64n16k32(d, a, b, e);
    else if constexpr (BN == 32) wgmma_sp_m64n32k32(d, a, b, e);
    else if constexpr (BN == 64) wgmma_sp_m64n64k32(d, a, b, e);
    else if constexpr (BN == 128) wgmma_sp_m64n128k32(d, a, b, e);
    else wgmma_sp_m64n256k32(d, a, b, e);
}
#endif

/* TMA im2col load of a [pixels][channels] box (the map's pixelsPerColumn x
 * channelsPerPixel) starting at window corner (w, h) of image n, channel c,
 * read at kernel offset (ow, oh) */
__device__ __forceinline__ void tma_im2col_4d(uint32_t dst, const CUtensorMap *map, int c, int w, int h,
                                              int n, uint16_t ow, uint16_t oh, uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes [%0], [%1, "
        "{%2, %3, %4, %5}], [%6], {%7, %8};\n" ::"r"(dst),
        "l"((uint64_t)map), "r"(c), "r"(w), "r"(h), "r"(n), "r"(bar), "h"(ow), "h"(oh)
        : "memory");
}

/* Where K24t's X tiles come from: TMA tiles of a patch matrix in memory
 * (IM_TILES), or, for the implicit-GEMM convolution, gathered from the NHWC
 * input by the producer warps' cp.async copies (IM_GATHER) or by the copy
 * engine in im2col mode (IM_TMA). */
enum { IM_TILES = 0, IM_GATHER = 1, IM_TMA = 2 };

/* Implicit-GEMM convolution (K24t with IM): X is not a patch matrix but the
 * NHWC input itself; row n of the GEMM is output pixel (b, oy, ox) and its
 * 64-column K chunk j is channels [c0, c0 + 64) of kernel position (ky, kx)
 * (K in (ky, kx, ci) order, C % 64 == 0, so a chunk never straddles two
 * positions). The producer warps gather each chunk row with 16-byte cp.async
 * copies (zero-filled for padding and rows past N) straight into the 128-byte
 * swizzled layout the TMA would write; no patch matrix exists in memory. */
struct ConvG {
    const __half *x; /* NHWC input, 16-byte aligned */
    int h, w, c, oh, ow, kw, sh, sw, ph, pw, dh, dw;
    int b, kh; /* batch, kernel height (the im2col map's extent) */

    /* GEMM row n (output pixel): its image and the window's top-left input
     * coordinates (negative inside the padding) */
    __device__ void corner(int n, int &img, int &ix, int &iy) const {
        const int q = n / ow, ox = n - q * ow;
        img = q / oh;
        ix = ox * sw - pw;
        iy = (q - img * oh) * sh - ph;
    }
    /* K chunk j (64 columns): its first channel and its kernel position's
     * offset from the window corner, in input pixels */
    __device__ void chunk(int j, int &c0, int &dx, int &dy) const {
        const int cb = c >> 6, q = j / cb, ky = q / kw;
        c0 = (j - q * cb) * 64;
        dx = (q - ky * kw) * dw;
        dy = ky * dh;
    }
};

/* cp.async of 16 bytes (src_bytes 0: 16 zero bytes) */
__device__ __forceinline__ void cp_async16_sw(uint32_t dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
                 : "memory");
}

/* One output row of the implicit GEMM: its output pixel's top-left input
 * coordinates and the element offset of that input pixel (iy far negative
 * for rows past N: every copy of theirs is zero-filled) */
struct RowT {
    int64_t off;
    int iy, ix;
};

/* The fused CSR split path's overflow (K24t with FU = 1; built by
 * sp_cuda_csr_add_split24, spmm_csr_split24.cu): the unstructured weight
 * W = B + O with B 2:4 (the kernel's weight) and O the few nonzeros that
 * do not fit. Per 64-row slab of W and 128-column window of K (a pair of
 * stages) a segment of FSEG bytes: the window's distinct overflow columns
 * as slots (bytes 0-31: column - window start, up to 32), their count
 * (bytes 32-35), the index of a second fragment set (36-39, where more than
 * 16), then O's slab restricted to slots 0-15 as wgmma's register A
 * fragments (64 x 16, m16n8k16 layout, warp by warp, 16 bytes a lane).
 * The producer copies a CTA's segments with the pair's first stage; the
 * consumers gather the slots' columns of X from the two stages' tiles into
 * a 16- or 32-column tile Bo (no swizzle: 8 x 8 core matrices, 128 B apart
 * along K, 512 B along N) and issue one or two dense m64nBNk16 wgmmas into
 * the same accumulators, so the overflow costs a fraction of a stage of
 * tensor work per pair instead of a pass over X and Y. */
struct Fz {
    const unsigned char *segs; /* [slabs][pairs] segments, or NULL */
    const uint4 *a1;           /* second fragment sets, 128 pieces each */
    int64_t pairs;
};
constexpr int FSEG = 2096;

/* smem descriptor: K-major, no swizzle: 8-row x 16-byte core matrices,
 * lbo bytes apart along K, sbo bytes apart along the rows */
__device__ __forceinline__ uint64_t desc_plain(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)(lbo >> 4) << 16;
    d |= (uint64_t)(sbo >> 4) << 32;
    return d;
}

/* CPS: CTAs resident per SM. With 1 the CTA owns the register file (the
 * consumers raise theirs to 232); with 2 or 3 each CTA gets 1/CPS of it
 * and fewer stages, so one CTA's epilogue (C tile through shared memory,
 * residual reads, stores) overlaps another's loads and wgmmas: what
 * layers with a short K (ResNet's 1x1 convs, K = 64..256: one to four
 * stages per tile) need, where a lone CTA alternates between loading and
 * storing with the other idle. */
/* PT: persistent, the epilogue off the consumers' path (pt_hand_over and
 * pt_store_tiles, sm90_common.cuh); the producer lane keeps the stage ring
 * filling across the CTA's tiles. Only where the fp16 epilogue applies (no
 * split-K, rows in 16-byte pieces). */
template <int WGS, int MI, int BN_, int STAGES, int IM = IM_TILES, int CPS = 1, int FU = 0, int PT = 0> struct K24t {
    static constexpr int BN = BN_;
    /* PT: the producer warpgroup's epilogue warps hold a batch of residual rows (rows_with_res) */
    using Roles = WsRoles<WGS, CPS, PT ? 80 : 40>;
    static constexpr int NT = Roles::NT, NC = Roles::NC, R_PROD = Roles::R_PROD, R_CONS = Roles::R_CONS;
    static constexpr int CPS_ = CPS;
    static constexpr int BM = 64 * MI * WGS;
    static constexpr int TR = BM / 16;
    static constexpr int XST = BN * 128;
    static constexpr int WST = 2 * TR * 576;
    static constexpr int OVB = FU ? (BM / 64) * FSEG : 0; /* the fused overflow's segments */
    static constexpr int STB = ((XST + WST + OVB + 1023) / 1024) * 1024;
    static constexpr int CLD = BM + 4;
    static constexpr int CBYTES = BN * CLD * 4;
    static constexpr int PIPE = STAGES * STB;
    static constexpr int CREG = PT ? ((BN * (BM + 8) * 2 + 1023) / 1024) * 1024 : 0; /* PT: the fp16 C tile */
    static constexpr int BARS = PT ? PIPE + CREG : PIPE > CBYTES ? PIPE : CBYTES; /* barriers after this */
    /* FU: each consumer warpgroup's gathered tile Bo, BN rows x 32 columns */
    static constexpr int BOFF = ((BARS + 2 * STAGES * 8 + 1023) / 1024) * 1024;
    static constexpr int SMEM = FU ? BOFF + WGS * BN * 64 + 1024
                                   : BARS + 2 * STAGES * 8 + (IM == IM_GATHER ? BN * (int)sizeof(RowT) : 0) + 1024;
    static constexpr int NACC = BN / 2;
    static constexpr int IM_ = IM;
    static constexpr int FU_ = FU;
    static constexpr int PT_ = PT;
    static_assert(!FU || (IM == IM_TILES && MI == 1 && CPS == 1 && BN % 128 == 0 && SMEM <= SmemPlan<1>::CAP),
                  "K24t: the fused overflow takes X tiles, one slab per warpgroup, 128 or 256 columns, one CTA per SM");
    static_assert(CPS == 1 || (SMEM + 1024) * CPS <= 228 * 1024, "K24t: CPS CTAs do not fit an SM's shared memory");
    static_assert(!PT || (IM == IM_TILES && FU == 0 && SMEM <= SmemPlan<CPS>::CAP),
                  "K24t: persistent takes X tiles and no fused overflow");

#ifdef SP_WGMMA_OK
    /* a stage's bytes: X, W and (FU, the first stage of a pair) the segments */
    __device__ static uint32_t stage_bytes(int j) { return (uint32_t)(XST + WST + (FU && !(j & 1) ? OVB : 0)); }
    /* FU: the segments of the CTA's slabs for pair j / 2, with stage j's copies */
    __device__ static void load_segs(uint32_t dst, const Fz &fz, int j, int mt0, uint32_t bar) {
        if constexpr (FU != 0) {
            if (j & 1) return;
#pragma unroll
            for (int i = 0; i < BM / 64; i++)
                bulk_load(dst + i * FSEG, fz.segs + ((int64_t)(mt0 / 4 + i) * fz.pairs + j / 2) * FSEG, FSEG, bar);
        }
    }
    /* The producer lane's start: arms the first stages' "full" barriers with
     * their whole byte count and issues their W copies (FU: and segments; the weight is
     * constant: no kernel before this one writes it), then waits for the
     * previous kernel (pdl_wait) before any X copy. Returns how many
     * stages it armed. */
    __device__ static int prefetch_w(uint32_t sb, uint32_t full0, const CUtensorMap *wmap, int j0, int nk,
                                     int mt0, const Fz &fz) {
        const int pre = nk < STAGES ? nk : STAGES;
        for (int s = 0; s < pre; s++) {
            mbar_expect_tx(full0 + s * 8, stage_bytes(j0 + s));
            tma_load_3d(sb + s * STB + XST, wmap, 0, 2 * (j0 + s), mt0, full0 + s * 8);
            load_segs(sb + s * STB + XST + WST, fz, j0 + s, mt0, full0 + s * 8);
        }
        pdl_wait();
        return pre;
    }
#endif

    __device__ static void run(const CUtensorMap *xmap, const CUtensorMap *wmap, int mt, int kt,
                               const Epi &e, const ConvG &cg, const Fz &fz) {
#ifdef SP_WGMMA_OK
        /* IM_GATHER: "full" takes the W copy's arrive and one per producer thread */
        const PipeStart ps = pipe_start<STAGES>(BARS, kt / 2, IM == IM_GATHER ? 1 + 128 : 1, NC);
        unsigned char *sm = ps.sm;
        const uint32_t sb = ps.sb, full0 = ps.full0, empty0 = ps.empty0;
        const int j0 = ps.j0, nk = ps.nk;
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        const int mt0 = blockIdx.x * TR;
        const int64_t n0 = (int64_t)blockIdx.y * BN;
        /* PT: the tiles this CTA walks (else the one tile of its block index);
         * tile t's first 16-row W tile and first row of X */
        const int gxm = (mt + TR - 1) / TR;
        const int ntiles = PT ? gxm * (int)((e.n + BN - 1) / BN) : 1;
        const int t0 = PT ? (int)blockIdx.x : 0, tstep = PT ? (int)gridDim.x : 1;
        auto tile_mt = [&](int t) { return PT ? (t % gxm) * TR : mt0; };
        auto tile_n0 = [&](int t) { return PT ? (int64_t)(t / gxm) * BN : n0; };

        if (PT && !h_stage_ok(e)) __trap(); /* the host launches PT only with the fp16 epilogue */
        if (warp < 4) { /* producer */
            asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R_PROD));
            if constexpr (IM == IM_GATHER) {
                /* Thread p copies 16-byte column chunk u = p % 8 of rows
                 * p / 8, p / 8 + 16, ... of each stage's [BN][64] X tile. A
                 * row's output pixel is the same at every stage, so its
                 * input pixel offset and top-left input coordinates are
                 * worked out once (the row table; the divisions per row and
                 * stage had made the producer the bottleneck) and a stage
                 * adds its kernel position's offset. The copies complete
                 * into the generic proxy: each thread waits for its own
                 * stage s - LAG, fences them into the async proxy (the
                 * wgmma reads them) and only then arrives on that stage's
                 * "full" barrier; up to LAG stages stay in flight. */
                constexpr int LAG = STAGES - 1, RPT = BN / 16;
                const int p = threadIdx.x, u = p & 7;
                pdl_wait(); /* the input is the previous kernel's output */
                RowT *tab = reinterpret_cast<RowT *>(sm + BARS + 2 * STAGES * 8);
                for (int r = p; r < BN; r += 128) {
                    const int n = (int)n0 + r; /* N < 2^31 (checked at launch) */
                    RowT t = {0, -(1 << 29), 0};
                    if (n < (int)e.n) {
                        int b;
                        cg.corner(n, b, t.ix, t.iy);
                        t.off = (((int64_t)b * cg.h + t.iy) * cg.w + t.ix) * cg.c;
                    }
                    tab[r] = t;
                }
                asm volatile("bar.sync 2, 128;\n" ::: "memory");
                for (int s = 0; s < nk + LAG; s++) {
                    /* stage s - LAG's copies first: the consumers release
                     * stage s - STAGES (waited for below) only once they
                     * have issued stage s - LAG; waiting first deadlocked
                     * whenever a CTA had more than STAGES stages */
                    if (s >= LAG) {
                        asm volatile("cp.async.wait_group %0;\n" ::"n"(LAG - 1) : "memory");
                        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
                        mbar_arrive(full0 + ((s - LAG) % STAGES) * 8);
                    }
                    if (s < nk) {
                        const int st = s % STAGES, j = j0 + s;
                        const uint32_t full = full0 + st * 8;
                        if (s >= STAGES) mbar_wait(empty0 + st * 8, ((s / STAGES) - 1) & 1);
                        if (p == 0) {
                            mbar_expect_tx(full, (uint32_t)WST);
                            tma_load_3d(sb + st * STB + XST, wmap, 0, 2 * j, mt0, full);
                        }
                        int c0, dx, dy;
                        cg.chunk(j, c0, dx, dy);
                        const int64_t doff = ((int64_t)dy * cg.w + dx) * cg.c + c0 + u * 8;
                        const uint32_t xs = sb + st * STB;
#pragma unroll
                        for (int i = 0; i < RPT; i++) {
                            const int r = (p >> 3) + 16 * i;
                            const RowT t = tab[r];
                            const int iy = t.iy + dy, ix = t.ix + dx;
                            const bool in = (unsigned)iy < (unsigned)cg.h && (unsigned)ix < (unsigned)cg.w;
                            cp_async16_sw(xs + r * 128 + ((u ^ (r & 7)) << 4), in ? cg.x + (t.off + doff) : cg.x,
                                          in ? 16 : 0);
                        }
                    }
                    asm volatile("cp.async.commit_group;\n" ::: "memory");
                }
            } else if (IM == IM_TMA && warp == 0 && lane == 0) {
                /* The copy engine gathers the patches (TMA im2col mode): the
                 * tile's BN output pixels start at window corner (ox * sw -
                 * pw, oy * sh - ph) of image b; a stage's K chunk is 64
                 * channels at kernel offset (kx * dw, ky * dh), zero-filled
                 * outside the image and past the last one. */
                int b, wx, hy;
                cg.corner((int)n0, b, wx, hy);
                const int pre = prefetch_w(sb, full0, wmap, j0, nk, mt0, fz);
                for (int s = 0; s < nk; s++) {
                    const int st = s % STAGES, j = j0 + s;
                    const uint32_t full = full0 + st * 8;
                    if (s >= pre) {
                        mbar_wait(empty0 + st * 8, ((s / STAGES) - 1) & 1);
                        mbar_expect_tx(full, (uint32_t)(XST + WST));
                        tma_load_3d(sb + st * STB + XST, wmap, 0, 2 * j, mt0, full);
                    }
                    int c0, dx, dy;
                    cg.chunk(j, c0, dx, dy);
                    tma_im2col_4d(sb + st * STB, xmap, c0, wx, hy, b, (uint16_t)dx, (uint16_t)dy, full);
                }
            } else if (IM == IM_TILES && warp == 0 && lane == 0) {
                int q = 0; /* stages issued before this tile (PT; else 0) */
                for (int t = t0; t < ntiles; t += tstep) {
                    const int mtq = tile_mt(t), nq = (int)tile_n0(t);
                    const int pre = q == 0 ? prefetch_w(sb, full0, wmap, j0, nk, mtq, fz) : 0;
                    for (int s = 0; s < nk; s++) {
                        const int qs = q + s, st = qs % STAGES, j = j0 + s;
                        const uint32_t full = full0 + st * 8;
                        if (s >= pre) {
                            mbar_wait(empty0 + st * 8, ((qs / STAGES) - 1) & 1);
                            mbar_expect_tx(full, stage_bytes(j));
                            /* W tiles (mtq.., 2j..2j+1) as [TR][2][576 B]: zero past M */
                            tma_load_3d(sb + st * STB + XST, wmap, 0, 2 * j, mtq, full);
                            load_segs(sb + st * STB + XST + WST, fz, j, mtq, full);
                        }
                        /* X rows nq.., columns 64j..: zero past N and K */
                        tma_load_2d(sb + st * STB, xmap, j * 64, nq, full);
                    }
                    q += nk;
                }
            } else if (PT != 0 && warp >= 1) { /* the epilogue warps */
                pt_store_tiles<BM, BN, NC>(reinterpret_cast<const __half *>(sm + PIPE), e, gxm, ntiles,
                                           (int)threadIdx.x - 32);
            }
        } else {
            asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R_CONS));
            pdl_wait(); /* the epilogue reads the residual and writes Y, the workspace */
            const int tid = threadIdx.x - 128;
            const int g = (warp - 4) >> 2, w4 = warp & 3;
            int q = 0; /* stages consumed before this tile (PT; else 0) */
            for (int t = t0; t < ntiles; t += tstep) {
                const int mtc = tile_mt(t);
                const int64_t nc0 = tile_n0(t);
                if constexpr (PT == 0) prefetch_residual<BM, BN>(e, (int64_t)mtc * 16, nc0, tid, NC);
                float acc[MI][NACC];
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int i = 0; i < NACC; i++) acc[mi][i] = 0.0f;
                const int aoff = lane * 16, eoff = 512 + ((lane >> 2) * 2 + (lane & 1)) * 4;
                /* One stage's wgmmas stay in flight while the next stage's A
                 * fragments and metadata load into the other register set
                 * (a[set], me[set]; stages alternate sets, so the loop runs two
                 * stages per turn and every index is static). ptxas does not
                 * know a wgmma reads its register operands after issue: a set
                 * stays live (reg_fence) until the wait that retires its stage,
                 * or its registers would be reused (measured: reloading the
                 * registers of an in-flight batch gave wrong results). */
                uint4 a[2][2][MI];
                uint32_t me[2][2][MI];
                auto load = [&](auto set, int s) {
                    const int st = (q + s) % STAGES;
                    mbar_wait(full0 + st * 8, ((q + s) / STAGES) & 1);
                    const unsigned char *wsm = sm + st * STB + XST;
#pragma unroll
                    for (int kk = 0; kk < 2; kk++)
#pragma unroll
                        for (int mi = 0; mi < MI; mi++) {
                            const unsigned char *t = wsm + (((g * MI + mi) * 4 + w4) * 2 + kk) * 576;
                            a[set][kk][mi] = *reinterpret_cast<const uint4 *>(t + aoff);
                            me[set][kk][mi] = *reinterpret_cast<const uint32_t *>(t + eoff);
                        }
                };
                /* FU: the pair's overflow (fcnt slots, the same over the
                 * warpgroup; f1 / f2: it needs one / two dense wgmmas, as
                 * ballots, so that ptxas sees branches every lane takes alike:
                 * a wgmma under a branch it must assume divergent serializes
                 * all of them, info C7520), its fragments fa and the gathered
                 * tile at bo */
                int fcnt = 0;
                unsigned f1 = 0, f2 = 0;
                unsigned fz_dirty = 15u; /* FU: octets of Bo that may hold nonzeros (garbage at first) */
                uint32_t fa[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
                const uint32_t bo = sb + BOFF + g * BN * 64;
                auto dense = [&]() {
                    if constexpr (FU != 0) {
                        if (f1) wgmma_ra<BN>(acc[0], fa[0], desc_plain(bo, 128, 512));
                        if (f2) wgmma_ra<BN>(acc[0], fa[1], desc_plain(bo + 256, 128, 512));
                    }
                };
                auto issue = [&](auto set, int s) {
                    const uint32_t xb = sb + ((q + s) % STAGES) * STB;
#pragma unroll
                    for (int mi = 0; mi < MI; mi++) acc_fence(acc[mi]);
                    wgmma_fence();
#pragma unroll
                    for (int mi = 0; mi < MI; mi++)
                        wgmma_sp<BN>(acc[mi], a[set][0][mi], desc_sw128(xb), me[set][0][mi]);
#pragma unroll
                    for (int mi = 0; mi < MI; mi++)
                        wgmma_sp<BN>(acc[mi], a[set][1][mi], desc_sw128(xb + 64), me[set][1][mi]);
                    wgmma_commit();
                };
                auto reg_fence = [&](auto set) {
#pragma unroll
                    for (int kk = 0; kk < 2; kk++)
#pragma unroll
                        for (int mi = 0; mi < MI; mi++)
                            asm volatile("" : "+r"(a[set][kk][mi].x), "+r"(a[set][kk][mi].y), "+r"(a[set][kk][mi].z),
                                         "+r"(a[set][kk][mi].w), "+r"(me[set][kk][mi]));
                    if constexpr (FU != 0) {
                        if (set == 1) {
                            asm volatile("" : "+r"(fa[0][0]), "+r"(fa[0][1]), "+r"(fa[0][2]), "+r"(fa[0][3]));
                            asm volatile("" : "+r"(fa[1][0]), "+r"(fa[1][1]), "+r"(fa[1][2]), "+r"(fa[1][3]));
                        }
                    }
                };
                /* FU: gather pair s / 2's overflow columns of X (stages s and,
                 * when two, s + 1, both full and not yet released) into Bo and
                 * load its fragments. Every warp of the warpgroup has retired
                 * the previous pair's wgmmas (the loop retires stage s - 1
                 * first); the first barrier makes sure all have before Bo is
                 * rewritten, the second that Bo is written (and fenced into the
                 * async proxy, which wgmma reads through) before any issues.
                 * The kernel is bound by shared memory (the sparse wgmmas read
                 * X's tiles at close to its bandwidth), so the gather is laid
                 * out for the fewest wavefronts. In the 128-byte swizzle column
                 * k of row n sits at byte 2 k ^ 16 (n % 8): its bank is
                 * 4 (k / 8 ^ n % 8) + k / 2 % 4. Lane 8 p + r of a warp takes
                 * row r of an 8-row group and slots 2 p, 2 p + 1 of an octet;
                 * the upload orders each octet's even slots and its odd ones
                 * into distinct classes k / 2 % 4 where it can, so one load
                 * serves 32 distinct banks (the first layout, a row per lane
                 * and a slot per load, took 4 wavefronts per load), and one
                 * 32-bit store writes 8 rows x 8 slots of Bo. Octets past fcnt
                 * are zeroed once, not every pair (fz_dirty). */
                auto gather = [&](int s, bool two) {
                    if constexpr (FU != 0) {
                        const unsigned char *seg = sm + (s % STAGES) * STB + XST + WST + g * FSEG;
                        fcnt = *reinterpret_cast<const int *>(seg + 32);
                        f1 = __ballot_sync(0xffffffffu, fcnt > 0);
                        f2 = __ballot_sync(0xffffffffu, fcnt > 16);
                        if (!f1) return;
                        const int bar = 3 + g;
                        asm volatile("bar.sync %0, 128;\n" ::"r"(bar) : "memory");
                        const uint4 sl0 = *reinterpret_cast<const uint4 *>(seg), sl1 = *reinterpret_cast<const uint4 *>(seg + 16);
                        const int r = lane & 7, p = lane >> 3;
                        /* this warp's row groups: w4, w4 + 4, ... (BN / 32 of them) */
                        const uint32_t xr = sb + (s % STAGES) * STB + w4 * 1024 + r * 128, sw = (uint32_t)r << 4;
                        const uint32_t d1 = two ? (uint32_t)(((s + 1) % STAGES) - (s % STAGES)) * STB : 0u;
                        const uint32_t br = bo + w4 * 512 + r * 16 + p * 4;
                        constexpr int GW = BN / 32;
                        const int nch = (fcnt + 7) >> 3, nst = f2 ? 4 : 2; /* octets with slots; octets the wgmmas read */
#pragma unroll
                        for (int o = 0; o < 4; o++) {
                            if (o >= nst) break;
                            if (o < nch) {
                                const uint32_t wlo = o < 2 ? (&sl0.x)[2 * o] : (&sl1.x)[2 * o - 4];
                                const uint32_t whi = o < 2 ? (&sl0.x)[2 * o + 1] : (&sl1.x)[2 * o - 3];
                                const uint32_t pr = ((p >> 1) ? whi : wlo) >> (16 * (p & 1));
                                const uint32_t k0 = pr & 0xffu, k1 = (pr >> 8) & 0xffu;
                                const uint32_t a0 = xr + (((k0 & 63u) << 1) ^ sw) + ((k0 & 64u) ? d1 : 0u);
                                const uint32_t a1 = xr + (((k1 & 63u) << 1) ^ sw) + ((k1 & 64u) ? d1 : 0u);
                                const bool m0 = 8 * o + 2 * p < fcnt, m1 = 8 * o + 2 * p + 1 < fcnt;
                                uint32_t v0[GW], v1[GW]; /* every load in flight before the first store */
#pragma unroll
                                for (int j = 0; j < GW; j++) {
                                    asm volatile("ld.shared.u16 %0, [%1];\n" : "=r"(v0[j]) : "r"(a0 + j * 4096));
                                    asm volatile("ld.shared.u16 %0, [%1];\n" : "=r"(v1[j]) : "r"(a1 + j * 4096));
                                }
#pragma unroll
                                for (int j = 0; j < GW; j++) {
                                    const uint32_t v = (m0 ? v0[j] : 0u) | ((m1 ? v1[j] : 0u) << 16);
                                    asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(br + j * 2048 + o * 128), "r"(v) : "memory");
                                }
                            } else if (fz_dirty & (1u << o)) {
#pragma unroll
                                for (int j = 0; j < GW; j++)
                                    asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(br + j * 2048 + o * 128), "r"(0u) : "memory");
                            }
                        }
                        fz_dirty = ((1u << nch) - 1u) | (f2 ? 0u : fz_dirty & 12u);
                        const uint4 f0 = *reinterpret_cast<const uint4 *>(seg + 48 + (w4 * 32 + lane) * 16);
                        fa[0][0] = f0.x; fa[0][1] = f0.y; fa[0][2] = f0.z; fa[0][3] = f0.w;
                        if (f2) {
                            const uint4 v = __ldg(fz.a1 + (int64_t)*reinterpret_cast<const int *>(seg + 36) * 128 + w4 * 32 + lane);
                            fa[1][0] = v.x; fa[1][1] = v.y; fa[1][2] = v.z; fa[1][3] = v.w;
                        }
                        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
                        asm volatile("bar.sync %0, 128;\n" ::"r"(bar) : "memory");
                    }
                };
                /* retire the older in-flight stage s: its set is free, its smem
                 * goes back. FU: an even stage s is retired with stage s + 1's
                 * group and the pair's overflow group (possibly empty) still in
                 * flight; the overflow retires with stage s + 1. */
                auto retire = [&](auto set, int s) {
                    if (FU != 0 && set == 0) wgmma_wait<2>();
                    else wgmma_wait<1>();
                    reg_fence(set);
                    mbar_arrive(empty0 + ((q + s) % STAGES) * 8);
                };
                constexpr RegSet<0> S0{};
                constexpr RegSet<1> S1{};
                if (nk > 0) load(S0, 0);
                for (int s = 0; s < nk; s += 2) {
                    issue(S0, s);
                    if (s > 0) retire(S1, s - 1);
                    if (s + 1 >= nk) {
                        if constexpr (FU != 0) { /* a last pair of one stage: its overflow as a group of its own */
                            gather(s, false);
                            if (f1) {
                                acc_fence(acc[0]);
                                wgmma_fence();
                                dense();
                                wgmma_commit();
                            }
                        }
                        break;
                    }
                    load(S1, s + 1);
                    issue(S1, s + 1);
                    if constexpr (FU != 0) {
                        /* the pair's overflow while its two stages' sparse
                         * wgmmas run: gathered, then issued as a group of its
                         * own (empty where the pair has none, so every warp
                         * counts the same groups) */
                        gather(s, true);
                        acc_fence(acc[0]);
                        wgmma_fence();
                        dense();
                        wgmma_commit();
                    }
                    retire(S0, s);
                    if (s + 2 < nk) load(S0, s + 2);
                }
                wgmma_wait<0>(); /* unconditional: a wgmma path ptxas must assume divergent serializes them all (C7518) */
                reg_fence(S0);
                reg_fence(S1);
                if (nk > 0) mbar_arrive(empty0 + ((q + nk - 1) % STAGES) * 8);
                q += nk;
#pragma unroll
                for (int mi = 0; mi < MI; mi++) acc_fence(acc[mi]);
                /* only the epilogue is left: the next kernel may start its prologue */
                if (t + tstep >= ntiles) pdl_launch_dependents();
                if constexpr (PT != 0) {
                    pt_hand_over<MI, BM, BN, NC>(acc, sm + PIPE, e, (int64_t)mtc * 16, nc0, t == t0, g, w4, lane, tid);
                } else {
                    /* every consumer is done with the stages, which become the C tile */
                    tile_sync<1, NC>();
                    tile_epilogue<MI, BM, BN, NC>(acc, sm, e, (int64_t)mtc * 16, nc0, g, w4, lane, tid);
                }
            }
        }
#else
        (void)xmap; (void)wmap; (void)mt; (void)kt; (void)e; (void)cg; (void)fz;
        __trap();
#endif
    }
};

template <class KT>
__global__ void __launch_bounds__(KT::NT, KT::CPS_)
k24t_entry(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap,
           int mt, int kt, Epi e, ConvG cg, Fz fz) {
    KT::run(&xmap, &wmap, mt, kt, e, cg, fz);
}


/* sp_cuda_24_set_pdl; until set, what the environment allows
 * (SPRUN_CUDA_PDL, as for the backend's other kernels) */
static int g_pdl = -1;
static int g_h_stage = 1; /* sp_cuda_24_set_fp16_epilogue */

template <class KT>
static int launch24t(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, const Epi &e,
                     sp_cuda_status *st, const ConvG &cg = ConvG{}, const Fz &fz = Fz{}) {
    const int64_t gx = (w->m + KT::BM - 1) / KT::BM;
    const int64_t gy = (a->n + KT::BN - 1) / KT::BN;
    if (gy > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 spmm: n too large");
    PFN_cuTensorMapEncodeTiled_v12000 enc = encode_fn();
    if (!enc)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 spmm: cuTensorMapEncodeTiled unavailable");
    CUtensorMap xmap, wmap;
    /* W: [mt][kt] tiles of 576 B seen as 144 x 32-bit words; boxes of 2 tiles x TR rows */
    const cuuint64_t wdims[3] = {144, (cuuint64_t)w->kt, (cuuint64_t)w->mt};
    const cuuint64_t wstr[2] = {576, (cuuint64_t)w->kt * 576};
    const cuuint32_t wbox[3] = {144, 2, (cuuint32_t)KT::TR};
    const cuuint32_t estr[3] = {1, 1, 1};
    CUresult r = CUDA_SUCCESS;
    if (KT::IM_ == IM_GATHER) { /* the X map is unused: the producers gather X themselves */
        memset(&xmap, 0, sizeof xmap);
    } else if (KT::IM_ == IM_TMA) {
        PFN_cuTensorMapEncodeIm2col_v12000 enc2 = encode_im2col_fn();
        if (!enc2)
            return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 conv: cuTensorMapEncodeIm2col unavailable");
        /* NHWC input as {C, W, H, N}; window corners run over [-pad, extent - 1 + pad_end - (k - 1) * dil]
         * in steps of the stride (pad_end = pad: symmetric padding only) */
        const cuuint64_t dims[4] = {(cuuint64_t)cg.c, (cuuint64_t)cg.w, (cuuint64_t)cg.h, (cuuint64_t)cg.b};
        const cuuint64_t str[3] = {(cuuint64_t)cg.c * 2, (cuuint64_t)cg.c * cg.w * 2,
                                   (cuuint64_t)cg.c * cg.w * cg.h * 2};
        const int lo[2] = {-cg.pw, -cg.ph};
        const int hi[2] = {cg.pw - (cg.kw - 1) * cg.dw, cg.ph - (cg.kh - 1) * cg.dh};
        const cuuint32_t es[4] = {1, (cuuint32_t)cg.sw, (cuuint32_t)cg.sh, 1};
        r = enc2(&xmap, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, const_cast<__half *>(cg.x), dims, str, lo, hi, 64,
                 (cuuint32_t)KT::BN, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                 CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    } else if (const int rc = encode_f16_rows(&xmap, a->x, a->n, w->k, a->ldx, 64, KT::BN,
                                              CU_TENSOR_MAP_SWIZZLE_128B, "2:4 spmm", st)) {
        return rc; /* X: [n][k] fp16, rows ldx apart; boxes of 64 columns x BN rows, 128-byte swizzle */
    }
    if (r == CUDA_SUCCESS)
        r = enc(&wmap, CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, w->tiles, wdims, wstr, wbox, estr,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "2:4 spmm: cuTensorMapEncodeTiled failed");
    static int occ_cache[kDevSlots]; /* per instantiation; the limit is what matters here */
    int occ = 0;
    const int orc = occupancy_once(k24t_entry<KT>, KT::NT, KT::SMEM, occ_cache, &occ, st);
    if (orc) return orc;
    const int nk = (int)(w->kt / 2);
    const bool pdl = g_pdl < 0 ? pdl_env_enabled() : g_pdl != 0;
    Epi ek = e;
    ek.h_stage = g_h_stage;
    static int cl_cache[kDevSlots][9]; /* per instantiation */
    if (KT::PT_) { /* persistent: a CTA per SM and resident slot, no split-K */
        const int64_t nt = gx * gy, slots = (int64_t)sm_count() * (occ > 0 ? occ : 1);
        const cudaError_t lp = pdl_launch_cluster(pdl, 1u, k24t_entry<KT>, dim3((unsigned)(nt < slots ? nt : slots), 1u, 1u),
                                                  dim3(KT::NT), KT::SMEM, (cudaStream_t)a->stream, xmap, wmap, (int)w->mt,
                                                  (int)w->kt, ek, cg, fz);
        return (int)SP_CUDA_CHECK(st, lp);
    }
    /* the fused overflow's pairs of stages start at even stages: no split-K */
    const int z = KT::FU_ ? 1 : plan_split(k24t_entry<KT>, KT::NT, KT::SMEM, cl_cache, gx * gy, nk, sm_count() * KT::CPS_, 4, &ek);
    const cudaError_t launched =
        pdl_launch_cluster(pdl, ek.csplit ? (unsigned)z : 1u, k24t_entry<KT>, dim3((unsigned)gx, (unsigned)gy, (unsigned)z),
                           dim3(KT::NT), KT::SMEM, (cudaStream_t)a->stream, xmap, wmap, (int)w->mt, (int)w->kt, ek, cg, fz);
    return (int)SP_CUDA_CHECK(st, launched);
}

bool sm90_ok() {
    static signed char cached[kDevSlots]; /* 0 unknown, 1 no, 2 yes; per device */
    const int slot = dev_slot();
    if (slot >= 0 && cached[slot]) return cached[slot] == 2;
    int dev = 0, major = 0, minor = 0;
    const bool ok = cudaGetDevice(&dev) == cudaSuccess &&
                    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) ==
                        cudaSuccess &&
                    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) ==
                        cudaSuccess &&
                    major == 9 && minor == 0;
    if (slot >= 0) cached[slot] = ok ? 2 : 1;
    return ok;
}

static int g_tile_hint = 0; /* sp_cuda_24_set_tile_hint */

/* whether a launch without split-K takes the fp16 epilogue (h_stage_ok and
 * epi_rows_vec8 on the host): what the persistent kernel needs */
static bool h_epilogue_ok(const Epi &e) { return g_h_stage && epi_rows_vec8(e); }

template <int IM>
static int route24(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st,
                   const ConvG &cg) {
    /* a configuration the caller chose (plan-time tuning), else the
     * benchmarks' process-wide hint: one tile shape, whatever M and N */
    switch (a->config > 0 && a->config <= SP_CUDA_24_TILE_HINTS ? a->config : g_tile_hint) {
    case 1: return launch24t<K24t<1, 1, 16, 8, IM>>(w, a, e, st, cg);
    case 2: return launch24t<K24t<2, 1, 16, 8, IM>>(w, a, e, st, cg);
    case 3: return launch24t<K24t<1, 1, 32, 8, IM>>(w, a, e, st, cg);
    case 4: return launch24t<K24t<2, 1, 32, 8, IM>>(w, a, e, st, cg);
    case 5: return launch24t<K24t<1, 1, 64, 8, IM>>(w, a, e, st, cg);
    case 6: return launch24t<K24t<2, 1, 64, 8, IM>>(w, a, e, st, cg);
    case 7: return launch24t<K24t<1, 1, 128, 8, IM>>(w, a, e, st, cg);
    case 8: return launch24t<K24t<2, 1, 128, 6, IM>>(w, a, e, st, cg);
    case 9: return launch24t<K24t<2, 2, 128, 5, IM>>(w, a, e, st, cg);
    case 10: return launch24t<K24t<1, 1, 128, 4, IM, 2>>(w, a, e, st, cg);
    case 11: return launch24t<K24t<1, 2, 128, 4, IM, 2>>(w, a, e, st, cg);
    case 12: return launch24t<K24t<1, 1, 64, 4, IM, 3>>(w, a, e, st, cg);
    case 13: return launch24t<K24t<1, 1, 64, 4, IM, 4>>(w, a, e, st, cg);
    case 14: return launch24t<K24t<2, 1, 64, 4, IM, 2>>(w, a, e, st, cg);
    case 15: return launch24t<K24t<1, 2, 64, 4, IM, 2>>(w, a, e, st, cg);
    case 16: return launch24t<K24t<3, 1, 128, 6, IM>>(w, a, e, st, cg);
    case 17: return launch24t<K24t<2, 1, 256, 5, IM>>(w, a, e, st, cg);
    /* the persistent configurations (K24t's PT) take X tiles and the fp16
     * epilogue only; elsewhere the rule's choice below */
    case 18:
        if constexpr (IM == IM_TILES)
            if (h_epilogue_ok(e)) return launch24t<K24t<3, 1, 128, 5, IM_TILES, 1, 0, 1>>(w, a, e, st, cg);
        break;
    case 19:
        if constexpr (IM == IM_TILES)
            if (h_epilogue_ok(e)) return launch24t<K24t<2, 1, 256, 3, IM_TILES, 1, 0, 1>>(w, a, e, st, cg);
        break;
    default: break;
    }
    /* The largest CTA tile that still gives about one CTA per SM without
     * split-K: 128 x 256 or 192 x 128 (large M and N, below), 256 x 128,
     * 128 x 128, 128 x 64, else 64 x 64 (split-K makes up the rest); 64-row
     * tiles for weights of at most 64 rows. Plan-time tuning times the
     * others per layer (sp_cuda_24_tune_configs). Measured on the
     * H100 (bench/results/spmm-h100-*.md): e.g. M = K = 4096, N = 128:
     * 64 x 64 tiles 18.3 us vs 128 x 64 26.0 us; M = 512, K = 4608, N = 1568:
     * 128 x 64 22.3 us vs 128 x 128 34.6 us. */
    const int64_t m = w->m, n = a->n, k = w->k, want = (sm_count() * 3) / 4;
    auto tiles = [&](int64_t bm, int64_t bn) { return ((m + bm - 1) / bm) * ((n + bn - 1) / bn); };
    /* N <= 32: bound by streaming W; 64 x 16 or 64 x 32 tiles, 8 stages of
     * TMA copies in flight per CTA, split-K filling the GPU. With the split
     * summed in the CTA cluster, the 64-row tiles (2 CTAs per tile at
     * 4096^2) beat the 128-row ones (4 per tile): 13.90 against 14.85 us
     * at N = 16, 14.30 against 16.38 us at N = 32 (H100,
     * bench/results/spmm24-cluster-split-h100-2026-11-28.md); through the
     * workspace they had been level. */
    if (n <= 16) return launch24t<K24t<1, 1, 16, 8, IM>>(w, a, e, st, cg);
    if (n <= 32) return launch24t<K24t<1, 1, 32, 8, IM>>(w, a, e, st, cg);
    const int64_t sms = sm_count();
    /* 192 x 128 tiles (three consumer warpgroups) where M is a multiple of
     * 192 and they need fewer turns of the GPU than the 256 x 128 and
     * 128 x 128 (2 per SM) ones, counting a turn of a tile as its rows
     * (CTAs per SM share the SM): BERT-base's M = 768 and 2304 at 4096
     * tokens, e.g. 768 x 3072 with a residual 28.9 us against 41.1 us
     * (H100, bench/results/spmm24-tiles-h100-2026-11-26.md); ahead of the
     * residual rule below: 768 x 768 with a residual 16.5 us against its
     * 22.8. */
    auto turns = [&](int64_t bm, int64_t per_sm) {
        return (tiles(bm, 128) + sms * per_sm - 1) / (sms * per_sm) * bm * per_sm;
    };
    /* Short K (at most 18 stages a tile), tiles for every SM at least twice
     * and an epilogue with nothing after the fp16 rounding (bias, and ReLU
     * in registers): persistent 192 x 128 CTAs (K24t's PT), whose consumers
     * go on to the next tile while the producer warpgroup's idle warps
     * store this one. H200, bench/results/spmm24-pt-epilogue-warps-h200-2026-11-29.md:
     * BERT-base's 2304 x 768 at 4096 tokens with bias 24.0 against 28.1 us
     * (one-tile 192 x 128; cuBLAS 26.3). With a residual or GELU the
     * consumers apply them to the C tile themselves, and one-tile CTAs can
     * be faster (3072 x 768 with bias + GELU 41.6 against 40.2 us): left to
     * plan-time tuning. */
    if constexpr (IM == IM_TILES)
        if (m % 192 == 0 && k <= 1152 && tiles(192, 128) >= 2 * sms && h_epilogue_ok(e) && !e.residual &&
            (e.act == SP_CUDA_ACT_NONE || e.act == SP_CUDA_ACT_RELU))
            return launch24t<K24t<3, 1, 128, 5, IM_TILES, 1, 0, 1>>(w, a, e, st, cg);
    if (m % 192 == 0 && tiles(192, 128) >= want && turns(192, 1) < turns(256, 1) && turns(192, 1) < turns(128, 2))
        return launch24t<K24t<3, 1, 128, 6, IM>>(w, a, e, st, cg);
    /* Short-K or residual layers with tiles for every SM twice over: small
     * tiles, 4 CTAs per SM, so epilogues overlap other CTAs' loads (H200,
     * bench/results/spmm24-cps-h200-2026-11-26.md: ResNet-50's M = 64
     * layers at batch 32 1.2-1.8x faster than one 64 x 128 CTA per SM; with
     * bias + residual + ReLU 1.3-2.2x at M <= 1024, K <= 1152). Plan-time
     * tuning times the others per layer. */
    if (tiles(64, 64) >= 2 * sms && (m <= 64 || (e.residual && k <= 1152 && m <= 1024)))
        return launch24t<K24t<1, 1, 64, 4, IM, 4>>(w, a, e, st, cg);
    /* 128 x 256 tiles (two consumer warpgroups of m64n256k32: each A
     * fragment feeds twice the columns of the 256 x 128 tile's) for large
     * M and N: 4096^2 at N = 4096 133.8 us against 145.9 us (256 x 128)
     * and cuSPARSELt's 135.3 us; BERT's 3072 x 768 at 4096 tokens 34.7
     * against 37.1-37.4 us (same file as above) */
    if (m >= 1024 && m % 128 == 0 && n >= 1024 && tiles(128, 256) >= want)
        return launch24t<K24t<2, 1, 256, 5, IM>>(w, a, e, st, cg);
    /* otherwise, K <= 1152: 128 x 128 tiles of one consumer warpgroup, 2 CTAs per SM */
    if (m > 64 && k <= 1152 && tiles(128, 128) >= sms)
        return launch24t<K24t<1, 2, 128, 4, IM, 2>>(w, a, e, st, cg);
    if (m <= 64) {
        if (tiles(64, 128) >= want) return launch24t<K24t<1, 1, 128, 8, IM>>(w, a, e, st, cg);
        return launch24t<K24t<1, 1, 64, 8, IM>>(w, a, e, st, cg);
    }
    if ((m % 256 == 0 || m >= 1024) && tiles(256, 128) >= want)
        return launch24t<K24t<2, 2, 128, 5, IM>>(w, a, e, st, cg);
    if (tiles(128, 128) >= want) return launch24t<K24t<2, 1, 128, 6, IM>>(w, a, e, st, cg);
    if (tiles(128, 64) >= want) return launch24t<K24t<2, 1, 64, 8, IM>>(w, a, e, st, cg);
    return launch24t<K24t<1, 1, 64, 8, IM>>(w, a, e, st, cg);
}

int run24_sm90(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    return route24<IM_TILES>(w, a, e, st, ConvG{});
}

int run24_sm90_fused(const sp_cuda_24 *w, const void *segs, const void *a1, int64_t pairs,
                     const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    if (!w || !w->tiles || !segs || pairs != (w->kt / 2 + 1) / 2)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "2:4 spmm with fused overflow: no weight or segments");
    sp_cuda_spmm_args b = *a;
    b.workspace = nullptr; /* never split-K */
    b.workspace_bytes = 0;
    Epi e;
    int rc = make_epi(&b, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
    if (!sm90_ok() || !x_vec_ok(a, w->k))
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "2:4 spmm with fused overflow: needs an sm_90 GPU and X's rows 16-byte aligned");
    const Fz fz = {(const unsigned char *)segs, (const uint4 *)a1, pairs};
    /* 128 x 256 tiles (the 2:4 kernel's at large M and N) where they fill
     * the GPU, else 128 x 128; one slab of 64 rows per consumer warpgroup */
    const int64_t tiles256 = ((w->m + 127) / 128) * ((a->n + 255) / 256);
    if (tiles256 >= (sm_count() * 3) / 4)
        return launch24t<K24t<2, 1, 256, 4, IM_TILES, 1, 1>>(w, &b, e, st, ConvG{}, fz);
    return launch24t<K24t<2, 1, 128, 5, IM_TILES, 1, 1>>(w, &b, e, st, ConvG{}, fz);
}

} // namespace spmm

extern "C" int sp_cuda_24_conv_implicit_ok(void) { return spmm::sm90_ok() ? 1 : 0; }

extern "C" int sp_cuda_24_tune_configs(int *cfg, int max) {
    /* the rule's choice, then the configurations that won somewhere in the
     * sweeps (bench/results/spmm24-cps-h200-2026-11-26.md,
     * spmm24-tiles-h100-2026-11-26.md; the persistent 18 and 19:
     * spmm24-pt-epilogue-warps-h200-2026-11-29.md) */
    static const int won[] = {0, 13, 11, 12, 14, 9, 8, 6, 16, 17, 1, 18, 19};
    const int n = spmm::sm90_ok() ? (int)(sizeof won / sizeof won[0]) : 1;
    int i = 0;
    for (; i < n && i < max; i++) cfg[i] = won[i];
    return i;
}

extern "C" void sp_cuda_24_set_pdl(int on) { spmm::g_pdl = on ? 1 : 0; }

extern "C" void sp_cuda_24_set_fp16_epilogue(int on) { spmm::g_h_stage = on ? 1 : 0; }

extern "C" void sp_cuda_24_set_tile_hint(int hint) { spmm::g_tile_hint = hint >= 0 && hint <= SP_CUDA_24_TILE_HINTS ? hint : 0; }

extern "C" int sp_cuda_24_conv_implicit(const sp_cuda_24 *w, const sp_cuda_conv_geom *g,
                                        const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    using namespace spmm;
    if (!w || !w->tiles || !g) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "2:4 conv: no weight or geometry");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
    if (!sm90_ok())
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 implicit-GEMM conv: needs an sm_90 GPU");
    if (g->c % 64 || ((uintptr_t)a->x & 15) || w->k != g->c * g->kh * g->kw || a->n != g->b * g->oh * g->ow)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "2:4 implicit-GEMM conv: needs C %% 64 == 0, a 16-byte aligned input and "
                            "K = C * kh * kw, N = b * oh * ow");
    if (g->h > INT32_MAX / 2 || g->w > INT32_MAX / 2 || g->oh > INT32_MAX / 2 || g->ow > INT32_MAX / 2 ||
        a->n > INT32_MAX - 256)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 implicit-GEMM conv: image or batch too large");
    const ConvG cg = {(const __half *)a->x, (int)g->h,  (int)g->w,  (int)g->c,  (int)g->oh, (int)g->ow, (int)g->kw,
                      (int)g->sh,           (int)g->sw, (int)g->ph, (int)g->pw, (int)g->dh, (int)g->dw,
                      (int)g->b,            (int)g->kh};
    /* The copy engine's im2col mode takes window corners within [-128, 127]
     * of the image's edges, strides up to 8 and symmetric padding (the
     * output extent must be the one its traversal produces) */
    const bool tma_ok = g->pw <= 128 && g->ph <= 128 && (g->kw - 1) * g->dw - g->pw <= 128 &&
                        (g->kh - 1) * g->dh - g->ph <= 128 && g->sw <= 8 && g->sh <= 8 && g->b <= INT32_MAX &&
                        (g->kw - 1) * g->dw < 65536 && (g->kh - 1) * g->dh < 65536 &&
                        g->ow == (g->w + 2 * g->pw - (g->kw - 1) * g->dw - 1) / g->sw + 1 &&
                        g->oh == (g->h + 2 * g->ph - (g->kh - 1) * g->dh - 1) / g->sh + 1;
    if (g->gather != SP_CUDA_GATHER_COPIES && tma_ok) return route24<IM_TMA>(w, a, e, st, cg);
    return route24<IM_GATHER>(w, a, e, st, cg);
}

