/*
 * cuda_sparse.h - sparse Conv / Gemm / MatMul layers on the CUDA backend.
 *
 * Model level (once, shared by every session): for each analysed weight the
 * cost model (runtime/cost_model.c, H100 fp16 table) or the user's --format
 * picks dense, CSR, BSR or 2:4; sparse weights are packed (fp16 values, K in
 * ONNX order c, kh, kw, except a k x k conv's 2:4 weight that is 2:4 only
 * along its input channels: K in (kh, kw, c) order) and uploaded in the
 * layouts of kernels/cuda/spmm_cuda.h. Plan level: the backend asks, per node, whether to run it
 * sparse at this plan's N (re-deciding with the real N unless forced).
 *
 * Activations are N-major (NHWC / [tokens, hidden]): a 1x1 stride-1 conv or a
 * Gemm/MatMul is one SpMM over X [N, K]; a k x k (or strided) 2:4 conv on
 * sm_90 is an implicit GEMM over the NHWC input (sp_cuda_24_conv_implicit);
 * other k x k convs first gather their patches with sp_cuda_im2col_nhwc into
 * a scratch buffer of N x K (in the packed weight's K order, so 2:4 groups
 * stay intact), then run the same SpMM. Under format AUTO with plan-time
 * tuning, the backend lowers a sparse layer and its dense twin as
 * alternatives and keeps the faster (sp_cuda_sparse_layer.measure).
 */
#ifndef SPRUN_CUDA_SPARSE_H
#define SPRUN_CUDA_SPARSE_H

#include "kernels/cuda/spmm_cuda.h"
#include "runtime/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_cuda_sparse_w {
    int kind;      /* the format the cost model (or --format) chose: SP_SPARSE_DENSE (not sparse), CSR, BSR, 24 */
    unsigned have; /* formats uploaded, bit 1 << SP_SPARSE_*: kind's only, or every candidate when tuning */
    sp_cuda_csr csr;
    sp_cuda_bsr bsr;
    sp_cuda_24 s24;
    int s24_rsc;   /* s24's K is in (kh, kw, c) order (a conv 2:4 along its input channels) */
} sp_cuda_sparse_w;

typedef struct sp_cuda_sparse_set {
    sp_cuda_sparse_w *w; /* one per model weight record */
    int n;
    size_t device_bytes;
} sp_cuda_sparse_set;

/* Chooses formats for every weight record (filling format and reason) and
 * uploads the sparse ones. fp16 only: with fp32 precision every weight stays
 * dense and the reason says so. */
int sp_cuda_sparse_prepare(struct sprun_model *m, int fp16, void *stream, sp_cuda_sparse_set *set, sp_err *err);
void sp_cuda_sparse_release(sp_cuda_sparse_set *set);

/* Geometry of a sparse layer in a plan, filled by sp_cuda_sparse_select. */
typedef struct sp_cuda_sparse_layer {
    const sp_cuda_sparse_w *w;
    int kind;            /* the format this layer runs (one of w->have) */
    int64_t n, m, k;     /* Y[n, m] = X[n, k] W^T */
    int im2col;          /* k x k conv: gather patches first */
    int implicit;        /* ... except its 2:4 product, an implicit GEMM (sp_cuda_24_conv_implicit;
                            2: gathered by the producer warps' copies, SPRUN_SPARSE_CONV=implicit-copies) */
    int64_t batch, h, wd, c, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; /* conv geometry (NHWC) */
    size_t col_bytes;    /* scratch for the patch matrix */
    size_t ws_bytes;     /* SpMM workspace */
    int measure;         /* format AUTO with plan-time tuning: the plan times this sparse layer against its
                            dense lowering and keeps the faster (cost_sparse: the cost model's guess) */
    int cost_sparse;
    const char *dense_kernel; /* the dense path's label and predicted time, for the step info */
    double dense_pred_us;
    int config;          /* the kernel's launch configuration (sp_cuda_spmm_args.config): 0 = the
                            shape's rule; plan-time tuning sets the fastest of sp_cuda_sparse_configs */
} sp_cuda_sparse_layer;

/* The launch configurations of L's kernel worth timing at plan time, 0 (the
 * shape's rule) first, except for CSR with tiles, whose two paths (1 tiled
 * tensor cores, 2 CUDA cores; the rule picks one of them) are both listed:
 * fills cfg[0..max) and returns how many (1: nothing to choose).
 * Thread-safe. */
int sp_cuda_sparse_configs(const sp_cuda_sparse_layer *L, int *cfg, int max);
/* L's kernel as the step info shows it: the format ("csr", "bsr", "2:4"),
 * with "/c<config>" when a launch configuration was chosen. Static string. */
const char *sp_cuda_sparse_label(const sp_cuda_sparse_layer *L);

/* Plan-time tuning is on unless SPRUN_CUDA_TUNE=0 (the backend's timing of
 * cuBLASLt algorithms, conv as GEMM vs cuDNN, and sparse vs dense). */
int sp_cuda_plan_tuning(void);

/* For node ni of plan p (shapes concrete): whether it runs sparse, and how.
 * Returns 1 and fills *L and the step info, or 0 to run the dense path
 * (info still gets the GEMM view and the dense prediction). With --tune
 * (m->tune, format AUTO) the choice is the tune cache's, or else measured
 * now (sp_cuda_sparse_time) and recorded; a measuring failure leaves the
 * cost model's choice. Without --tune, format AUTO and plan-time tuning on,
 * every layer with a sparse weight returns 1 with L->measure set: the
 * backend lowers it both ways and times them in the plan. */
int sp_cuda_sparse_select(const struct sprun_model *m, const sp_cuda_sparse_set *set, const sp_plan *p, int ni,
                          sp_cuda_sparse_layer *L, sp_step_info *info);

/* Tuning measurement for one layer geometry (L filled by select, L->kind
 * ignored): median time in microseconds of the dense product (a cuBLAS fp16
 * GEMM of the same M, N, K, plus the patch gather for k x k convs, which the
 * dense GEMM path pays too) in us[0] and of each uploaded sparse format kind
 * in us[kind] (negative where not uploaded), on a private stream with
 * random activations. Returns 0, or a cudaError_t / cublas status. */
int sp_cuda_sparse_time(const sp_cuda_sparse_layer *L, double us[4]);

/* Launches the layer: x is the NHWC / [n, k] fp16 input, y the [n, m]
 * output, bias [m] or NULL, residual [n, m] or NULL, act SP_CUDA_ACT_*.
 * col is a scratch device buffer of L->col_bytes; ws one of ws_bytes >=
 * L->ws_bytes, zeroed once when it was allocated; a ws shared by several
 * layers holds their largest split-K area plus their largest CSR transpose
 * (see sp_cuda_csr_workspace_bytes). Errors name the node. */
int sp_cuda_sparse_launch(const sp_cuda_sparse_layer *L, const sp_node *n, const void *x, void *y, const void *bias,
                          const void *residual, int act, void *col, void *ws, size_t ws_bytes, void *stream,
                          sp_err *err);

/* A k x k conv layer's patch gather: NHWC x -> col [n, k] (L->col_bytes),
 * in the K order of the layer's weight in format kind (SP_SPARSE_DENSE:
 * ONNX order, as cuBLAS's timing reference uses). Launch only; returns a
 * cudaError_t. */
int sp_cuda_sparse_gather(const sp_cuda_sparse_layer *L, int kind, const void *x, void *col, void *stream);

/* The layer's product with format kind (one of L->w->have): for k x k convs
 * the patch gather of x into col first, then the SpMM; a->n, a->x and a->ldx
 * are set here, the rest (y, epilogue, workspace, stream) by the caller.
 * Launch only. Returns 0, or a cudaError_t / SP_CUDA_E_* recorded in *st. */
int sp_cuda_sparse_product(const sp_cuda_sparse_layer *L, int kind, const void *x, void *col, sp_cuda_spmm_args *a,
                           sp_cuda_status *st);

/* Patch gather for k x k convs, fp16, NHWC input [b, h, w, c] -> col
 * [b*oh*ow, c*kh*kw] with column index (ci*kh + y)*kw + x (ONNX order,
 * rsc = 0) or (y*kw + x)*c + ci (rsc = 1, the order of weights pruned 2:4
 * along their input channels); zero padding. Returns a cudaError_t. */
int sp_cuda_im2col_nhwc(const void *x, void *col, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t oh, int64_t ow,
                        int rsc, void *stream);

#ifdef __cplusplus
}
#endif
#endif
