/*
 * backend_cuda.c - the dense GPU backend: fp16 storage (fp32 accumulation)
 * or fp32, cuDNN convolutions in NHWC, cuBLASLt / cuBLAS matmuls, own
 * kernels for the rest, one device arena per plan and CUDA-graph replay.
 *
 * Model (shared by sessions, immutable after model_init): every constant a
 * kernel reads is converted to the storage type and uploaded once into one
 * device pool (Conv weights re-laid out KCRS -> KRSC for NHWC).
 * Plan (per session and input shapes): per-value layout (row-major, or
 * NHWC for 4-D conv activations), a device memory plan over the steps as
 * lowered (after the backend's own fusions: scale+mask+Softmax, residual
 * Add+LayerNorm; GELU is one node already, runtime/passes.c), cuDNN algorithms found once, cuBLASLt
 * heuristics, then the step list. The first run captures it into a CUDA
 * graph on the session's stream; later runs are H2D, graph launch, D2H.
 * Device I/O (sprun_tensor.memory, sprun_session_set_output_memory): a
 * device input is copied D2D where the H2D copy would land, outside the
 * graph; device outputs are returned where the D2H copy would read them,
 * and the run then returns without synchronizing.
 * Profiling replays the steps as a graph with an event pair per node.
 * The step list's types are in cu_plan.h; the choices left open at
 * lowering (cuBLASLt and cuDNN algorithms, conv as GEMM or cuDNN, dense or
 * sparse) are timed by tune_plan.c once the arena exists.
 */
#include "runtime/cuda/backend_cuda.h"

#include "kernels/cpu/tensor_cpu.h"
#include "ops/op.h"
#include "runtime/cuda/cu_plan.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/cuda_sparse.h"
#include "runtime/cuda/tune_memo.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/half.h"
#include "runtime/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CU_ALIGN 256
#define LT_WS_BYTES ((size_t)32 << 20)
#define FIND_WS_LIMIT ((size_t)256 << 20)
#define BLAS_WS_BYTES ((size_t)8 << 20)

static size_t align_up(size_t x) { return (x + CU_ALIGN - 1) & ~(size_t)(CU_ALIGN - 1); }

/* ------------------------------------------------------------------------ */
/* errors                                                                    */
/* ------------------------------------------------------------------------ */

static int fail_common(sp_err *err, int code, const char *call, const char *why, const char *file, int line,
                       const sp_node *node)
{
    char label[256] = "";
    if (node)
        sp_node_label(node, label, sizeof label);
    const char *base = strrchr(file, '/');
    return sp_err_set(err, code, "%s%s%s%s:%d: %s failed: %s", node ? "node " : "", node ? label : "",
                      node ? ": " : "", base ? base + 1 : file, line, call, why);
}

int sp_cu_fail_rt(sp_err *err, cudaError_t e, const char *call, const char *file, int line, const sp_node *node)
{
    (void)cudaGetLastError(); /* clear a non-sticky error so the session stays usable */
    int code = e == cudaErrorMemoryAllocation ? SPRUN_ERR_OUT_OF_MEMORY : SPRUN_ERR_BACKEND;
    return fail_common(err, code, call, cudaGetErrorString(e), file, line, node);
}

int sp_cu_fail_blas(sp_err *err, cublasStatus_t e, const char *call, const char *file, int line, const sp_node *node)
{
    int code = e == CUBLAS_STATUS_ALLOC_FAILED ? SPRUN_ERR_OUT_OF_MEMORY : SPRUN_ERR_BACKEND;
    char why[128];
    snprintf(why, sizeof why, "%s (%d)", cublasGetStatusString(e), (int)e);
    return fail_common(err, code, call, why, file, line, node);
}

int sp_cu_fail_dnn(sp_err *err, cudnnStatus_t e, const char *call, const char *file, int line, const sp_node *node)
{
    int code = (e == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                e == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
                   ? SPRUN_ERR_OUT_OF_MEMORY
                   : SPRUN_ERR_BACKEND;
    char why[600];
    char last[512] = "";
    cudnnGetLastErrorString(last, sizeof last);
    snprintf(why, sizeof why, "%s%s%s", cudnnGetErrorString(e), last[0] ? ": " : "", last);
    return fail_common(err, code, call, why, file, line, node);
}

int sp_cu_fail_kernel(sp_err *err, int e, const char *call, const char *file, int line, const sp_node *node)
{
    if (e == SPK_E_UNSUPPORTED)
        return fail_common(err, SPRUN_ERR_UNSUPPORTED, call, "dtype or mode not supported by the CUDA kernel", file,
                           line, node);
    return sp_cu_fail_rt(err, (cudaError_t)e, call, file, line, node);
}

/* ------------------------------------------------------------------------ */
/* ops the backend runs                                                      */
/* ------------------------------------------------------------------------ */

static const char *const k_supported[] = {
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Where", "Relu", "Erf", "Sqrt",
    "Exp", "Tanh", "Sigmoid", "Neg", "Abs", "Reciprocal", "Log", "Gelu", "Clip", "LeakyRelu", "HardSwish",
    "HardSigmoid", "Softmax", "LayerNormalization", "ReduceMean", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Transpose", "Gather", "Concat", "Slice", "Expand", "Cast", "Reshape", "Flatten", "Squeeze",
    "Unsqueeze", "Identity", "Dropout", "Split", NULL};

static int cu_supports(const char *op)
{
    for (int i = 0; k_supported[i]; i++)
        if (!strcmp(k_supported[i], op))
            return 1;
    return 0;
}

/* Node-level limits of ops the backend otherwise runs: Dropout's mask output
 * (the backend aliases Dropout to its input and writes no mask), and Pow with
 * an integer exponent (the elementwise kernels read both operands as the
 * compute type). Such nodes are reported as unsupported, never run wrongly. */
static int cu_supports_node(const sp_graph *g, const sp_node *n)
{
    if (!cu_supports(n->op_type))
        return 0;
    if (!strcmp(n->op_type, "Dropout") && n->n_out > 1 && n->out[1] >= 0)
        return 0;
    if (!strcmp(n->op_type, "Pow") && n->n_in > 1 && n->in[1] >= 0) {
        const int dt = g->values[n->in[1]].dtype;
        if (dt != 0 && dt != SPRUN_DTYPE_FLOAT && dt != SPRUN_DTYPE_FLOAT16 && dt != SPRUN_DTYPE_DOUBLE)
            return 0;
    }
    return 1;
}

static int is_alias_op(const char *op)
{
    return !strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") ||
           !strcmp(op, "Identity") || !strcmp(op, "Dropout");
}

/* Inputs read on the host as parameters, never uploaded. */
static int is_param_input(const sp_node *n, int k)
{
    const char *t = n->op_type;
    if (k == 0)
        return 0;
    if (!strcmp(t, "Reshape") || !strcmp(t, "Unsqueeze") || !strcmp(t, "Squeeze") || !strcmp(t, "Expand") ||
        !strcmp(t, "ReduceMean") || !strcmp(t, "Clip") || !strcmp(t, "Slice"))
        return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* model: constants uploaded once                                            */
/* ------------------------------------------------------------------------ */

/* Constant forms: as stored; Conv weights KCRS -> KRSC (NHWC cuDNN filters
 * and the [K, R*S*C] GEMM operand); KRSC with each row zero-padded to a
 * multiple of 8 elements (GEMM of convs like ResNet's 7x7x3 stem). */
/* device forms of a constant: as stored; a conv weight [K][C][R][S] as
 * [K][R][S][C] (KRSC; KRSCP with rows padded to 8 elements); a 2-D weight
 * [K][M] transposed to [M][K] (T: the dense sm_90 GEMM's operand) */
enum { FORM_PLAIN = 0, FORM_KRSC = 1, FORM_KRSCP = 2, FORM_T = 3 };

static int64_t pad8(int64_t x) { return (x + 7) & ~(int64_t)7; }

static size_t const_bytes(const sp_value *v, int form, int ddt)
{
    int64_t n = sp_shape_numel(&v->shape);
    if (form == FORM_KRSCP && v->shape.rank == 4)
        n = v->shape.d[0] * pad8(v->shape.d[1] * v->shape.d[2] * v->shape.d[3]);
    return (size_t)(n > 0 ? n : 0) * sp_dtype_size(ddt);
}

typedef struct cu_const {
    const void *host; /* the constant's payload: identifies it across plan clones */
    int form;
    int dtype; /* device dtype */
    size_t off, bytes;
} cu_const;

typedef struct cu_model {
    int device;
    int fp16;
    char *pool;
    cu_const *c;
    int n, cap;
    sp_cuda_sparse_set sparse; /* sparse weights, uploaded once (runtime/cuda/cuda_sparse.c) */
} cu_model;

static int storage_dtype(int fp16, int dt) { return (dt == SPRUN_DTYPE_FLOAT && fp16) ? SPRUN_DTYPE_FLOAT16 : dt; }

/* Converted host copy of constant v in the given form and device dtype. */
/* fp16 of a constant, finite values saturated to +-65504: HF's attention
 * mask multiplies by float32's min, which would become -inf and then
 * 0 * -inf = NaN for the unmasked positions. */
static uint16_t f16_sat(float x)
{
    if (isfinite(x))
        x = x > 65504.f ? 65504.f : (x < -65504.f ? -65504.f : x);
    return sp_f32_to_f16(x);
}

static void *convert_const(const sp_value *v, int form, int ddt, size_t *bytes)
{
    int64_t n = sp_shape_numel(&v->shape);
    size_t es = sp_dtype_size(ddt);
    if (n < 0 || !es)
        return NULL;
    *bytes = const_bytes(v, form, ddt);
    char *out = calloc(1, *bytes ? *bytes : 1);
    if (!out)
        return NULL;
    const float *src = v->data;
    if ((form == FORM_KRSC || form == FORM_KRSCP) && v->shape.rank == 4 && v->dtype == SPRUN_DTYPE_FLOAT) {
        int64_t K = v->shape.d[0], C = v->shape.d[1], R = v->shape.d[2], S = v->shape.d[3];
        int64_t row = form == FORM_KRSCP ? pad8(R * S * C) : R * S * C;
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t s = 0; s < S; s++) {
                        float x = src[((k * C + c) * R + r) * S + s];
                        int64_t o = k * row + (r * S + s) * C + c;
                        if (ddt == SPRUN_DTYPE_FLOAT16)
                            ((uint16_t *)out)[o] = f16_sat(x);
                        else
                            ((float *)out)[o] = x;
                    }
        return out;
    }
    if (form == FORM_T && v->shape.rank == 2) {
        const int64_t K = v->shape.d[0], M = v->shape.d[1];
        const size_t ses = sp_dtype_size(v->dtype);
        const int cvt = v->dtype == SPRUN_DTYPE_FLOAT && ddt == SPRUN_DTYPE_FLOAT16;
        if (!cvt && ses != es) {
            free(out);
            return NULL;
        }
        for (int64_t k = 0; k < K; k++)
            for (int64_t m = 0; m < M; m++) {
                if (cvt)
                    ((uint16_t *)out)[m * K + k] = f16_sat(src[k * M + m]);
                else
                    memcpy(out + (size_t)(m * K + k) * es, (const char *)v->data + (size_t)(k * M + m) * es, es);
            }
        return out;
    }
    if (v->dtype == SPRUN_DTYPE_FLOAT && ddt == SPRUN_DTYPE_FLOAT16) {
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)out)[i] = f16_sat(src[i]);
        return out;
    }
    memcpy(out, v->data, *bytes);
    return out;
}

static const cu_const *find_const(const cu_const *c, int n, const void *host, int form)
{
    for (int i = 0; i < n; i++)
        if (c[i].host == host && c[i].form == form)
            return &c[i];
    return NULL;
}

/* Uploads the listed (value, form) constants of graph g into one pool. */
typedef struct const_req {
    int value, form;
} const_req;

static int upload_consts(const sp_graph *g, int fp16, const const_req *req, int nreq, char **pool, cu_const **out,
                         int *n_out, sp_err *err)
{
    const sp_node *node = NULL;
    *pool = NULL;
    *out = NULL;
    *n_out = 0;
    if (nreq == 0)
        return SPRUN_OK;
    cu_const *c = calloc((size_t)nreq, sizeof *c);
    if (!c)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory listing constants");
    size_t total = 0;
    int n = 0;
    for (int i = 0; i < nreq; i++) {
        const sp_value *v = &g->values[req[i].value];
        if (find_const(c, n, v->data, req[i].form))
            continue;
        int ddt = storage_dtype(fp16, v->dtype);
        int64_t numel = sp_shape_numel(&v->shape);
        c[n].host = v->data;
        c[n].form = req[i].form;
        c[n].dtype = ddt;
        c[n].bytes = const_bytes(v, req[i].form, ddt);
        (void)numel;
        c[n].off = total;
        total += align_up(c[n].bytes ? c[n].bytes : 1);
        n++;
    }
    char *dev = NULL;
    cudaError_t e = cudaMalloc((void **)&dev, total ? total : CU_ALIGN);
    if (e != cudaSuccess) {
        free(c);
        return sp_cu_fail_rt(err, e, "cudaMalloc(weights)", __FILE__, __LINE__, NULL);
    }
    for (int i = 0, j = 0; i < nreq && j < n; i++) {
        const sp_value *v = &g->values[req[i].value];
        if (c[j].host != v->data || c[j].form != req[i].form)
            continue;
        size_t bytes = 0;
        void *h = convert_const(v, c[j].form, c[j].dtype, &bytes);
        if (!h) {
            cudaFree(dev);
            free(c);
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory converting constant '%s'", v->name);
        }
        e = cudaMemcpy(dev + c[j].off, h, bytes, cudaMemcpyHostToDevice);
        free(h);
        if (e != cudaSuccess) {
            cudaFree(dev);
            free(c);
            return sp_cu_fail_rt(err, e, "cudaMemcpy(weights)", __FILE__, __LINE__, node);
        }
        j++;
    }
    *pool = dev;
    *out = c;
    *n_out = n;
    return SPRUN_OK;
}

/* SPRUN_CUDA_GEMM90: 0 turns the dense sm_90 GEMM alternative off (A/B
 * timing), "force" lowers the MatMuls it serves to it alone (tests); read
 * once. Returns 0 off, 1 alternative (default), 2 forced. */
static int gemm90_env(void)
{
    static int env = -1; /* 0 off, 1 alternative, 2 forced */
    if (env < 0) {
        const char *e = getenv("SPRUN_CUDA_GEMM90");
        env = e && e[0] == '0' ? 0 : e && !strcmp(e, "force") ? 2 : 1;
    }
    return env;
}

/* Whether MatMul / Gemm node n may run as the dense sm_90 GEMM
 * (sp_cuda_dense_gemm) as an alternative to cuBLASLt: fp16 on sm_90 (dense90),
 * a constant 2-D weight, no transA and alpha 1 (lower_gemm also wants the
 * Gemm's effective beta 1), and a fused activation cuBLASLt's epilogue
 * cannot apply (it fuses ReLU; anything else would be a second pass over
 * the output); not when gemm90_env() is 0. Returns the weight's form:
 * FORM_T for [K][M] weights, FORM_PLAIN for a Gemm's transB one ([M][K]
 * already), or -1. */
static int gemm90_weight_form(const sp_graph *g, const sp_node *n, int dense90)
{
    const int env = gemm90_env();
    if (!dense90 || !env || n->n_in < 2 || n->in[1] < 0 || n->fusion.act == SP_ACT_NONE ||
        n->fusion.act == SP_ACT_RELU)
        return -1;
    const int gemm = !strcmp(n->op_type, "Gemm");
    if (!gemm && strcmp(n->op_type, "MatMul"))
        return -1;
    const sp_value *w = &g->values[n->in[1]];
    if (w->kind != SP_VAL_CONST || !w->data || w->shape.rank != 2 || w->shape.d[0] % 8 || w->shape.d[1] % 8)
        return -1;
    if (gemm && (sp_attr_int(n, "transA", 0) || sp_attr_float(n, "alpha", 1.f) != 1.f))
        return -1;
    return gemm && sp_attr_int(n, "transB", 0) ? FORM_PLAIN : FORM_T;
}

/* Constant inputs of live nodes that kernels read, with their form (and a
 * second form where a kernel needs one: KRSCP, or T when dense90 lets a
 * MatMul run as the dense sm_90 GEMM). */
static int collect_const_reqs(const sp_graph *g, const int *order, int n_order, int dense90, const_req **out,
                              int *n_out, sp_err *err)
{
    int cap = 64, n = 0;
    const_req *r = malloc((size_t)cap * sizeof *r);
    if (!r)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory listing constants");
    int count = order ? n_order : g->n_nodes;
    for (int s = 0; s < count; s++) {
        const sp_node *nd = &g->nodes[order ? order[s] : s];
        if (nd->dead || !nd->op || (nd->op->flags & SP_OPF_SHAPE_ONLY))
            continue;
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v < 0 || g->values[v].kind != SP_VAL_CONST || !g->values[v].data || is_param_input(nd, k))
                continue;
            if (is_alias_op(nd->op_type))
                continue;
            if (n + 2 > cap) {
                cap *= 2;
                const_req *nr = realloc(r, (size_t)cap * sizeof *nr);
                if (!nr) {
                    free(r);
                    return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory listing constants");
                }
                r = nr;
            }
            r[n].value = v;
            r[n].form = (!strcmp(nd->op_type, "Conv") && k == 1) ? FORM_KRSC : FORM_PLAIN;
            n++;
            const sp_shape *ws = &g->values[v].shape;
            if (r[n - 1].form == FORM_KRSC && ws->rank == 4 && (ws->d[1] * ws->d[2] * ws->d[3]) % 8 != 0) {
                r[n].value = v;
                r[n].form = FORM_KRSCP;
                n++;
            } else if (k == 1 && gemm90_weight_form(g, nd, dense90) == FORM_T) {
                r[n].value = v;
                r[n].form = FORM_T;
                n++;
            }
        }
    }
    *out = r;
    *n_out = n;
    return SPRUN_OK;
}

int sp_cuda_available(int device_id)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return device_id >= 0 && device_id < n;
}

static int cu_model_init(struct sprun_model *m, sp_err *err)
{
    const sp_node *node = NULL;
    const sp_graph *g = &m->graph;
    /* Every op without a CUDA implementation, listed at once. */
    int n_bad = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (n->dead || !n->op || (n->op->flags & SP_OPF_SHAPE_ONLY) || cu_supports_node(g, n))
            continue;
        if (!n_bad)
            sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "the CUDA backend has no implementation of:");
        char label[256];
        sp_err_append(err, " %s;", sp_node_label(n, label, sizeof label));
        n_bad++;
    }
    if (n_bad)
        return SPRUN_ERR_UNSUPPORTED;
    CU_RT(cudaSetDevice(m->opt.device_id));
    cu_model *cm = calloc(1, sizeof *cm);
    if (!cm)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating the CUDA model");
    cm->device = m->opt.device_id;
    cm->fp16 = m->opt.precision != SPRUN_PRECISION_FP32;
    const_req *req = NULL;
    int nreq = 0;
    int rc = collect_const_reqs(g, NULL, 0, 0, &req, &nreq, err);
    if (rc == SPRUN_OK)
        rc = upload_consts(g, cm->fp16, req, nreq, &cm->pool, &cm->c, &cm->n, err);
    free(req);
    if (rc != SPRUN_OK) {
        free(cm);
        return rc;
    }
    m->backend_model = cm;
    /* Per-weight format choice (cost model or --format) and upload of the
     * sparse ones; the model state is already attached, so cu_model_free
     * releases whatever was uploaded if this fails. */
    return sp_cuda_sparse_prepare(m, cm->fp16, NULL, &cm->sparse, err);
}

static void cu_model_free(struct sprun_model *m)
{
    cu_model *cm = m->backend_model;
    if (!cm)
        return;
    sp_cuda_sparse_release(&cm->sparse);
    cudaFree(cm->pool);
    free(cm->c);
    free(cm);
    m->backend_model = NULL;
}

/* ------------------------------------------------------------------------ */
/* session                                                                   */
/* ------------------------------------------------------------------------ */

static void cu_session_free(struct sprun_session *s)
{
    cu_session *cs = s->backend_session;
    if (!cs)
        return;
    if (cs->own)
        cudaStreamSynchronize(cs->own);
    if (cs->dnn)
        cudnnDestroy(cs->dnn);
    if (cs->lt)
        cublasLtDestroy(cs->lt);
    if (cs->blas)
        cublasDestroy(cs->blas);
    cudaFree(cs->blas_ws);
    if (cs->own)
        cudaStreamDestroy(cs->own);
    free(cs);
    s->backend_session = NULL;
}

static int cu_session_init(struct sprun_session *s, sp_err *err)
{
    const sp_node *node = NULL;
    cu_model *cm = s->model->backend_model;
    CU_RT(cudaSetDevice(cm->device));
    cu_session *cs = calloc(1, sizeof *cs);
    if (!cs)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a CUDA session");
    s->backend_session = cs;
    int rc = SPRUN_OK;
#define TRY(x)                                                                                                   \
    do {                                                                                                         \
        if ((rc = (x)) != SPRUN_OK) {                                                                            \
            cu_session_free(s);                                                                                  \
            return rc;                                                                                           \
        }                                                                                                        \
    } while (0)
    TRY(cudaStreamCreateWithFlags(&cs->own, cudaStreamNonBlocking) == cudaSuccess
            ? 0
            : sp_cu_fail_rt(err, cudaGetLastError(), "cudaStreamCreateWithFlags", __FILE__, __LINE__, NULL));
    cublasStatus_t bs = cublasCreate(&cs->blas);
    TRY(bs == CUBLAS_STATUS_SUCCESS ? 0 : sp_cu_fail_blas(err, bs, "cublasCreate", __FILE__, __LINE__, NULL));
    bs = cublasLtCreate(&cs->lt);
    TRY(bs == CUBLAS_STATUS_SUCCESS ? 0 : sp_cu_fail_blas(err, bs, "cublasLtCreate", __FILE__, __LINE__, NULL));
    cudnnStatus_t ds = cudnnCreate(&cs->dnn);
    TRY(ds == CUDNN_STATUS_SUCCESS ? 0 : sp_cu_fail_dnn(err, ds, "cudnnCreate", __FILE__, __LINE__, NULL));
    cudaError_t e = cudaMalloc(&cs->blas_ws, BLAS_WS_BYTES);
    TRY(e == cudaSuccess ? 0 : sp_cu_fail_rt(err, e, "cudaMalloc(cublas workspace)", __FILE__, __LINE__, NULL));
    bs = cublasSetWorkspace(cs->blas, cs->blas_ws, BLAS_WS_BYTES);
    TRY(bs == CUBLAS_STATUS_SUCCESS ? 0 : sp_cu_fail_blas(err, bs, "cublasSetWorkspace", __FILE__, __LINE__, NULL));
    /* fp32 mode means fp32 arithmetic: no TF32 behind the caller's back. */
    bs = cublasSetMathMode(cs->blas, cm->fp16 ? CUBLAS_DEFAULT_MATH : CUBLAS_PEDANTIC_MATH);
    TRY(bs == CUBLAS_STATUS_SUCCESS ? 0 : sp_cu_fail_blas(err, bs, "cublasSetMathMode", __FILE__, __LINE__, NULL));
#undef TRY
    return SPRUN_OK;
}

/* ------------------------------------------------------------------------ */
/* plan: layouts, fusions, memory, steps                                     */
/* ------------------------------------------------------------------------ */

enum { LAY_ROW = 0, LAY_NHWC = 1, LAY_ANY = 2 };
enum { R_NORMAL = 0, R_NOP, R_SOFTMAX, R_LNRES, R_BMM, R_ATTN, R_COUNT };

static int vdtype(const cu_model *cm, const sp_value *v) { return storage_dtype(cm->fp16, v->dtype); }

static int phys_distinct(const sp_shape *s) { return s->rank == 4 && s->d[1] > 1 && s->d[2] * s->d[3] > 1; }

static void row_strides(const sp_shape *s, int64_t *st)
{
    int64_t acc = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= s->d[d];
    }
}

static void layout_strides(const sp_shape *s, int lay, int64_t *st)
{
    if (lay == LAY_NHWC && s->rank == 4) {
        int64_t C = s->d[1], H = s->d[2], W = s->d[3];
        st[0] = H * W * C;
        st[1] = 1;
        st[2] = W * C;
        st[3] = C;
    } else
        row_strides(s, st);
}

static void *resolve(const cu_plan *cp, dptr d)
{
    if (d.base == 1)
        return cp->arena + d.off;
    if (d.base == 2)
        return (void *)(uintptr_t)d.off;
    return NULL;
}

static dptr dabs(const void *p)
{
    dptr d = {p ? 2 : 0, (int64_t)(uintptr_t)p};
    return d;
}

static dptr darena(int64_t off)
{
    dptr d = {1, off};
    return d;
}

static dptr dadd(dptr d, int64_t bytes)
{
    if (d.base)
        d.off += bytes;
    return d;
}

/* Orders dims by the destination's stride, drops size-1 dims and merges
 * dims that are contiguous in every operand. */
static int view_simplify(spk_view *v, int nops)
{
    int r = 0;
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d] == 1)
            continue;
        v->dims[r] = v->dims[d];
        for (int k = 0; k < nops; k++)
            v->s[k][r] = v->s[k][d];
        r++;
    }
    v->rank = r;
    for (int i = 1; i < r; i++) /* insertion sort, stable, by s[0] descending */
        for (int j = i; j > 0 && v->s[0][j] > v->s[0][j - 1]; j--) {
            int64_t t = v->dims[j];
            v->dims[j] = v->dims[j - 1];
            v->dims[j - 1] = t;
            for (int k = 0; k < nops; k++) {
                t = v->s[k][j];
                v->s[k][j] = v->s[k][j - 1];
                v->s[k][j - 1] = t;
            }
        }
    int w = 0;
    for (int d = 1; d < r; d++) {
        int merge = 1;
        for (int k = 0; k < nops; k++)
            if (v->s[k][w] != v->s[k][d] * v->dims[d])
                merge = 0;
        if (merge) {
            v->dims[w] *= v->dims[d];
            for (int k = 0; k < nops; k++)
                v->s[k][w] = v->s[k][d];
        } else {
            w++;
            v->dims[w] = v->dims[d];
            for (int k = 0; k < nops; k++)
                v->s[k][w] = v->s[k][d];
        }
    }
    v->rank = r ? w + 1 : 0;
    if (v->rank == 0) {
        v->rank = 1;
        v->dims[0] = 1;
        for (int k = 0; k < nops; k++)
            v->s[k][0] = 1;
    }
    return v->rank <= SPK_MAX_RANK;
}

/* Broadcast strides of value shape `in` (logical strides ist) against the
 * output shape out (right-aligned), into st[out.rank]. */
static void bcast_strides(const sp_shape *out, const sp_shape *in, const int64_t *ist, int64_t *st)
{
    int off = out->rank - in->rank;
    for (int d = 0; d < out->rank; d++) {
        int id = d - off;
        st[d] = (id < 0 || in->d[id] == 1) ? 0 : ist[id];
    }
}

static int scalar_const(const sp_graph *g, int v, float *out)
{
    if (v < 0)
        return 0;
    const sp_value *val = &g->values[v];
    if (val->kind != SP_VAL_CONST || !val->data || sp_shape_numel(&val->shape) != 1)
        return 0;
    *out = (float)sp_ld_f64(val->dtype, val->data, 0);
    return 1;
}

static int *use_counts(const sp_plan *p)
{
    const sp_graph *g = &p->g;
    int *u = calloc((size_t)(g->n_values > 0 ? g->n_values : 1), sizeof *u);
    if (!u)
        return NULL;
    for (int i = 0; i < g->n_outputs; i++)
        u[g->outputs[i]] += 1000; /* never fuse away a graph output */
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = &g->nodes[p->order[s]];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                u[n->in[k]]++;
    }
    return u;
}

/* The order index of the one node reading value v whatever its role (the
 * head-split Transposes are R_NOP once attention took them), or -1. */
static int only_reader(const sp_plan *p, const int *uses, int v)
{
    if (v < 0 || uses[v] != 1)
        return -1;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = &p->g.nodes[p->order[s]];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v)
                return s;
    }
    return -1;
}

/* The single consumer node (order index) of value v, or -1 (also when that
 * node is fused away). */
static int sole_consumer(const sp_plan *p, const cu_plan *cp, const int *uses, int v)
{
    const int s = only_reader(p, uses, v);
    return s >= 0 && cp->role[s] != R_NOP ? s : -1;
}

/* Backend-level fusions the IR does not record (see the file comment). */
static void find_fusions(const sp_plan *p, cu_plan *cp, const int *uses)
{
    const sp_graph *g = &p->g;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = ord_node(p, s);
        /* [Div|Mul by scalar] -> Add(mask) -> Softmax(last axis) */
        if (!strcmp(n->op_type, "Softmax") && cp->role[s] == R_NORMAL) {
            const sp_value *sv = &g->values[n->in[0]];
            int r = sv->shape.rank;
            int axis = sp_axis(sp_attr_int(n, "axis", -1), r);
            if (r < 1 || axis != r - 1)
                continue;
            cp->fx[4 * s] = n->in[0];
            cp->fx[4 * s + 1] = -1;
            cp->fscale[s] = 1.f;
            int pv = sv->producer;
            if (pv < 0 || uses[n->in[0]] != 1)
                continue;
            const sp_node *an = &g->nodes[pv];
            int a_ord = cp->node_ord[pv];
            if (a_ord < 0 || strcmp(an->op_type, "Add") || an->n_in != 2)
                continue;
            int t = -1, mask = -1;
            for (int k = 0; k < 2; k++) {
                const sp_value *v = &g->values[an->in[k]];
                if (sp_shape_equal(&v->shape, &sv->shape) && t < 0)
                    t = an->in[k];
                else
                    mask = an->in[k];
            }
            if (t < 0 || mask < 0)
                continue;
            const sp_value *mv = &g->values[mask];
            int64_t cols = sv->shape.d[r - 1];
            int mr = mv->shape.rank;
            if (mr > r || mr < 1 || mv->shape.d[mr - 1] != cols || mv->dtype != sv->dtype)
                continue;
            int64_t md[SP_MAX_RANK];
            for (int d = 0; d < r; d++)
                md[d] = d < r - mr ? 1 : mv->shape.d[d - (r - mr)];
            int j = -1;
            for (int d = 0; d < r - 1; d++)
                if (md[d] != 1)
                    j = d;
            int ok = 1;
            int64_t div = 1, mod = 1;
            for (int d = 0; d <= j; d++) {
                ok &= md[d] == sv->shape.d[d];
                mod *= sv->shape.d[d];
            }
            for (int d = j + 1; d < r - 1; d++)
                div *= sv->shape.d[d];
            if (!ok)
                continue;
            cp->role[a_ord] = R_NOP;
            cp->fx[4 * s] = t;
            cp->fx[4 * s + 1] = mask;
            cp->fdiv[s] = div;
            cp->fmod[s] = mod;
            const sp_value *tv = &g->values[t];
            if (tv->producer >= 0 && uses[t] == 1 && cp->node_ord[tv->producer] >= 0) {
                const sp_node *dn = &g->nodes[tv->producer];
                float sc = 0.f;
                int base = -1;
                if (!strcmp(dn->op_type, "Div") && scalar_const(g, dn->in[1], &sc) && sc != 0.f) {
                    base = dn->in[0];
                    sc = 1.f / sc;
                } else if (!strcmp(dn->op_type, "Mul") && scalar_const(g, dn->in[1], &sc))
                    base = dn->in[0];
                else if (!strcmp(dn->op_type, "Mul") && scalar_const(g, dn->in[0], &sc))
                    base = dn->in[1];
                if (base >= 0 && sp_shape_equal(&g->values[base].shape, &sv->shape)) {
                    cp->role[cp->node_ord[tv->producer]] = R_NOP;
                    cp->fx[4 * s] = base;
                    cp->fscale[s] = sc;
                }
            }
            cp->role[s] = R_SOFTMAX;
            continue;
        }
        /* Add(a, b) -> LayerNormalization: the sum is formed in the norm. */
        if (!strcmp(n->op_type, "LayerNormalization") && cp->role[s] == R_NORMAL) {
            int x = n->in[0];
            const sp_value *xv = &g->values[x];
            if (xv->producer < 0 || uses[x] != 1 || cp->node_ord[xv->producer] < 0)
                continue;
            const sp_node *an = &g->nodes[xv->producer];
            if (strcmp(an->op_type, "Add") || an->n_in != 2)
                continue;
            const sp_value *a = &g->values[an->in[0]], *b = &g->values[an->in[1]];
            if (!sp_shape_equal(&a->shape, &xv->shape) || !sp_shape_equal(&b->shape, &xv->shape) ||
                a->kind == SP_VAL_CONST || b->kind == SP_VAL_CONST)
                continue;
            cp->role[cp->node_ord[xv->producer]] = R_NOP;
            cp->role[s] = R_LNRES;
            cp->fx[4 * s] = an->in[0];
            cp->fx[4 * s + 1] = an->in[1];
        }
    }
}

/* st = the strides of Transpose ord t's output, given its input's (xs). */
static void transpose_strides(const sp_plan *p, int t, const int64_t *xs, int rank, int64_t *st)
{
    const int64_t *perm = NULL;
    const int64_t np = sp_attr_ints(ord_node(p, t), "perm", &perm);
    for (int d = 0; d < rank; d++)
        st[d] = xs[np == rank && perm ? perm[d] : rank - 1 - d];
}

/* Strides of a 4-D-ish operand seen through Transpose ord t (-1: none),
 * assuming row-major storage of the transpose's input. */
static void perm_strides(const sp_plan *p, int t, const sp_shape *own, int64_t *st)
{
    if (t < 0) {
        row_strides(own, st);
        return;
    }
    const sp_shape *xs = &p->g.values[ord_node(p, t)->in[0]].shape;
    int64_t rs[SP_MAX_RANK];
    row_strides(xs, rs);
    transpose_strides(p, t, rs, xs->rank, st);
}

/* Transpose (order index) producing v for this consumer alone, or -1. */
static int transpose_into(const sp_plan *p, const cu_plan *cp, const int *uses, int v)
{
    const sp_value *val = &p->g.values[v];
    if (val->producer < 0 || uses[v] != 1)
        return -1;
    int t = cp->node_ord[val->producer];
    if (t < 0 || cp->role[t] != R_NORMAL || strcmp(ord_node(p, t)->op_type, "Transpose"))
        return -1;
    const sp_value *x = &p->g.values[ord_node(p, t)->in[0]];
    return x->kind == SP_VAL_CONST ? -1 : t;
}

/* Node n is a batched MatMul of two activations (rank >= 3, the same batch
 * dims) with nothing fused into it. */
static int act_matmul(const sp_graph *g, const sp_node *n)
{
    if (strcmp(n->op_type, "MatMul") || n->n_in != 2 || n->fusion.act != SP_ACT_NONE || n->fusion.residual_input >= 0)
        return 0;
    const sp_value *a = &g->values[n->in[0]], *b = &g->values[n->in[1]], *y = &g->values[n->out[0]];
    const int r = y->shape.rank;
    if (r < 3 || a->shape.rank != r || b->shape.rank != r || a->kind == SP_VAL_CONST || b->kind == SP_VAL_CONST)
        return 0;
    for (int d = 0; d < r - 2; d++)
        if (a->shape.d[d] != y->shape.d[d] || b->shape.d[d] != y->shape.d[d])
            return 0;
    return 1;
}

/* Batched MatMul whose operands are head-split Transposes (or whose output
 * is merged back by one): cuBLAS reads/writes the strided views directly
 * through pointer arrays, and the Transposes disappear. */
static void find_bmm_fusions(const sp_plan *p, cu_plan *cp, const int *uses)
{
    const sp_graph *g = &p->g;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = ord_node(p, s);
        if (cp->role[s] != R_NORMAL || !act_matmul(g, n))
            continue;
        const sp_value *a = &g->values[n->in[0]], *b = &g->values[n->in[1]];
        const int r = g->values[n->out[0]].shape.rank;
        int ta = transpose_into(p, cp, uses, n->in[0]), tb = transpose_into(p, cp, uses, n->in[1]), tc = -1;
        int c = sole_consumer(p, cp, uses, n->out[0]);
        if (c >= 0 && cp->role[c] == R_NORMAL && !strcmp(ord_node(p, c)->op_type, "Transpose")) {
            const int64_t *perm = NULL;
            if (sp_attr_ints(ord_node(p, c), "perm", &perm) == r && perm && perm[r - 1] == r - 1)
                tc = c;
        }
        int64_t sa[SP_MAX_RANK], sb[SP_MAX_RANK];
        perm_strides(p, ta, &a->shape, sa);
        perm_strides(p, tb, &b->shape, sb);
        if (ta >= 0 && sa[r - 1] != 1 && sa[r - 2] != 1)
            ta = -1;
        if (tb >= 0 && sb[r - 1] != 1 && sb[r - 2] != 1)
            tb = -1;
        if (ta < 0 && tb < 0 && tc < 0)
            continue;
        cp->role[s] = R_BMM;
        cp->fx[4 * s] = ta;
        cp->fx[4 * s + 1] = tb;
        cp->fx[4 * s + 2] = tc;
        if (ta >= 0)
            cp->role[ta] = R_NOP;
        if (tb >= 0)
            cp->role[tb] = R_NOP;
        if (tc >= 0)
            cp->role[tc] = R_NOP;
    }
}

/* Order index s is a MatMul of two activations with nothing fused into
 * it, through head-split views (R_BMM) or plain (R_NORMAL). */
static int plain_act_matmul(const sp_plan *p, const cu_plan *cp, int s)
{
    return (cp->role[s] == R_BMM || cp->role[s] == R_NORMAL) && act_matmul(&p->g, ord_node(p, s));
}

/* MatMul(Q, K^T) -> [scale] -> [Add(mask)] -> Softmax -> MatMul(., V), as
 * find_fusions and find_bmm_fusions left it (an R_BMM, an R_SOFTMAX whose
 * input is that matmul's output, an R_BMM reading the probabilities
 * untransposed), becomes one R_ATTN step at the second matmul
 * (kernels/cuda/attention.cu): fx[4s] = the QK^T order index, fx[4s+1..2]
 * stay V's and the output's transposes, fx[4s+3] = the softmax's. fp16
 * plans only; head dims 32, 64, 128; every view contiguous in d.
 * SPRUN_CUDA_ATTN=0 keeps the three steps (A/B timing). */
static void find_attention_fusions(const sp_plan *p, cu_plan *cp, const int *uses, int fp16)
{
    const char *env = getenv("SPRUN_CUDA_ATTN");
    if (!fp16 || (env && !strcmp(env, "0")))
        return;
    const sp_graph *g = &p->g;
    for (int s3 = 0; s3 < p->n_order; s3++) {
        const sp_node *n3 = ord_node(p, s3);
        if (!plain_act_matmul(p, cp, s3) || cp->fx[4 * s3] >= 0)
            continue;
        const int pv = n3->in[0];
        const sp_value *pval = &g->values[pv];
        if (uses[pv] != 1 || pval->producer < 0)
            continue;
        const int s2 = cp->node_ord[pval->producer];
        if (s2 < 0 || cp->role[s2] != R_SOFTMAX)
            continue;
        const int sv = cp->fx[4 * s2];
        const sp_value *sval = &g->values[sv];
        if (uses[sv] != 1 || sval->producer < 0)
            continue;
        const int s1 = cp->node_ord[sval->producer];
        if (s1 < 0 || !plain_act_matmul(p, cp, s1) || cp->fx[4 * s1 + 2] >= 0)
            continue;
        const sp_node *n1 = ord_node(p, s1);
        const sp_value *qv = &g->values[n1->in[0]], *kv = &g->values[n1->in[1]], *vv = &g->values[n3->in[1]];
        const sp_value *ov = &g->values[n3->out[0]];
        const int r = ov->shape.rank;
        if ((r != 3 && r != 4) || sval->shape.rank != r || storage_dtype(fp16, qv->dtype) != SPRUN_DTYPE_FLOAT16 ||
            storage_dtype(fp16, ov->dtype) != SPRUN_DTYPE_FLOAT16)
            continue;
        const int64_t d = qv->shape.d[r - 1];
        if ((d != 32 && d != 64 && d != 128) || vv->shape.d[r - 1] != d || kv->shape.d[r - 2] != d ||
            sval->shape.d[r - 1] < 1)
            continue;
        int64_t sq[SP_MAX_RANK], sk[SP_MAX_RANK], sv_[SP_MAX_RANK];
        perm_strides(p, cp->fx[4 * s1], &qv->shape, sq);
        perm_strides(p, cp->fx[4 * s1 + 1], &kv->shape, sk);
        perm_strides(p, cp->fx[4 * s3 + 1], &vv->shape, sv_);
        int ok = sq[r - 1] == 1 && sk[r - 2] == 1 && sv_[r - 1] == 1;
        for (int k = 0; k < r; k++)
            ok &= (k == r - 1 || sq[k] % 8 == 0) && (k == r - 2 || sk[k] % 8 == 0) && (k == r - 1 || sv_[k] % 8 == 0);
        if (!ok)
            continue;
        cp->role[s1] = R_NOP;
        cp->role[s2] = R_NOP;
        cp->role[s3] = R_ATTN;
        cp->fx[4 * s3] = s1;
        cp->fx[4 * s3 + 3] = s2;
    }
}

/* A Split along the last dim whose every output is only reshaped (the last
 * dim split further, leading dims kept) into a head-split Transpose that
 * fused attention reads (sp_pass_fuse_parallel_matmuls's query/key/value):
 * the Split and the Reshapes run no step, and attention reads each slice in
 * place from the Split's input, row pitch the input's last dim. */
static void find_split_views(const sp_plan *p, cu_plan *cp, const int *uses)
{
    const sp_graph *g = &p->g;
    int *attn_t = calloc((size_t)(p->n_order > 0 ? p->n_order : 1), sizeof *attn_t);
    if (!attn_t)
        return; /* an optimisation: the Split then runs as copies */
    int any = 0;
    for (int s = 0; s < p->n_order; s++)
        if (cp->role[s] == R_ATTN) {
            const int s1 = cp->fx[4 * s];
            const int ts[3] = {cp->fx[4 * s1], cp->fx[4 * s1 + 1], cp->fx[4 * s + 1]};
            for (int k = 0; k < 3; k++)
                if (ts[k] >= 0)
                    attn_t[ts[k]] = any = 1;
        }
    for (int s = 0; any && s < p->n_order; s++) {
        const sp_node *n = ord_node(p, s);
        if (cp->role[s] != R_NORMAL || strcmp(n->op_type, "Split") || n->n_in < 1 || n->n_out > 16)
            continue;
        const sp_value *xv = &g->values[n->in[0]];
        const int rin = xv->shape.rank;
        if (rin < 1 || xv->kind == SP_VAL_CONST || sp_axis(sp_attr_int(n, "axis", 0), rin) != rin - 1 ||
            xv->shape.d[rin - 1] % 8)
            continue;
        int rs[16], ok = 1;
        int64_t off = 0, offs[16];
        for (int j = 0; j < n->n_out && ok; j++) {
            const int o = n->out[j];
            ok = o >= 0 && off % 8 == 0;
            const int c = ok ? sole_consumer(p, cp, uses, o) : -1;
            ok = c >= 0 && cp->role[c] == R_NORMAL && !strcmp(ord_node(p, c)->op_type, "Reshape") &&
                 ord_node(p, c)->in[0] == o;
            if (!ok)
                break;
            const sp_value *ov = &g->values[o], *rv = &g->values[ord_node(p, c)->out[0]];
            ok = ov->shape.rank == rin && rv->shape.rank >= rin;
            for (int d = 0; ok && d < rin - 1; d++)
                ok = rv->shape.d[d] == ov->shape.d[d];
            int64_t tail = 1;
            for (int d = rin - 1; ok && d < rv->shape.rank; d++)
                tail *= rv->shape.d[d];
            ok = ok && tail == ov->shape.d[rin - 1];
            const int t = ok ? only_reader(p, uses, ord_node(p, c)->out[0]) : -1;
            ok = ok && t >= 0 && attn_t[t];
            rs[j] = c;
            offs[j] = off;
            off += ov->shape.d[rin - 1];
        }
        if (!ok || off != xv->shape.d[rin - 1])
            continue;
        cp->role[s] = R_NOP;
        for (int j = 0; j < n->n_out; j++) {
            const int r = ord_node(p, rs[j])->out[0];
            cp->role[rs[j]] = R_NOP;
            cp->vview_src[r] = n->in[0];
            cp->vview_off[r] = offs[j];
        }
    }
    free(attn_t);
}

static int is_unary_op(const char *t)
{
    static const char *const u[] = {"Relu", "Erf", "Sqrt", "Exp", "Tanh", "Sigmoid", "Neg", "Abs", "Reciprocal",
                                    "Log", "Gelu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", NULL};
    for (int i = 0; u[i]; i++)
        if (!strcmp(u[i], t))
            return 1;
    return 0;
}

static int binop_of(const char *t)
{
    if (!strcmp(t, "Add")) return SPK_ADD;
    if (!strcmp(t, "Sub")) return SPK_SUB;
    if (!strcmp(t, "Mul")) return SPK_MUL;
    if (!strcmp(t, "Div")) return SPK_DIV;
    if (!strcmp(t, "Pow")) return SPK_POW;
    if (!strcmp(t, "Max")) return SPK_MAX;
    if (!strcmp(t, "Min")) return SPK_MIN;
    return -1;
}

/* Layout each op wants for input k. */
static int need_layout(const sp_node *n, int k)
{
    const char *t = n->op_type;
    if (!strcmp(t, "Conv"))
        return (k == 0 || k == n->fusion.residual_input) ? LAY_NHWC : LAY_ANY;
    if (is_unary_op(t) || binop_of(t) >= 0 || !strcmp(t, "Where") || !strcmp(t, "Transpose") ||
        !strcmp(t, "Slice") || !strcmp(t, "Concat") || !strcmp(t, "Split") || !strcmp(t, "Expand") || !strcmp(t, "Cast") ||
        !strcmp(t, "MaxPool") || !strcmp(t, "AveragePool") || !strcmp(t, "GlobalAveragePool") ||
        !strcmp(t, "GlobalMaxPool"))
        return LAY_ANY;
    return LAY_ROW;
}

static void assign_layouts(const sp_plan *p, cu_plan *cp)
{
    const sp_graph *g = &p->g;
    for (int v = 0; v < g->n_values; v++)
        cp->layout[v] = LAY_ROW;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = ord_node(p, s);
        if (cp->role[s] == R_NOP || n->n_out < 1 || n->out[0] < 0)
            continue;
        int y = n->out[0], lay = LAY_ROW;
        const char *t = n->op_type;
        if (cp->role[s] != R_NORMAL)
            lay = LAY_ROW;
        else if (!strcmp(t, "Conv"))
            lay = LAY_NHWC;
        else if (is_unary_op(t) || !strcmp(t, "MaxPool") || !strcmp(t, "AveragePool"))
            lay = cp->layout[n->in[0]];
        else if (binop_of(t) >= 0) {
            for (int k = 0; k < n->n_in; k++)
                if (n->in[k] >= 0 && cp->layout[n->in[k]] == LAY_NHWC &&
                    sp_shape_equal(&g->values[n->in[k]].shape, &g->values[y].shape))
                    lay = LAY_NHWC;
        }
        if (!phys_distinct(&g->values[y].shape))
            lay = LAY_ROW;
        cp->layout[y] = lay;
    }
}

/* The value whose memory holds v: a Split's input when v is read in place
 * as a slice of it (find_split_views), else v. */
static int view_base(const cu_plan *cp, int v) { return v >= 0 && cp->vview_src[v] >= 0 ? cp->vview_src[v] : v; }

/* Values read and written by order index s as lowered. */
static int step_rw(const sp_plan *p, const cu_plan *cp, int s, int *rd, int *nrd, int *wr, int *nwr)
{
    const sp_node *n = ord_node(p, s);
    *nrd = *nwr = 0;
    switch (cp->role[s]) {
    case R_NOP: return 0;
    case R_BMM:
        for (int k = 0; k < 2; k++)
            rd[(*nrd)++] = cp->fx[4 * s + k] >= 0 ? ord_node(p, cp->fx[4 * s + k])->in[0] : n->in[k];
        wr[(*nwr)++] = cp->fx[4 * s + 2] >= 0 ? ord_node(p, cp->fx[4 * s + 2])->out[0] : n->out[0];
        return 0;
    case R_ATTN: {
        /* Q and K^T as the QK^T matmul read them, the mask, V, the output */
        const int s1 = cp->fx[4 * s], s2 = cp->fx[4 * s + 3];
        const sp_node *n1 = ord_node(p, s1);
        for (int k = 0; k < 2; k++)
            rd[(*nrd)++] = view_base(cp, cp->fx[4 * s1 + k] >= 0 ? ord_node(p, cp->fx[4 * s1 + k])->in[0] : n1->in[k]);
        if (cp->fx[4 * s2 + 1] >= 0)
            rd[(*nrd)++] = cp->fx[4 * s2 + 1];
        rd[(*nrd)++] = view_base(cp, cp->fx[4 * s + 1] >= 0 ? ord_node(p, cp->fx[4 * s + 1])->in[0] : n->in[1]);
        wr[(*nwr)++] = cp->fx[4 * s + 2] >= 0 ? ord_node(p, cp->fx[4 * s + 2])->out[0] : n->out[0];
        return 0;
    }
    case R_SOFTMAX:
    case R_LNRES:
        rd[(*nrd)++] = cp->fx[4 * s];
        if (cp->fx[4 * s + 1] >= 0)
            rd[(*nrd)++] = cp->fx[4 * s + 1];
        for (int k = (cp->role[s] == R_LNRES ? 1 : n->n_in); k < n->n_in; k++)
            if (n->in[k] >= 0)
                rd[(*nrd)++] = n->in[k];
        wr[(*nwr)++] = n->out[0];
        return 0;
    default:
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                rd[(*nrd)++] = n->in[k];
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0)
                wr[(*nwr)++] = n->out[k];
        return 0;
    }
}

/* bytes of a value in device memory (fp16 storage for float values in fp16 mode) */
static size_t device_value_bytes(const void *ctx, const sp_value *v)
{
    return (size_t)sp_shape_numel(&v->shape) * sp_dtype_size(vdtype((const cu_model *)ctx, v));
}

static int plan_device_memory(const sp_plan *p, cu_plan *cp, const cu_model *cm, sp_err *err)
{
    const sp_graph *g = &p->g;
    int nv = g->n_values;
    int maxio = 0;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = ord_node(p, s);
        if (n->n_in + n->n_out + 4 > maxio)
            maxio = n->n_in + n->n_out + 4;
    }
    int *parent = malloc((size_t)nv * sizeof *parent), *first = malloc((size_t)nv * sizeof *first);
    int *last = malloc((size_t)nv * sizeof *last);
    int *rd = malloc((size_t)maxio * sizeof *rd), *wr = malloc((size_t)maxio * sizeof *wr);
    int rc = SPRUN_OK;
    if (!parent || !first || !last || !rd || !wr) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory planning device memory");
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        parent[v] = v;
        first[v] = last[v] = -1;
    }
    for (int i = 0; i < g->n_inputs; i++)
        first[g->inputs[i]] = last[g->inputs[i]] = 0;
    for (int s = 0; s < p->n_order; s++) {
        int nrd, nwr;
        step_rw(p, cp, s, rd, &nrd, wr, &nwr);
        for (int k = 0; k < nrd; k++)
            if (g->values[rd[k]].kind != SP_VAL_CONST)
                last[rd[k]] = s + 1;
        for (int k = 0; k < nwr; k++) {
            if (first[wr[k]] < 0)
                first[wr[k]] = s + 1;
            if (last[wr[k]] < s + 1)
                last[wr[k]] = s + 1;
        }
        const sp_node *n = ord_node(p, s);
        if (cp->role[s] == R_NORMAL && is_alias_op(n->op_type) && n->in[0] >= 0 && n->out[0] >= 0 &&
            g->values[n->in[0]].kind != SP_VAL_CONST && cp->layout[n->in[0]] == LAY_ROW &&
            vdtype(cm, &g->values[n->in[0]]) == vdtype(cm, &g->values[n->out[0]]))
            parent[sp_union_root(parent, n->out[0])] = sp_union_root(parent, n->in[0]);
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->values[g->outputs[i]].kind != SP_VAL_CONST)
            last[g->outputs[i]] = p->n_order + 1;
    rc = sp_memplan_classes(g, parent, first, last, device_value_bytes, cm, CU_ALIGN, cp->doff, &cp->act_bytes, err);
    if (rc != SPRUN_OK)
        goto done;
    cp->act_bytes = align_up(cp->act_bytes);
done:
    free(parent);
    free(first);
    free(last);
    free(rd);
    free(wr);
    return rc;
}

/* --- lowering ------------------------------------------------------------ */

typedef struct lower_ctx {
    const sp_plan *p;
    cu_plan *cp;
    const cu_model *cm;
    cu_session *cs;
    int ord;
    const struct sprun_model *m;
    /* a sparse step lowered as an alternative (sp_cuda_sparse_layer.measure):
     * its group, and the first step of the node's dense lowering that follows */
    int pend_alt, pend_first;
} lower_ctx;

static cu_step *add_step(cu_plan *cp, int kind, int ord)
{
    if (cp->n_st == cp->cap_st) {
        int nc = cp->cap_st ? cp->cap_st * 2 : 64;
        cu_step *ns = realloc(cp->st, (size_t)nc * sizeof *ns);
        if (!ns)
            return NULL;
        cp->st = ns;
        cp->cap_st = nc;
    }
    cu_step *st = &cp->st[cp->n_st++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->ord = ord;
    return st;
}

#define ADD_STEP(var, kind)                                                                                \
    cu_step *var = add_step(lc->cp, (kind), lc->ord);                                                       \
    if (!var)                                                                                              \
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory lowering a node");

static dptr scratch_alloc(cu_plan *cp, size_t bytes)
{
    dptr d = darena((int64_t)(cp->act_bytes + cp->io_bytes + cp->scratch_cur));
    cp->scratch_cur += align_up(bytes ? bytes : 1);
    if (cp->scratch_cur > cp->scratch_bytes)
        cp->scratch_bytes = cp->scratch_cur;
    return d;
}

static const char *lc_name(const lower_ctx *lc)
{
    return lc->ord >= 0 ? ord_node(lc->p, lc->ord)->name : "(graph inputs/outputs)";
}

static int vptr(lower_ctx *lc, int v, int form, dptr *out, sp_err *err)
{
    const sp_graph *g = &lc->p->g;
    const sp_value *val = &g->values[v];
    if (val->kind == SP_VAL_CONST) {
        const cu_const *c = find_const(lc->cm->c, lc->cm->n, val->data, form);
        const char *pool = lc->cm->pool;
        if (!c) {
            c = find_const(lc->cp->pc, lc->cp->n_pc, val->data, form);
            pool = lc->cp->pool;
        }
        if (!c)
            return sp_err_set(err, SPRUN_ERR_INTERNAL, "node %s: constant '%s' was not uploaded", lc_name(lc),
                              val->name);
        *out = dabs(pool + c->off);
        return SPRUN_OK;
    }
    if (lc->cp->doff[v] < 0)
        return sp_err_set(err, SPRUN_ERR_INTERNAL, "node %s: value '%s' has no device buffer", lc_name(lc),
                          val->name);
    *out = darena(lc->cp->doff[v]);
    return SPRUN_OK;
}

static int emit_copy(lower_ctx *lc, dptr dst, int ddt, const int64_t *dst_st, dptr src, int sdt,
                     const int64_t *src_st, const sp_shape *shape, int64_t src_base_elems, sp_err *err)
{
    spk_view v;
    memset(&v, 0, sizeof v);
    v.rank = shape->rank;
    for (int d = 0; d < shape->rank; d++) {
        v.dims[d] = shape->d[d];
        v.s[0][d] = dst_st[d];
        v.s[1][d] = src_st[d];
    }
    if (!view_simplify(&v, 2))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "node %s: copy of rank > %d after merging dims", lc_name(lc),
                          SPK_MAX_RANK);
    ADD_STEP(st, ST_COPY);
    st->out = dst;
    st->a = dadd(src, src_base_elems * (int64_t)sp_dtype_size(sdt));
    st->dtype = ddt;
    st->dtype2 = sdt;
    st->view = v;
    return SPRUN_OK;
}

/* Device pointer of input value v in layout `need` (converting into
 * scratch when needed); *lay receives the layout delivered. */
static int operand(lower_ctx *lc, int v, int need, dptr *out, int *lay, sp_err *err)
{
    const sp_value *val = &lc->p->g.values[v];
    int rc = vptr(lc, v, FORM_PLAIN, out, err);
    if (rc != SPRUN_OK)
        return rc;
    int actual = val->kind == SP_VAL_CONST ? LAY_ROW : lc->cp->layout[v];
    if (lay)
        *lay = actual;
    if (need == LAY_ANY || need == actual || !phys_distinct(&val->shape))
        return SPRUN_OK;
    int dt = vdtype(lc->cm, val);
    dptr tmp = scratch_alloc(lc->cp, (size_t)sp_shape_numel(&val->shape) * sp_dtype_size(dt));
    int64_t ds[SP_MAX_RANK], ss[SP_MAX_RANK];
    layout_strides(&val->shape, need, ds);
    layout_strides(&val->shape, actual, ss);
    rc = emit_copy(lc, tmp, dt, ds, *out, dt, ss, &val->shape, 0, err);
    *out = tmp;
    if (lay)
        *lay = need;
    return rc;
}

static int conv_pads(const sp_node *n, const sp_shape *x, const sp_shape *w, const sp_shape *y, int64_t *pad,
                     const int64_t *str, const int64_t *dil)
{
    const char *ap = sp_attr_string(n, "auto_pad", "NOTSET");
    const int64_t *pads = NULL;
    int64_t np = sp_attr_ints(n, "pads", &pads);
    for (int i = 0; i < 4; i++)
        pad[i] = (np == 4 && pads) ? pads[i] : 0;
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        for (int d = 0; d < 2; d++) {
            int64_t k = w->d[2 + d], in = x->d[2 + d], out = y->d[2 + d];
            int64_t total = (out - 1) * str[d] + (k - 1) * dil[d] + 1 - in;
            if (total < 0)
                total = 0;
            int64_t lo = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            pad[d] = lo;
            pad[2 + d] = total - lo;
        }
    } else if (!strcmp(ap, "VALID"))
        for (int i = 0; i < 4; i++)
            pad[i] = 0;
    return 0;
}

static int get2(const sp_node *n, const char *name, int64_t def, int64_t *out)
{
    const int64_t *v = NULL;
    int64_t c = sp_attr_ints(n, name, &v);
    out[0] = out[1] = def;
    if (c == 2 && v) {
        out[0] = v[0];
        out[1] = v[1];
    } else if (c > 0 && c != 2)
        return -1;
    return 0;
}

static int emit_lt(lower_ctx *lc, const sp_node *n, int dt, dptr y, dptr a, int transA, dptr w, int transW,
                   int64_t M, int64_t N, int64_t K, dptr bias, dptr res, float alpha, float beta, int act,
                   float aa, float ab, sp_err *err);

/* Files the steps from first on as variant var of alternative group alt */
static void set_variant(cu_plan *cp, int first, int alt, int var)
{
    for (int i = first; i < cp->n_st; i++) {
        cp->st[i].alt = alt;
        cp->st[i].var = var;
    }
}

/* Largest im2col buffer a conv may use to run as one cuBLASLt GEMM. */
#define IM2COL_MAX_BYTES ((size_t)256 << 20)

/* Runs node n as a sparse layer when the model chose a sparse format for its
 * weight and the cost model says it wins at this plan's N (or the format is
 * forced): emits one ST_SPMM step and sets *done. The sparse kernels' epilogue
 * takes bias, a same-shape residual and every fused activation (alpha, beta
 * from the node's fusion record). */
static int try_sparse(lower_ctx *lc, const sp_node *n, dptr x, dptr y, dptr bias, dptr res, int *done, sp_err *err)
{
    const sp_node *node = n;
    *done = 0;
    sp_plan *p = (sp_plan *)lc->p; /* the step table is the backend's to fill */
    sp_cuda_sparse_layer L;
    if (!sp_cuda_sparse_select(lc->m, &lc->cm->sparse, p, p->order[lc->ord], &L, &p->step[lc->ord]))
        return SPRUN_OK;
    /* one workspace for every step: the largest split-K area (kept zero by
     * the kernels), then room for the largest X a CSR step transposes at
     * its end, so no step's transpose lands in another's split-K area */
    cu_plan *cp = lc->cp;
    const size_t splitk = sp_cuda_spmm_workspace_bytes(L.m, L.n);
    const size_t xt = L.ws_bytes > splitk ? L.ws_bytes - splitk : 0;
    if (splitk > cp->spmm_splitk_max)
        cp->spmm_splitk_max = splitk;
    if (xt > cp->spmm_xt_max)
        cp->spmm_xt_max = xt;
    const size_t need = (cp->spmm_splitk_max + 255) / 256 * 256 + cp->spmm_xt_max;
    if (need > cp->spmm_ws_bytes) {
        cudaFree(cp->spmm_ws);
        cp->spmm_ws = NULL;
        cp->spmm_ws_bytes = 0;
        CU_RT(cudaMalloc(&cp->spmm_ws, need));
        CU_RT(cudaMemset(cp->spmm_ws, 0, need));
        cp->spmm_ws_bytes = need;
    }
    ADD_STEP(st, ST_SPMM);
    st->sl = L;
    st->out = y;
    st->a = x;
    st->c = bias;
    st->d = res;
    st->act = n->fusion.act; /* SP_CUDA_ACT_* are the IR's SP_ACT_* values */
    /* the patch matrix, except where the 2:4 implicit GEMM needs none */
    const int patches = L.col_bytes && !(L.implicit && L.kind == SP_SPARSE_24);
    const size_t scratch0 = lc->cp->scratch_cur;
    st->col = patches ? scratch_alloc(lc->cp, L.col_bytes) : (dptr){0, 0};
    if (L.measure) {
        /* the node's dense lowering follows as the other variant(s) of this
         * group (lower_plan files them); cu_tune_plan keeps the faster. Only one
         * runs, so both use the same scratch. */
        st->alt = lc->pend_alt = ++lc->cp->n_alt;
        st->var = 3;
        lc->pend_first = lc->cp->n_st;
        lc->cp->scratch_cur = scratch0;
        return SPRUN_OK;
    }
    *done = 1;
    return SPRUN_OK;
}

static int lower_conv(lower_ctx *lc, const sp_node *n, sp_err *err)
{
    const sp_node *node = n;
    const sp_graph *g = &lc->p->g;
    const sp_value *xv = &g->values[n->in[0]], *wv = &g->values[n->in[1]], *yv = &g->values[n->out[0]];
    if (xv->shape.rank != 4 || wv->kind != SP_VAL_CONST)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                          "node %s (Conv): the CUDA backend runs 2-D convolutions with constant weights only",
                          n->name);
    int dt = vdtype(lc->cm, yv);
    int64_t str[2], dil[2], pad[4];
    if (get2(n, "strides", 1, str) || get2(n, "dilations", 1, dil))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "node %s (Conv): strides/dilations must have 2 values",
                          n->name);
    conv_pads(n, &xv->shape, &wv->shape, &yv->shape, pad, str, dil);
    if (pad[0] != pad[2] || pad[1] != pad[3])
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                          "node %s (Conv): asymmetric padding [%lld,%lld,%lld,%lld] is not supported on CUDA",
                          n->name, (long long)pad[0], (long long)pad[1], (long long)pad[2], (long long)pad[3]);
    int group = (int)sp_attr_int(n, "group", 1);
    dptr x, w, b = {0, 0}, res = {0, 0};
    int rc;
    if ((rc = operand(lc, n->in[0], LAY_NHWC, &x, NULL, err)) != SPRUN_OK)
        return rc;
    if ((rc = vptr(lc, n->in[1], FORM_KRSC, &w, err)) != SPRUN_OK)
        return rc;
    if (n->n_in > 2 && n->in[2] >= 0 && n->fusion.residual_input != 2 &&
        (rc = vptr(lc, n->in[2], FORM_PLAIN, &b, err)) != SPRUN_OK)
        return rc;
    if (n->fusion.residual_input >= 0 &&
        (rc = operand(lc, n->in[n->fusion.residual_input], LAY_NHWC, &res, NULL, err)) != SPRUN_OK)
        return rc;
    if (group == 1 && dt == SPRUN_DTYPE_FLOAT16) {
        int done;
        if ((rc = try_sparse(lc, n, x, darena(lc->cp->doff[n->out[0]]), b, res, &done, err)) != SPRUN_OK || done)
            return rc;
    }
    int64_t N = xv->shape.d[0], C = xv->shape.d[1], H = xv->shape.d[2], W = xv->shape.d[3];
    int64_t K = yv->shape.d[1], OH = yv->shape.d[2], OW = yv->shape.d[3];
    /* As a GEMM on NHWC: 1x1 stride-1 convs directly, others through im2col
     * while its buffer stays small; the epilogue (bias, residual, ReLU) is
     * cuBLASLt's. Measured on the H100 at batch 1, cuDNN's legacy calls took
     * 60-400 us for 1x1 convs of 0.1-0.2 GFLOP. SPRUN_CUDA_CONV=cudnn forces cuDNN. */
    int64_t R = wv->shape.d[2], S = wv->shape.d[3];
    const char *force = getenv("SPRUN_CUDA_CONV");
    int want_gemm = group == 1 && !(force && !strcmp(force, "cudnn"));
    int direct = R == 1 && S == 1 && str[0] == 1 && str[1] == 1 && pad[0] == 0 && pad[1] == 0;
    size_t colb = (size_t)(N * OH * OW * R * S * C) * sp_dtype_size(dt);
    /* leading dims in multiples of 8 elements keep cuBLASLt on its tensor-core paths */
    int alt = 0, first_alt = lc->cp->n_st;
    int64_t kp = pad8(R * S * C);
    if (want_gemm && (R * S * C) % 8 != 0 && !direct)
        colb = (size_t)(N * OH * OW * kp) * sp_dtype_size(dt);
    if (want_gemm && K % 8 == 0 && (direct ? C % 8 == 0 : colb <= IM2COL_MAX_BYTES)) {
        dptr a = x, wg = w;
        if (!direct && kp != R * S * C && (rc = vptr(lc, n->in[1], FORM_KRSCP, &wg, err)) != SPRUN_OK)
            return rc;
        if (!direct) {
            a = scratch_alloc(lc->cp, colb);
            ADD_STEP(ic, ST_IM2COL);
            ic->out = a;
            ic->a = x;
            ic->dtype = dt;
            spk_conv cg = {N,          H,          W,          C,          OH,         OW,         (int)R, (int)S,
                           (int)str[0], (int)str[1], (int)pad[0], (int)pad[1], (int)dil[0], (int)dil[1], direct ? 0 : kp};
            ic->conv = cg;
        }
        rc = emit_lt(lc, n, dt, darena(lc->cp->doff[n->out[0]]), a, 0, wg, 1, N * OH * OW, K, direct ? C : kp, b, res,
                     1.f, 1.f, n->fusion.act, n->fusion.alpha, n->fusion.beta, err);
        if (rc != SPRUN_OK || (force && !strcmp(force, "gemm")))
            return rc;
        /* cuDNN as the alternative: both timed once the arena exists */
        alt = ++lc->cp->n_alt;
        set_variant(lc->cp, first_alt, alt, 1);
    }
    int first_dnn = lc->cp->n_st;
    if (!b.base) {
        size_t need = (size_t)K * sp_dtype_size(dt);
        if (need > lc->cp->zeros_bytes)
            return sp_err_set(err, SPRUN_ERR_INTERNAL, "node %s: zero bias too small", n->name);
        b = dabs(lc->cp->zeros);
    }
    cudnnDataType_t cdt = dt == SPRUN_DTYPE_FLOAT16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    ADD_STEP(st, ST_CONV);
    st->out = darena(lc->cp->doff[n->out[0]]);
    st->a = x;
    st->b = w;
    st->c = b;
    st->d = res;
    st->dtype = dt;
    st->act = n->fusion.act;
    st->alpha = n->fusion.alpha;
    st->beta = n->fusion.beta;
    st->rows = N * OH * OW;
    st->cols = K;
    CU_DNN(cudnnCreateTensorDescriptor(&st->xd));
    CU_DNN(cudnnCreateTensorDescriptor(&st->yd));
    CU_DNN(cudnnCreateTensorDescriptor(&st->bd));
    CU_DNN(cudnnCreateFilterDescriptor(&st->wd));
    CU_DNN(cudnnCreateConvolutionDescriptor(&st->cd));
    CU_DNN(cudnnCreateActivationDescriptor(&st->ad));
    CU_DNN(cudnnSetTensor4dDescriptor(st->xd, CUDNN_TENSOR_NHWC, cdt, (int)N, (int)C, (int)H, (int)W));
    CU_DNN(cudnnSetTensor4dDescriptor(st->yd, CUDNN_TENSOR_NHWC, cdt, (int)N, (int)K, (int)OH, (int)OW));
    CU_DNN(cudnnSetTensor4dDescriptor(st->bd, CUDNN_TENSOR_NHWC, cdt, 1, (int)K, 1, 1));
    CU_DNN(cudnnSetFilter4dDescriptor(st->wd, cdt, CUDNN_TENSOR_NHWC, (int)K, (int)wv->shape.d[1],
                                      (int)wv->shape.d[2], (int)wv->shape.d[3]));
    CU_DNN(cudnnSetConvolution2dDescriptor(st->cd, (int)pad[0], (int)pad[1], (int)str[0], (int)str[1], (int)dil[0],
                                           (int)dil[1], CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CU_DNN(cudnnSetConvolutionGroupCount(st->cd, group));
    CU_DNN(cudnnSetConvolutionMathType(st->cd, lc->cm->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    CU_DNN(cudnnSetActivationDescriptor(st->ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    /* Algorithm: measured once per shape on scratch buffers. */
    size_t xb = (size_t)(N * C * H * W) * sp_dtype_size(dt), yb = (size_t)(N * K * OH * OW) * sp_dtype_size(dt);
    size_t need = align_up(xb) + align_up(yb) + FIND_WS_LIMIT;
    if (need > lc->cp->find_bytes) {
        cudaFree(lc->cp->find_buf);
        lc->cp->find_buf = NULL;
        lc->cp->find_bytes = 0;
        CU_RT(cudaMalloc(&lc->cp->find_buf, need));
        lc->cp->find_bytes = need;
        CU_RT(cudaMemset(lc->cp->find_buf, 0, need));
    }
    char *fb = lc->cp->find_buf;
    /* Remembered per device and layer for the process (tune_memo.c): two
     * plans of one model run the same algorithm on the same conv. */
    char key[512];
    int memo = 0;
    const int keyed = cu_tune_key(lc->p, st, "cudnn", key, sizeof key);
    if (keyed && sp_cuda_tune_memo_get(key, &memo) && memo >= 0) {
        st->algo = (cudnnConvolutionFwdAlgo_t)(memo / 8);
        CU_DNN(cudnnSetConvolutionMathType(st->cd, (cudnnMathType_t)(memo % 8)));
        CU_DNN(cudnnGetConvolutionForwardWorkspaceSize(lc->cs->dnn, st->xd, st->wd, st->cd, st->yd, st->algo,
                                                       &st->ws_bytes));
    } else {
        cudnnConvolutionFwdAlgoPerf_t perf[16];
        int got = 0;
        /* the plan's first search only warms the GPU up (its clocks ramp
         * while the first algorithms are timed, which favoured later ones) */
        for (int pass = lc->cp->find_warm ? 1 : 0; pass < 2; pass++)
            CU_DNN(cudnnFindConvolutionForwardAlgorithmEx(lc->cs->dnn, st->xd, fb, st->wd, resolve(lc->cp, w), st->cd,
                                                          st->yd, fb + align_up(xb), 16, &got, perf,
                                                          fb + align_up(xb) + align_up(yb), FIND_WS_LIMIT));
        lc->cp->find_warm = 1;
        /* cuDNN's search times each algorithm once, from wherever the clocks
         * are: its order is a shortlist, and cu_tune_plan times the usable
         * leaders again inside the plan (measured on the H100: a ResNet-50
         * 3x3 conv kept at 300-600 us where its twin layers ran 27 us) */
        st->n_dnn = 0;
        st->ws_bytes = 0;
        for (int i = 0; i < got && st->n_dnn < DNN_CANDIDATES; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > FIND_WS_LIMIT)
                continue;
            if (!lc->cm->fp16 && perf[i].mathType != CUDNN_FMA_MATH)
                continue;
            int dup = 0;
            for (int c = 0; c < st->n_dnn; c++)
                dup |= st->dalgo[c] == perf[i].algo && st->dmath[c] == perf[i].mathType;
            if (dup)
                continue;
            st->dalgo[st->n_dnn] = perf[i].algo;
            st->dmath[st->n_dnn++] = perf[i].mathType;
            if (perf[i].memory > st->ws_bytes)
                st->ws_bytes = perf[i].memory;
        }
        if (!st->n_dnn)
            return sp_err_set(err, SPRUN_ERR_BACKEND, "node %s (Conv): cuDNN found no usable algorithm (%d tried)",
                              n->name, got);
        st->algo = st->dalgo[0];
        CU_DNN(cudnnSetConvolutionMathType(st->cd, st->dmath[0]));
        if (keyed && st->n_dnn == 1)
            sp_cuda_tune_memo_put(key, (int)st->dalgo[0] * 8 + (int)st->dmath[0]);
    }
    st->ws = st->ws_bytes ? scratch_alloc(lc->cp, st->ws_bytes) : (dptr){0, 0};
    st->fused_act = st->act == SP_ACT_RELU;
    if (alt)
        set_variant(lc->cp, first_dnn, alt, 2);
    return SPRUN_OK;
}

/* y = act(y) in place, for activations no library epilogue fuses. */
static int emit_act(lower_ctx *lc, dptr y, int dt, int64_t rows, int64_t cols, int act, float aa, float ab,
                    sp_err *err)
{
    ADD_STEP(e, ST_BIAS_ACT);
    e->out = y;
    e->dtype = dt;
    e->rows = rows;
    e->cols = cols;
    e->act = act;
    e->alpha = aa;
    e->beta = ab;
    return SPRUN_OK;
}

/* Y[M,N] = act(alpha * op(A) op(W) + beta * R + bias) through cuBLASLt,
 * row-major; W is [K,N] (or [N,K] with transW). */
static int emit_lt(lower_ctx *lc, const sp_node *n, int dt, dptr y, dptr a, int transA, dptr w, int transW,
                   int64_t M, int64_t N, int64_t K, dptr bias, dptr res, float alpha, float beta, int act,
                   float aa, float ab, sp_err *err)
{
    const sp_node *node = n;
    cudaDataType_t ct = dt == SPRUN_DTYPE_FLOAT16 ? CUDA_R_16F : CUDA_R_32F;
    ADD_STEP(st, ST_LT);
    st->out = y;
    st->a = a;
    st->b = w;
    st->c = bias;
    st->d = res;
    st->dtype = dt;
    st->alpha = alpha;
    st->beta = res.base ? beta : 0.f;
    st->has_bias = bias.base != 0;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    int lt_act = act == SP_ACT_RELU;
    if (st->has_bias)
        epi = lt_act ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    else if (lt_act)
        epi = CUBLASLT_EPILOGUE_RELU;
    cublasOperation_t opa = transW ? CUBLAS_OP_T : CUBLAS_OP_N, opb = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    CU_BLAS(cublasLtMatmulDescCreate(&st->md, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CU_BLAS(cublasLtMatmulDescSetAttribute(st->md, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CU_BLAS(cublasLtMatmulDescSetAttribute(st->md, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    CU_BLAS(cublasLtMatmulDescSetAttribute(st->md, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (st->has_bias) {
        void *bp = resolve(lc->cp, bias); /* absolute for constants; re-set at launch otherwise */
        CU_BLAS(cublasLtMatmulDescSetAttribute(st->md, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
    }
    /* column-major view: D^T[N,M] = op(W^T) op(A^T) */
    CU_BLAS(cublasLtMatrixLayoutCreate(&st->la, ct, transW ? K : N, transW ? N : K, transW ? K : N));
    CU_BLAS(cublasLtMatrixLayoutCreate(&st->lb, ct, transA ? M : K, transA ? K : M, transA ? M : K));
    CU_BLAS(cublasLtMatrixLayoutCreate(&st->lc, ct, N, M, N));
    cublasLtMatmulPreference_t pref;
    CU_BLAS(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsl = LT_WS_BYTES;
    cublasStatus_t bs =
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsl, sizeof wsl);
    cublasLtMatmulHeuristicResult_t hr[LT_CANDIDATES];
    int nres = 0;
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasLtMatmulAlgoGetHeuristic(lc->cs->lt, st->md, st->la, st->lb, st->lc, st->lc, pref, LT_CANDIDATES,
                                            hr, &nres);
    cublasLtMatmulPreferenceDestroy(pref);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return sp_cu_fail_blas(err, bs, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__, n);
    if (nres < 1)
        return sp_err_set(err, SPRUN_ERR_BACKEND, "node %s: cuBLASLt has no algorithm for %lldx%lldx%lld", n->name,
                          (long long)M, (long long)N, (long long)K);
    st->lalgo = hr[0].algo;
    st->ws_bytes = 0;
    for (int i = 0; i < nres; i++) {
        st->cand[i] = hr[i].algo;
        if (hr[i].workspaceSize > st->ws_bytes)
            st->ws_bytes = hr[i].workspaceSize;
    }
    st->n_cand = nres;
    st->ws = st->ws_bytes ? scratch_alloc(lc->cp, st->ws_bytes) : (dptr){0, 0};
    if (act != SP_ACT_NONE && !lt_act)
        return emit_act(lc, y, dt, M, N, act, aa, ab, err);
    return SPRUN_OK;
}

/* bias (rank-1 [N] or [1,N]) vs residual (full [M,N]) of a fused operand */
static int is_row_bias(const sp_value *v, int64_t N)
{
    return sp_shape_numel(&v->shape) == N && (v->shape.rank <= 1 || v->shape.d[v->shape.rank - 1] == N);
}

static int lower_gemm(lower_ctx *lc, const sp_node *n, sp_err *err)
{
    const sp_graph *g = &lc->p->g;
    const sp_value *av = &g->values[n->in[0]], *bv = &g->values[n->in[1]], *yv = &g->values[n->out[0]];
    int dt = vdtype(lc->cm, yv);
    int gemm = !strcmp(n->op_type, "Gemm");
    int rc;
    dptr y = darena(lc->cp->doff[n->out[0]]), a, w, bias = {0, 0}, res = {0, 0};
    float alpha = 1.f, beta = 1.f;
    if ((rc = operand(lc, n->in[0], LAY_ROW, &a, NULL, err)) != SPRUN_OK ||
        (rc = operand(lc, n->in[1], LAY_ROW, &w, NULL, err)) != SPRUN_OK)
        return rc;
    int ar = av->shape.rank, br = bv->shape.rank;
    if (ar < 2 || br < 2)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "node %s (%s): 1-D operands are not supported on CUDA",
                          n->name, n->op_type);
    int64_t M, N = yv->shape.d[yv->shape.rank - 1], K;
    int transA = 0, transW = 0;
    if (gemm) {
        transA = (int)sp_attr_int(n, "transA", 0);
        transW = (int)sp_attr_int(n, "transB", 0);
        alpha = sp_attr_float(n, "alpha", 1.f);
        beta = sp_attr_float(n, "beta", 1.f);
        M = yv->shape.d[0];
        K = transA ? av->shape.d[0] : av->shape.d[1];
        if (n->n_in > 2 && n->in[2] >= 0 && n->fusion.residual_input != 2) {
            const sp_value *cv = &g->values[n->in[2]];
            if (is_row_bias(cv, N) && beta == 1.f)
                rc = vptr(lc, n->in[2], FORM_PLAIN, &bias, err);
            else if (sp_shape_numel(&cv->shape) == M * N)
                rc = operand(lc, n->in[2], LAY_ROW, &res, NULL, err);
            else
                return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                                  "node %s (Gemm): C must be [N] with beta 1 or [M,N] on CUDA", n->name);
            if (rc != SPRUN_OK)
                return rc;
        }
    } else {
        K = av->shape.d[ar - 1];
        M = sp_shape_numel(&av->shape) / K;
        int64_t bbatch = sp_shape_numel(&bv->shape) / (K * N);
        if (bbatch != 1) {
            /* activation x activation (attention): strided batched GEMM */
            int64_t abatch = sp_shape_numel(&av->shape) / (av->shape.d[ar - 2] * K);
            int64_t ybatch = sp_shape_numel(&yv->shape) / (yv->shape.d[yv->shape.rank - 2] * N);
            int64_t Mb = av->shape.d[ar - 2];
            if ((abatch != ybatch && abatch != 1) || (bbatch != ybatch) || n->fusion.residual_input >= 0)
                return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                                  "node %s (MatMul): batch broadcasting %s this way is not supported on CUDA",
                                  n->name, "or a fused residual");
            ADD_STEP(st, ST_BATCHED);
            st->out = y;
            st->a = a;
            st->b = w;
            st->dtype = dt;
            st->m = (int)Mb;
            st->n = (int)N;
            st->k = (int)K;
            st->batch = (int)ybatch;
            st->sa = abatch == 1 ? 0 : Mb * K;
            st->sb = K * N;
            st->sc = Mb * N;
            st->alpha = 1.f;
            if (n->fusion.act != SP_ACT_NONE)
                return emit_act(lc, y, dt, ybatch * Mb, N, n->fusion.act, n->fusion.alpha, n->fusion.beta, err);
            return SPRUN_OK;
        }
    }
    if (n->fusion.residual_input >= 0) {
        int rv = n->in[n->fusion.residual_input];
        const sp_value *r = &g->values[rv];
        if (is_row_bias(r, N) && !bias.base)
            rc = vptr(lc, rv, FORM_PLAIN, &bias, err);
        else if (sp_shape_numel(&r->shape) == M * N && !res.base) {
            rc = operand(lc, rv, LAY_ROW, &res, NULL, err);
            beta = 1.f;
        } else
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "node %s (%s): fused operand of shape rank %d not supported",
                              n->name, n->op_type, r->shape.rank);
        if (rc != SPRUN_OK)
            return rc;
    }
    /* what the own kernels (sparse, dense sm_90) compute: act(A W^T + bias + R) in fp16 */
    const int own = !transA && alpha == 1.f && beta == 1.f && dt == SPRUN_DTYPE_FLOAT16;
    if (own) {
        int done;
        if ((rc = try_sparse(lc, n, a, y, bias, res, &done, err)) != SPRUN_OK || done)
            return rc;
    }
    const int wform =
        own && M <= INT32_MAX ? gemm90_weight_form(g, n, lc->cm->fp16 && sp_cuda_dense_gemm_ok()) : -1;
    const int first = lc->cp->n_st;
    rc = SPRUN_OK;
    if (wform < 0 || gemm90_env() != 2)
        rc = emit_lt(lc, n, dt, y, a, transA, w, transW, M, N, K, bias, res, alpha, beta, n->fusion.act,
                     n->fusion.alpha, n->fusion.beta, err);
    if (rc != SPRUN_OK || wform < 0)
        return rc;
    /* The dense sm_90 GEMM with the activation in its epilogue as the
     * alternative to cuBLASLt + the separate activation pass: both timed
     * once the arena exists (cu_tune_plan) */
    dptr wt;
    if ((rc = vptr(lc, n->in[1], wform, &wt, err)) != SPRUN_OK)
        return rc;
    const int alt = gemm90_env() == 2 ? 0 : ++lc->cp->n_alt;
    set_variant(lc->cp, first, alt, 1);
    ADD_STEP(st, ST_GEMM90);
    st->out = y;
    st->a = a;
    st->b = wt;
    st->c = bias;
    st->d = res;
    st->dtype = dt;
    st->m = (int)N;
    st->n = (int)M;
    st->k = (int)K;
    st->act = n->fusion.act; /* SP_CUDA_ACT_* are the IR's SP_ACT_* values */
    st->f1 = n->fusion.alpha;
    st->f2 = n->fusion.beta;
    st->alt = alt;
    st->var = alt ? 2 : 0;
    return SPRUN_OK;
}

static int unop_of(const sp_graph *g, const sp_node *n, float *a, float *b)
{
    const char *t = n->op_type;
    *a = 0.f;
    *b = 0.f;
    if (!strcmp(t, "Relu")) return SPK_RELU;
    if (!strcmp(t, "Erf")) return SPK_ERF;
    if (!strcmp(t, "Sqrt")) return SPK_SQRT;
    if (!strcmp(t, "Exp")) return SPK_EXP;
    if (!strcmp(t, "Tanh")) return SPK_TANH;
    if (!strcmp(t, "Sigmoid")) return SPK_SIGMOID;
    if (!strcmp(t, "Neg")) return SPK_NEG;
    if (!strcmp(t, "Abs")) return SPK_ABS;
    if (!strcmp(t, "Reciprocal")) return SPK_RECIP;
    if (!strcmp(t, "Log")) return SPK_LOG;
    if (!strcmp(t, "Gelu"))
        return strcmp(sp_attr_string(n, "approximate", "none"), "none") ? -1 : SPK_GELU;
    if (!strcmp(t, "LeakyRelu")) {
        *a = sp_attr_float(n, "alpha", 0.01f);
        return SPK_LEAKYRELU;
    }
    if (!strcmp(t, "HardSwish")) return SPK_HARDSWISH;
    if (!strcmp(t, "HardSigmoid")) {
        *a = sp_attr_float(n, "alpha", 0.2f);
        *b = sp_attr_float(n, "beta", 0.5f);
        return SPK_HARDSIGMOID;
    }
    if (!strcmp(t, "Clip")) {
        *a = -INFINITY;
        *b = INFINITY;
        if (g->opset < 11) {
            *a = sp_attr_float(n, "min", -INFINITY);
            *b = sp_attr_float(n, "max", INFINITY);
        } else {
            for (int k = 1; k <= 2; k++) {
                if (k >= n->n_in || n->in[k] < 0)
                    continue;
                if (!scalar_const(g, n->in[k], k == 1 ? a : b))
                    return -1;
            }
        }
        return SPK_CLIP;
    }
    return -1;
}

static int unsupported(const sp_node *n, const char *why, sp_err *err)
{
    return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "node '%s' (%s): %s on the CUDA backend", n->name, n->op_type, why);
}

/* Strides of a matmul's output y (shape own) as written through the
 * head-merge Transpose ord tc (-1: none) into that Transpose's row-major
 * output. */
static void out_strides(const sp_plan *p, int tc, const sp_shape *own, int64_t *st)
{
    if (tc < 0) {
        row_strides(own, st);
        return;
    }
    const sp_node *tn = ord_node(p, tc);
    int64_t ts[SP_MAX_RANK];
    row_strides(&p->g.values[tn->out[0]].shape, ts);
    const int64_t *perm = NULL;
    sp_attr_ints(tn, "perm", &perm);
    for (int j = 0; j < own->rank; j++)
        st[perm[j]] = ts[j];
}

static int lower_bmm(lower_ctx *lc, const sp_node *n, sp_err *err)
{
    const sp_plan *p = lc->p;
    cu_plan *cp = lc->cp;
    const sp_graph *g = &p->g;
    int s = lc->ord, ta = cp->fx[4 * s], tb = cp->fx[4 * s + 1], tc = cp->fx[4 * s + 2];
    const sp_value *av = &g->values[n->in[0]], *bv = &g->values[n->in[1]], *yv = &g->values[n->out[0]];
    int r = yv->shape.rank, rc;
    int va = ta >= 0 ? ord_node(p, ta)->in[0] : n->in[0], vb = tb >= 0 ? ord_node(p, tb)->in[0] : n->in[1];
    int vc = tc >= 0 ? ord_node(p, tc)->out[0] : n->out[0];
    if ((ta >= 0 && cp->layout[va] != LAY_ROW) || (tb >= 0 && cp->layout[vb] != LAY_ROW))
        return unsupported(n, "head-split operands must be row-major", err);
    int64_t sa[SP_MAX_RANK], sb[SP_MAX_RANK], sc[SP_MAX_RANK];
    perm_strides(p, ta, &av->shape, sa);
    perm_strides(p, tb, &bv->shape, sb);
    out_strides(p, tc, &yv->shape, sc);
    dptr A, B, C;
    if ((rc = operand(lc, va, LAY_ANY, &A, NULL, err)) != SPRUN_OK ||
        (rc = operand(lc, vb, LAY_ANY, &B, NULL, err)) != SPRUN_OK || (rc = vptr(lc, vc, FORM_PLAIN, &C, err)))
        return rc;
    int64_t M = yv->shape.d[r - 2], N = yv->shape.d[r - 1], K = av->shape.d[r - 1], nb = 1;
    for (int d = 0; d < r - 2; d++)
        nb *= yv->shape.d[d];
    if (sc[r - 1] != 1 || nb > (1 << 30))
        return unsupported(n, "output view not supported", err);
    ADD_STEP(st, ST_BATCHED_PTR);
    st->out = C;
    st->a = A;
    st->b = B;
    st->dtype = vdtype(lc->cm, yv);
    st->m = (int)M;
    st->n = (int)N;
    st->k = (int)K;
    st->batch = (int)nb;
    st->alpha = 1.f;
    st->ldc = (int)sc[r - 2];
    /* column-major: C^T[N,M] = op(B^T) op(A^T) */
    if (sb[r - 1] == 1) {
        st->opa = CUBLAS_OP_N;
        st->lda = (int)sb[r - 2];
    } else if (sb[r - 2] == 1) {
        st->opa = CUBLAS_OP_T;
        st->lda = (int)sb[r - 1];
    } else
        return unsupported(n, "B view has no contiguous dim", err);
    if (sa[r - 1] == 1) {
        st->opb = CUBLAS_OP_N;
        st->ldb = (int)sa[r - 2];
    } else if (sa[r - 2] == 1) {
        st->opb = CUBLAS_OP_T;
        st->ldb = (int)sa[r - 1];
    } else
        return unsupported(n, "A view has no contiguous dim", err);
    st->boff = malloc((size_t)(3 * nb) * sizeof *st->boff);
    if (!st->boff)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for batch offsets");
    int64_t es = (int64_t)sp_dtype_size(st->dtype);
    for (int64_t i = 0; i < nb; i++) {
        int64_t q = i, oa = 0, ob = 0, oc = 0;
        for (int d = r - 3; d >= 0; d--) {
            int64_t c = q % yv->shape.d[d];
            q /= yv->shape.d[d];
            oa += c * sa[d];
            ob += c * sb[d];
            oc += c * sc[d];
        }
        st->boff[i] = oa * es;
        st->boff[nb + i] = ob * es;
        st->boff[2 * nb + i] = oc * es;
    }
    return SPRUN_OK;
}

/* Strides (elements) over (batch, head, position) of a rank-3/4 view whose
 * last dim is d; rank 3 has one head. */
static void attn_strides(const int64_t *st, int r, int pos_dim, int64_t out[3])
{
    out[0] = st[0];
    out[1] = r == 4 ? st[1] : 0;
    out[2] = st[pos_dim];
}

/* perm_strides for an attention operand: the Transpose's input may be a
 * slice read in place (find_split_views), whose rows are the Split input's. */
static void attn_operand_strides(const sp_plan *p, const cu_plan *cp, int t, const sp_shape *own, int64_t *st)
{
    const int v = t >= 0 ? ord_node(p, t)->in[0] : -1;
    if (v < 0 || cp->vview_src[v] < 0) {
        perm_strides(p, t, own, st);
        return;
    }
    const sp_shape *xs = &p->g.values[v].shape, *ss = &p->g.values[cp->vview_src[v]].shape;
    const int lead = ss->rank - 1; /* v keeps the Split input's leading dims and splits its last */
    int64_t rs[SP_MAX_RANK], acc = 1;
    for (int d = xs->rank - 1; d >= lead; d--) {
        rs[d] = acc;
        acc *= xs->d[d];
    }
    acc = ss->d[lead];
    for (int d = lead - 1; d >= 0; d--) {
        rs[d] = acc;
        acc *= xs->d[d];
    }
    transpose_strides(p, t, rs, xs->rank, st);
}

/* Device address of attention operand v (a slice view starts inside its
 * Split's input). */
static int view_operand(lower_ctx *lc, int v, dptr *out, sp_err *err)
{
    const cu_plan *cp = lc->cp;
    if (cp->vview_src[v] < 0)
        return operand(lc, v, LAY_ROW, out, NULL, err);
    const int src = cp->vview_src[v];
    int rc = operand(lc, src, LAY_ROW, out, NULL, err);
    if (rc == SPRUN_OK)
        *out = dadd(*out, cp->vview_off[v] * (int64_t)sp_dtype_size(vdtype(lc->cm, &lc->p->g.values[src])));
    return rc;
}

static int lower_attention(lower_ctx *lc, const sp_node *n, sp_err *err)
{
    const sp_plan *p = lc->p;
    cu_plan *cp = lc->cp;
    const sp_graph *g = &p->g;
    const int s = lc->ord, s1 = cp->fx[4 * s], s2 = cp->fx[4 * s + 3];
    const int tv = cp->fx[4 * s + 1], tc = cp->fx[4 * s + 2];
    const sp_node *n1 = ord_node(p, s1);
    const int tq = cp->fx[4 * s1], tk = cp->fx[4 * s1 + 1];
    const sp_value *qv = &g->values[n1->in[0]], *kv = &g->values[n1->in[1]], *vv = &g->values[n->in[1]];
    const sp_value *ov = &g->values[n->out[0]], *sc = &g->values[n1->out[0]];
    const int r = ov->shape.rank;
    const int vq = tq >= 0 ? ord_node(p, tq)->in[0] : n1->in[0], vk = tk >= 0 ? ord_node(p, tk)->in[0] : n1->in[1];
    const int vvv = tv >= 0 ? ord_node(p, tv)->in[0] : n->in[1], vo = tc >= 0 ? ord_node(p, tc)->out[0] : n->out[0];
    if ((tq >= 0 && cp->layout[view_base(cp, vq)] != LAY_ROW) || (tk >= 0 && cp->layout[view_base(cp, vk)] != LAY_ROW) ||
        (tv >= 0 && cp->layout[view_base(cp, vvv)] != LAY_ROW))
        return unsupported(n, "head-split operands must be row-major", err);
    int64_t sq[SP_MAX_RANK], sk[SP_MAX_RANK], sv[SP_MAX_RANK], so[SP_MAX_RANK];
    attn_operand_strides(p, cp, tq, &qv->shape, sq);
    attn_operand_strides(p, cp, tk, &kv->shape, sk);
    attn_operand_strides(p, cp, tv, &vv->shape, sv);
    out_strides(p, tc, &ov->shape, so);
    for (int k = 0; k < r - 1; k++)
        if (so[k] % 8)
            return unsupported(n, "fused attention output view not 8-element aligned", err);
    if (so[r - 1] != 1)
        return unsupported(n, "fused attention output view not contiguous in the head dim", err);
    dptr Q, K, V, O, M = {0, 0};
    int rc;
    const int mask = cp->fx[4 * s2 + 1];
    if ((rc = view_operand(lc, vq, &Q, err)) != SPRUN_OK || (rc = view_operand(lc, vk, &K, err)) != SPRUN_OK ||
        (rc = view_operand(lc, vvv, &V, err)) != SPRUN_OK || (rc = vptr(lc, vo, FORM_PLAIN, &O, err)) ||
        (mask >= 0 && (rc = operand(lc, mask, LAY_ROW, &M, NULL, err)) != SPRUN_OK))
        return rc;
    ADD_STEP(st, ST_ATTN);
    st->out = O;
    st->a = Q;
    st->b = K;
    st->c = V;
    st->d = M;
    st->dtype = SPRUN_DTYPE_FLOAT16;
    spk_attn *a = &st->attn;
    a->batch = ov->shape.d[0];
    a->heads = r == 4 ? ov->shape.d[1] : 1;
    a->sq = ov->shape.d[r - 2];
    a->sk = sc->shape.d[r - 1];
    a->d = (int)ov->shape.d[r - 1];
    attn_strides(sq, r, r - 2, a->q_s);
    attn_strides(sk, r, r - 1, a->k_s); /* K^T view [.., d, sk]: a key's row is its stride over sk */
    attn_strides(sv, r, r - 2, a->v_s);
    attn_strides(so, r, r - 2, a->o_s);
    a->scale = cp->fscale[s2];
    a->mask_div = mask >= 0 ? cp->fdiv[s2] : 1;
    a->mask_mod = mask >= 0 ? cp->fmod[s2] : 1;
    return SPRUN_OK;
}

static int lower_node(lower_ctx *lc, sp_err *err)
{
    const sp_plan *p = lc->p;
    cu_plan *cp = lc->cp;
    const sp_graph *g = &p->g;
    int s = lc->ord;
    const sp_node *n = ord_node(p, s);
    const sp_node *node = n;
    (void)node;
    const char *t = n->op_type;
    int role = cp->role[s];
    int rc = SPRUN_OK;
    if (role == R_NOP)
        return SPRUN_OK;
    if (role == R_BMM)
        return lower_bmm(lc, n, err);
    if (role == R_ATTN)
        return lower_attention(lc, n, err);
    int yv_i = n->out[0];
    const sp_value *yv = &g->values[yv_i];
    int dt = vdtype(lc->cm, yv);
    dptr y = yv->kind == SP_VAL_CONST ? (dptr){0, 0} : darena(cp->doff[yv_i]);
    int64_t ys[SP_MAX_RANK];
    layout_strides(&yv->shape, cp->layout[yv_i], ys);

    if (role == R_SOFTMAX || !strcmp(t, "Softmax")) {
        int r = yv->shape.rank;
        if (sp_axis(sp_attr_int(n, "axis", -1), r) != r - 1)
            return unsupported(n, "Softmax over a dim other than the last is not supported", err);
        dptr x, mask = {0, 0};
        int xin = role == R_SOFTMAX ? cp->fx[4 * s] : n->in[0];
        int min = role == R_SOFTMAX ? cp->fx[4 * s + 1] : -1;
        if ((rc = operand(lc, xin, LAY_ROW, &x, NULL, err)) != SPRUN_OK)
            return rc;
        if (min >= 0 && (rc = operand(lc, min, LAY_ROW, &mask, NULL, err)) != SPRUN_OK)
            return rc;
        ADD_STEP(st, ST_SOFTMAX);
        st->out = y;
        st->a = x;
        st->b = mask;
        st->dtype = dt;
        st->cols = yv->shape.d[r - 1];
        st->rows = sp_shape_numel(&yv->shape) / (st->cols ? st->cols : 1);
        st->f1 = role == R_SOFTMAX ? cp->fscale[s] : 1.f;
        st->x1 = role == R_SOFTMAX ? cp->fdiv[s] : 1;
        st->x2 = role == R_SOFTMAX ? cp->fmod[s] : 1;
        return SPRUN_OK;
    }
    if (role == R_LNRES || !strcmp(t, "LayerNormalization")) {
        int r = yv->shape.rank;
        if (sp_axis(sp_attr_int(n, "axis", -1), r) != r - 1)
            return unsupported(n, "LayerNormalization over more than the last dim is not supported", err);
        for (int k = 1; k < n->n_out; k++)
            if (n->out[k] >= 0 && sp_value_use_count(g, n->out[k]) > 0)
                return unsupported(n, "the Mean / InvStdDev outputs are not produced", err);
        dptr x, res = {0, 0}, ga = {0, 0}, be = {0, 0};
        if ((rc = operand(lc, role == R_LNRES ? cp->fx[4 * s] : n->in[0], LAY_ROW, &x, NULL, err)) != SPRUN_OK)
            return rc;
        if (role == R_LNRES && (rc = operand(lc, cp->fx[4 * s + 1], LAY_ROW, &res, NULL, err)) != SPRUN_OK)
            return rc;
        int64_t cols = yv->shape.d[r - 1];
        for (int k = 1; k <= 2; k++) {
            if (k >= n->n_in || n->in[k] < 0)
                continue;
            if (sp_shape_numel(&g->values[n->in[k]].shape) != cols)
                return unsupported(n, "scale/bias must have the normalised dim's size", err);
            if ((rc = operand(lc, n->in[k], LAY_ROW, k == 1 ? &ga : &be, NULL, err)) != SPRUN_OK)
                return rc;
        }
        ADD_STEP(st, ST_LAYERNORM);
        st->out = y;
        st->a = x;
        st->b = res;
        st->c = ga;
        st->d = be;
        st->dtype = dt;
        st->cols = cols;
        st->rows = sp_shape_numel(&yv->shape) / (cols ? cols : 1);
        st->f1 = sp_attr_float(n, "epsilon", 1e-5f);
        return SPRUN_OK;
    }
    if (!strcmp(t, "Conv"))
        return lower_conv(lc, n, err);
    if (!strcmp(t, "Gemm") || !strcmp(t, "MatMul"))
        return lower_gemm(lc, n, err);
    int bop = binop_of(t);
    if (bop >= 0 || !strcmp(t, "Where")) {
        int nin = bop >= 0 ? 2 : 3;
        if (n->n_in != nin)
            return unsupported(n, bop >= 0 ? "only two operands are supported" : "Where needs three operands", err);
        dptr ops[3];
        spk_view v;
        memset(&v, 0, sizeof v);
        v.rank = yv->shape.rank;
        for (int d = 0; d < v.rank; d++) {
            v.dims[d] = yv->shape.d[d];
            v.s[0][d] = ys[d];
        }
        for (int k = 0; k < nin; k++) {
            const sp_value *iv = &g->values[n->in[k]];
            int64_t is[SP_MAX_RANK];
            int lay;
            if ((rc = operand(lc, n->in[k], LAY_ANY, &ops[k], &lay, err)) != SPRUN_OK)
                return rc;
            layout_strides(&iv->shape, lay, is);
            bcast_strides(&yv->shape, &iv->shape, is, v.s[k + 1]);
        }
        if (!view_simplify(&v, nin + 1))
            return unsupported(n, "broadcast of rank > 6", err);
        if (bop >= 0 && dt != SPRUN_DTYPE_FLOAT16 && dt != SPRUN_DTYPE_FLOAT && dt != SPRUN_DTYPE_INT64)
            return unsupported(n, "this dtype is not supported", err);
        ADD_STEP(st, bop >= 0 ? ST_BINARY : ST_WHERE);
        st->op = bop;
        st->out = y;
        st->a = ops[0];
        st->b = ops[1];
        st->c = nin > 2 ? ops[2] : (dptr){0, 0};
        st->dtype = dt;
        st->view = v;
        return SPRUN_OK;
    }
    if (is_unary_op(t)) {
        float a, b;
        int op = unop_of(g, n, &a, &b);
        if (op < 0)
            return unsupported(n, "this attribute combination is not supported", err);
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        if (lay != cp->layout[yv_i] && phys_distinct(&yv->shape))
            return sp_err_set(err, SPRUN_ERR_INTERNAL, "node %s: layout mismatch", n->name);
        ADD_STEP(st, ST_UNARY);
        st->op = op;
        st->out = y;
        st->a = x;
        st->dtype = dt;
        st->rows = sp_shape_numel(&yv->shape);
        st->alpha = a;
        st->beta = b;
        return SPRUN_OK;
    }
    if (!strcmp(t, "ReduceMean")) {
        const sp_value *xv = &g->values[n->in[0]];
        int r = xv->shape.rank;
        const int64_t *ax = NULL;
        int64_t nax = sp_attr_ints(n, "axes", &ax);
        int64_t axbuf[SP_MAX_RANK];
        if (nax < 0 && n->n_in > 1 && n->in[1] >= 0) {
            const sp_value *av = &g->values[n->in[1]];
            if (av->kind != SP_VAL_CONST)
                return unsupported(n, "axes must be constant", err);
            nax = sp_shape_numel(&av->shape);
            for (int64_t i = 0; i < nax && i < SP_MAX_RANK; i++)
                axbuf[i] = sp_ld_i64(av->dtype, av->data, i);
            ax = axbuf;
        }
        int mask[SP_MAX_RANK] = {0};
        if (nax <= 0)
            for (int d = 0; d < r; d++)
                mask[d] = 1;
        for (int64_t i = 0; i < nax; i++) {
            int d = sp_axis(ax[i], r);
            if (d < 0)
                return unsupported(n, "axis out of range", err);
            mask[d] = 1;
        }
        int64_t cols = 1;
        int seen = 0;
        for (int d = 0; d < r; d++) {
            if (mask[d])
                seen = 1, cols *= xv->shape.d[d];
            else if (seen)
                return unsupported(n, "only trailing axes can be reduced", err);
        }
        dptr x;
        if ((rc = operand(lc, n->in[0], LAY_ROW, &x, NULL, err)) != SPRUN_OK)
            return rc;
        ADD_STEP(st, ST_MEAN);
        st->out = y;
        st->a = x;
        st->dtype = dt;
        st->cols = cols;
        st->rows = sp_shape_numel(&xv->shape) / (cols ? cols : 1);
        return SPRUN_OK;
    }
    if (!strcmp(t, "MaxPool") || !strcmp(t, "AveragePool")) {
        const sp_value *xv = &g->values[n->in[0]];
        if (xv->shape.rank != 4)
            return unsupported(n, "only 2-D pooling is supported", err);
        if (n->n_out > 1 && n->out[1] >= 0)
            return unsupported(n, "the Indices output is not supported", err);
        int64_t k[2], str[2], dil[2], pad[4] = {0, 0, 0, 0};
        if (get2(n, "kernel_shape", 1, k) || get2(n, "strides", 1, str) || get2(n, "dilations", 1, dil))
            return unsupported(n, "kernel_shape/strides/dilations must have 2 values", err);
        sp_shape ks = {4, {1, 1, k[0], k[1]}};
        conv_pads(n, &xv->shape, &ks, &yv->shape, pad, str, dil);
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        ADD_STEP(st, ST_POOL);
        st->out = y;
        st->a = x;
        st->dtype = dt;
        spk_pool *pl = &st->pool;
        pl->n = xv->shape.d[0];
        pl->c = xv->shape.d[1];
        pl->h = xv->shape.d[2];
        pl->w = xv->shape.d[3];
        pl->oh = yv->shape.d[2];
        pl->ow = yv->shape.d[3];
        pl->kh = (int)k[0];
        pl->kw = (int)k[1];
        pl->sh = (int)str[0];
        pl->sw = (int)str[1];
        pl->ph = (int)pad[0];
        pl->pw = (int)pad[1];
        pl->dh = (int)dil[0];
        pl->dw = (int)dil[1];
        pl->max = !strcmp(t, "MaxPool");
        pl->count_include_pad = (int)sp_attr_int(n, "count_include_pad", 0);
        layout_strides(&xv->shape, lay, pl->is);
        for (int d = 0; d < 4; d++)
            pl->os[d] = ys[d];
        return SPRUN_OK;
    }
    if (!strcmp(t, "GlobalAveragePool") || !strcmp(t, "GlobalMaxPool")) {
        const sp_value *xv = &g->values[n->in[0]];
        if (xv->shape.rank != 4)
            return unsupported(n, "only 4-D inputs are supported", err);
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        int64_t xs[4];
        layout_strides(&xv->shape, lay, xs);
        ADD_STEP(st, ST_GPOOL);
        st->out = y;
        st->a = x;
        st->dtype = dt;
        st->rows = xv->shape.d[0];
        st->cols = xv->shape.d[1];
        st->x1 = xv->shape.d[2] * xv->shape.d[3];
        st->is[0] = xs[0];
        st->is[1] = xs[1];
        st->is[2] = xs[3]; /* h*w as one dim of w's stride */
        st->os[0] = ys[0];
        st->os[1] = ys[1];
        st->op = !strcmp(t, "GlobalMaxPool");
        return SPRUN_OK;
    }
    if (!strcmp(t, "Gather")) {
        const sp_value *dv = &g->values[n->in[0]], *iv = &g->values[n->in[1]];
        int axis = sp_axis(sp_attr_int(n, "axis", 0), dv->shape.rank);
        if (axis < 0)
            return unsupported(n, "axis out of range", err);
        dptr d, ix;
        if ((rc = operand(lc, n->in[0], LAY_ROW, &d, NULL, err)) != SPRUN_OK ||
            (rc = operand(lc, n->in[1], LAY_ROW, &ix, NULL, err)) != SPRUN_OK)
            return rc;
        ADD_STEP(st, ST_GATHER);
        st->out = y;
        st->a = d;
        st->b = ix;
        st->dtype = dt;
        st->dtype2 = iv->dtype;
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < axis; k++)
            outer *= dv->shape.d[k];
        for (int k = axis + 1; k < dv->shape.rank; k++)
            inner *= dv->shape.d[k];
        st->rows = outer;
        st->x1 = dv->shape.d[axis];
        st->cols = inner;
        st->x2 = sp_shape_numel(&iv->shape);
        return SPRUN_OK;
    }
    if (!strcmp(t, "Transpose")) {
        const sp_value *xv = &g->values[n->in[0]];
        int r = xv->shape.rank;
        const int64_t *perm = NULL;
        int64_t np = sp_attr_ints(n, "perm", &perm);
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        int64_t xs[SP_MAX_RANK], ss[SP_MAX_RANK];
        layout_strides(&xv->shape, lay, xs);
        for (int d = 0; d < r; d++)
            ss[d] = xs[np == r && perm ? perm[d] : r - 1 - d];
        return emit_copy(lc, y, dt, ys, x, vdtype(lc->cm, xv), ss, &yv->shape, 0, err);
    }
    if (!strcmp(t, "Cast") || !strcmp(t, "Expand") || (is_alias_op(t))) {
        const sp_value *xv = &g->values[n->in[0]];
        if (is_alias_op(t) && xv->kind != SP_VAL_CONST && cp->doff[n->in[0]] == cp->doff[yv_i] &&
            cp->doff[yv_i] >= 0)
            return SPRUN_OK; /* shares the input's buffer */
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        int64_t xs[SP_MAX_RANK], ss[SP_MAX_RANK];
        layout_strides(&xv->shape, lay, xs);
        if (is_alias_op(t)) {
            /* element order is the input's row-major order: copy to row-major
             * first when the input is NHWC, then reinterpret */
            if (lay != LAY_ROW && phys_distinct(&xv->shape)) {
                int64_t rs[SP_MAX_RANK];
                row_strides(&xv->shape, rs);
                return emit_copy(lc, y, dt, rs, x, vdtype(lc->cm, xv), xs, &xv->shape, 0, err);
            }
            sp_shape flat = {1, {sp_shape_numel(&yv->shape)}};
            int64_t one = 1;
            return emit_copy(lc, y, dt, &one, x, vdtype(lc->cm, xv), &one, &flat, 0, err);
        }
        if (!strcmp(t, "Cast")) {
            if (!phys_distinct(&yv->shape) || cp->layout[yv_i] == LAY_ROW)
                return emit_copy(lc, y, dt, ys, x, vdtype(lc->cm, xv), xs, &yv->shape, 0, err);
        }
        bcast_strides(&yv->shape, &xv->shape, xs, ss);
        return emit_copy(lc, y, dt, ys, x, vdtype(lc->cm, xv), ss, &yv->shape, 0, err);
    }
    if (!strcmp(t, "Concat")) {
        int r = yv->shape.rank;
        int axis = sp_axis(sp_attr_int(n, "axis", 0), r);
        int64_t pos = 0;
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0)
                continue;
            const sp_value *xv = &g->values[n->in[k]];
            if (sp_shape_numel(&xv->shape) == 0)
                continue;
            dptr x;
            int lay;
            if ((rc = operand(lc, n->in[k], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
                return rc;
            int64_t xs[SP_MAX_RANK];
            layout_strides(&xv->shape, lay, xs);
            dptr dst = dadd(y, pos * ys[axis] * (int64_t)sp_dtype_size(dt));
            if ((rc = emit_copy(lc, dst, dt, ys, x, vdtype(lc->cm, xv), xs, &xv->shape, 0, err)) != SPRUN_OK)
                return rc;
            pos += xv->shape.d[axis];
        }
        return SPRUN_OK;
    }
    if (!strcmp(t, "Split")) {
        /* one strided copy per output (attention's query/key/value slices are
         * read in place instead: find_split_views) */
        const sp_value *xv = &g->values[n->in[0]];
        int r = xv->shape.rank;
        int axis = sp_axis(sp_attr_int(n, "axis", 0), r);
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        int64_t xs[SP_MAX_RANK];
        layout_strides(&xv->shape, lay, xs);
        int64_t pos = 0;
        for (int j = 0; j < n->n_out; j++) {
            const int o = n->out[j];
            if (o < 0)
                return unsupported(n, "an absent Split output is not supported", err);
            const sp_value *ov = &g->values[o];
            if (sp_shape_numel(&ov->shape) > 0) {
                int64_t os[SP_MAX_RANK];
                layout_strides(&ov->shape, cp->layout[o], os);
                if ((rc = emit_copy(lc, darena(cp->doff[o]), vdtype(lc->cm, ov), os, x, vdtype(lc->cm, xv), xs,
                                    &ov->shape, pos * xs[axis], err)) != SPRUN_OK)
                    return rc;
            }
            pos += ov->shape.d[axis];
        }
        return SPRUN_OK;
    }
    if (!strcmp(t, "Slice")) {
        const sp_value *xv = &g->values[n->in[0]];
        int r = xv->shape.rank;
        int64_t start[SP_MAX_RANK], step[SP_MAX_RANK];
        for (int d = 0; d < r; d++)
            start[d] = 0, step[d] = 1;
        int64_t ns = 0;
        int64_t sts[SP_MAX_RANK], axs[SP_MAX_RANK], stp[SP_MAX_RANK];
        if (g->opset < 10) {
            const int64_t *a = NULL, *b = NULL;
            ns = sp_attr_ints(n, "starts", &a);
            int64_t na = sp_attr_ints(n, "axes", &b);
            for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++) {
                sts[i] = a[i];
                axs[i] = na > 0 ? b[i] : i;
                stp[i] = 1;
            }
        } else {
            const sp_value *sv = &g->values[n->in[1]];
            if (sv->kind != SP_VAL_CONST)
                return unsupported(n, "starts must be constant", err);
            ns = sp_shape_numel(&sv->shape);
            for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++) {
                sts[i] = sp_ld_i64(sv->dtype, sv->data, i);
                axs[i] = i;
                stp[i] = 1;
            }
            if (n->n_in > 3 && n->in[3] >= 0) {
                const sp_value *av = &g->values[n->in[3]];
                if (av->kind != SP_VAL_CONST)
                    return unsupported(n, "axes must be constant", err);
                for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++)
                    axs[i] = sp_ld_i64(av->dtype, av->data, i);
            }
            if (n->n_in > 4 && n->in[4] >= 0) {
                const sp_value *pv = &g->values[n->in[4]];
                if (pv->kind != SP_VAL_CONST)
                    return unsupported(n, "steps must be constant", err);
                for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++)
                    stp[i] = sp_ld_i64(pv->dtype, pv->data, i);
            }
        }
        for (int64_t i = 0; i < ns && i < SP_MAX_RANK; i++) {
            int d = sp_axis(axs[i], r);
            if (d < 0 || stp[i] == 0)
                return unsupported(n, "bad axis or zero step", err);
            int64_t D = xv->shape.d[d], s0 = sts[i];
            if (s0 < 0)
                s0 += D;
            if (stp[i] > 0)
                s0 = s0 < 0 ? 0 : (s0 > D ? D : s0);
            else
                s0 = s0 < 0 ? 0 : (s0 > D - 1 ? D - 1 : s0);
            start[d] = s0;
            step[d] = stp[i];
        }
        dptr x;
        int lay;
        if ((rc = operand(lc, n->in[0], LAY_ANY, &x, &lay, err)) != SPRUN_OK)
            return rc;
        int64_t xs[SP_MAX_RANK], ss[SP_MAX_RANK], base = 0;
        layout_strides(&xv->shape, lay, xs);
        for (int d = 0; d < r; d++) {
            ss[d] = xs[d] * step[d];
            base += start[d] * xs[d];
        }
        if (sp_shape_numel(&yv->shape) == 0)
            return SPRUN_OK;
        return emit_copy(lc, y, dt, ys, x, vdtype(lc->cm, xv), ss, &yv->shape, base, err);
    }
    return unsupported(n, "no CUDA lowering", err);
}

/* --- launching ----------------------------------------------------------- */

int cu_launch_step(const cu_plan *cp, cu_session *cs, const sp_plan *p, const cu_step *st, cudaStream_t sm,
                   sp_err *err)
{
    const sp_node *node = st->ord >= 0 ? ord_node(p, st->ord) : NULL;
    void *out = resolve(cp, st->out), *a = resolve(cp, st->a), *b = resolve(cp, st->b), *c = resolve(cp, st->c),
         *d = resolve(cp, st->d);
    switch (st->kind) {
    case ST_SPMM: {
        int rc = sp_cuda_sparse_launch(&st->sl, node, a, out, c, d, st->act, resolve(cp, st->col), cp->spmm_ws,
                                       cp->spmm_ws_bytes, sm, err);
        if (rc != SPRUN_OK)
            return rc;
        break;
    }
    case ST_GEMM90: {
        const sp_cuda_dense w = {b, st->m, st->k, st->k};
        sp_cuda_spmm_args ga = {.n = st->n, .x = a, .ldx = st->k, .y = out, .ldy = st->m, .bias = c,
                                .residual = d, .ldr = st->m, .act = st->act, .alpha = st->f1, .beta = st->f2,
                                .stream = sm, .config = st->gcfg};
        sp_cuda_status gs = {0};
        if (sp_cuda_dense_gemm(&w, &ga, &gs) != 0)
            return sp_err_set(err, SPRUN_ERR_BACKEND, "node '%s': dense sm_90 GEMM failed: %s",
                              node ? node->name : "?", gs.msg);
        break;
    }
    case ST_COPY: CU_K(spk_copy(sm, out, st->dtype, a, st->dtype2, &st->view)); break;
    case ST_BINARY: CU_K(spk_binary(sm, st->op, st->dtype, out, a, b, &st->view)); break;
    case ST_WHERE: CU_K(spk_where(sm, st->dtype, out, a, b, c, &st->view)); break;
    case ST_UNARY: CU_K(spk_unary(sm, st->op, st->dtype, out, a, st->rows, st->alpha, st->beta)); break;
    case ST_BIAS_ACT:
        CU_K(spk_bias_act(sm, st->dtype, out, st->rows, st->cols, c, d, st->act, st->alpha, st->beta));
        break;
    case ST_SOFTMAX:
        CU_K(spk_softmax(sm, st->dtype, out, a, st->rows, st->cols, st->f1, b, st->x1, st->x2));
        break;
    case ST_ATTN: CU_K(spk_attention(sm, out, a, b, c, d, &st->attn)); break;
    case ST_LAYERNORM: CU_K(spk_layernorm(sm, st->dtype, out, a, b, c, d, st->rows, st->cols, st->f1)); break;
    case ST_MEAN: CU_K(spk_reduce_mean(sm, st->dtype, out, a, st->rows, st->cols)); break;
    case ST_POOL: CU_K(spk_pool2d(sm, st->dtype, out, a, &st->pool)); break;
    case ST_IM2COL: CU_K(spk_im2col_nhwc(sm, st->dtype, out, a, &st->conv)); break;
    case ST_GPOOL:
        CU_K(spk_global_pool(sm, st->dtype, out, a, st->rows, st->cols, st->x1, st->is, st->os, st->op));
        break;
    case ST_GATHER:
        CU_K(spk_gather(sm, out, a, (int)sp_dtype_size(st->dtype), b, st->dtype2, st->rows, st->x1, st->cols, st->x2));
        break;
    case ST_CONV: {
        float one = 1.f, zero = 0.f;
        void *ws = resolve(cp, st->ws);
        if (st->fused_act) {
            float a2 = d ? 1.f : 0.f;
            CU_DNN(cudnnConvolutionBiasActivationForward(cs->dnn, &one, st->xd, a, st->wd, b, st->cd, st->algo, ws,
                                                         st->ws_bytes, &a2, st->yd, d ? d : out, st->bd, c, st->ad,
                                                         st->yd, out));
        } else {
            CU_DNN(cudnnConvolutionForward(cs->dnn, &one, st->xd, a, st->wd, b, st->cd, st->algo, ws, st->ws_bytes,
                                           &zero, st->yd, out));
            CU_K(spk_bias_act(sm, st->dtype, out, st->rows, st->cols, c, d, st->act, st->alpha, st->beta));
        }
        break;
    }
    case ST_LT: {
        float al = st->alpha, be = st->beta;
        if (st->has_bias)
            CU_BLAS(cublasLtMatmulDescSetAttribute(st->md, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &c, sizeof c));
        CU_BLAS(cublasLtMatmul(cs->lt, st->md, &al, b, st->la, a, st->lb, &be, d ? d : out, st->lc, out, st->lc,
                               &st->lalgo, resolve(cp, st->ws), st->ws_bytes, sm));
        break;
    }
    case ST_BATCHED: {
        float al = st->alpha, be = 0.f;
        cudaDataType_t ct = st->dtype == SPRUN_DTYPE_FLOAT16 ? CUDA_R_16F : CUDA_R_32F;
        CU_BLAS(cublasGemmStridedBatchedEx(cs->blas, CUBLAS_OP_N, CUBLAS_OP_N, st->n, st->m, st->k, &al, b, ct,
                                           st->n, st->sb, a, ct, st->k, st->sa, &be, out, ct, st->n, st->sc,
                                           st->batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
    }
    case ST_BATCHED_PTR: {
        float al = st->alpha, be = 0.f;
        cudaDataType_t ct = st->dtype == SPRUN_DTYPE_FLOAT16 ? CUDA_R_16F : CUDA_R_32F;
        void **pa = st->parr;
        CU_BLAS(cublasGemmBatchedEx(cs->blas, (cublasOperation_t)st->opa, (cublasOperation_t)st->opb, st->n, st->m,
                                    st->k, &al, (const void *const *)(pa + st->batch), ct, st->lda,
                                    (const void *const *)pa, ct, st->ldb, &be, pa + 2 * st->batch, ct, st->ldc,
                                    st->batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
    }
    default: return sp_err_set(err, SPRUN_ERR_INTERNAL, "unknown step kind %d", st->kind);
    }
    return SPRUN_OK;
}

int cu_launch_all(const cu_plan *cp, cu_session *cs, const sp_plan *p, cudaStream_t sm, int profile,
                  sp_err *err)
{
    /* profile 2: being captured, the events become graph nodes (external) */
    const unsigned evflags = profile == 2 ? cudaEventRecordExternal : cudaEventRecordDefault;
    int cur = -2;
    for (int i = 0; i < cp->n_st; i++) {
        const cu_step *st = &cp->st[i];
        if (st->skip)
            continue;
        if (profile && st->ord != cur) {
            if (cur >= 0)
                cudaEventRecordWithFlags(cp->ev[2 * cur + 1], sm, evflags);
            if (st->ord >= 0)
                cudaEventRecordWithFlags(cp->ev[2 * st->ord], sm, evflags);
            cur = st->ord;
        }
        int rc = cu_launch_step(cp, cs, p, st, sm, err);
        if (rc != SPRUN_OK)
            return rc;
    }
    if (profile && cur >= 0)
        cudaEventRecordWithFlags(cp->ev[2 * cur + 1], sm, evflags);
    return SPRUN_OK;
}

/* A profiled run: the steps with an event pair around each node, captured
 * into a graph and replayed, so a node's time is its kernels' device time
 * as in a normal run, without the host's launch gaps an eager run would add
 * to every node. A plan's first run and plans that cannot be captured run
 * eagerly (their per-node times then include launch gaps). */
static int profile_run(cu_plan *cp, cu_session *cs, const sp_plan *p, cudaStream_t sm, sp_err *err)
{
    /* as for the plan's own graph: the first run is eager (steps may set
     * themselves up on it), and the graph is replayed once (it may reuse
     * its input buffers for later values, so a second replay reads others) */
    if (!cp->no_graph && cp->n_runs > 0) {
        cudaGraph_t graph = NULL;
        cudaGraphExec_t exec = NULL;
        if (cudaStreamBeginCapture(sm, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
            int rc = cu_launch_all(cp, cs, p, sm, 2, err);
            cudaError_t e = cudaStreamEndCapture(sm, &graph);
            if (rc == SPRUN_OK && e == cudaSuccess && cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
                exec = NULL;
            if (graph)
                cudaGraphDestroy(graph);
            if (rc != SPRUN_OK)
                memset(err, 0, sizeof *err); /* the eager run below reports real failures */
        }
        (void)cudaGetLastError();
        if (exec) {
            cudaError_t e = cudaGraphUpload(exec, sm);
            if (e == cudaSuccess)
                e = cudaGraphLaunch(exec, sm);
            if (e == cudaSuccess)
                e = cudaStreamSynchronize(sm);
            cudaGraphExecDestroy(exec);
            if (e != cudaSuccess)
                return sp_err_set(err, SPRUN_ERR_BACKEND, "profiled graph replay failed: %s", cudaGetErrorString(e));
            return SPRUN_OK;
        }
    }
    return cu_launch_all(cp, cs, p, sm, 1, err);
}

static void cu_plan_free(struct sprun_session *s, sp_plan *p)
{
    (void)s;
    cu_plan *cp = p->backend_plan;
    if (!cp)
        return;
    if (cp->captured_on)
        cudaStreamSynchronize(cp->captured_on);
    else
        cudaDeviceSynchronize();
    if (cp->exec)
        cudaGraphExecDestroy(cp->exec);
    cudaFree(cp->spmm_ws);
    if (cp->tms) {
        if (cp->n_tms > 0) {
            for (int i = 1; i < cp->n_tms; i++) /* insertion sort: plans are freed rarely */
                for (int j = i; j > 0 && cp->tms[j] < cp->tms[j - 1]; j--) {
                    float t = cp->tms[j];
                    cp->tms[j] = cp->tms[j - 1];
                    cp->tms[j - 1] = t;
                }
            fprintf(stderr, "sprun cuda: graph replay (device only) over %d runs: median %.1f us, p90 %.1f us\n",
                    cp->n_tms, cp->tms[cp->n_tms / 2] * 1e3, cp->tms[(cp->n_tms * 9) / 10] * 1e3);
        }
        cudaEventDestroy(cp->tev[0]);
        cudaEventDestroy(cp->tev[1]);
        free(cp->tms);
    }
    for (int i = 0; i < cp->n_st; i++) {
        cu_step *st = &cp->st[i];
        if (st->xd) cudnnDestroyTensorDescriptor(st->xd);
        if (st->yd) cudnnDestroyTensorDescriptor(st->yd);
        if (st->bd) cudnnDestroyTensorDescriptor(st->bd);
        if (st->wd) cudnnDestroyFilterDescriptor(st->wd);
        if (st->cd) cudnnDestroyConvolutionDescriptor(st->cd);
        if (st->ad) cudnnDestroyActivationDescriptor(st->ad);
        if (st->md) cublasLtMatmulDescDestroy(st->md);
        if (st->la) cublasLtMatrixLayoutDestroy(st->la);
        if (st->lb) cublasLtMatrixLayoutDestroy(st->lb);
        if (st->lc) cublasLtMatrixLayoutDestroy(st->lc);
        free(st->boff);
    }
    cudaFree(cp->ptr_pool);
    cudaFree(cp->konst);
    for (int i = 0; i < cp->n_ev; i++)
        cudaEventDestroy(cp->ev[i]);
    free(cp->ev);
    free(cp->st);
    cudaFree(cp->arena);
    cudaFree(cp->pool);
    cudaFree(cp->zeros);
    cudaFree(cp->find_buf);
    free(cp->pc);
    free(cp->layout);
    free(cp->doff);
    free(cp->role);
    free(cp->node_ord);
    free(cp->fx);
    free(cp->fscale);
    free(cp->fdiv);
    free(cp->fmod);
    free(cp->vview_src);
    free(cp->vview_off);
    free(cp->in);
    free(cp->out);
    free(cp);
    p->backend_plan = NULL;
}

/* Outputs that are constants in plan p have no arena copy; device-output
 * runs return these copies, uploaded once (host-output runs copy v->data). */
static int upload_const_outputs(const sp_plan *p, cu_plan *cp, sp_err *err)
{
    const sp_node *node = NULL;
    const sp_graph *g = &p->g;
    size_t total = 0;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->values[g->outputs[i]].kind == SP_VAL_CONST && cp->out[i].bytes)
            total += align_up(cp->out[i].bytes);
    if (!total)
        return SPRUN_OK;
    CU_RT(cudaMalloc((void **)&cp->konst, total));
    size_t off = 0;
    for (int i = 0; i < g->n_outputs; i++) {
        const sp_value *v = &g->values[g->outputs[i]];
        if (v->kind != SP_VAL_CONST || !cp->out[i].bytes)
            continue;
        cp->out[i].konst = cp->konst + off;
        CU_RT(cudaMemcpy(cp->out[i].konst, v->data, cp->out[i].bytes, cudaMemcpyHostToDevice));
        off += align_up(cp->out[i].bytes);
    }
    return SPRUN_OK;
}

static int cu_plan_init(struct sprun_session *s, sp_plan *p, sp_err *err)
{
    const sp_node *node = NULL;
    const cu_model *cm = s->model->backend_model;
    cu_session *cs = s->backend_session;
    const sp_graph *g = &p->g;
    CU_RT(cudaSetDevice(cm->device));
    cu_plan *cp = calloc(1, sizeof *cp);
    if (!cp)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a CUDA plan");
    p->backend_plan = cp;
    int nv = g->n_values > 0 ? g->n_values : 1, no = p->n_order > 0 ? p->n_order : 1;
    cp->layout = calloc((size_t)nv, sizeof *cp->layout);
    cp->doff = calloc((size_t)nv, sizeof *cp->doff);
    cp->role = calloc((size_t)no, sizeof *cp->role);
    cp->node_ord = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *cp->node_ord);
    cp->fx = malloc((size_t)no * 4 * sizeof *cp->fx);
    cp->fscale = calloc((size_t)no, sizeof *cp->fscale);
    cp->fdiv = calloc((size_t)no, sizeof *cp->fdiv);
    cp->vview_src = malloc((size_t)nv * sizeof *cp->vview_src);
    cp->vview_off = calloc((size_t)nv, sizeof *cp->vview_off);
    cp->fmod = calloc((size_t)no, sizeof *cp->fmod);
    cp->in = calloc((size_t)(g->n_inputs + 1), sizeof *cp->in);
    cp->out = calloc((size_t)(g->n_outputs + 1), sizeof *cp->out);
    int rc = SPRUN_OK;
    int *uses = use_counts(p);
    if (!cp->layout || !cp->doff || !cp->role || !cp->node_ord || !cp->fx || !cp->fscale || !cp->fdiv ||
        !cp->fmod || !cp->in || !cp->out || !uses || !cp->vview_src || !cp->vview_off) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a CUDA plan");
        goto fail;
    }
    for (int i = 0; i < g->n_nodes; i++)
        cp->node_ord[i] = -1;
    for (int i = 0; i < p->n_order; i++)
        cp->node_ord[p->order[i]] = i;
    for (int i = 0; i < 4 * no; i++)
        cp->fx[i] = -1;
    for (int i = 0; i < nv; i++)
        cp->vview_src[i] = -1;
    /* unsupported ops, listed at once (plan-time folding may have removed some) */
    int n_bad = 0;
    for (int i = 0; i < p->n_order; i++) {
        const sp_node *n = ord_node(p, i);
        if (cu_supports_node(&p->g, n))
            continue;
        char label[256];
        if (!n_bad++)
            sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "the CUDA backend has no implementation of:");
        sp_err_append(err, " %s;", sp_node_label(n, label, sizeof label));
    }
    if (n_bad) {
        rc = SPRUN_ERR_UNSUPPORTED;
        goto fail;
    }
    find_fusions(p, cp, uses);
    find_bmm_fusions(p, cp, uses);
    find_attention_fusions(p, cp, uses, cm->fp16);
    find_split_views(p, cp, uses);
    assign_layouts(p, cp);
    if ((rc = plan_device_memory(p, cp, cm, err)) != SPRUN_OK)
        goto fail;
    /* constants this plan folded itself */
    {
        const_req *req = NULL;
        int nreq = 0, k = 0;
        if ((rc = collect_const_reqs(g, p->order, p->n_order, cm->fp16 && sp_cuda_dense_gemm_ok(), &req, &nreq,
                                      err)) != SPRUN_OK)
            goto fail;
        for (int i = 0; i < nreq; i++)
            if (!find_const(cm->c, cm->n, g->values[req[i].value].data, req[i].form))
                req[k++] = req[i];
        rc = upload_consts(g, cm->fp16, req, k, &cp->pool, &cp->pc, &cp->n_pc, err);
        free(req);
        if (rc != SPRUN_OK)
            goto fail;
    }
    /* zero bias for convolutions without one */
    {
        int64_t maxk = 1;
        for (int i = 0; i < p->n_order; i++) {
            const sp_node *n = ord_node(p, i);
            if (!strcmp(n->op_type, "Conv") && g->values[n->out[0]].shape.rank == 4 &&
                g->values[n->out[0]].shape.d[1] > maxk)
                maxk = g->values[n->out[0]].shape.d[1];
        }
        cp->zeros_bytes = (size_t)maxk * 4;
        cudaError_t e = cudaMalloc(&cp->zeros, cp->zeros_bytes);
        if (e == cudaSuccess)
            e = cudaMemset(cp->zeros, 0, cp->zeros_bytes);
        if (e != cudaSuccess) {
            rc = sp_cu_fail_rt(err, e, "cudaMalloc(zero bias)", __FILE__, __LINE__, NULL);
            goto fail;
        }
    }
    /* io staging for inputs/outputs whose host dtype or layout differs */
    cp->io_bytes = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const sp_value *v = &g->values[g->inputs[i]];
        cp->in[i].value = g->inputs[i];
        cp->in[i].bytes = (size_t)sp_shape_numel(&v->shape) * sp_dtype_size(v->dtype);
        if (vdtype(cm, v) == v->dtype)
            cp->in[i].dev = cp->doff[g->inputs[i]] >= 0 ? darena(cp->doff[g->inputs[i]]) : (dptr){0, 0};
        else {
            cp->in[i].dev = darena((int64_t)(cp->act_bytes + cp->io_bytes));
            cp->io_bytes += align_up(cp->in[i].bytes);
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int vi = g->outputs[i];
        const sp_value *v = &g->values[vi];
        cp->out[i].value = vi;
        cp->out[i].bytes = p->out_bytes[i];
        if (v->kind == SP_VAL_CONST)
            continue;
        if (vdtype(cm, v) == v->dtype && (cp->layout[vi] == LAY_ROW || !phys_distinct(&v->shape)))
            cp->out[i].dev = darena(cp->doff[vi]);
        else {
            cp->out[i].dev = darena((int64_t)(cp->act_bytes + cp->io_bytes));
            cp->io_bytes += align_up(cp->out[i].bytes);
        }
    }
    if ((rc = upload_const_outputs(p, cp, err)) != SPRUN_OK)
        goto fail;
    /* steps */
    cudnnSetStream(cs->dnn, s->stream ? (cudaStream_t)s->stream : cs->own);
    lower_ctx lc = {p, cp, cm, cs, -1, s->model, 0, 0};
    for (int i = 0; i < g->n_inputs; i++) {
        const sp_value *v = &g->values[g->inputs[i]];
        if (vdtype(cm, v) == v->dtype || cp->doff[g->inputs[i]] < 0)
            continue;
        int64_t rs[SP_MAX_RANK];
        row_strides(&v->shape, rs);
        if ((rc = emit_copy(&lc, darena(cp->doff[g->inputs[i]]), vdtype(cm, v), rs, cp->in[i].dev, v->dtype, rs,
                            &v->shape, 0, err)) != SPRUN_OK)
            goto fail;
    }
    for (int i = 0; i < p->n_order; i++) {
        lc.ord = i;
        cp->scratch_cur = 0;
        if ((rc = lower_node(&lc, err)) != SPRUN_OK)
            goto fail;
        if (lc.pend_alt) { /* the dense lowering after a sparse alternative joins its group */
            for (int k = lc.pend_first; k < cp->n_st; k++) {
                if (!cp->st[k].alt)
                    cp->st[k].var = 1; /* else the conv's own GEMM (1) / cuDNN (2) variants */
                cp->st[k].alt = lc.pend_alt;
            }
            lc.pend_alt = 0;
        }
    }
    lc.ord = -1;
    cp->scratch_cur = 0;
    for (int i = 0; i < g->n_outputs; i++) {
        int vi = g->outputs[i];
        const sp_value *v = &g->values[vi];
        if (v->kind == SP_VAL_CONST || cp->out[i].dev.off == cp->doff[vi])
            continue;
        int64_t rs[SP_MAX_RANK], ls[SP_MAX_RANK];
        row_strides(&v->shape, rs);
        layout_strides(&v->shape, cp->layout[vi], ls);
        if ((rc = emit_copy(&lc, cp->out[i].dev, v->dtype, rs, darena(cp->doff[vi]), vdtype(cm, v), ls, &v->shape, 0,
                            err)) != SPRUN_OK)
            goto fail;
    }
    cudaFree(cp->find_buf);
    cp->find_buf = NULL;
    cp->find_bytes = 0;
    cp->arena_bytes = cp->act_bytes + cp->io_bytes + align_up(cp->scratch_bytes);
    {
        cudaError_t e = cudaMalloc((void **)&cp->arena, cp->arena_bytes ? cp->arena_bytes : CU_ALIGN);
        if (e != cudaSuccess) {
            char what[96];
            snprintf(what, sizeof what, "cudaMalloc(arena of %zu bytes)", cp->arena_bytes);
            rc = sp_cu_fail_rt(err, e, what, __FILE__, __LINE__, NULL);
            goto fail;
        }
    }
    /* pointer arrays of the batched head matmuls, now that addresses are known */
    {
        size_t np = 0;
        for (int i = 0; i < cp->n_st; i++)
            if (cp->st[i].kind == ST_BATCHED_PTR)
                np += 3 * (size_t)cp->st[i].batch;
        if (np) {
            void **h = malloc(np * sizeof *h);
            cudaError_t e = h ? cudaMalloc(&cp->ptr_pool, np * sizeof *h) : cudaErrorMemoryAllocation;
            size_t k = 0;
            for (int i = 0; h && e == cudaSuccess && i < cp->n_st; i++) {
                cu_step *st = &cp->st[i];
                if (st->kind != ST_BATCHED_PTR)
                    continue;
                st->parr = (void **)cp->ptr_pool + k;
                char *base[3] = {resolve(cp, st->a), resolve(cp, st->b), resolve(cp, st->out)};
                for (int j = 0; j < 3 * st->batch; j++)
                    h[k + j] = base[j / st->batch] + st->boff[j];
                k += 3 * (size_t)st->batch;
            }
            if (e == cudaSuccess)
                e = cudaMemcpy(cp->ptr_pool, h, np * sizeof *h, cudaMemcpyHostToDevice);
            free(h);
            if (e != cudaSuccess) {
                rc = sp_cu_fail_rt(err, e, "pointer arrays", __FILE__, __LINE__, NULL);
                goto fail;
            }
        }
    }
    cu_tune_plan(cp, cs, p, s->stream ? (cudaStream_t)s->stream : cs->own);
    p->arena_bytes = cp->arena_bytes; /* sprun_session_plan_stats reports the device arena */
    if (getenv("SPRUN_CUDA_TIMING") && (cp->tms = malloc(100000 * sizeof *cp->tms)) != NULL &&
        (cudaEventCreate(&cp->tev[0]) != cudaSuccess || cudaEventCreate(&cp->tev[1]) != cudaSuccess)) {
        free(cp->tms);
        cp->tms = NULL;
    }
    if (getenv("SPRUN_CUDA_DEBUG")) {
        int n_gemm = 0, n_dnn = 0, n_g90 = 0;
        for (int i = 0; i < cp->n_st; i++)
            if (!cp->st[i].skip && cp->st[i].kind == ST_CONV)
                n_dnn++;
            else if (!cp->st[i].skip && cp->st[i].ord >= 0 && cp->st[i].kind == ST_LT &&
                     !strcmp(ord_node(p, cp->st[i].ord)->op_type, "Conv"))
                n_gemm++;
            else if (!cp->st[i].skip && cp->st[i].kind == ST_GEMM90)
                n_g90++;
        fprintf(stderr,
                "sprun cuda plan: convs through cuDNN %d, as cuBLASLt GEMMs %d; MatMuls as the dense sm_90 GEMM "
                "with the activation fused %d\n",
                n_dnn, n_gemm, n_g90);
        int nfused[R_COUNT] = {0};
        for (int i = 0; i < p->n_order; i++)
            nfused[cp->role[i]]++;
        fprintf(stderr,
                "sprun cuda plan: %d nodes -> %d launches; arena %zu = act %zu + io %zu + scratch %zu; "
                "fused away %d (softmax %d, add+layernorm %d, head transposes into matmuls %d, attention %d); "
                "%d constants uploaded for this plan\n",
                p->n_order, cp->n_st, cp->arena_bytes, cp->act_bytes, cp->io_bytes, cp->scratch_bytes, nfused[R_NOP],
                nfused[R_SOFTMAX], nfused[R_LNRES], nfused[R_BMM], nfused[R_ATTN], cp->n_pc);
    }
    free(uses);
    return SPRUN_OK;
fail:
    free(uses);
    cu_plan_free(s, p);
    return rc;
}

static cudaStream_t session_stream(const struct sprun_session *s)
{
    const cu_session *cs = s->backend_session;
    return s->stream ? (cudaStream_t)s->stream : cs->own;
}

static int cu_run(struct sprun_session *s, sp_plan *p, const sprun_tensor *const *inputs, sp_err *err)
{
    const sp_node *node = NULL;
    const cu_model *cm = s->model->backend_model;
    cu_session *cs = s->backend_session;
    cu_plan *cp = p->backend_plan;
    const sp_graph *g = &p->g;
    cudaStream_t sm = session_stream(s);
    int dev_out = s->out_memory == SPRUN_MEMORY_DEVICE;
    CU_RT(cudaSetDevice(cm->device));
    CU_DNN(cudnnSetStream(cs->dnn, sm));
    CU_BLAS(cublasSetStream(cs->blas, sm));
    /* in stream order before the graph: a device input is one D2D copy */
    for (int i = 0; i < g->n_inputs; i++)
        if (cp->in[i].dev.base && cp->in[i].bytes)
            CU_RT(cudaMemcpyAsync(resolve(cp, cp->in[i].dev), inputs[i]->data, cp->in[i].bytes,
                                  inputs[i]->memory == SPRUN_MEMORY_DEVICE ? cudaMemcpyDeviceToDevice
                                                                           : cudaMemcpyHostToDevice,
                                  sm));
    int rc;
    if (s->profiling) {
        if (cp->n_ev < 2 * p->n_order) {
            for (int i = 0; i < cp->n_ev; i++)
                cudaEventDestroy(cp->ev[i]);
            free(cp->ev);
            cp->n_ev = 0;
            cp->ev = calloc((size_t)(2 * p->n_order + 1), sizeof *cp->ev);
            if (!cp->ev)
                return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for profiling events");
            for (int i = 0; i < 2 * p->n_order; i++) {
                CU_RT(cudaEventCreate(&cp->ev[i]));
                cp->n_ev++;
            }
        }
        if ((rc = profile_run(cp, cs, p, sm, err)) != SPRUN_OK)
            return rc;
    } else {
        if (cp->exec && cp->captured_on != sm) {
            cudaGraphExecDestroy(cp->exec);
            cp->exec = NULL;
        }
        if (!cp->exec && !cp->no_graph && cp->n_runs > 0) {
            cudaGraph_t graph = NULL;
            CU_RT(cudaStreamBeginCapture(sm, cudaStreamCaptureModeThreadLocal));
            rc = cu_launch_all(cp, cs, p, sm, 0, err);
            cudaError_t e = cudaStreamEndCapture(sm, &graph);
            if (rc == SPRUN_OK && e == cudaSuccess) {
                e = cudaGraphInstantiate(&cp->exec, graph, 0);
                if (e != cudaSuccess)
                    cp->exec = NULL;
            }
            if (graph)
                cudaGraphDestroy(graph);
            if (rc != SPRUN_OK || e != cudaSuccess) {
                (void)cudaGetLastError();
                cp->no_graph = 1;
                if (getenv("SPRUN_CUDA_DEBUG"))
                    fprintf(stderr, "sprun cuda: graph capture failed (%s), running eagerly\n",
                            rc != SPRUN_OK ? err->msg : cudaGetErrorString(e));
                memset(err, 0, sizeof *err);
            } else
                cp->captured_on = sm;
        }
        if (cp->no_graph || !cp->exec) {
            if ((rc = cu_launch_all(cp, cs, p, sm, 0, err)) != SPRUN_OK)
                return rc;
        } else {
            if (cp->tms)
                cudaEventRecord(cp->tev[0], sm);
            CU_RT(cudaGraphLaunch(cp->exec, sm));
            if (cp->tms)
                cudaEventRecord(cp->tev[1], sm);
        }
    }
    cp->n_runs++;
    for (int i = 0; i < g->n_outputs && !dev_out; i++) {
        if (!cp->out[i].dev.base || !cp->out[i].bytes)
            continue;
        CU_RT(cudaMemcpyAsync(p->out_host[i], resolve(cp, cp->out[i].dev), cp->out[i].bytes, cudaMemcpyDeviceToHost,
                              sm));
    }
    /* device outputs: done once enqueued, unless timings must be read */
    if (dev_out && !s->profiling && !cp->tms)
        return SPRUN_OK;
    CU_RT(cudaStreamSynchronize(sm));
    if (cp->tms && cp->exec && !s->profiling && cp->n_tms < 100000) {
        float ms = 0.f;
        if (cudaEventElapsedTime(&ms, cp->tev[0], cp->tev[1]) == cudaSuccess)
            cp->tms[cp->n_tms++] = ms;
        (void)cudaGetLastError();
    }
    for (int i = 0; i < g->n_outputs && !dev_out; i++) {
        const sp_value *v = &g->values[g->outputs[i]];
        if (v->kind == SP_VAL_CONST && v->data && p->out_bytes[i])
            memcpy(p->out_host[i], v->data, p->out_bytes[i]);
    }
    if (s->profiling)
        for (int i = 0; i < p->n_order && i < s->n_profile; i++) {
            float ms = 0.f;
            s->profile_us[i] = 0;
            if (cp->role[i] != R_NOP && cudaEventElapsedTime(&ms, cp->ev[2 * i], cp->ev[2 * i + 1]) == cudaSuccess)
                s->profile_us[i] = ms * 1000.0;
            (void)cudaGetLastError(); /* nodes without steps (aliases) have unrecorded events */
        }
    return SPRUN_OK;
}

/* --- device I/O (sp_backend_i's device_* hooks) ------------------------- */

static int cu_device_check(const struct sprun_session *s, const void *ptr, sp_err *err)
{
    const cu_model *cm = s->model->backend_model;
    struct cudaPointerAttributes a;
    memset(&a, 0, sizeof a);
    cudaError_t e = cudaPointerGetAttributes(&a, ptr);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "data %p is not a CUDA address (cudaPointerGetAttributes: %s)",
                          ptr, cudaGetErrorString(e));
    }
    if (a.type == cudaMemoryTypeManaged)
        return SPRUN_OK;
    if (a.type != cudaMemoryTypeDevice)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "data %p is %s, not device memory", ptr,
                          a.type == cudaMemoryTypeHost ? "pinned host memory" : "host memory");
    if (a.device != cm->device)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "data %p is memory of device %d; the model runs on device %d",
                          ptr, a.device, cm->device);
    return SPRUN_OK;
}

static int cu_device_read(struct sprun_session *s, void *dst, const void *src, size_t bytes, sp_err *err)
{
    const sp_node *node = NULL;
    const cu_model *cm = s->model->backend_model;
    cudaStream_t sm = session_stream(s);
    CU_RT(cudaSetDevice(cm->device));
    CU_RT(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, sm));
    CU_RT(cudaStreamSynchronize(sm));
    return SPRUN_OK;
}

static void *cu_device_output(const struct sprun_session *s, const sp_plan *p, int idx)
{
    (void)s;
    const cu_plan *cp = p->backend_plan;
    const cu_io *o = &cp->out[idx];
    if (!o->bytes)
        return NULL;
    return o->konst ? o->konst : resolve(cp, o->dev);
}

static int cu_synchronize(struct sprun_session *s, sp_err *err)
{
    const sp_node *node = NULL;
    const cu_model *cm = s->model->backend_model;
    CU_RT(cudaSetDevice(cm->device));
    CU_RT(cudaStreamSynchronize(session_stream(s)));
    return SPRUN_OK;
}

const sp_backend_i sp_backend_cuda = {
    /* .name          = */ "cuda",
    /* .model_init    = */ cu_model_init,
    /* .model_free    = */ cu_model_free,
    /* .session_init  = */ cu_session_init,
    /* .session_free  = */ cu_session_free,
    /* .plan_init     = */ cu_plan_init,
    /* .plan_free     = */ cu_plan_free,
    /* .run           = */ cu_run,
    /* .device_check  = */ cu_device_check,
    /* .device_read   = */ cu_device_read,
    /* .device_output = */ cu_device_output,
    /* .synchronize   = */ cu_synchronize,
};
