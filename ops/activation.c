/*
 * activation.c - elementwise activations over any shape: Relu, LeakyRelu,
 * Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Erf, Gelu (approximate none |
 * tanh), Elu, Selu, Celu, Softplus, Softsign, Mish, ThresholdedRelu.
 *
 * fp32 compute (exp, erf and tanh through the vectorisable approximations of
 * kernels/cpu/nn_cpu.h, <= 4e-7 absolute); FLOAT16 tensors are widened and narrowed chunk by chunk on
 * the stack (no scratch). Clip and Relu also take integer tensors (exact,
 * no float round trip). Large tensors are split over the thread pool; in and
 * out may share one buffer.
 */
/* The loops over the nn_cpu.h math vectorise only when GCC may assume FP
 * operations do not trap (nothing here reads FP exception flags). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "kernels/cpu/nn_cpu.h"
#include "kernels/cpu/tensor_cpu.h"
#include "ops/op.h"
#include "runtime/half.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum act_kind {
    A_RELU, A_LEAKY, A_CLIP, A_SIGMOID, A_HARDSIGMOID, A_HARDSWISH, A_TANH, A_ERF, A_GELU, A_GELU_TANH,
    A_ELU, A_SELU, A_CELU, A_SOFTPLUS, A_SOFTSIGN, A_MISH, A_THRESHRELU,
};

static const struct {
    const char *name;
    int kind;
    float alpha, beta; /* attribute defaults */
    int ints;          /* accepts integer dtypes */
} acts[] = {
    {"Relu", A_RELU, 0.f, 0.f, 1},
    {"LeakyRelu", A_LEAKY, 0.01f, 0.f, 0},
    {"Clip", A_CLIP, 0.f, 0.f, 1},
    {"Sigmoid", A_SIGMOID, 0.f, 0.f, 0},
    {"HardSigmoid", A_HARDSIGMOID, 0.2f, 0.5f, 0},
    {"HardSwish", A_HARDSWISH, 0.f, 0.f, 0},
    {"Tanh", A_TANH, 0.f, 0.f, 0},
    {"Erf", A_ERF, 0.f, 0.f, 0},
    {"Gelu", A_GELU, 0.f, 0.f, 0},
    {"Elu", A_ELU, 1.f, 0.f, 0},
    {"Selu", A_SELU, 1.67326319217681884765625f, 1.05070102214813232421875f, 0},
    {"Celu", A_CELU, 1.f, 0.f, 0},
    {"Softplus", A_SOFTPLUS, 0.f, 0.f, 0},
    {"Softsign", A_SOFTSIGN, 0.f, 0.f, 0},
    {"Mish", A_MISH, 0.f, 0.f, 0},
    {"ThresholdedRelu", A_THRESHRELU, 1.f, 0.f, 0},
};
#define N_ACTS (int)(sizeof acts / sizeof acts[0])

static int act_index(const sp_node *n)
{
    for (int i = 0; i < N_ACTS; i++)
        if (strcmp(acts[i].name, n->op_type) == 0)
            return i;
    return -1;
}

static int is_int_type(int dt)
{
    return dt == SPRUN_DTYPE_INT8 || dt == SPRUN_DTYPE_UINT8 || dt == SPRUN_DTYPE_INT16 ||
           dt == SPRUN_DTYPE_UINT16 || dt == SPRUN_DTYPE_INT32 || dt == SPRUN_DTYPE_INT64 ||
           dt == SPRUN_DTYPE_UINT32 || dt == SPRUN_DTYPE_UINT64;
}

static int act_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    int ai = act_index(n);
    int max_in = acts[ai].kind == A_CLIP ? 3 : 1;
    if (n->n_in < 1 || n->n_in > max_in || !sp_node_in(g, n, 0))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d inputs (expected %s)",
                          sp_node_label(n, lb, sizeof lb), n->n_in, max_in == 1 ? "1" : "1 to 3");
    if (n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d outputs (expected 1)",
                          sp_node_label(n, lb, sizeof lb), n->n_out);
    if (acts[ai].kind == A_GELU) {
        const char *ap = sp_attr_string(n, "approximate", "none");
        if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: approximate='%s' (none or tanh)",
                              sp_node_label(n, lb, sizeof lb), ap);
    }
    const sp_value *x = sp_node_in(g, n, 0);
    if (x->dtype && !sp_nn_float_type(x->dtype) && !(acts[ai].ints && is_int_type(x->dtype)))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                          sp_node_label(n, lb, sizeof lb), sp_dtype_name(x->dtype));
    for (int i = 1; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && x->dtype && v->dtype && v->dtype != x->dtype)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d has dtype %s, input 0 %s",
                              sp_node_label(n, lb, sizeof lb), i, sp_dtype_name(v->dtype),
                              sp_dtype_name(x->dtype));
    }
    return 0;
}

static int act_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128];
    for (int i = 1; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && sp_shape_numel(&v->shape) != 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %s must be a scalar, got shape %s",
                              sp_node_label(n, lb, sizeof lb), i == 1 ? "min" : "max",
                              sp_shape_str(&v->shape, a, sizeof a));
    }
    if (!sp_nn_float_type(x->dtype) && !(acts[act_index(n)].ints && is_int_type(x->dtype)))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                          sp_node_label(n, lb, sizeof lb), sp_dtype_name(x->dtype));
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

/* ------------------------------------------------------------------------ */

SP_NN_HOT
static void act_f32(int kind, const float *x, float *y, int64_t n, float al, float be)
{
    switch (kind) {
    case A_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.f ? x[i] : (x[i] != x[i] ? x[i] : 0.f);
        break;
    case A_LEAKY:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] >= 0.f ? x[i] : al * x[i];
        break;
    case A_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] < al ? al : x[i];
            y[i] = v > be ? be : v;
        }
        break;
    case A_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = sp_sigmoidf(x[i]);
        break;
    case A_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float t = al * x[i] + be;
            y[i] = t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
        }
        break;
    case A_HARDSWISH:
        for (int64_t i = 0; i < n; i++) {
            float t = x[i] / 6.f + 0.5f;
            t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
            y[i] = x[i] * t;
        }
        break;
    case A_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = sp_tanhf(x[i]);
        break;
    case A_ERF:
        for (int64_t i = 0; i < n; i++)
            y[i] = sp_erff(x[i]);
        break;
    case A_GELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = 0.5f * x[i] * (1.f + sp_erff(x[i] * 0.70710678118654752f));
        break;
    case A_GELU_TANH:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.f + sp_tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        }
        break;
    case A_ELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] >= 0.f ? x[i] : al * expm1f(x[i]);
        break;
    case A_SELU: /* alpha, gamma */
        for (int64_t i = 0; i < n; i++)
            y[i] = be * (x[i] > 0.f ? x[i] : al * expm1f(x[i]));
        break;
    case A_CELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.f ? x[i] : al * expm1f(x[i] / al);
        break;
    case A_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = v > 0.f ? v + log1pf(expf(-v)) : log1pf(expf(v));
        }
        break;
    case A_SOFTSIGN:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / (1.f + fabsf(x[i]));
        break;
    case A_MISH:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], sp = v > 0.f ? v + log1pf(expf(-v)) : log1pf(expf(v));
            y[i] = v * tanhf(sp);
        }
        break;
    case A_THRESHRELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > al ? x[i] : 0.f;
        break;
    }
}

/* Integer Relu/Clip (lo/hi already clamped to the type's range). */
#define INT_CLIP(T)                                                                                                \
    do {                                                                                                           \
        const T *xs = (const T *)x + b;                                                                            \
        T *ys = (T *)y + b;                                                                                        \
        for (int64_t i = 0; i < e - b; i++) {                                                                      \
            double v = (double)xs[i];                                                                              \
            ys[i] = v < lo ? (T)lo : (v > hi ? (T)hi : xs[i]);                                                     \
        }                                                                                                          \
    } while (0)

static void int_clip(int dt, const void *x, void *y, int64_t b, int64_t e, double lo, double hi)
{
    switch (dt) {
    case SPRUN_DTYPE_INT8: INT_CLIP(int8_t); break;
    case SPRUN_DTYPE_UINT8: INT_CLIP(uint8_t); break;
    case SPRUN_DTYPE_INT16: INT_CLIP(int16_t); break;
    case SPRUN_DTYPE_UINT16: INT_CLIP(uint16_t); break;
    case SPRUN_DTYPE_INT32: INT_CLIP(int32_t); break;
    case SPRUN_DTYPE_UINT32: INT_CLIP(uint32_t); break;
    case SPRUN_DTYPE_INT64: INT_CLIP(int64_t); break;
    case SPRUN_DTYPE_UINT64: INT_CLIP(uint64_t); break;
    default: break;
    }
}

typedef struct act_args {
    int kind, dtype;
    const void *x;
    void *y;
    float al, be;
    double lo, hi; /* integer Clip/Relu bounds */
} act_args;

#define ACT_CHUNK 512

static void act_range(void *arg, int64_t b, int64_t e)
{
    const act_args *a = arg;
    if (a->dtype == SPRUN_DTYPE_FLOAT) {
        act_f32(a->kind, (const float *)a->x + b, (float *)a->y + b, e - b, a->al, a->be);
    } else if (a->dtype == SPRUN_DTYPE_FLOAT16) {
        float buf[ACT_CHUNK];
        const uint16_t *xh = a->x;
        uint16_t *yh = a->y;
        for (int64_t c0 = b; c0 < e; c0 += ACT_CHUNK) {
            int64_t len = e - c0 < ACT_CHUNK ? e - c0 : ACT_CHUNK;
            for (int64_t i = 0; i < len; i++)
                buf[i] = sp_f16_to_f32(xh[c0 + i]);
            act_f32(a->kind, buf, buf, len, a->al, a->be);
            for (int64_t i = 0; i < len; i++)
                yh[c0 + i] = sp_f32_to_f16(buf[i]);
        }
    } else {
        int_clip(a->dtype, a->x, a->y, b, e, a->lo, a->hi);
    }
}

/* Reads a scalar bound of Clip (input i) as double; def when absent. */
static double clip_bound(const sp_tensor *in, int n_in, int i, double def)
{
    if (i >= n_in || !in[i].data)
        return def;
    return sp_ld_f64(in[i].dtype, in[i].data, 0);
}

static int act_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)n_out;
    (void)err;
    const int ai = act_index(n);
    act_args a = {acts[ai].kind, in[0].dtype, in[0].data, out[0].data,
                  sp_attr_float(n, "alpha", acts[ai].alpha), sp_attr_float(n, "beta", acts[ai].beta), 0, 0};
    switch (a.kind) {
    case A_SELU:
        a.be = sp_attr_float(n, "gamma", acts[ai].beta);
        break;
    case A_GELU:
        if (strcmp(sp_attr_string(n, "approximate", "none"), "tanh") == 0)
            a.kind = A_GELU_TANH;
        break;
    case A_CLIP: {
        /* opset < 11: attributes min/max; 11+: optional inputs min/max */
        double lo = sp_attr_float(n, "min", -INFINITY), hi = sp_attr_float(n, "max", INFINITY);
        if (is_int_type(a.dtype))
            lo = -INFINITY, hi = INFINITY;
        lo = clip_bound(in, n_in, 1, lo);
        hi = clip_bound(in, n_in, 2, hi);
        a.al = (float)lo;
        a.be = (float)hi;
        a.lo = lo;
        a.hi = hi;
        break;
    }
    case A_RELU:
        a.lo = 0.0;
        a.hi = INFINITY;
        break;
    default:
        break;
    }
    const int64_t cnt = sp_shape_numel(&in[0].shape);
    sp_parallel_for(ctx, cnt, 16384, act_range, &a);
    return 0;
}

#define ACT_DEF(var, name)                                                                                         \
    static const sp_op_def var = {                                                                                 \
        .op_type = name,                                                                                           \
        .since_opset = 1,                                                                                          \
        .check = act_check,                                                                                        \
        .infer = act_infer,                                                                                        \
        .cpu_run = act_run,                                                                                        \
    }

ACT_DEF(op_relu, "Relu");
ACT_DEF(op_leaky, "LeakyRelu");
ACT_DEF(op_clip, "Clip");
ACT_DEF(op_sigmoid, "Sigmoid");
ACT_DEF(op_hardsigmoid, "HardSigmoid");
ACT_DEF(op_hardswish, "HardSwish");
ACT_DEF(op_tanh, "Tanh");
ACT_DEF(op_erf, "Erf");
ACT_DEF(op_gelu, "Gelu");
ACT_DEF(op_elu, "Elu");
ACT_DEF(op_selu, "Selu");
ACT_DEF(op_celu, "Celu");
ACT_DEF(op_softplus, "Softplus");
ACT_DEF(op_softsign, "Softsign");
ACT_DEF(op_mish, "Mish");
ACT_DEF(op_thresh, "ThresholdedRelu");

const sp_op_def *const sp_ops_activation[] = {
    &op_relu, &op_leaky, &op_clip, &op_sigmoid, &op_hardsigmoid, &op_hardswish, &op_tanh, &op_erf,
    &op_gelu, &op_elu, &op_selu, &op_celu, &op_softplus, &op_softsign, &op_mish, &op_thresh, NULL,
};
