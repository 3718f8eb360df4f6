/* tensor_cpu.c - dtype conversion and shape-input helpers of the tensor ops. */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

int sp_dt_is_float(int dt)
{
    return dt == SPRUN_DTYPE_FLOAT || dt == SPRUN_DTYPE_FLOAT16 || dt == SPRUN_DTYPE_DOUBLE;
}

int sp_dt_is_int(int dt)
{
    switch (dt) {
    case SPRUN_DTYPE_INT8: case SPRUN_DTYPE_UINT8: case SPRUN_DTYPE_INT16: case SPRUN_DTYPE_UINT16:
    case SPRUN_DTYPE_INT32: case SPRUN_DTYPE_UINT32: case SPRUN_DTYPE_INT64: return 1;
    default: return 0;
    }
}

int sp_dt_is_signed(int dt)
{
    return sp_dt_is_float(dt) || dt == SPRUN_DTYPE_INT8 || dt == SPRUN_DTYPE_INT16 || dt == SPRUN_DTYPE_INT32 ||
           dt == SPRUN_DTYPE_INT64;
}

int sp_dt_numeric(int dt) { return sp_dt_is_float(dt) || sp_dt_is_int(dt); }
int sp_dt_supported(int dt) { return sp_dt_numeric(dt) || dt == SPRUN_DTYPE_BOOL; }

static inline double f16d(uint16_t h) { return (double)sp_f16_to_f32(h); }

double sp_ld_f64(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case SPRUN_DTYPE_FLOAT: return ((const float *)p)[i];
    case SPRUN_DTYPE_FLOAT16: return f16d(((const uint16_t *)p)[i]);
    case SPRUN_DTYPE_DOUBLE: return ((const double *)p)[i];
    case SPRUN_DTYPE_INT8: return ((const int8_t *)p)[i];
    case SPRUN_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case SPRUN_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case SPRUN_DTYPE_INT16: return ((const int16_t *)p)[i];
    case SPRUN_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case SPRUN_DTYPE_INT32: return ((const int32_t *)p)[i];
    case SPRUN_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case SPRUN_DTYPE_INT64: return (double)((const int64_t *)p)[i];
    default: return 0.0;
    }
}

/* double -> int64 the way C casts do, but defined for every input: NaN and
 * out-of-range values give INT64_MIN (what x86's cvttsd2si returns). */
static inline int64_t d2i(double v)
{
    if (!(v > -9223372036854775808.0 && v < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)v;
}

int64_t sp_ld_i64(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case SPRUN_DTYPE_FLOAT: return d2i(((const float *)p)[i]);
    case SPRUN_DTYPE_FLOAT16: return d2i(f16d(((const uint16_t *)p)[i]));
    case SPRUN_DTYPE_DOUBLE: return d2i(((const double *)p)[i]);
    case SPRUN_DTYPE_INT8: return ((const int8_t *)p)[i];
    case SPRUN_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case SPRUN_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case SPRUN_DTYPE_INT16: return ((const int16_t *)p)[i];
    case SPRUN_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case SPRUN_DTYPE_INT32: return ((const int32_t *)p)[i];
    case SPRUN_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case SPRUN_DTYPE_INT64: return ((const int64_t *)p)[i];
    default: return 0;
    }
}

void sp_st_i64(int dt, void *p, int64_t i, int64_t v)
{
    const uint64_t u = (uint64_t)v; /* truncation through unsigned: wraps, no UB */
    switch (dt) {
    case SPRUN_DTYPE_FLOAT: ((float *)p)[i] = (float)v; break;
    case SPRUN_DTYPE_FLOAT16: ((uint16_t *)p)[i] = sp_f32_to_f16((float)v); break;
    case SPRUN_DTYPE_DOUBLE: ((double *)p)[i] = (double)v; break;
    case SPRUN_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)(uint8_t)u; break;
    case SPRUN_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)u; break;
    case SPRUN_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case SPRUN_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)(uint16_t)u; break;
    case SPRUN_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)u; break;
    case SPRUN_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)(uint32_t)u; break;
    case SPRUN_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)u; break;
    case SPRUN_DTYPE_INT64: ((int64_t *)p)[i] = v; break;
    default: break;
    }
}

void sp_st_f64(int dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case SPRUN_DTYPE_FLOAT: ((float *)p)[i] = (float)v; break;
    case SPRUN_DTYPE_FLOAT16: ((uint16_t *)p)[i] = sp_f32_to_f16((float)v); break;
    case SPRUN_DTYPE_DOUBLE: ((double *)p)[i] = v; break;
    case SPRUN_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0.0; break;
    default: sp_st_i64(dt, p, i, d2i(v)); break;
    }
}

void sp_ld_f32_run(int dt, const void *p, int64_t i0, int64_t s, float *dst, int64_t n)
{
    if (dt == SPRUN_DTYPE_FLOAT) {
        const float *a = (const float *)p + i0;
        if (s == 1)
            memcpy(dst, a, (size_t)n * sizeof *dst);
        else
            for (int64_t k = 0; k < n; k++)
                dst[k] = a[k * s];
    } else if (dt == SPRUN_DTYPE_FLOAT16) {
        const uint16_t *a = (const uint16_t *)p + i0;
        for (int64_t k = 0; k < n; k++)
            dst[k] = sp_f16_to_f32(a[k * s]);
    } else {
        for (int64_t k = 0; k < n; k++)
            dst[k] = (float)sp_ld_f64(dt, p, i0 + k * s);
    }
}

void sp_ld_f64_run(int dt, const void *p, int64_t i0, int64_t s, double *dst, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        dst[k] = sp_ld_f64(dt, p, i0 + k * s);
}

void sp_ld_i64_run(int dt, const void *p, int64_t i0, int64_t s, int64_t *dst, int64_t n)
{
    switch (dt) {
    case SPRUN_DTYPE_INT64: {
        const int64_t *a = (const int64_t *)p + i0;
        for (int64_t k = 0; k < n; k++) dst[k] = a[k * s];
        break;
    }
    case SPRUN_DTYPE_INT32: {
        const int32_t *a = (const int32_t *)p + i0;
        for (int64_t k = 0; k < n; k++) dst[k] = a[k * s];
        break;
    }
    case SPRUN_DTYPE_UINT8: case SPRUN_DTYPE_BOOL: {
        const uint8_t *a = (const uint8_t *)p + i0;
        for (int64_t k = 0; k < n; k++) dst[k] = a[k * s];
        break;
    }
    default:
        for (int64_t k = 0; k < n; k++)
            dst[k] = sp_ld_i64(dt, p, i0 + k * s);
    }
}

void sp_st_f32_run(int dt, void *p, int64_t i0, const float *src, int64_t n)
{
    if (dt == SPRUN_DTYPE_FLOAT) {
        memcpy((float *)p + i0, src, (size_t)n * sizeof *src);
    } else if (dt == SPRUN_DTYPE_FLOAT16) {
        uint16_t *y = (uint16_t *)p + i0;
        for (int64_t k = 0; k < n; k++)
            y[k] = sp_f32_to_f16(src[k]);
    } else {
        for (int64_t k = 0; k < n; k++)
            sp_st_f64(dt, p, i0 + k, src[k]);
    }
}

void sp_st_f64_run(int dt, void *p, int64_t i0, const double *src, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        sp_st_f64(dt, p, i0 + k, src[k]);
}

void sp_st_i64_run(int dt, void *p, int64_t i0, const int64_t *src, int64_t n)
{
    switch (dt) {
    case SPRUN_DTYPE_INT64: memcpy((int64_t *)p + i0, src, (size_t)n * sizeof *src); break;
    case SPRUN_DTYPE_INT32: {
        int32_t *y = (int32_t *)p + i0;
        for (int64_t k = 0; k < n; k++) y[k] = (int32_t)(uint32_t)(uint64_t)src[k];
        break;
    }
    case SPRUN_DTYPE_BOOL: {
        uint8_t *y = (uint8_t *)p + i0;
        for (int64_t k = 0; k < n; k++) y[k] = src[k] != 0;
        break;
    }
    default:
        for (int64_t k = 0; k < n; k++)
            sp_st_i64(dt, p, i0 + k, src[k]);
    }
}

int sp_err_datadep(sp_err *err, const sp_graph *g, const sp_node *n, int i)
{
    const sp_value *v = sp_node_in(g, n, i);
    return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input '%s' of node '%s' is not constant",
                      v && v->name ? v->name : "?", n->name ? n->name : "");
}

static int ints_from(const sp_node *n, int i, int dt, const void *data, int64_t cnt, int64_t *vals, int64_t max,
                     int64_t *count, sp_err *err)
{
    if (!sp_dt_is_int(dt))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input %d must be an integer tensor, got %s", SP_LABEL(n),
                          i, sp_dtype_name(dt));
    if (cnt > max)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: input %d has %lld elements, at most %lld supported", SP_LABEL(n),
                          i, (long long)cnt, (long long)max);
    for (int64_t k = 0; k < cnt; k++)
        vals[k] = sp_ld_i64(dt, data, k);
    *count = cnt;
    return 0;
}

int sp_in_ints(const sp_graph *g, const sp_node *n, int i, int64_t *vals, int64_t max, int64_t *count, sp_err *err)
{
    const sp_value *v = sp_node_in(g, n, i);
    *count = -1;
    if (!v)
        return 0;
    const void *d = sp_node_const(g, n, i);
    if (!d && sp_shape_numel(&v->shape) != 0)
        return sp_err_datadep(err, g, n, i);
    int64_t cnt = sp_shape_numel(&v->shape);
    if (cnt < 0)
        return sp_err_datadep(err, g, n, i);
    return ints_from(n, i, v->dtype, d, cnt, vals, max, count, err);
}

int sp_tensor_ints(const sp_node *n, const sp_tensor *t, int64_t *vals, int64_t max, int64_t *count, sp_err *err)
{
    *count = -1;
    if (!t || (!t->data && t->dtype == 0))
        return 0;
    int64_t cnt = sp_shape_numel(&t->shape);
    if (!t->data && cnt != 0)
        return 0;
    return ints_from(n, -1, t->dtype, t->data, cnt, vals, max, count, err);
}

int sp_check_io(const sp_node *n, int min_in, int max_in, int min_out, int max_out, sp_err *err)
{
    int n_in = n->n_in;
    while (n_in > 0 && n->in[n_in - 1] < 0) /* trailing absent optionals */
        n_in--;
    if (n_in < min_in || n_in > max_in) {
        if (min_in == max_in)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects %d inputs, has %d", SP_LABEL(n), min_in,
                              n_in);
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects %d to %d inputs, has %d", SP_LABEL(n), min_in,
                          max_in, n_in);
    }
    for (int i = 0; i < min_in; i++)
        if (n->in[i] < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: required input %d is missing", SP_LABEL(n), i);
    if (n->n_out < min_out || n->n_out > max_out)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: expects %d to %d outputs, has %d", SP_LABEL(n),
                          min_out, max_out, n->n_out);
    /* an output named "" is absent: the first min_out may not be (their
     * kernels write them; constant folding found Size with its one output
     * absent, fuzz_load, 2026-11-27) */
    for (int i = 0; i < min_out; i++)
        if (n->out[i] < 0)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: required output %d is missing", SP_LABEL(n), i);
    return 0;
}

int sp_check_dtype(const sp_graph *g, const sp_node *n, int i, int (*pred)(int), const char *what, sp_err *err)
{
    const sp_value *v = sp_node_in(g, n, i);
    if (!v)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is missing", SP_LABEL(n), i);
    if (!pred(v->dtype))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input '%s' has dtype %s, expected %s", SP_LABEL(n),
                          v->name ? v->name : "?", sp_dtype_name(v->dtype), what);
    return 0;
}

void sp_par_for(const sp_cpu_ctx *ctx, int64_t n, int64_t grain, sp_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (!ctx || ctx->nthreads <= 1 || !ctx->pool || n <= grain) {
        fn(arg, 0, n);
        return;
    }
    sp_parallel_for(ctx, n, grain, fn, arg);
}

int sp_check_numel(const sp_node *n, const sp_shape *s, sp_err *err)
{
    int64_t acc = 1;
    for (int k = 0; k < s->rank; k++)
        if (s->d[k] < 0)
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: negative dim %lld", SP_LABEL(n), (long long)s->d[k]);
    for (int k = 0; k < s->rank; k++)
        if (s->d[k] == 0)
            return 0; /* empty, whatever the other dims say */
    for (int k = 0; k < s->rank; k++) {
        if (__builtin_mul_overflow(acc, s->d[k], &acc) || acc >= (INT64_C(1) << 56)) {
            char b[160];
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: output shape %s is too large", SP_LABEL(n),
                              sp_shape_str(s, b, sizeof b));
        }
    }
    return 0;
}

void sp_outer_inner(const sp_shape *s, int axis, int64_t *outer, int64_t *inner)
{
    int64_t o = 1, in = 1;
    for (int k = 0; k < axis; k++)
        o *= s->d[k];
    for (int k = axis + 1; k < s->rank; k++)
        in *= s->d[k];
    *outer = o;
    *inner = in;
}

void sp_shape_strides(const sp_shape *s, int64_t *st)
{
    int64_t acc = 1;
    for (int k = s->rank - 1; k >= 0; k--) {
        st[k] = acc;
        acc *= s->d[k];
    }
}

void sp_copy_bytes(void *dst, const void *src, size_t nbytes)
{
    if (dst != src && nbytes)
        memmove(dst, src, nbytes);
}
