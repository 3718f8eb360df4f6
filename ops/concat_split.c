/*
 * concat_split.c - Concat (any axis, negative axes) and Split (equal split,
 * split sizes from the input (opset 13+) or the attribute, num_outputs
 * (opset 18)). Both copy contiguous blocks: outer = prod(dims before axis),
 * one memcpy per (outer index, operand).
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

/* ---- Concat ------------------------------------------------------------- */

static int concat_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 1 << 20, 1, 1, err);
    if (rc)
        return rc;
    if (!sp_attr_find(n, "axis"))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' is required", SP_LABEL(n));
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is missing", SP_LABEL(n), i);
    return 0;
}

static int concat_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x0 = sp_node_in(g, n, 0);
    const int r = x0->shape.rank;
    const int64_t axis_attr = sp_attr_int(n, "axis", 0);
    const int axis = sp_axis(axis_attr, r);
    char s1[128], s2[128];
    int rc;
    if (axis < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)axis_attr, r);
    sp_shape out = x0->shape;
    out.d[axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *x = sp_node_in(g, n, i);
        if ((rc = sp_check_dtype(g, n, i, sp_dt_supported, "a numeric or bool tensor", err)))
            return rc;
        if (x->dtype != x0->dtype)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is %s, input 0 is %s", SP_LABEL(n), i,
                              sp_dtype_name(x->dtype), sp_dtype_name(x0->dtype));
        int ok = x->shape.rank == r;
        for (int k = 0; ok && k < r; k++)
            ok = k == axis || x->shape.d[k] == x0->shape.d[k];
        if (!ok)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: cannot concatenate %s and %s along axis %d", SP_LABEL(n),
                              sp_shape_str(&x0->shape, s1, sizeof s1), sp_shape_str(&x->shape, s2, sizeof s2), axis);
        out.d[axis] += x->shape.d[axis];
    }
    sp_node_set_out(g, n, 0, x0->dtype, &out);
    return 0;
}

static int concat_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n_out; (void)ctx; (void)err;
    const sp_shape *ys = &out[0].shape;
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), ys->rank);
    const size_t es = sp_dtype_size(out[0].dtype);
    int64_t outer, inner;
    sp_outer_inner(ys, axis, &outer, &inner);
    const size_t yrow = (size_t)(ys->d[axis] * inner) * es;
    char *y = out[0].data;
    size_t col = 0;
    for (int i = 0; i < n_in; i++) {
        const size_t blk = (size_t)(in[i].shape.d[axis] * inner) * es;
        const char *x = in[i].data;
        if (blk)
            for (int64_t o = 0; o < outer; o++)
                memcpy(y + (size_t)o * yrow + col, x + (size_t)o * blk, blk);
        col += blk;
    }
    return 0;
}

static const sp_op_def op_concat = {
    .op_type = "Concat", .since_opset = 1, .flags = 0,
    .check = concat_check, .infer = concat_infer, .cpu_run = concat_run,
};

/* ---- Split -------------------------------------------------------------- */

#define SPLIT_MAX 1024

static int split_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    int rc = sp_check_io(n, 1, g->opset >= 13 ? 2 : 1, 1, SPLIT_MAX, err);
    if (rc)
        return rc;
    const sp_attr *no = sp_attr_find(n, "num_outputs");
    if (no && no->i != n->n_out)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'num_outputs' = %lld but the node has %d outputs",
                          SP_LABEL(n), (long long)no->i, n->n_out);
    return 0;
}

/* Output sizes along the axis: from the split list (the input at opset 13+,
 * the attribute before; sz_cnt < 0 when there is none), else num_outputs
 * chunks of ceil(dim / n) with a smaller last one, else an equal split. */
static int split_sizes(const sp_node *n, const sp_shape *xs, int axis, const int64_t *sz, int64_t sz_cnt,
                       int64_t *sizes, sp_err *err)
{
    const int no = n->n_out;
    const int64_t dim = xs->d[axis];
    char s1[128];
    if (sz_cnt >= 0) {
        if (sz_cnt != no)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: %lld split sizes for %d outputs", SP_LABEL(n),
                              (long long)sz_cnt, no);
        int64_t sum = 0;
        for (int k = 0; k < no; k++) {
            if (sz[k] < 0 || sz[k] > dim)
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: split size %lld out of range", SP_LABEL(n),
                                  (long long)sz[k]);
            sizes[k] = sz[k];
            sum += sz[k];
        }
        if (sum != dim)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: split sizes sum to %lld, axis %d of %s has %lld", SP_LABEL(n),
                              (long long)sum, axis, sp_shape_str(xs, s1, sizeof s1), (long long)dim);
        return 0;
    }
    if (!sp_attr_find(n, "num_outputs") && dim % no != 0)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: axis %d of %s (%lld) does not split evenly into %d outputs",
                          SP_LABEL(n), axis, sp_shape_str(xs, s1, sizeof s1), (long long)dim, no);
    const int64_t chunk = (dim + no - 1) / no;
    int64_t left = dim;
    for (int k = 0; k < no; k++) {
        sizes[k] = chunk < left ? chunk : left;
        left -= sizes[k];
    }
    return 0;
}

static int split_attr(const sp_node *n, int64_t *buf, int64_t *cnt, sp_err *err)
{
    const int64_t *v;
    *cnt = sp_attr_ints(n, "split", &v);
    if (*cnt > SPLIT_MAX)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: more than %d split sizes", SP_LABEL(n), SPLIT_MAX);
    for (int64_t k = 0; k < *cnt; k++)
        buf[k] = v[k];
    return 0;
}

static int split_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    const int r = x->shape.rank;
    const int64_t axis_attr = sp_attr_int(n, "axis", 0);
    const int axis = sp_axis(axis_attr, r);
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    if (axis < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)axis_attr, r);
    int64_t buf[SPLIT_MAX], sizes[SPLIT_MAX], cnt = -1;
    if (g->opset >= 13)
        rc = sp_in_ints(g, n, 1, buf, SPLIT_MAX, &cnt, err);
    else
        rc = split_attr(n, buf, &cnt, err);
    if (rc || (rc = split_sizes(n, &x->shape, axis, buf, cnt, sizes, err)))
        return rc;
    for (int k = 0; k < n->n_out; k++) {
        sp_shape s = x->shape;
        s.d[axis] = sizes[k];
        sp_node_set_out(g, n, k, x->dtype, &s);
    }
    return 0;
}

static int split_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                     sp_err *err)
{
    (void)ctx;
    const sp_shape *xs = &in[0].shape;
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), xs->rank);
    const size_t es = sp_dtype_size(in[0].dtype);
    int64_t buf[SPLIT_MAX], sizes[SPLIT_MAX], cnt = -1;
    int rc;
    /* the same sizes as infer, so absent outputs are skipped correctly */
    if (n_in >= 2 && (in[1].data || in[1].dtype))
        rc = sp_tensor_ints(n, &in[1], buf, SPLIT_MAX, &cnt, err);
    else
        rc = split_attr(n, buf, &cnt, err);
    if (rc || (rc = split_sizes(n, xs, axis, buf, cnt, sizes, err)))
        return rc;
    int64_t outer, inner;
    sp_outer_inner(xs, axis, &outer, &inner);
    const size_t xrow = (size_t)(xs->d[axis] * inner) * es;
    const char *x = in[0].data;
    size_t col = 0;
    for (int i = 0; i < n_out; i++) {
        const size_t blk = (size_t)(sizes[i] * inner) * es;
        if (out[i].data && blk)
            for (int64_t o = 0; o < outer; o++)
                memcpy((char *)out[i].data + (size_t)o * blk, x + (size_t)o * xrow + col, blk);
        col += blk;
    }
    return 0;
}

static const sp_op_def op_split = {
    .op_type = "Split", .since_opset = 1, .flags = 0,
    .check = split_check, .infer = split_infer, .cpu_run = split_run,
};

const sp_op_def *const sp_ops_concat_split[] = {&op_concat, &op_split, NULL};
