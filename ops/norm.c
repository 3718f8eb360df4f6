/*
 * norm.c - BatchNormalization (inference form), LayerNormalization (with its
 * optional Mean / InvStdDev outputs), InstanceNormalization,
 * GroupNormalization (scale/bias per group, opset 18, or per channel, 21),
 * MeanVarianceNormalization, LRN.
 *
 * Statistics are accumulated in double (two passes: mean, then the centred
 * sum of squares), so fp16 inputs and large rows neither overflow nor lose
 * the variance to cancellation.
 */
#include "kernels/cpu/nn_cpu.h"
#include "ops/op.h"

#include <math.h>

/* Elements per (n, c) plane of an [N, C, ...] tensor. */
static int64_t plane_len(const sp_shape *s)
{
    int64_t len = 1;
    for (int i = 2; i < s->rank; i++)
        len *= s->d[i];
    return len;
}

static int float_inputs(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && v->dtype && !sp_nn_float_type(v->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input %d has dtype %s (float32/float16 only)",
                              sp_node_label(n, lb, sizeof lb), i, sp_dtype_name(v->dtype));
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* BatchNormalization                                                        */
/* ------------------------------------------------------------------------ */

static int bn_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in != 5)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d inputs (expected X, scale, B, mean, var)",
                          sp_node_label(n, lb, sizeof lb), n->n_in);
    for (int i = 0; i < 5; i++)
        if (!sp_node_in(g, n, i))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is absent",
                              sp_node_label(n, lb, sizeof lb), i);
    if (sp_attr_int(n, "training_mode", 0) != 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: training_mode=1 is not supported (inference only)",
                          sp_node_label(n, lb, sizeof lb));
    if (sp_attr_int(n, "spatial", 1) != 1)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: spatial=0 is not supported",
                          sp_node_label(n, lb, sizeof lb));
    if (n->n_out < 1 || n->out[0] < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: output Y is required",
                          sp_node_label(n, lb, sizeof lb));
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] >= 0)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                              "%s: output %d (running statistics, training only) is not supported",
                              sp_node_label(n, lb, sizeof lb), i);
    return float_inputs(g, n, err);
}

static int bn_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128], b[128];
    if (x->shape.rank < 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: X %s needs rank >= 2 (N, C, ...)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(&x->shape, a, sizeof a));
    static const char *const names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (sp_shape_numel(&v->shape) != x->shape.d[1] || v->shape.rank != 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %s has shape %s, X %s has %lld channels",
                              sp_node_label(n, lb, sizeof lb), names[i], sp_shape_str(&v->shape, a, sizeof a),
                              sp_shape_str(&x->shape, b, sizeof b), (long long)x->shape.d[1]);
    }
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

typedef struct bn_args {
    const float *x, *scale, *bias, *mean, *var;
    float *y;
    int64_t c, len;
    double eps;
} bn_args;

SP_NN_HOT
static void bn_range(void *arg, int64_t p0, int64_t p1)
{
    const bn_args *a = arg;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t c = p % a->c;
        const double s = (double)a->scale[c] / sqrt((double)a->var[c] + a->eps);
        const float fs = (float)s, fb = (float)((double)a->bias[c] - (double)a->mean[c] * s);
        const float *x = a->x + p * a->len;
        float *y = a->y + p * a->len;
        for (int64_t i = 0; i < a->len; i++)
            y[i] = x[i] * fs + fb;
    }
}

static int bn_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    (void)err;
    const sp_shape *s = &in[0].shape;
    const int64_t len = plane_len(s);
    bn_args a = {in[0].data, in[1].data, in[2].data, in[3].data, in[4].data, out[0].data,
                 s->d[1], len, (double)sp_attr_float(n, "epsilon", 1e-5f)};
    sp_nn_par_rows(ctx, s->d[0] * s->d[1], len, bn_range, &a);
    return 0;
}

SP_NN_STAGED(bn_run, bn_run_f32)

/* ------------------------------------------------------------------------ */
/* LayerNormalization                                                        */
/* ------------------------------------------------------------------------ */

static int ln_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in < 2 || n->n_in > 3 || !sp_node_in(g, n, 0) || !sp_node_in(g, n, 1))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: needs X, Scale and optionally B",
                          sp_node_label(n, lb, sizeof lb));
    if (n->n_out < 1 || n->n_out > 3 || n->out[0] < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d outputs (Y, optional Mean, InvStdDev)",
                          sp_node_label(n, lb, sizeof lb), n->n_out);
    return float_inputs(g, n, err);
}

/* Normalised block: rows = prod(d[:axis]), len = prod(d[axis:]). */
static int ln_split(const sp_node *n, const sp_shape *s, int64_t *rows, int64_t *len, int *axis, sp_err *err)
{
    char lb[256], a[128];
    int ax = sp_axis(sp_attr_int(n, "axis", -1), s->rank);
    if (ax < 0)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: axis %lld out of range for X %s",
                          sp_node_label(n, lb, sizeof lb), (long long)sp_attr_int(n, "axis", -1),
                          sp_shape_str(s, a, sizeof a));
    *rows = *len = 1;
    for (int i = 0; i < s->rank; i++)
        *(i < ax ? rows : len) *= s->d[i];
    if (axis)
        *axis = ax;
    return 0;
}

static int ln_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128], b[128];
    int64_t rows = 1, len = 1;
    int ax = 0, rc = ln_split(n, &x->shape, &rows, &len, &ax, err);
    if (rc)
        return rc;
    for (int i = 1; i < 3; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (!v)
            continue;
        int64_t k = sp_shape_numel(&v->shape);
        if (k != len && k != 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %s %s does not match the normalised dims of X %s (axis %d)",
                              sp_node_label(n, lb, sizeof lb), i == 1 ? "Scale" : "B",
                              sp_shape_str(&v->shape, a, sizeof a), sp_shape_str(&x->shape, b, sizeof b), ax);
    }
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    sp_shape st = x->shape;
    for (int i = ax; i < st.rank; i++)
        st.d[i] = 1;
    for (int i = 1; i < n->n_out; i++) /* stash_type float: statistics are float32 */
        sp_node_set_out(g, n, i, SPRUN_DTYPE_FLOAT, &st);
    return 0;
}

typedef struct ln_args {
    const float *x, *scale, *bias;
    float *y, *mean, *inv;
    int64_t len, slen, blen;
    double eps;
    int instance; /* InstanceNormalization: scale/bias per channel (row % C) */
    int64_t c;
} ln_args;

SP_NN_HOT
static void ln_range(void *arg, int64_t r0, int64_t r1)
{
    const ln_args *a = arg;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = a->x + r * a->len;
        float *y = a->y + r * a->len;
        const double mu = a->len ? sp_sum_f64(x, a->len) / (double)a->len : 0.0;
        const double var = a->len ? sp_sqdev_f64(x, a->len, mu) / (double)a->len : 0.0;
        const double inv = 1.0 / sqrt(var + a->eps);
        if (a->mean)
            a->mean[r] = (float)mu;
        if (a->inv)
            a->inv[r] = (float)inv;
        const float fm = (float)mu, fi = (float)inv;
        if (a->instance) {
            const int64_t c = r % a->c;
            const float sc = a->scale[c] * fi, b = a->bias[c];
            for (int64_t i = 0; i < a->len; i++)
                y[i] = (x[i] - fm) * sc + b;
        } else if (a->slen == a->len && a->bias && a->blen == a->len) {
            for (int64_t i = 0; i < a->len; i++)
                y[i] = (x[i] - fm) * fi * a->scale[i] + a->bias[i];
        } else {
            for (int64_t i = 0; i < a->len; i++) {
                float v = (x[i] - fm) * fi * a->scale[a->slen == 1 ? 0 : i];
                y[i] = a->bias ? v + a->bias[a->blen == 1 ? 0 : i] : v;
            }
        }
    }
}

static int ln_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    int64_t rows = 1, len = 1;
    int rc = ln_split(n, &in[0].shape, &rows, &len, NULL, err);
    if (rc)
        return rc;
    const sp_tensor *b = n_in > 2 && in[2].data ? &in[2] : NULL;
    ln_args a = {in[0].data, in[1].data, b ? b->data : NULL, out[0].data,
                 n_out > 1 ? out[1].data : NULL, n_out > 2 ? out[2].data : NULL,
                 len, sp_shape_numel(&in[1].shape), b ? sp_shape_numel(&b->shape) : 0,
                 (double)sp_attr_float(n, "epsilon", 1e-5f), 0, 1};
    sp_nn_par_rows(ctx, rows, len, ln_range, &a);
    return 0;
}

SP_NN_STAGED(ln_run, ln_run_f32)

/* ------------------------------------------------------------------------ */
/* InstanceNormalization                                                     */
/* ------------------------------------------------------------------------ */

static int in_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in != 3 || !sp_node_in(g, n, 0) || !sp_node_in(g, n, 1) || !sp_node_in(g, n, 2))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: needs input, scale and B",
                          sp_node_label(n, lb, sizeof lb));
    if (n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d outputs (expected 1)",
                          sp_node_label(n, lb, sizeof lb), n->n_out);
    return float_inputs(g, n, err);
}

static int in_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128], b[128];
    if (x->shape.rank < 3)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s needs rank >= 3 (N, C, D1, ...)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(&x->shape, a, sizeof a));
    for (int i = 1; i < 3; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v->shape.rank != 1 || v->shape.d[0] != x->shape.d[1])
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %s %s, input %s has %lld channels",
                              sp_node_label(n, lb, sizeof lb), i == 1 ? "scale" : "B",
                              sp_shape_str(&v->shape, a, sizeof a), sp_shape_str(&x->shape, b, sizeof b),
                              (long long)x->shape.d[1]);
    }
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

static int in_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    (void)err;
    const sp_shape *s = &in[0].shape;
    const int64_t len = plane_len(s);
    ln_args a = {in[0].data, in[1].data, in[2].data, out[0].data, NULL, NULL, len, 0, 0,
                 (double)sp_attr_float(n, "epsilon", 1e-5f), 1, s->d[1]};
    sp_nn_par_rows(ctx, s->d[0] * s->d[1], len, ln_range, &a);
    return 0;
}

SP_NN_STAGED(in_run, in_run_f32)

/* ------------------------------------------------------------------------ */
/* LRN: across channels, y = x / (bias + alpha/size * sum x^2)^beta          */
/* ------------------------------------------------------------------------ */

/* One float input, one output (LRN, MeanVarianceNormalization). */
static int lrn_check_io(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in != 1 || !sp_node_in(g, n, 0) || n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects 1 input and 1 output",
                          sp_node_label(n, lb, sizeof lb));
    return float_inputs(g, n, err);
}

static int lrn_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    int rc = lrn_check_io(g, n, err);
    if (rc)
        return rc;
    if (sp_attr_int(n, "size", 0) < 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute size (>= 1) is required",
                          sp_node_label(n, lb, sizeof lb));
    return 0;
}

static int lrn_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128];
    if (x->shape.rank < 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s needs rank >= 2 (N, C, ...)",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(&x->shape, a, sizeof a));
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

typedef struct lrn_args {
    const float *x;
    float *y;
    int64_t c, len, lo, hi; /* window: channels [c - lo, c + hi] */
    float alpha_n, beta, bias;
} lrn_args;

static void lrn_range(void *arg, int64_t p0, int64_t p1)
{
    const lrn_args *a = arg;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t c = p % a->c, n0 = p - c;
        const int64_t c0 = c - a->lo < 0 ? 0 : c - a->lo, c1 = c + a->hi >= a->c ? a->c - 1 : c + a->hi;
        const float *x = a->x + p * a->len;
        float *y = a->y + p * a->len;
        for (int64_t i = 0; i < a->len; i++) {
            double s = 0.0;
            for (int64_t k = c0; k <= c1; k++) {
                const double v = a->x[(n0 + k) * a->len + i];
                s += v * v;
            }
            y[i] = (float)(x[i] / pow(a->bias + a->alpha_n * s, a->beta));
        }
    }
}

static int lrn_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                       const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    (void)err;
    const sp_shape *s = &in[0].shape;
    const int64_t size = sp_attr_int(n, "size", 1);
    lrn_args a = {in[0].data, out[0].data, s->d[1], plane_len(s), (size - 1) / 2, size - 1 - (size - 1) / 2,
                  sp_attr_float(n, "alpha", 1e-4f) / (float)size, sp_attr_float(n, "beta", 0.75f),
                  sp_attr_float(n, "bias", 1.f)};
    sp_nn_par_rows(ctx, s->d[0] * s->d[1], a.len, lrn_range, &a);
    return 0;
}

SP_NN_STAGED(lrn_run, lrn_run_f32)

static const sp_op_def op_lrn = {
    .op_type = "LRN",
    .since_opset = 1,
    .check = lrn_check,
    .infer = lrn_infer,
    .cpu_run = lrn_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

/* ------------------------------------------------------------------------ */
/* GroupNormalization: channels of a group are contiguous in NCHW, so each   */
/* (n, group) is one row; scale/bias per channel (opset 21) or per group (18) */
/* ------------------------------------------------------------------------ */

static int gn_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in != 3 || !sp_node_in(g, n, 0) || !sp_node_in(g, n, 1) || !sp_node_in(g, n, 2) || n->n_out != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects X, scale, bias and one output",
                          sp_node_label(n, lb, sizeof lb));
    if (sp_attr_int(n, "num_groups", 0) < 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute num_groups (>= 1) is required",
                          sp_node_label(n, lb, sizeof lb));
    return float_inputs(g, n, err);
}

static int gn_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128];
    const int64_t groups = sp_attr_int(n, "num_groups", 1);
    if (x->shape.rank < 2 || x->shape.d[1] % groups)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: X %s: rank >= 2 with channels divisible by num_groups %lld",
                          sp_node_label(n, lb, sizeof lb), sp_shape_str(&x->shape, a, sizeof a), (long long)groups);
    for (int i = 1; i < 3; i++) {
        const int64_t k = sp_shape_numel(&sp_node_in(g, n, i)->shape);
        if (k != x->shape.d[1] && k != groups)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: %s has %lld elements (expected %lld channels or %lld groups)",
                              sp_node_label(n, lb, sizeof lb), i == 1 ? "scale" : "bias", (long long)k,
                              (long long)x->shape.d[1], (long long)groups);
    }
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

typedef struct gn_args {
    const float *x, *scale, *bias;
    float *y;
    int64_t groups, cpg, plane; /* channels per group, elements per channel */
    int per_channel_scale, per_channel_bias;
    double eps;
} gn_args;

SP_NN_HOT
static void gn_range(void *arg, int64_t r0, int64_t r1)
{
    const gn_args *a = arg;
    const int64_t len = a->cpg * a->plane;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = a->x + r * len;
        float *y = a->y + r * len;
        const double mu = len ? sp_sum_f64(x, len) / (double)len : 0.0;
        const double var = len ? sp_sqdev_f64(x, len, mu) / (double)len : 0.0;
        const float fm = (float)mu, fi = (float)(1.0 / sqrt(var + a->eps));
        const int64_t gi = r % a->groups;
        for (int64_t c = 0; c < a->cpg; c++) {
            const int64_t ch = gi * a->cpg + c;
            const float sc = a->scale[a->per_channel_scale ? ch : gi] * fi;
            const float b = a->bias[a->per_channel_bias ? ch : gi];
            for (int64_t i = c * a->plane; i < (c + 1) * a->plane; i++)
                y[i] = (x[i] - fm) * sc + b;
        }
    }
}

static int gn_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    (void)err;
    const sp_shape *s = &in[0].shape;
    const int64_t groups = sp_attr_int(n, "num_groups", 1), c = s->d[1];
    gn_args a = {in[0].data, in[1].data, in[2].data, out[0].data, groups, c / groups, plane_len(s),
                 sp_shape_numel(&in[1].shape) == c, sp_shape_numel(&in[2].shape) == c,
                 (double)sp_attr_float(n, "epsilon", 1e-5f)};
    sp_nn_par_rows(ctx, s->d[0] * groups, a.cpg * a.plane, gn_range, &a);
    return 0;
}

SP_NN_STAGED(gn_run, gn_run_f32)

static const sp_op_def op_gn = {
    .op_type = "GroupNormalization",
    .since_opset = 18,
    .check = gn_check,
    .infer = gn_infer,
    .cpu_run = gn_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

/* ------------------------------------------------------------------------ */
/* MeanVarianceNormalization: y = (x - mean) / (std + 1e-9) over `axes`      */
/* (default 0, 2, 3), any subset of dims                                      */
/* ------------------------------------------------------------------------ */

typedef struct mvn_plan {
    int nk, nr;                          /* kept / reduced dims */
    int64_t kd[SP_MAX_RANK], ks[SP_MAX_RANK]; /* kept dims, their strides */
    int64_t rd[SP_MAX_RANK], rs[SP_MAX_RANK]; /* reduced dims, their strides */
    int64_t groups, gsize;
} mvn_plan;

static int mvn_plan_make(const sp_node *n, const sp_shape *s, mvn_plan *p, sp_err *err)
{
    char lb[256], a[128];
    static const int64_t def_axes[3] = {0, 2, 3};
    const int64_t *ax;
    int64_t nax = sp_attr_ints(n, "axes", &ax);
    if (nax < 0) {
        ax = def_axes;
        nax = 3;
    }
    int red[SP_MAX_RANK] = {0};
    for (int64_t i = 0; i < nax; i++) {
        int k = sp_axis(ax[i], s->rank);
        if (k < 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: axis %lld out of range for input %s",
                              sp_node_label(n, lb, sizeof lb), (long long)ax[i], sp_shape_str(s, a, sizeof a));
        red[k] = 1;
    }
    int64_t stride = 1;
    p->nk = p->nr = 0;
    p->groups = p->gsize = 1;
    for (int i = s->rank - 1; i >= 0; i--) { /* innermost first */
        if (red[i]) {
            p->rd[p->nr] = s->d[i];
            p->rs[p->nr++] = stride;
            p->gsize *= s->d[i];
        } else {
            p->kd[p->nk] = s->d[i];
            p->ks[p->nk++] = stride;
            p->groups *= s->d[i];
        }
        stride *= s->d[i];
    }
    return 0;
}

static int mvn_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    mvn_plan p;
    int rc = mvn_plan_make(n, &x->shape, &p, err);
    if (rc)
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

/* Offset of element i of a (dims, strides) odometer, innermost dim first. */
static int64_t mvn_offset(int nd, const int64_t *d, const int64_t *st, int64_t i)
{
    int64_t off = 0;
    for (int k = 0; k < nd; k++) {
        off += (i % d[k]) * st[k];
        i /= d[k];
    }
    return off;
}

typedef struct mvn_args {
    const mvn_plan *p;
    const float *x;
    float *y;
} mvn_args;

static void mvn_range(void *arg, int64_t g0, int64_t g1)
{
    const mvn_args *a = arg;
    const mvn_plan *p = a->p;
    for (int64_t gi = g0; gi < g1; gi++) {
        const int64_t base = mvn_offset(p->nk, p->kd, p->ks, gi);
        double s = 0.0, q = 0.0;
        for (int64_t i = 0; i < p->gsize; i++)
            s += a->x[base + mvn_offset(p->nr, p->rd, p->rs, i)];
        const double mu = p->gsize ? s / (double)p->gsize : 0.0;
        for (int64_t i = 0; i < p->gsize; i++) {
            const double t = a->x[base + mvn_offset(p->nr, p->rd, p->rs, i)] - mu;
            q += t * t;
        }
        const double inv = 1.0 / (sqrt(p->gsize ? q / (double)p->gsize : 0.0) + 1e-9);
        for (int64_t i = 0; i < p->gsize; i++) {
            const int64_t o = base + mvn_offset(p->nr, p->rd, p->rs, i);
            a->y[o] = (float)((a->x[o] - mu) * inv);
        }
    }
}

static int mvn_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                       const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    mvn_plan p;
    int rc = mvn_plan_make(n, &in[0].shape, &p, err);
    if (rc)
        return rc;
    mvn_args a = {&p, in[0].data, out[0].data};
    sp_nn_par_rows(ctx, p.groups, p.gsize, mvn_range, &a);
    return 0;
}

SP_NN_STAGED(mvn_run, mvn_run_f32)

static const sp_op_def op_mvn = {
    .op_type = "MeanVarianceNormalization",
    .since_opset = 9,
    .check = lrn_check_io,
    .infer = mvn_infer,
    .cpu_run = mvn_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_bn = {
    .op_type = "BatchNormalization",
    .since_opset = 1,
    .check = bn_check,
    .infer = bn_infer,
    .cpu_run = bn_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_ln = {
    .op_type = "LayerNormalization",
    .since_opset = 17,
    .check = ln_check,
    .infer = ln_infer,
    .cpu_run = ln_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_in = {
    .op_type = "InstanceNormalization",
    .since_opset = 1,
    .check = in_check,
    .infer = in_infer,
    .cpu_run = in_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

const sp_op_def *const sp_ops_norm[] = {&op_bn, &op_ln, &op_in, &op_lrn, &op_gn, &op_mvn, NULL};
