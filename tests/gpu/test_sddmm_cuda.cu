/*
 * test_sddmm_cuda.cu - the SDDMM kernel (kernels/cuda/sddmm.cu) against the
 * float64 reference (kernels/cpu/sddmm_ref.c) on random nonzero operands and
 * random CSR patterns: empty rows, a fully dense row, a single position,
 * ragged K (vector and scalar paths), leading dimensions larger than K and
 * a scale. The output is poisoned with NaN before the run, so a position the
 * kernel skips fails.
 *
 * Pass: relative L2 <= 2e-3 and every |out - ref| <= 1e-2 |ref| + 2e-3 rms(ref)
 * (fp16 output rounding alone is <= 4.9e-4 relative).
 * Exit codes: 0 all passed, 1 a failure, 77 no GPU ("no GPU: skipped").
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/sddmm_ref.h"
#include "kernels/cuda/spmm_cuda.h"
#include "tests/gpu/spmm_testlib.h"

static int passes = 0, failures = 0;

/* pattern: 0 random (density d), 1 empty rows + a dense row, 2 one position */
static void run_case(int64_t m, int64_t n, int64_t k, int64_t pad, double d, int pattern, float scale) {
    const int64_t lda = k + pad, ldb = k + pad;
    int32_t *rp = (int32_t *)malloc((size_t)(m + 1) * 4);
    int32_t *ci = (int32_t *)malloc((size_t)(m * n + 1) * 4);
    int64_t nnz = 0;
    rp[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            bool on = false;
            if (pattern == 0) on = tl_unif() < d;
            else if (pattern == 1) on = (i % 3 == 0) ? false : (i == m / 2 ? true : tl_unif() < d);
            else on = (i == m - 1 && j == n / 2);
            if (on) ci[nnz++] = (int32_t)j;
        }
        rp[i + 1] = (int32_t)nnz;
    }
    float *a = (float *)malloc((size_t)(m * lda) * 4), *b = (float *)malloc((size_t)(n * ldb) * 4);
    for (int64_t t = 0; t < m * lda; t++) a[t] = tl_round(tl_val());
    for (int64_t t = 0; t < n * ldb; t++) b[t] = tl_round(tl_val());
    double *ref = (double *)malloc((size_t)(nnz + 1) * 8);
    if (sp_sddmm_ref_f64(m, n, k, rp, ci, a, lda, b, ldb, scale, ref) != 0) {
        printf("reference rejected the pattern\n");
        exit(1);
    }
    uint16_t *ah = (uint16_t *)malloc((size_t)(m * lda) * 2), *bh = (uint16_t *)malloc((size_t)(n * ldb) * 2);
    for (int64_t t = 0; t < m * lda; t++) ah[t] = tl_h(a[t]);
    for (int64_t t = 0; t < n * ldb; t++) bh[t] = tl_h(b[t]);
    void *da, *db, *dout, *drp, *dci;
    CK(cudaMalloc(&da, (size_t)(m * lda) * 2 + 16));
    CK(cudaMalloc(&db, (size_t)(n * ldb) * 2 + 16));
    CK(cudaMalloc(&dout, (size_t)(nnz + 1) * 2));
    CK(cudaMalloc(&drp, (size_t)(m + 1) * 4));
    CK(cudaMalloc(&dci, (size_t)(nnz + 1) * 4));
    CK(cudaMemcpy(da, ah, (size_t)(m * lda) * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, bh, (size_t)(n * ldb) * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(drp, rp, (size_t)(m + 1) * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dci, ci, (size_t)(nnz + 1) * 4, cudaMemcpyHostToDevice));
    CK(cudaMemset(dout, 0xff, (size_t)(nnz + 1) * 2)); /* NaN */
    sp_cuda_sddmm_args s;
    memset(&s, 0, sizeof s);
    s.m = m; s.n = n; s.k = k; s.nnz = nnz;
    s.row_ptr = (const int32_t *)drp; s.col_idx = (const int32_t *)dci;
    s.a = da; s.lda = lda; s.b = db; s.ldb = ldb; s.out = dout; s.scale = scale;
    sp_cuda_status st;
    memset(&st, 0, sizeof st);
    int rc = sp_cuda_sddmm(&s, &st);
    cudaError_t se = cudaDeviceSynchronize();
    bool ok = rc == 0 && se == cudaSuccess;
    double l2 = 0;
    int64_t bad = 0, first = -1;
    if (!ok) {
        printf("launch failed: rc=%d %s %s\n", rc, st.msg, cudaGetErrorString(se));
        if (se != cudaSuccess) exit(1);
    } else {
        uint16_t *oh = (uint16_t *)malloc((size_t)(nnz + 1) * 2);
        CK(cudaMemcpy(oh, dout, (size_t)(nnz + 1) * 2, cudaMemcpyDeviceToHost));
        double num = 0, den = 0;
        for (int64_t p = 0; p < nnz; p++) {
            const double dv = (double)tl_f(oh[p]) - ref[p];
            num += dv * dv;
            den += ref[p] * ref[p];
        }
        const double rms = nnz ? sqrt(den / (double)nnz) : 0.0;
        l2 = sqrt(num) / (sqrt(den) + 1e-30);
        for (int64_t p = 0; p < nnz; p++) {
            const double dv = fabs((double)tl_f(oh[p]) - ref[p]);
            if (!(dv <= 1e-2 * fabs(ref[p]) + 2e-3 * rms)) {
                if (first < 0) first = p;
                bad++;
            }
        }
        if (bad || (nnz && !(l2 <= 2e-3))) ok = false;
        if (first >= 0) printf("   first bad position %lld: got %g want %g (%lld bad)\n", (long long)first,
                               tl_f(oh[first]), ref[first], (long long)bad);
        free(oh);
    }
    printf("%s sddmm M=%5lld N=%5lld K=%4lld ld+%lld pattern=%d nnz=%8lld relL2=%.2e\n", ok ? "PASS" : "FAIL",
           (long long)m, (long long)n, (long long)k, (long long)pad, pattern, (long long)nnz, l2);
    if (ok) passes++;
    else failures++;
    cudaFree(da); cudaFree(db); cudaFree(dout); cudaFree(drp); cudaFree(dci);
    free(rp); free(ci); free(a); free(b); free(ref); free(ah); free(bh);
}

int main(void) {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("no GPU: skipped\n");
        return 77;
    }
    tl_seed(4242);
    /* attention-like: 128 x 128 scores, head dim 64 */
    run_case(128, 128, 64, 0, 0.3, 0, 0.125f);
    run_case(128, 128, 64, 8, 0.1, 1, 0.125f);
    run_case(512, 512, 64, 0, 0.05, 0, 1.0f);
    /* ragged K: vector path (K % 8 == 0) and scalar path */
    run_case(97, 211, 72, 0, 0.2, 0, 1.0f);
    run_case(97, 211, 13, 3, 0.2, 1, 1.0f);
    run_case(33, 40, 1, 0, 0.5, 0, 2.0f);
    run_case(64, 300, 520, 0, 0.1, 0, 0.5f);
    /* single position, empty matrix */
    run_case(17, 19, 64, 0, 0.0, 2, 1.0f);
    run_case(5, 7, 8, 0, 0.0, 0, 1.0f);
    /* every row longer than a warp's 4 positions at a time, dense */
    run_case(40, 1000, 64, 0, 1.0, 0, 0.125f);
    printf("\n%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
