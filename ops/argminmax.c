/*
 * argminmax.c - ArgMax and ArgMin (axis, keepdims, select_last_index) over
 * any numeric dtype; the output is int64 indices along `axis`. Ties resolve
 * to the first index, or the last with select_last_index = 1. Floats
 * compare as double, integers as int64 (exact).
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int arg_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 1, 1, 1, err);
    if (rc)
        return rc;
    int64_t kd = sp_attr_int(n, "keepdims", 1), sl = sp_attr_int(n, "select_last_index", 0);
    if (kd != 0 && kd != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'keepdims' must be 0 or 1, got %lld",
                          SP_LABEL(n), (long long)kd);
    if (sl != 0 && sl != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                          "%s: attribute 'select_last_index' must be 0 or 1, got %lld", SP_LABEL(n), (long long)sl);
    return 0;
}

static int arg_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_numeric, "a numeric tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    const int r = x->shape.rank;
    const int64_t axis_attr = sp_attr_int(n, "axis", 0);
    const int axis = sp_axis(axis_attr, r);
    if (axis < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)axis_attr, r);
    if (x->shape.d[axis] == 0)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: axis %d has size 0", SP_LABEL(n), axis);
    sp_shape out = {.rank = 0};
    const int keep = (int)sp_attr_int(n, "keepdims", 1);
    for (int k = 0; k < r; k++) {
        if (k == axis) {
            if (keep)
                out.d[out.rank++] = 1;
        } else {
            out.d[out.rank++] = x->shape.d[k];
        }
    }
    sp_node_set_out(g, n, 0, SPRUN_DTYPE_INT64, &out);
    return 0;
}

typedef struct arg_job {
    const void *x;
    int64_t *y;
    int dt, is_max, last, is_float;
    int64_t dax, inner;
} arg_job;

/* Scans the dax values of one output element for the best index. */
#define ARG_SCAN(T, LD)                                                                                            \
    do {                                                                                                           \
        T bv = LD(j->dt, j->x, base);                                                                              \
        for (int64_t k = 1; k < j->dax; k++) {                                                                     \
            T v = LD(j->dt, j->x, base + k * j->inner);                                                            \
            if (j->is_max ? (j->last ? v >= bv : v > bv) : (j->last ? v <= bv : v < bv)) {                         \
                bv = v;                                                                                            \
                best = k;                                                                                          \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)

#define LD_F32(dt, p, i) (((const float *)(p))[i])

static void arg_range(void *arg, int64_t b, int64_t e)
{
    const arg_job *j = arg;
    for (int64_t u = b; u < e; u++) {
        const int64_t o = u / j->inner, in = u % j->inner;
        const int64_t base = o * j->dax * j->inner + in;
        int64_t best = 0;
        if (j->dt == SPRUN_DTYPE_FLOAT)
            ARG_SCAN(float, LD_F32);
        else if (j->is_float)
            ARG_SCAN(double, sp_ld_f64);
        else
            ARG_SCAN(int64_t, sp_ld_i64);
        j->y[u] = best;
    }
}

static int arg_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)n_in; (void)n_out; (void)err;
    const sp_shape *xs = &in[0].shape;
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), xs->rank);
    int64_t outer, inner;
    sp_outer_inner(xs, axis, &outer, &inner);
    arg_job j = {
        .x = in[0].data, .y = out[0].data, .dt = in[0].dtype, .is_max = strcmp(n->op_type, "ArgMax") == 0,
        .last = (int)sp_attr_int(n, "select_last_index", 0), .is_float = sp_dt_is_float(in[0].dtype),
        .dax = xs->d[axis], .inner = inner,
    };
    const int64_t units = outer * inner;
    if (units <= 0)
        return 0;
    sp_par_for(ctx, units, 4096 / (j.dax + 1) + 1, arg_range, &j);
    return 0;
}

static const sp_op_def op_argmax = {
    .op_type = "ArgMax", .since_opset = 1, .flags = 0,
    .check = arg_check, .infer = arg_infer, .cpu_run = arg_run,
};
static const sp_op_def op_argmin = {
    .op_type = "ArgMin", .since_opset = 1, .flags = 0,
    .check = arg_check, .infer = arg_infer, .cpu_run = arg_run,
};

const sp_op_def *const sp_ops_argminmax[] = {&op_argmax, &op_argmin, NULL};
