/*
 * onehot.c - OneHot(indices, depth, values) with attribute axis (default
 * -1): output[..., i, ...] = values[1] where i == indices (negative indices
 * count from depth), values[0] elsewhere; an index outside [-depth, depth)
 * gives an all-off row. depth decides the shape and must be constant;
 * indices may be any numeric type (floats truncate), values any type.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int oh_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 3, 3, 1, 1, err);
}

static int oh_axis(const sp_node *n, int r_out) { return sp_axis(sp_attr_int(n, "axis", -1), r_out); }

static int oh_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_numeric, "a numeric tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, sp_dt_numeric, "a numeric tensor", err)) ||
        (rc = sp_check_dtype(g, n, 2, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    const sp_value *ix = sp_node_in(g, n, 0), *dv = sp_node_in(g, n, 1), *vv = sp_node_in(g, n, 2);
    if (sp_shape_numel(&dv->shape) != 1)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: depth must hold one value", SP_LABEL(n));
    if (sp_shape_numel(&vv->shape) != 2)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: values must hold two values [off, on]", SP_LABEL(n));
    const void *dd = sp_node_const(g, n, 1);
    if (!dd)
        return sp_err_datadep(err, g, n, 1);
    const double dval = sp_ld_f64(dv->dtype, dd, 0);
    if (!(dval >= 1.0 && dval < 72057594037927936.0))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: depth %g must be in [1, 2^56)", SP_LABEL(n), dval);
    const int64_t depth = (int64_t)dval;
    const int ro = ix->shape.rank + 1;
    if (ro > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: output rank %d exceeds %d", SP_LABEL(n), ro, SP_MAX_RANK);
    const int axis = oh_axis(n, ro);
    if (axis < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)sp_attr_int(n, "axis", -1), ro);
    sp_shape o = {.rank = ro};
    for (int k = 0, j = 0; k < ro; k++)
        o.d[k] = k == axis ? depth : ix->shape.d[j++];
    if ((rc = sp_check_numel(n, &o, err)))
        return rc;
    sp_node_set_out(g, n, 0, vv->dtype, &o);
    return 0;
}

static int oh_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out; (void)ctx; (void)err;
    const sp_shape *ys = &out[0].shape;
    const int axis = oh_axis(n, ys->rank);
    const int64_t depth = ys->d[axis];
    int64_t outer, inner;
    sp_outer_inner(ys, axis, &outer, &inner);
    const size_t es = sp_dtype_size(out[0].dtype);
    const char *off = in[2].data, *on = off + es;
    char *y = out[0].data;
    const int fl = sp_dt_is_float(in[0].dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t u = o * inner + i;
            int64_t v = -1 - depth; /* off unless it is a valid index */
            if (fl) {
                const double dv = sp_ld_f64(in[0].dtype, in[0].data, u);
                if (dv > -(double)depth - 1.0 && dv < (double)depth)
                    v = (int64_t)dv;
            } else {
                v = sp_ld_i64(in[0].dtype, in[0].data, u);
            }
            if (v < 0)
                v += depth;
            for (int64_t d = 0; d < depth; d++)
                memcpy(y + (size_t)((o * depth + d) * inner + i) * es, d == v ? on : off, es);
        }
    return 0;
}

static const sp_op_def op_onehot = {
    .op_type = "OneHot", .since_opset = 9, .flags = 0,
    .check = oh_check, .infer = oh_infer, .cpu_run = oh_run,
};

const sp_op_def *const sp_ops_onehot[] = {&op_onehot, NULL};
