/*
 * sddmm.cu - sampled dense-dense product on a CSR pattern (sparse attention
 * scores): out[p] = scale * dot(A[i, :], B[col_idx[p], :]), fp16 in, fp32
 * accumulate, fp16 out. See spmm_cuda.h for the contract and
 * kernels/cpu/sddmm_ref.h for the float64 reference.
 *
 * One warp per row of the pattern, in the style of Sputnik's SDDMM: the warp
 * is cut into 4 subwarps of 8 lanes, each taking one stored position at a
 * time; a subwarp reads the 64-column chunks of A's row (the same for all
 * subwarps: L1 hits) and of B's row j with one 16-byte load per lane, so a
 * position costs K/64 coalesced 128-byte reads of B, and the 8 partial dot
 * products are summed by shuffles. Rows or leading dimensions that are not
 * 16-byte multiples take a scalar path over the same subwarp layout.
 */
#include "kernels/cuda/spmm_common.cuh"

namespace {

template <bool VEC>
__global__ void __launch_bounds__(128) sddmm_kernel(int64_t m, int64_t k, const int32_t *__restrict__ row_ptr,
                                                    const int32_t *__restrict__ col_idx,
                                                    const __half *__restrict__ a, int64_t lda,
                                                    const __half *__restrict__ b, int64_t ldb,
                                                    __half *__restrict__ out, float scale) {
    const int lane = threadIdx.x & 31, sub = lane >> 3, sl = lane & 7;
    const int64_t i = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (i >= m) return;
    const int32_t p0 = row_ptr[i], p1 = row_ptr[i + 1];
    const __half *ar = a + i * lda;
    for (int32_t pb = p0; pb < p1; pb += 4) {
        const int32_t p = pb + sub;
        const bool live = p < p1;
        const __half *br = b + (int64_t)(live ? col_idx[p] : 0) * ldb;
        float acc = 0.0f;
        if (live) {
            if (VEC) {
                for (int64_t k0 = sl * 8; k0 < k; k0 += 64) {
                    const uint4 av = *reinterpret_cast<const uint4 *>(ar + k0);
                    const uint4 bv = *reinterpret_cast<const uint4 *>(br + k0);
                    const __half2 *ah = reinterpret_cast<const __half2 *>(&av);
                    const __half2 *bh = reinterpret_cast<const __half2 *>(&bv);
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const float2 fa = __half22float2(ah[q]), fb = __half22float2(bh[q]);
                        acc = fmaf(fa.x, fb.x, acc);
                        acc = fmaf(fa.y, fb.y, acc);
                    }
                }
            } else {
                for (int64_t t = sl; t < k; t += 8) acc = fmaf(__half2float(ar[t]), __half2float(br[t]), acc);
            }
        }
        /* the 8 lanes of a subwarp hold partial sums of one position */
        acc += __shfl_xor_sync(0xffffffffu, acc, 4);
        acc += __shfl_xor_sync(0xffffffffu, acc, 2);
        acc += __shfl_xor_sync(0xffffffffu, acc, 1);
        if (live && sl == 0) out[p] = __float2half_rn(acc * scale);
    }
}

} // namespace

extern "C" int sp_cuda_sddmm(const sp_cuda_sddmm_args *s, sp_cuda_status *st) {
    if (!s || s->m < 0 || s->n < 0 || s->k < 0 || s->lda < s->k || s->ldb < s->k)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "sddmm: bad sizes or leading dimensions");
    if (s->m == 0 || s->nnz == 0) return 0;
    if (!s->row_ptr || !s->col_idx || !s->out || (s->k > 0 && (!s->a || !s->b)))
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "sddmm: NULL pattern, operand or output");
    if ((s->m + 3) / 4 > INT32_MAX)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "sddmm: too many rows");
    const bool vec = s->k % 8 == 0 && s->lda % 8 == 0 && s->ldb % 8 == 0 &&
                     ((uintptr_t)s->a & 15) == 0 && ((uintptr_t)s->b & 15) == 0;
    const unsigned grid = (unsigned)((s->m + 3) / 4);
    cudaStream_t stream = (cudaStream_t)s->stream;
    if (vec)
        sddmm_kernel<true><<<grid, 128, 0, stream>>>(s->m, s->k, s->row_ptr, s->col_idx, (const __half *)s->a,
                                                     s->lda, (const __half *)s->b, s->ldb, (__half *)s->out,
                                                     s->scale);
    else
        sddmm_kernel<false><<<grid, 128, 0, stream>>>(s->m, s->k, s->row_ptr, s->col_idx, (const __half *)s->a,
                                                      s->lda, (const __half *)s->b, s->ldb, (__half *)s->out,
                                                      s->scale);
    return (int)SP_CUDA_CHECK(st, cudaGetLastError());
}
