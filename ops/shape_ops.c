/*
 * shape_ops.c - Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout
 * (views: SP_OPF_ALIAS), Shape and Size (SP_OPF_SHAPE_ONLY), Expand, Tile.
 *
 * The view ops' cpu_run copies (memmove, a no-op when the planner gave input
 * and output one buffer): constant folding and the alias-less executor path
 * call it.
 */
#include "kernels/cpu/broadcast.h"
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static size_t tensor_bytes(const sp_tensor *t)
{
    int64_t n = sp_shape_numel(&t->shape);
    return n > 0 ? (size_t)n * sp_dtype_size(t->dtype) : 0;
}

static int in_dtype_ok(const sp_graph *g, const sp_node *n, int i, sp_err *err)
{
    return sp_check_dtype(g, n, i, sp_dt_supported, "a numeric or bool tensor", err);
}

/* The copying cpu_run of every view op. */
static int view_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                    sp_err *err)
{
    (void)n; (void)n_in; (void)ctx; (void)err;
    sp_copy_bytes(out[0].data, in[0].data, tensor_bytes(&out[0]));
    for (int i = 1; i < n_out; i++) /* Dropout's mask: all true */
        if (out[i].data)
            memset(out[i].data, 1, tensor_bytes(&out[i]));
    return 0;
}

/* ---- Reshape ------------------------------------------------------------ */

static int reshape_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    int rc;
    if (g->opset < 5) {
        if ((rc = sp_check_io(n, 1, 1, 1, 1, err)))
            return rc;
        if (!sp_attr_find(n, "shape"))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'shape' is required at opset %lld",
                              SP_LABEL(n), (long long)g->opset);
    } else if ((rc = sp_check_io(n, 2, 2, 1, 1, err))) {
        return rc;
    }
    int64_t az = sp_attr_int(n, "allowzero", 0);
    if (az != 0 && az != 1)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'allowzero' must be 0 or 1, got %lld",
                          SP_LABEL(n), (long long)az);
    return 0;
}

static int reshape_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t sh[SP_MAX_RANK];
    int64_t cnt = -1;
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)))
        return rc;
    if (n->n_in >= 2 && n->in[1] >= 0) {
        if ((rc = sp_in_ints(g, n, 1, sh, SP_MAX_RANK, &cnt, err)))
            return rc;
    } else {
        const int64_t *v;
        cnt = sp_attr_ints(n, "shape", &v);
        if (cnt > SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: target rank %lld exceeds %d", SP_LABEL(n),
                              (long long)cnt, SP_MAX_RANK);
        for (int64_t k = 0; k < cnt; k++)
            sh[k] = v[k];
    }
    if (cnt < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: no target shape", SP_LABEL(n));
    {
        sp_shape t = sp_shape_make((int)cnt, sh);
        for (int k = 0; k < t.rank; k++)
            t.d[k] = t.d[k] < 0 ? 1 : t.d[k]; /* -1 and 0 are resolved below */
        if ((rc = sp_check_numel(n, &t, err)))
            return rc;
    }
    const int allowzero = (int)sp_attr_int(n, "allowzero", 0);
    sp_shape out = {.rank = (int32_t)cnt};
    int neg = -1;
    int64_t known = 1;
    int has_zero = 0;
    char s1[128], s2[128];
    for (int k = 0; k < cnt; k++) {
        int64_t d = sh[k];
        if (d == -1) {
            if (neg >= 0)
                return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: target shape has more than one -1", SP_LABEL(n));
            neg = k;
            out.d[k] = 1;
            continue;
        }
        if (d < -1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: invalid target dim %lld", SP_LABEL(n), (long long)d);
        if (d == 0 && !allowzero) {
            if (k >= x->shape.rank)
                return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: target dim %d is 0 (copy) but input %s has rank %d",
                                  SP_LABEL(n), k, sp_shape_str(&x->shape, s1, sizeof s1), x->shape.rank);
            d = x->shape.d[k];
        }
        if (d == 0)
            has_zero = 1;
        out.d[k] = d;
        known *= d;
    }
    const int64_t total = sp_shape_numel(&x->shape);
    if (neg >= 0) {
        if (allowzero && has_zero)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: allowzero=1 with both 0 and -1 in the target shape",
                              SP_LABEL(n));
        if (known == 0 || total % known != 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: cannot reshape %s: %lld elements do not divide by %lld",
                              SP_LABEL(n), sp_shape_str(&x->shape, s1, sizeof s1), (long long)total,
                              (long long)known);
        out.d[neg] = total / known;
    } else if (known != total) {
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: cannot reshape %s (%lld elements) to %s", SP_LABEL(n),
                          sp_shape_str(&x->shape, s1, sizeof s1), (long long)total,
                          sp_shape_str(&out, s2, sizeof s2));
    }
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

static const sp_op_def op_reshape = {
    .op_type = "Reshape", .since_opset = 1, .flags = SP_OPF_ALIAS,
    .check = reshape_check, .infer = reshape_infer, .cpu_run = view_run,
};

/* ---- Flatten ------------------------------------------------------------ */

static int flatten_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 1, 1, 1, 1, err);
}

static int flatten_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)))
        return rc;
    int64_t axis = sp_attr_int(n, "axis", 1);
    const int r = x->shape.rank;
    if (axis < 0)
        axis += r;
    if (axis < 0 || axis > r)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)sp_attr_int(n, "axis", 1), r);
    sp_shape out = {.rank = 2, .d = {1, 1}};
    for (int k = 0; k < r; k++)
        out.d[k < axis ? 0 : 1] *= x->shape.d[k];
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

static const sp_op_def op_flatten = {
    .op_type = "Flatten", .since_opset = 1, .flags = SP_OPF_ALIAS,
    .check = flatten_check, .infer = flatten_infer, .cpu_run = view_run,
};

/* ---- Squeeze / Unsqueeze ------------------------------------------------ */

/* Axes from the input (opset >= 13) or the attribute; *cnt = -1 if none. */
static int get_axes(const sp_graph *g, const sp_node *n, int64_t *axes, int64_t *cnt, sp_err *err)
{
    *cnt = -1;
    if (g->opset >= 13) {
        if (n->n_in >= 2 && n->in[1] >= 0)
            return sp_in_ints(g, n, 1, axes, SP_MAX_RANK, cnt, err);
    }
    const int64_t *v;
    int64_t c = sp_attr_ints(n, "axes", &v);
    if (c > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute 'axes' has %lld entries", SP_LABEL(n),
                          (long long)c);
    for (int64_t k = 0; k < c; k++)
        axes[k] = v[k];
    *cnt = c;
    return 0;
}

static int squeeze_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    return sp_check_io(n, 1, g->opset >= 13 ? 2 : 1, 1, 1, err);
}

static int squeeze_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t axes[SP_MAX_RANK], cnt;
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)) || (rc = get_axes(g, n, axes, &cnt, err)))
        return rc;
    const int r = x->shape.rank;
    int drop[SP_MAX_RANK] = {0};
    char s1[128];
    if (cnt < 0) {
        for (int k = 0; k < r; k++)
            drop[k] = x->shape.d[k] == 1;
    } else {
        for (int64_t k = 0; k < cnt; k++) {
            int a = sp_axis(axes[k], r);
            if (a < 0)
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for rank %d",
                                  SP_LABEL(n), (long long)axes[k], r);
            if (x->shape.d[a] != 1)
                return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: cannot squeeze axis %d of shape %s (size is not 1)",
                                  SP_LABEL(n), a, sp_shape_str(&x->shape, s1, sizeof s1));
            drop[a] = 1;
        }
    }
    sp_shape out = {.rank = 0};
    for (int k = 0; k < r; k++)
        if (!drop[k])
            out.d[out.rank++] = x->shape.d[k];
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

static const sp_op_def op_squeeze = {
    .op_type = "Squeeze", .since_opset = 1, .flags = SP_OPF_ALIAS,
    .check = squeeze_check, .infer = squeeze_infer, .cpu_run = view_run,
};

static int unsqueeze_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    int rc = sp_check_io(n, g->opset >= 13 ? 2 : 1, g->opset >= 13 ? 2 : 1, 1, 1, err);
    if (rc)
        return rc;
    if (g->opset < 13 && !sp_attr_find(n, "axes"))
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axes' is required", SP_LABEL(n));
    return 0;
}

static int unsqueeze_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t axes[SP_MAX_RANK], cnt;
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)) || (rc = get_axes(g, n, axes, &cnt, err)))
        return rc;
    if (cnt < 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: no axes", SP_LABEL(n));
    const int r = x->shape.rank, ro = r + (int)cnt;
    if (ro > SP_MAX_RANK)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: output rank %d exceeds %d", SP_LABEL(n), ro,
                          SP_MAX_RANK);
    int ins[SP_MAX_RANK] = {0};
    for (int64_t k = 0; k < cnt; k++) {
        int a = sp_axis(axes[k], ro);
        if (a < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %lld out of range for output rank %d",
                              SP_LABEL(n), (long long)axes[k], ro);
        if (ins[a])
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: axis %d repeated", SP_LABEL(n), a);
        ins[a] = 1;
    }
    sp_shape out = {.rank = ro};
    for (int k = 0, j = 0; k < ro; k++)
        out.d[k] = ins[k] ? 1 : x->shape.d[j++];
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

static const sp_op_def op_unsqueeze = {
    .op_type = "Unsqueeze", .since_opset = 1, .flags = SP_OPF_ALIAS,
    .check = unsqueeze_check, .infer = unsqueeze_infer, .cpu_run = view_run,
};

/* ---- Identity / Dropout --------------------------------------------------- */

static int identity_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 1, 1, 1, 1, err);
}

static int identity_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

static const sp_op_def op_identity = {
    .op_type = "Identity", .since_opset = 1, .flags = SP_OPF_ALIAS,
    .check = identity_check, .infer = identity_infer, .cpu_run = view_run,
};

static int dropout_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    int rc = sp_check_io(n, 1, 3, 1, 2, err);
    if (rc)
        return rc;
    if (g->opset < 7 && sp_attr_int(n, "is_test", 0) == 0 && sp_attr_find(n, "is_test"))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute 'is_test' = 0 (training) is not supported",
                          SP_LABEL(n));
    return 0;
}

static int dropout_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)))
        return rc;
    if (sp_node_in(g, n, 2)) { /* training_mode: a constant false, or true with ratio 0 */
        const void *t = sp_node_const(g, n, 2);
        const sp_value *tv = sp_node_in(g, n, 2);
        if (!t)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input 'training_mode' ('%s') must be constant",
                              SP_LABEL(n), tv->name);
        if (sp_ld_i64(tv->dtype, t, 0) != 0) {
            const sp_value *rv = sp_node_in(g, n, 1);
            const void *r = sp_node_const(g, n, 1);
            if (!rv || !r || sp_ld_f64(rv->dtype, r, 0) != 0.0)
                return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                                  "%s: training_mode = true with a non-zero ratio is not supported (inference only)",
                                  SP_LABEL(n));
        }
    }
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    sp_node_set_out(g, n, 1, SPRUN_DTYPE_BOOL, &x->shape);
    return 0;
}

/* Not SP_OPF_ALIAS: the executor skips cpu_run for aliased nodes, which
 * would leave the optional mask output unwritten. */
static const sp_op_def op_dropout = {
    .op_type = "Dropout", .since_opset = 1, .flags = 0,
    .check = dropout_check, .infer = dropout_infer, .cpu_run = view_run,
};

/* ---- Shape / Size ------------------------------------------------------- */

static void shape_range(const sp_node *n, int r, int64_t *b, int64_t *e)
{
    int64_t s = sp_attr_int(n, "start", 0), t = sp_attr_int(n, "end", r);
    if (s < 0) s += r;
    if (t < 0) t += r;
    s = s < 0 ? 0 : (s > r ? r : s);
    t = t < 0 ? 0 : (t > r ? r : t);
    *b = s;
    *e = t < s ? s : t;
}

static int shape_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 1, 1, 1, 1, err);
}

static int shape_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    (void)err;
    int64_t b, e;
    shape_range(n, x->shape.rank, &b, &e);
    sp_shape out = {.rank = 1, .d = {e - b}};
    sp_node_set_out(g, n, 0, SPRUN_DTYPE_INT64, &out);
    return 0;
}

static int shape_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                     sp_err *err)
{
    (void)n_in; (void)n_out; (void)ctx; (void)err;
    int64_t b, e;
    shape_range(n, in[0].shape.rank, &b, &e);
    for (int64_t k = b; k < e; k++)
        ((int64_t *)out[0].data)[k - b] = in[0].shape.d[k];
    return 0;
}

static const sp_op_def op_shape = {
    .op_type = "Shape", .since_opset = 1, .flags = SP_OPF_SHAPE_ONLY,
    .check = shape_check, .infer = shape_infer, .cpu_run = shape_run,
};

static int size_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    (void)err;
    sp_shape out = {.rank = 0};
    sp_node_set_out(g, n, 0, SPRUN_DTYPE_INT64, &out);
    return 0;
}

static int size_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                    sp_err *err)
{
    (void)n; (void)n_in; (void)n_out; (void)ctx; (void)err;
    int64_t c = 1;
    for (int k = 0; k < in[0].shape.rank; k++)
        c *= in[0].shape.d[k];
    *(int64_t *)out[0].data = c;
    return 0;
}

static const sp_op_def op_size = {
    .op_type = "Size", .since_opset = 1, .flags = SP_OPF_SHAPE_ONLY,
    .check = shape_check, .infer = size_infer, .cpu_run = size_run,
};

/* ---- Expand ------------------------------------------------------------- */

static int expand_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 2, 2, 1, 1, err);
}

static int expand_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t sh[SP_MAX_RANK], cnt;
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)) || (rc = sp_in_ints(g, n, 1, sh, SP_MAX_RANK, &cnt, err)))
        return rc;
    sp_shape s = sp_shape_make((int)cnt, sh), out;
    for (int k = 0; k < s.rank; k++)
        if (s.d[k] < 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: negative dim %lld in the shape input", SP_LABEL(n),
                              (long long)s.d[k]);
    if ((rc = sp_check_numel(n, &s, err)))
        return rc;
    if ((rc = sp_shape_broadcast(&x->shape, &s, &out, err)))
        return sp_err_prefix(err, "%s", SP_LABEL(n));
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

static int expand_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                      sp_err *err)
{
    (void)n; (void)n_in; (void)n_out; (void)ctx;
    return sp_bcast_copy(&in[0].shape, in[0].data, &out[0].shape, out[0].data, sp_dtype_size(in[0].dtype), err);
}

static const sp_op_def op_expand = {
    .op_type = "Expand", .since_opset = 8, .flags = 0,
    .check = expand_check, .infer = expand_infer, .cpu_run = expand_run,
};

/* ---- Tile --------------------------------------------------------------- */

static int tile_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    if (g->opset < 6)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: Tile before opset 6 (tiles/axis inputs) is not supported",
                          SP_LABEL(n));
    return sp_check_io(n, 2, 2, 1, 1, err);
}

static int tile_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int64_t rep[SP_MAX_RANK], cnt;
    int rc;
    if ((rc = in_dtype_ok(g, n, 0, err)) || (rc = sp_in_ints(g, n, 1, rep, SP_MAX_RANK, &cnt, err)))
        return rc;
    if (cnt != x->shape.rank)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: 'repeats' has %lld entries, input rank is %d", SP_LABEL(n),
                          (long long)cnt, x->shape.rank);
    sp_shape out = x->shape;
    for (int k = 0; k < out.rank; k++) {
        if (rep[k] < 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: negative repeat %lld", SP_LABEL(n), (long long)rep[k]);
        if (__builtin_mul_overflow(out.d[k], rep[k], &out.d[k]))
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: repeat %lld is too large", SP_LABEL(n), (long long)rep[k]);
    }
    if ((rc = sp_check_numel(n, &out, err)))
        return rc;
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

static int tile_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                    sp_err *err)
{
    (void)n; (void)n_in; (void)n_out; (void)ctx; (void)err;
    const sp_shape *xs = &in[0].shape, *ys = &out[0].shape;
    const int r = ys->rank;
    const size_t es = sp_dtype_size(in[0].dtype);
    if (sp_shape_numel(ys) <= 0)
        return 0;
    if (r == 0) {
        memcpy(out[0].data, in[0].data, es);
        return 0;
    }
    int64_t xst[SP_MAX_RANK];
    sp_shape_strides(xs, xst);
    const int64_t xin = xs->d[r - 1], yin = ys->d[r - 1];
    const int64_t rows = sp_shape_numel(ys) / yin;
    int64_t idx[SP_MAX_RANK] = {0};
    char *y = out[0].data;
    const char *x = in[0].data;
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = 0;
        for (int k = 0; k < r - 1; k++)
            off += (idx[k] % xs->d[k]) * xst[k];
        char *yr = y + (size_t)(row * yin) * es;
        for (int64_t j = 0; j < yin; j += xin)
            memcpy(yr + (size_t)j * es, x + (size_t)off * es, (size_t)xin * es);
        for (int k = r - 2; k >= 0; k--) {
            if (++idx[k] < ys->d[k])
                break;
            idx[k] = 0;
        }
    }
    return 0;
}

static const sp_op_def op_tile = {
    .op_type = "Tile", .since_opset = 6, .flags = 0,
    .check = tile_check, .infer = tile_infer, .cpu_run = tile_run,
};

const sp_op_def *const sp_ops_shape_ops[] = {
    &op_reshape, &op_flatten, &op_squeeze, &op_unsqueeze, &op_identity, &op_dropout,
    &op_shape, &op_size, &op_expand, &op_tile, NULL,
};
