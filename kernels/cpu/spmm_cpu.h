/*
 * spmm_cpu.h - CPU SpMM on the packed layouts of loaders/sparse_format.h:
 *
 *     Y(m, n) = act( sum_k W(m, k) * X(k, n) + bias[m] + R(m, n) )
 *
 * W is a packed sparse weight (CSR, BSR or 2:4; fp32 or fp16 values, fp16
 * widened on the fly, fp32 accumulation). X, Y and R are addressed through
 * explicit element strides, so one kernel serves
 *   - the CPU backend's layout: X [K, N], Y [M, N] row-major
 *         x_sk = N, x_sn = 1, y_sm = N, y_sn = 1   (fast, vectorised path)
 *   - the GPU's N-major layout: X [N, K], Y [N, M] row-major
 *         x_sk = 1, x_sn = K, y_sm = 1, y_sn = M   (general path)
 * and any other strides (general path).
 *
 * These kernels are also the CPU reference "using the same packed layout"
 * that the CUDA kernels are tested against (issue 7), next to the float64
 * dense reference sp_spmm_ref_f64().
 *
 * Activations are the sp_act values of runtime/graph.h (SP_ACT_NONE, _RELU,
 * _CLIP with alpha = min and beta = max, _SIGMOID, _GELU, ...).
 */
#ifndef SPRUN_SPMM_CPU_H
#define SPRUN_SPMM_CPU_H

#include "loaders/sparse_format.h"
#include "runtime/graph.h" /* sp_act: SP_ACT_NONE, SP_ACT_RELU, SP_ACT_CLIP, ... */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_spmm_args {
    int64_t n;                           /* columns of X/Y (batch x positions or tokens) */
    const float *x; int64_t x_sk, x_sn;  /* X(k, n) = x[k*x_sk + n*x_sn] */
    float *y; int64_t y_sm, y_sn;        /* Y(m, n) = y[m*y_sm + n*y_sn] */
    const float *bias;                   /* [M] or NULL */
    const float *residual; int64_t r_sm, r_sn; /* R(m, n), added before act, or NULL */
    int act;                             /* sp_act */
    float alpha, beta;                   /* activation parameters (CLIP: min, max) */
    int nthreads;                        /* > 1: rows split over that many pthreads */
    /* Optional: a CPU backend context whose persistent thread pool runs the
     * workers (no thread creation per call: that costs tens of microseconds,
     * more than a small layer's whole SpMM). NULL: pthreads per call. */
    const struct sp_cpu_ctx *pool;
} sp_spmm_args;

/*
 * Computes Y for the packed matrix w (kind CSR, BSR or 2:4) and the operands
 * in a. Every Y(m, n), m < M, n < a->n, is written exactly once; nothing
 * else in y is touched. residual may alias y element for element (in-place
 * residual add: R(m, n) is read before Y(m, n) is written), x may not
 * overlap y.
 *
 * Returns 0, or a non-zero sprun_code with a message in err (when not NULL,
 * at most errlen bytes): SPRUN_ERR_INVALID_ARGUMENT for NULL operands, a
 * negative n, an unknown kind, vtype or activation; SPRUN_ERR_OUT_OF_MEMORY
 * when the per-thread scratch (one decoded row + one accumulator tile per
 * thread) cannot be allocated. y is untouched on error.
 *
 * Threads: with nthreads > 1 the calling thread and nthreads - 1 pthreads
 * take chunks of rows from a shared counter; if a thread cannot be created
 * the others do its share (the result is identical whatever the thread
 * count: each row is computed by one thread in a fixed order). The function
 * keeps no state: concurrent calls are safe when their y do not overlap.
 * w and the inputs are only read and never retained.
 */
int sp_spmm_cpu(const sp_sparse_matrix *w, const sp_spmm_args *a, char *err, size_t errlen);

/*
 * Float64 reference for tests of the CPU and CUDA kernels: the same
 * computation from the dense row-major [m, k] weight dense_w, accumulated
 * and activated in double. Writes y_ref[i*a->y_sm + n*a->y_sn] (same
 * strides as a->y, so y_ref is sized like y); a->y, a->nthreads are
 * ignored. Slow (O(m*k*n), no threads): tests only. Returns 0, or
 * SPRUN_ERR_INVALID_ARGUMENT for NULL pointers or an unknown activation.
 * Thread-safe; the caller owns y_ref.
 */
int sp_spmm_ref_f64(const float *dense_w, int64_t m, int64_t k, const sp_spmm_args *a,
                    double *y_ref);

/*
 * Relative L2 error ||y - ref|| / ||ref|| over the m x n elements at
 * y[i*y_sm + j*y_sn] / ref[same index] (the tolerance metric of the SpMM
 * tests). Any NaN or inf in y (an unwritten, poisoned element) gives +inf.
 * When ||ref|| is 0 the absolute norm ||y - ref|| is returned. Thread-safe.
 */
double sp_spmm_rel_l2(const float *y, const double *ref, int64_t m, int64_t n, int64_t y_sm,
                      int64_t y_sn);

#ifdef __cplusplus
}
#endif
#endif
