/*
 * cu_plan.h - the CUDA backend's plan as runtime/cuda/backend_cuda.c builds
 * and runs it, shared with its plan-time tuner (runtime/cuda/tune_plan.c).
 * Private to those two files.
 *
 * A plan is a list of steps (cu_step), each one kernel or library call on
 * buffers addressed relative to the plan's device arena (dptr). A node may
 * lower to alternative groups of steps (cu_step.alt, .var: 1 a conv as a
 * GEMM or a MatMul through cuBLASLt, 2 the conv through cuDNN or the
 * MatMul as the dense sm_90 GEMM with its activation fused, 3 the sparse
 * layer); tuning leaves one variant of each group running and marks the
 * others skipped.
 */
#ifndef SPRUN_CU_PLAN_H
#define SPRUN_CU_PLAN_H

#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/cuda_sparse.h"
#include "runtime/model.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#define LT_CANDIDATES 6  /* cuBLASLt heuristic results timed per GEMM */
#define DNN_CANDIDATES 4 /* cuDNN algorithms timed per conv */

typedef struct cu_session {
    cudaStream_t own;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    cudnnHandle_t dnn;
    void *blas_ws;
} cu_session;

/* A device address resolved at launch: arena-relative or absolute. */
typedef struct dptr {
    int base; /* 0 none, 1 arena offset, 2 absolute */
    int64_t off;
} dptr;

enum step_kind {
    ST_SPMM, ST_COPY, ST_BINARY, ST_WHERE, ST_UNARY, ST_BIAS_ACT, ST_SOFTMAX, ST_LAYERNORM, ST_MEAN, ST_POOL, ST_GPOOL,
    ST_GATHER, ST_CONV, ST_LT, ST_BATCHED, ST_BATCHED_PTR, ST_IM2COL, ST_ATTN, ST_GEMM90
};

typedef struct cu_step {
    int kind, ord, op, dtype, dtype2;
    dptr out, a, b, c, d, ws;
    spk_view view;
    int64_t rows, cols, x1, x2;
    float f1, f2;
    int act;
    float alpha, beta;
    spk_pool pool;
    spk_conv conv;
    int64_t is[3], os[2];
    /* cuDNN */
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnActivationDescriptor_t ad;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws_bytes;
    int fused_act; /* cudnnConvolutionBiasActivationForward */
    /* cuDNN's fastest algorithms by its own search, timed again once the
     * arena exists (cu_tune_plan); ws_bytes covers every one */
    cudnnConvolutionFwdAlgo_t dalgo[DNN_CANDIDATES];
    cudnnMathType_t dmath[DNN_CANDIDATES];
    int n_dnn;
    /* cuBLASLt */
    cublasLtMatmulDesc_t md;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t lalgo;
    int has_bias;
    cublasLtMatmulAlgo_t cand[LT_CANDIDATES]; /* timed once the arena exists */
    int n_cand;
    /* alternatives timed at plan time (a conv as GEMM or through cuDNN) */
    int alt, var, skip;
    /* cuBLAS batched */
    int m, n, k, batch;
    int64_t sa, sb, sc;
    /* cuBLAS pointer-array batched (attention through strided head views) */
    int opa, opb, lda, ldb, ldc;
    int64_t *boff;    /* 3 x batch byte offsets from a, b, out (host, plan time) */
    void **parr;      /* 3 x batch device pointers, filled once the arena exists */
    /* dense sm_90 GEMM with the activation fused (ST_GEMM90: out = act(a b^T + c + d), b [m][k],
     * m/n/k as sp_cuda_dense_gemm counts them); its launch configuration, tuned at plan time */
    int gcfg;
    /* fused attention (ST_ATTN) */
    spk_attn attn;
    /* sparse layer (ST_SPMM) */
    sp_cuda_sparse_layer sl;
    dptr col;
    /* the node's step info for the sparse variant, kept when a dense
     * winner's replaced it (info_choice) */
    const char *sparse_kernel;
    double sparse_pred_us;
    int sparse_info_kept;
} cu_step;

typedef struct cu_io {
    int value;
    dptr dev;    /* where the H2D / D2H copy lands or reads */
    size_t bytes;
    void *konst; /* a constant output's device copy (cu_plan.konst), for device outputs */
} cu_io;

typedef struct cu_plan {
    char *arena;
    size_t act_bytes, io_bytes, scratch_bytes, arena_bytes;
    char *pool; /* constants folded for this plan */
    struct cu_const *pc; /* backend_cuda.c */
    int n_pc;
    void *zeros;
    size_t zeros_bytes;
    int *layout;
    int64_t *doff;
    int *role, *node_ord;
    int *fx; /* 4 ints per order index: fused operand values */
    float *fscale;
    int64_t *fdiv, *fmod;
    /* per value: read in place as a slice of a Split's input (find_split_views):
     * the input value (-1: not a view; its last dim is the row pitch) and the
     * slice's first element along that dim */
    int *vview_src;
    int64_t *vview_off;
    cu_step *st;
    int n_st, cap_st;
    cu_io *in, *out;
    cudaGraphExec_t exec;
    cudaStream_t captured_on;
    cudaEvent_t *ev;
    int n_ev;
    int n_alt;
    int no_graph; /* capture failed once: replay eagerly (said under SPRUN_CUDA_DEBUG) */
    int n_runs;   /* the first run is eager: libraries finish their lazy set-up outside capture */
    /* SPRUN_CUDA_TIMING: device time of each graph replay, reported when the plan is freed */
    cudaEvent_t tev[2];
    float *tms;
    int n_tms;
    void *ptr_pool; /* pointer arrays of the ST_BATCHED_PTR steps */
    char *konst;    /* device copies of the outputs that are constants in this plan */
    /* lowering state */
    size_t scratch_cur;
    void *find_buf;
    size_t find_bytes;
    int find_warm; /* a cuDNN search already ran in this plan (the GPU is warm) */
    void *spmm_ws; /* workspace shared by the ST_SPMM steps: zeroed once; its split-K area (the first
                      spmm_splitk_max bytes, rounded up to 256) kept zeroed by the kernels, CSR
                      transposes in the rest */
    size_t spmm_ws_bytes;
    size_t spmm_splitk_max; /* of which the largest split-K area of a step */
    size_t spmm_xt_max;     /* and the largest X transposed by a CSR step, at the end (sp_cuda_csr_workspace_bytes) */
} cu_plan;

/* the node at plan position s */
static inline const sp_node *ord_node(const sp_plan *p, int s) { return &p->g.nodes[p->order[s]]; }

/* Launches step st on stream sm (backend_cuda.c). Not thread-safe for one
 * plan; SPRUN_OK or an error in err naming the node. */
int cu_launch_step(const cu_plan *cp, cu_session *cs, const sp_plan *p, const cu_step *st, cudaStream_t sm,
                   sp_err *err);
/* Every running (not skipped) step in order (backend_cuda.c); profile 1
 * records the plan's event pair around each node, 2 as graph nodes while
 * captured. SPRUN_OK, or the error of the first step that fails. */
int cu_launch_all(const cu_plan *cp, cu_session *cs, const sp_plan *p, cudaStream_t sm, int profile, sp_err *err);

/* Memo key (tune_memo.h) of a tuning decision about the node of step st
 * (tune_plan.c): what was decided ("lt<i>/<n>": the i-th cuBLASLt step of
 * the node among n candidates; "cudnn"; "conv": GEMM vs cuDNN; "gemm90":
 * cuBLASLt vs the dense sm_90 GEMM, "config/gemm90" the latter's tile; a
 * sparse format's "sparse/..." or "config/..."), the device, the node's name and
 * op, its input, weight and output shapes and the step's dtype. 0 when the
 * key does not fit len; thread-safe. */
int cu_tune_key(const sp_plan *p, const cu_step *st, const char *what, char *buf, size_t len);

/* Plan-time tuning (tune_plan.c): picks each cuBLASLt algorithm, cuDNN
 * algorithm, sparse launch configuration and each node's variant by timing
 * them on the plan's own buffers, or, with tuning off
 * (sp_cuda_plan_tuning), decides the variants by the cost model. Called
 * once per plan, after the arena exists, on the session's stream sm. */
void cu_tune_plan(cu_plan *cp, cu_session *cs, const sp_plan *p, cudaStream_t sm);

#endif
