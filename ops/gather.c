/*
 * gather.c - Gather (any axis, negative indices, any index rank) and
 * GatherElements. Indices are int32 or int64; an index outside
 * [-d, d) is SPRUN_ERR_INVALID_ARGUMENT naming the node, never a wild read.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int idx_dt(int dt) { return dt == SPRUN_DTYPE_INT32 || dt == SPRUN_DTYPE_INT64; }

static int gather_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 2, 2, 1, 1, err);
}

static int gather_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0), *ix = sp_node_in(g, n, 1);
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, idx_dt, "int32 or int64", err)))
        return rc;
    const int r = x->shape.rank;
    const int64_t axis_attr = sp_attr_int(n, "axis", 0);
    int axis = sp_axis(axis_attr, r);
    if (axis < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)axis_attr, r);
    const int ro = r - 1 + ix->shape.rank;
    if (ro > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: output rank %d exceeds %d", SP_LABEL(n), ro, SP_MAX_RANK);
    sp_shape out = {.rank = ro};
    int j = 0;
    for (int k = 0; k < axis; k++)
        out.d[j++] = x->shape.d[k];
    for (int k = 0; k < ix->shape.rank; k++)
        out.d[j++] = ix->shape.d[k];
    for (int k = axis + 1; k < r; k++)
        out.d[j++] = x->shape.d[k];
    if ((rc = sp_check_numel(n, &out, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

typedef struct gather_job {
    const char *x;
    char *y;
    const void *idx;
    int idt;
    int64_t nidx, dax, inner_bytes;
    int bad; /* set (racily, any writer wins) when an index is out of range */
    int64_t bad_val;
} gather_job;

static void gather_range(void *arg, int64_t b, int64_t e)
{
    gather_job *j = arg;
    for (int64_t u = b; u < e; u++) {
        int64_t o = u / j->nidx, k = u % j->nidx;
        int64_t i = j->idt == SPRUN_DTYPE_INT64 ? ((const int64_t *)j->idx)[k] : ((const int32_t *)j->idx)[k];
        if (i < 0)
            i += j->dax;
        if (i < 0 || i >= j->dax) {
            j->bad = 1;
            j->bad_val = i;
            memset(j->y + u * j->inner_bytes, 0, (size_t)j->inner_bytes);
            continue;
        }
        memcpy(j->y + u * j->inner_bytes, j->x + (o * j->dax + i) * j->inner_bytes, (size_t)j->inner_bytes);
    }
}

static int gather_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                      sp_err *err)
{
    (void)n_in; (void)n_out;
    const sp_shape *xs = &in[0].shape;
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), xs->rank);
    int64_t outer, inner;
    sp_outer_inner(xs, axis, &outer, &inner);
    gather_job j = {
        .x = in[0].data, .y = out[0].data, .idx = in[1].data, .idt = in[1].dtype,
        .nidx = sp_shape_numel(&in[1].shape), .dax = xs->d[axis],
        .inner_bytes = inner * (int64_t)sp_dtype_size(in[0].dtype),
    };
    const int64_t units = outer * j.nidx;
    if (units <= 0 || j.inner_bytes == 0)
        return 0;
    int64_t grain = 65536 / (j.inner_bytes + 1) + 1;
    sp_par_for(ctx, units, grain, gather_range, &j);
    if (j.bad)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: index %lld out of range for axis %d of size %lld",
                          SP_LABEL(n), (long long)j.bad_val, axis, (long long)j.dax);
    return 0;
}

static const sp_op_def op_gather = {
    .op_type = "Gather", .since_opset = 1, .flags = 0,
    .check = gather_check, .infer = gather_infer, .cpu_run = gather_run,
};

/* ---- GatherElements ------------------------------------------------------ */

static int ge_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0), *ix = sp_node_in(g, n, 1);
    int rc;
    char s1[128], s2[128];
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, idx_dt, "int32 or int64", err)))
        return rc;
    const int r = x->shape.rank;
    const int64_t axis_attr = sp_attr_int(n, "axis", 0);
    if (sp_axis(axis_attr, r) < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)axis_attr, r);
    if (ix->shape.rank != r)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: indices %s and data %s must have the same rank", SP_LABEL(n),
                          sp_shape_str(&ix->shape, s1, sizeof s1), sp_shape_str(&x->shape, s2, sizeof s2));
    const int axis = sp_axis(axis_attr, r);
    for (int k = 0; k < r; k++)
        if (k != axis && ix->shape.d[k] > x->shape.d[k])
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: indices %s exceed data %s along axis %d", SP_LABEL(n),
                              sp_shape_str(&ix->shape, s1, sizeof s1), sp_shape_str(&x->shape, s2, sizeof s2), k);
    sp_node_set_out(g, n, 0, x->dtype, &ix->shape);
    return 0;
}

static int ge_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out; (void)ctx;
    const sp_shape *xs = &in[0].shape, *is = &in[1].shape;
    const int r = xs->rank;
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), r);
    const size_t es = sp_dtype_size(in[0].dtype);
    const int64_t cnt = sp_shape_numel(is);
    int64_t xst[SP_MAX_RANK], idx[SP_MAX_RANK] = {0};
    sp_shape_strides(xs, xst);
    const char *x = in[0].data;
    char *y = out[0].data;
    for (int64_t u = 0; u < cnt; u++) {
        int64_t i = sp_ld_i64(in[1].dtype, in[1].data, u);
        if (i < 0)
            i += xs->d[axis];
        if (i < 0 || i >= xs->d[axis])
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: index %lld out of range for axis %d of size %lld",
                              SP_LABEL(n), (long long)sp_ld_i64(in[1].dtype, in[1].data, u), axis,
                              (long long)xs->d[axis]);
        int64_t off = 0;
        for (int k = 0; k < r; k++)
            off += (k == axis ? i : idx[k]) * xst[k];
        memcpy(y + (size_t)u * es, x + (size_t)off * es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < is->d[k])
                break;
            idx[k] = 0;
        }
    }
    return 0;
}

static const sp_op_def op_gather_elements = {
    .op_type = "GatherElements", .since_opset = 11, .flags = 0,
    .check = gather_check, .infer = ge_infer, .cpu_run = ge_run,
};

const sp_op_def *const sp_ops_gather[] = {&op_gather, &op_gather_elements, NULL};
