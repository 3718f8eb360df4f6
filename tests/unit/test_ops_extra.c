/*
 * test_ops_extra.c - the op families added for exported models: ArgMax/
 * ArgMin, unary math (trig, Round, Shrink, PRelu), Pad, Resize/Upsample,
 * CumSum, DepthToSpace/SpaceToDepth, OneHot, TopK, GatherND/ScatterND/
 * ScatterElements and EyeLike. One-node graphs on random data evaluated
 * through sp_node_eval_const and compared with naive reference loops, plus
 * the unsupported-attribute and data-dependent-shape errors.
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

/* ---- harness ---------------------------------------------------------------- */

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint32_t ru32(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return (uint32_t)((rs * 0x2545f4914f6cdd1dull) >> 32);
}
static float runi(float lo, float hi) { return lo + (hi - lo) * (float)(ru32() / 4294967296.0); }

static float *rnd_f(int64_t n, float lo, float hi)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = runi(lo, hi);
    return p;
}

static sp_shape shp(int rank, const int64_t *d) { return sp_shape_make(rank, d); }

typedef struct tg {
    sp_graph g;
    sp_err err;
    int node, out[2];
} tg;

static void tg_init(tg *t, int64_t opset)
{
    memset(t, 0, sizeof *t);
    sp_graph_init(&t->g);
    t->g.opset = opset;
}

static int konst(tg *t, int dtype, sp_shape s, const void *data)
{
    int v = sp_graph_new_value(&t->g, "c", &t->err);
    assert_true(v >= 0);
    size_t nb = (size_t)sp_shape_numel(&s) * sp_dtype_size(dtype);
    void *p = malloc(nb ? nb : 1);
    assert_non_null(p);
    if (nb)
        memcpy(p, data, nb);
    sp_value_set_const(&t->g.values[v], dtype, &s, p, nb, 1);
    return v;
}

static int input(tg *t, int dtype, sp_shape s)
{
    int v = sp_graph_new_value(&t->g, "i", &t->err);
    assert_true(v >= 0);
    t->g.values[v].kind = SP_VAL_INPUT;
    t->g.values[v].dtype = dtype;
    t->g.values[v].shape = s;
    return v;
}

static sp_node *mk(tg *t, const char *op, const int *in, int n_in, int n_out)
{
    for (int i = 0; i < n_out; i++) {
        t->out[i] = sp_graph_new_value(&t->g, "y", &t->err);
        assert_true(t->out[i] >= 0);
    }
    t->node = sp_graph_add_node(&t->g, "n", op, "", in, n_in, t->out, n_out, &t->err);
    assert_true(t->node >= 0);
    assert_non_null(t->g.nodes[t->node].op);
    return &t->g.nodes[t->node];
}

static int run_rc(tg *t) { return sp_node_eval_const(&t->g, t->node, 1, &t->err); }
static void run_ok(tg *t)
{
    if (run_rc(t))
        fail_msg("%s", t->err.msg);
}
static sp_value *yv(tg *t, int i) { return &t->g.values[t->out[i]]; }
static void expect_err(tg *t, int code, const char *sub)
{
    int rc = run_rc(t);
    if (rc != code)
        fail_msg("rc %d (%s), expected %d", rc, t->err.msg, code);
    if (sub && !strstr(t->err.msg, sub))
        fail_msg("message '%s' lacks '%s'", t->err.msg, sub);
}

static void close_f(const float *got, const float *ref, int64_t n, float tol)
{
    for (int64_t i = 0; i < n; i++) {
        if (got[i] == ref[i] || (isnan(got[i]) && isnan(ref[i])))
            continue;
        if (!(fabsf(got[i] - ref[i]) <= tol * (1.f + fabsf(ref[i]))))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, got[i], ref[i]);
    }
}

static void eq_i64(const int64_t *got, const int64_t *ref, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (got[i] != ref[i])
            fail_msg("element %lld: got %lld, expected %lld", (long long)i, (long long)got[i], (long long)ref[i]);
}

static void shape_is(const sp_value *v, int rank, const int64_t *d)
{
    sp_shape s = shp(rank, d);
    char a[96], b[96];
    if (!sp_shape_equal(&v->shape, &s))
        fail_msg("shape %s, expected %s", sp_shape_str(&v->shape, a, sizeof a), sp_shape_str(&s, b, sizeof b));
}

/* ---- ArgMax / ArgMin ---------------------------------------------------------- */

static void test_argminmax(void **st)
{
    (void)st;
    const int64_t d[3] = {3, 4, 5};
    for (int ty = 0; ty < 2; ty++)
        for (int op = 0; op < 2; op++)
            for (int axis = -3; axis < 3; axis++)
                for (int keep = 0; keep < 2; keep++)
                    for (int last = 0; last < 2; last++) {
                        float xf[60];
                        int32_t xi[60];
                        for (int i = 0; i < 60; i++) {
                            xi[i] = (int32_t)(ru32() % 4); /* many ties */
                            xf[i] = ty ? (float)xi[i] : runi(-3, 3);
                        }
                        tg t;
                        tg_init(&t, 13);
                        int x = ty ? konst(&t, SPRUN_DTYPE_INT32, shp(3, d), xi)
                                   : konst(&t, SPRUN_DTYPE_FLOAT, shp(3, d), xf);
                        sp_node *n = mk(&t, op ? "ArgMin" : "ArgMax", &x, 1, 1);
                        sp_node_set_attr_int(n, "axis", axis);
                        sp_node_set_attr_int(n, "keepdims", keep);
                        sp_node_set_attr_int(n, "select_last_index", last);
                        run_ok(&t);
                        const int a = axis < 0 ? axis + 3 : axis;
                        int64_t od[3], r = 0;
                        for (int k = 0; k < 3; k++)
                            if (k != a || keep)
                                od[r++] = k == a ? 1 : d[k];
                        shape_is(yv(&t, 0), (int)r, od);
                        assert_int_equal(yv(&t, 0)->dtype, SPRUN_DTYPE_INT64);
                        const int64_t *y = yv(&t, 0)->data;
                        int64_t st[3] = {20, 5, 1}, ref[60], cnt = 0;
                        for (int64_t i0 = 0; i0 < (a == 0 ? 1 : 3); i0++)
                            for (int64_t i1 = 0; i1 < (a == 1 ? 1 : 4); i1++)
                                for (int64_t i2 = 0; i2 < (a == 2 ? 1 : 5); i2++) {
                                    int64_t best = 0;
                                    float bv = 0;
                                    for (int64_t k = 0; k < d[a]; k++) {
                                        int64_t off = i0 * st[0] + i1 * st[1] + i2 * st[2] + k * st[a];
                                        float v = xf[off];
                                        int better = k == 0 || (op ? (last ? v <= bv : v < bv)
                                                                   : (last ? v >= bv : v > bv));
                                        if (better)
                                            bv = v, best = k;
                                    }
                                    ref[cnt++] = best;
                                }
                        eq_i64(y, ref, cnt);
                        sp_graph_free(&t.g);
                    }
}

/* ---- unary math ----------------------------------------------------------------- */

static double ref_unary(const char *op, double v)
{
    if (!strcmp(op, "Sin")) return sin(v);
    if (!strcmp(op, "Cos")) return cos(v);
    if (!strcmp(op, "Tan")) return tan(v);
    if (!strcmp(op, "Asin")) return asin(v);
    if (!strcmp(op, "Acos")) return acos(v);
    if (!strcmp(op, "Atan")) return atan(v);
    if (!strcmp(op, "Sinh")) return sinh(v);
    if (!strcmp(op, "Cosh")) return cosh(v);
    if (!strcmp(op, "Asinh")) return asinh(v);
    if (!strcmp(op, "Acosh")) return acosh(v);
    if (!strcmp(op, "Atanh")) return atanh(v);
    return nearbyint(v); /* Round */
}

static void test_unary_math(void **st)
{
    (void)st;
    static const char *ops[] = {"Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh",
                                "Atanh", "Round"};
    const int64_t d[2] = {7, 33};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (int half = 0; half < 2; half++) {
            const char *op = ops[o];
            float lo = -0.99f, hi = 0.99f;
            if (!strcmp(op, "Acosh"))
                lo = 1.f, hi = 5.f;
            else if (!strcmp(op, "Round") || !strcmp(op, "Sinh") || !strcmp(op, "Cosh") || !strcmp(op, "Atan"))
                lo = -4.f, hi = 4.f;
            float *x = rnd_f(231, lo, hi);
            if (!strcmp(op, "Round")) { /* exact halves: to even */
                x[0] = 0.5f, x[1] = 1.5f, x[2] = 2.5f, x[3] = -0.5f, x[4] = -2.5f;
            }
            uint16_t xh[231];
            for (int i = 0; i < 231; i++) {
                xh[i] = sp_f32_to_f16(x[i]);
                if (half)
                    x[i] = sp_f16_to_f32(xh[i]);
            }
            tg t;
            tg_init(&t, 13);
            int xv = half ? konst(&t, SPRUN_DTYPE_FLOAT16, shp(2, d), xh) : konst(&t, SPRUN_DTYPE_FLOAT, shp(2, d), x);
            mk(&t, op, &xv, 1, 1);
            run_ok(&t);
            float got[231], ref[231];
            for (int i = 0; i < 231; i++) {
                ref[i] = (float)ref_unary(op, x[i]);
                got[i] = half ? sp_f16_to_f32(((uint16_t *)yv(&t, 0)->data)[i]) : ((float *)yv(&t, 0)->data)[i];
                if (half)
                    ref[i] = sp_f16_to_f32(sp_f32_to_f16(ref[i]));
            }
            close_f(got, ref, 231, half ? 2e-3f : 2e-6f);
            if (!strcmp(op, "Round") && !half) {
                const float want[5] = {0.f, 2.f, 2.f, -0.f, -2.f};
                close_f(got, want, 5, 0.f);
            }
            free(x);
            sp_graph_free(&t.g);
        }
}

static void test_shrink_prelu(void **st)
{
    (void)st;
    /* Shrink on float and int32 */
    {
        const int64_t d[1] = {64};
        float *x = rnd_f(64, -3, 3);
        tg t;
        tg_init(&t, 13);
        int xv = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, d), x);
        sp_node *n = mk(&t, "Shrink", &xv, 1, 1);
        sp_node_set_attr_float(n, "lambd", 1.25f);
        sp_node_set_attr_float(n, "bias", 0.5f);
        run_ok(&t);
        float ref[64];
        for (int i = 0; i < 64; i++)
            ref[i] = x[i] < -1.25f ? x[i] + 0.5f : (x[i] > 1.25f ? x[i] - 0.5f : 0.f);
        close_f(yv(&t, 0)->data, ref, 64, 0.f);
        free(x);
        sp_graph_free(&t.g);
        int32_t xi[5] = {-5, -1, 0, 2, 7}, want[5] = {-3, 0, 0, 0, 5};
        tg_init(&t, 13);
        xv = konst(&t, SPRUN_DTYPE_INT32, shp(1, (int64_t[]){5}), xi);
        n = mk(&t, "Shrink", &xv, 1, 1);
        sp_node_set_attr_float(n, "lambd", 1.5f);
        sp_node_set_attr_float(n, "bias", 2.f);
        run_ok(&t);
        assert_memory_equal(yv(&t, 0)->data, want, sizeof want);
        sp_graph_free(&t.g);
    }
    /* PRelu: slope [C,1,1] and [W] broadcast against [N,C,H,W] */
    for (int form = 0; form < 2; form++) {
        const int64_t d[4] = {2, 3, 4, 5};
        const int64_t sd1[3] = {3, 1, 1}, sd2[1] = {5};
        float *x = rnd_f(120, -2, 2), *s = rnd_f(5, -1, 1);
        tg t;
        tg_init(&t, 16);
        int in[2] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(4, d), x),
                     form ? konst(&t, SPRUN_DTYPE_FLOAT, shp(1, sd2), s) : konst(&t, SPRUN_DTYPE_FLOAT, shp(3, sd1), s)};
        mk(&t, "PRelu", in, 2, 1);
        run_ok(&t);
        float ref[120];
        for (int i = 0; i < 120; i++) {
            float sl = form ? s[i % 5] : s[(i / 20) % 3];
            ref[i] = x[i] < 0 ? x[i] * sl : x[i];
        }
        close_f(yv(&t, 0)->data, ref, 120, 0.f);
        free(x);
        free(s);
        sp_graph_free(&t.g);
    }
}

/* ---- Pad ------------------------------------------------------------------------- */

static int64_t ref_src(int mode, int64_t i, int64_t n)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == 0)
        return -1;
    if (mode == 2)
        return i < 0 ? 0 : n - 1;
    if (mode == 3)
        return ((i % n) + n) % n;
    /* reflect by walking back and forth */
    int64_t p = 0, dir = 1;
    if (n == 1)
        return 0;
    for (int64_t s = 0, steps = i < 0 ? -i : i; s < steps; s++) {
        if (i < 0) {
            p -= dir;
            if (p < 0) p = 1, dir = -1;
            if (p >= n) p = n - 2, dir = 1;
        } else {
            p += dir;
            if (p >= n) p = n - 2, dir = -1;
            if (p < 0) p = 1, dir = 1;
        }
    }
    return p;
}

static void test_pad(void **st)
{
    (void)st;
    static const char *modes[] = {"constant", "reflect", "edge", "wrap"};
    const int64_t d[3] = {2, 3, 4};
    for (int m = 0; m < 4; m++)
        for (int form = 0; form < 3; form++) { /* 0: opset 2 attrs, 1: opset 13 inputs, 2: opset 18 axes */
            int64_t pads[6] = {1, 2, 3, 0, 1, 2};
            if (m != 1)
                pads[3] = -1, pads[2] = -1, pads[5] = 4; /* crops too: end of dim 0, begin of dim 2 */
            if (m == 1)
                pads[2] = 3, pads[5] = 3; /* reflect needs pad < dim */
            if (form == 2)
                pads[0] = pads[3] = 0;
            float *x = rnd_f(24, -1, 1), cv = 0.75f;
            tg t;
            tg_init(&t, form == 0 ? 2 : (form == 1 ? 13 : 18));
            int in[4] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(3, d), x), -1, -1, -1};
            sp_node *n;
            if (form == 0) {
                n = mk(&t, "Pad", in, 1, 1);
                sp_node_set_attr_ints(n, "pads", pads, 6);
                sp_node_set_attr_float(n, "value", cv);
            } else if (form == 1) {
                in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){6}), pads);
                in[2] = konst(&t, SPRUN_DTYPE_FLOAT, shp(0, NULL), &cv);
                n = mk(&t, "Pad", in, 3, 1);
            } else {
                const int64_t ax[2] = {-2, 2}, p4[4] = {pads[1], pads[2], pads[4], pads[5]};
                in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){4}), p4);
                in[2] = konst(&t, SPRUN_DTYPE_FLOAT, shp(0, NULL), &cv);
                in[3] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), ax);
                n = mk(&t, "Pad", in, 4, 1);
            }
            sp_node_set_attr_string(n, "mode", modes[m]);
            run_ok(&t);
            int64_t od[3];
            for (int k = 0; k < 3; k++)
                od[k] = d[k] + pads[k] + pads[3 + k];
            shape_is(yv(&t, 0), 3, od);
            const int64_t cnt = od[0] * od[1] * od[2];
            float *ref = malloc((size_t)cnt * sizeof *ref);
            for (int64_t i = 0; i < cnt; i++) {
                int64_t o[3] = {i / (od[1] * od[2]), (i / od[2]) % od[1], i % od[2]}, off = 0;
                int fill = 0;
                for (int k = 0; k < 3; k++) {
                    /* negative pads crop first, the mode pads the cropped view */
                    const int64_t cb = pads[k] < 0 ? -pads[k] : 0, ce = pads[3 + k] < 0 ? -pads[3 + k] : 0;
                    int64_t s = ref_src(m, o[k] - (pads[k] > 0 ? pads[k] : 0), d[k] - cb - ce);
                    if (s < 0)
                        fill = 1;
                    off = off * d[k] + s + cb;
                }
                ref[i] = fill ? cv : x[off];
            }
            close_f(yv(&t, 0)->data, ref, cnt, 0.f);
            free(ref);
            free(x);
            sp_graph_free(&t.g);
        }
    /* int8 edge pad, and the data-dependent error */
    {
        int8_t x[3] = {1, -2, 3}, want[6] = {1, 1, -2, 3, 3, 3};
        int64_t pads[2] = {1, 2};
        tg t;
        tg_init(&t, 13);
        int in[2] = {konst(&t, SPRUN_DTYPE_INT8, shp(1, (int64_t[]){3}), x),
                     konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), pads)};
        sp_node *n = mk(&t, "Pad", in, 2, 1);
        sp_node_set_attr_string(n, "mode", "edge");
        run_ok(&t);
        assert_memory_equal(yv(&t, 0)->data, want, 6);
        sp_graph_free(&t.g);
        tg_init(&t, 13);
        in[0] = konst(&t, SPRUN_DTYPE_INT8, shp(1, (int64_t[]){3}), x);
        in[1] = input(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}));
        mk(&t, "Pad", in, 2, 1);
        assert_int_equal(sp_node_eval_const(&t.g, t.node, 1, &t.err) != 0, 1);
        sp_node *nn = &t.g.nodes[t.node];
        assert_int_equal(nn->op->infer(&t.g, nn, &t.err), SPRUN_ERR_UNSUPPORTED);
        assert_non_null(strstr(t.err.msg, "data-dependent shape"));
        sp_graph_free(&t.g);
    }
}

/* ---- Resize ------------------------------------------------------------------------ */

/* Naive 1-D weights of the ONNX reference for output coordinate o. */
static int ref_taps(const char *mode, const char *ct, const char *nm, double a, int excl, int64_t o, int64_t lin,
                    int64_t lout, double scale, int64_t *idx, double *w)
{
    double x = (double)o, xo;
    if (!strcmp(ct, "half_pixel"))
        xo = (x + 0.5) / scale - 0.5;
    else if (!strcmp(ct, "pytorch_half_pixel"))
        xo = lout > 1 ? (x + 0.5) / scale - 0.5 : 0;
    else if (!strcmp(ct, "align_corners"))
        xo = scale * lin == 1 ? 0 : x * (lin - 1) / (scale * lin - 1);
    else if (!strcmp(ct, "tf_half_pixel_for_nn"))
        xo = (x + 0.5) / scale;
    else
        xo = x / scale;
    if (!strcmp(mode, "nearest")) {
        double r;
        if (!strcmp(nm, "floor"))
            r = floor(xo);
        else if (!strcmp(nm, "ceil"))
            r = ceil(xo);
        else if (!strcmp(nm, "round_prefer_ceil"))
            r = floor(xo + 0.5);
        else
            r = ceil(xo - 0.5);
        int64_t i = (int64_t)r;
        idx[0] = i < 0 ? 0 : (i >= lin ? lin - 1 : i);
        w[0] = 1;
        return 1;
    }
    double f = floor(xo);
    int n = !strcmp(mode, "linear") ? 2 : 4;
    int64_t first = (int64_t)f - (n == 4 ? 1 : 0);
    double sum = 0;
    for (int k = 0; k < n; k++) {
        double dd = fabs((double)(first + k) - xo); /* distance to the tap */
        if (n == 2)
            w[k] = 1 - dd;
        else if (dd <= 1)
            w[k] = ((a + 2) * dd - (a + 3)) * dd * dd + 1;
        else
            w[k] = ((a * dd - 5 * a) * dd + 8 * a) * dd - 4 * a;
        int64_t i = first + k;
        if (excl && (i < 0 || i >= lin))
            w[k] = 0;
        sum += w[k];
        idx[k] = i < 0 ? 0 : (i >= lin ? lin - 1 : i);
    }
    if (excl)
        for (int k = 0; k < n; k++)
            w[k] /= sum;
    return n;
}

static void test_resize(void **st)
{
    (void)st;
    static const struct {
        const char *mode, *ct, *nm;
        int excl, use_sizes;
        float sh, sw;
        int64_t oh, ow;
    } cases[] = {
        {"nearest", "asymmetric", "floor", 0, 0, 2.f, 3.f, 0, 0},
        {"nearest", "half_pixel", "round_prefer_floor", 0, 0, 0.5f, 1.5f, 0, 0},
        {"nearest", "tf_half_pixel_for_nn", "round_prefer_ceil", 0, 1, 0, 0, 7, 3},
        {"nearest", "align_corners", "ceil", 0, 1, 0, 0, 5, 9},
        {"linear", "half_pixel", "", 0, 0, 2.f, 2.f, 0, 0},
        {"linear", "pytorch_half_pixel", "", 0, 1, 0, 0, 3, 1},
        {"linear", "align_corners", "", 0, 0, 0.6f, 1.7f, 0, 0},
        {"linear", "asymmetric", "", 0, 1, 0, 0, 11, 2},
        {"cubic", "half_pixel", "", 0, 0, 1.5f, 0.8f, 0, 0},
        {"cubic", "asymmetric", "", 1, 1, 0, 0, 9, 13},
        {"cubic", "align_corners", "", 1, 0, 2.f, 0.5f, 0, 0},
    };
    const int64_t d[4] = {2, 3, 6, 7};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *x = rnd_f(252, -1, 1);
        tg t;
        tg_init(&t, 13);
        float sc[4] = {1, 1, cases[c].sh, cases[c].sw};
        int64_t sz[4] = {2, 3, cases[c].oh, cases[c].ow};
        int in[4] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(4, d), x), konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){0}), NULL),
                     -1, -1};
        in[2] = cases[c].use_sizes ? konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){0}), NULL)
                                   : konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){4}), sc);
        if (cases[c].use_sizes)
            in[3] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){4}), sz);
        sp_node *n = mk(&t, "Resize", in, cases[c].use_sizes ? 4 : 3, 1);
        sp_node_set_attr_string(n, "mode", cases[c].mode);
        sp_node_set_attr_string(n, "coordinate_transformation_mode", cases[c].ct);
        if (cases[c].nm[0])
            sp_node_set_attr_string(n, "nearest_mode", cases[c].nm);
        sp_node_set_attr_int(n, "exclude_outside", cases[c].excl);
        run_ok(&t);
        int64_t oh = cases[c].use_sizes ? cases[c].oh : (int64_t)floor(6.0 * cases[c].sh);
        int64_t ow = cases[c].use_sizes ? cases[c].ow : (int64_t)floor(7.0 * cases[c].sw);
        double shs = cases[c].use_sizes ? (double)oh / 6 : cases[c].sh, sws = cases[c].use_sizes ? (double)ow / 7 : cases[c].sw;
        shape_is(yv(&t, 0), 4, (int64_t[]){2, 3, oh, ow});
        const int64_t cnt = 6 * oh * ow;
        float *ref = malloc((size_t)cnt * sizeof *ref);
        /* every dim is mapped, N and C too (scale 1: identity except for tf_half_pixel_for_nn) */
        for (int64_t p = 0; p < 6; p++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    int64_t ni[4], ci[4], hi[4], wi[4];
                    double nw_[4], cw[4], hw[4], ww[4];
                    const char *m = cases[c].mode, *ct = cases[c].ct, *nm = cases[c].nm;
                    int nn = ref_taps(m, ct, nm, -0.75, cases[c].excl, p / 3, 2, 2, 1.0, ni, nw_);
                    int nc = ref_taps(m, ct, nm, -0.75, cases[c].excl, p % 3, 3, 3, 1.0, ci, cw);
                    int nh = ref_taps(m, ct, nm, -0.75, cases[c].excl, i, 6, oh, shs, hi, hw);
                    int nw = ref_taps(m, ct, nm, -0.75, cases[c].excl, j, 7, ow, sws, wi, ww);
                    double acc = 0;
                    for (int e = 0; e < nn; e++)
                        for (int f = 0; f < nc; f++)
                            for (int a = 0; a < nh; a++)
                                for (int b = 0; b < nw; b++)
                                    acc += nw_[e] * cw[f] * hw[a] * ww[b] *
                                           x[((ni[e] * 3 + ci[f]) * 6 + hi[a]) * 7 + wi[b]];
                    ref[(p * oh + i) * ow + j] = (float)acc;
                }
        close_f(yv(&t, 0)->data, ref, cnt, 1e-5f);
        free(ref);
        free(x);
        sp_graph_free(&t.g);
    }
    /* rows wider than the stack blend (2048): the per-element path, fp16 and fp32 */
    for (int half = 0; half < 2; half++) {
        const int64_t H = 3, W = 2100, OH = 4, OW = 1050;
        float *x = rnd_f(H * W, -1, 1);
        uint16_t *xh = malloc(sizeof(uint16_t) * (size_t)(H * W));
        for (int64_t i = 0; i < H * W; i++) {
            xh[i] = sp_f32_to_f16(x[i]);
            if (half)
                x[i] = sp_f16_to_f32(xh[i]);
        }
        const int64_t sz[2] = {OH, OW};
        tg t;
        tg_init(&t, 13);
        int in[4] = {half ? konst(&t, SPRUN_DTYPE_FLOAT16, shp(2, (int64_t[]){H, W}), xh)
                          : konst(&t, SPRUN_DTYPE_FLOAT, shp(2, (int64_t[]){H, W}), x),
                     -1, -1, konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), sz)};
        sp_node_set_attr_string(mk(&t, "Resize", in, 4, 1), "mode", "linear");
        run_ok(&t);
        float *ref = malloc(sizeof(float) * (size_t)(OH * OW)), *got = malloc(sizeof(float) * (size_t)(OH * OW));
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                int64_t hi[4], wi[4];
                double hw[4], ww[4], acc = 0;
                int nh = ref_taps("linear", "half_pixel", "", -0.75, 0, i, H, OH, (double)OH / H, hi, hw);
                int nw = ref_taps("linear", "half_pixel", "", -0.75, 0, j, W, OW, (double)OW / W, wi, ww);
                for (int a = 0; a < nh; a++)
                    for (int b = 0; b < nw; b++)
                        acc += hw[a] * ww[b] * x[hi[a] * W + wi[b]];
                ref[i * OW + j] = half ? sp_f16_to_f32(sp_f32_to_f16((float)acc)) : (float)acc;
                got[i * OW + j] = half ? sp_f16_to_f32(((uint16_t *)yv(&t, 0)->data)[i * OW + j])
                                       : ((float *)yv(&t, 0)->data)[i * OW + j];
            }
        close_f(got, ref, OH * OW, half ? 2e-3f : 1e-5f);
        free(ref);
        free(got);
        free(x);
        free(xh);
        sp_graph_free(&t.g);
    }
    /* Upsample-9 nearest on uint8, antialias refused, non-constant scales */
    {
        uint8_t x[4] = {1, 2, 3, 4}, want[12] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};
        float sc[2] = {2.f, 3.f};
        tg t;
        tg_init(&t, 9);
        int in[2] = {konst(&t, SPRUN_DTYPE_UINT8, shp(2, (int64_t[]){2, 2}), x),
                     konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), sc)};
        mk(&t, "Upsample", in, 2, 1);
        run_ok(&t);
        shape_is(yv(&t, 0), 2, (int64_t[]){4, 6});
        for (int i = 0; i < 4; i++)
            assert_memory_equal((uint8_t *)yv(&t, 0)->data + i * 6, want + (i / 2) * 6, 6);
        sp_graph_free(&t.g);

        tg_init(&t, 18);
        int r3[3] = {konst(&t, SPRUN_DTYPE_UINT8, shp(2, (int64_t[]){2, 2}), x), -1,
                     konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), sc)};
        sp_node *n = mk(&t, "Resize", r3, 3, 1);
        sp_node_set_attr_int(n, "antialias", 1);
        expect_err(&t, SPRUN_ERR_UNSUPPORTED, "antialias");
        sp_graph_free(&t.g);

        tg_init(&t, 13);
        r3[0] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), sc);
        r3[1] = -1;
        r3[2] = input(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}));
        mk(&t, "Resize", r3, 3, 1);
        sp_node *nn = &t.g.nodes[t.node];
        assert_int_equal(nn->op->infer(&t.g, nn, &t.err), SPRUN_ERR_UNSUPPORTED);
        assert_non_null(strstr(t.err.msg, "data-dependent shape"));
        sp_graph_free(&t.g);
    }
}

/* ---- CumSum, DepthToSpace/SpaceToDepth, OneHot, EyeLike ------------------------------ */

static void test_cumsum(void **st)
{
    (void)st;
    const int64_t d[3] = {3, 5, 4};
    for (int axis = -1; axis < 3; axis++)
        for (int ex = 0; ex < 2; ex++)
            for (int rev = 0; rev < 2; rev++) {
                float *x = rnd_f(60, -2, 2);
                int64_t av = axis;
                tg t;
                tg_init(&t, 14);
                int in[2] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(3, d), x), konst(&t, SPRUN_DTYPE_INT64, shp(0, NULL), &av)};
                sp_node *n = mk(&t, "CumSum", in, 2, 1);
                sp_node_set_attr_int(n, "exclusive", ex);
                sp_node_set_attr_int(n, "reverse", rev);
                run_ok(&t);
                const int a = axis < 0 ? axis + 3 : axis;
                const int64_t stv[3] = {20, 4, 1};
                float ref[60];
                for (int64_t i = 0; i < 60; i++) {
                    int64_t pos = (i / stv[a]) % d[a];
                    double s = 0;
                    for (int64_t k = 0; k < d[a]; k++) {
                        int in_range = rev ? (ex ? k > pos : k >= pos) : (ex ? k < pos : k <= pos);
                        if (in_range)
                            s += x[i + (k - pos) * stv[a]];
                    }
                    ref[i] = (float)s;
                }
                close_f(yv(&t, 0)->data, ref, 60, 1e-6f);
                free(x);
                sp_graph_free(&t.g);
            }
    /* int32 */
    int32_t xi[4] = {1, 2, 3, 4}, want[4] = {9, 7, 4, 0};
    int32_t ax = 0;
    tg t;
    tg_init(&t, 14);
    int in[2] = {konst(&t, SPRUN_DTYPE_INT32, shp(1, (int64_t[]){4}), xi), konst(&t, SPRUN_DTYPE_INT32, shp(0, NULL), &ax)};
    sp_node *n = mk(&t, "CumSum", in, 2, 1);
    sp_node_set_attr_int(n, "exclusive", 1);
    sp_node_set_attr_int(n, "reverse", 1);
    run_ok(&t);
    assert_memory_equal(yv(&t, 0)->data, want, sizeof want);
    sp_graph_free(&t.g);
}

static void test_space_depth(void **st)
{
    (void)st;
    const int64_t b = 2, N = 2, C = 3, H = 2, W = 3; /* space side [N, C, H*b, W*b] */
    const int64_t sd[4] = {N, C, H * b, W * b}, dd[4] = {N, C * b * b, H, W};
    for (int crd = 0; crd < 2; crd++) {
        float *x = rnd_f(N * C * b * b * H * W, -1, 1);
        tg t;
        tg_init(&t, 13);
        int xv = konst(&t, SPRUN_DTYPE_FLOAT, shp(4, dd), x);
        sp_node *n = mk(&t, "DepthToSpace", &xv, 1, 1);
        sp_node_set_attr_int(n, "blocksize", b);
        sp_node_set_attr_string(n, "mode", crd ? "CRD" : "DCR");
        run_ok(&t);
        shape_is(yv(&t, 0), 4, sd);
        const float *y = yv(&t, 0)->data;
        for (int64_t nn = 0; nn < N; nn++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t h = 0; h < H * b; h++)
                    for (int64_t w = 0; w < W * b; w++) {
                        int64_t ch = crd ? c * b * b + (h % b) * b + (w % b) : ((h % b) * b + (w % b)) * C + c;
                        float want = x[((nn * C * b * b + ch) * H + h / b) * W + w / b];
                        assert_true(y[((nn * C + c) * H * b + h) * W * b + w] == want);
                    }
        if (!crd) { /* SpaceToDepth inverts DCR */
            float *sp = malloc(sizeof(float) * (size_t)(N * C * b * b * H * W));
            memcpy(sp, y, sizeof(float) * (size_t)(N * C * b * b * H * W));
            tg t2;
            tg_init(&t2, 13);
            int sv = konst(&t2, SPRUN_DTYPE_FLOAT, shp(4, sd), sp);
            n = mk(&t2, "SpaceToDepth", &sv, 1, 1);
            sp_node_set_attr_int(n, "blocksize", b);
            run_ok(&t2);
            shape_is(yv(&t2, 0), 4, dd);
            assert_memory_equal(yv(&t2, 0)->data, x, sizeof(float) * (size_t)(N * C * b * b * H * W));
            free(sp);
            sp_graph_free(&t2.g);
        }
        free(x);
        sp_graph_free(&t.g);
    }
}

static void test_onehot_eyelike(void **st)
{
    (void)st;
    for (int axis = -3; axis < 3; axis++) {
        int64_t idx[6] = {0, 3, -1, 4, -5, 7}; /* 7 and -5 (depth 5 => 0) */
        float depth = 5.f, vals[2] = {-1.f, 2.f};
        tg t;
        tg_init(&t, 11);
        int in[3] = {konst(&t, SPRUN_DTYPE_INT64, shp(2, (int64_t[]){2, 3}), idx),
                     konst(&t, SPRUN_DTYPE_FLOAT, shp(0, NULL), &depth),
                     konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), vals)};
        sp_node *n = mk(&t, "OneHot", in, 3, 1);
        sp_node_set_attr_int(n, "axis", axis);
        run_ok(&t);
        const int a = axis < 0 ? axis + 3 : axis;
        int64_t od[3], j = 0;
        const int64_t id[2] = {2, 3};
        for (int k = 0; k < 3; k++)
            od[k] = k == a ? 5 : id[j++];
        shape_is(yv(&t, 0), 3, od);
        const float *y = yv(&t, 0)->data;
        for (int64_t u = 0; u < 30; u++) {
            int64_t o[3] = {u / (od[1] * od[2]), (u / od[2]) % od[1], u % od[2]}, ii[2], q = 0, dep = o[a];
            for (int k = 0; k < 3; k++)
                if (k != a)
                    ii[q++] = o[k];
            int64_t v = idx[ii[0] * 3 + ii[1]];
            if (v < 0)
                v += 5;
            assert_true(y[u] == (v == dep ? 2.f : -1.f));
        }
        sp_graph_free(&t.g);
    }
    for (int k = -2; k <= 4; k += 2) {
        float x[12] = {0};
        tg t;
        tg_init(&t, 13);
        int xv = konst(&t, SPRUN_DTYPE_FLOAT, shp(2, (int64_t[]){3, 4}), x);
        sp_node *n = mk(&t, "EyeLike", &xv, 1, 1);
        sp_node_set_attr_int(n, "k", k);
        sp_node_set_attr_int(n, "dtype", SPRUN_DTYPE_INT32);
        run_ok(&t);
        assert_int_equal(yv(&t, 0)->dtype, SPRUN_DTYPE_INT32);
        const int32_t *y = yv(&t, 0)->data;
        for (int i = 0; i < 12; i++)
            assert_int_equal(y[i], (i % 4) - (i / 4) == k);
        sp_graph_free(&t.g);
    }
}

/* ---- TopK ------------------------------------------------------------------------------ */

static void test_topk(void **st)
{
    (void)st;
    const int64_t d[3] = {4, 9, 3};
    for (int axis = 0; axis < 3; axis++)
        for (int largest = 0; largest < 2; largest++)
            for (int ints = 0; ints < 2; ints++) {
                float xf[108];
                int32_t xi[108];
                for (int i = 0; i < 108; i++) {
                    xi[i] = (int32_t)(ru32() % 5);
                    xf[i] = ints ? (float)xi[i] : runi(-2, 2);
                }
                int64_t k = d[axis] - 1;
                tg t;
                tg_init(&t, 11);
                int in[2] = {ints ? konst(&t, SPRUN_DTYPE_INT32, shp(3, d), xi) : konst(&t, SPRUN_DTYPE_FLOAT, shp(3, d), xf),
                             konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){1}), &k)};
                sp_node *n = mk(&t, "TopK", in, 2, 2);
                sp_node_set_attr_int(n, "axis", axis);
                sp_node_set_attr_int(n, "largest", largest);
                run_ok(&t);
                int64_t od[3] = {d[0], d[1], d[2]};
                od[axis] = k;
                shape_is(yv(&t, 1), 3, od);
                const int64_t *yi = yv(&t, 1)->data;
                const int64_t stv[3] = {27, 3, 1};
                const int64_t ost[3] = {od[1] * od[2], od[2], 1};
                for (int64_t i0 = 0; i0 < od[0]; i0++)
                    for (int64_t i1 = 0; i1 < od[1]; i1++)
                        for (int64_t i2 = 0; i2 < od[2]; i2++) {
                            int64_t pos[3] = {i0, i1, i2}, r = pos[axis];
                            pos[axis] = 0;
                            int64_t base = pos[0] * stv[0] + pos[1] * stv[1] + pos[2] * stv[2];
                            /* naive: the r-th element in (value desc/asc, index asc) order */
                            int used[9] = {0};
                            int64_t pick = -1;
                            for (int64_t q = 0; q <= r; q++) {
                                pick = -1;
                                for (int64_t c = 0; c < d[axis]; c++) {
                                    if (used[c])
                                        continue;
                                    float v = xf[base + c * stv[axis]];
                                    if (pick < 0 || (largest ? v > xf[base + pick * stv[axis]] : v < xf[base + pick * stv[axis]]))
                                        pick = c;
                                }
                                used[pick] = 1;
                            }
                            int64_t o = i0 * ost[0] + i1 * ost[1] + i2 * ost[2];
                            if (yi[o] != pick)
                                fail_msg("axis %d largest %d: index %lld, expected %lld", axis, largest,
                                         (long long)yi[o], (long long)pick);
                            float got = ints ? (float)((int32_t *)yv(&t, 0)->data)[o] : ((float *)yv(&t, 0)->data)[o];
                            assert_true(got == xf[base + pick * stv[axis]]);
                        }
                sp_graph_free(&t.g);
            }
}

/* ---- GatherND / ScatterND / ScatterElements --------------------------------------------- */

static void test_gather_scatter_nd(void **st)
{
    (void)st;
    /* GatherND, batch_dims 1: data [2,3,4], indices [2,5,1] -> [2,5,4] */
    {
        float *x = rnd_f(24, -1, 1);
        int64_t idx[10];
        for (int i = 0; i < 10; i++)
            idx[i] = (int64_t)(ru32() % 6) - 3;
        tg t;
        tg_init(&t, 13);
        int in[2] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(3, (int64_t[]){2, 3, 4}), x),
                     konst(&t, SPRUN_DTYPE_INT64, shp(3, (int64_t[]){2, 5, 1}), idx)};
        sp_node *n = mk(&t, "GatherND", in, 2, 1);
        sp_node_set_attr_int(n, "batch_dims", 1);
        run_ok(&t);
        shape_is(yv(&t, 0), 3, (int64_t[]){2, 5, 4});
        float ref[40];
        for (int b = 0; b < 2; b++)
            for (int q = 0; q < 5; q++) {
                int64_t r = idx[b * 5 + q];
                r = r < 0 ? r + 3 : r;
                for (int e = 0; e < 4; e++)
                    ref[(b * 5 + q) * 4 + e] = x[(b * 3 + r) * 4 + e];
            }
        close_f(yv(&t, 0)->data, ref, 40, 0.f);
        free(x);
        sp_graph_free(&t.g);
    }
    /* ScatterND on [4,3] with indices [5,1]: reduction none (row 0 twice: the
     * later update wins, as applied in order) and add (duplicates accumulate) */
    for (int red = 0; red < 2; red++) {
        float *x = rnd_f(12, -1, 1), *u = rnd_f(15, -1, 1);
        const int64_t idx[5] = {0, 3, -2, 1, 0}, rows[5] = {0, 3, 2, 1, 0};
        tg t;
        tg_init(&t, 16);
        int in[3] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(2, (int64_t[]){4, 3}), x),
                     konst(&t, SPRUN_DTYPE_INT64, shp(2, (int64_t[]){5, 1}), idx),
                     konst(&t, SPRUN_DTYPE_FLOAT, shp(2, (int64_t[]){5, 3}), u)};
        sp_node *n = mk(&t, "ScatterND", in, 3, 1);
        if (red)
            sp_node_set_attr_string(n, "reduction", "add");
        run_ok(&t);
        float ref[12];
        memcpy(ref, x, sizeof ref);
        for (int q = 0; q < 5; q++)
            for (int e = 0; e < 3; e++)
                ref[rows[q] * 3 + e] = red ? ref[rows[q] * 3 + e] + u[q * 3 + e] : u[q * 3 + e];
        close_f(yv(&t, 0)->data, ref, 12, 1e-6f);
        free(x);
        free(u);
        sp_graph_free(&t.g);
    }
    /* ScatterElements: every reduction along both axes, int32 data */
    static const char *reds[] = {"none", "add", "mul", "max", "min"};
    for (int r = 0; r < 5; r++)
        for (int axis = 0; axis < 2; axis++) {
            int32_t x[12], u[6];
            int64_t idx[6];
            for (int i = 0; i < 12; i++)
                x[i] = (int32_t)(ru32() % 9) - 4;
            for (int i = 0; i < 6; i++) {
                u[i] = (int32_t)(ru32() % 9) - 4;
                idx[i] = axis ? (int64_t)(i % 3) - 1 : (int64_t)(ru32() % 3); /* unique along axis 1 per row */
            }
            if (r == 0 && axis == 0) /* unique targets for reduction none */
                idx[0] = 0, idx[1] = 1, idx[2] = 2, idx[3] = 1, idx[4] = 2, idx[5] = 0;
            tg t;
            tg_init(&t, 18);
            int in[3] = {konst(&t, SPRUN_DTYPE_INT32, shp(2, (int64_t[]){3, 4}), x),
                         konst(&t, SPRUN_DTYPE_INT64, shp(2, (int64_t[]){2, 3}), idx),
                         konst(&t, SPRUN_DTYPE_INT32, shp(2, (int64_t[]){2, 3}), u)};
            sp_node *n = mk(&t, "ScatterElements", in, 3, 1);
            sp_node_set_attr_int(n, "axis", axis);
            sp_node_set_attr_string(n, "reduction", reds[r]);
            run_ok(&t);
            int32_t ref[12];
            memcpy(ref, x, sizeof ref);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) {
                    int64_t v = idx[i * 3 + j];
                    int64_t row = axis ? i : (v < 0 ? v + 3 : v), col = axis ? (v < 0 ? v + 4 : v) : j;
                    int32_t *p = &ref[row * 4 + col], w = u[i * 3 + j];
                    *p = r == 0 ? w : r == 1 ? *p + w : r == 2 ? *p * w : r == 3 ? (*p > w ? *p : w) : (*p < w ? *p : w);
                }
            assert_memory_equal(yv(&t, 0)->data, ref, sizeof ref);
            sp_graph_free(&t.g);
        }
    /* out-of-range index */
    {
        float x[4] = {0};
        int64_t idx[1] = {4};
        tg t;
        tg_init(&t, 13);
        int in[2] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){4}), x),
                     konst(&t, SPRUN_DTYPE_INT64, shp(2, (int64_t[]){1, 1}), idx)};
        mk(&t, "GatherND", in, 2, 1);
        expect_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "out of range");
        sp_graph_free(&t.g);
    }
}

/* ---- malformed attributes and inputs fail cleanly ------------------------------------- */

static void test_bad_inputs(void **st)
{
    (void)st;
    float x[24] = {0};
    tg t;
    /* DepthToSpace: blocksize beyond the channels */
    tg_init(&t, 13);
    int xv = konst(&t, SPRUN_DTYPE_FLOAT, shp(4, (int64_t[]){1, 4, 2, 3}), x);
    sp_node_set_attr_int(mk(&t, "DepthToSpace", &xv, 1, 1), "blocksize", (int64_t)1 << 40);
    expect_err(&t, SPRUN_ERR_SHAPE, "blocksize");
    sp_graph_free(&t.g);
    /* Pad: a pad that would overflow the dim */
    tg_init(&t, 13);
    const int64_t pads[2] = {INT64_MAX - 1, 0};
    int in[3] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){24}), x),
                 konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), pads), -1};
    mk(&t, "Pad", in, 2, 1);
    expect_err(&t, SPRUN_ERR_SHAPE, "out of range");
    sp_graph_free(&t.g);
    /* Resize: a scale that makes the output absurd */
    tg_init(&t, 13);
    const float sc[2] = {1.f, 1e30f};
    in[0] = konst(&t, SPRUN_DTYPE_FLOAT, shp(2, (int64_t[]){4, 6}), x);
    in[1] = -1;
    in[2] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), sc);
    mk(&t, "Resize", in, 3, 1);
    expect_err(&t, SPRUN_ERR_SHAPE, "too large");
    sp_graph_free(&t.g);
    /* OneHot: depth 0, and an unsupported Pad mode */
    tg_init(&t, 11);
    const int64_t idx[2] = {0, 1}, depth = 0;
    in[0] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), idx);
    in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(0, NULL), &depth);
    in[2] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), x);
    mk(&t, "OneHot", in, 3, 1);
    expect_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "depth");
    sp_graph_free(&t.g);
    tg_init(&t, 13);
    in[0] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){24}), x);
    in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), idx);
    sp_node_set_attr_string(mk(&t, "Pad", in, 2, 1), "mode", "mirror");
    expect_err(&t, SPRUN_ERR_UNSUPPORTED, "mode");
    sp_graph_free(&t.g);
    /* EyeLike with k far off the matrix: all zeros */
    tg_init(&t, 13);
    xv = konst(&t, SPRUN_DTYPE_FLOAT, shp(2, (int64_t[]){4, 6}), x);
    sp_node_set_attr_int(mk(&t, "EyeLike", &xv, 1, 1), "k", INT64_MAX);
    run_ok(&t);
    assert_memory_equal(yv(&t, 0)->data, x, sizeof x);
    sp_graph_free(&t.g);
    /* TopK: k larger than the axis; ScatterElements: unknown reduction */
    tg_init(&t, 11);
    const int64_t k = 25;
    in[0] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){24}), x);
    in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){1}), &k);
    mk(&t, "TopK", in, 2, 2);
    expect_err(&t, SPRUN_ERR_INVALID_ARGUMENT, "k = 25");
    sp_graph_free(&t.g);
    tg_init(&t, 18);
    in[0] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){24}), x);
    in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){2}), idx);
    in[2] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){2}), x);
    sp_node_set_attr_string(mk(&t, "ScatterElements", in, 3, 1), "reduction", "mean");
    expect_err(&t, SPRUN_ERR_UNSUPPORTED, "reduction");
    sp_graph_free(&t.g);
}

/* ---- threads: the pool's split gives the same bytes as one thread -------------------- */

/* Re-runs the (already folded) node t on a 4-thread pool and compares. */
static void rerun_threaded(tg *t, sp_threadpool *pool)
{
    const sp_node *n = &t->g.nodes[t->node];
    sp_tensor ti[4], to[2];
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = n->in[i] >= 0 ? &t->g.values[n->in[i]] : NULL;
        ti[i] = v ? (sp_tensor){.dtype = v->dtype, .shape = v->shape, .data = v->data} : (sp_tensor){0};
    }
    for (int i = 0; i < n->n_out; i++) {
        const sp_value *v = &t->g.values[n->out[i]];
        size_t nb = (size_t)sp_shape_numel(&v->shape) * sp_dtype_size(v->dtype);
        to[i] = (sp_tensor){.dtype = v->dtype, .shape = v->shape, .data = calloc(1, nb ? nb : 1)};
    }
    size_t sb = n->op->cpu_scratch ? n->op->cpu_scratch(&t->g, n, 4) : 0;
    void *scratch = sb ? aligned_alloc(64, (sb + 63) & ~(size_t)63) : NULL;
    sp_cpu_ctx ctx = {.nthreads = 4, .pool = pool, .scratch = scratch, .scratch_bytes = sb, .graph = &t->g};
    sp_err err;
    if (n->op->cpu_run(n, ti, n->n_in, to, n->n_out, &ctx, &err))
        fail_msg("%s: %s", n->op_type, err.msg);
    for (int i = 0; i < n->n_out; i++) {
        const sp_value *v = &t->g.values[n->out[i]];
        if (memcmp(to[i].data, v->data, (size_t)sp_shape_numel(&v->shape) * sp_dtype_size(v->dtype)))
            fail_msg("%s: threaded output %d differs", n->op_type, i);
        free(to[i].data);
    }
    free(scratch);
}

static void test_threaded(void **st)
{
    (void)st;
    sp_threadpool *pool = sp_threadpool_create(4);
    assert_non_null(pool);
    const int64_t d[4] = {2, 16, 40, 56}, cnt = 2 * 16 * 40 * 56;
    float *x = rnd_f(cnt, -0.9f, 0.9f);
    for (int c = 0; c < 9; c++) {
        tg t;
        tg_init(&t, 18);
        int in[4] = {konst(&t, SPRUN_DTYPE_FLOAT, shp(4, d), x), -1, -1, -1};
        if (c == 0) {
            sp_node_set_attr_int(mk(&t, "ArgMax", in, 1, 1), "axis", 1);
        } else if (c == 1) {
            mk(&t, "Sin", in, 1, 1);
        } else if (c == 2) {
            in[1] = konst(&t, SPRUN_DTYPE_FLOAT, shp(3, (int64_t[]){16, 1, 1}), x);
            mk(&t, "PRelu", in, 2, 1);
        } else if (c == 3) {
            const int64_t pads[8] = {0, 1, 2, 3, 1, 0, 3, 2};
            in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){8}), pads);
            sp_node_set_attr_string(mk(&t, "Pad", in, 2, 1), "mode", "reflect");
        } else if (c == 4) {
            const float sc[4] = {1, 1, 1.5f, 0.75f};
            in[2] = konst(&t, SPRUN_DTYPE_FLOAT, shp(1, (int64_t[]){4}), sc);
            sp_node_set_attr_string(mk(&t, "Resize", in, 3, 1), "mode", "cubic");
        } else if (c == 5) {
            const int64_t ax = 2;
            in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(0, NULL), &ax);
            mk(&t, "CumSum", in, 2, 1);
        } else if (c == 6) {
            sp_node_set_attr_int(mk(&t, "DepthToSpace", in, 1, 1), "blocksize", 2);
        } else if (c == 7) {
            const int64_t k = 7;
            in[1] = konst(&t, SPRUN_DTYPE_INT64, shp(1, (int64_t[]){1}), &k);
            sp_node_set_attr_int(mk(&t, "TopK", in, 2, 2), "axis", 2);
        } else {
            sp_node_set_attr_int(mk(&t, "ArgMin", in, 1, 1), "axis", -1);
        }
        run_ok(&t);
        rerun_threaded(&t, pool);
        sp_graph_free(&t.g);
    }
    free(x);
    sp_threadpool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argminmax),     cmocka_unit_test(test_unary_math), cmocka_unit_test(test_shrink_prelu),
        cmocka_unit_test(test_pad),           cmocka_unit_test(test_resize),     cmocka_unit_test(test_cumsum),
        cmocka_unit_test(test_space_depth),   cmocka_unit_test(test_onehot_eyelike), cmocka_unit_test(test_topk),
        cmocka_unit_test(test_gather_scatter_nd), cmocka_unit_test(test_threaded),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
