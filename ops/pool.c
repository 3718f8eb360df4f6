/*
 * pool.c - MaxPool, AveragePool (1-D/2-D/3-D, pads, strides, dilations,
 * ceil_mode, auto_pad, count_include_pad), GlobalAveragePool, GlobalMaxPool.
 * NCHW; every (n, c) plane is pooled independently, planes in parallel.
 * MaxPool also takes int8/uint8 (exact through fp32) and writes its optional
 * Indices output (int64, storage_order 0 or 1) through a slower scalar path.
 */
#include "kernels/cpu/nn_cpu.h"
#include "ops/op.h"

#include <math.h>
#include <string.h>

static int pool_io(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    if (n->n_in != 1 || !sp_node_in(g, n, 0))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %d inputs (expected 1)",
                          sp_node_label(n, lb, sizeof lb), n->n_in);
    if (n->n_out < 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: no output", sp_node_label(n, lb, sizeof lb));
    const int max_out = strcmp(n->op_type, "MaxPool") == 0 ? 2 : 1; /* MaxPool: Y, Indices */
    for (int i = max_out; i < n->n_out; i++)
        if (n->out[i] >= 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: output %d is not defined by the op",
                              sp_node_label(n, lb, sizeof lb), i);
    const sp_value *x = sp_node_in(g, n, 0);
    const int int8 = x->dtype == SPRUN_DTYPE_INT8 || x->dtype == SPRUN_DTYPE_UINT8;
    if (x->dtype && !sp_nn_float_type(x->dtype) && !(int8 && strcmp(n->op_type, "MaxPool") == 0))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input dtype %s (float32/float16%s only)",
                          sp_node_label(n, lb, sizeof lb), sp_dtype_name(x->dtype),
                          strcmp(n->op_type, "MaxPool") == 0 ? ", int8/uint8" : "");
    return 0;
}

static int is_max(const sp_node *n) { return strstr(n->op_type, "Max") != NULL; }

static int pool_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    char lb[256];
    int rc = pool_io(g, n, err);
    if (rc)
        return rc;
    const int64_t *ks;
    if (sp_attr_ints(n, "kernel_shape", &ks) < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: kernel_shape is required",
                          sp_node_label(n, lb, sizeof lb));
    const int64_t so = sp_attr_int(n, "storage_order", 0);
    if (is_max(n) && so != 0 && so != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: storage_order %lld (0 or 1)",
                          sp_node_label(n, lb, sizeof lb), (long long)so);
    return sp_win_check(n, -1, 1, err);
}

static int pool_geometry(const sp_node *n, const sp_shape *xs, sp_win *w, sp_err *err)
{
    char lb[256], a[128];
    const int64_t *ks;
    int64_t nk = sp_attr_ints(n, "kernel_shape", &ks);
    if (xs->rank < 3 || xs->rank > 5 || nk != xs->rank - 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s does not fit kernel_shape of %lld dims "
                          "(1 to 3 spatial dims supported)", sp_node_label(n, lb, sizeof lb),
                          sp_shape_str(xs, a, sizeof a), (long long)nk);
    return sp_win_compute(n, xs->rank - 2, xs->d + 2, ks, (int)sp_attr_int(n, "ceil_mode", 0), w, err);
}

static int pool_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    sp_win w;
    int rc = pool_geometry(n, &x->shape, &w, err);
    if (rc)
        return rc;
    sp_shape o = x->shape;
    for (int i = 0; i < w.nsp; i++)
        o.d[2 + i] = w.out[3 - w.nsp + i];
    sp_node_set_out(g, n, 0, x->dtype, &o);
    if (n->n_out > 1)
        sp_node_set_out(g, n, 1, SPRUN_DTYPE_INT64, &o);
    return 0;
}

static int pool_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                        const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    sp_win w;
    int rc = pool_geometry(n, &in[0].shape, &w, err);
    if (rc)
        return rc;
    const int64_t planes = in[0].shape.d[0] * in[0].shape.d[1];
    if (n_out > 1 && out[1].data)
        sp_pool_argmax(ctx, in[0].data, out[0].data, out[1].data, sp_attr_int(n, "storage_order", 0) == 1, planes,
                       &w);
    else
        sp_pool(ctx, is_max(n) ? 0 : 1, (int)sp_attr_int(n, "count_include_pad", 0), in[0].data, out[0].data, planes,
                &w);
    return 0;
}

SP_NN_STAGED(pool_run, pool_run_f32)

/* --- global pools ---------------------------------------------------------- */

static int gpool_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    char lb[256], a[128];
    if (x->shape.rank < 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %s needs rank >= 2", sp_node_label(n, lb, sizeof lb),
                          sp_shape_str(&x->shape, a, sizeof a));
    sp_shape o = x->shape;
    for (int i = 2; i < o.rank; i++)
        o.d[i] = 1;
    sp_node_set_out(g, n, 0, x->dtype, &o);
    return 0;
}

typedef struct gpool_args {
    const float *x;
    float *y;
    int64_t len;
    int max;
} gpool_args;

static void gpool_range(void *arg, int64_t p0, int64_t p1)
{
    const gpool_args *a = arg;
    for (int64_t p = p0; p < p1; p++) {
        const float *x = a->x + p * a->len;
        if (a->max) {
            float m = -INFINITY;
            for (int64_t i = 0; i < a->len; i++)
                m = x[i] > m || x[i] != x[i] ? x[i] : m;
            a->y[p] = m;
        } else {
            a->y[p] = a->len ? (float)(sp_sum_f64(x, a->len) / (double)a->len) : 0.f;
        }
    }
}

static int gpool_run_f32(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                         const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_in;
    (void)n_out;
    (void)err;
    const sp_shape *s = &in[0].shape;
    int64_t planes = s->d[0] * s->d[1], len = 1;
    for (int i = 2; i < s->rank; i++)
        len *= s->d[i];
    gpool_args a = {in[0].data, out[0].data, len, is_max(n)};
    sp_nn_par_rows(ctx, planes, len, gpool_range, &a);
    return 0;
}

SP_NN_STAGED(gpool_run, gpool_run_f32)

static const sp_op_def op_maxpool = {
    .op_type = "MaxPool",
    .since_opset = 1,
    .check = pool_check,
    .infer = pool_infer,
    .cpu_run = pool_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_avgpool = {
    .op_type = "AveragePool",
    .since_opset = 1,
    .check = pool_check,
    .infer = pool_infer,
    .cpu_run = pool_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_gavgpool = {
    .op_type = "GlobalAveragePool",
    .since_opset = 1,
    .check = pool_io,
    .infer = gpool_infer,
    .cpu_run = gpool_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

static const sp_op_def op_gmaxpool = {
    .op_type = "GlobalMaxPool",
    .since_opset = 1,
    .check = pool_io,
    .infer = gpool_infer,
    .cpu_run = gpool_run,
    .cpu_scratch = sp_nn_stage_scratch,
};

const sp_op_def *const sp_ops_pool[] = {&op_maxpool, &op_avgpool, &op_gavgpool, &op_gmaxpool, NULL};
