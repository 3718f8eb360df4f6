/*
 * test_ops_tensor.c - the CPU tensor ops (elementwise, reduce, shape ops,
 * transpose, concat/split, slice, gather, cast, where, constant, trilu)
 * through the constant-folding path sp_node_eval_const: one-node graphs on
 * random non-zero data, compared with naive reference loops or hand-computed
 * results; plus the data-dependent-shape and bad-attribute errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ops/op.h"
#include "runtime/fold.h"
#include "runtime/graph.h"
#include "runtime/half.h"
#include "runtime/threadpool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t rng_u32(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Non-zero in +-[0.25, 2.25). */
static float rnd(void)
{
    float v = 0.25f + 2.0f * (float)(rng_u32() / 4294967296.0);
    return (rng_u32() & 1) ? v : -v;
}

static float *rnd_f32(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = rnd();
    return p;
}

static sp_shape S(int rank, ...)
{
    sp_shape s = {.rank = rank};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        s.d[i] = va_arg(ap, int64_t);
    va_end(ap);
    return s;
}
#define SH(...) S(__VA_ARGS__)
#define D(x) ((int64_t)(x))

typedef struct tg {
    sp_graph g;
    sp_err err;
    int node;
    int out[8];
    int n_out;
} tg;

static void tg_init(tg *t, int64_t opset)
{
    memset(t, 0, sizeof *t);
    sp_graph_init(&t->g);
    t->g.opset = opset;
    t->node = -1;
}

/* A constant value holding a copy of data. */
static int cval(tg *t, const char *name, int dtype, sp_shape s, const void *data)
{
    int v = sp_graph_value(&t->g, name, &t->err);
    assert_true(v >= 0);
    int64_t n = sp_shape_numel(&s);
    size_t nb = (size_t)n * sp_dtype_size(dtype);
    void *p = malloc(nb ? nb : 1);
    assert_non_null(p);
    if (nb)
        memcpy(p, data, nb);
    sp_value_set_const(&t->g.values[v], dtype, &s, p, nb, 1);
    return v;
}

/* A non-constant graph input (for the data-dependent errors). */
static int ival(tg *t, const char *name, int dtype, sp_shape s)
{
    int v = sp_graph_value(&t->g, name, &t->err);
    assert_true(v >= 0);
    t->g.values[v].kind = SP_VAL_INPUT;
    t->g.values[v].dtype = dtype;
    t->g.values[v].shape = s;
    return v;
}

static int node(tg *t, const char *op, const int *in, int n_in, int n_out)
{
    char nm[32];
    for (int i = 0; i < n_out; i++) {
        snprintf(nm, sizeof nm, "y%d", i);
        t->out[i] = sp_graph_value(&t->g, nm, &t->err);
        assert_true(t->out[i] >= 0);
    }
    t->n_out = n_out;
    t->node = sp_graph_add_node(&t->g, "n", op, "", in, n_in, t->out, n_out, &t->err);
    assert_true(t->node >= 0);
    assert_non_null(t->g.nodes[t->node].op);
    return t->node;
}

static sp_node *nd(tg *t) { return &t->g.nodes[t->node]; }
static int eval(tg *t) { return sp_node_eval_const(&t->g, t->node, 1, &t->err); }
static void eval_ok(tg *t)
{
    int rc = eval(t);
    if (rc)
        fail_msg("%s", t->err.msg);
}
static sp_value *outv(tg *t, int i) { return &t->g.values[t->out[i]]; }
static void *outd(tg *t, int i) { return outv(t, i)->data; }
static void tg_free(tg *t) { sp_graph_free(&t->g); }

static void assert_shape(const sp_value *v, sp_shape s)
{
    char a[128], b[128];
    if (!sp_shape_equal(&v->shape, &s))
        fail_msg("shape %s, expected %s", sp_shape_str(&v->shape, a, sizeof a), sp_shape_str(&s, b, sizeof b));
}

static void assert_close_f32(const float *got, const float *ref, int64_t n, float tol)
{
    for (int64_t i = 0; i < n; i++) {
        float d = fabsf(got[i] - ref[i]);
        if (got[i] == ref[i])
            continue;
        if (!(d <= tol * (1.f + fabsf(ref[i]))) && !(isnan(got[i]) && isnan(ref[i])))
            fail_msg("element %lld: got %g, expected %g", (long long)i, got[i], ref[i]);
    }
}

static void assert_eq_i64(const int64_t *got, const int64_t *ref, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (got[i] != ref[i])
            fail_msg("element %lld: got %lld, expected %lld", (long long)i, (long long)got[i], (long long)ref[i]);
}

/* Index of element `lin` of shape out, broadcast into shape in. */
static int64_t bidx(const sp_shape *out, const sp_shape *in, int64_t lin)
{
    int64_t off = 0, mul = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t i = lin % out->d[d];
        lin /= out->d[d];
        int kd = d - (out->rank - in->rank);
        if (kd >= 0) {
            if (in->d[kd] != 1)
                off += i * mul;
            mul *= in->d[kd];
        }
    }
    return off;
}

static void assert_err(tg *t, int code, const char *substr)
{
    int rc = eval(t);
    if (code == 0 && rc == 0)
        return;
    if (rc != code)
        fail_msg("rc %d (%s), expected %d", rc, t->err.msg, code);
    if (substr && !strstr(t->err.msg, substr))
        fail_msg("message '%s' lacks '%s'", t->err.msg, substr);
}

/* ------------------------------------------------------------------------ */
/* Elementwise                                                               */
/* ------------------------------------------------------------------------ */

static float ref_bin(const char *op, float a, float b)
{
    if (!strcmp(op, "Add")) return a + b;
    if (!strcmp(op, "Sub")) return a - b;
    if (!strcmp(op, "Mul")) return a * b;
    if (!strcmp(op, "Div")) return a / b;
    if (!strcmp(op, "Pow")) return powf(fabsf(a), b);
    return 0;
}

static void check_binary_f32(const char *op, sp_shape sa, sp_shape sb, sp_shape so)
{
    tg t;
    tg_init(&t, 17);
    float *a = rnd_f32(sp_shape_numel(&sa)), *b = rnd_f32(sp_shape_numel(&sb));
    if (!strcmp(op, "Pow"))
        for (int64_t i = 0; i < sp_shape_numel(&sa); i++)
            a[i] = fabsf(a[i]);
    int in[2] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, sa, a), cval(&t, "b", SPRUN_DTYPE_FLOAT, sb, b)};
    node(&t, op, in, 2, 1);
    eval_ok(&t);
    assert_shape(outv(&t, 0), so);
    const int64_t n = sp_shape_numel(&so);
    float *ref = malloc((size_t)n * sizeof *ref);
    for (int64_t i = 0; i < n; i++)
        ref[i] = ref_bin(op, a[bidx(&so, &sa, i)], b[bidx(&so, &sb, i)]);
    assert_close_f32(outd(&t, 0), ref, n, 1e-6f);
    free(ref);
    free(a);
    free(b);
    tg_free(&t);
}

static void test_binary_broadcast(void **state)
{
    (void)state;
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow"};
    for (size_t k = 0; k < 5; k++) {
        check_binary_f32(ops[k], SH(3, D(2), D(3), D(4)), SH(2, D(3), D(1)), SH(3, D(2), D(3), D(4)));
        check_binary_f32(ops[k], SH(3, D(4), D(5), D(6)), SH(1, D(6)), SH(3, D(4), D(5), D(6)));
        check_binary_f32(ops[k], SH(1, D(7)), SH(0), SH(1, D(7)));
        check_binary_f32(ops[k], SH(0), SH(2, D(3), D(5)), SH(2, D(3), D(5)));
        check_binary_f32(ops[k], SH(4, D(2), D(3), D(4), D(5)), SH(3, D(3), D(1), D(1)),
                         SH(4, D(2), D(3), D(4), D(5)));
        check_binary_f32(ops[k], SH(3, D(3), D(1), D(5)), SH(2, D(4), D(1)), SH(3, D(3), D(4), D(5)));
        check_binary_f32(ops[k], SH(1, D(100003)), SH(1, D(100003)), SH(1, D(100003)));
    }
}

static void test_binary_shape_error(void **state)
{
    (void)state;
    tg t;
    tg_init(&t, 17);
    float a[6] = {0}, b[4] = {0};
    int in[2] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(3)), a),
                 cval(&t, "b", SPRUN_DTYPE_FLOAT, SH(1, D(4)), b)};
    node(&t, "Add", in, 2, 1);
    assert_err(&t, SPRUN_ERR_SHAPE, "2x3");
    tg_free(&t);
}

static void test_integer_arith(void **state)
{
    (void)state;
    const int32_t a[6] = {-7, 7, -7, 7, 5, INT32_MIN};
    const int32_t b[6] = {2, -2, -2, 2, 0, -1};
    struct { const char *op; int64_t fmod; int32_t ref[6]; } cases[] = {
        {"Div", -1, {-3, -3, 3, 3, 0, INT32_MIN}},
        {"Mod", 0, {1, -1, -1, 1, 0, 0}},
        {"Mod", 1, {-1, 1, -1, 1, 0, 0}},
        {"Add", -1, {-5, 5, -9, 9, 5, INT32_MAX}},
        {"Mul", -1, {-14, -14, 14, 14, 0, INT32_MIN}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tg t;
        tg_init(&t, 17);
        int in[2] = {cval(&t, "a", SPRUN_DTYPE_INT32, SH(1, D(6)), a), cval(&t, "b", SPRUN_DTYPE_INT32, SH(1, D(6)), b)};
        node(&t, cases[k].op, in, 2, 1);
        if (cases[k].fmod >= 0)
            sp_node_set_attr_int(nd(&t), "fmod", cases[k].fmod);
        eval_ok(&t);
        assert_int_equal(outv(&t, 0)->dtype, SPRUN_DTYPE_INT32);
        assert_memory_equal(outd(&t, 0), cases[k].ref, sizeof cases[k].ref);
        tg_free(&t);
    }
    /* float Mod: fmod=1 is C fmod, fmod=0 Python's sign rule */
    const float fa[2] = {-7.5f, 7.5f}, fb[2] = {2.f, -2.f};
    for (int fm = 0; fm < 2; fm++) {
        tg t;
        tg_init(&t, 17);
        int in[2] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(1, D(2)), fa), cval(&t, "b", SPRUN_DTYPE_FLOAT, SH(1, D(2)), fb)};
        node(&t, "Mod", in, 2, 1);
        sp_node_set_attr_int(nd(&t), "fmod", fm);
        eval_ok(&t);
        const float r1[2] = {-1.5f, 1.5f}, r0[2] = {0.5f, -0.5f};
        assert_close_f32(outd(&t, 0), fm ? r1 : r0, 2, 0.f);
        tg_free(&t);
    }
    /* uint8 wraps; int64 large values exact */
    {
        tg t;
        tg_init(&t, 17);
        const uint8_t x[3] = {3, 250, 0}, y[3] = {5, 10, 1};
        int in[2] = {cval(&t, "a", SPRUN_DTYPE_UINT8, SH(1, D(3)), x), cval(&t, "b", SPRUN_DTYPE_UINT8, SH(1, D(3)), y)};
        node(&t, "Sub", in, 2, 1);
        eval_ok(&t);
        const uint8_t r[3] = {254, 240, 255};
        assert_memory_equal(outd(&t, 0), r, 3);
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t, 17);
        const int64_t x[2] = {INT64_C(9007199254740993), -5}, y[1] = {2};
        int in[2] = {cval(&t, "a", SPRUN_DTYPE_INT64, SH(1, D(2)), x), cval(&t, "b", SPRUN_DTYPE_INT64, SH(0), y)};
        node(&t, "Mul", in, 2, 1);
        eval_ok(&t);
        const int64_t r[2] = {INT64_C(18014398509481986), -10};
        assert_eq_i64(outd(&t, 0), r, 2);
        tg_free(&t);
    }
}

static void test_pow_mixed(void **state)
{
    (void)state;
    tg t;
    tg_init(&t, 17);
    const float x[4] = {2.f, -3.f, 0.5f, 4.f};
    const int64_t e[4] = {3, 2, -1, 0};
    int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(1, D(4)), x), cval(&t, "e", SPRUN_DTYPE_INT64, SH(1, D(4)), e)};
    node(&t, "Pow", in, 2, 1);
    eval_ok(&t);
    assert_int_equal(outv(&t, 0)->dtype, SPRUN_DTYPE_FLOAT);
    const float r[4] = {8.f, 9.f, 2.f, 1.f};
    assert_close_f32(outd(&t, 0), r, 4, 0.f);
    tg_free(&t);

    tg_init(&t, 17);
    const int32_t xi[3] = {2, -3, 5}, ei[3] = {10, 3, 0};
    int in2[2] = {cval(&t, "x", SPRUN_DTYPE_INT32, SH(1, D(3)), xi), cval(&t, "e", SPRUN_DTYPE_INT32, SH(1, D(3)), ei)};
    node(&t, "Pow", in2, 2, 1);
    eval_ok(&t);
    const int32_t ri[3] = {1024, -27, 1};
    assert_memory_equal(outd(&t, 0), ri, sizeof ri);
    tg_free(&t);
}

static void test_compare_logic_where(void **state)
{
    (void)state;
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {2, 2, 7};
    static const struct { const char *op; uint8_t r[6]; } cmp[] = {
        {"Equal", {0, 1, 0, 0, 0, 0}},         {"Less", {1, 0, 1, 0, 0, 1}},
        {"Greater", {0, 0, 0, 1, 1, 0}},       {"LessOrEqual", {1, 1, 1, 0, 0, 1}},
        {"GreaterOrEqual", {0, 1, 0, 1, 1, 0}},
    };
    for (size_t k = 0; k < 5; k++) {
        tg t;
        tg_init(&t, 17);
        int in[2] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(3)), a),
                     cval(&t, "b", SPRUN_DTYPE_FLOAT, SH(1, D(3)), b)};
        node(&t, cmp[k].op, in, 2, 1);
        eval_ok(&t);
        assert_int_equal(outv(&t, 0)->dtype, SPRUN_DTYPE_BOOL);
        assert_memory_equal(outd(&t, 0), cmp[k].r, 6);
        tg_free(&t);
    }
    const uint8_t p[4] = {0, 0, 1, 1}, q[4] = {0, 1, 0, 1};
    static const struct { const char *op; uint8_t r[4]; } lg[] = {
        {"And", {0, 0, 0, 1}}, {"Or", {0, 1, 1, 1}}, {"Xor", {0, 1, 1, 0}}, {"Equal", {1, 0, 0, 1}}};
    for (size_t k = 0; k < 4; k++) {
        tg t;
        tg_init(&t, 17);
        int in[2] = {cval(&t, "p", SPRUN_DTYPE_BOOL, SH(1, D(4)), p), cval(&t, "q", SPRUN_DTYPE_BOOL, SH(1, D(4)), q)};
        node(&t, lg[k].op, in, 2, 1);
        eval_ok(&t);
        assert_memory_equal(outd(&t, 0), lg[k].r, 4);
        tg_free(&t);
    }
    /* Not, and an int64 Equal (the mask pattern exporters emit) */
    {
        tg t;
        tg_init(&t, 17);
        int in[1] = {cval(&t, "p", SPRUN_DTYPE_BOOL, SH(1, D(4)), p)};
        node(&t, "Not", in, 1, 1);
        eval_ok(&t);
        const uint8_t r[4] = {1, 1, 0, 0};
        assert_memory_equal(outd(&t, 0), r, 4);
        tg_free(&t);
    }
    /* Where: cond [2,1,3], x [3] int64, y scalar */
    {
        tg t;
        tg_init(&t, 17);
        const uint8_t c[6] = {1, 0, 1, 0, 0, 1};
        const int64_t x[3] = {10, 20, 30}, y[1] = {-1};
        int in[3] = {cval(&t, "c", SPRUN_DTYPE_BOOL, SH(3, D(2), D(1), D(3)), c),
                     cval(&t, "x", SPRUN_DTYPE_INT64, SH(2, D(2), D(3)), (int64_t[6]){10, 20, 30, 40, 50, 60}),
                     cval(&t, "y", SPRUN_DTYPE_INT64, SH(0), y)};
        (void)x;
        node(&t, "Where", in, 3, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(2), D(2), D(3)));
        const int64_t r[12] = {10, -1, 30, 40, -1, 60, -1, -1, 30, -1, -1, 60};
        assert_eq_i64(outd(&t, 0), r, 12);
        tg_free(&t);
    }
}

static void test_variadic(void **state)
{
    (void)state;
    sp_shape sa = SH(2, D(3), D(4)), sb = SH(1, D(4)), sc = SH(2, D(3), D(1));
    float *a = rnd_f32(12), *b = rnd_f32(4), *c = rnd_f32(3);
    static const char *const ops[] = {"Max", "Min", "Sum", "Mean"};
    for (int k = 0; k < 4; k++) {
        tg t;
        tg_init(&t, 17);
        int in[3] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, sa, a), cval(&t, "b", SPRUN_DTYPE_FLOAT, sb, b),
                     cval(&t, "c", SPRUN_DTYPE_FLOAT, sc, c)};
        node(&t, ops[k], in, 3, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), sa);
        float ref[12];
        for (int i = 0; i < 12; i++) {
            float x = a[i], y = b[i % 4], z = c[i / 4];
            switch (k) {
            case 0: ref[i] = fmaxf(x, fmaxf(y, z)); break;
            case 1: ref[i] = fminf(x, fminf(y, z)); break;
            case 2: ref[i] = x + y + z; break;
            default: ref[i] = (x + y + z) / 3.f; break;
            }
        }
        assert_close_f32(outd(&t, 0), ref, 12, 1e-6f);
        tg_free(&t);
    }
    free(a);
    free(b);
    free(c);
}

static void test_unary(void **state)
{
    (void)state;
    const float x[6] = {0.25f, 2.5f, -1.5f, 4.f, -0.f, 9.f};
    static const char *const ops[] = {"Sqrt", "Neg", "Abs", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Sign"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        tg t;
        tg_init(&t, 17);
        int in[1] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(3)), x)};
        node(&t, ops[k], in, 1, 1);
        eval_ok(&t);
        float ref[6];
        for (int i = 0; i < 6; i++) {
            float v = x[i];
            switch (k) {
            case 0: ref[i] = sqrtf(v); break;
            case 1: ref[i] = -v; break;
            case 2: ref[i] = fabsf(v); break;
            case 3: ref[i] = expf(v); break;
            case 4: ref[i] = logf(v); break;
            case 5: ref[i] = 1.f / v; break;
            case 6: ref[i] = floorf(v); break;
            case 7: ref[i] = ceilf(v); break;
            default: ref[i] = v > 0 ? 1.f : v < 0 ? -1.f : 0.f; break;
            }
        }
        assert_close_f32(outd(&t, 0), ref, 6, 1e-6f);
        tg_free(&t);
    }
    /* IsNaN / IsInf (detect_negative = 0) */
    const float z[4] = {NAN, INFINITY, -INFINITY, 1.f};
    {
        tg t;
        tg_init(&t, 17);
        int in[1] = {cval(&t, "z", SPRUN_DTYPE_FLOAT, SH(1, D(4)), z)};
        node(&t, "IsNaN", in, 1, 1);
        eval_ok(&t);
        assert_memory_equal(outd(&t, 0), ((uint8_t[4]){1, 0, 0, 0}), 4);
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "z", SPRUN_DTYPE_FLOAT, SH(1, D(4)), z);
        node(&t, "IsInf", in, 1, 1);
        sp_node_set_attr_int(nd(&t), "detect_negative", 0);
        eval_ok(&t);
        assert_memory_equal(outd(&t, 0), ((uint8_t[4]){0, 1, 0, 0}), 4);
        tg_free(&t);
    }
    /* integer Neg / Abs */
    {
        tg t;
        tg_init(&t, 17);
        const int8_t v[3] = {-5, 7, -128};
        int in[1] = {cval(&t, "v", SPRUN_DTYPE_INT8, SH(1, D(3)), v)};
        node(&t, "Abs", in, 1, 1);
        eval_ok(&t);
        assert_memory_equal(outd(&t, 0), ((int8_t[3]){5, 7, -128}), 3);
        tg_free(&t);
    }
    /* Sqrt of an int is rejected with a dtype message */
    {
        tg t;
        tg_init(&t, 17);
        const int32_t v[1] = {4};
        int in[1] = {cval(&t, "v", SPRUN_DTYPE_INT32, SH(1, D(1)), v)};
        node(&t, "Sqrt", in, 1, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "int32");
        tg_free(&t);
    }
}

static void test_fp16_elementwise(void **state)
{
    (void)state;
    tg t;
    tg_init(&t, 17);
    uint16_t a[8], b[8];
    float fa[8], fb[8];
    for (int i = 0; i < 8; i++) {
        a[i] = sp_f32_to_f16(rnd());
        b[i] = sp_f32_to_f16(rnd());
        fa[i] = sp_f16_to_f32(a[i]);
        fb[i] = sp_f16_to_f32(b[i]);
    }
    int in[2] = {cval(&t, "a", SPRUN_DTYPE_FLOAT16, SH(2, D(2), D(4)), a),
                 cval(&t, "b", SPRUN_DTYPE_FLOAT16, SH(1, D(4)), b)};
    node(&t, "Mul", in, 2, 1);
    eval_ok(&t);
    assert_int_equal(outv(&t, 0)->dtype, SPRUN_DTYPE_FLOAT16);
    const uint16_t *y = outd(&t, 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(y[i], sp_f32_to_f16(fa[i] * fb[i % 4]));
    tg_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Reduce                                                                    */
/* ------------------------------------------------------------------------ */

/* Naive reduction over mask on [d0,d1,d2]. */
static void ref_reduce(const char *op, const float *x, const int64_t *d, const int *mask, float *y)
{
    int64_t od[3];
    for (int k = 0; k < 3; k++)
        od[k] = mask[k] ? 1 : d[k];
    for (int64_t o = 0; o < od[0] * od[1] * od[2]; o++) {
        int64_t o0 = o / (od[1] * od[2]), o1 = (o / od[2]) % od[1], o2 = o % od[2];
        double acc = !strcmp(op, "ReduceProd") ? 1 : !strcmp(op, "ReduceMax") ? -INFINITY
                     : !strcmp(op, "ReduceMin") ? INFINITY : 0;
        int64_t cnt = 0;
        for (int64_t i = 0; i < d[0]; i++)
            for (int64_t j = 0; j < d[1]; j++)
                for (int64_t k = 0; k < d[2]; k++) {
                    if ((!mask[0] && i != o0) || (!mask[1] && j != o1) || (!mask[2] && k != o2))
                        continue;
                    double v = x[(i * d[1] + j) * d[2] + k];
                    cnt++;
                    if (!strcmp(op, "ReduceProd")) acc *= v;
                    else if (!strcmp(op, "ReduceMax")) acc = fmax(acc, v);
                    else if (!strcmp(op, "ReduceMin")) acc = fmin(acc, v);
                    else if (!strcmp(op, "ReduceSumSquare") || !strcmp(op, "ReduceL2")) acc += v * v;
                    else acc += v;
                }
        if (!strcmp(op, "ReduceMean")) acc /= (double)cnt;
        if (!strcmp(op, "ReduceL2")) acc = sqrt(acc);
        y[o] = (float)acc;
    }
}

static void test_reduce(void **state)
{
    (void)state;
    static const char *const ops[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                                      "ReduceSumSquare", "ReduceL2"};
    const int64_t d[3] = {3, 4, 5};
    float *x = rnd_f32(60);
    static const int masks[][3] = {{0, 0, 1}, {0, 1, 0}, {1, 0, 1}, {1, 1, 1}, {1, 0, 0}, {0, 1, 1}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++)
            for (int opset = 13; opset <= 18; opset += 5)
                for (int keep = 0; keep < 2; keep++) {
                    tg t;
                    tg_init(&t, opset);
                    int64_t axes[3];
                    int na = 0;
                    for (int a = 0; a < 3; a++)
                        if (masks[m][a])
                            axes[na++] = a == 2 ? -1 : a; /* negative axis too */
                    const int as_input = opset >= (strcmp(ops[k], "ReduceSum") ? 18 : 13);
                    int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, d[0], d[1], d[2]), x), -1};
                    if (as_input)
                        in[1] = cval(&t, "axes", SPRUN_DTYPE_INT64, SH(1, D(na)), axes);
                    node(&t, ops[k], in, as_input ? 2 : 1, 1);
                    if (!as_input)
                        sp_node_set_attr_ints(nd(&t), "axes", axes, na);
                    sp_node_set_attr_int(nd(&t), "keepdims", keep);
                    eval_ok(&t);
                    sp_shape os = {.rank = 0};
                    for (int a = 0; a < 3; a++)
                        if (!masks[m][a] || keep)
                            os.d[os.rank++] = masks[m][a] ? 1 : d[a];
                    assert_shape(outv(&t, 0), os);
                    float ref[60];
                    ref_reduce(ops[k], x, d, masks[m], ref);
                    assert_close_f32(outd(&t, 0), ref, sp_shape_numel(&os), 1e-5f);
                    tg_free(&t);
                }
    /* no axes: everything; noop_with_empty_axes: identity */
    for (int noop = 0; noop < 2; noop++) {
        tg t;
        tg_init(&t, 18);
        int in[1] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, d[0], d[1], d[2]), x)};
        node(&t, "ReduceSum", in, 1, 1);
        sp_node_set_attr_int(nd(&t), "noop_with_empty_axes", noop);
        eval_ok(&t);
        if (noop) {
            assert_shape(outv(&t, 0), SH(3, d[0], d[1], d[2]));
            assert_close_f32(outd(&t, 0), x, 60, 0.f);
        } else {
            assert_shape(outv(&t, 0), SH(3, D(1), D(1), D(1)));
            double s = 0;
            for (int i = 0; i < 60; i++)
                s += x[i];
            float r = (float)s;
            assert_close_f32(outd(&t, 0), &r, 1, 1e-5f);
        }
        tg_free(&t);
    }
    /* int64 ReduceSum exact; data-dependent axes */
    {
        tg t;
        tg_init(&t, 13);
        const int64_t v[4] = {INT64_C(1) << 60, 3, -(INT64_C(1) << 60), 4};
        const int64_t ax[1] = {1};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_INT64, SH(2, D(2), D(2)), v),
                     cval(&t, "axes", SPRUN_DTYPE_INT64, SH(1, D(1)), ax)};
        node(&t, "ReduceSum", in, 2, 1);
        eval_ok(&t);
        const int64_t r[2] = {(INT64_C(1) << 60) + 3, -(INT64_C(1) << 60) + 4};
        assert_eq_i64(outd(&t, 0), r, 2);
        tg_free(&t);

        tg_init(&t, 18);
        int in2[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, d[0], d[1], d[2]), x),
                      ival(&t, "ax", SPRUN_DTYPE_INT64, SH(1, D(1)))};
        node(&t, "ReduceMean", in2, 2, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'ax' of node 'n' is not constant");
        tg_free(&t);
    }
    free(x);
}

/* ------------------------------------------------------------------------ */
/* Shape ops                                                                 */
/* ------------------------------------------------------------------------ */

static void reshape_case(sp_shape xs, const int64_t *shp, int n, int allowzero, sp_shape expect, int code)
{
    tg t;
    tg_init(&t, 17);
    int64_t cnt = sp_shape_numel(&xs);
    float *x = rnd_f32(cnt);
    int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, xs, x), cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(n)), shp)};
    node(&t, "Reshape", in, 2, 1);
    if (allowzero)
        sp_node_set_attr_int(nd(&t), "allowzero", 1);
    if (code) {
        assert_err(&t, code, "Reshape");
    } else {
        eval_ok(&t);
        assert_shape(outv(&t, 0), expect);
        if (cnt)
            assert_memory_equal(outd(&t, 0), x, (size_t)cnt * 4);
    }
    free(x);
    tg_free(&t);
}

static void test_reshape(void **state)
{
    (void)state;
    reshape_case(SH(3, D(2), D(3), D(4)), (int64_t[]){4, 6}, 2, 0, SH(2, D(4), D(6)), 0);
    reshape_case(SH(3, D(2), D(3), D(4)), (int64_t[]){0, -1}, 2, 0, SH(2, D(2), D(12)), 0);
    reshape_case(SH(3, D(2), D(3), D(4)), (int64_t[]){-1, 0, 2}, 3, 0, SH(3, D(4), D(3), D(2)), 0);
    reshape_case(SH(3, D(2), D(3), D(4)), (int64_t[]){0, 0, 0}, 3, 0, SH(3, D(2), D(3), D(4)), 0);
    reshape_case(SH(1, D(24)), (int64_t[]){2, -1, 4}, 3, 0, SH(3, D(2), D(3), D(4)), 0);
    reshape_case(SH(2, D(0), D(3)), (int64_t[]){3, 0}, 2, 1, SH(2, D(3), D(0)), 0);   /* allowzero: literal 0 */
    reshape_case(SH(2, D(2), D(3)), (int64_t[]){3, 0}, 2, 0, SH(2, D(3), D(3)), SPRUN_ERR_SHAPE); /* 0 copies 3 */
    reshape_case(SH(2, D(2), D(3)), (int64_t[]){-1, -1}, 2, 0, SH(0), SPRUN_ERR_SHAPE);
    reshape_case(SH(2, D(2), D(3)), (int64_t[]){4, -1}, 2, 0, SH(0), SPRUN_ERR_SHAPE);
    reshape_case(SH(2, D(2), D(3)), (int64_t[]){0, -1}, 2, 1, SH(0), SPRUN_ERR_SHAPE);
    reshape_case(SH(1, D(1)), (int64_t[]){0}, 0, 0, SH(0), 0); /* to a scalar */

    tg t;
    tg_init(&t, 17);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(3)), x), ival(&t, "shp", SPRUN_DTYPE_INT64, SH(1, D(2)))};
    node(&t, "Reshape", in, 2, 1);
    assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'shp' of node 'n' is not constant");
    tg_free(&t);
}

static void test_flatten_squeeze_unsqueeze(void **state)
{
    (void)state;
    float *x = rnd_f32(24);
    struct { int64_t axis; sp_shape s; } fl[] = {
        {0, SH(2, D(1), D(24))}, {1, SH(2, D(2), D(12))}, {-1, SH(2, D(6), D(4))}, {3, SH(2, D(24), D(1))}};
    for (size_t k = 0; k < 4; k++) {
        tg t;
        tg_init(&t, 17);
        int in[1] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), x)};
        node(&t, "Flatten", in, 1, 1);
        sp_node_set_attr_int(nd(&t), "axis", fl[k].axis);
        eval_ok(&t);
        assert_shape(outv(&t, 0), fl[k].s);
        assert_memory_equal(outd(&t, 0), x, 96);
        tg_free(&t);
    }
    /* Unsqueeze opset 13 (input) and 11 (attribute), negative axes */
    for (int opset = 11; opset <= 13; opset += 2) {
        tg t;
        tg_init(&t, opset);
        const int64_t ax[2] = {0, -1};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), x), -1};
        if (opset >= 13)
            in[1] = cval(&t, "axes", SPRUN_DTYPE_INT64, SH(1, D(2)), ax);
        node(&t, "Unsqueeze", in, opset >= 13 ? 2 : 1, 1);
        if (opset < 13)
            sp_node_set_attr_ints(nd(&t), "axes", ax, 2);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(4, D(1), D(4), D(6), D(1)));
        assert_memory_equal(outd(&t, 0), x, 96);
        tg_free(&t);
    }
    /* Squeeze: given axes, all 1-dims, and a bad axis */
    {
        tg t;
        tg_init(&t, 13);
        const int64_t ax[1] = {-2};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(4, D(1), D(24), D(1), D(1)), x),
                     cval(&t, "axes", SPRUN_DTYPE_INT64, SH(1, D(1)), ax)};
        node(&t, "Squeeze", in, 2, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(1), D(24), D(1)));
        tg_free(&t);
        tg_init(&t, 13);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(4, D(1), D(24), D(1), D(1)), x);
        node(&t, "Squeeze", in, 1, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(1, D(24)));
        tg_free(&t);
        tg_init(&t, 13);
        const int64_t bad[1] = {1};
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(4, D(1), D(24), D(1), D(1)), x);
        in[1] = cval(&t, "axes", SPRUN_DTYPE_INT64, SH(1, D(1)), bad);
        node(&t, "Squeeze", in, 2, 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "1x24x1x1");
        tg_free(&t);
        tg_init(&t, 13);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), x);
        in[1] = ival(&t, "ax", SPRUN_DTYPE_INT64, SH(1, D(1)));
        node(&t, "Unsqueeze", in, 2, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'ax' of node 'n' is not constant");
        tg_free(&t);
    }
    /* Identity, Dropout with mask */
    {
        tg t;
        tg_init(&t, 17);
        int in[1] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), x)};
        node(&t, "Dropout", in, 1, 2);
        eval_ok(&t);
        assert_memory_equal(outd(&t, 0), x, 96);
        assert_int_equal(outv(&t, 1)->dtype, SPRUN_DTYPE_BOOL);
        const uint8_t *m = outd(&t, 1);
        for (int i = 0; i < 24; i++)
            assert_int_equal(m[i], 1);
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), x);
        node(&t, "Identity", in, 1, 1);
        eval_ok(&t);
        assert_memory_equal(outd(&t, 0), x, 96);
        tg_free(&t);
    }
    free(x);
}

static void test_shape_size_expand_tile(void **state)
{
    (void)state;
    struct { int64_t s, e; int has_s, has_e; int64_t r[5]; int n; } cs[] = {
        {0, 0, 0, 0, {2, 3, 4, 5}, 4}, {1, 0, 1, 0, {3, 4, 5}, 3}, {-3, -1, 1, 1, {3, 4}, 2},
        {-10, 10, 1, 1, {2, 3, 4, 5}, 4}, {3, 1, 1, 1, {0}, 0},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        tg t;
        tg_init(&t, 15);
        /* Shape only needs the input's shape: a non-constant input works */
        int in[1] = {ival(&t, "x", SPRUN_DTYPE_FLOAT, SH(4, D(2), D(3), D(4), D(5)))};
        node(&t, "Shape", in, 1, 1);
        if (cs[k].has_s)
            sp_node_set_attr_int(nd(&t), "start", cs[k].s);
        if (cs[k].has_e)
            sp_node_set_attr_int(nd(&t), "end", cs[k].e);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(1, D(cs[k].n)));
        assert_eq_i64(outd(&t, 0), cs[k].r, cs[k].n);
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t, 17);
        int in[1] = {ival(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)))};
        node(&t, "Size", in, 1, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(0));
        assert_int_equal(*(int64_t *)outd(&t, 0), 24);
        tg_free(&t);
    }
    /* Expand [3,1] by [2,1,4] -> [2,3,4]; shape dims of 1 keep the input's */
    {
        tg t;
        tg_init(&t, 17);
        const float x[3] = {1, 2, 3};
        const int64_t s[3] = {2, 1, 4};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(3), D(1)), x),
                     cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(3)), s)};
        node(&t, "Expand", in, 2, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(2), D(3), D(4)));
        const float *y = outd(&t, 0);
        for (int i = 0; i < 24; i++)
            assert_true(y[i] == x[(i / 4) % 3]);
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(3), D(1)), x);
        in[1] = ival(&t, "ns", SPRUN_DTYPE_INT64, SH(1, D(3)));
        node(&t, "Expand", in, 2, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'ns' of node 'n' is not constant");
        tg_free(&t);
    }
    /* Tile [2,3] by [2,2] */
    {
        tg t;
        tg_init(&t, 17);
        const int32_t x[6] = {1, 2, 3, 4, 5, 6};
        const int64_t r[2] = {2, 2};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_INT32, SH(2, D(2), D(3)), x),
                     cval(&t, "r", SPRUN_DTYPE_INT64, SH(1, D(2)), r)};
        node(&t, "Tile", in, 2, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(2, D(4), D(6)));
        const int32_t ref[24] = {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6};
        assert_memory_equal(outd(&t, 0), ref, sizeof ref);
        tg_free(&t);
    }
}

/* ------------------------------------------------------------------------ */
/* Transpose, Concat, Split                                                  */
/* ------------------------------------------------------------------------ */

static void transpose_case(sp_shape xs, const int64_t *perm, int dt)
{
    tg t;
    tg_init(&t, 17);
    const int r = xs.rank;
    const int64_t n = sp_shape_numel(&xs);
    const size_t es = sp_dtype_size(dt);
    unsigned char *x = malloc((size_t)n * es);
    for (int64_t i = 0; i < n * (int64_t)es; i++)
        x[i] = (unsigned char)rng_u32();
    int in[1] = {cval(&t, "x", dt, xs, x)};
    node(&t, "Transpose", in, 1, 1);
    int64_t p[SP_MAX_RANK];
    for (int k = 0; k < r; k++)
        p[k] = perm ? perm[k] : r - 1 - k;
    if (perm)
        sp_node_set_attr_ints(nd(&t), "perm", perm, r);
    eval_ok(&t);
    sp_shape ys = {.rank = r};
    for (int k = 0; k < r; k++)
        ys.d[k] = xs.d[p[k]];
    assert_shape(outv(&t, 0), ys);
    int64_t xst[SP_MAX_RANK], acc = 1;
    for (int k = r - 1; k >= 0; k--) {
        xst[k] = acc;
        acc *= xs.d[k];
    }
    const unsigned char *y = outd(&t, 0);
    for (int64_t o = 0; o < n; o++) {
        int64_t rem = o, off = 0;
        for (int k = r - 1; k >= 0; k--) {
            off += (rem % ys.d[k]) * xst[p[k]];
            rem /= ys.d[k];
        }
        if (memcmp(y + o * (int64_t)es, x + off * (int64_t)es, es) != 0)
            fail_msg("transpose mismatch at output %lld", (long long)o);
    }
    free(x);
    tg_free(&t);
}

static void test_transpose(void **state)
{
    (void)state;
    transpose_case(SH(2, D(67), D(131)), NULL, SPRUN_DTYPE_FLOAT);
    transpose_case(SH(4, D(2), D(7), D(3), D(5)), (int64_t[]){0, 2, 1, 3}, SPRUN_DTYPE_FLOAT);
    transpose_case(SH(4, D(1), D(128), D(12), D(64)), (int64_t[]){0, 2, 1, 3}, SPRUN_DTYPE_FLOAT);
    transpose_case(SH(4, D(2), D(3), D(4), D(5)), (int64_t[]){3, 2, 1, 0}, SPRUN_DTYPE_INT64);
    transpose_case(SH(4, D(2), D(3), D(4), D(5)), (int64_t[]){0, 3, 1, 2}, SPRUN_DTYPE_FLOAT16);
    transpose_case(SH(4, D(2), D(33), D(1), D(40)), (int64_t[]){0, 3, 2, 1}, SPRUN_DTYPE_UINT8);
    transpose_case(SH(3, D(1), D(5), D(1)), (int64_t[]){2, 0, 1}, SPRUN_DTYPE_FLOAT);
    transpose_case(SH(5, D(2), D(3), D(2), D(3), D(2)), (int64_t[]){4, 1, 3, 0, 2}, SPRUN_DTYPE_DOUBLE);
    transpose_case(SH(0), NULL, SPRUN_DTYPE_FLOAT);
}

static void test_concat_split(void **state)
{
    (void)state;
    float *a = rnd_f32(24), *b = rnd_f32(8), *c = rnd_f32(16);
    for (int axis = -1; axis <= 2; axis += 3) { /* -1 and 2 are the same axis */
        tg t;
        tg_init(&t, 17);
        int in[3] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), a),
                     cval(&t, "b", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(0)), b),
                     cval(&t, "c", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(2)), c)};
        node(&t, "Concat", in, 3, 1);
        sp_node_set_attr_int(nd(&t), "axis", axis);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(2), D(3), D(6)));
        const float *y = outd(&t, 0);
        for (int r = 0; r < 6; r++)
            for (int k = 0; k < 6; k++)
                assert_true(y[r * 6 + k] == (k < 4 ? a[r * 4 + k] : c[r * 2 + k - 4]));
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t, 17);
        int in[2] = {cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), a),
                     cval(&t, "c", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(2)), c)};
        node(&t, "Concat", in, 2, 1);
        sp_node_set_attr_int(nd(&t), "axis", 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "2x3x4");
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), a);
        node(&t, "Concat", in, 1, 1);
        sp_node_set_attr_int(nd(&t), "axis", 3);
        assert_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "'axis'");
        tg_free(&t);
    }
    /* Split: sizes input (13), attribute (11), equal, num_outputs (18) */
    struct { int opset; int mode; int nout; int64_t sz[4]; } sc[] = {
        {13, 1, 3, {1, 2, 3}}, {11, 2, 2, {4, 2}}, {13, 0, 3, {2, 2, 2}}, {18, 3, 4, {2, 2, 2, 0}},
    };
    for (size_t k = 0; k < 4; k++) {
        tg t;
        tg_init(&t, sc[k].opset);
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), a), -1};
        if (sc[k].mode == 1)
            in[1] = cval(&t, "split", SPRUN_DTYPE_INT64, SH(1, D(sc[k].nout)), sc[k].sz);
        node(&t, "Split", in, sc[k].mode == 1 ? 2 : 1, sc[k].nout);
        sp_node_set_attr_int(nd(&t), "axis", -1);
        if (sc[k].mode == 2)
            sp_node_set_attr_ints(nd(&t), "split", sc[k].sz, sc[k].nout);
        if (sc[k].mode == 3) {
            sp_node_set_attr_int(nd(&t), "num_outputs", 4);
            /* 6 into 4: ceil(6/4) = 2, 2, 2, 0 */
        }
        eval_ok(&t);
        int64_t col = 0;
        for (int o = 0; o < sc[k].nout; o++) {
            assert_shape(outv(&t, o), SH(2, D(4), sc[k].sz[o]));
            const float *y = outd(&t, o);
            for (int r = 0; r < 4; r++)
                for (int64_t j = 0; j < sc[k].sz[o]; j++)
                    assert_true(y[r * sc[k].sz[o] + j] == a[r * 6 + col + j]);
            col += sc[k].sz[o];
        }
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t, 13);
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), a), ival(&t, "sp", SPRUN_DTYPE_INT64, SH(1, D(2)))};
        node(&t, "Split", in, 2, 2);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'sp' of node 'n' is not constant");
        tg_free(&t);
        tg_init(&t, 13);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(4), D(6)), a);
        node(&t, "Split", in, 1, 4);
        sp_node_set_attr_int(nd(&t), "axis", 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "evenly");
        tg_free(&t);
    }
    free(a);
    free(b);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Slice                                                                     */
/* ------------------------------------------------------------------------ */

/* Naive 1-axis reference on a 1-D tensor of length d (numpy semantics). */
static int64_t ref_slice1(int64_t d, int64_t s, int64_t e, int64_t st, int64_t *idx)
{
    if (s < 0) s += d;
    if (e < 0) e += d;
    int64_t n = 0;
    if (st > 0) {
        if (s < 0) s = 0;
        if (s > d) s = d;
        if (e < 0) e = 0;
        if (e > d) e = d;
        for (int64_t i = s; i < e;) { idx[n++] = i; if (e - i <= st) break; i += st; }
    } else {
        if (s < 0) s = 0;
        if (s > d - 1) s = d - 1;
        if (e < -1) e = -1;
        if (e > d - 1) e = d - 1;
        for (int64_t i = s; i > e;) { idx[n++] = i; if (i - e <= -st) break; i += st; }
    }
    return n;
}

static void test_slice(void **state)
{
    (void)state;
    const int64_t d = 10;
    int32_t x[10];
    for (int i = 0; i < 10; i++)
        x[i] = 100 + i;
    struct { int64_t s, e, st; } cs[] = {
        {0, 10, 1}, {2, 7, 2}, {-3, INT64_MAX, 1}, {9, -100, -1}, {-1, INT64_MIN, -2}, {20, 30, 1},
        {-20, 3, 1}, {5, 5, 1}, {8, 2, -3}, {0, -1, 4}, {100, -100, -1}, {3, 2, 1}, {1, INT64_MAX, INT64_MAX},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        tg t;
        tg_init(&t, 13);
        int in[5] = {cval(&t, "x", SPRUN_DTYPE_INT32, SH(1, d), x),
                     cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(1)), &cs[k].s),
                     cval(&t, "e", SPRUN_DTYPE_INT64, SH(1, D(1)), &cs[k].e),
                     cval(&t, "a", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){-1}),
                     cval(&t, "st", SPRUN_DTYPE_INT64, SH(1, D(1)), &cs[k].st)};
        node(&t, "Slice", in, 5, 1);
        eval_ok(&t);
        int64_t idx[16];
        int64_t n = ref_slice1(d, cs[k].s, cs[k].e, cs[k].st, idx);
        if (!sp_shape_equal(&outv(&t, 0)->shape, &(sp_shape){.rank = 1, .d = {n}}))
            fail_msg("case %zu: %lld elements, expected %lld", k, (long long)outv(&t, 0)->shape.d[0], (long long)n);
        const int32_t *y = outd(&t, 0);
        for (int64_t i = 0; i < n; i++)
            assert_int_equal(y[i], x[idx[i]]);
        tg_free(&t);
    }
    /* 3-D: two axes, negative step on one, default steps, axes omitted */
    float *v = rnd_f32(60);
    {
        tg t;
        tg_init(&t, 13);
        int in[5] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(3), D(4), D(5)), v),
                     cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(2)), (int64_t[]){-1, 1}),
                     cval(&t, "e", SPRUN_DTYPE_INT64, SH(1, D(2)), (int64_t[]){INT64_MIN, 4}),
                     cval(&t, "a", SPRUN_DTYPE_INT64, SH(1, D(2)), (int64_t[]){2, 0}),
                     cval(&t, "st", SPRUN_DTYPE_INT64, SH(1, D(2)), (int64_t[]){-2, 1})};
        node(&t, "Slice", in, 5, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(2), D(4), D(3)));
        const float *y = outd(&t, 0);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 3; k++)
                    assert_true(y[(i * 4 + j) * 3 + k] == v[((i + 1) * 4 + j) * 5 + (4 - 2 * k)]);
        tg_free(&t);
    }
    {
        tg t; /* opset 1 attributes */
        tg_init(&t, 9);
        int in[1] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(3), D(4), D(5)), v)};
        node(&t, "Slice", in, 1, 1);
        sp_node_set_attr_ints(nd(&t), "starts", (int64_t[]){1, 0}, 2);
        sp_node_set_attr_ints(nd(&t), "ends", (int64_t[]){1000, -2}, 2);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(2), D(2), D(5)));
        const float *y = outd(&t, 0);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                for (int k = 0; k < 5; k++)
                    assert_true(y[(i * 2 + j) * 5 + k] == v[((i + 1) * 4 + j) * 5 + k]);
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t, 13);
        int in[3] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(3), D(4), D(5)), v), ival(&t, "st", SPRUN_DTYPE_INT64, SH(1, D(1))),
                     cval(&t, "e", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){2})};
        node(&t, "Slice", in, 3, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'st' of node 'n' is not constant");
        tg_free(&t);
        tg_init(&t, 13);
        int in5[5] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(3), D(4), D(5)), v),
                      cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){0}),
                      cval(&t, "e", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){2}),
                      cval(&t, "a", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){0}),
                      cval(&t, "st", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){0})};
        node(&t, "Slice", in5, 5, 1);
        assert_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "step 0");
        tg_free(&t);
    }
    free(v);
}

/* ------------------------------------------------------------------------ */
/* Gather                                                                    */
/* ------------------------------------------------------------------------ */

static void test_gather(void **state)
{
    (void)state;
    float *x = rnd_f32(24); /* [2,3,4] */
    {
        tg t;
        tg_init(&t, 17);
        const int64_t idx[4] = {-1, 0, 2, -3}; /* [2,2] */
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), x),
                     cval(&t, "i", SPRUN_DTYPE_INT64, SH(2, D(2), D(2)), idx)};
        node(&t, "Gather", in, 2, 1);
        sp_node_set_attr_int(nd(&t), "axis", -2);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(4, D(2), D(2), D(2), D(4)));
        const float *y = outd(&t, 0);
        const int real[4] = {2, 0, 2, 0};
        for (int a = 0; a < 2; a++)
            for (int k = 0; k < 4; k++)
                for (int c = 0; c < 4; c++)
                    assert_true(y[(a * 4 + k) * 4 + c] == x[(a * 3 + real[k]) * 4 + c]);
        tg_free(&t);
    }
    {
        tg t; /* scalar index, int32, axis 0: drops the axis */
        tg_init(&t, 17);
        const int32_t i1[1] = {1};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), x),
                     cval(&t, "i", SPRUN_DTYPE_INT32, SH(0), i1)};
        node(&t, "Gather", in, 2, 1);
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(2, D(3), D(4)));
        assert_memory_equal(outd(&t, 0), x + 12, 48);
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t, 17);
        const int64_t bad[1] = {3};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), x),
                     cval(&t, "i", SPRUN_DTYPE_INT64, SH(1, D(1)), bad)};
        node(&t, "Gather", in, 2, 1);
        sp_node_set_attr_int(nd(&t), "axis", 1);
        assert_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "out of range");
        tg_free(&t);
    }
    {
        tg t; /* GatherElements axis 1 with negative indices */
        tg_init(&t, 17);
        const int64_t idx[6] = {0, -1, 1, 2, -3, 0}; /* [2,3] over data [2,3] */
        const float d[6] = {1, 2, 3, 4, 5, 6};
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(3)), d),
                     cval(&t, "i", SPRUN_DTYPE_INT64, SH(2, D(2), D(3)), idx)};
        node(&t, "GatherElements", in, 2, 1);
        sp_node_set_attr_int(nd(&t), "axis", 1);
        eval_ok(&t);
        const float r[6] = {1, 3, 2, 6, 4, 4};
        assert_close_f32(outd(&t, 0), r, 6, 0.f);
        tg_free(&t);
    }
    free(x);
}

/* ------------------------------------------------------------------------ */
/* Cast                                                                      */
/* ------------------------------------------------------------------------ */

static void *cast_run1(tg *t, int from, int to, const void *x, int64_t n)
{
    tg_init(t, 17);
    int in[1] = {cval(t, "x", from, SH(1, n), x)};
    node(t, "Cast", in, 1, 1);
    sp_node_set_attr_int(nd(t), "to", to);
    eval_ok(t);
    assert_int_equal(outv(t, 0)->dtype, to);
    return outd(t, 0);
}

static void test_cast(void **state)
{
    (void)state;
    tg t;
    /* fp16 round trip: exact for values fp16 can hold, nearest-even otherwise */
    const float f[6] = {1.5f, -2.25f, 65504.f, 1e-7f, 70000.f, 0.1f};
    const uint16_t *h = cast_run1(&t, SPRUN_DTYPE_FLOAT, SPRUN_DTYPE_FLOAT16, f, 6);
    uint16_t hh[6];
    memcpy(hh, h, sizeof hh);
    tg_free(&t);
    for (int i = 0; i < 6; i++)
        assert_int_equal(hh[i], sp_f32_to_f16(f[i]));
    assert_int_equal(hh[0], 0x3e00);
    assert_int_equal(hh[4], 0x7c00); /* overflow to inf */
    const float *back = cast_run1(&t, SPRUN_DTYPE_FLOAT16, SPRUN_DTYPE_FLOAT, hh, 6);
    assert_true(back[0] == 1.5f && back[1] == -2.25f && back[2] == 65504.f && isinf(back[4]));
    assert_true(fabsf(back[5] - 0.1f) < 1e-4f);
    tg_free(&t);
    /* float -> int truncates toward zero */
    const float g[4] = {-2.7f, 2.7f, -0.5f, 1e3f};
    const int32_t *i32 = cast_run1(&t, SPRUN_DTYPE_FLOAT, SPRUN_DTYPE_INT32, g, 4);
    assert_memory_equal(i32, ((int32_t[4]){-2, 2, 0, 1000}), 16);
    tg_free(&t);
    const int64_t *i64 = cast_run1(&t, SPRUN_DTYPE_FLOAT, SPRUN_DTYPE_INT64, g, 4);
    assert_eq_i64(i64, (int64_t[4]){-2, 2, 0, 1000}, 4);
    tg_free(&t);
    /* to / from bool */
    const float z[4] = {0.f, -0.f, 3.f, NAN};
    assert_memory_equal(cast_run1(&t, SPRUN_DTYPE_FLOAT, SPRUN_DTYPE_BOOL, z, 4), ((uint8_t[4]){0, 0, 1, 1}), 4);
    tg_free(&t);
    const uint8_t bb[3] = {1, 0, 1};
    const float *bf = cast_run1(&t, SPRUN_DTYPE_BOOL, SPRUN_DTYPE_FLOAT, bb, 3);
    assert_true(bf[0] == 1.f && bf[1] == 0.f && bf[2] == 1.f);
    tg_free(&t);
    /* int64 -> int32 / uint8 wrap, double -> int8, int32 -> double */
    const int64_t big[3] = {INT64_C(4294967297), -1, 300};
    assert_memory_equal(cast_run1(&t, SPRUN_DTYPE_INT64, SPRUN_DTYPE_INT32, big, 3), ((int32_t[3]){1, -1, 300}), 12);
    tg_free(&t);
    assert_memory_equal(cast_run1(&t, SPRUN_DTYPE_INT64, SPRUN_DTYPE_UINT8, big, 3), ((uint8_t[3]){1, 255, 44}), 3);
    tg_free(&t);
    const double dd[2] = {-100.9, 100.9};
    assert_memory_equal(cast_run1(&t, SPRUN_DTYPE_DOUBLE, SPRUN_DTYPE_INT8, dd, 2), ((int8_t[2]){-100, 100}), 2);
    tg_free(&t);
    const int32_t ii[2] = {-7, 123456789};
    const double *di = cast_run1(&t, SPRUN_DTYPE_INT32, SPRUN_DTYPE_DOUBLE, ii, 2);
    assert_true(di[0] == -7.0 && di[1] == 123456789.0);
    tg_free(&t);
    /* CastLike takes the dtype of its second input */
    tg_init(&t, 17);
    int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(1, D(2)), g), cval(&t, "l", SPRUN_DTYPE_INT64, SH(1, D(1)), big)};
    node(&t, "CastLike", in, 2, 1);
    eval_ok(&t);
    assert_eq_i64(outd(&t, 0), (int64_t[2]){-2, 2}, 2);
    tg_free(&t);
    /* bfloat16 target is rejected, naming the attribute */
    tg_init(&t, 17);
    in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(1, D(2)), g);
    node(&t, "Cast", in, 1, 1);
    sp_node_set_attr_int(nd(&t), "to", SPRUN_DTYPE_BFLOAT16);
    assert_err(&t, SPRUN_ERR_UNSUPPORTED, "'to'");
    tg_free(&t);
}

/* Cast's fast fp16 path (F16C where the CPU has it) is bit-identical to
 * runtime/half.h: every half value, and random float bit patterns (NaN
 * payloads, subnormals, ties, overflow). */
static void test_cast_fp16_bits(void **state)
{
    (void)state;
    tg t;
    uint16_t *all = malloc(65536 * sizeof *all);
    for (int i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    const uint32_t *f = cast_run1(&t, SPRUN_DTYPE_FLOAT16, SPRUN_DTYPE_FLOAT, all, 65536);
    for (int i = 0; i < 65536; i++) {
        float r = sp_f16_to_f32((uint16_t)i);
        uint32_t rb;
        memcpy(&rb, &r, 4);
        if (f[i] != rb)
            fail_msg("half 0x%04x -> 0x%08x, expected 0x%08x", i, f[i], rb);
    }
    tg_free(&t);
    free(all);
    const int64_t n = 200003;
    uint32_t *bits = malloc((size_t)n * sizeof *bits);
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = rng_u32();
        if (i % 3 == 0) /* around the fp16 range, ties included */
            b = (b & 0x80001fffu) | ((uint32_t)(100 + rng_u32() % 60) << 23) | ((i & 1) ? 0x1000u : 0u);
        bits[i] = b;
    }
    const uint16_t *h = cast_run1(&t, SPRUN_DTYPE_FLOAT, SPRUN_DTYPE_FLOAT16, bits, n);
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, &bits[i], 4);
        if (h[i] != sp_f32_to_f16(v))
            fail_msg("float 0x%08x -> 0x%04x, expected 0x%04x", bits[i], h[i], sp_f32_to_f16(v));
    }
    tg_free(&t);
    free(bits);
}

/* ------------------------------------------------------------------------ */
/* Constant, ConstantOfShape, Range, Trilu                                   */
/* ------------------------------------------------------------------------ */

static void set_tensor_attr(sp_node *n, const char *name, int dtype, sp_shape s, const void *data)
{
    assert_int_equal(sp_node_set_attr_int(n, name, 0), 0);
    sp_attr *a = (sp_attr *)sp_attr_find(n, name);
    sp_value *v = calloc(1, sizeof *v);
    size_t nb = (size_t)sp_shape_numel(&s) * sp_dtype_size(dtype);
    v->name = strdup(name);
    v->data = malloc(nb ? nb : 1);
    memcpy(v->data, data, nb);
    v->nbytes = nb;
    v->owns_data = 1;
    v->kind = SP_VAL_CONST;
    v->dtype = dtype;
    v->shape = s;
    v->producer = -1;
    a->type = SP_ATTR_TENSOR;
    a->tensor = v;
}

static void test_constant_range_trilu(void **state)
{
    (void)state;
    tg t;
    /* Constant: value tensor, value_ints, value_float */
    tg_init(&t, 17);
    node(&t, "Constant", NULL, 0, 1);
    const int32_t cv[4] = {1, -2, 3, -4};
    set_tensor_attr(nd(&t), "value", SPRUN_DTYPE_INT32, SH(2, D(2), D(2)), cv);
    eval_ok(&t);
    assert_shape(outv(&t, 0), SH(2, D(2), D(2)));
    assert_memory_equal(outd(&t, 0), cv, sizeof cv);
    tg_free(&t);
    tg_init(&t, 17);
    node(&t, "Constant", NULL, 0, 1);
    sp_node_set_attr_ints(nd(&t), "value_ints", (int64_t[]){5, 6, 7}, 3);
    eval_ok(&t);
    assert_shape(outv(&t, 0), SH(1, D(3)));
    assert_eq_i64(outd(&t, 0), (int64_t[]){5, 6, 7}, 3);
    tg_free(&t);
    tg_init(&t, 17);
    node(&t, "Constant", NULL, 0, 1);
    sp_node_set_attr_float(nd(&t), "value_float", 2.5f);
    eval_ok(&t);
    assert_shape(outv(&t, 0), SH(0));
    assert_true(*(float *)outd(&t, 0) == 2.5f);
    tg_free(&t);
    /* ConstantOfShape: default float 0, int64 value */
    for (int withv = 0; withv < 2; withv++) {
        tg_init(&t, 17);
        int in[1] = {cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(3)), (int64_t[]){2, 3, 5})};
        node(&t, "ConstantOfShape", in, 1, 1);
        if (withv)
            set_tensor_attr(nd(&t), "value", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){-9});
        eval_ok(&t);
        assert_shape(outv(&t, 0), SH(3, D(2), D(3), D(5)));
        assert_int_equal(outv(&t, 0)->dtype, withv ? SPRUN_DTYPE_INT64 : SPRUN_DTYPE_FLOAT);
        for (int i = 0; i < 30; i++) {
            if (withv)
                assert_int_equal(((int64_t *)outd(&t, 0))[i], -9);
            else
                assert_true(((float *)outd(&t, 0))[i] == 0.f);
        }
        tg_free(&t);
    }
    tg_init(&t, 17);
    int ins[1] = {ival(&t, "shp", SPRUN_DTYPE_INT64, SH(1, D(2)))};
    node(&t, "ConstantOfShape", ins, 1, 1);
    assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'shp' of node 'n' is not constant");
    tg_free(&t);
    /* Range: int64 with negative delta (ceil), float */
    tg_init(&t, 17);
    int rin[3] = {cval(&t, "a", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){10}),
                  cval(&t, "b", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){3}),
                  cval(&t, "c", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){-3})};
    node(&t, "Range", rin, 3, 1);
    eval_ok(&t);
    assert_shape(outv(&t, 0), SH(1, D(3)));
    assert_eq_i64(outd(&t, 0), (int64_t[]){10, 7, 4}, 3);
    tg_free(&t);
    tg_init(&t, 17);
    rin[0] = cval(&t, "a", SPRUN_DTYPE_FLOAT, SH(0), (float[]){1.f});
    rin[1] = cval(&t, "b", SPRUN_DTYPE_FLOAT, SH(0), (float[]){2.f});
    rin[2] = cval(&t, "c", SPRUN_DTYPE_FLOAT, SH(0), (float[]){0.25f});
    node(&t, "Range", rin, 3, 1);
    eval_ok(&t);
    assert_shape(outv(&t, 0), SH(1, D(4)));
    assert_close_f32(outd(&t, 0), (float[]){1.f, 1.25f, 1.5f, 1.75f}, 4, 0.f);
    tg_free(&t);
    /* Trilu on [2,3,4]: upper k=1, lower k=-1 */
    float *x = rnd_f32(24);
    for (int upper = 0; upper < 2; upper++) {
        tg_init(&t, 17);
        const int64_t k = upper ? 1 : -1;
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(3), D(4)), x),
                     cval(&t, "k", SPRUN_DTYPE_INT64, SH(0), &k)};
        node(&t, "Trilu", in, 2, 1);
        sp_node_set_attr_int(nd(&t), "upper", upper);
        eval_ok(&t);
        const float *y = outd(&t, 0);
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++) {
                    int keep = upper ? (j - i >= k) : (j - i <= k);
                    float e = keep ? x[(m * 3 + i) * 4 + j] : 0.f;
                    assert_true(y[(m * 3 + i) * 4 + j] == e);
                }
        tg_free(&t);
    }
    free(x);
}

/* The Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain exporters emit,
 * folded node by node as the plan-time folding does. */
static void test_reshape_chain_folds(void **state)
{
    (void)state;
    tg t;
    tg_init(&t, 13);
    sp_graph *g = &t.g;
    sp_err *err = &t.err;
    int x = ival(&t, "x", SPRUN_DTYPE_FLOAT, SH(3, D(2), D(5), D(6)));
    int shp = sp_graph_value(g, "shp", err), b = sp_graph_value(g, "b", err), bu = sp_graph_value(g, "bu", err);
    int cat = sp_graph_value(g, "cat", err), y = sp_graph_value(g, "y", err);
    int i0 = cval(&t, "i0", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){0});
    int ax = cval(&t, "ax", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){0});
    int m1 = cval(&t, "m1", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){-1});
    int n0 = sp_graph_add_node(g, "shape", "Shape", "", (int[]){x}, 1, (int[]){shp}, 1, err);
    int n1 = sp_graph_add_node(g, "gather", "Gather", "", (int[]){shp, i0}, 2, (int[]){b}, 1, err);
    int n2 = sp_graph_add_node(g, "unsq", "Unsqueeze", "", (int[]){b, ax}, 2, (int[]){bu}, 1, err);
    int n3 = sp_graph_add_node(g, "concat", "Concat", "", (int[]){bu, m1}, 2, (int[]){cat}, 1, err);
    sp_node_set_attr_int(&g->nodes[n3], "axis", 0);
    int n4 = sp_graph_add_node(g, "reshape", "Reshape", "", (int[]){x, cat}, 2, (int[]){y}, 1, err);
    int chain[4] = {n0, n1, n2, n3};
    for (int k = 0; k < 4; k++) {
        assert_true(sp_node_foldable(g, chain[k]));
        if (sp_node_eval_const(g, chain[k], 1, err))
            fail_msg("%s", err->msg);
    }
    assert_shape(&g->values[cat], SH(1, D(2)));
    assert_eq_i64(g->values[cat].data, (int64_t[]){2, -1}, 2);
    /* Reshape's infer now sees a constant shape */
    assert_int_equal(g->nodes[n4].op->infer(g, &g->nodes[n4], err), 0);
    assert_shape(&g->values[y], SH(2, D(2), D(30)));
    tg_free(&t);
}


/* ------------------------------------------------------------------------ */
/* Threaded kernels give the bytes of the single-threaded fold               */
/* ------------------------------------------------------------------------ */

/* Builds the node on random inputs, folds it (1 thread, the reference), then
 * runs cpu_run again through a 4-thread pool and compares bytes. */
static void threaded_case(const char *op, int n_in, const int *dts, const sp_shape *shapes, const char *attr,
                          const int64_t *ints, int n_ints, sp_threadpool *pool)
{
    tg t;
    tg_init(&t, 17);
    int in[4];
    void *bufs[4];
    for (int i = 0; i < n_in; i++) {
        int64_t n = sp_shape_numel(&shapes[i]);
        size_t nb = (size_t)n * sp_dtype_size(dts[i]);
        unsigned char *p = malloc(nb ? nb : 1);
        if (dts[i] == SPRUN_DTYPE_FLOAT)
            for (int64_t k = 0; k < n; k++)
                ((float *)p)[k] = rnd();
        else if (dts[i] == SPRUN_DTYPE_BOOL)
            for (int64_t k = 0; k < n; k++)
                p[k] = rng_u32() & 1;
        else if (dts[i] == SPRUN_DTYPE_INT64)
            for (int64_t k = 0; k < n; k++)
                ((int64_t *)p)[k] = (int64_t)(rng_u32() % 64) - 32;
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        in[i] = cval(&t, nm, dts[i], shapes[i], p);
        bufs[i] = p;
    }
    node(&t, op, in, n_in, 1);
    if (attr && n_ints == 1)
        sp_node_set_attr_int(nd(&t), attr, ints[0]);
    else if (attr)
        sp_node_set_attr_ints(nd(&t), attr, ints, n_ints);
    eval_ok(&t);
    const sp_value *y = outv(&t, 0);
    size_t nb = (size_t)sp_shape_numel(&y->shape) * sp_dtype_size(y->dtype);
    void *got = calloc(1, nb ? nb : 1);
    sp_tensor ti[4], to[1] = {{.dtype = y->dtype, .shape = y->shape, .data = got}};
    for (int i = 0; i < n_in; i++)
        ti[i] = (sp_tensor){.dtype = dts[i], .shape = shapes[i], .data = bufs[i]};
    sp_cpu_ctx ctx = {.nthreads = 4, .pool = pool, .graph = &t.g};
    sp_err err;
    assert_int_equal(nd(&t)->op->cpu_run(nd(&t), ti, n_in, to, 1, &ctx, &err), 0);
    if (memcmp(got, y->data, nb) != 0)
        fail_msg("%s: threaded result differs", op);
    free(got);
    for (int i = 0; i < n_in; i++)
        free(bufs[i]);
    tg_free(&t);
}

static void test_threaded(void **state)
{
    (void)state;
    sp_threadpool *pool = sp_threadpool_create(4);
    assert_non_null(pool);
    const int F = SPRUN_DTYPE_FLOAT;
    threaded_case("Add", 2, (int[]){F, F}, (sp_shape[]){SH(1, D(300001)), SH(1, D(300001))}, NULL, NULL, 0, pool);
    threaded_case("Mul", 2, (int[]){F, F}, (sp_shape[]){SH(1, D(300001)), SH(0)}, NULL, NULL, 0, pool);
    threaded_case("Add", 2, (int[]){F, F}, (sp_shape[]){SH(3, D(4), D(128), D(768)), SH(1, D(768))}, NULL, NULL, 0,
                  pool);
    threaded_case("Sub", 2, (int[]){F, F}, (sp_shape[]){SH(4, D(2), D(64), D(28), D(28)), SH(3, D(64), D(1), D(1))},
                  NULL, NULL, 0, pool);
    threaded_case("Exp", 1, (int[]){F}, (sp_shape[]){SH(2, D(513), D(257))}, NULL, NULL, 0, pool);
    threaded_case("Transpose", 1, (int[]){F}, (sp_shape[]){SH(4, D(4), D(128), D(12), D(64))}, "perm",
                  (int64_t[]){0, 2, 1, 3}, 4, pool);
    threaded_case("Transpose", 1, (int[]){F}, (sp_shape[]){SH(2, D(300), D(517))}, "perm", (int64_t[]){1, 0}, 2, pool);
    threaded_case("Transpose", 1, (int[]){F}, (sp_shape[]){SH(4, D(2), D(64), D(30), D(30))}, "perm",
                  (int64_t[]){0, 2, 3, 1}, 4, pool);
    threaded_case("Cast", 1, (int[]){F}, (sp_shape[]){SH(1, D(200003))}, "to", (int64_t[]){SPRUN_DTYPE_FLOAT16}, 1,
                  pool);
    threaded_case("Where", 3, (int[]){SPRUN_DTYPE_BOOL, F, F},
                  (sp_shape[]){SH(3, D(1), D(128), D(128)), SH(3, D(12), D(128), D(128)), SH(0)}, NULL, NULL, 0, pool);
    threaded_case("ReduceMean", 1, (int[]){F}, (sp_shape[]){SH(3, D(4), D(128), D(768))}, "axes", (int64_t[]){-1}, 1,
                  pool);
    threaded_case("ReduceMax", 1, (int[]){F}, (sp_shape[]){SH(3, D(4), D(128), D(768))}, "axes", (int64_t[]){1}, 1,
                  pool);
    threaded_case("Gather", 2, (int[]){F, SPRUN_DTYPE_INT64}, (sp_shape[]){SH(2, D(64), D(768)), SH(2, D(4), D(500))},
                  NULL, NULL, 0, pool);
    sp_threadpool_destroy(pool);
}

/* ------------------------------------------------------------------------ */
/* check(): attribute and arity errors name the node and the attribute       */
/* ------------------------------------------------------------------------ */

static void check_fails(const char *op, int opset, int n_in, int n_out, const char *attr, int64_t v, int code,
                         const char *substr)
{
    tg t;
    tg_init(&t, opset);
    const float x[4] = {1, 2, 3, 4};
    int in[3];
    for (int i = 0; i < n_in; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        in[i] = cval(&t, nm, SPRUN_DTYPE_FLOAT, SH(1, D(4)), x);
    }
    node(&t, op, in, n_in, n_out);
    if (attr)
        sp_node_set_attr_int(nd(&t), attr, v);
    assert_err(&t, code, substr);
    if (code && !strstr(t.err.msg, "'n' ("))
        fail_msg("message '%s' does not name the node", t.err.msg);
    tg_free(&t);
}

static void test_check_errors(void **state)
{
    (void)state;
    check_fails("Concat", 17, 2, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "'axis' is required");
    check_fails("Cast", 17, 1, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "'to' is required");
    check_fails("Cast", 17, 1, 1, "to", SPRUN_DTYPE_STRING, SPRUN_ERR_UNSUPPORTED, "'to'");
    check_fails("Mod", 17, 2, 1, "fmod", 2, SPRUN_ERR_INVALID_ARGUMENT, "'fmod'");
    check_fails("Trilu", 17, 1, 1, "upper", 5, SPRUN_ERR_INVALID_ARGUMENT, "'upper'");
    check_fails("Reshape", 17, 1, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "inputs");
    check_fails("Add", 17, 1, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "inputs");
    check_fails("Where", 17, 2, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "inputs");
    check_fails("Constant", 17, 0, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "'value'");
    check_fails("Constant", 17, 0, 1, "value_string", 0, SPRUN_ERR_UNSUPPORTED, "'value_string'");
    check_fails("Unsqueeze", 11, 1, 1, NULL, 0, SPRUN_ERR_INVALID_ARGUMENT, "'axes' is required");
    check_fails("ReduceSum", 13, 1, 1, "axes", 0, SPRUN_ERR_INVALID_ARGUMENT, "'axes' is not allowed");
    check_fails("Split", 18, 1, 2, "num_outputs", 3, SPRUN_ERR_INVALID_ARGUMENT, "'num_outputs'");
    check_fails("Flatten", 17, 1, 1, "axis", 3, SPRUN_ERR_INVALID_ARGUMENT, "'axis'");
    check_fails("Gather", 17, 2, 1, "axis", 0, SPRUN_ERR_UNSUPPORTED, "int32 or int64"); /* float indices */
    check_fails("Transpose", 17, 1, 1, NULL, 0, 0, NULL);
    {
        tg t; /* perm that is not a permutation */
        tg_init(&t, 17);
        int in[1] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(2)), (float[]){1, 2, 3, 4})};
        node(&t, "Transpose", in, 1, 1);
        sp_node_set_attr_ints(nd(&t), "perm", (int64_t[]){0, 0}, 2);
        assert_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "'perm'");
        tg_free(&t);
    }
    {
        tg t; /* Range with delta 0, Tile with the wrong repeat count */
        tg_init(&t, 17);
        int in[3] = {cval(&t, "a", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){0}),
                     cval(&t, "b", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){5}),
                     cval(&t, "c", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){0})};
        node(&t, "Range", in, 3, 1);
        assert_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "delta");
        tg_free(&t);
        tg_init(&t, 17);
        int in2[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(2)), (float[]){1, 2, 3, 4}),
                      cval(&t, "r", SPRUN_DTYPE_INT64, SH(1, D(3)), (int64_t[]){1, 2, 3})};
        node(&t, "Tile", in2, 2, 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "repeats");
        tg_free(&t);
        tg_init(&t, 17);
        int in3[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(2, D(2), D(2)), (float[]){1, 2, 3, 4}),
                      ival(&t, "reps", SPRUN_DTYPE_INT64, SH(1, D(2)))};
        node(&t, "Tile", in3, 2, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'reps' of node 'n' is not constant");
        tg_free(&t);
        tg_init(&t, 17);
        int in4[3] = {ival(&t, "start", SPRUN_DTYPE_INT64, SH(0)), cval(&t, "b", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){5}),
                      cval(&t, "c", SPRUN_DTYPE_INT64, SH(0), (int64_t[]){1})};
        node(&t, "Range", in4, 3, 1);
        assert_err(&t, SPRUN_ERR_UNSUPPORTED, "data-dependent shape: input 'start' of node 'n' is not constant");
        tg_free(&t);
    }
    {
        /* shapes read from data that would overflow size arithmetic */
        tg t;
        const int64_t big = INT64_C(1) << 40;
        tg_init(&t, 17);
        int in[2] = {cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(1, D(4)), (float[]){1, 2, 3, 4}),
                     cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(3)), (int64_t[]){big, big, -1})};
        node(&t, "Reshape", in, 2, 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "too large");
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(1, D(4)), (float[]){1, 2, 3, 4});
        in[1] = cval(&t, "r", SPRUN_DTYPE_INT64, SH(1, D(1)), (int64_t[]){INT64_MAX / 2});
        node(&t, "Tile", in, 2, 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "too large");
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "s", SPRUN_DTYPE_INT64, SH(1, D(2)), (int64_t[]){big, big});
        node(&t, "ConstantOfShape", in, 1, 1);
        assert_err(&t, SPRUN_ERR_SHAPE, "too large");
        tg_free(&t);
        tg_init(&t, 17);
        in[0] = cval(&t, "x", SPRUN_DTYPE_FLOAT, SH(1, D(4)), (float[]){1, 2, 3, 4});
        in[1] = cval(&t, "s", SPRUN_DTYPE_INT64, SH(2, D(1), D(1)), (int64_t[]){big});
        node(&t, "Expand", in, 2, 1);
        assert_err(&t, SPRUN_ERR_SHAPE, NULL);
        tg_free(&t);
        int64_t lims[2][3] = {{INT64_MIN, INT64_MAX, 1}, {INT64_MAX, INT64_MIN, -1}};
        for (int k = 0; k < 2; k++) {
            tg_init(&t, 17);
            int r[3] = {cval(&t, "a", SPRUN_DTYPE_INT64, SH(0), &lims[k][0]),
                        cval(&t, "b", SPRUN_DTYPE_INT64, SH(0), &lims[k][1]),
                        cval(&t, "c", SPRUN_DTYPE_INT64, SH(0), &lims[k][2])};
            node(&t, "Range", r, 3, 1);
            assert_err(&t, SPRUN_ERR_SHAPE, "too large");
            tg_free(&t);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_binary_shape_error),
        cmocka_unit_test(test_integer_arith),
        cmocka_unit_test(test_pow_mixed),
        cmocka_unit_test(test_compare_logic_where),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_fp16_elementwise),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_flatten_squeeze_unsqueeze),
        cmocka_unit_test(test_shape_size_expand_tile),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_concat_split),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_cast_fp16_bits),
        cmocka_unit_test(test_constant_range_trilu),
        cmocka_unit_test(test_reshape_chain_folds),
        cmocka_unit_test(test_threaded),
        cmocka_unit_test(test_check_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
