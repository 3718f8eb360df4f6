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
 */
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

template <int WM, int WN, int WARPS_N, int WARPS_K, int KSUB, int STAGES, bool VEC>
static int run_bsr(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, int per_sm,
                   int maxblk, sp_cuda_status *st) {
    using KT = Kernel<FBsr, WM, WN, 1, WARPS_N, WARPS_K, KSUB, STAGES, VEC>;
    /* a configuration whose accumulators or stages do not fit this block size */
    if constexpr (WM * WN > 32 || KT::SMEM > 227 * 1024) {
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "bsr spmm: launch configuration does not fit this block size");
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
    int wn, warps_n, warps_k, ksub, stages, per_sm;
};
static constexpr BsrCfg kBsrCfg[] = {
    {2, 1, 4, 1, 4, 2}, /* 0: BN 16, 4 blocks per stage */
    {2, 1, 8, 1, 4, 1}, /* 1: BN 16, 8 warps, 8 blocks per stage */
    {2, 1, 8, 2, 3, 1}, /* 2: BN 16, 8 warps, 16 blocks per stage */
    {4, 2, 2, 1, 3, 1}, /* 3: BN 64 */
    {4, 2, 2, 2, 3, 1}, /* 4: BN 64, 4 blocks per stage */
    {2, 4, 1, 1, 3, 1}, /* 5: BN 64, 4 warps along N */
    {4, 4, 2, 1, 3, 1}, /* 6: BN 128, 8 warps */
};
static const int kBsrCfgs = (int)(sizeof kBsrCfg / sizeof kBsrCfg[0]);

/* instantiation of configuration I (its row of kBsrCfg spelled out) */
#define SP_BSR_CFGS(X)                                                                         \
    X(0, 2, 1, 4, 1, 4) X(1, 2, 1, 8, 1, 4) X(2, 2, 1, 8, 2, 3) X(3, 4, 2, 2, 1, 3)           \
    X(4, 4, 2, 2, 2, 3) X(5, 2, 4, 1, 1, 3) X(6, 4, 4, 2, 1, 3)
#define SP_BSR_CHECK(I, WN, N, K, KS, S)                                                      \
    static_assert(WN == kBsrCfg[I].wn && N == kBsrCfg[I].warps_n && K == kBsrCfg[I].warps_k && \
                      KS == kBsrCfg[I].ksub && S == kBsrCfg[I].stages,                        \
                  "kBsrCfg row and instantiation differ");
SP_BSR_CFGS(SP_BSR_CHECK)
#undef SP_BSR_CHECK

template <int WM, bool VEC>
static int run_bsr_cfg(int i, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                       int maxblk, sp_cuda_status *st) {
#define SP_BSR_CASE(I, WN, N, K, KS, S)                                                       \
    case I: return run_bsr<WM, WN, N, K, KS, S, VEC>(w, a, e, kBsrCfg[I].per_sm, maxblk, st);
    switch (i) {
        SP_BSR_CFGS(SP_BSR_CASE)
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no such launch configuration");
    }
#undef SP_BSR_CASE
}

/* The configuration sp_cuda_bsr_spmm takes, per block size (16, 32, 64):
 * cfg[0] for n <= n_max[0], cfg[1] for n <= n_max[1], else cfg[2]. For 16-
 * and 32-wide blocks the best of the sweep at N = 16, 128 and 1024-4096
 * (50-90 %; where two were within 5 %, the one ahead at the lower
 * sparsities); 64-wide blocks were not swept and keep the former choices. */
struct BsrDefault {
    int64_t n_max[2];
    int cfg[3];
};
static constexpr BsrDefault kBsrDefault[3] = {
    {{16, 128}, {2, 4, 6}},
    {{16, 128}, {1, 3, 5}},
    {{16, 64}, {0, 3, 5}},
};
constexpr int bsr_wm_index(int wm) { return wm == 1 ? 0 : wm == 2 ? 1 : 2; }

/* configuration I with the scalar X copies */
template <int WM, int I>
static int run_bsr_scalar(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, int maxblk,
                          sp_cuda_status *st) {
    constexpr BsrCfg c = kBsrCfg[I];
    return run_bsr<WM, c.wn, c.warps_n, c.warps_k, c.ksub, c.stages, false>(w, a, e, c.per_sm, maxblk,
                                                                           st);
}

/* X rows that are not 16-byte aligned take the scalar copies, in the default
 * configuration for n only (the others are not instantiated for them) */
template <int WM>
static int dispatch_bsr(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                        int maxblk, sp_cuda_status *st) {
    constexpr BsrDefault d = kBsrDefault[bsr_wm_index(WM)];
    const int slot = a->n <= d.n_max[0] ? 0 : a->n <= d.n_max[1] ? 1 : 2;
    if (x_vec_ok(a, w->k)) return run_bsr_cfg<WM, true>(cfg < 0 ? d.cfg[slot] : cfg, w, a, e, maxblk, st);
    switch (slot) {
    case 0: return run_bsr_scalar<WM, d.cfg[0]>(w, a, e, maxblk, st);
    case 1: return run_bsr_scalar<WM, d.cfg[1]>(w, a, e, maxblk, st);
    default: return run_bsr_scalar<WM, d.cfg[2]>(w, a, e, maxblk, st);
    }
}

} // namespace spmm

using namespace spmm;

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
    /* block rows by decreasing block count (stable: ties by row index) */
    for (int64_t r = 0; r < w->mb; r++) order[r] = (int32_t)r;
    {
        const int32_t *bp = w->block_ptr;
        /* counting sort by length */
        int64_t maxlen = 0;
        for (int64_t r = 0; r < w->mb; r++)
            if (bp[r + 1] - bp[r] > maxlen) maxlen = bp[r + 1] - bp[r];
        int64_t *cnt = (int64_t *)calloc((size_t)maxlen + 2, sizeof(int64_t));
        if (cnt) {
            for (int64_t r = 0; r < w->mb; r++) cnt[maxlen - (bp[r + 1] - bp[r]) + 1]++;
            for (int64_t i = 1; i <= maxlen + 1; i++) cnt[i] += cnt[i - 1];
            for (int64_t r = 0; r < w->mb; r++) order[cnt[maxlen - (bp[r + 1] - bp[r])]++] = (int32_t)r;
            free(cnt);
        }
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
    if (!e) e = SP_CUDA_CHECK(st, cudaStreamSynchronize(sm));
    free(hf);
    free(order);
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
    out->bytes = fbytes + pb + cb + ob;
    return 0;
}

extern "C" void sp_cuda_bsr_free(sp_cuda_bsr *w) {
    if (!w) return;
    if (w->block_ptr) cudaFree(w->block_ptr);
    if (w->block_col) cudaFree(w->block_col);
    if (w->row_order) cudaFree(w->row_order);
    if (w->frags) cudaFree(w->frags);
    memset(w, 0, sizeof *w);
}

static int bsr_spmm(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int cfg, sp_cuda_status *st) {
    if (!w || !w->block_ptr) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no weight");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
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
    return bsr_spmm(w, a, -1, st);
}

extern "C" int sp_cuda_bsr_configs(void) { return kBsrCfgs; }

extern "C" int sp_cuda_bsr_spmm_config(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, int config,
                                       sp_cuda_status *st) {
    if (config < 0 || config >= kBsrCfgs)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no such launch configuration");
    return bsr_spmm(w, a, config, st);
}
