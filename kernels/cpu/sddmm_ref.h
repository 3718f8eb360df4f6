/*
 * sddmm_ref.h - float64 reference of the sampled dense-dense product
 * (SDDMM) on a CSR pattern, for the GPU kernel's tests (kernels/cuda/
 * sddmm.cu) and any later CPU kernel:
 *
 *     out[p] = scale * sum_k A[i, k] * B[j, k]   for p in row_ptr[i]..row_ptr[i+1]-1, j = col_idx[p]
 *
 * A is [m, k] row-major (lda), B is [n, k] row-major (ldb): the shape of
 * attention scores Q K^T sampled at a sparse mask. Thread-safe, no allocation.
 * Returns 0, or SPRUN_ERR_INVALID_ARGUMENT for an inconsistent pattern
 * (row_ptr not non-decreasing, a column outside [0, n)).
 */
#ifndef SPRUN_SDDMM_REF_H
#define SPRUN_SDDMM_REF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int sp_sddmm_ref_f64(int64_t m, int64_t n, int64_t k, const int32_t *row_ptr, const int32_t *col_idx,
                     const float *a, int64_t lda, const float *b, int64_t ldb, double scale, double *out);

#ifdef __cplusplus
}
#endif
#endif
