/*
 * elementwise.c - binary ops with NumPy broadcasting (Add, Sub, Mul, Div,
 * Pow, Mod, Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or,
 * Xor), the variadic Max, Min, Sum, Mean, and the unary Sqrt, Neg, Abs, Exp,
 * Log, Reciprocal, Floor, Ceil, Not, IsNaN, IsInf, Sign.
 *
 * Sqrt: with -fmath-errno (the default) compilers neither vectorise sqrtf
 * nor avoid a libm call for negative arguments, and a guard branch
 * mispredicts on mixed signs (12 ms for BERT-sized random input); float
 * Sqrt therefore uses SSE2's sqrtps where available (baseline on x86-64).
 *
 * Compute domains (see kernels/cpu/tensor_cpu.h): float for FLOAT/FLOAT16,
 * double for DOUBLE, int64 for the integer types and BOOL. FLOAT, DOUBLE and
 * INT64 operands are used in place; the others are converted in chunks of
 * CH elements on the stack (no allocation). Integer arithmetic wraps like
 * the narrow type would (computed through uint64), Div truncates like C and
 * gives 0 for a zero divisor instead of trapping.
 *
 * Broadcasting is coalesced by sp_bcast (kernels/cpu/broadcast.h): a
 * same-shape op is one contiguous run, [B,S,H] + [H] is B*S runs of H, a
 * scalar is a stride-0 operand. Work is split over runs (or over chunks of
 * one long run) with sp_parallel_for.
 */
#include "kernels/cpu/broadcast.h"
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>
#include <tgmath.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
    B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MOD, B_MAX, B_MIN,
    B_EQ, B_LT, B_GT, B_LE, B_GE, B_AND, B_OR, B_XOR,
    U_SQRT, U_NEG, U_ABS, U_EXP, U_LOG, U_RECIP, U_FLOOR, U_CEIL, U_NOT, U_ISNAN, U_ISINF, U_SIGN,
};

enum { DOM_F, DOM_D, DOM_I };

#define CH 256

static int is_cmp(int op) { return op >= B_EQ && op <= B_GE; }
static int is_logic(int op) { return op >= B_AND && op <= B_XOR; }
static int bool_out(int op) { return is_cmp(op) || is_logic(op) || op == U_NOT || op == U_ISNAN || op == U_ISINF; }

typedef struct ew_param {
    int fmod;               /* Mod */
    int inf_pos, inf_neg;   /* IsInf */
} ew_param;

/* ---- kernels: y[i] = EXPR(x = a[i*sa], z = b[i*sb]) ------------------------ */

#define LOOP2(T, TO, EXPR)                                                                      \
    do {                                                                                        \
        TO *y_ = (TO *)yv;                                                                      \
        if (sa && sb) {                                                                         \
            for (int64_t i = 0; i < n; i++) { const T x = a[i], z = b[i]; y_[i] = (TO)(EXPR); } \
        } else if (sa) {                                                                        \
            const T z = b[0];                                                                   \
            for (int64_t i = 0; i < n; i++) { const T x = a[i]; y_[i] = (TO)(EXPR); }           \
        } else if (sb) {                                                                        \
            const T x = a[0];                                                                   \
            for (int64_t i = 0; i < n; i++) { const T z = b[i]; y_[i] = (TO)(EXPR); }          \
        } else {                                                                                \
            const T x = a[0], z = b[0];                                                         \
            const TO v_ = (TO)(EXPR);                                                           \
            for (int64_t i = 0; i < n; i++) y_[i] = v_;                                         \
        }                                                                                       \
    } while (0)

static inline float pymodf(float x, float z)
{
    float r = fmodf(x, z);
    if (r != 0.f && ((r < 0.f) != (z < 0.f)))
        r += z;
    return r;
}

static inline double pymodd(double x, double z)
{
    double r = fmod(x, z);
    if (r != 0.0 && ((r < 0.0) != (z < 0.0)))
        r += z;
    return r;
}

/* The float and double kernels: one body, the math functions picked by
 * type through <tgmath.h> (powf/pow, fmodf/fmod...). */
#define DEF_FLOAT_KERN(NAME, T, PYMOD)                                                              \
    static void NAME(int op, const T *a, int64_t sa, const T *b, int64_t sb, void *yv, int64_t n,  \
                     const ew_param *pp)                                                            \
    {                                                                                               \
        switch (op) {                                                                               \
        case B_ADD: LOOP2(T, T, x + z); break;                                                      \
        case B_SUB: LOOP2(T, T, x - z); break;                                                      \
        case B_MUL: LOOP2(T, T, x * z); break;                                                      \
        case B_DIV: LOOP2(T, T, x / z); break;                                                      \
        case B_POW:                                                                                 \
            if (!sb && b[0] == (T)2)                                                                \
                LOOP2(T, T, ((void)z, x * x));                                                      \
            else if (!sb && b[0] == (T)1)                                                           \
                LOOP2(T, T, ((void)z, x));                                                          \
            else if (!sb && b[0] == (T)0.5)                                                         \
                LOOP2(T, T, ((void)z, x >= 0 ? sqrt(x) : (T)NAN));                                  \
            else                                                                                    \
                LOOP2(T, T, pow(x, z));                                                             \
            break;                                                                                  \
        case B_MOD:                                                                                 \
            if (pp->fmod)                                                                           \
                LOOP2(T, T, fmod(x, z));                                                            \
            else                                                                                    \
                LOOP2(T, T, PYMOD(x, z));                                                           \
            break;                                                                                  \
        case B_MAX: LOOP2(T, T, x > z ? x : (x != x ? x : z)); break;                              \
        case B_MIN: LOOP2(T, T, x < z ? x : (x != x ? x : z)); break;                              \
        case B_EQ: LOOP2(T, uint8_t, x == z); break;                                                \
        case B_LT: LOOP2(T, uint8_t, x < z); break;                                                 \
        case B_GT: LOOP2(T, uint8_t, x > z); break;                                                 \
        case B_LE: LOOP2(T, uint8_t, x <= z); break;                                                \
        case B_GE: LOOP2(T, uint8_t, x >= z); break;                                                \
        default: break;                                                                             \
        }                                                                                           \
    }

DEF_FLOAT_KERN(kern_f, float, pymodf)
DEF_FLOAT_KERN(kern_d, double, pymodd)

#define U64(v) ((uint64_t)(v))
static inline int64_t idiv(int64_t x, int64_t z)
{
    if (z == 0)
        return 0;
    if (z == -1)
        return (int64_t)(0u - U64(x));
    return x / z;
}
static inline int64_t imod(int64_t x, int64_t z, int fm)
{
    if (z == 0 || z == -1)
        return 0;
    int64_t r = x % z;
    if (!fm && r != 0 && ((r < 0) != (z < 0)))
        r += z;
    return r;
}
static inline int64_t ipow(int64_t x, int64_t e)
{
    if (e < 0)
        return x == 1 ? 1 : (x == -1 ? ((e & 1) ? -1 : 1) : 0);
    uint64_t r = 1, b = U64(x);
    while (e) {
        if (e & 1)
            r *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)r;
}

static void kern_i(int op, const int64_t *a, int64_t sa, const int64_t *b, int64_t sb, void *yv, int64_t n,
                   const ew_param *pp)
{
    const int fm = pp->fmod;
    switch (op) {
    case B_ADD: LOOP2(int64_t, int64_t, (int64_t)(U64(x) + U64(z))); break;
    case B_SUB: LOOP2(int64_t, int64_t, (int64_t)(U64(x) - U64(z))); break;
    case B_MUL: LOOP2(int64_t, int64_t, (int64_t)(U64(x) * U64(z))); break;
    case B_DIV: LOOP2(int64_t, int64_t, idiv(x, z)); break;
    case B_POW: LOOP2(int64_t, int64_t, ipow(x, z)); break;
    case B_MOD: LOOP2(int64_t, int64_t, imod(x, z, fm)); break;
    case B_MAX: LOOP2(int64_t, int64_t, x > z ? x : z); break;
    case B_MIN: LOOP2(int64_t, int64_t, x < z ? x : z); break;
    case B_EQ: LOOP2(int64_t, uint8_t, x == z); break;
    case B_LT: LOOP2(int64_t, uint8_t, x < z); break;
    case B_GT: LOOP2(int64_t, uint8_t, x > z); break;
    case B_LE: LOOP2(int64_t, uint8_t, x <= z); break;
    case B_GE: LOOP2(int64_t, uint8_t, x >= z); break;
    case B_AND: LOOP2(int64_t, uint8_t, (x != 0) & (z != 0)); break;
    case B_OR: LOOP2(int64_t, uint8_t, (x != 0) | (z != 0)); break;
    case B_XOR: LOOP2(int64_t, uint8_t, (x != 0) ^ (z != 0)); break;
    default: break;
    }
}

/* Bool inputs of And/Or/Xor are bytes: no conversion needed. */
static void kern_bool(int op, const uint8_t *a, int64_t sa, const uint8_t *b, int64_t sb, void *yv, int64_t n)
{
    switch (op) {
    case B_AND: LOOP2(uint8_t, uint8_t, (x != 0) & (z != 0)); break;
    case B_OR: LOOP2(uint8_t, uint8_t, (x != 0) | (z != 0)); break;
    case B_XOR: LOOP2(uint8_t, uint8_t, (x != 0) ^ (z != 0)); break;
    case B_EQ: LOOP2(uint8_t, uint8_t, (x != 0) == (z != 0)); break;
    default: break;
    }
}

#define LOOP1(T, TO, EXPR)                                                  \
    do {                                                                    \
        TO *y_ = (TO *)yv;                                                  \
        for (int64_t i = 0; i < n; i++) { const T x = a[i]; y_[i] = (TO)(EXPR); } \
    } while (0)

#define DEF_FLOAT_UKERN(NAME, T)                                                                    \
    static void NAME(int op, const T *a, void *yv, int64_t n, const ew_param *pp)                  \
    {                                                                                               \
        switch (op) {                                                                               \
        case U_SQRT: LOOP1(T, T, x >= 0 ? sqrt(x) : (T)NAN); break;                               \
        case U_NEG: LOOP1(T, T, -x); break;                                                         \
        case U_ABS: LOOP1(T, T, fabs(x)); break;                                                    \
        case U_EXP: LOOP1(T, T, exp(x)); break;                                                     \
        case U_LOG: LOOP1(T, T, log(x)); break;                                                     \
        case U_RECIP: LOOP1(T, T, (T)1 / x); break;                                                 \
        case U_FLOOR: LOOP1(T, T, floor(x)); break;                                                 \
        case U_CEIL: LOOP1(T, T, ceil(x)); break;                                                   \
        case U_SIGN: LOOP1(T, T, x > 0 ? (T)1 : (x < 0 ? (T)-1 : x)); break;                       \
        case U_ISNAN: LOOP1(T, uint8_t, x != x); break;                                             \
        case U_ISINF:                                                                               \
            LOOP1(T, uint8_t, (pp->inf_pos && x == (T)INFINITY) || (pp->inf_neg && x == -(T)INFINITY)); \
            break;                                                                                  \
        default: break;                                                                             \
        }                                                                                           \
    }

DEF_FLOAT_UKERN(ukern_f, float)
DEF_FLOAT_UKERN(ukern_d, double)

static void ukern_i(int op, const int64_t *a, void *yv, int64_t n)
{
    switch (op) {
    case U_NEG: LOOP1(int64_t, int64_t, (int64_t)(0u - U64(x))); break;
    case U_ABS: LOOP1(int64_t, int64_t, x < 0 ? (int64_t)(0u - U64(x)) : x); break;
    case U_SIGN: LOOP1(int64_t, int64_t, (x > 0) - (x < 0)); break;
    case U_NOT: LOOP1(int64_t, uint8_t, x == 0); break;
    default: break;
    }
}

/* ---- drivers ---------------------------------------------------------------- */

static int dom_of(int dt)
{
    if (dt == SPRUN_DTYPE_FLOAT || dt == SPRUN_DTYPE_FLOAT16)
        return DOM_F;
    if (dt == SPRUN_DTYPE_DOUBLE)
        return DOM_D;
    return DOM_I;
}

typedef struct ew_job {
    int op, dom;
    int adt, bdt, ydt;
    const void *a, *b;
    void *y;
    sp_bcast bc;
    int64_t chunk, nchunk; /* the inner run is cut into nchunk pieces of chunk */
    ew_param pp;
} ew_job;

static int native(int dom, int dt)
{
    return (dom == DOM_F && dt == SPRUN_DTYPE_FLOAT) || (dom == DOM_D && dt == SPRUN_DTYPE_DOUBLE) ||
           (dom == DOM_I && dt == SPRUN_DTYPE_INT64);
}

/* One run: y[oy .. oy+n) = op(a[oa + i*sa], b[ob + i*sb]). */
static void bin_seg(const ew_job *j, int64_t oa, int64_t sa, int64_t ob, int64_t sb, int64_t oy, int64_t n)
{
    const int op = j->op, dom = j->dom;
    const int bout = bool_out(op);
    if (j->adt == SPRUN_DTYPE_BOOL && j->bdt == SPRUN_DTYPE_BOOL && (is_logic(op) || op == B_EQ)) {
        kern_bool(op, (const uint8_t *)j->a + oa, sa, (const uint8_t *)j->b + ob, sb, (uint8_t *)j->y + oy, n);
        return;
    }
    const int direct = native(dom, j->adt) && native(dom, j->bdt) && (bout || native(dom, j->ydt));
    if (direct) {
        const size_t es = dom == DOM_F ? 4 : 8;
        const char *pa = (const char *)j->a + (size_t)oa * es, *pb = (const char *)j->b + (size_t)ob * es;
        void *py = bout ? (void *)((uint8_t *)j->y + oy) : (void *)((char *)j->y + (size_t)oy * es);
        switch (dom) {
        case DOM_F: kern_f(op, (const float *)pa, sa, (const float *)pb, sb, py, n, &j->pp); break;
        case DOM_D: kern_d(op, (const double *)pa, sa, (const double *)pb, sb, py, n, &j->pp); break;
        default: kern_i(op, (const int64_t *)pa, sa, (const int64_t *)pb, sb, py, n, &j->pp); break;
        }
        return;
    }
    union { float f[CH]; double d[CH]; int64_t i[CH]; } A, B, Y;
    for (int64_t k = 0; k < n; k += CH) {
        const int64_t c = n - k < CH ? n - k : CH;
        const int64_t ca = sa ? c : 1, cb = sb ? c : 1;
        void *py = bout ? (void *)((uint8_t *)j->y + oy + k) : (void *)&Y;
        switch (dom) {
        case DOM_F:
            sp_ld_f32_run(j->adt, j->a, oa + k * sa, 1, A.f, ca);
            sp_ld_f32_run(j->bdt, j->b, ob + k * sb, 1, B.f, cb);
            kern_f(op, A.f, sa, B.f, sb, py, c, &j->pp);
            if (!bout)
                sp_st_f32_run(j->ydt, j->y, oy + k, Y.f, c);
            break;
        case DOM_D:
            sp_ld_f64_run(j->adt, j->a, oa + k * sa, 1, A.d, ca);
            sp_ld_f64_run(j->bdt, j->b, ob + k * sb, 1, B.d, cb);
            kern_d(op, A.d, sa, B.d, sb, py, c, &j->pp);
            if (!bout)
                sp_st_f64_run(j->ydt, j->y, oy + k, Y.d, c);
            break;
        default:
            sp_ld_i64_run(j->adt, j->a, oa + k * sa, 1, A.i, ca);
            sp_ld_i64_run(j->bdt, j->b, ob + k * sb, 1, B.i, cb);
            kern_i(op, A.i, sa, B.i, sb, py, c, &j->pp);
            if (!bout)
                sp_st_i64_run(j->ydt, j->y, oy + k, Y.i, c);
            break;
        }
    }
}

static void bin_range(void *arg, int64_t b, int64_t e)
{
    const ew_job *j = arg;
    const int64_t inner = j->bc.inner;
    const int64_t sa = sp_bcast_inner_stride(&j->bc, 0), sb = sp_bcast_inner_stride(&j->bc, 1);
    sp_bcast_pos p;
    if (j->nchunk == 1) {
        sp_bcast_seek(&j->bc, b, &p);
        for (int64_t row = b; row < e; row++) {
            bin_seg(j, p.off[0], sa, p.off[1], sb, row * inner, inner);
            sp_bcast_next(&j->bc, &p);
        }
        return;
    }
    for (int64_t u = b; u < e; u++) {
        const int64_t row = u / j->nchunk, c0 = (u % j->nchunk) * j->chunk;
        const int64_t c = inner - c0 < j->chunk ? inner - c0 : j->chunk;
        sp_bcast_seek(&j->bc, row, &p);
        bin_seg(j, p.off[0] + c0 * sa, sa, p.off[1] + c0 * sb, sb, row * inner + c0, c);
    }
}

#define PAR_GRAIN 32768

static int bin_exec(int op, const ew_param *pp, const sp_tensor *a, const sp_tensor *b, sp_tensor *y,
                    const sp_cpu_ctx *ctx, sp_err *err)
{
    ew_job j = {.op = op, .adt = a->dtype, .bdt = b->dtype, .ydt = y->dtype, .a = a->data, .b = b->data,
                .y = y->data, .pp = *pp};
    /* Pow's exponent may have another dtype: compute in the base's domain,
     * except an integer base with a float exponent (pow in double). */
    j.dom = dom_of(a->dtype);
    if (op == B_POW && j.dom == DOM_I && sp_dt_is_float(b->dtype))
        j.dom = DOM_D;
    const sp_shape *ins[2] = {&a->shape, &b->shape};
    int rc = sp_bcast_init(&j.bc, &y->shape, ins, 2, err);
    if (rc)
        return rc;
    if (j.bc.total == 0)
        return 0;
    const int64_t inner = j.bc.inner;
    if (inner >= 2 * PAR_GRAIN && ctx && ctx->nthreads > 1) {
        j.chunk = PAR_GRAIN;
        j.nchunk = (inner + PAR_GRAIN - 1) / PAR_GRAIN;
        sp_par_for(ctx, j.bc.outer * j.nchunk, 1, bin_range, &j);
    } else {
        j.chunk = inner;
        j.nchunk = 1;
        sp_par_for(ctx, j.bc.outer, 1 + PAR_GRAIN / inner, bin_range, &j);
    }
    return 0;
}

/* Float Sqrt: vector square roots (no errno, no branches). */
static void sqrt_f32(const float *a, float *y, int64_t n)
{
    int64_t i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(y + i, _mm_sqrt_ps(_mm_loadu_ps(a + i)));
#endif
    for (; i < n; i++)
        y[i] = a[i] >= 0.f ? sqrtf(a[i]) : NAN;
}

typedef struct un_job {
    int op, dom, xdt, ydt;
    const void *x;
    void *y;
    ew_param pp;
} un_job;

static void un_range(void *arg, int64_t b, int64_t e)
{
    const un_job *j = arg;
    const int bout = bool_out(j->op);
    if (j->xdt == SPRUN_DTYPE_BOOL && j->op == U_NOT) {
        const uint8_t *x = j->x;
        uint8_t *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = !x[i];
        return;
    }
    if (native(j->dom, j->xdt) && (bout || native(j->dom, j->ydt))) {
        const size_t es = j->dom == DOM_F ? 4 : 8;
        const void *px = (const char *)j->x + (size_t)b * es;
        void *py = bout ? (void *)((uint8_t *)j->y + b) : (void *)((char *)j->y + (size_t)b * es);
        if (j->op == U_SQRT && j->dom == DOM_F) {
            sqrt_f32(px, py, e - b);
            return;
        }
        switch (j->dom) {
        case DOM_F: ukern_f(j->op, px, py, e - b, &j->pp); break;
        case DOM_D: ukern_d(j->op, px, py, e - b, &j->pp); break;
        default: ukern_i(j->op, px, py, e - b); break;
        }
        return;
    }
    union { float f[CH]; double d[CH]; int64_t i[CH]; } X, Y;
    for (int64_t k = b; k < e; k += CH) {
        const int64_t c = e - k < CH ? e - k : CH;
        void *py = bout ? (void *)((uint8_t *)j->y + k) : (void *)&Y;
        switch (j->dom) {
        case DOM_F:
            sp_ld_f32_run(j->xdt, j->x, k, 1, X.f, c);
            if (j->op == U_SQRT)
                sqrt_f32(X.f, Y.f, c);
            else
                ukern_f(j->op, X.f, py, c, &j->pp);
            if (!bout)
                sp_st_f32_run(j->ydt, j->y, k, Y.f, c);
            break;
        case DOM_D:
            sp_ld_f64_run(j->xdt, j->x, k, 1, X.d, c);
            ukern_d(j->op, X.d, py, c, &j->pp);
            if (!bout)
                sp_st_f64_run(j->ydt, j->y, k, Y.d, c);
            break;
        default:
            sp_ld_i64_run(j->xdt, j->x, k, 1, X.i, c);
            ukern_i(j->op, X.i, py, c);
            if (!bout)
                sp_st_i64_run(j->ydt, j->y, k, Y.i, c);
            break;
        }
    }
}

/* ---- op definitions ------------------------------------------------------------ */

static int op_code(const sp_node *n)
{
    static const struct { const char *name; int op; } tab[] = {
        {"Add", B_ADD}, {"Sub", B_SUB}, {"Mul", B_MUL}, {"Div", B_DIV}, {"Pow", B_POW}, {"Mod", B_MOD},
        {"Max", B_MAX}, {"Min", B_MIN}, {"Sum", B_ADD}, {"Mean", B_ADD},
        {"Equal", B_EQ}, {"Less", B_LT}, {"Greater", B_GT}, {"LessOrEqual", B_LE}, {"GreaterOrEqual", B_GE},
        {"And", B_AND}, {"Or", B_OR}, {"Xor", B_XOR},
        {"Sqrt", U_SQRT}, {"Neg", U_NEG}, {"Abs", U_ABS}, {"Exp", U_EXP}, {"Log", U_LOG},
        {"Reciprocal", U_RECIP}, {"Floor", U_FLOOR}, {"Ceil", U_CEIL}, {"Not", U_NOT}, {"IsNaN", U_ISNAN},
        {"IsInf", U_ISINF}, {"Sign", U_SIGN},
    };
    for (size_t k = 0; k < sizeof tab / sizeof tab[0]; k++)
        if (strcmp(tab[k].name, n->op_type) == 0)
            return tab[k].op;
    return -1;
}

static int is_variadic(const sp_node *n)
{
    const char *t = n->op_type;
    return !strcmp(t, "Max") || !strcmp(t, "Min") || !strcmp(t, "Sum") || !strcmp(t, "Mean");
}

static void get_param(const sp_node *n, ew_param *pp)
{
    pp->fmod = (int)sp_attr_int(n, "fmod", 0);
    pp->inf_pos = (int)sp_attr_int(n, "detect_positive", 1);
    pp->inf_neg = (int)sp_attr_int(n, "detect_negative", 1);
}

static int ew_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    const int op = op_code(n);
    int rc;
    if (is_variadic(n))
        rc = sp_check_io(n, 1, 1 << 16, 1, 1, err);
    else if (op >= U_SQRT)
        rc = sp_check_io(n, 1, 1, 1, 1, err);
    else
        rc = sp_check_io(n, 2, 2, 1, 1, err);
    if (rc)
        return rc;
    if (is_variadic(n))
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] < 0)
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is missing", SP_LABEL(n), i);
    if (op == B_MOD) {
        int64_t fm = sp_attr_int(n, "fmod", 0);
        if (fm != 0 && fm != 1)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'fmod' must be 0 or 1, got %lld",
                              SP_LABEL(n), (long long)fm);
    }
    if (sp_attr_find(n, "broadcast") && sp_attr_int(n, "broadcast", 0) && sp_attr_find(n, "axis"))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: legacy attribute 'axis' with broadcast=1 (opset < 7) is "
                          "not supported", SP_LABEL(n));
    return 0;
}

static int is_bool_dt(int dt) { return dt == SPRUN_DTYPE_BOOL; }
static int numeric_or_bool(int dt) { return sp_dt_supported(dt); }

static int ew_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const int op = op_code(n);
    const sp_value *x = sp_node_in(g, n, 0);
    int rc;
    int (*pred)(int) = sp_dt_numeric;
    const char *what = "a numeric tensor";
    if (is_logic(op) || op == U_NOT) {
        pred = is_bool_dt;
        what = "bool";
    } else if (op == B_EQ) {
        pred = numeric_or_bool;
        what = "a numeric or bool tensor";
    } else if (op == U_SQRT || op == U_EXP || op == U_LOG || op == U_RECIP || op == U_FLOOR || op == U_CEIL ||
               op == U_ISNAN || op == U_ISINF || !strcmp(n->op_type, "Mean")) {
        pred = sp_dt_is_float;
        what = "float, float16 or double";
    }
    if (op >= U_SQRT) {
        if ((rc = sp_check_dtype(g, n, 0, pred, what, err)))
            return rc;
        sp_node_set_out(g, n, 0, bool_out(op) ? SPRUN_DTYPE_BOOL : x->dtype, &x->shape);
        return 0;
    }
    sp_shape out = x->shape;
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if ((rc = sp_check_dtype(g, n, i, pred, what, err)))
            return rc;
        if (op != B_POW && v->dtype != x->dtype)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: input %d is %s, input 0 is %s", SP_LABEL(n), i,
                              sp_dtype_name(v->dtype), sp_dtype_name(x->dtype));
        if (i > 0) {
            sp_shape t;
            if ((rc = sp_shape_broadcast(&out, &v->shape, &t, err)))
                return sp_err_prefix(err, "%s", SP_LABEL(n));
            out = t;
        }
    }
    sp_node_set_out(g, n, 0, bool_out(op) ? SPRUN_DTYPE_BOOL : x->dtype, &out);
    return 0;
}

typedef struct scale_job {
    int dt;
    void *y;
    int cnt; /* Mean: divide the sum by the input count */
} scale_job;

static void scale_range(void *arg, int64_t b, int64_t e)
{
    const scale_job *j = arg;
    float buf[CH];
    if (j->dt == SPRUN_DTYPE_DOUBLE) {
        double *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] /= (double)j->cnt;
        return;
    }
    for (int64_t k = b; k < e; k += CH) {
        int64_t c = e - k < CH ? e - k : CH;
        sp_ld_f32_run(j->dt, j->y, k, 1, buf, c);
        for (int64_t i = 0; i < c; i++)
            buf[i] /= (float)j->cnt;
        sp_st_f32_run(j->dt, j->y, k, buf, c);
    }
}

static int ew_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_out;
    const int op = op_code(n);
    ew_param pp;
    get_param(n, &pp);
    if (op >= U_SQRT) {
        un_job j = {.op = op, .dom = dom_of(in[0].dtype), .xdt = in[0].dtype, .ydt = out[0].dtype,
                    .x = in[0].data, .y = out[0].data, .pp = pp};
        sp_par_for(ctx, sp_shape_numel(&out[0].shape), PAR_GRAIN, un_range, &j);
        return 0;
    }
    int rc;
    if (n_in == 2)
        rc = bin_exec(op, &pp, &in[0], &in[1], &out[0], ctx, err);
    else {
        /* variadic: y = in0 broadcast, then y = op(y, in_k) in place */
        rc = sp_bcast_copy(&in[0].shape, in[0].data, &out[0].shape, out[0].data, sp_dtype_size(in[0].dtype), err);
        for (int i = 1; !rc && i < n_in; i++)
            rc = bin_exec(op, &pp, &out[0], &in[i], &out[0], ctx, err);
    }
    if (!rc && !strcmp(n->op_type, "Mean") && n_in > 1) {
        scale_job s = {.dt = out[0].dtype, .y = out[0].data, .cnt = n_in};
        sp_par_for(ctx, sp_shape_numel(&out[0].shape), PAR_GRAIN, scale_range, &s);
    }
    return rc;
}

#define EW_OP(var, name, since)                                                                     \
    static const sp_op_def var = {.op_type = name, .since_opset = since, .flags = 0, .check = ew_check, \
                                  .infer = ew_infer, .cpu_run = ew_run}

EW_OP(op_add, "Add", 7);
EW_OP(op_sub, "Sub", 7);
EW_OP(op_mul, "Mul", 7);
EW_OP(op_div, "Div", 7);
EW_OP(op_pow, "Pow", 7);
EW_OP(op_mod, "Mod", 10);
EW_OP(op_max, "Max", 8);
EW_OP(op_min, "Min", 8);
EW_OP(op_sum, "Sum", 8);
EW_OP(op_mean, "Mean", 8);
EW_OP(op_equal, "Equal", 7);
EW_OP(op_less, "Less", 7);
EW_OP(op_greater, "Greater", 7);
EW_OP(op_le, "LessOrEqual", 12);
EW_OP(op_ge, "GreaterOrEqual", 12);
EW_OP(op_and, "And", 7);
EW_OP(op_or, "Or", 7);
EW_OP(op_xor, "Xor", 7);
EW_OP(op_sqrt, "Sqrt", 6);
EW_OP(op_neg, "Neg", 6);
EW_OP(op_abs, "Abs", 6);
EW_OP(op_exp, "Exp", 6);
EW_OP(op_log, "Log", 6);
EW_OP(op_recip, "Reciprocal", 6);
EW_OP(op_floor, "Floor", 6);
EW_OP(op_ceil, "Ceil", 6);
EW_OP(op_not, "Not", 1);
EW_OP(op_isnan, "IsNaN", 9);
EW_OP(op_isinf, "IsInf", 10);
EW_OP(op_sign, "Sign", 9);

const sp_op_def *const sp_ops_elementwise[] = {
    &op_add, &op_sub, &op_mul, &op_div, &op_pow, &op_mod, &op_max, &op_min, &op_sum, &op_mean,
    &op_equal, &op_less, &op_greater, &op_le, &op_ge, &op_and, &op_or, &op_xor,
    &op_sqrt, &op_neg, &op_abs, &op_exp, &op_log, &op_recip, &op_floor, &op_ceil, &op_not,
    &op_isnan, &op_isinf, &op_sign, NULL,
};
