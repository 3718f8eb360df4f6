/*
 * spmm_csr.cu - unstructured (CSR) SpMM, two paths (the second with two kernels).
 *
 * (a) Tensor cores on the tiled bitmap layout "TB16x64" built at upload
 *     (after Flash-LLM's idea: load the weight sparse, expand it on chip,
 *     compute dense with mma.sync; on sm_90 the same tiles go through
 *     wgmma instead, spmm_csr_sm90.cu). Tile (mt, kt) = rows 16*mt.., columns
 *     64*kt..; its 1024 elements are numbered in A-fragment order of four
 *     m16n8k16 fragments: lane l (gid = l/4, tig = l%4) owns positions p =
 *     0..31 with kk = p/8 (16-column step), reg = (p%8)/2, h = p%2:
 *         row = gid + 8*(reg&1),  col = 16*kk + 8*(reg>>1) + 2*tig + h.
 *     bitmap word l of the tile has bit p set iff that element is nonzero;
 *     the tile's values follow lane by lane, p increasing, padded to 16 B.
 *     The CTA copies whole tiles (bitmap + values; their offsets copied into
 *     shared memory once per CTA, spmm_common.cuh's meta_load) into shared
 *     memory with cp.async beside X; a lane then expands its own
 *     32 elements straight into its A registers: one prefix sum of
 *     popcounts over the warp gives its run of values; each byte of its
 *     bitmap is one A fragment (16-column step), whose first value sits
 *     popc(lower bytes) into the run, and inside the byte the offset
 *     advances by one per set bit (four independent chains, predicated
 *     shared loads; 7-10 % faster than a popcount per position, H200
 *     2026-11-25; with 32-bit shared addresses advanced in place, take16,
 *     about 4 instructions per position instead of 9: 3-15 % faster at
 *     N <= 32, H200 2026-11-26). (A 3-byte-per-nonzero layout expanded by scattering
 *     into a zeroed per-warp copy, work proportional to the nonzeros, was
 *     tried the same day and measured 1.0-1.25x slower at every N and
 *     density from 50 to 90 %: the scatter's stores, the barriers and the
 *     larger worst-case stage slot cost more than the popcounts.) (A position-major
 *     value order expanded by ballots was tried on 2026-11-25 and measured
 *     1.2-1.4x slower on the H100: the serial offset chain costs more than
 *     the bank conflicts it removes.) W costs 128 B per
 *     tile + 2 B per nonzero (1.125 B/element at 50 %, 0.325 at 90 %),
 *     against 4-6 B per nonzero for CSR.
 *     The pair layout ("TP16x64", below SP_CSR_PAIR_TILES_BELOW density):
 *     a bit per pair of adjacent positions (the two halves of one A
 *     register), 64 B per tile, and each pair holding a nonzero stored
 *     whole, so a lane fills a register with one predicated 32-bit shared
 *     load instead of two 16-bit ones and a merge (csr_tiles.cuh, expand_pairs). It
 *     costs 0.0625 + 2 * P B/element, P the share of pairs kept (random
 *     patterns: 1 - (1 - density)^2; 1.56 at 50 %, 0.44 at 90 %). ncu had
 *     put the N = 16 kernel at about 470 instructions issued per tile;
 *     halving the expansion bought 1.03-1.26x from 70 % sparsity.
 * (b) CUDA cores ("SIMT"): a warp per row, lanes over the row's nonzeros.
 *     fp16 weights with 16-bit columns take the "XT" kernel when the
 *     workspace has room for X transposed (sp_cuda_csr_workspace_bytes): X
 *     is transposed once per call into the workspace, then read from L2 in
 *     whole sectors (see csr_xt). Its work follows the nonzeros, so it beats
 *     (a) on very sparse weights: H100, M = K = 4096, from 90 % at N = 16
 *     (11.6 us at 98 % against 19.1 for (a)) and from 95 % at N = 128
 *     (29.2 against 51.0 at 98 %); sp_cuda_csr_spmm's AUTO rule and the
 *     runtime's plan-time tuning choose between them. Without that
 *     workspace the "XS" kernel stages 16 tokens of X transposed in each
 *     CTA's shared memory (csr_xs; 19 us at 98 %, N = 16, H200); fp32
 *     weights and 32-bit columns take the oldest kernel, NT rows of X in
 *     shared memory.
 */
#include "kernels/cuda/csr_tiles.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/spmm_common.cuh"
#include "runtime/cost_model.h" /* SP_CSR_PAIR_TILES_BELOW */

#include <stdlib.h>
#include <string.h>

namespace spmm {

/* SLOT16: a tile's shared-memory slot in 16-byte pieces (8 of bitmap, then
 * values): 136 holds any tile (1024 values); the compact slots 64 (448
 * values) and 24 (128) serve weights whose largest tile fits (sp_cuda_csr.
 * tile_max), so that the stages of a sparse weight take a fraction of the
 * shared memory and more CTAs fit an SM. */
struct CsrTileParams {
    const uint4 *tiles;
    const int32_t *off;
    int mt, kt;
};
template <int WM_, int SLOT16, bool PAIR> struct FCsrT {
    static constexpr int WM = WM_;
    static constexpr int CW = 64;
    static constexpr bool W_SMEM = true;
    static constexpr int SLOT = SLOT16 * 16;
    using Params = CsrTileParams; /* one type for every slot size */
    struct Frag {};
    template <int BM> __host__ __device__ static constexpr int wchunk() { return (BM / 16) * SLOT; }
    __device__ static int row_block(const Params &, int bx) { return bx; }
    __device__ static int nchunks(const Params &p, int) { return p.kt; }
    __device__ static int chunk_k0(const Params &, int, int c, const Meta &) { return c * 64; }
    /* the tile offsets of the CTA's BM/16 tile rows over chunks [cbeg, cend]
     * (one past the end: a tile's size is the next offset minus its own) */
    static constexpr int META_CAP = 2048;
    template <int BM>
    __device__ static int meta_load(const Params &p, int *ms, int mb, int cbeg, int cend) {
        constexpr int MT = BM / 16;
        const int stride = cend - cbeg + 1;
        if (MT * stride > META_CAP) return -1;
        for (int i = threadIdx.x; i < MT * stride; i += blockDim.x) {
            const int t = i / stride, mt = mb * MT + t;
            ms[i] = mt < p.mt ? __ldg(p.off + (int64_t)mt * p.kt + cbeg + i % stride) : 0;
        }
        return stride;
    }
    /* a warp copies whole tiles; their piece offsets are read a stage ahead */
    template <int BM, int CPS, int NT> struct WPre {
        static constexpr int MT = BM / 16, T = CPS * MT, NW = NT / 32, TPW = (T + NW - 1) / NW;
        int b[TPW], e[TPW];
    };
    template <int BM, int CPS, int NT>
    __device__ static void w_pre(const Params &p, WPre<BM, CPS, NT> &q, int mb, int c0, int cend,
                                 const Meta &md) {
        using Q = WPre<BM, CPS, NT>;
        const int warp = threadIdx.x >> 5;
#pragma unroll
        for (int r = 0; r < Q::TPW; r++) {
            const int j = warp + r * Q::NW;
            const int c = c0 + j / Q::MT, mt = mb * Q::MT + j % Q::MT;
            if (j < Q::T && c < cend && mt < p.mt) {
                if (md.ptr) {
                    const int *o = md.ptr + (j % Q::MT) * md.stride + (c - md.cbeg);
                    q.b[r] = o[0];
                    q.e[r] = o[1];
                } else {
                    const int64_t ti = (int64_t)mt * p.kt + c;
                    q.b[r] = __ldg(p.off + ti);
                    q.e[r] = __ldg(p.off + ti + 1);
                }
            } else {
                q.b[r] = q.e[r] = 0;
            }
        }
    }
    template <int BM, int CPS, int NT>
    __device__ static void load_w(const Params &p, const WPre<BM, CPS, NT> &q, unsigned char *dst,
                                  int, int, int) {
        using Q = WPre<BM, CPS, NT>;
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
        for (int r = 0; r < Q::TPW; r++) {
            const int j = warp + r * Q::NW;
            if (j >= Q::T) break;
            unsigned char *slot = dst + (j / Q::MT) * wchunk<BM>() + (j % Q::MT) * SLOT;
            const int n = q.e[r] - q.b[r];
            for (int i = lane; i < n; i += 32) cp_async16(slot + i * 16, p.tiles + q.b[r] + i, 16);
        }
    }
    template <int WN, int LD>
    __device__ static void mma_s(const Params &p, const unsigned char *w, float (&acc)[WM][WN][4],
                                 const __half *xw, int wm, int mtile0, int lane) {
#pragma unroll
        for (int i = 0; i < WM; i++) {
            if (mtile0 + i >= p.mt) continue;
            const unsigned char *slot = w + (wm * WM + i) * SLOT;
            uint32_t a[4][4];
            expand_tile<PAIR>(slot, a, lane);
#pragma unroll
            for (int j = 0; j < WN; j++) {
                const __half *row = xw + (j * 8 + (lane & 7)) * LD + (lane >> 3) * 8;
#pragma unroll
                for (int kq = 0; kq < 2; kq++) {
                    uint32_t b[4];
                    ldmatrix_x4(b, row + kq * 32);
                    mma_16816(acc[i][j], a[2 * kq], b[0], b[1]);
                    mma_16816(acc[i][j], a[2 * kq + 1], b[2], b[3]);
                }
            }
        }
    }
};

/* the format of slot size SLOT16 in one layout, as Kernel<> takes it */
template <int SLOT16, bool PAIR> struct FCsr {
    template <int WM> using T = FCsrT<WM, SLOT16, PAIR>;
};

static int g_compact_slots = 1; /* sp_cuda_csr_set_compact_slots */

/* the smallest slot (16-byte pieces) w's largest tile fits: 24, 64 or the
 * full 136 (also without compact slots or a known tile_max) */
static int tile_slot(const sp_cuda_csr *w) {
    return !g_compact_slots || w->tile_max <= 0 ? 136 : w->tile_max <= 24 ? 24 : w->tile_max <= 64 ? 64 : 136;
}

template <bool PAIR, int WM, int WN, int WARPS_M, int WARPS_N, int WARPS_K, int STAGES>
static int run_tc_layout(const CsrTileParams &p, int64_t gx, const sp_cuda_csr *w, const sp_cuda_spmm_args *a,
                         const Epi &e, const int (&per_sm)[3], sp_cuda_status *st) {
    if (!x_vec_ok(a, w->k))
        return launch<Kernel<FCsr<136, PAIR>::template T, WM, WN, WARPS_M, WARPS_N, WARPS_K, 1, STAGES, false>>(
            p, gx, (int)w->kt, per_sm[0], a, w->k, e, st);
    /* the smallest slot the largest tile fits (16-byte X rows only) */
    const int slot = tile_slot(w);
    if (slot == 24)
        return launch<Kernel<FCsr<24, PAIR>::template T, WM, WN, WARPS_M, WARPS_N, WARPS_K, 1, STAGES, true>>(
            p, gx, (int)w->kt, per_sm[2], a, w->k, e, st);
    if (slot == 64)
        return launch<Kernel<FCsr<64, PAIR>::template T, WM, WN, WARPS_M, WARPS_N, WARPS_K, 1, STAGES, true>>(
            p, gx, (int)w->kt, per_sm[1], a, w->k, e, st);
    return launch<Kernel<FCsr<136, PAIR>::template T, WM, WN, WARPS_M, WARPS_N, WARPS_K, 1, STAGES, true>>(
        p, gx, (int)w->kt, per_sm[0], a, w->k, e, st);
}

template <int WM, int WN, int WARPS_M, int WARPS_N, int WARPS_K, int STAGES>
static int run_tc(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const Epi &e, const int (&per_sm)[3],
                  sp_cuda_status *st) {
    CsrTileParams p;
    p.tiles = (const uint4 *)w->tiles;
    p.off = w->tile_off;
    p.mt = (int)w->mt;
    p.kt = (int)w->kt;
    constexpr int BM = 16 * WM * WARPS_M;
    const int64_t gx = (w->m + BM - 1) / BM;
    if (w->tile_pairs) return run_tc_layout<true, WM, WN, WARPS_M, WARPS_N, WARPS_K, STAGES>(p, gx, w, a, e, per_sm, st);
    return run_tc_layout<false, WM, WN, WARPS_M, WARPS_N, WARPS_K, STAGES>(p, gx, w, a, e, per_sm, st);
}

/* Launch configurations of the tiled path, one per range of N: warp tile
 * WM x WN (16-row tiles x 8-column steps), warps along M, N and K, pipeline
 * stages, CTAs per SM a split-K may count on. A CTA expands each of its
 * tiles WARPS_N times (once per warp column), so all four keep WARPS_N = 1
 * and give a warp all the CTA's columns. Chosen by spmm_bench --csr-sweep on
 * the H200, 2026-11-25 (M = K = 4096, 50-90 %, 20 configurations): against
 * the former choices (a tile expanded two to four times per CTA column at
 * N >= 32) 1.17x at N = 16, 1.22x at 32, 1.41x at 64, 1.35x at 128, 1.27x
 * at 1024 (50 %). Re-swept 2026-11-26 after the take16 expansion (H200,
 * bench/results/csr-sweep-h200-2026-11-26.md): N > 256 now takes the
 * 64-column configuration (5-12 % ahead of the 128-column one at N = 1024);
 * two chunks per warp per stage, or two tiles per warp, were 1.1-4x slower
 * at every N and were not kept. */
struct TcCfg {
    int wm, wn, warps_m, warps_n, warps_k, stages;
    int per_sm[3]; /* with the full slot, the 64-piece one, the 24-piece one */
};
static constexpr TcCfg kTcCfg[] = {
    {1, 2, 4, 1, 2, 4, {2, 3, 4}},  /* N <= 16 */
    {1, 4, 4, 1, 2, 4, {2, 3, 4}},  /* N <= 32 */
    {1, 8, 8, 1, 1, 3, {1, 2, 2}},  /* N <= 64, and N > 256 */
    {1, 16, 8, 1, 1, 3, {1, 1, 2}}, /* 64 < N <= 256 */
};
static const int kMmaCfgs = (int)(sizeof kTcCfg / sizeof kTcCfg[0]);
/* Configurations kMmaCfgs.. run the sm_90 kernel (spmm_csr_sm90.cu), its
 * configurations 0..7 (CTA tiles and CTAs per SM listed there); where it cannot run
 * (not sm_90, X's rows not 16-byte aligned) each runs the mma.sync
 * configuration of its N range instead (kWgFallback). */
static constexpr int kWgCfgs = 8;
static constexpr int kWgFallback[kWgCfgs] = {0, 1, 2, 3, 2, 2, 3, 3};
static const int kTcCfgs = kMmaCfgs + kWgCfgs;

static int run_tc_cfg(int i, const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const Epi &e,
                      sp_cuda_status *st) {
#define SP_TC(I, WM, WN, M, N, K, S)                                                           \
    case I:                                                                                    \
        static_assert(WM == kTcCfg[I].wm && WN == kTcCfg[I].wn && M == kTcCfg[I].warps_m &&    \
                          N == kTcCfg[I].warps_n && K == kTcCfg[I].warps_k &&                  \
                          S == kTcCfg[I].stages,                                               \
                      "kTcCfg row and instantiation differ");                                  \
        return run_tc<WM, WN, M, N, K, S>(w, a, e, kTcCfg[I].per_sm, st);
    if (i >= kMmaCfgs && i < kTcCfgs) {
        if (sm90_ok() && x_vec_ok(a, w->k)) return run_csr_sm90(i - kMmaCfgs, w, a, e, tile_slot(w) * 16, st);
        i = kWgFallback[i - kMmaCfgs];
    }
    switch (i) {
        SP_TC(0, 1, 2, 4, 1, 2, 4) SP_TC(1, 1, 4, 4, 1, 2, 4) SP_TC(2, 1, 8, 8, 1, 1, 3)
        SP_TC(3, 1, 16, 8, 1, 1, 3)
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: no such tiled configuration");
    }
#undef SP_TC
}

/* the configuration sp_cuda_csr_spmm takes for weight w at n columns. On
 * sm_90 the wgmma kernel (spmm_csr_sm90.cu), by the sweep of 2026-11-27
 * (H100, bench/results/csr-wgmma-h100-2026-11-27.md, M = K = 4096, pair
 * layout, 50-98 % sparsity): N <= 16 128 x 16 tiles, two consumer
 * warpgroups, 2 CTAs per SM (16.9-20.6 us against 16.2-22.0 for the
 * mma.sync kernel); N <= 32 128 x 32, one warpgroup of two slabs (20.6-23.9
 * against 20.1-25.8); N <= 64 64 x 64, 3 CTAs per SM (20.6-25.1 against
 * 25.9-34.6); N <= 256 64 x 128, 2 CTAs per SM (27.3-31.2 against
 * 38.9-49.7 at N = 128); beyond, 128 x 256 (54.1-57.1 against 195-237 at
 * N = 1024). Elsewhere the mma.sync configurations: a
 * pair-layout weight whose tiles fit the compact slots (at most 64 pieces:
 * random patterns from about 80 % sparsity) takes the 64-column one at
 * 64 < N <= 256 too: N = 128, 80-98 %, 38.6-40.6 us against 46.0-46.5 for
 * the 128-column one (H100, bench/results/csr-pair-h100-2026-11-27.md). */
static int tc_default_cfg(const sp_cuda_csr *w, int64_t n) {
    if (sm90_ok()) return kMmaCfgs + (n <= 16 ? 0 : n <= 32 ? 1 : n <= 64 ? 5 : n <= 256 ? 6 : 4);
    if (n <= 16) return 0;
    if (n <= 32) return 1;
    if (n <= 64 || n > 256) return 2;
    if (w->tile_pairs && tile_slot(w) <= 64) return 2;
    return 3;
}

/* ---- SIMT path --------------------------------------------------------- */
template <class T> __device__ __forceinline__ float tof(T v);
template <> __device__ __forceinline__ float tof<float>(float v) { return v; }
template <> __device__ __forceinline__ float tof<__half>(__half v) { return __half2float(v); }
template <class T> __device__ __forceinline__ T fromf(float v);
template <> __device__ __forceinline__ float fromf<float>(float v) { return v; }
template <> __device__ __forceinline__ __half fromf<__half>(float v) { return __float2half_rn(v); }

/* NT rows of X per CTA (in shared memory when SMEM_X), 8 warps, a warp per
 * output row; rows taken in row_order so long rows start first. */
template <class T, class IDX, int NT, bool SMEM_X>
__global__ void __launch_bounds__(256)
    csr_simt(const int32_t *__restrict__ row_ptr, const IDX *__restrict__ col,
             const T *__restrict__ val, const int32_t *__restrict__ order, int64_t m, int64_t k,
             int64_t n, const T *__restrict__ x, int64_t ldx, T *__restrict__ y, int64_t ldy,
             const T *__restrict__ bias, const T *__restrict__ res, int64_t ldr, int act,
             float alpha, float beta, int rows_per_cta) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *xs = reinterpret_cast<T *>(smem_raw);
    const int64_t n0 = (int64_t)blockIdx.y * NT;
    if (SMEM_X) {
        for (int64_t i = threadIdx.x; i < (int64_t)NT * k; i += blockDim.x) {
            const int64_t r = i / k, c = i % k;
            xs[i] = (n0 + r < n) ? x[(n0 + r) * ldx + c] : fromf<T>(0.0f);
        }
        __syncthreads();
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int rr = warp; rr < rows_per_cta; rr += 8) {
        const int64_t oi = (int64_t)blockIdx.x * rows_per_cta + rr;
        if (oi >= m) break;
        const int64_t row = order[oi];
        const int32_t b = row_ptr[row], en = row_ptr[row + 1];
        float acc[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) acc[t] = 0.0f;
        for (int32_t j = b + lane; j < en; j += 32) {
            const float v = tof<T>(val[j]);
            const int64_t c = (int64_t)col[j];
#pragma unroll
            for (int t = 0; t < NT; t++) {
                float xv;
                if (SMEM_X)
                    xv = tof<T>(xs[t * k + c]);
                else
                    xv = (n0 + t < n) ? tof<T>(x[(n0 + t) * ldx + c]) : 0.0f;
                acc[t] = fmaf(v, xv, acc[t]);
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int d = 16; d > 0; d >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], d);
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (lane == t && n0 + t < n) {
                float v = acc[t];
                if (bias) v += tof<T>(bias[row]);
                if (res) v += tof<T>(res[(n0 + t) * ldr + row]);
                y[(n0 + t) * ldy + row] = fromf<T>(act_apply(act, v, alpha, beta));
            }
    }
}

template <class T, class IDX, int NT>
static int run_simt_t(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const IDX *col,
                      sp_cuda_status *st) {
    const int rows_per_cta = 32;
    const int64_t gx = (w->m + rows_per_cta - 1) / rows_per_cta;
    const int64_t gy = (a->n + NT - 1) / NT;
    if (gy > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: n too large");
    const size_t smem = (size_t)NT * (size_t)w->k * sizeof(T);
    cudaStream_t s = (cudaStream_t)a->stream;
    if (smem <= 96 * 1024) {
        if (smem > 48 * 1024) {
            cudaError_t e = SP_CUDA_CHECK(
                st, cudaFuncSetAttribute(csr_simt<T, IDX, NT, true>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));
            if (e) return (int)e;
        }
        csr_simt<T, IDX, NT, true><<<dim3((unsigned)gx, (unsigned)gy), 256, smem, s>>>(
            w->row_ptr, col, (const T *)w->values, w->row_order, w->m, w->k, a->n,
            (const T *)a->x, a->ldx, (T *)a->y, a->ldy, (const T *)a->bias,
            (const T *)a->residual, a->ldr, a->act, a->alpha, a->beta, rows_per_cta);
    } else {
        csr_simt<T, IDX, NT, false><<<dim3((unsigned)gx, (unsigned)gy), 256, 0, s>>>(
            w->row_ptr, col, (const T *)w->values, w->row_order, w->m, w->k, a->n,
            (const T *)a->x, a->ldx, (T *)a->y, a->ldy, (const T *)a->bias,
            (const T *)a->residual, a->ldr, a->act, a->alpha, a->beta, rows_per_cta);
    }
    return (int)SP_CUDA_CHECK(st, cudaGetLastError());
}

template <class T> static int run_simt(const sp_cuda_csr *w, const sp_cuda_spmm_args *a,
                                       sp_cuda_status *st) {
    /* NT = 8 rows of X per CTA while they fit in shared memory, else fewer */
    const size_t row = (size_t)w->k * sizeof(T);
    if (w->col16) {
        if (8 * row <= 96 * 1024) return run_simt_t<T, uint16_t, 8>(w, a, w->col16, st);
        if (2 * row <= 96 * 1024) return run_simt_t<T, uint16_t, 2>(w, a, w->col16, st);
        return run_simt_t<T, uint16_t, 1>(w, a, w->col16, st);
    }
    return run_simt_t<T, int32_t, 1>(w, a, w->col32, st);
}

/* ---- SIMT path with X staged transposed ("XS", fp16, 16-bit columns) ----
 * A CTA copies 16 rows of X (tokens n0..n0+15, all K) into shared memory as
 * xs[k][16]: the 16 tokens of one column of W's are 32 contiguous bytes, two
 * 16-byte loads per nonzero. Warps then take W's rows in row_order (longest
 * first, round-robin over the grid); lanes take groups of 4 nonzeros with
 * 8-byte loads of values and columns (the arrays are padded to a multiple of
 * 4) and accumulate the 16 outputs in fp32; a transposing butterfly leaves
 * output t of the row on lanes 2t and 2t + 1. Work and bytes are
 * proportional to the nonzeros (4 B each); it was written to win at small N
 * wherever they take fewer bytes than the dense weight, but it is latency-
 * bound (ncu, bench/results/csr-simt-xs-h200-2026-11-26.md) and loses to
 * the tiled path at every N and sparsity measured. */
constexpr int XS_NT = 16;
constexpr int XS_THREADS = 512;
constexpr int XS_U = 4; /* groups of 4 nonzeros in flight per lane */
constexpr size_t XS_SMEM_MAX = 200 * 1024;

__device__ __forceinline__ void xs_fma(float (&acc)[XS_NT], float v, const __half *xrow) {
    const uint4 q0 = reinterpret_cast<const uint4 *>(xrow)[0];
    const uint4 q1 = reinterpret_cast<const uint4 *>(xrow)[1];
    const __half2 *h0 = reinterpret_cast<const __half2 *>(&q0);
    const __half2 *h1 = reinterpret_cast<const __half2 *>(&q1);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __half22float2(h0[i]), g = __half22float2(h1[i]);
        acc[2 * i] = fmaf(v, f.x, acc[2 * i]);
        acc[2 * i + 1] = fmaf(v, f.y, acc[2 * i + 1]);
        acc[8 + 2 * i] = fmaf(v, g.x, acc[8 + 2 * i]);
        acc[8 + 2 * i + 1] = fmaf(v, g.y, acc[8 + 2 * i + 1]);
    }
}

template <bool VEC>
__global__ void __launch_bounds__(XS_THREADS)
    csr_xs(const int32_t *__restrict__ row_ptr, const uint16_t *__restrict__ col,
           const __half *__restrict__ val, const int32_t *__restrict__ order, int m, int k,
           int64_t n, const __half *__restrict__ x, int64_t ldx, __half *__restrict__ y,
           int64_t ldy, const __half *__restrict__ bias, const __half *__restrict__ res,
           int64_t ldr, int act, float alpha, float beta) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __half *xs = reinterpret_cast<__half *>(smem_raw);
    const int64_t n0 = (int64_t)blockIdx.y * XS_NT;
    const int nv = (int)(n - n0 < XS_NT ? n - n0 : XS_NT);
    /* item i = (column block, token t), t fastest: neighbouring threads
     * store neighbouring halves */
    if (VEC) {
        /* 8 loads in flight per thread before their stores: one at a time,
         * the copy waited a memory latency per 16 bytes (about 15 us for
         * K = 4096, H200) */
        const int items = (k / 8) * XS_NT;
        for (int i0 = threadIdx.x; i0 < items; i0 += 8 * XS_THREADS) {
            uint4 q[8];
#pragma unroll
            for (int r = 0; r < 8; r++) {
                const int i = i0 + r * XS_THREADS, t = i & (XS_NT - 1), kb = i / XS_NT;
                q[r] = make_uint4(0u, 0u, 0u, 0u);
                if (i < items && t < nv) q[r] = __ldg(reinterpret_cast<const uint4 *>(x + (n0 + t) * ldx) + kb);
            }
#pragma unroll
            for (int r = 0; r < 8; r++) {
                const int i = i0 + r * XS_THREADS, t = i & (XS_NT - 1), kb = i / XS_NT;
                if (i >= items) break;
                const __half *h = reinterpret_cast<const __half *>(&q[r]);
#pragma unroll
                for (int j = 0; j < 8; j++) xs[(kb * 8 + j) * XS_NT + t] = h[j];
            }
        }
    } else {
        for (int i = threadIdx.x; i < k * XS_NT; i += XS_THREADS) {
            const int t = i & (XS_NT - 1), kk = i / XS_NT;
            xs[kk * XS_NT + t] = t < nv ? x[(n0 + t) * ldx + kk] : __float2half(0.0f);
        }
    }
    __syncthreads();
    const int lane = threadIdx.x & 31;
    constexpr int NW = XS_THREADS / 32;
    const uint2 *val4 = reinterpret_cast<const uint2 *>(val);
    const uint2 *col4 = reinterpret_cast<const uint2 *>(col);
    for (int oi = blockIdx.x * NW + (threadIdx.x >> 5); oi < m; oi += gridDim.x * NW) {
        const int row = __ldg(order + oi);
        const int b = __ldg(row_ptr + row), en = __ldg(row_ptr + row + 1);
        float acc[XS_NT];
#pragma unroll
        for (int t = 0; t < XS_NT; t++) acc[t] = 0.0f;
        const int gend = (en + 3) >> 2;
        for (int g = (b >> 2) + lane; g < gend; g += 32 * XS_U) {
            uint2 vv[XS_U], cc[XS_U];
#pragma unroll
            for (int u = 0; u < XS_U; u++) {
                const int gg = g + 32 * u;
                vv[u] = gg < gend ? __ldg(val4 + gg) : make_uint2(0u, 0u);
                cc[u] = gg < gend ? __ldg(col4 + gg) : make_uint2(0u, 0u);
            }
#pragma unroll
            for (int u = 0; u < XS_U; u++) {
                const int j0 = 4 * (g + 32 * u);
                const __half *hv = reinterpret_cast<const __half *>(&vv[u]);
                const uint16_t *hc = reinterpret_cast<const uint16_t *>(&cc[u]);
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (j0 + e >= b && j0 + e < en)
                        xs_fma(acc, __half2float(hv[e]), xs + (int)hc[e] * XS_NT);
            }
        }
        /* butterfly: each step keeps half of the outputs and adds the
         * partner lane's copy of them; lane bits 4..1 pick output t */
#pragma unroll
        for (int s = 3; s >= 0; s--) {
            const int w = 1 << s; /* outputs kept: acc[0..w) after the step */
            const bool up = (lane >> (s + 1)) & 1;
#pragma unroll
            for (int i = 0; i < w; i++) {
                const float send = up ? acc[i] : acc[i + w];
                const float keep = up ? acc[i + w] : acc[i];
                acc[i] = keep + __shfl_xor_sync(0xffffffffu, send, 2 * w);
            }
        }
        acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], 1);
        const int t = lane >> 1;
        if ((lane & 1) == 0 && t < nv) {
            float v = acc[0];
            if (bias) v += __half2float(bias[row]);
            if (res) v += __half2float(res[(n0 + t) * ldr + row]);
            y[(n0 + t) * ldy + row] = __float2half_rn(act_apply(act, v, alpha, beta));
        }
    }
}

/* ---- SIMT path with X transposed into the workspace ("XT", fp16) --------
 * XS copies all of X into every CTA's shared memory, which caps it at one
 * 512-thread CTA per SM and spends the kernel waiting on that copy. XT
 * transposes X once per call instead: a small kernel writes
 * xt[s][k][NT] (slice s = tokens NT*s .. NT*s + NT-1, zero past N) at the
 * end of the workspace (see xt_ok; sp_cuda_csr_workspace_bytes), so the
 * NT tokens of W's column c are 2*NT contiguous bytes in L2. The product
 * kernel: a warp per (row in row_order, slice), 4 CTAs of 8 warps per SM;
 * NT/8 lanes share a group of 4 nonzeros (8-byte loads of values and
 * columns, the next step's issued before this step's X loads; U = 2 groups
 * per lane and step for short rows at N <= 16), each lane
 * loading 8 tokens (16 bytes) of each column, so one load instruction reads
 * whole sectors (16-byte loads by single lanes, measured first, left every
 * sector half used and the L1 twice as busy: 45 vs 9 us at N = 128 and
 * 16, 98 %, H200 ncu). A butterfly over the lanes of equal token range
 * leaves each output on one lane; CTAs of 8 consecutive rows write them
 * through shared memory, 16 bytes per token. NT = 16 at N <= 16, else 32. The product
 * kernel is a programmatic dependent launch: it reads its row's pointers
 * and first values while the transpose runs. Bytes from DRAM: 4 per
 * nonzero + X + Y; from L2: 2*NT per nonzero and slice. */
constexpr int XT_WARPS = 8;
constexpr int XT_TC = 64; /* columns per transpose CTA */

/* bytes of the split-K area, rounded up so that xt is 256-byte aligned */
static size_t xt_offset(int64_t m, int64_t n) {
    return (sp_cuda_spmm_workspace_bytes(m, n) + 255) / 256 * 256;
}
/* room for either slice width: N rounded up to 32 tokens */
static size_t xt_bytes(int64_t k, int64_t n) { return (size_t)((n + 31) / 32 * 32) * (size_t)k * 2; }

/* CTA (column block, slice): NT x 64 of X through shared memory, written
 * out as 64 columns of NT tokens (contiguous) */
template <int NT>
__global__ void __launch_bounds__(256)
    csr_xt_stage(const __half *__restrict__ x, int64_t ldx, int64_t n, int k, __half *__restrict__ xt) {
    __shared__ __half tile[NT][XT_TC + 2];
    pdl_launch_dependents();
    pdl_wait();
    const int c0 = blockIdx.x * XT_TC;
    const int64_t n0 = (int64_t)blockIdx.y * NT;
#pragma unroll
    for (int r = 0; r < NT * XT_TC / 256; r++) {
        const int i = threadIdx.x + 256 * r, t = i / XT_TC, cc = i % XT_TC;
        tile[t][cc] = n0 + t < n && c0 + cc < k ? x[(n0 + t) * ldx + c0 + cc] : __float2half(0.0f);
    }
    __syncthreads();
    /* thread: column cc, tokens 4q .. 4q + 3 (8 bytes) */
    constexpr int Q = NT / 4;
#pragma unroll
    for (int r = 0; r < NT * XT_TC / 4 / 256; r++) {
        const int i = threadIdx.x + 256 * r, cc = i / Q, q = i % Q;
        if (c0 + cc >= k) continue;
        alignas(8) __half h[4];
#pragma unroll
        for (int j = 0; j < 4; j++) h[j] = tile[4 * q + j][cc];
        *reinterpret_cast<uint2 *>(xt + ((int64_t)blockIdx.y * k + c0 + cc) * NT + 4 * q) =
            *reinterpret_cast<const uint2 *>(h);
    }
}

template <int NT, int U>
__global__ void __launch_bounds__(XT_WARPS * 32, 4)
    csr_xt(const int32_t *__restrict__ row_ptr, const uint16_t *__restrict__ col,
           const __half *__restrict__ val, const int32_t *__restrict__ order, int m, int k, int64_t n,
           const __half *__restrict__ xt, __half *__restrict__ y, int64_t ldy,
           const __half *__restrict__ bias, const __half *__restrict__ res, int64_t ldr, int act,
           float alpha, float beta, bool y_vec) {
    constexpr int LPN = NT / 8;    /* lanes per group of nonzeros */
    constexpr int GPW = 32 / LPN;  /* groups per warp step */
    const int oi = blockIdx.x * XT_WARPS + (threadIdx.x >> 5);
    /* A CTA of XT_WARPS consecutive rows (no row_order, all inside M)
     * stages its outputs in shared memory and writes each token's XT_WARPS
     * features with one 16-byte store, instead of a 2-byte store per
     * output: 8x fewer partial-sector writes (uniform over the CTA). */
    const bool stage = y_vec && !order && (int)(blockIdx.x + 1) * XT_WARPS <= m;
    if (!stage && oi >= m) return; /* whole warps leave together */
    const int lane = threadIdx.x & 31, h = lane % LPN;
    const int64_t n0 = (int64_t)blockIdx.y * NT;
    /* lane h's 16 bytes of column c: xs[c * LPN + h] */
    const uint4 *xs = reinterpret_cast<const uint4 *>(xt + (int64_t)blockIdx.y * k * NT) + h;
    const uint2 *val4 = reinterpret_cast<const uint2 *>(val);
    const uint2 *col4 = reinterpret_cast<const uint2 *>(col);
    /* the weight's arrays are constant: read before waiting on the
     * transpose, the first two steps' groups of each lane included (order is
     * NULL when every warp of the grid is resident at once: longest rows
     * first then gains nothing and would cost a dependent load) */
    const int row = order ? __ldg(order + oi) : oi;
    const int b = __ldg(row_ptr + row), en = __ldg(row_ptr + row + 1);
    const int gend = (en + 3) >> 2;
    int g = (b >> 2) + lane / LPN;
    /* a step takes U groups per lane (g, g + GPW, ...); vn/cn hold the
     * next step's, vn2/cn2 the one after */
    uint2 vn[U], cn[U], vn2[U], cn2[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int g1 = g + u * GPW, g2 = g + (U + u) * GPW;
        vn[u] = g1 < gend ? __ldg(val4 + g1) : make_uint2(0u, 0u);
        cn[u] = g1 < gend ? __ldg(col4 + g1) : make_uint2(0u, 0u);
        vn2[u] = g2 < gend ? __ldg(val4 + g2) : make_uint2(0u, 0u);
        cn2[u] = g2 < gend ? __ldg(col4 + g2) : make_uint2(0u, 0u);
    }
    pdl_wait();
    float acc[8];
#pragma unroll
    for (int t = 0; t < 8; t++) acc[t] = 0.0f;
    for (; g < gend; g += U * GPW) {
        uint2 vv[U], cc[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            vv[u] = vn[u];
            cc[u] = cn[u];
            vn[u] = vn2[u];
            cn[u] = cn2[u];
            const int g2 = g + (2 * U + u) * GPW;
            if (g2 < gend) {
                vn2[u] = __ldg(val4 + g2);
                cn2[u] = __ldg(col4 + g2);
            }
        }
        uint4 q[4 * U];
        float v[4 * U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const __half *hv = reinterpret_cast<const __half *>(&vv[u]);
            const uint16_t *hc = reinterpret_cast<const uint16_t *>(&cc[u]);
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int j = 4 * (g + u * GPW) + e;
                const bool in = j >= b && j < en;
                v[4 * u + e] = in ? __half2float(hv[e]) : 0.0f;
                q[4 * u + e] = in ? __ldg(xs + (int)hc[e] * LPN) : make_uint4(0u, 0u, 0u, 0u);
            }
        }
#pragma unroll
        for (int e = 0; e < 4 * U; e++) {
            const __half2 *h2 = reinterpret_cast<const __half2 *>(&q[e]);
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float2 f = __half22float2(h2[i]);
                acc[2 * i] = fmaf(v[e], f.x, acc[2 * i]);
                acc[2 * i + 1] = fmaf(v[e], f.y, acc[2 * i + 1]);
            }
        }
    }
    /* butterfly over the lanes of equal h (distances 16 .. LPN): each step
     * keeps half of the outputs and adds the partner's copy of them; with
     * LPN = 2 the last step (distance 2) only adds */
    int o = 0;
#pragma unroll
    for (int d = 16, w = 4; d >= LPN; d >>= 1, w >>= 1) {
        if (w >= 1) {
            const bool up = lane & d;
#pragma unroll
            for (int i = 0; i < 4; i++)
                if (i < w) {
                    const float send = up ? acc[i] : acc[i + w];
                    const float keep = up ? acc[i + w] : acc[i];
                    acc[i] = keep + __shfl_xor_sync(0xffffffffu, send, d);
                }
            if (up) o += w;
        } else {
            acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], d);
        }
    }
    const int t = 8 * h + o;
    const bool writer = LPN == 4 || !(lane & 2);
    __shared__ __align__(16) __half ys[NT][XT_WARPS];
    if (writer && n0 + t < n) {
        float r = acc[0];
        if (bias) r += __half2float(bias[row]);
        if (res) r += __half2float(res[(n0 + t) * ldr + row]);
        const __half hy = __float2half_rn(act_apply(act, r, alpha, beta));
        if (stage) ys[t][threadIdx.x >> 5] = hy;
        else y[(n0 + t) * ldy + row] = hy;
    }
    if (stage) {
        static_assert(XT_WARPS * 2 == 16, "a token's outputs of one CTA are one 16-byte store");
        __syncthreads();
        const int tt = threadIdx.x;
        if (tt < NT && n0 + tt < n)
            *reinterpret_cast<uint4 *>(y + (n0 + tt) * ldy + (int64_t)blockIdx.x * XT_WARPS) =
                *reinterpret_cast<const uint4 *>(ys[tt]);
    }
}

template <int NT, int U> static int run_xt_t(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    const int64_t gy = (a->n + NT - 1) / NT;
    if (gy > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: n too large");
    cudaStream_t s = (cudaStream_t)a->stream;
    /* at the end of the workspace (see xt_ok) */
    const size_t off = (a->workspace_bytes - xt_bytes(w->k, a->n)) / 256 * 256;
    __half *xt = reinterpret_cast<__half *>((unsigned char *)a->workspace + off);
    const bool pdl = pdl_env_enabled();
    const cudaError_t se = pdl_launch(pdl, csr_xt_stage<NT>, dim3((unsigned)((w->k + XT_TC - 1) / XT_TC), (unsigned)gy),
                                      dim3(256), 0, s, (const __half *)a->x, a->ldx, a->n, (int)w->k, xt);
    cudaError_t e = SP_CUDA_CHECK(st, se);
    if (e) return (int)e;
    const int64_t gx = (w->m + XT_WARPS - 1) / XT_WARPS;
    static int occ_cache[kDevSlots];
    int occ = 0;
    const int rc = occupancy_once(csr_xt<NT, U>, XT_WARPS * 32, 0, occ_cache, &occ, st);
    if (rc) return rc;
    const bool one_wave = gx * gy <= (int64_t)occ * sm_count();
    /* 16-byte stores of XT_WARPS features (see csr_xt) */
    const bool y_vec = a->ldy % XT_WARPS == 0 && ((uintptr_t)a->y & 15) == 0;
    const cudaError_t le = pdl_launch(pdl, csr_xt<NT, U>, dim3((unsigned)gx, (unsigned)gy), dim3(XT_WARPS * 32), 0, s,
                                      (const int32_t *)w->row_ptr, (const uint16_t *)w->col16,
                                      (const __half *)w->values, one_wave ? (const int32_t *)nullptr : w->row_order,
                                      (int)w->m, (int)w->k, a->n, (const __half *)xt, (__half *)a->y, a->ldy,
                                      (const __half *)a->bias, (const __half *)a->residual, a->ldr, a->act, a->alpha,
                                      a->beta, y_vec);
    return (int)SP_CUDA_CHECK(st, le);
}

/* the XT path serves this weight and call: fp16 values with 16-bit
 * columns, and a workspace with room for X transposed behind this shape's
 * split-K area. X transposed goes at the workspace's end (rounded down to
 * 256 bytes), never right behind this shape's split-K area: a workspace
 * shared by several weights holds their largest split-K area, which must
 * stay zero (a first version wrote right behind its own area and broke the
 * split-K sums of larger layers sharing the workspace: NaN in ResNet-50 at
 * batch 1 with every layer forced to CSR, H100, 2026-11-27). */
static bool xt_ok(const sp_cuda_csr *w, const sp_cuda_spmm_args *a) {
    return w->vtype == SP_VT_F16 && w->col16 && w->m <= INT32_MAX && a->workspace &&
           ((uintptr_t)a->workspace & 255) == 0 &&
           a->workspace_bytes >= xt_offset(w->m, a->n) + xt_bytes(w->k, a->n);
}

static int run_xt(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    /* two groups per lane in flight where a row averages one step of such
     * pairs or less (at N = 16: 128 nonzeros): at 98 %, N = 16 they took
     * 10.34-10.58 us against 10.96-11.15 with one; at 90 % (410 nonzeros
     * a row) 2-4 % longer (H100, 2026-11-27) */
    if (a->n <= 16)
        return w->nnz <= w->m * 4 * 2 * 16 ? run_xt_t<16, 2>(w, a, st) : run_xt_t<16, 1>(w, a, st);
    return run_xt_t<32, 1>(w, a, st);
}

/* the XS path serves this weight (fp16 values, 16-bit columns, X of 16
 * tokens fits in shared memory) */
static bool xs_ok(const sp_cuda_csr *w) {
    return w->vtype == SP_VT_F16 && w->col16 && (size_t)w->k * XS_NT * 2 <= XS_SMEM_MAX &&
           w->m <= INT32_MAX;
}

template <bool VEC> static int run_xs_t(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    const size_t smem = (size_t)w->k * XS_NT * 2;
    /* limit and occupancy for the largest X the path takes, whatever this K */
    static int occ_cache[kDevSlots];
    int occ = 0;
    const int rc = occupancy_once(csr_xs<VEC>, XS_THREADS, (int)XS_SMEM_MAX, occ_cache, &occ, st);
    if (rc) return rc;
    const int64_t gy = (a->n + XS_NT - 1) / XS_NT;
    if (gy > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: n too large");
    /* about one wave: every CTA stages X, so more CTAs only add copies */
    int64_t gx = ((int64_t)occ * sm_count() + gy - 1) / gy;
    const int64_t gmax = (w->m + XS_THREADS / 32 - 1) / (XS_THREADS / 32);
    if (gx > gmax) gx = gmax;
    if (gx < 1) gx = 1;
    csr_xs<VEC><<<dim3((unsigned)gx, (unsigned)gy), XS_THREADS, smem, (cudaStream_t)a->stream>>>(
        w->row_ptr, w->col16, (const __half *)w->values, w->row_order, (int)w->m, (int)w->k, a->n,
        (const __half *)a->x, a->ldx, (__half *)a->y, a->ldy, (const __half *)a->bias,
        (const __half *)a->residual, a->ldr, a->act, a->alpha, a->beta);
    return (int)SP_CUDA_CHECK(st, cudaGetLastError());
}

static int run_xs(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    if (x_vec_ok(a, w->k)) return run_xs_t<true>(w, a, st);
    return run_xs_t<false>(w, a, st);
}

} // namespace spmm

using namespace spmm;

/* fragment position p of lane l -> (row, col) inside a 16 x 64 tile */
static inline void tb_pos(int lane, int p, int *r, int *c) {
    const int gid = lane >> 2, tig = lane & 3, kk = p >> 3, reg = (p & 7) >> 1, h = p & 1;
    *r = gid + 8 * (reg & 1);
    *c = 16 * kk + 8 * (reg >> 1) + 2 * tig + h;
}

/* pairs: the pair layout (see csr_tiles.cuh's expand_pairs), else one bit per position */
static int build_tiles(const sp_csr *w, bool pairs, sp_cuda_csr *out, cudaStream_t s, sp_cuda_status *st) {
    const int64_t mt = (w->m + 15) / 16, kt = (w->k + 63) / 64;
    const int64_t ntiles = mt * kt;
    /* pieces: the bitmap (8 per tile, 4 with pairs) + values rounded up to
     * 8 per tile (a pair stores at most one zero per nonzero) */
    const int bp = pairs ? 4 : 8;
    const int64_t maxvals = pairs ? 2 * w->nnz : w->nnz;
    const int64_t maxpieces = ntiles * bp + (maxvals + 7 * ntiles) / 8 + 1;
    if (ntiles > INT32_MAX || maxpieces > INT32_MAX)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr upload: too many tiles");
    uint16_t *blob = (uint16_t *)calloc((size_t)maxpieces, 16);
    int32_t *off = (int32_t *)calloc((size_t)ntiles + 1, 4);
    /* dense 16 x (64*kt) scratch of one tile row: value + present flag */
    uint16_t *dv = (uint16_t *)malloc((size_t)16 * kt * 64 * 2);
    uint8_t *dp = (uint8_t *)malloc((size_t)16 * kt * 64);
    if (!blob || !off || !dv || !dp) {
        free(blob); free(off); free(dv); free(dp);
        return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "csr upload: host malloc");
    }
    const uint16_t *vals = (const uint16_t *)w->values;
    int64_t o = 0;    /* in 16-byte pieces */
    int64_t tmax = 0; /* the largest tile, in pieces */
    for (int64_t m = 0; m < mt; m++) {
        memset(dp, 0, (size_t)16 * kt * 64);
        for (int r = 0; r < 16 && m * 16 + r < w->m; r++) {
            const int64_t row = m * 16 + r;
            for (int32_t j = w->row_ptr[row]; j < w->row_ptr[row + 1]; j++) {
                const int64_t c = w->col_idx16 ? w->col_idx16[j] : w->col_idx32[j];
                dv[r * kt * 64 + c] = vals[j];
                dp[r * kt * 64 + c] = 1;
            }
        }
        for (int64_t t = 0; t < kt; t++) {
            const int64_t ti = m * kt + t;
            off[ti] = (int32_t)o;
            uint32_t *bm = (uint32_t *)(blob + o * 8);
            uint16_t *tv = blob + (o + bp) * 8;
            int64_t nv = 0;
            for (int lane = 0; lane < 32; lane++) {
                uint32_t bits = 0;
                for (int j = 0; pairs && j < 16; j++) {
                    int r, c;
                    tb_pos(lane, 2 * j, &r, &c); /* positions 2j, 2j + 1: columns c, c + 1 */
                    const int64_t idx = r * kt * 64 + t * 64 + c;
                    const bool p0 = t * 64 + c < w->k && dp[idx];
                    const bool p1 = t * 64 + c + 1 < w->k && dp[idx + 1];
                    if (p0 || p1) {
                        bits |= 1u << j;
                        tv[nv++] = p0 ? dv[idx] : 0;
                        tv[nv++] = p1 ? dv[idx + 1] : 0;
                    }
                }
                for (int p = 0; !pairs && p < 32; p++) {
                    int r, c;
                    tb_pos(lane, p, &r, &c);
                    const int64_t idx = r * kt * 64 + t * 64 + c;
                    if (t * 64 + c < w->k && dp[idx]) {
                        bits |= 1u << p;
                        tv[nv++] = dv[idx];
                    }
                }
                if (pairs) blob[o * 8 + lane] = (uint16_t)bits; /* a 16-bit word per lane */
                else bm[lane] = bits;
            }
            const int64_t pieces = bp + (nv + 7) / 8;
            o += pieces;
            if (pieces > tmax) tmax = pieces;
        }
    }
    off[ntiles] = (int32_t)o;
    free(dv);
    free(dp);
    const size_t bb = (size_t)o * 16, pb = (size_t)(ntiles + 1) * 4;
    cudaError_t e = SP_CUDA_CHECK(st, cudaMalloc(&out->tiles, bb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->tile_off, pb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->tiles, blob, bb, cudaMemcpyHostToDevice, s));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->tile_off, off, pb, cudaMemcpyHostToDevice, s));
    if (!e) e = SP_CUDA_CHECK(st, cudaStreamSynchronize(s));
    free(blob);
    free(off);
    if (e) return (int)e;
    out->mt = mt;
    out->kt = kt;
    out->tile_bytes = bb + pb;
    out->tile_max = (int32_t)tmax;
    out->tile_pairs = pairs ? 1 : 0;
    return 0;
}

static int g_tile_layout = 0; /* sp_cuda_csr_set_tile_layout */

/* The tiled layout a weight gets: pairs below SP_CSR_PAIR_TILES_BELOW
 * density (runtime/cost_model.h, whose byte count follows the same rule).
 * Measured on the H100 (bench/results/csr-pair-h100-2026-11-27.md, M = K =
 * 4096, two calls): from 70 % sparsity the pair layout is 1.03-1.26x faster
 * at every N from 16 to 1024 (N = 16, 90 %: 17.1 against 19.9-20.1 us)
 * except at 70 %, N = 64: 0.90x, where its largest tile needs the full
 * shared-memory slot and the position layout's the 64-piece one (2 CTAs per
 * SM); at 60 % level at N <= 32 and 1.05-1.12x from N = 64; at 50 % 2-3 %
 * slower at N <= 32 (1.56 bytes per element there, against 1.125). */
static bool tile_pairs_rule(const sp_csr *w) {
    if (g_tile_layout) return g_tile_layout == SP_CUDA_CSR_TILES_PAIR;
    return (double)w->nnz < SP_CSR_PAIR_TILES_BELOW * (double)w->m * (double)w->k;
}

extern "C" int sp_cuda_csr_upload(const sp_csr *w, int with_tiles, sp_cuda_csr *out,
                                  void *stream, sp_cuda_status *st) {
    if (!out) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr upload: NULL out");
    memset(out, 0, sizeof *out);
    if (!w || w->m <= 0 || w->k <= 0 || !w->row_ptr || !w->row_order ||
        (w->nnz && (!w->values || (!w->col_idx16 && !w->col_idx32))))
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr upload: bad sp_csr");
    if (with_tiles && w->vtype != SP_VT_F16)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr upload: tiles need fp16 values");
    cudaStream_t s = (cudaStream_t)stream;
    const size_t es = w->vtype == SP_VT_F16 ? 2 : 4;
    const size_t nz = (size_t)(w->nnz ? w->nnz : 1);
    const size_t pb = (size_t)(w->m + 1) * 4, ob = (size_t)w->m * 4;
    /* values and columns padded with zeros to a multiple of 4 entries: the
     * XS path reads them 4 at a time */
    const size_t nzp = (nz + 3) / 4 * 4;
    const size_t cb = w->col_idx16 ? nzp * 2 : nzp * 4;
    void *colp = nullptr;
    cudaError_t e = SP_CUDA_CHECK(st, cudaMalloc(&out->row_ptr, pb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->row_order, ob));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&colp, cb));
    if (!e) e = SP_CUDA_CHECK(st, cudaMalloc(&out->values, nzp * es));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemsetAsync(colp, 0, cb, s));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemsetAsync(out->values, 0, nzp * es, s));
    if (w->col_idx16) out->col16 = (uint16_t *)colp;
    else out->col32 = (int32_t *)colp;
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->row_ptr, w->row_ptr, pb,
                                                  cudaMemcpyHostToDevice, s));
    if (!e) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->row_order, w->row_order, ob,
                                                  cudaMemcpyHostToDevice, s));
    if (!e && w->nnz)
        e = SP_CUDA_CHECK(st, cudaMemcpyAsync(colp, w->col_idx16 ? (const void *)w->col_idx16
                                                                 : (const void *)w->col_idx32,
                                              w->col_idx16 ? (size_t)w->nnz * 2
                                                           : (size_t)w->nnz * 4,
                                              cudaMemcpyHostToDevice, s));
    if (!e && w->nnz)
        e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->values, w->values, (size_t)w->nnz * es,
                                              cudaMemcpyHostToDevice, s));
    if (!e) e = SP_CUDA_CHECK(st, cudaStreamSynchronize(s));
    if (!e && with_tiles) e = (cudaError_t)build_tiles(w, tile_pairs_rule(w), out, s, st);
    if (e) {
        sp_cuda_csr_free(out);
        return (int)e;
    }
    out->m = w->m;
    out->k = w->k;
    out->nnz = w->nnz;
    out->vtype = w->vtype;
    out->bytes = pb + ob + (w->col_idx16 ? (size_t)w->nnz * 2 : (size_t)w->nnz * 4) +
                 (size_t)w->nnz * es + out->tile_bytes;
    return 0;
}

extern "C" void sp_cuda_csr_free(sp_cuda_csr *w) {
    if (!w) return;
    void *p[] = {w->row_ptr, w->col16, w->col32, w->row_order, w->values, w->tiles, w->tile_off};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i]) cudaFree(p[i]);
    spmm::split24_free(w->split24);
    memset(w, 0, sizeof *w);
}

extern "C" int sp_cuda_csr_spmm(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, int path,
                                sp_cuda_status *st) {
    if (!w || !w->row_ptr) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: no weight");
    if (!a || !a->x || !a->y || a->n < 0 || a->ldx < w->k || a->ldy < w->m ||
        (a->residual && a->ldr < w->m))
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: bad arguments");
    if (a->n == 0) return 0;
    if (path == SP_CUDA_CSR_SPLIT24) {
        if (a->act < SP_CUDA_ACT_NONE || a->act > SP_CUDA_ACT_LEAKYRELU)
            return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: unknown activation");
        return run_split24(w, a, st);
    }
    const bool xt = xt_ok(w, a);
    if (path == SP_CUDA_CSR_AUTO) {
        /* The tiled path's work follows the tiles (M x K), the XT kernel's
         * the nonzeros, so density decides. Measured on the H100 at M = K =
         * 4096 (bench/results/spmm-h100-2026-11-27-*.md): XT wins from 90 %
         * sparsity at N = 16 (18.2 vs 20.0 us) and from 95 % at N = 128 (40.0
         * vs 51.5 us), the tiled path below. SIMT also serves fp32 and
         * weights uploaded without tiles. */
        const bool tc_ok = w->tiles && w->vtype == SP_VT_F16;
        const double density = (double)w->nnz / ((double)w->m * (double)w->k);
        const bool xt_wins = xt && density <= (a->n <= 16 ? 0.12 : 0.07);
        path = tc_ok && !xt_wins ? SP_CUDA_CSR_TC : SP_CUDA_CSR_SIMT;
    }
    if (path == SP_CUDA_CSR_TC) return sp_cuda_csr_spmm_tc_config(w, a, tc_default_cfg(w, a->n), st);
    if (a->act < SP_CUDA_ACT_NONE || a->act > SP_CUDA_ACT_LEAKYRELU)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: unknown activation");
    if (xt) return run_xt(w, a, st);
    if (xs_ok(w)) return run_xs(w, a, st);
    if (w->vtype == SP_VT_F16) return run_simt<__half>(w, a, st);
    return run_simt<float>(w, a, st);
}

extern "C" size_t sp_cuda_csr_workspace_bytes(int64_t m, int64_t k, int64_t n) {
    if (m <= 0 || k <= 0 || n <= 0) return 0;
    return xt_offset(m, n) + xt_bytes(k, n);
}

extern "C" int sp_cuda_csr_tc_configs(void) { return kTcCfgs; }

extern "C" void sp_cuda_csr_set_compact_slots(int on) { spmm::g_compact_slots = on ? 1 : 0; }

extern "C" void sp_cuda_csr_set_tile_layout(int layout) {
    g_tile_layout = layout == SP_CUDA_CSR_TILES_POSITION || layout == SP_CUDA_CSR_TILES_PAIR ? layout : 0;
}

extern "C" int sp_cuda_csr_spmm_tc_config(const sp_cuda_csr *w, const sp_cuda_spmm_args *a,
                                          int config, sp_cuda_status *st) {
    if (!w || !w->row_ptr) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: no weight");
    if (!w->tiles || w->vtype != SP_VT_F16)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: tiles not built");
    if (config < 0 || config >= kTcCfgs)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: no such tiled configuration");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
    return run_tc_cfg(config, w, a, e, st);
}
