/*
 * sparse_tune.c - measurements behind `--tune` on the CUDA backend
 * (sp_cuda_sparse_time, declared in cuda_sparse.h): one layer's dense GEMM
 * and each uploaded sparse kernel, timed on a private stream with CUDA events
 * (plans are built before their first capture). Each candidate runs twice
 * to warm up, then LAUNCHES runs are captured into a CUDA graph, and the
 * graph's replays are timed (median of REPS, divided by LAUNCHES): timed as
 * host launches, cuBLAS's host-side setup of a few us would be charged to
 * the dense candidate and a small layer's choice decided by the CPU, not the
 * GPU (the plan's own tuning, time_steps in backend_cuda.c, does the same).
 * Activations are a constant finite fp16 pattern: the kernels' speed does
 * not depend on the values.
 */
#include "runtime/cuda/cuda_sparse.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

enum { WARMUP = 2, LAUNCHES = 5, REPS = 9 };

typedef struct {
    const sp_cuda_sparse_layer *L;
    cudaStream_t s;
    cublasHandle_t h;
    void *in;  /* NHWC input (k x k convs) or X [n, k] */
    void *col; /* patch matrix [n, k] (k x k convs) */
    void *y, *wd, *ws;
    int kind; /* 0: dense GEMM, else the SP_SPARSE_* kind */
} tune_ctx;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One run of the candidate: the patch gather where the layer needs one (the
 * dense GEMM path gathers the same patches), then the product. */
static int run_once(const tune_ctx *c)
{
    const sp_cuda_sparse_layer *L = c->L;
    if (c->kind != SP_SPARSE_DENSE) {
        sp_cuda_spmm_args a = {.y = c->y, .ldy = L->m, .workspace = c->ws, .workspace_bytes = L->ws_bytes,
                               .stream = c->s};
        sp_cuda_status st = {0};
        return sp_cuda_sparse_product(L, c->kind, c->in, c->col, &a, &st);
    }
    const void *x = c->in;
    if (L->im2col) {
        int e = sp_cuda_sparse_gather(L, SP_SPARSE_DENSE, c->in, c->col, c->s);
        if (e != 0)
            return e;
        x = c->col;
    }
    /* Y[n, m] = X[n, k] W^T: column-major C[m x n] = W^T(k x m)^T X^T(k x n) */
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasGemmEx(c->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)L->m, (int)L->n, (int)L->k, &one, c->wd,
                                     CUDA_R_16F, (int)L->k, x, CUDA_R_16F, (int)L->k, &zero, c->y, CUDA_R_16F,
                                     (int)L->m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? 0 : 1000 + (int)st;
}

static int time_one(tune_ctx *c, cudaEvent_t e0, cudaEvent_t e1, double *us)
{
    for (int r = 0; r < WARMUP; r++)
        if (run_once(c) != 0)
            return 1;
    if (cudaStreamSynchronize(c->s) != cudaSuccess)
        return 1;
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    if (cudaStreamBeginCapture(c->s, cudaStreamCaptureModeThreadLocal) != cudaSuccess)
        return 1;
    int rc = 0;
    for (int r = 0; r < LAUNCHES && !rc; r++)
        rc = run_once(c);
    if (cudaStreamEndCapture(c->s, &g) != cudaSuccess || rc || !g ||
        cudaGraphInstantiate(&ge, g, 0) != cudaSuccess) {
        if (g)
            cudaGraphDestroy(g);
        cudaGetLastError();
        return 1;
    }
    double t[REPS];
    rc = cudaGraphLaunch(ge, c->s) != cudaSuccess; /* first replay uploads the graph */
    for (int r = 0; r < REPS && !rc; r++) {
        float ms = 0;
        rc = cudaEventRecord(e0, c->s) != cudaSuccess || cudaGraphLaunch(ge, c->s) != cudaSuccess ||
             cudaEventRecord(e1, c->s) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
             cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess;
        t[r] = ms * 1e3 / LAUNCHES;
    }
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    if (rc)
        return 1;
    qsort(t, REPS, sizeof t[0], cmp_double);
    *us = t[REPS / 2];
    return 0;
}

int sp_cuda_sparse_time(const sp_cuda_sparse_layer *L, double us[4])
{
    for (int k = 0; k < 4; k++)
        us[k] = -1;
    if (!L || !L->w || L->n <= 0 || L->m <= 0 || L->k <= 0 || L->n > INT32_MAX || L->m > INT32_MAX ||
        L->k > INT32_MAX)
        return 1;
    tune_ctx c = {.L = L};
    cudaEvent_t e0 = NULL, e1 = NULL;
    const size_t in_bytes = (size_t)(L->im2col ? L->batch * L->h * L->wd * L->c : L->n * L->k) * 2;
    int rc = 1;
    if (cudaStreamCreateWithFlags(&c.s, cudaStreamNonBlocking) != cudaSuccess)
        return 1;
    if (cublasCreate(&c.h) != CUBLAS_STATUS_SUCCESS) {
        c.h = NULL;
        goto done;
    }
    if (cublasSetStream(c.h, c.s) != CUBLAS_STATUS_SUCCESS || cudaEventCreate(&e0) != cudaSuccess ||
        cudaEventCreate(&e1) != cudaSuccess || cudaMalloc(&c.in, in_bytes) != cudaSuccess ||
        (L->im2col && cudaMalloc(&c.col, L->col_bytes) != cudaSuccess) ||
        cudaMalloc(&c.y, (size_t)(L->n * L->m) * 2) != cudaSuccess ||
        cudaMalloc(&c.wd, (size_t)(L->m * L->k) * 2) != cudaSuccess ||
        cudaMalloc(&c.ws, L->ws_bytes ? L->ws_bytes : 16) != cudaSuccess)
        goto done;
    /* 0x3c3c is fp16 1.0586: finite inputs and weights; the workspace must start at zero */
    if (cudaMemsetAsync(c.in, 0x3c, in_bytes, c.s) != cudaSuccess ||
        cudaMemsetAsync(c.wd, 0x3c, (size_t)(L->m * L->k) * 2, c.s) != cudaSuccess ||
        cudaMemsetAsync(c.ws, 0, L->ws_bytes ? L->ws_bytes : 16, c.s) != cudaSuccess)
        goto done;
    c.kind = SP_SPARSE_DENSE;
    if (time_one(&c, e0, e1, &us[0]) != 0)
        goto done;
    for (int k = 1; k < 4; k++) {
        if (!(L->w->have & (1u << k)))
            continue;
        c.kind = k;
        if (time_one(&c, e0, e1, &us[k]) != 0)
            us[k] = -1; /* a candidate that cannot run this shape is not a candidate */
    }
    rc = 0;
done:
    if (c.s)
        cudaStreamSynchronize(c.s);
    cudaFree(c.in);
    cudaFree(c.col);
    cudaFree(c.y);
    cudaFree(c.wd);
    cudaFree(c.ws);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    if (c.h)
        cublasDestroy(c.h);
    cudaStreamDestroy(c.s);
    cudaGetLastError(); /* a failed candidate must not leave a sticky-looking error behind */
    return rc;
}
