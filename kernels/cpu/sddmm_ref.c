/* sddmm_ref.c - float64 SDDMM reference (see sddmm_ref.h). Naive on purpose. */
#include "kernels/cpu/sddmm_ref.h"

#include "sprun.h"

int sp_sddmm_ref_f64(int64_t m, int64_t n, int64_t k, const int32_t *row_ptr, const int32_t *col_idx,
                     const float *a, int64_t lda, const float *b, int64_t ldb, double scale, double *out)
{
    if (m < 0 || n < 0 || k < 0 || !row_ptr || lda < k || ldb < k || row_ptr[0] != 0)
        return SPRUN_ERR_INVALID_ARGUMENT;
    for (int64_t i = 0; i < m; i++) {
        if (row_ptr[i + 1] < row_ptr[i])
            return SPRUN_ERR_INVALID_ARGUMENT;
        for (int64_t p = row_ptr[i]; p < row_ptr[i + 1]; p++) {
            const int64_t j = col_idx[p];
            if (j < 0 || j >= n)
                return SPRUN_ERR_INVALID_ARGUMENT;
            double s = 0.0;
            for (int64_t t = 0; t < k; t++)
                s += (double)a[i * lda + t] * (double)b[j * ldb + t];
            out[p] = scale * s;
        }
    }
    return 0;
}
