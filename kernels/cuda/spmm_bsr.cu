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

template <int WM, int WN, int WARPS_N, int WARPS_K, int KSUB, int STAGES>
static int run_bsr(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, int per_sm,
                   int maxblk, sp_cuda_status *st) {
    typename FBsr<WM>::Params p;
    p.frags = (const uint4 *)w->frags;
    p.block_ptr = w->block_ptr;
    p.block_col = w->block_col;
    p.row_order = w->row_order;
    if (x_vec_ok(a, w->k))
        return launch<Kernel<FBsr, WM, WN, 1, WARPS_N, WARPS_K, KSUB, STAGES, true>>(
            p, w->mb, maxblk, per_sm, a, w->k, e, st);
    return launch<Kernel<FBsr, WM, WN, 1, WARPS_N, WARPS_K, KSUB, STAGES, false>>(
        p, w->mb, maxblk, per_sm, a, w->k, e, st);
}

/* per block size: small N splits a row's blocks over 4 warps, large N splits
 * the 128 columns of X over 4 warps */
template <int WM>
static int dispatch_bsr(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                        int maxblk, sp_cuda_status *st) {
    constexpr int KS = WM == 1 ? 2 : 1; /* 16-wide blocks: two per warp per stage */
    if (a->n <= 16) return run_bsr<WM, 2, 1, 4, KS, 4>(w, a, e, 2, maxblk, st);
    if (a->n <= 64) return run_bsr<WM, 4, 2, 2, KS, 3>(w, a, e, 1, maxblk, st);
    if constexpr (WM >= 4) return run_bsr<WM, 2, 4, 1, 1, 3>(w, a, e, 1, maxblk, st);
    else return run_bsr<WM, 8, 4, 1, 2, 3>(w, a, e, 1, maxblk, st);
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

extern "C" int sp_cuda_bsr_spmm(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a,
                                sp_cuda_status *st) {
    if (!w || !w->block_ptr) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no weight");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
    /* the split-K factor is sized for the longest row (the kernel splits each
     * row's own block list evenly) */
    const int maxblk = (int)(w->nblocks / (w->mb ? w->mb : 1)) + 1;
    switch (w->bs) {
    case 16: return dispatch_bsr<1>(w, a, e, maxblk, st);
    case 32: return dispatch_bsr<2>(w, a, e, maxblk, st);
    case 64: return dispatch_bsr<4>(w, a, e, maxblk, st);
    }
    return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr spmm: block size");
}
