/*
 * softmax.c - Softmax, LogSoftmax and Hardmax.
 *
 * Opset 13+: one axis (default -1), the tensor seen as [outer, L, inner].
 * Opset < 13: the tensor coerced to 2-D at axis (default 1): rows of
 * prod(d[axis:]) elements. Numerically stable (the row max is subtracted
 * before exp; sums in double). in and out may share one buffer.
 */
/* The loops over the nn_cpu.h math vectorise only when GCC may assume FP
 * operations do not trap (nothing here reads FP exception flags). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "kernels/cpu/nn_cpu.h"
#include "ops/op.h"

#include <math.h>
#include <string.h>

enum { K_SOFTMAX, K_LOGSOFTMAX, K_HARDMAX };

static int sm_kind(const sp_node *n)
{
    return n->op_type[0] == 'L' ? K_LOGSOFTMAX : n->op_type[0] == 'H' ? K_HARDMAX : K_SOFTMAX;
}

static int sm_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in != 1 || !sp_node_in(g, n, 0) || n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects 1 input and 1 output (has %d, %d)",
                          sp_node_label(n, lb, sizeof lb), n->n_in, n->n_out);
    const sp_value *x = sp_node_in(g, n, 0);
    if (x->dtype && !sp_nn_float_type(x->dtype))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: dtype %s (float32/float16 only)",
                          sp_node_label(n, lb, sizeof lb), sp_dtype_name(x->dtype));
    return 0;
}

/* [outer, len, inner] view of shape s for node n at opset. */
static int sm_split(const sp_node *n, int64_t opset, const sp_shape *s, int64_t *outer, int64_t *len, int64_t *inner,
                    sp_err *err)
{
    char lb[256], a[128];
    const int new_sem = opset <= 0 || opset >= 13;
    int64_t axis = sp_attr_int(n, "axis", new_sem ? -1 : 1);
    int rank = s->rank;
    int ax = sp_axis(axis, rank == 0 ? 1 : rank);
    if (ax < 0)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: axis %lld out of range for input %s",
                          sp_node_label(n, lb, sizeof lb), (long long)axis, sp_shape_str(s, a, sizeof a));
    *outer = *len = *inner = 1;
    for (int i = 0; i < rank; i++) {
        if (i < ax)
            *outer *= s->d[i];
        else if (i == ax || !new_sem)
            *len *= s->d[i];
        else
            *inner *= s->d[i];
    }
    return 0;
}

static int sm_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t o = 1, l = 1, i = 1;
    int rc = sm_split(n, g->opset, &x->shape, &o, &l, &i, err);
    if (rc)
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

#define SM_VEC 256

typedef struct sm_args {
    int kind;
    const float *x;
    float *y;
    int64_t len, inner, nvec; /* nvec: inner chunks per outer */
} sm_args;

SP_NN_HOT
static void sm_row(int kind, const float *x, float *y, int64_t len)
{
    float m = sp_max_f32(x, len);
    if (kind == K_HARDMAX) {
        int64_t arg = 0;
        for (int64_t i = 0; i < len; i++)
            if (x[i] == m) {
                arg = i;
                break;
            }
        for (int64_t i = 0; i < len; i++)
            y[i] = i == arg ? 1.f : 0.f;
        return;
    }
    if (m == -INFINITY) /* all -inf: treat as uniform around 0 */
        m = 0.f;
    /* exp in chunks through a stack buffer: the exp loop vectorises apart
     * from the double sum, and x is intact for LogSoftmax even in place. */
    double s = 0.0;
    float buf[SM_VEC];
    for (int64_t i0 = 0; i0 < len; i0 += SM_VEC) {
        const int64_t w = len - i0 < SM_VEC ? len - i0 : SM_VEC;
        for (int64_t i = 0; i < w; i++)
            buf[i] = sp_expf(x[i0 + i] - m);
        s += sp_sum_f64(buf, w);
        if (kind == K_SOFTMAX)
            memcpy(y + i0, buf, sizeof(float) * (size_t)w);
    }
    if (kind == K_SOFTMAX) {
        const float inv = (float)(1.0 / s);
        for (int64_t i = 0; i < len; i++)
            y[i] *= inv;
    } else {
        const float off = m + (float)log(s);
        for (int64_t i = 0; i < len; i++)
            y[i] = x[i] - off;
    }
}

/* Strided case: `w` columns (inner positions) at once, stride inner. */
SP_NN_HOT
static void sm_cols(int kind, const float *x, float *y, int64_t len, int64_t inner, int64_t w)
{
    float m[SM_VEC];
    double s[SM_VEC];
    int64_t arg[SM_VEC];
    for (int64_t j = 0; j < w; j++) {
        m[j] = -INFINITY;
        s[j] = 0.0;
        arg[j] = 0;
    }
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < w; j++)
            if (x[l * inner + j] > m[j]) {
                m[j] = x[l * inner + j];
                arg[j] = l;
            }
    if (kind == K_HARDMAX) {
        for (int64_t l = 0; l < len; l++)
            for (int64_t j = 0; j < w; j++)
                y[l * inner + j] = arg[j] == l ? 1.f : 0.f;
        return;
    }
    for (int64_t j = 0; j < w; j++)
        if (m[j] == -INFINITY)
            m[j] = 0.f;
    if (kind == K_SOFTMAX) {
        for (int64_t l = 0; l < len; l++)
            for (int64_t j = 0; j < w; j++) {
                float e = sp_expf(x[l * inner + j] - m[j]);
                y[l * inner + j] = e;
                s[j] += e;
            }
        float inv[SM_VEC];
        for (int64_t j = 0; j < w; j++)
            inv[j] = (float)(1.0 / s[j]);
        for (int64_t l = 0; l < len; l++)
            for (int64_t j = 0; j < w; j++)
                y[l * inner + j] *= inv[j];
    } else {
        for (int64_t l = 0; l < len; l++)
            for (int64_t j = 0; j < w; j++)
                s[j] += sp_expf(x[l * inner + j] - m[j]);
        float off[SM_VEC];
        for (int64_t j = 0; j < w; j++)
            off[j] = m[j] + (float)log(s[j]);
        for (int64_t l = 0; l < len; l++)
            for (int64_t j = 0; j < w; j++)
                y[l * inner + j] = x[l * inner + j] - off[j];
    }
}

static void sm_range(void *arg, int64_t t0, int64_t t1)
{
    const sm_args *a = arg;
    for (int64_t t = t0; t < t1; t++) {
        if (a->inner == 1) {
            sm_row(a->kind, a->x + t * a->len, a->y + t * a->len, a->len);
            continue;
        }
        const int64_t o = t / a->nvec, j0 = (t % a->nvec) * SM_VEC;
        const int64_t w = a->inner - j0 < SM_VEC ? a->inner - j0 : SM_VEC;
        const int64_t off = o * a->len * a->inner + j0;
        sm_cols(a->kind, a->x + off, a->y + off, a->len, a->inner, w);
    }
}

static int sm_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    int64_t outer = 1, len = 1, inner = 1;
    int rc = sm_split(n, ctx->graph ? ctx->graph->opset : 13, &in[0].shape, &outer, &len, &inner, err);
    if (rc)
        return rc;
    sm_args a = {sm_kind(n), in[0].data, out[0].data, len, inner, (inner + SM_VEC - 1) / SM_VEC};
    const int64_t tasks = inner == 1 ? outer : outer * a.nvec;
    const int64_t per = inner == 1 ? len : len * SM_VEC;
    sp_nn_par_rows(ctx, tasks, per, sm_range, &a);
    return 0;
}

SP_NN_STAGED(sm_run, sm_run_f32)

static const sp_op_def op_softmax = {
    .op_type = "Softmax",
    .since_opset = 1,
    .check = sm_check,
    .infer = sm_infer,
    .cpu_run = sm_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_logsoftmax = {
    .op_type = "LogSoftmax",
    .since_opset = 1,
    .check = sm_check,
    .infer = sm_infer,
    .cpu_run = sm_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_hardmax = {
    .op_type = "Hardmax",
    .since_opset = 1,
    .check = sm_check,
    .infer = sm_infer,
    .cpu_run = sm_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

const sp_op_def *const sp_ops_softmax[] = {&op_softmax, &op_logsoftmax, &op_hardmax, NULL};
