/*
 * unary_math.c - elementwise math not covered by elementwise.c/activation.c:
 * Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh,
 * Round (half to even), Shrink (lambd, bias) and PRelu (slope broadcast
 * unidirectionally to X).
 *
 * FLOAT computes in fp32 (libm); FLOAT16 and DOUBLE go through a double
 * chunk on the stack. Shrink and PRelu also take integer tensors (computed
 * in double, stored truncated). Large tensors are split over the pool; in
 * and out may share one buffer.
 */
#include "kernels/cpu/broadcast.h"
#include "kernels/cpu/tensor_cpu.h"

#include <math.h>
#include <string.h>

enum um_kind { M_SIN, M_COS, M_TAN, M_ASIN, M_ACOS, M_ATAN, M_SINH, M_COSH, M_ASINH, M_ACOSH, M_ATANH, M_ROUND,
               M_SHRINK };

static const struct {
    const char *name;
    int kind;
} ums[] = {
    {"Sin", M_SIN},     {"Cos", M_COS},     {"Tan", M_TAN},     {"Asin", M_ASIN},   {"Acos", M_ACOS},
    {"Atan", M_ATAN},   {"Sinh", M_SINH},   {"Cosh", M_COSH},   {"Asinh", M_ASINH}, {"Acosh", M_ACOSH},
    {"Atanh", M_ATANH}, {"Round", M_ROUND}, {"Shrink", M_SHRINK},
};
#define N_UMS (int)(sizeof ums / sizeof ums[0])

static int um_kind(const sp_node *n)
{
    for (int i = 0; i < N_UMS; i++)
        if (strcmp(ums[i].name, n->op_type) == 0)
            return ums[i].kind;
    return -1;
}

static int um_dt(int dt) { return sp_dt_is_float(dt); }
static int um_dt_int(int dt) { return sp_dt_numeric(dt) && dt != SPRUN_DTYPE_UINT64; }

static int um_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 1, 1, 1, 1, err);
}

static int um_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const int k = um_kind(n);
    int rc = k == M_SHRINK ? sp_check_dtype(g, n, 0, um_dt_int, "a numeric tensor", err)
                           : sp_check_dtype(g, n, 0, um_dt, "a float tensor", err);
    if (rc)
        return rc;
    const sp_value *x = sp_node_in(g, n, 0);
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

static inline double um_one(int kind, double v, double lambd, double bias)
{
    switch (kind) {
    case M_SIN: return sin(v);
    case M_COS: return cos(v);
    case M_TAN: return tan(v);
    case M_ASIN: return asin(v);
    case M_ACOS: return acos(v);
    case M_ATAN: return atan(v);
    case M_SINH: return sinh(v);
    case M_COSH: return cosh(v);
    case M_ASINH: return asinh(v);
    case M_ACOSH: return acosh(v);
    case M_ATANH: return atanh(v);
    case M_ROUND: return nearbyint(v);
    default: return v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0);
    }
}

static void um_f32(int kind, const float *x, float *y, int64_t n, float lambd, float bias)
{
    switch (kind) {
    case M_SIN: for (int64_t i = 0; i < n; i++) y[i] = sinf(x[i]); break;
    case M_COS: for (int64_t i = 0; i < n; i++) y[i] = cosf(x[i]); break;
    case M_TAN: for (int64_t i = 0; i < n; i++) y[i] = tanf(x[i]); break;
    case M_ASIN: for (int64_t i = 0; i < n; i++) y[i] = asinf(x[i]); break;
    case M_ACOS: for (int64_t i = 0; i < n; i++) y[i] = acosf(x[i]); break;
    case M_ATAN: for (int64_t i = 0; i < n; i++) y[i] = atanf(x[i]); break;
    case M_SINH: for (int64_t i = 0; i < n; i++) y[i] = sinhf(x[i]); break;
    case M_COSH: for (int64_t i = 0; i < n; i++) y[i] = coshf(x[i]); break;
    case M_ASINH: for (int64_t i = 0; i < n; i++) y[i] = asinhf(x[i]); break;
    case M_ACOSH: for (int64_t i = 0; i < n; i++) y[i] = acoshf(x[i]); break;
    case M_ATANH: for (int64_t i = 0; i < n; i++) y[i] = atanhf(x[i]); break;
    case M_ROUND: for (int64_t i = 0; i < n; i++) y[i] = nearbyintf(x[i]); break;
    default:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = v < -lambd ? v + bias : (v > lambd ? v - bias : 0.f);
        }
        break;
    }
}

typedef struct um_args {
    int kind, dtype;
    const void *x;
    void *y;
    float lambd, bias;
} um_args;

#define UM_CHUNK 512

static void um_range(void *arg, int64_t b, int64_t e)
{
    const um_args *a = arg;
    if (a->dtype == SPRUN_DTYPE_FLOAT) {
        um_f32(a->kind, (const float *)a->x + b, (float *)a->y + b, e - b, a->lambd, a->bias);
        return;
    }
    double buf[UM_CHUNK];
    for (int64_t c0 = b; c0 < e; c0 += UM_CHUNK) {
        const int64_t len = e - c0 < UM_CHUNK ? e - c0 : UM_CHUNK;
        sp_ld_f64_run(a->dtype, a->x, c0, 1, buf, len);
        for (int64_t i = 0; i < len; i++)
            buf[i] = um_one(a->kind, buf[i], a->lambd, a->bias);
        /* integer outputs through sp_st_f64's conversion, defined for every
         * value (a bare cast of an out-of-range double is undefined) */
        sp_st_f64_run(a->dtype, a->y, c0, buf, len);
    }
}

static int um_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out; (void)err;
    um_args a = {um_kind(n), in[0].dtype, in[0].data, out[0].data, sp_attr_float(n, "lambd", 0.5f),
                 sp_attr_float(n, "bias", 0.f)};
    const int64_t cnt = sp_shape_numel(&in[0].shape);
    if (cnt > 0)
        sp_par_for(ctx, cnt, 16384, um_range, &a);
    return 0;
}

#define UM_DEF(var, name, since)                                                                                   \
    static const sp_op_def var = {                                                                                 \
        .op_type = name, .since_opset = since, .flags = 0,                                                         \
        .check = um_check, .infer = um_infer, .cpu_run = um_run,                                                   \
    }

UM_DEF(op_sin, "Sin", 7);
UM_DEF(op_cos, "Cos", 7);
UM_DEF(op_tan, "Tan", 7);
UM_DEF(op_asin, "Asin", 7);
UM_DEF(op_acos, "Acos", 7);
UM_DEF(op_atan, "Atan", 7);
UM_DEF(op_sinh, "Sinh", 9);
UM_DEF(op_cosh, "Cosh", 9);
UM_DEF(op_asinh, "Asinh", 9);
UM_DEF(op_acosh, "Acosh", 9);
UM_DEF(op_atanh, "Atanh", 9);
UM_DEF(op_round, "Round", 11);
UM_DEF(op_shrink, "Shrink", 9);

/* ---- PRelu ----------------------------------------------------------------- */

static int prelu_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 2, 2, 1, 1, err);
}

static int prelu_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, um_dt_int, "a numeric tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, um_dt_int, "a numeric tensor", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0), *s = sp_node_in(g, n, 1);
    char s1[128], s2[128];
    if (s->dtype != x->dtype)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: slope dtype %s differs from X %s", SP_LABEL(n),
                          sp_dtype_name(s->dtype), sp_dtype_name(x->dtype));
    sp_shape o;
    if ((rc = sp_shape_broadcast(&x->shape, &s->shape, &o, err)))
        return rc;
    if (!sp_shape_equal(&o, &x->shape))
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: slope %s does not broadcast to X %s", SP_LABEL(n),
                          sp_shape_str(&s->shape, s1, sizeof s1), sp_shape_str(&x->shape, s2, sizeof s2));
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

typedef struct prelu_job {
    sp_bcast b;
    int dt;
    const void *x, *s;
    void *y;
} prelu_job;

static void prelu_range(void *arg, int64_t b, int64_t e)
{
    prelu_job *j = arg;
    sp_bcast_pos p;
    sp_bcast_seek(&j->b, b, &p);
    const int64_t inner = j->b.inner, s0 = sp_bcast_inner_stride(&j->b, 0), s1 = sp_bcast_inner_stride(&j->b, 1);
    for (int64_t row = b; row < e; row++) {
        const int64_t yo = row * inner;
        if (j->dt == SPRUN_DTYPE_FLOAT) {
            const float *x = (const float *)j->x + p.off[0], *s = (const float *)j->s + p.off[1];
            float *y = (float *)j->y + yo;
            for (int64_t i = 0; i < inner; i++) {
                float v = x[i * s0];
                y[i] = v < 0.f ? v * s[i * s1] : v;
            }
        } else {
            for (int64_t i = 0; i < inner; i++) {
                double v = sp_ld_f64(j->dt, j->x, p.off[0] + i * s0);
                double r = v < 0.0 ? v * sp_ld_f64(j->dt, j->s, p.off[1] + i * s1) : v;
                sp_st_f64(j->dt, j->y, yo + i, r); /* defined for out-of-range integers too */
            }
        }
        sp_bcast_next(&j->b, &p);
    }
}

static int prelu_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out,
                     const sp_cpu_ctx *ctx, sp_err *err)
{
    (void)n; (void)n_in; (void)n_out;
    prelu_job j = {.dt = in[0].dtype, .x = in[0].data, .s = in[1].data, .y = out[0].data};
    const sp_shape *ins[2] = {&in[0].shape, &in[1].shape};
    int rc = sp_bcast_init(&j.b, &out[0].shape, ins, 2, err);
    if (rc)
        return rc;
    if (j.b.total == 0)
        return 0;
    sp_par_for(ctx, j.b.outer, 1 + 32768 / (j.b.inner + 1), prelu_range, &j);
    return 0;
}

static const sp_op_def op_prelu = {
    .op_type = "PRelu", .since_opset = 7, .flags = 0,
    .check = prelu_check, .infer = prelu_infer, .cpu_run = prelu_run,
};

const sp_op_def *const sp_ops_unary_math[] = {&op_sin,   &op_cos,   &op_tan,   &op_asin,  &op_acos,
                                              &op_atan,  &op_sinh,  &op_cosh,  &op_asinh, &op_acosh,
                                              &op_atanh, &op_round, &op_shrink, &op_prelu, NULL};
