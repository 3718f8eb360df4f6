/*
 * constant.c - Constant, ConstantOfShape, Range.
 *
 * Constant: value (tensor; the loader turned it into an sp_value),
 * value_float(s), value_int(s). value_string(s) and sparse_value are
 * rejected. ConstantOfShape's and Range's output shapes depend on their
 * inputs' data, so those must be constant.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <math.h>
#include <string.h>

/* ---- Constant ----------------------------------------------------------- */

static int constant_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 0, 0, 1, 1, err);
    if (rc)
        return rc;
    static const char *const bad[] = {"sparse_value", "value_string", "value_strings"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        if (sp_attr_find(n, bad[k]))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute '%s' is not supported", SP_LABEL(n), bad[k]);
    const sp_value *t = sp_attr_tensor(n, "value");
    if (t) {
        if (!sp_dt_supported(t->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute 'value' has unsupported dtype %s",
                              SP_LABEL(n), sp_dtype_name(t->dtype));
        return 0;
    }
    static const char *const ok[] = {"value_float", "value_floats", "value_int", "value_ints"};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
        if (sp_attr_find(n, ok[k]))
            return 0;
    return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: no 'value' attribute", SP_LABEL(n));
}

static int constant_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *t = sp_attr_tensor(n, "value");
    const sp_attr *a;
    sp_shape s = {.rank = 0};
    if (t) {
        sp_node_set_out(g, n, 0, t->dtype, &t->shape);
        return 0;
    }
    if ((a = sp_attr_find(n, "value_float"))) {
        sp_node_set_out(g, n, 0, SPRUN_DTYPE_FLOAT, &s);
    } else if ((a = sp_attr_find(n, "value_int"))) {
        sp_node_set_out(g, n, 0, SPRUN_DTYPE_INT64, &s);
    } else if ((a = sp_attr_find(n, "value_floats"))) {
        s.rank = 1;
        s.d[0] = a->n;
        sp_node_set_out(g, n, 0, SPRUN_DTYPE_FLOAT, &s);
    } else if ((a = sp_attr_find(n, "value_ints"))) {
        s.rank = 1;
        s.d[0] = a->n;
        sp_node_set_out(g, n, 0, SPRUN_DTYPE_INT64, &s);
    } else {
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: no 'value' attribute", SP_LABEL(n));
    }
    return 0;
}

static int constant_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                        const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)in; (void)n_in; (void)n_out; (void)ctx;
    const sp_value *t = sp_attr_tensor(n, "value");
    const sp_attr *a;
    int64_t cnt = sp_shape_numel(&out[0].shape);
    if (t) {
        size_t nb = (size_t)(cnt > 0 ? cnt : 0) * sp_dtype_size(t->dtype);
        if (nb && (!t->data || t->nbytes < nb))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: 'value' tensor holds %zu bytes, %zu expected",
                              SP_LABEL(n), t->nbytes, nb);
        if (nb)
            memcpy(out[0].data, t->data, nb);
    } else if ((a = sp_attr_find(n, "value_float"))) {
        *(float *)out[0].data = a->f;
    } else if ((a = sp_attr_find(n, "value_int"))) {
        *(int64_t *)out[0].data = a->i;
    } else if ((a = sp_attr_find(n, "value_floats"))) {
        if (a->n)
            memcpy(out[0].data, a->floats, (size_t)a->n * sizeof(float));
    } else if ((a = sp_attr_find(n, "value_ints"))) {
        if (a->n)
            memcpy(out[0].data, a->ints, (size_t)a->n * sizeof(int64_t));
    }
    return 0;
}

static const sp_op_def op_constant = {
    .op_type = "Constant", .since_opset = 1, .flags = 0,
    .check = constant_check, .infer = constant_infer, .cpu_run = constant_run,
};

/* ---- ConstantOfShape ---------------------------------------------------- */

static int cos_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 1, 1, 1, 1, err);
    if (rc)
        return rc;
    const sp_value *t = sp_attr_tensor(n, "value");
    if (t) {
        if (!sp_dt_supported(t->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute 'value' has unsupported dtype %s",
                              SP_LABEL(n), sp_dtype_name(t->dtype));
        if (sp_shape_numel(&t->shape) != 1)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'value' must hold one element",
                              SP_LABEL(n));
    }
    return 0;
}

static int cos_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int64_t sh[SP_MAX_RANK], cnt;
    int rc = sp_in_ints(g, n, 0, sh, SP_MAX_RANK, &cnt, err);
    if (rc)
        return rc;
    for (int k = 0; k < cnt; k++)
        if (sh[k] < 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: negative dim %lld", SP_LABEL(n), (long long)sh[k]);
    const sp_value *t = sp_attr_tensor(n, "value");
    sp_shape s = sp_shape_make((int)cnt, sh);
    if ((rc = sp_check_numel(n, &s, err)))
        return rc;
    sp_node_set_out(g, n, 0, t ? t->dtype : SPRUN_DTYPE_FLOAT, &s);
    return 0;
}

static int cos_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)in; (void)n_in; (void)n_out; (void)ctx; (void)err;
    const sp_value *t = sp_attr_tensor(n, "value");
    const int64_t cnt = sp_shape_numel(&out[0].shape);
    const size_t es = sp_dtype_size(out[0].dtype);
    char *y = out[0].data;
    if (cnt <= 0)
        return 0;
    if (!t || !t->data) {
        memset(y, 0, (size_t)cnt * es);
        return 0;
    }
    memcpy(y, t->data, es);
    /* Doubling copies: log2(cnt) memcpy calls. */
    for (int64_t have = 1; have < cnt; have *= 2) {
        int64_t c = have < cnt - have ? have : cnt - have;
        memcpy(y + (size_t)have * es, y, (size_t)c * es);
    }
    return 0;
}

static const sp_op_def op_cos = {
    .op_type = "ConstantOfShape", .since_opset = 9, .flags = 0,
    .check = cos_check, .infer = cos_infer, .cpu_run = cos_run,
};

/* ---- Range -------------------------------------------------------------- */

static int range_dt(int dt)
{
    return dt == SPRUN_DTYPE_FLOAT || dt == SPRUN_DTYPE_DOUBLE || dt == SPRUN_DTYPE_INT16 ||
           dt == SPRUN_DTYPE_INT32 || dt == SPRUN_DTYPE_INT64 || dt == SPRUN_DTYPE_FLOAT16;
}

static int range_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 3, 3, 1, 1, err);
}

/* Number of elements: max(ceil((limit - start) / delta), 0). */
static int range_count(const sp_node *n, int dt, const void *s, const void *l, const void *d, int64_t *cnt,
                       sp_err *err)
{
    if (sp_dt_is_int(dt)) {
        int64_t a = sp_ld_i64(dt, s, 0), b = sp_ld_i64(dt, l, 0), c = sp_ld_i64(dt, d, 0);
        if (c == 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: delta is 0", SP_LABEL(n));
        /* ceil division, exact in integers */
        int64_t span;
        if (__builtin_sub_overflow(b, a, &span))
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: range is too large", SP_LABEL(n));
        int64_t q = c == -1 ? (span == INT64_MIN ? INT64_MAX : -span) : span / c;
        if (c != -1 && span % c != 0 && ((span < 0) == (c < 0)))
            q++;
        *cnt = q > 0 ? q : 0;
    } else {
        double a = sp_ld_f64(dt, s, 0), b = sp_ld_f64(dt, l, 0), c = sp_ld_f64(dt, d, 0);
        if (c == 0.0 || !isfinite(a) || !isfinite(b) || !isfinite(c))
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: start/limit/delta must be finite, delta non-zero",
                              SP_LABEL(n));
        double q = ceil((b - a) / c);
        if (q >= 72057594037927936.0) /* 2^56 */
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: range is too large", SP_LABEL(n));
        *cnt = q > 0 ? (int64_t)q : 0;
    }
    return 0;
}

static int range_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    for (int i = 0; i < 3; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if ((rc = sp_check_dtype(g, n, i, range_dt, "float, double, int16, int32 or int64", err)))
            return rc;
        if (v->dtype != sp_node_in(g, n, 0)->dtype)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: start, limit and delta must have one dtype",
                              SP_LABEL(n));
        if (sp_shape_numel(&v->shape) != 1)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %d must be a scalar", SP_LABEL(n), i);
        if (!sp_node_const(g, n, i))
            return sp_err_datadep(err, g, n, i);
    }
    const int dt = sp_node_in(g, n, 0)->dtype;
    int64_t cnt = 0;
    if ((rc = range_count(n, dt, sp_node_const(g, n, 0), sp_node_const(g, n, 1), sp_node_const(g, n, 2), &cnt, err)))
        return rc;
    sp_shape s = {.rank = 1, .d = {cnt}};
    if ((rc = sp_check_numel(n, &s, err)))
        return rc;
    sp_node_set_out(g, n, 0, dt, &s);
    return 0;
}

static int range_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                     sp_err *err)
{
    (void)n; (void)n_in; (void)n_out; (void)ctx; (void)err;
    const int dt = in[0].dtype;
    const int64_t cnt = sp_shape_numel(&out[0].shape);
    if (sp_dt_is_int(dt)) {
        int64_t a = sp_ld_i64(dt, in[0].data, 0), c = sp_ld_i64(dt, in[2].data, 0);
        for (int64_t i = 0; i < cnt; i++)
            sp_st_i64(dt, out[0].data, i, (int64_t)((uint64_t)a + (uint64_t)i * (uint64_t)c));
    } else if (dt == SPRUN_DTYPE_DOUBLE) {
        double a = sp_ld_f64(dt, in[0].data, 0), c = sp_ld_f64(dt, in[2].data, 0);
        for (int64_t i = 0; i < cnt; i++)
            ((double *)out[0].data)[i] = a + (double)i * c;
    } else {
        float a = (float)sp_ld_f64(dt, in[0].data, 0), c = (float)sp_ld_f64(dt, in[2].data, 0);
        for (int64_t i = 0; i < cnt; i++)
            sp_st_f64(dt, out[0].data, i, a + (float)i * c);
    }
    return 0;
}

static const sp_op_def op_range = {
    .op_type = "Range", .since_opset = 11, .flags = 0,
    .check = range_check, .infer = range_infer, .cpu_run = range_run,
};

const sp_op_def *const sp_ops_constant[] = {&op_constant, &op_cos, &op_range, NULL};
