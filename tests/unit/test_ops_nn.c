/*
 * test_ops_nn.c - the CPU NN ops (Conv, Gemm, MatMul, pools, norms,
 * activations, softmax) against naive float64 references on random inputs.
 *
 * Each test builds a one-node graph whose inputs are constants and runs it
 * twice: once through the op's cpu_run on a 3-thread pool (so the parallel
 * splits are exercised), once through sp_node_eval_const (the folding path,
 * single-threaded). Both results must match the reference within the stated
 * tolerance (relative L2 error <= 1e-5 for fp32 unless said otherwise).
 *
 * SPRUN_OPS_NN_PERF=1 turns the binary into a timing table of representative
 * shapes (ResNet-50 convs, MobileNetV2 depthwise, BERT-base MatMul/Softmax/
 * LayerNorm/Erf) on all cores.
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
#include <time.h>

#define TOL_F32 1e-5

/* ------------------------------------------------------------------------ */
/* Harness                                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* Uniform in [lo, hi], never exactly zero. */
static float frand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    float u = (float)((rng >> 11) * (1.0 / 9007199254740992.0));
    float v = lo + (hi - lo) * u;
    return v == 0.f ? 0.5f * hi : v;
}

static float *rand_buf(int64_t n, float lo, float hi)
{
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++)
        p[i] = frand(lo, hi);
    return p;
}

static int64_t numel(int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    return n;
}

typedef struct tg {
    sp_graph g;
    int node;
    int out[4];
    int n_out;
} tg;

static void tg_init(tg *t)
{
    memset(t, 0, sizeof *t);
    sp_graph_init(&t->g);
    t->g.opset = 17;
    t->node = -1;
}

/* Adds a constant input of dtype FLOAT (or FLOAT16, converted) holding a copy of data. */
static int tg_const_dt(tg *t, int dtype, int rank, const int64_t *dims, const float *data)
{
    sp_err err;
    int v = sp_graph_new_value(&t->g, "in", &err);
    assert_true(v >= 0);
    int64_t n = numel(rank, dims);
    size_t bytes = (size_t)n * (dtype == SPRUN_DTYPE_FLOAT16 ? 2 : 4);
    void *p = malloc(bytes ? bytes : 1);
    if (dtype == SPRUN_DTYPE_FLOAT16)
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)p)[i] = sp_f32_to_f16(data[i]);
    else
        memcpy(p, data, bytes);
    sp_shape s = sp_shape_make(rank, dims);
    sp_value_set_const(&t->g.values[v], dtype, &s, p, bytes, 1);
    return v;
}

static int tg_const(tg *t, int rank, const int64_t *dims, const float *data)
{
    return tg_const_dt(t, SPRUN_DTYPE_FLOAT, rank, dims, data);
}

static sp_node *tg_node(tg *t, const char *op, const int *in, int n_in, int n_out)
{
    sp_err err;
    t->n_out = n_out;
    for (int i = 0; i < n_out; i++)
        t->out[i] = sp_graph_new_value(&t->g, "out", &err);
    t->node = sp_graph_add_node(&t->g, "n0", op, "", in, n_in, t->out, n_out, &err);
    assert_true(t->node >= 0);
    assert_non_null(t->g.nodes[t->node].op);
    return &t->g.nodes[t->node];
}

static sp_node *tg_n(tg *t) { return &t->g.nodes[t->node]; }

/* Runs the node through cpu_run on a thread pool; returns malloc'd fp32 copies
 * of the outputs (converted from fp16 where needed) in outs[]. */
static int tg_run_pool(tg *t, float **outs, sp_err *err)
{
    sp_graph *g = &t->g;
    sp_node *n = tg_n(t);
    int rc;
    if (n->op->check && (rc = n->op->check(g, n, err)))
        return rc;
    if ((rc = n->op->infer(g, n, err)))
        return rc;
    sp_tensor in[8], out[4];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    for (int i = 0; i < n->n_in; i++) {
        sp_value *v = sp_node_in(g, n, i);
        if (!v)
            continue;
        in[i].dtype = v->dtype;
        in[i].shape = v->shape;
        in[i].data = v->data;
    }
    for (int i = 0; i < n->n_out; i++) {
        sp_value *v = sp_node_out(g, n, i);
        if (!v)
            continue;
        out[i].dtype = v->dtype;
        out[i].shape = v->shape;
        out[i].data = calloc((size_t)sp_shape_numel(&v->shape) + 1, sp_dtype_size(v->dtype));
    }
    sp_threadpool *pool = sp_threadpool_create(3);
    sp_cpu_ctx ctx = {.nthreads = 3, .pool = pool, .graph = g};
    ctx.scratch_bytes = n->op->cpu_scratch ? n->op->cpu_scratch(g, n, 3) : 0;
    ctx.scratch = ctx.scratch_bytes ? aligned_alloc(64, (ctx.scratch_bytes + 63) & ~(size_t)63) : NULL;
    rc = n->op->cpu_run(n, in, n->n_in, out, n->n_out, &ctx, err);
    free(ctx.scratch);
    sp_threadpool_destroy(pool);
    for (int i = 0; i < n->n_out; i++) {
        if (!out[i].data)
            continue;
        int64_t cnt = sp_shape_numel(&out[i].shape);
        if (out[i].dtype == SPRUN_DTYPE_FLOAT16) {
            float *f = malloc(sizeof(float) * (size_t)(cnt + 1));
            for (int64_t e = 0; e < cnt; e++)
                f[e] = sp_f16_to_f32(((uint16_t *)out[i].data)[e]);
            free(out[i].data);
            out[i].data = f;
        }
        outs[i] = out[i].data;
    }
    return rc;
}

/* Relative L2 error of y against ref; fails the test above tol. */
static void expect_close(const char *what, const float *y, const double *ref, int64_t n, double tol)
{
    double num = 0.0, den = 0.0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)y[i] - ref[i];
        if (y[i] != y[i])
            bad = 1;
        num += d * d;
        den += ref[i] * ref[i];
    }
    double rel = sqrt(num / (den > 0 ? den : 1e-30));
    if (bad || rel > tol) {
        fprintf(stderr, "%s: relative L2 error %.3g > %.3g (n=%lld)\n", what, rel, tol, (long long)n);
        for (int64_t i = 0; i < n && i < 8; i++)
            fprintf(stderr, "  [%lld] got %.7g want %.7g\n", (long long)i, y[i], ref[i]);
        fail();
    }
}

/* Runs t (pool path, then eval_const) and compares output k with ref. */
static void run_and_compare(tg *t, const char *what, int k, const double *ref, int64_t n, double tol)
{
    float *outs[4] = {0};
    sp_err err = {0};
    int rc = tg_run_pool(t, outs, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", what, err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(sp_shape_numel(&t->g.values[t->out[k]].shape), n);
    expect_close(what, outs[k], ref, n, tol);
    for (int i = 0; i < 4; i++)
        free(outs[i]);

    rc = sp_node_eval_const(&t->g, t->node, 1, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", what, err.msg);
    assert_int_equal(rc, 0);
    const sp_value *v = &t->g.values[t->out[k]];
    if (v->dtype == SPRUN_DTYPE_FLOAT16) {
        float *f = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            f[i] = sp_f16_to_f32(((const uint16_t *)v->data)[i]);
        expect_close(what, f, ref, n, tol);
        free(f);
    } else {
        expect_close(what, v->data, ref, n, tol);
    }
}

/* Expects check/infer (through eval_const) to fail with code, naming the node. */
static void expect_error(tg *t, int code, const char *needle)
{
    sp_err err = {0};
    int rc = sp_node_eval_const(&t->g, t->node, 1, &err);
    if (rc != code || !strstr(err.msg, "n0") || (needle && !strstr(err.msg, needle)))
        fprintf(stderr, "expected code %d mentioning '%s', got %d: %s\n", code, needle ? needle : "n0", rc, err.msg);
    assert_int_equal(rc, code);
    assert_non_null(strstr(err.msg, "n0"));
    if (needle)
        assert_non_null(strstr(err.msg, needle));
}

static void tg_free(tg *t) { sp_graph_free(&t->g); }

/* Starts t as a one-node graph of op over constant inputs of the given
 * shapes (filled with 0.25), for the error tests; returns the node. */
static sp_node *tg_filled(tg *t, const char *op, int n_out, int n_in, const sp_shape *shapes)
{
    static float fill[1024];
    int ins[8];
    for (int i = 0; i < 1024; i++)
        fill[i] = 0.25f;
    tg_init(t);
    for (int i = 0; i < n_in; i++) {
        assert_true(sp_shape_numel(&shapes[i]) <= 1024);
        ins[i] = tg_const(t, shapes[i].rank, shapes[i].d, fill);
    }
    return tg_node(t, op, ins, n_in, n_out);
}

/* ------------------------------------------------------------------------ */
/* Conv                                                                      */
/* ------------------------------------------------------------------------ */

/* Reference conv in 3-D form (unused leading spatial dims are 1). */
typedef struct conv_p {
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
} conv_p;

static double *conv_ref(const conv_p *p, const float *x, const float *w, const float *b, const float *res, int relu)
{
    const int64_t cg = p->c / p->group, mg = p->m / p->group;
    const int64_t osz = p->out[0] * p->out[1] * p->out[2];
    double *y = calloc((size_t)(p->n * p->m * osz), sizeof(double));
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t m = 0; m < p->m; m++) {
            const int64_t g = m / mg;
            for (int64_t o0 = 0; o0 < p->out[0]; o0++)
                for (int64_t o1 = 0; o1 < p->out[1]; o1++)
                    for (int64_t o2 = 0; o2 < p->out[2]; o2++) {
                        double s = b ? b[m] : 0.0;
                        for (int64_t c = 0; c < cg; c++)
                            for (int64_t k0 = 0; k0 < p->k[0]; k0++)
                                for (int64_t k1 = 0; k1 < p->k[1]; k1++)
                                    for (int64_t k2 = 0; k2 < p->k[2]; k2++) {
                                        int64_t i0 = o0 * p->s[0] - p->pb[0] + k0 * p->d[0];
                                        int64_t i1 = o1 * p->s[1] - p->pb[1] + k1 * p->d[1];
                                        int64_t i2 = o2 * p->s[2] - p->pb[2] + k2 * p->d[2];
                                        if (i0 < 0 || i0 >= p->in[0] || i1 < 0 || i1 >= p->in[1] || i2 < 0 ||
                                            i2 >= p->in[2])
                                            continue;
                                        int64_t xi = (((n * p->c + g * cg + c) * p->in[0] + i0) * p->in[1] + i1) *
                                                         p->in[2] + i2;
                                        int64_t wi = (((m * cg + c) * p->k[0] + k0) * p->k[1] + k1) * p->k[2] + k2;
                                        s += (double)x[xi] * (double)w[wi];
                                    }
                        int64_t yi = ((n * p->m + m) * p->out[0] + o0) * p->out[1] * p->out[2] + o1 * p->out[2] + o2;
                        if (res)
                            s += res[yi];
                        y[yi] = relu && s < 0 ? 0.0 : s;
                    }
        }
    return y;
}

typedef struct conv_case {
    const char *name;
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6]; /* begin..., end... (NOTSET) */
    const char *auto_pad;
    int bias, residual, relu, kernel_attr, f16;
} conv_case;

static void run_conv_case(const conv_case *cc)
{
    tg t;
    tg_init(&t);
    conv_p p = {.n = cc->n, .c = cc->c, .m = cc->m, .group = cc->group};
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group};
    for (int i = 0; i < 3; i++) {
        p.in[i] = p.k[i] = p.s[i] = p.d[i] = p.out[i] = 1;
        p.pb[i] = 0;
    }
    for (int i = 0; i < cc->nsp; i++) {
        int j = 3 - cc->nsp + i;
        xd[2 + i] = p.in[j] = cc->in[i];
        wd[2 + i] = p.k[j] = cc->k[i];
        p.s[j] = cc->s[i] ? cc->s[i] : 1;
        p.d[j] = cc->d[i] ? cc->d[i] : 1;
        int64_t dk = p.d[j] * (p.k[j] - 1) + 1;
        if (cc->auto_pad && strncmp(cc->auto_pad, "SAME", 4) == 0) {
            p.out[j] = (p.in[j] + p.s[j] - 1) / p.s[j];
            int64_t total = (p.out[j] - 1) * p.s[j] + dk - p.in[j];
            if (total < 0)
                total = 0;
            p.pb[j] = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        } else if (cc->auto_pad) { /* VALID */
            p.out[j] = (p.in[j] - dk) / p.s[j] + 1;
        } else {
            p.pb[j] = cc->pads[i];
            p.out[j] = (p.in[j] + cc->pads[i] + cc->pads[i + cc->nsp] - dk) / p.s[j] + 1;
        }
    }
    int64_t xn = numel(2 + cc->nsp, xd), wn = numel(2 + cc->nsp, wd);
    int64_t yn = cc->n * cc->m * p.out[0] * p.out[1] * p.out[2];
    float *x = rand_buf(xn, -1.f, 1.f), *w = rand_buf(wn, -1.f, 1.f), *b = rand_buf(cc->m, -1.f, 1.f);
    float *r = rand_buf(yn, -1.f, 1.f);
    int ins[4];
    ins[0] = tg_const_dt(&t, cc->f16 ? SPRUN_DTYPE_FLOAT16 : SPRUN_DTYPE_FLOAT, 2 + cc->nsp, xd, x);
    ins[1] = tg_const_dt(&t, cc->f16 ? SPRUN_DTYPE_FLOAT16 : SPRUN_DTYPE_FLOAT, 2 + cc->nsp, wd, w);
    int n_in = 2;
    if (cc->bias)
        ins[n_in++] = tg_const(&t, 1, &cc->m, b);
    int64_t yd[5] = {cc->n, cc->m};
    for (int i = 0; i < cc->nsp; i++)
        yd[2 + i] = p.out[3 - cc->nsp + i];
    if (cc->residual)
        ins[n_in++] = tg_const(&t, 2 + cc->nsp, yd, r);
    sp_node *n = tg_node(&t, "Conv", ins, n_in, 1);
    if (cc->group != 1)
        sp_node_set_attr_int(n, "group", cc->group);
    int64_t a[6];
    for (int i = 0; i < cc->nsp; i++)
        a[i] = cc->s[i] ? cc->s[i] : 1;
    sp_node_set_attr_ints(n, "strides", a, cc->nsp);
    for (int i = 0; i < cc->nsp; i++)
        a[i] = cc->d[i] ? cc->d[i] : 1;
    sp_node_set_attr_ints(n, "dilations", a, cc->nsp);
    if (cc->kernel_attr)
        sp_node_set_attr_ints(n, "kernel_shape", cc->k, cc->nsp);
    if (cc->auto_pad)
        sp_node_set_attr_string(n, "auto_pad", cc->auto_pad);
    else
        sp_node_set_attr_ints(n, "pads", cc->pads, 2 * cc->nsp);
    if (cc->residual)
        n->fusion.residual_input = n_in - 1;
    if (cc->relu)
        n->fusion.act = SP_ACT_RELU;
    if (cc->f16) { /* the reference sees the fp16-rounded inputs */
        for (int64_t i = 0; i < xn; i++)
            x[i] = sp_f16_to_f32(sp_f32_to_f16(x[i]));
        for (int64_t i = 0; i < wn; i++)
            w[i] = sp_f16_to_f32(sp_f32_to_f16(w[i]));
    }
    double *ref = conv_ref(&p, x, w, cc->bias ? b : NULL, cc->residual ? r : NULL, cc->relu);
    run_and_compare(&t, cc->name, 0, ref, yn, cc->f16 ? 2e-3 : TOL_F32);
    free(ref);
    free(x);
    free(w);
    free(b);
    free(r);
    tg_free(&t);
}

static void test_conv(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {"conv 3x3 pad 1", 2, 1, 3, 8, 1, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 0, 0, 1, 0},
        {"conv no bias, no kernel_shape", 2, 2, 4, 5, 1, {7, 6}, {3, 2}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 0, 0, 0, 0, 0},
        {"conv strides 2x3, asym pads", 2, 1, 3, 4, 1, {10, 13}, {3, 3}, {2, 3}, {1, 1}, {0, 1, 2, 0}, NULL, 1, 0, 0, 1, 0},
        {"conv dilation 2", 2, 1, 4, 6, 1, {12, 12}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL, 1, 0, 0, 1, 0},
        {"conv dilation + stride", 2, 1, 2, 3, 1, {15, 14}, {3, 2}, {2, 2}, {2, 3}, {1, 0, 1, 2}, NULL, 1, 0, 0, 0, 0},
        {"conv groups 2", 2, 2, 6, 4, 2, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 0, 0, 1, 0},
        {"conv groups 3 strided", 2, 1, 6, 9, 3, {9, 9}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 0, 0, 1, 0},
        {"depthwise 3x3", 2, 2, 8, 8, 8, {10, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 0, 0, 1, 0},
        {"depthwise 5x5 s2 mult 2", 2, 1, 4, 8, 4, {13, 12}, {5, 5}, {2, 2}, {1, 1}, {2, 1, 2, 1}, NULL, 1, 0, 0, 1, 0},
        {"depthwise dil 2 residual relu", 2, 1, 5, 5, 5, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL, 1, 1, 1, 1, 0},
        {"depthwise wide (chunked rows)", 2, 1, 2, 2, 2, {3, 600}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 0, 0, 0, 1, 0},
        {"SAME_UPPER s2", 2, 1, 3, 4, 1, {8, 7}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", 1, 0, 0, 1, 0},
        {"SAME_LOWER s2", 2, 1, 3, 4, 1, {8, 7}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_LOWER", 1, 0, 0, 1, 0},
        {"SAME_UPPER even kernel", 2, 1, 2, 3, 1, {6, 6}, {4, 2}, {1, 1}, {1, 1}, {0}, "SAME_UPPER", 1, 0, 0, 1, 0},
        {"SAME_LOWER dilated", 2, 1, 2, 3, 1, {9, 7}, {2, 3}, {1, 2}, {2, 1}, {0}, "SAME_LOWER", 1, 0, 0, 1, 0},
        {"VALID", 2, 1, 3, 4, 1, {9, 8}, {3, 3}, {2, 1}, {1, 1}, {0}, "VALID", 1, 0, 0, 1, 0},
        {"1x1 fast path", 2, 2, 16, 12, 1, {7, 9}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1, 0, 0, 1, 0},
        {"1x1 fast path grouped", 2, 1, 8, 4, 2, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1, 0, 0, 1, 0},
        {"1x1 stride 2", 2, 1, 8, 6, 1, {9, 8}, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 1, 0, 0, 1, 0},
        {"fused residual + relu", 2, 1, 6, 8, 1, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0},
        {"1x1 fused residual + relu", 2, 2, 8, 8, 1, {6, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1, 1, 1, 1, 0},
        {"fused relu no residual", 2, 1, 3, 4, 1, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 0, 1, 1, 0},
        {"conv 1-D", 1, 2, 3, 5, 1, {17}, {4}, {2}, {1}, {2, 1}, NULL, 1, 0, 0, 1, 0},
        {"depthwise 1-D", 1, 1, 4, 4, 4, {20}, {3}, {1}, {2}, {1, 1}, NULL, 1, 0, 0, 1, 0},
        {"conv 3-D", 3, 1, 2, 3, 1, {5, 6, 7}, {2, 3, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 0, 1, 2}, NULL, 1, 0, 0, 1, 0},
        {"conv fp16", 2, 1, 3, 4, 1, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 0, 0, 1, 1},
        {"conv larger (column tiles)", 2, 1, 16, 32, 1, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0},
        {"conv few columns (row tiles)", 2, 1, 16, 48, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0},
        {"1x1 few columns (row tiles)", 2, 2, 24, 40, 1, {4, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1, 1, 1, 1, 0},
        {"conv batch 2 groups 2 tiles", 2, 2, 8, 16, 2, {17, 15}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv_case(&cases[i]);
}

/* A residual that shares the output buffer (what the planner may do). */
static void test_conv_residual_in_place(void **state)
{
    (void)state;
    for (int k = 1; k <= 3; k += 2) { /* 1x1 direct GEMM and 3x3 im2col */
        for (int dw = 0; dw < 2; dw++) {
            tg t;
            tg_init(&t);
            int64_t c = 4, m = dw ? 4 : 6, group = dw ? 4 : 1;
            int64_t xd[4] = {1, c, 6, 7}, wd[4] = {m, c / group, k, k}, yd[4] = {1, m, 6, 7};
            float *x = rand_buf(numel(4, xd), -1, 1), *w = rand_buf(numel(4, wd), -1, 1);
            float *b = rand_buf(m, -1, 1), *r = rand_buf(numel(4, yd), -1, 1);
            int ins[4] = {tg_const(&t, 4, xd, x), tg_const(&t, 4, wd, w), tg_const(&t, 1, &m, b),
                          tg_const(&t, 4, yd, r)};
            sp_node *n = tg_node(&t, "Conv", ins, 4, 1);
            int64_t pads[4] = {k / 2, k / 2, k / 2, k / 2};
            sp_node_set_attr_ints(n, "pads", pads, 4);
            sp_node_set_attr_int(n, "group", group);
            n->fusion.residual_input = 3;
            n->fusion.act = SP_ACT_RELU;
            sp_err err;
            assert_int_equal(n->op->check(&t.g, n, &err), 0);
            assert_int_equal(n->op->infer(&t.g, n, &err), 0);
            float *y = malloc(sizeof(float) * (size_t)numel(4, yd));
            memcpy(y, r, sizeof(float) * (size_t)numel(4, yd));
            sp_tensor in[4], out[1];
            for (int i = 0; i < 4; i++) {
                in[i].dtype = SPRUN_DTYPE_FLOAT;
                in[i].shape = t.g.values[ins[i]].shape;
                in[i].data = t.g.values[ins[i]].data;
            }
            in[3].data = y; /* residual aliases the output */
            out[0].dtype = SPRUN_DTYPE_FLOAT;
            out[0].shape = sp_shape_make(4, yd);
            out[0].data = y;
            sp_cpu_ctx ctx = {.nthreads = 1, .graph = &t.g};
            ctx.scratch_bytes = n->op->cpu_scratch(&t.g, n, 1);
            ctx.scratch = ctx.scratch_bytes ? aligned_alloc(64, (ctx.scratch_bytes + 63) & ~(size_t)63) : NULL;
            assert_int_equal(n->op->cpu_run(n, in, 4, out, 1, &ctx, &err), 0);
            conv_p p = {.n = 1, .c = c, .m = m, .group = group,
                        .in = {1, 6, 7}, .k = {1, k, k}, .s = {1, 1, 1}, .d = {1, 1, 1},
                        .pb = {0, k / 2, k / 2}, .out = {1, 6, 7}};
            double *ref = conv_ref(&p, x, w, b, r, 1);
            expect_close("conv residual in place", y, ref, numel(4, yd), TOL_F32);
            free(ref);
            free(ctx.scratch);
            free(y);
            free(x);
            free(w);
            free(b);
            free(r);
            tg_free(&t);
        }
    }
}

/* ConvTranspose against a direct scatter reference (2-D; 1-D as H = 1). */
typedef struct convt_case {
    const char *name;
    int64_t n, c, mg, group, ih, iw, kh, kw, sh, sw, dh, dw;
    int64_t pads[4], opad[2];
} convt_case;

static void test_conv_transpose(void **state)
{
    (void)state;
    static const convt_case cases[] = {
        {"convT basic", 1, 3, 2, 1, 4, 5, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, {0, 0}},
        {"convT stride 2 pads", 2, 4, 3, 1, 5, 4, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, {1, 0}},
        {"convT groups 2 dilation", 1, 4, 2, 2, 4, 4, 2, 3, 2, 1, 2, 2, {0, 1, 1, 0}, {0, 0}},
        {"convT 1-D", 1, 3, 4, 1, 1, 9, 1, 4, 1, 3, 1, 1, {0, 1, 0, 2}, {0, 1}},
        {"convT wide (tiles)", 1, 8, 6, 1, 12, 12, 4, 4, 2, 2, 1, 1, {1, 1, 1, 1}, {0, 0}},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const convt_case *c = &cases[ci];
        const int64_t m = c->mg * c->group, cg = c->c / c->group;
        const int64_t oh = c->sh * (c->ih - 1) + c->opad[0] + c->dh * (c->kh - 1) + 1 - c->pads[0] - c->pads[2];
        const int64_t ow = c->sw * (c->iw - 1) + c->opad[1] + c->dw * (c->kw - 1) + 1 - c->pads[1] - c->pads[3];
        int64_t xd[4] = {c->n, c->c, c->ih, c->iw}, wd[4] = {c->c, c->mg, c->kh, c->kw};
        float *x = rand_buf(numel(4, xd), -1, 1), *w = rand_buf(numel(4, wd), -1, 1), *b = rand_buf(m, -1, 1);
        tg t;
        tg_init(&t);
        int ins[3] = {tg_const(&t, 4, xd, x), tg_const(&t, 4, wd, w), tg_const(&t, 1, &m, b)};
        sp_node *n = tg_node(&t, "ConvTranspose", ins, 3, 1);
        sp_node_set_attr_int(n, "group", c->group);
        sp_node_set_attr_ints(n, "strides", (int64_t[]){c->sh, c->sw}, 2);
        sp_node_set_attr_ints(n, "dilations", (int64_t[]){c->dh, c->dw}, 2);
        sp_node_set_attr_ints(n, "pads", c->pads, 4);
        sp_node_set_attr_ints(n, "output_padding", c->opad, 2);
        const int64_t yn = c->n * m * oh * ow;
        double *ref = calloc((size_t)yn, sizeof(double));
        for (int64_t nb = 0; nb < c->n; nb++)
            for (int64_t co = 0; co < m; co++)
                for (int64_t i = 0; i < oh * ow; i++)
                    ref[(nb * m + co) * oh * ow + i] = b[co];
        for (int64_t nb = 0; nb < c->n; nb++)
            for (int64_t ch = 0; ch < c->c; ch++)
                for (int64_t mo = 0; mo < c->mg; mo++)
                    for (int64_t y = 0; y < c->ih; y++)
                        for (int64_t xx = 0; xx < c->iw; xx++)
                            for (int64_t ky = 0; ky < c->kh; ky++)
                                for (int64_t kx = 0; kx < c->kw; kx++) {
                                    int64_t py = y * c->sh - c->pads[0] + ky * c->dh;
                                    int64_t px = xx * c->sw - c->pads[1] + kx * c->dw;
                                    if (py < 0 || py >= oh || px < 0 || px >= ow)
                                        continue;
                                    int64_t co = (ch / cg) * c->mg + mo;
                                    ref[((nb * m + co) * oh + py) * ow + px] +=
                                        (double)x[((nb * c->c + ch) * c->ih + y) * c->iw + xx] *
                                        w[((ch * c->mg + mo) * c->kh + ky) * c->kw + kx];
                                }
        run_and_compare(&t, c->name, 0, ref, yn, TOL_F32);
        free(ref);
        free(x);
        free(w);
        free(b);
        tg_free(&t);
    }
}

static void test_conv_errors(void **state)
{
    (void)state;
    tg t;
    /* channel mismatch */
    tg_filled(&t, "Conv", 1, 2, (sp_shape[]){{4, {1, 3, 4, 4}}, {4, {2, 4, 3, 3}}});
    expect_error(&t, SPRUN_ERR_SHAPE, "1x3x4x4");
    tg_free(&t);
    /* bad auto_pad */
    sp_node *n = tg_filled(&t, "Conv", 1, 2, (sp_shape[]){{4, {1, 2, 4, 4}}, {4, {2, 2, 3, 3}}});
    sp_node_set_attr_string(n, "auto_pad", "SAME_MIDDLE");
    expect_error(&t, SPRUN_ERR_UNSUPPORTED, "auto_pad");
    tg_free(&t);
    /* kernel larger than the input */
    tg_filled(&t, "Conv", 1, 2, (sp_shape[]){{4, {1, 1, 2, 2}}, {4, {1, 1, 3, 3}}});
    expect_error(&t, SPRUN_ERR_SHAPE, "kernel");
    tg_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Gemm / MatMul                                                             */
/* ------------------------------------------------------------------------ */

static void test_gemm(void **state)
{
    (void)state;
    /* wide: column tiles on the 3-thread pool; tall: row tiles */
    for (int shape = 0; shape < 2; shape++) {
        const int64_t M = shape ? 40 : 5, K = 7, N = shape ? 6 : 100;
        /* C shapes: none, scalar [], [1], [N], [1,N], [M,1], [M,N] */
        const int c_rank[] = {-1, 0, 1, 1, 2, 2, 2};
        const int64_t c_dims[][2] = {{0, 0}, {0, 0}, {1, 0}, {N, 0}, {1, N}, {M, 1}, {M, N}};
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int ci = 0; ci < 7; ci++)
                    for (int bi = 0; bi < 3; bi++) {
                        const float alpha = bi == 2 ? 1.f : 0.75f, beta = bi == 0 ? 1.f : bi == 1 ? -1.5f : 0.f;
                        tg t;
                        tg_init(&t);
                        int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
                        float *a = rand_buf(M * K, -1, 1), *b = rand_buf(K * N, -1, 1), *c = rand_buf(M * N, -1, 1);
                        int ins[3] = {tg_const(&t, 2, ad, a), tg_const(&t, 2, bd, b), -1};
                        int n_in = 2;
                        if (c_rank[ci] >= 0) {
                            ins[2] = tg_const(&t, c_rank[ci], c_dims[ci], c);
                            n_in = 3;
                        }
                        sp_node *n = tg_node(&t, "Gemm", ins, n_in, 1);
                        sp_node_set_attr_int(n, "transA", ta);
                        sp_node_set_attr_int(n, "transB", tb);
                        sp_node_set_attr_float(n, "alpha", alpha);
                        if (bi != 0)
                            sp_node_set_attr_float(n, "beta", beta);
                        double ref[5 * 100];
                        for (int64_t i = 0; i < M; i++)
                            for (int64_t j = 0; j < N; j++) {
                                double s = 0;
                                for (int64_t k = 0; k < K; k++)
                                    s += (double)(ta ? a[k * M + i] : a[i * K + k]) *
                                         (double)(tb ? b[j * K + k] : b[k * N + j]);
                                s *= alpha;
                                if (c_rank[ci] >= 0) {
                                    int64_t cm = c_rank[ci] == 2 ? c_dims[ci][0] : 1;
                                    int64_t cn = c_rank[ci] == 2 ? c_dims[ci][1] : c_rank[ci] == 1 ? c_dims[ci][0] : 1;
                                    s += beta * (double)c[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
                                }
                                ref[i * N + j] = s;
                            }
                        char what[96];
                        snprintf(what, sizeof what, "gemm %lldx%lld tA=%d tB=%d C#%d beta#%d", (long long)M,
                                 (long long)N, ta, tb, ci, bi);
                        run_and_compare(&t, what, 0, ref, M * N, TOL_F32);
                        free(a);
                        free(b);
                        free(c);
                        tg_free(&t);
                    }
    }
}

/* Gemm / MatMul with a fused residual ([N] bias-like or full) and activation. */
static void test_gemm_matmul_fused(void **state)
{
    (void)state;
    const int64_t B = 3, M = 4, K = 9, N = 230; /* N: column tiles on the 3-thread pool */
    for (int op = 0; op < 2; op++)
        for (int full = 0; full < 2; full++) {
            tg t;
            tg_init(&t);
            float *a = rand_buf(B * M * K, -1, 1), *b = rand_buf(K * N, -1, 1), *r = rand_buf(B * M * N, -1, 1);
            int64_t rows = op ? B * M : M;
            int ins[3];
            if (op == 0) {
                ins[0] = tg_const(&t, 2, (int64_t[]){M, K}, a);
            } else {
                ins[0] = tg_const(&t, 3, (int64_t[]){B, M, K}, a);
            }
            ins[1] = tg_const(&t, 2, (int64_t[]){K, N}, b);
            if (full)
                ins[2] = op ? tg_const(&t, 3, (int64_t[]){B, M, N}, r) : tg_const(&t, 2, (int64_t[]){M, N}, r);
            else
                ins[2] = tg_const(&t, 1, &N, r);
            sp_node *n = tg_node(&t, op ? "MatMul" : "Gemm", ins, 3, 1);
            n->fusion.residual_input = 2;
            n->fusion.act = SP_ACT_GELU;
            double *ref = malloc(sizeof(double) * (size_t)(rows * N));
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)a[i * K + k] * b[k * N + j];
                    s += full ? r[i * N + j] : r[j];
                    ref[i * N + j] = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
                }
            run_and_compare(&t, op ? "matmul fused" : "gemm fused (residual, not C)", 0, ref, rows * N, TOL_F32);
            free(ref);
            free(a);
            free(b);
            free(r);
            tg_free(&t);
        }
}

typedef struct mm_case {
    int ra, rb;
    int64_t ad[4], bd[4];
} mm_case;

static void test_matmul(void **state)
{
    (void)state;
    static const mm_case cases[] = {
        {2, 2, {5, 7}, {7, 3}},
        {1, 2, {7}, {7, 4}},
        {2, 1, {3, 7}, {7}},
        {1, 1, {6}, {6}},
        {3, 2, {4, 5, 6}, {6, 3}},           /* folded into one GEMM */
        {3, 3, {4, 5, 6}, {4, 6, 3}},        /* batched */
        {2, 3, {5, 6}, {4, 6, 3}},           /* A broadcast over B's batch */
        {4, 3, {2, 1, 3, 5}, {4, 5, 2}},     /* [2,1] x [4] -> [2,4] */
        {4, 4, {1, 3, 2, 4}, {2, 1, 4, 5}},  /* both broadcast */
        {1, 3, {6}, {3, 6, 2}},              /* 1-D A with batched B */
        {3, 1, {3, 2, 6}, {6}},              /* batched A, 1-D B */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const mm_case *c = &cases[ci];
        tg t;
        tg_init(&t);
        float *a = rand_buf(numel(c->ra, c->ad), -1, 1), *b = rand_buf(numel(c->rb, c->bd), -1, 1);
        int ins[2] = {tg_const(&t, c->ra, c->ad, a), tg_const(&t, c->rb, c->bd, b)};
        tg_node(&t, "MatMul", ins, 2, 1);
        /* numpy semantics by hand: promote, broadcast the batch dims */
        int64_t pa[6] = {0}, pb[6] = {0};
        int ra = c->ra, rb = c->rb;
        memcpy(pa, c->ad, sizeof(int64_t) * (size_t)ra);
        memcpy(pb, c->bd, sizeof(int64_t) * (size_t)rb);
        if (ra == 1) {
            pa[1] = pa[0];
            pa[0] = 1;
            ra = 2;
        }
        if (rb == 1) {
            pb[1] = 1;
            rb = 2;
        }
        const int64_t M = pa[ra - 2], K = pa[ra - 1], N = pb[rb - 1];
        int nbr = (ra > rb ? ra : rb) - 2;
        int64_t bdim[4], astr[4], bstr[4], nb = 1;
        int64_t sa = M * K, sb = K * N;
        for (int i = nbr - 1; i >= 0; i--) {
            int ia = i - (nbr - (ra - 2)), ib = i - (nbr - (rb - 2));
            int64_t da = ia >= 0 ? pa[ia] : 1, db = ib >= 0 ? pb[ib] : 1;
            bdim[i] = da > db ? da : db;
            astr[i] = da == 1 ? 0 : sa;
            bstr[i] = db == 1 ? 0 : sb;
            sa *= da;
            sb *= db;
            nb *= bdim[i];
        }
        double *ref = malloc(sizeof(double) * (size_t)(nb * M * N));
        for (int64_t bi = 0; bi < nb; bi++) {
            int64_t rem = bi, ao = 0, bo = 0;
            for (int i = nbr - 1; i >= 0; i--) {
                int64_t ix = rem % bdim[i];
                rem /= bdim[i];
                ao += ix * astr[i];
                bo += ix * bstr[i];
            }
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)a[ao + i * K + k] * b[bo + k * N + j];
                    ref[(bi * M + i) * N + j] = s;
                }
        }
        char what[64];
        snprintf(what, sizeof what, "matmul case %zu", ci);
        run_and_compare(&t, what, 0, ref, nb * M * N, TOL_F32);
        /* output rank: batch + (M if A not 1-D) + (N if B not 1-D) */
        const sp_value *y = &t.g.values[t.out[0]];
        assert_int_equal(y->shape.rank, nbr + (c->ra > 1) + (c->rb > 1));
        free(ref);
        free(a);
        free(b);
        tg_free(&t);
    }
}

static void test_gemm_errors(void **state)
{
    (void)state;
    tg t;
    tg_filled(&t, "Gemm", 1, 2, (sp_shape[]){{2, {2, 3}}, {2, {4, 2}}});
    expect_error(&t, SPRUN_ERR_SHAPE, "K");
    tg_free(&t);
    tg_filled(&t, "MatMul", 1, 2, (sp_shape[]){{3, {2, 2, 3}}, {3, {3, 3, 2}}});
    expect_error(&t, SPRUN_ERR_SHAPE, "broadcast");
    tg_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Pools                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct pool_case {
    const char *op;
    int64_t n, c, h, w, kh, kw, sh, sw, dh, dw;
    int64_t pads[4];
    int ceil, include_pad;
    const char *auto_pad;
} pool_case;

static void run_pool_case(const pool_case *pc)
{
    const int is_max = strcmp(pc->op, "MaxPool") == 0;
    int64_t in[2] = {pc->h, pc->w}, k[2] = {pc->kh, pc->kw}, s[2] = {pc->sh, pc->sw}, d[2] = {pc->dh, pc->dw};
    int64_t pb[2], pe[2], out[2];
    for (int i = 0; i < 2; i++) {
        int64_t dk = d[i] * (k[i] - 1) + 1;
        if (pc->auto_pad) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + dk - in[i];
            total = total < 0 ? 0 : total;
            pb[i] = strcmp(pc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            pe[i] = total - pb[i];
        } else {
            pb[i] = pc->pads[i];
            pe[i] = pc->pads[i + 2];
            int64_t span = in[i] + pb[i] + pe[i] - dk;
            out[i] = pc->ceil ? (span + s[i] - 1) / s[i] + 1 : span / s[i] + 1;
            if (pc->ceil && (out[i] - 1) * s[i] >= in[i] + pb[i])
                out[i]--;
        }
    }
    tg t;
    tg_init(&t);
    int64_t xd[4] = {pc->n, pc->c, pc->h, pc->w};
    float *x = rand_buf(numel(4, xd), -2, 2);
    int ins[1] = {tg_const(&t, 4, xd, x)};
    sp_node *n = tg_node(&t, pc->op, ins, 1, 1);
    sp_node_set_attr_ints(n, "kernel_shape", k, 2);
    sp_node_set_attr_ints(n, "strides", s, 2);
    if (d[0] != 1 || d[1] != 1)
        sp_node_set_attr_ints(n, "dilations", d, 2);
    if (pc->auto_pad)
        sp_node_set_attr_string(n, "auto_pad", pc->auto_pad);
    else
        sp_node_set_attr_ints(n, "pads", pc->pads, 4);
    if (pc->ceil)
        sp_node_set_attr_int(n, "ceil_mode", 1);
    if (pc->include_pad)
        sp_node_set_attr_int(n, "count_include_pad", 1);
    const int64_t planes = pc->n * pc->c, yn = planes * out[0] * out[1];
    double *ref = malloc(sizeof(double) * (size_t)yn);
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oh = 0; oh < out[0]; oh++)
            for (int64_t ow = 0; ow < out[1]; ow++) {
                double acc = is_max ? -INFINITY : 0.0;
                int64_t cnt = 0, cnt_pad = 0;
                for (int64_t kh = 0; kh < k[0]; kh++)
                    for (int64_t kw = 0; kw < k[1]; kw++) {
                        int64_t ih = oh * s[0] - pb[0] + kh * d[0], iw = ow * s[1] - pb[1] + kw * d[1];
                        if (ih >= -pb[0] && ih < in[0] + pe[0] && iw >= -pb[1] && iw < in[1] + pe[1])
                            cnt_pad++;
                        if (ih < 0 || ih >= in[0] || iw < 0 || iw >= in[1])
                            continue;
                        double v = x[(p * in[0] + ih) * in[1] + iw];
                        cnt++;
                        if (is_max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                    }
                ref[(p * out[0] + oh) * out[1] + ow] = is_max ? acc : acc / (double)(pc->include_pad ? cnt_pad : cnt);
            }
    char what[96];
    snprintf(what, sizeof what, "%s k%lldx%lld s%lld ceil %d pad_incl %d %s", pc->op, (long long)k[0],
             (long long)k[1], (long long)s[0], pc->ceil, pc->include_pad, pc->auto_pad ? pc->auto_pad : "");
    run_and_compare(&t, what, 0, ref, yn, TOL_F32);
    assert_int_equal(t.g.values[t.out[0]].shape.d[2], out[0]);
    assert_int_equal(t.g.values[t.out[0]].shape.d[3], out[1]);
    free(ref);
    free(x);
    tg_free(&t);
}

static void test_pool(void **state)
{
    (void)state;
    static const pool_case cases[] = {
        {"MaxPool", 1, 3, 8, 8, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, NULL},
        {"MaxPool", 2, 4, 11, 10, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0, NULL},   /* ResNet stem-like */
        {"MaxPool", 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 0, NULL},    /* ceil_mode */
        {"MaxPool", 1, 2, 9, 9, 3, 2, 2, 3, 2, 2, {1, 0, 2, 1}, 0, 0, NULL},     /* dilations, asym pads */
        {"MaxPool", 1, 2, 8, 7, 3, 3, 2, 2, 1, 1, {0}, 0, 0, "SAME_UPPER"},
        {"MaxPool", 1, 2, 8, 7, 2, 2, 2, 2, 1, 1, {0}, 0, 0, "SAME_LOWER"},
        {"AveragePool", 1, 3, 8, 8, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, NULL},
        {"AveragePool", 1, 3, 9, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0, NULL},  /* pads excluded */
        {"AveragePool", 1, 3, 9, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 1, NULL},  /* count_include_pad */
        {"AveragePool", 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 0, NULL}, /* ceil_mode */
        {"AveragePool", 1, 2, 10, 9, 3, 3, 2, 2, 1, 1, {1, 0, 1, 0}, 1, 1, NULL}, /* ceil + include pad */
        {"AveragePool", 1, 2, 8, 7, 3, 3, 2, 2, 1, 1, {0}, 0, 0, "SAME_UPPER"},
        {"AveragePool", 1, 2, 8, 7, 3, 3, 2, 2, 1, 1, {0}, 0, 1, "SAME_LOWER"},
        {"AveragePool", 1, 1, 3, 1100, 2, 3, 1, 1, 1, 1, {1, 1, 0, 1}, 0, 1, NULL}, /* rows past the tap tables */
        {"MaxPool", 1, 1, 3, 1100, 2, 3, 1, 1, 1, 2, {1, 1, 0, 1}, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_pool_case(&cases[i]);
}

static void test_global_pool(void **state)
{
    (void)state;
    for (int is_max = 0; is_max < 2; is_max++) {
        tg t;
        tg_init(&t);
        int64_t xd[4] = {2, 5, 7, 6};
        float *x = rand_buf(numel(4, xd), -1, 1);
        int ins[1] = {tg_const(&t, 4, xd, x)};
        tg_node(&t, is_max ? "GlobalMaxPool" : "GlobalAveragePool", ins, 1, 1);
        double ref[10];
        for (int p = 0; p < 10; p++) {
            double acc = is_max ? -INFINITY : 0;
            for (int i = 0; i < 42; i++)
                acc = is_max ? (x[p * 42 + i] > acc ? x[p * 42 + i] : acc) : acc + x[p * 42 + i];
            ref[p] = is_max ? acc : acc / 42.0;
        }
        run_and_compare(&t, is_max ? "GlobalMaxPool" : "GlobalAveragePool", 0, ref, 10, TOL_F32);
        const sp_value *y = &t.g.values[t.out[0]];
        assert_int_equal(y->shape.rank, 4);
        assert_int_equal(y->shape.d[2], 1);
        free(x);
        tg_free(&t);
    }
}

static void test_pool_errors(void **state)
{
    (void)state;
    tg t;
    sp_node *n = tg_filled(&t, "MaxPool", 3, 1, (sp_shape[]){{4, {1, 1, 4, 4}}}); /* a third output */
    sp_node_set_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    expect_error(&t, SPRUN_ERR_INVALID_ARGUMENT, "output 2");
    tg_free(&t);
    tg_filled(&t, "AveragePool", 1, 1, (sp_shape[]){{4, {1, 1, 4, 4}}}); /* no kernel_shape */
    expect_error(&t, SPRUN_ERR_INVALID_ARGUMENT, "kernel_shape");
    tg_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Normalisations                                                            */
/* ------------------------------------------------------------------------ */

/* Mean and 1/sqrt(var + eps) of len floats, two-pass in double. */
static void ref_stats(const float *x, int64_t len, double eps, double *mu, double *inv)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < len; i++)
        s += x[i];
    *mu = s / (double)len;
    for (int64_t i = 0; i < len; i++)
        q += (x[i] - *mu) * (x[i] - *mu);
    *inv = 1.0 / sqrt(q / (double)len + eps);
}

static void test_batchnorm(void **state)
{
    (void)state;
    for (int rank = 2; rank <= 4; rank++) {
        int64_t xd[4] = {2, 5, 6, 7};
        const int64_t C = 5, xn = numel(rank, xd), plane = xn / (2 * C);
        tg t;
        tg_init(&t);
        float *x = rand_buf(xn, -3, 3), *sc = rand_buf(C, 0.5f, 2), *b = rand_buf(C, -1, 1);
        float *mu = rand_buf(C, -1, 1), *var = rand_buf(C, 0.1f, 3);
        int ins[5] = {tg_const(&t, rank, xd, x), tg_const(&t, 1, &C, sc), tg_const(&t, 1, &C, b),
                      tg_const(&t, 1, &C, mu), tg_const(&t, 1, &C, var)};
        sp_node *n = tg_node(&t, "BatchNormalization", ins, 5, 1);
        sp_node_set_attr_float(n, "epsilon", 1e-3f);
        double *ref = malloc(sizeof(double) * (size_t)xn);
        for (int64_t i = 0; i < xn; i++) {
            int64_t c = (i / plane) % C;
            ref[i] = ((double)x[i] - mu[c]) / sqrt((double)var[c] + (double)1e-3f) * sc[c] + b[c];
        }
        run_and_compare(&t, "BatchNormalization", 0, ref, xn, TOL_F32);
        free(ref);
        free(x);
        free(sc);
        free(b);
        free(mu);
        free(var);
        tg_free(&t);
    }
    /* training_mode is rejected */
    tg t;
    const sp_shape c2 = {1, {2}};
    sp_node *n = tg_filled(&t, "BatchNormalization", 1, 5, (sp_shape[]){{2, {2, 2}}, c2, c2, c2, c2});
    sp_node_set_attr_int(n, "training_mode", 1);
    expect_error(&t, SPRUN_ERR_UNSUPPORTED, "training_mode");
    tg_free(&t);
}

static void test_layernorm(void **state)
{
    (void)state;
    int64_t xd[3] = {3, 4, 20};
    const int64_t xn = numel(3, xd);
    for (int axis = -1; axis >= -3; axis--)
        for (int with_b = 0; with_b < 2; with_b++) {
            const int ax = 3 + axis;
            int64_t len = 1;
            for (int i = ax; i < 3; i++)
                len *= xd[i];
            const int64_t rows = xn / len;
            tg t;
            tg_init(&t);
            /* an offset mean makes a naive one-pass variance lose digits */
            float *x = rand_buf(xn, 99, 101), *sc = rand_buf(len, -2, 2), *b = rand_buf(len, -1, 1);
            int ins[3] = {tg_const(&t, 3, xd, x), tg_const(&t, 3 - ax, xd + ax, sc), -1};
            if (with_b)
                ins[2] = tg_const(&t, 3 - ax, xd + ax, b);
            sp_node *n = tg_node(&t, "LayerNormalization", ins, with_b ? 3 : 2, 3);
            sp_node_set_attr_int(n, "axis", axis);
            sp_node_set_attr_float(n, "epsilon", 1e-4f);
            double *ref = malloc(sizeof(double) * (size_t)xn), *rmu = malloc(sizeof(double) * (size_t)rows);
            double *rinv = malloc(sizeof(double) * (size_t)rows);
            for (int64_t r = 0; r < rows; r++) {
                double mu, inv;
                ref_stats(x + r * len, len, (double)1e-4f, &mu, &inv);
                rmu[r] = mu;
                rinv[r] = inv;
                for (int64_t i = 0; i < len; i++)
                    ref[r * len + i] = (x[r * len + i] - mu) * inv * sc[i] + (with_b ? b[i] : 0.0);
            }
            /* Y is checked after the statistics: eval_const folds the node. */
            float *outs[4] = {0};
            sp_err err;
            assert_int_equal(tg_run_pool(&t, outs, &err), 0);
            expect_close("LayerNorm Mean", outs[1], rmu, rows, TOL_F32);
            expect_close("LayerNorm InvStdDev", outs[2], rinv, rows, TOL_F32);
            assert_int_equal(t.g.values[t.out[1]].shape.d[2], 1);
            for (int i = 0; i < 4; i++)
                free(outs[i]);
            run_and_compare(&t, "LayerNormalization", 0, ref, xn, TOL_F32);
            free(ref);
            free(rmu);
            free(rinv);
            free(x);
            free(sc);
            free(b);
            tg_free(&t);
        }
}

static void test_instancenorm(void **state)
{
    (void)state;
    int64_t xd[4] = {2, 3, 5, 6};
    const int64_t C = 3, xn = numel(4, xd), plane = 30;
    tg t;
    tg_init(&t);
    float *x = rand_buf(xn, -2, 3), *sc = rand_buf(C, -2, 2), *b = rand_buf(C, -1, 1);
    int ins[3] = {tg_const(&t, 4, xd, x), tg_const(&t, 1, &C, sc), tg_const(&t, 1, &C, b)};
    tg_node(&t, "InstanceNormalization", ins, 3, 1);
    double *ref = malloc(sizeof(double) * (size_t)xn);
    for (int64_t p = 0; p < 6; p++) {
        double mu, inv;
        ref_stats(x + p * plane, plane, (double)1e-5f, &mu, &inv);
        for (int64_t i = 0; i < plane; i++)
            ref[p * plane + i] = (x[p * plane + i] - mu) * inv * sc[p % C] + b[p % C];
    }
    run_and_compare(&t, "InstanceNormalization", 0, ref, xn, TOL_F32);
    free(ref);
    free(x);
    free(sc);
    free(b);
    tg_free(&t);
}

static void test_groupnorm(void **state)
{
    (void)state;
    for (int per_channel = 0; per_channel < 2; per_channel++) {
        const int64_t N = 2, C = 6, G = 3, P = 10, cpg = C / G, xn = N * C * P;
        int64_t xd[4] = {N, C, 2, 5}, sd = per_channel ? C : G;
        float *x = rand_buf(xn, -3, 5), *sc = rand_buf(sd, -2, 2), *b = rand_buf(sd, -1, 1);
        tg t;
        tg_init(&t);
        t.g.opset = per_channel ? 21 : 18;
        int ins[3] = {tg_const(&t, 4, xd, x), tg_const(&t, 1, &sd, sc), tg_const(&t, 1, &sd, b)};
        sp_node *n = tg_node(&t, "GroupNormalization", ins, 3, 1);
        sp_node_set_attr_int(n, "num_groups", G);
        sp_node_set_attr_float(n, "epsilon", 1e-3f);
        double *ref = malloc(sizeof(double) * (size_t)xn);
        for (int64_t r = 0; r < N * G; r++) {
            const int64_t len = cpg * P;
            double mu, inv;
            ref_stats(x + r * len, len, (double)1e-3f, &mu, &inv);
            for (int64_t i = 0; i < len; i++) {
                int64_t ch = (r % G) * cpg + i / P, k = per_channel ? ch : r % G;
                ref[r * len + i] = (x[r * len + i] - mu) * inv * sc[k] + b[k];
            }
        }
        run_and_compare(&t, per_channel ? "GroupNorm per channel" : "GroupNorm per group", 0, ref, xn, TOL_F32);
        free(ref);
        free(x);
        free(sc);
        free(b);
        tg_free(&t);
    }
}

/* MeanVarianceNormalization over the default axes (0, 2, 3) and over {1, 3}. */
static void test_mvn(void **state)
{
    (void)state;
    int64_t xd[4] = {2, 3, 4, 5};
    const int64_t xn = 120;
    for (int custom = 0; custom < 2; custom++) {
        float *x = rand_buf(xn, -2, 4);
        tg t;
        tg_init(&t);
        int ins[1] = {tg_const(&t, 4, xd, x)};
        sp_node *n = tg_node(&t, "MeanVarianceNormalization", ins, 1, 1);
        if (custom)
            sp_node_set_attr_ints(n, "axes", (int64_t[]){1, -1}, 2);
        int red[4] = {!custom, custom, !custom, 1}; /* reduced dims */
        double *ref = malloc(sizeof(double) * (size_t)xn);
        for (int64_t i = 0; i < xn; i++) { /* group of i: the elements agreeing on the kept dims */
            int64_t ii[4] = {i / 60, i / 20 % 3, i / 5 % 4, i % 5};
            double s = 0, q = 0, cnt = 0;
            for (int pass = 0; pass < 2; pass++)
                for (int64_t j = 0; j < xn; j++) {
                    int64_t jj[4] = {j / 60, j / 20 % 3, j / 5 % 4, j % 5}, same = 1;
                    for (int k = 0; k < 4; k++)
                        same &= red[k] || ii[k] == jj[k];
                    if (!same)
                        continue;
                    if (pass == 0) {
                        s += x[j];
                        cnt++;
                    } else {
                        q += (x[j] - s / cnt) * (x[j] - s / cnt);
                    }
                }
            ref[i] = (x[i] - s / cnt) / (sqrt(q / cnt) + 1e-9);
        }
        run_and_compare(&t, custom ? "MVN axes 1,-1" : "MVN default axes", 0, ref, xn, TOL_F32);
        free(ref);
        free(x);
        tg_free(&t);
    }
}

static void test_lrn(void **state)
{
    (void)state;
    for (int64_t size = 3; size <= 4; size++) {
        int64_t xd[4] = {2, 7, 3, 5};
        const int64_t C = 7, len = 15, xn = numel(4, xd);
        float *x = rand_buf(xn, -2, 2);
        tg t;
        tg_init(&t);
        int ins[1] = {tg_const(&t, 4, xd, x)};
        sp_node *n = tg_node(&t, "LRN", ins, 1, 1);
        sp_node_set_attr_int(n, "size", size);
        sp_node_set_attr_float(n, "alpha", 0.02f);
        sp_node_set_attr_float(n, "beta", 0.6f);
        sp_node_set_attr_float(n, "bias", 2.f);
        double *ref = malloc(sizeof(double) * (size_t)xn);
        for (int64_t nb = 0; nb < 2; nb++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < len; i++) {
                    double sq = 0;
                    for (int64_t k = c - (size - 1) / 2; k <= c + size / 2; k++)
                        if (k >= 0 && k < C)
                            sq += (double)x[(nb * C + k) * len + i] * x[(nb * C + k) * len + i];
                    ref[(nb * C + c) * len + i] =
                        x[(nb * C + c) * len + i] / pow(2.0 + (double)0.02f / (double)size * sq, (double)0.6f);
                }
        run_and_compare(&t, "LRN", 0, ref, xn, TOL_F32);
        free(ref);
        free(x);
        tg_free(&t);
    }
}

/* ------------------------------------------------------------------------ */
/* Activations                                                               */
/* ------------------------------------------------------------------------ */

static double ref_act(const char *op, double x, double al, double be)
{
    if (!strcmp(op, "Relu")) return x > 0 ? x : 0;
    if (!strcmp(op, "LeakyRelu")) return x >= 0 ? x : al * x;
    if (!strcmp(op, "Clip")) return x < al ? al : x > be ? be : x;
    if (!strcmp(op, "Sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(op, "HardSigmoid")) return fmax(0, fmin(1, al * x + be));
    if (!strcmp(op, "HardSwish")) return x * fmax(0, fmin(1, x / 6 + 0.5));
    if (!strcmp(op, "Tanh")) return tanh(x);
    if (!strcmp(op, "Erf")) return erf(x);
    if (!strcmp(op, "Gelu")) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    if (!strcmp(op, "GeluTanh")) return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    if (!strcmp(op, "Elu")) return x >= 0 ? x : al * (exp(x) - 1);
    if (!strcmp(op, "Softplus")) return log1p(exp(x));
    if (!strcmp(op, "Softsign")) return x / (1 + fabs(x));
    if (!strcmp(op, "Selu"))
        return 1.0507009873554804934193349852946 * (x > 0 ? x : 1.6732632423543772848170429916717 * (exp(x) - 1));
    if (!strcmp(op, "Celu")) return x > 0 ? x : al * (exp(x / al) - 1);
    if (!strcmp(op, "Mish")) return x * tanh(log1p(exp(x)));
    if (!strcmp(op, "ThresholdedRelu")) return x > al ? x : 0;
    return NAN;
}

static void run_act(const char *op, const char *ref_name, float al, float be, int set_attrs, int clip_inputs,
                    int f16, int64_t count)
{
    tg t;
    tg_init(&t);
    int64_t xd[3] = {2, 3, count / 6};
    float *x = rand_buf(count, -6, 6);
    if (f16)
        for (int64_t i = 0; i < count; i++)
            x[i] = sp_f16_to_f32(sp_f32_to_f16(x[i]));
    int ins[3] = {tg_const_dt(&t, f16 ? SPRUN_DTYPE_FLOAT16 : SPRUN_DTYPE_FLOAT, 3, xd, x), -1, -1};
    int n_in = 1;
    if (clip_inputs) { /* opset 11+: min, max as inputs */
        ins[1] = tg_const(&t, 0, NULL, &al);
        ins[2] = tg_const(&t, 0, NULL, &be);
        n_in = 3;
    }
    sp_node *n = tg_node(&t, op, ins, n_in, 1);
    if (set_attrs) {
        if (!strcmp(op, "Clip")) {
            sp_node_set_attr_float(n, "min", al);
            sp_node_set_attr_float(n, "max", be);
        } else {
            sp_node_set_attr_float(n, "alpha", al);
            if (!strcmp(op, "HardSigmoid"))
                sp_node_set_attr_float(n, "beta", be);
        }
    }
    if (!strcmp(ref_name, "GeluTanh"))
        sp_node_set_attr_string(n, "approximate", "tanh");
    double *ref = malloc(sizeof(double) * (size_t)count);
    for (int64_t i = 0; i < count; i++) {
        ref[i] = ref_act(ref_name, x[i], al, be);
        if (f16)
            ref[i] = sp_f16_to_f32(sp_f32_to_f16((float)ref[i]));
    }
    char what[64];
    snprintf(what, sizeof what, "%s%s", ref_name, f16 ? " fp16" : "");
    run_and_compare(&t, what, 0, ref, count, f16 ? 1e-3 : TOL_F32);
    free(ref);
    free(x);
    tg_free(&t);
}

static void test_activations(void **state)
{
    (void)state;
    const int64_t big = 6 * 20000; /* above the parallel grain */
    run_act("Relu", "Relu", 0, 0, 0, 0, 0, big);
    run_act("LeakyRelu", "LeakyRelu", 0.01f, 0, 0, 0, 0, 600);
    run_act("LeakyRelu", "LeakyRelu", 0.3f, 0, 1, 0, 0, 600);
    run_act("Clip", "Clip", -1.5f, 2.5f, 1, 0, 0, 600);  /* opset 6 attributes */
    run_act("Clip", "Clip", -0.5f, 4.0f, 0, 1, 0, big);  /* opset 11 inputs */
    run_act("Sigmoid", "Sigmoid", 0, 0, 0, 0, 0, big);
    run_act("HardSigmoid", "HardSigmoid", 0.2f, 0.5f, 0, 0, 0, 600);
    run_act("HardSigmoid", "HardSigmoid", 0.3f, 0.4f, 1, 0, 0, 600);
    run_act("HardSwish", "HardSwish", 0, 0, 0, 0, 0, 600);
    run_act("Tanh", "Tanh", 0, 0, 0, 0, 0, 600);
    run_act("Erf", "Erf", 0, 0, 0, 0, 0, 600);
    run_act("Gelu", "Gelu", 0, 0, 0, 0, 0, big);
    run_act("Gelu", "GeluTanh", 0, 0, 0, 0, 0, 600);
    run_act("Elu", "Elu", 1.0f, 0, 0, 0, 0, 600);
    run_act("Elu", "Elu", 0.7f, 0, 1, 0, 0, 600);
    run_act("Softplus", "Softplus", 0, 0, 0, 0, 0, 600);
    run_act("Softsign", "Softsign", 0, 0, 0, 0, 0, 600);
    run_act("Selu", "Selu", 0, 0, 0, 0, 0, 600);
    run_act("Celu", "Celu", 1.0f, 0, 0, 0, 0, 600);
    run_act("Celu", "Celu", 2.0f, 0, 1, 0, 0, 600);
    run_act("Mish", "Mish", 0, 0, 0, 0, 0, 600);
    run_act("ThresholdedRelu", "ThresholdedRelu", 1.0f, 0, 0, 0, 0, 600);
    run_act("ThresholdedRelu", "ThresholdedRelu", 2.5f, 0, 1, 0, 0, 600);
    run_act("Sigmoid", "Sigmoid", 0, 0, 0, 0, 1, 6000); /* fp16 in and out */
    run_act("Gelu", "Gelu", 0, 0, 0, 0, 1, 6000);

    /* integer Clip (opset 12+) */
    tg t;
    tg_init(&t);
    int v = sp_graph_new_value(&t.g, "x", &(sp_err){0});
    int8_t *xi = malloc(6);
    const int8_t vals[6] = {-100, -3, 0, 2, 7, 120};
    memcpy(xi, vals, 6);
    sp_value_set_const(&t.g.values[v], SPRUN_DTYPE_INT8, &(sp_shape){1, {6}}, xi, 6, 1);
    int lo = sp_graph_new_value(&t.g, "lo", &(sp_err){0});
    int8_t *lov = malloc(1);
    *lov = -5;
    sp_value_set_const(&t.g.values[lo], SPRUN_DTYPE_INT8, &(sp_shape){0, {0}}, lov, 1, 1);
    int ins[3] = {v, lo, -1};
    tg_node(&t, "Clip", ins, 3, 1);
    sp_err err;
    assert_int_equal(sp_node_eval_const(&t.g, t.node, 1, &err), 0);
    const int8_t *y = t.g.values[t.out[0]].data;
    const int8_t want[6] = {-5, -3, 0, 2, 7, 120};
    assert_memory_equal(y, want, 6);
    tg_free(&t);

    /* bad Gelu approximation */
    sp_node *n = tg_filled(&t, "Gelu", 1, 1, (sp_shape[]){{1, {1}}});
    sp_node_set_attr_string(n, "approximate", "sigmoid");
    expect_error(&t, SPRUN_ERR_UNSUPPORTED, "approximate");
    tg_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Softmax                                                                   */
/* ------------------------------------------------------------------------ */

static void run_softmax(const char *op, int64_t opset, int has_axis, int64_t axis, int64_t big_offset)
{
    int64_t xd[4] = {2, 3, 4, 300};
    const int64_t xn = numel(4, xd);
    tg t;
    tg_init(&t);
    t.g.opset = opset;
    float *x = rand_buf(xn, -5, 5);
    for (int64_t i = 0; i < xn; i++)
        x[i] += (float)big_offset; /* large logits: exp would overflow unshifted */
    int ins[1] = {tg_const(&t, 4, xd, x)};
    sp_node *n = tg_node(&t, op, ins, 1, 1);
    if (has_axis)
        sp_node_set_attr_int(n, "axis", axis);
    const int new_sem = opset >= 13;
    int ax = (int)(has_axis ? axis : new_sem ? -1 : 1);
    if (ax < 0)
        ax += 4;
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < 4; i++) {
        if (i < ax)
            outer *= xd[i];
        else if (i == ax || !new_sem)
            len *= xd[i];
        else
            inner *= xd[i];
    }
    const int log_sm = !strcmp(op, "LogSoftmax");
    double *ref = malloc(sizeof(double) * (size_t)xn);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double m = -INFINITY, s = 0;
            for (int64_t l = 0; l < len; l++)
                m = fmax(m, x[(o * len + l) * inner + j]);
            for (int64_t l = 0; l < len; l++)
                s += exp(x[(o * len + l) * inner + j] - m);
            for (int64_t l = 0; l < len; l++) {
                double v = x[(o * len + l) * inner + j] - m;
                ref[(o * len + l) * inner + j] = log_sm ? v - log(s) : exp(v) / s;
            }
        }
    char what[96];
    snprintf(what, sizeof what, "%s opset %lld axis %d", op, (long long)opset, ax);
    run_and_compare(&t, what, 0, ref, xn, TOL_F32);
    free(ref);
    free(x);
    tg_free(&t);
}

static void test_softmax(void **state)
{
    (void)state;
    for (int lg = 0; lg < 2; lg++) {
        const char *op = lg ? "LogSoftmax" : "Softmax";
        run_softmax(op, 13, 0, 0, 0);   /* default -1 */
        run_softmax(op, 13, 1, 1, 0);   /* strided axis */
        run_softmax(op, 13, 1, 0, 0);
        run_softmax(op, 13, 1, -2, 0);
        run_softmax(op, 11, 0, 0, 0);   /* default 1, coerced to 2-D */
        run_softmax(op, 11, 1, 2, 0);
        run_softmax(op, 11, 1, -1, 0);
        run_softmax(op, 13, 0, 0, 1000); /* numerically stable */
    }
    tg t;
    sp_node *n = tg_filled(&t, "Softmax", 1, 1, (sp_shape[]){{2, {2, 2}}});
    sp_node_set_attr_int(n, "axis", 2);
    expect_error(&t, SPRUN_ERR_SHAPE, "axis");
    tg_free(&t);
}

static void test_hardmax(void **state)
{
    (void)state;
    for (int axis = 0; axis < 3; axis++) {
        int64_t xd[3] = {3, 4, 5};
        float *x = rand_buf(60, -1, 1);
        x[7] = x[12] = 3.f; /* a tie along axis 1: the first index wins */
        tg t;
        tg_init(&t);
        t.g.opset = 13;
        int ins[1] = {tg_const(&t, 3, xd, x)};
        sp_node *n = tg_node(&t, "Hardmax", ins, 1, 1);
        sp_node_set_attr_int(n, "axis", axis);
        int64_t len = xd[axis], inner = 1;
        for (int i = axis + 1; i < 3; i++)
            inner *= xd[i];
        double ref[60] = {0};
        for (int64_t o = 0; o < 60 / (len * inner); o++)
            for (int64_t j = 0; j < inner; j++) {
                int64_t best = 0;
                for (int64_t l = 1; l < len; l++)
                    if (x[(o * len + l) * inner + j] > x[(o * len + best) * inner + j])
                        best = l;
                ref[(o * len + best) * inner + j] = 1.0;
            }
        run_and_compare(&t, "Hardmax", 0, ref, 60, 0.0);
        free(x);
        tg_free(&t);
    }
}

/* FLOAT16 in, FLOAT16 Y out, float32 statistics out: the staging path with
 * mixed output types. */
static void test_layernorm_fp16(void **state)
{
    (void)state;
    int64_t xd[2] = {6, 64};
    float *x = rand_buf(384, -2, 2), *sc = rand_buf(64, -1, 1), *b = rand_buf(64, -1, 1);
    for (int i = 0; i < 384; i++)
        x[i] = sp_f16_to_f32(sp_f32_to_f16(x[i]));
    for (int i = 0; i < 64; i++) {
        sc[i] = sp_f16_to_f32(sp_f32_to_f16(sc[i]));
        b[i] = sp_f16_to_f32(sp_f32_to_f16(b[i]));
    }
    tg t;
    tg_init(&t);
    int ins[3] = {tg_const_dt(&t, SPRUN_DTYPE_FLOAT16, 2, xd, x), tg_const_dt(&t, SPRUN_DTYPE_FLOAT16, 1, xd + 1, sc),
                  tg_const_dt(&t, SPRUN_DTYPE_FLOAT16, 1, xd + 1, b)};
    tg_node(&t, "LayerNormalization", ins, 3, 2);
    double ref[384], mu[6];
    for (int r = 0; r < 6; r++) {
        double inv;
        ref_stats(x + r * 64, 64, (double)1e-5f, &mu[r], &inv);
        for (int i = 0; i < 64; i++)
            ref[r * 64 + i] = (x[r * 64 + i] - mu[r]) * inv * sc[i] + b[i];
    }
    float *outs[4] = {0};
    sp_err err;
    assert_int_equal(tg_run_pool(&t, outs, &err), 0);
    assert_int_equal(t.g.values[t.out[0]].dtype, SPRUN_DTYPE_FLOAT16);
    assert_int_equal(t.g.values[t.out[1]].dtype, SPRUN_DTYPE_FLOAT);
    expect_close("LayerNorm fp16 Mean", outs[1], mu, 6, TOL_F32);
    for (int i = 0; i < 4; i++)
        free(outs[i]);
    run_and_compare(&t, "LayerNorm fp16", 0, ref, 384, 2e-3);
    free(x);
    free(sc);
    free(b);
    tg_free(&t);
}

/* MaxPool's Indices: flat input positions, row- or column-major planes. */
static void test_maxpool_indices(void **state)
{
    (void)state;
    for (int so = 0; so < 2; so++) {
        const int64_t N = 2, C = 3, H = 7, W = 6, OH = 4, OW = 3; /* k 3x2, s 2x2, pads 1,0,1,0 */
        int64_t xd[4] = {N, C, H, W};
        float *x = rand_buf(N * C * H * W, -1, 1);
        tg t;
        tg_init(&t);
        int ins[1] = {tg_const(&t, 4, xd, x)};
        sp_node *n = tg_node(&t, "MaxPool", ins, 1, 2);
        sp_node_set_attr_ints(n, "kernel_shape", (int64_t[]){3, 2}, 2);
        sp_node_set_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
        sp_node_set_attr_ints(n, "pads", (int64_t[]){1, 0, 1, 0}, 4);
        sp_node_set_attr_int(n, "storage_order", so);
        sp_err err;
        assert_int_equal(sp_node_eval_const(&t.g, t.node, 1, &err), 0);
        const sp_value *yi = &t.g.values[t.out[1]];
        assert_int_equal(yi->dtype, SPRUN_DTYPE_INT64);
        assert_int_equal(sp_shape_numel(&yi->shape), N * C * OH * OW);
        const int64_t *idx = yi->data;
        const float *y = t.g.values[t.out[0]].data;
        for (int64_t p = 0; p < N * C; p++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    float m = -INFINITY;
                    int64_t best = 0;
                    for (int64_t kh = 0; kh < 3; kh++)
                        for (int64_t kw = 0; kw < 2; kw++) {
                            int64_t ih = oh * 2 - 1 + kh, iw = ow * 2 + kw;
                            if (ih < 0 || ih >= H || iw >= W || !(x[(p * H + ih) * W + iw] > m))
                                continue;
                            m = x[(p * H + ih) * W + iw];
                            best = p * H * W + (so ? ih + iw * H : ih * W + iw);
                        }
                    const int64_t o = (p * OH + oh) * OW + ow;
                    assert_int_equal(idx[o], best);
                    assert_true(y[o] == m);
                }
        free(x);
        tg_free(&t);
    }
}

/* MaxPool on uint8 (opset 12+) is exact. */
static void test_maxpool_uint8(void **state)
{
    (void)state;
    tg t;
    tg_init(&t);
    int v = sp_graph_new_value(&t.g, "x", &(sp_err){0});
    uint8_t *x = malloc(2 * 5 * 5);
    for (int i = 0; i < 50; i++)
        x[i] = (uint8_t)((i * 37 + 11) % 256);
    sp_value_set_const(&t.g.values[v], SPRUN_DTYPE_UINT8, &(sp_shape){4, {1, 2, 5, 5}}, x, 50, 1);
    sp_node *n = tg_node(&t, "MaxPool", &v, 1, 1);
    sp_node_set_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    sp_node_set_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
    sp_node_set_attr_ints(n, "pads", (int64_t[]){0, 0, 1, 1}, 4);
    sp_err err;
    assert_int_equal(sp_node_eval_const(&t.g, t.node, 1, &err), 0);
    const sp_value *y = &t.g.values[t.out[0]];
    assert_int_equal(y->dtype, SPRUN_DTYPE_UINT8);
    assert_int_equal(sp_shape_numel(&y->shape), 2 * 3 * 3);
    const uint8_t *yv = y->data;
    for (int p = 0; p < 2; p++)
        for (int oh = 0; oh < 3; oh++)
            for (int ow = 0; ow < 3; ow++) {
                int m = 0;
                for (int kh = 0; kh < 2; kh++)
                    for (int kw = 0; kw < 2; kw++) {
                        int ih = oh * 2 + kh, iw = ow * 2 + kw;
                        if (ih < 5 && iw < 5 && x[p * 25 + ih * 5 + iw] > m)
                            m = x[p * 25 + ih * 5 + iw];
                    }
                assert_int_equal(yv[p * 9 + oh * 3 + ow], m);
            }
    tg_free(&t);
}

/* ------------------------------------------------------------------------ */
/* Perf mode: SPRUN_OPS_NN_PERF=1 ./test_ops_nn times representative shapes  */
/* (ResNet-50, MobileNetV2, BERT-base) on all cores instead of testing.      */
/* ------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void perf_node(tg *t, const char *label, double flops, int nthreads, sp_threadpool *pool)
{
    sp_graph *g = &t->g;
    sp_node *n = tg_n(t);
    sp_err err;
    if ((n->op->check && n->op->check(g, n, &err)) || n->op->infer(g, n, &err)) {
        printf("%-44s error: %s\n", label, err.msg);
        return;
    }
    sp_tensor in[8], out[4];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    for (int i = 0; i < n->n_in; i++) {
        sp_value *v = sp_node_in(g, n, i);
        if (v)
            in[i] = (sp_tensor){v->dtype, v->shape, v->data};
    }
    for (int i = 0; i < n->n_out; i++) {
        sp_value *v = sp_node_out(g, n, i);
        out[i] = (sp_tensor){v->dtype, v->shape, calloc((size_t)sp_shape_numel(&v->shape), sp_dtype_size(v->dtype))};
    }
    sp_cpu_ctx ctx = {.nthreads = nthreads, .pool = pool, .graph = g};
    ctx.scratch_bytes = n->op->cpu_scratch ? n->op->cpu_scratch(g, n, nthreads) : 0;
    ctx.scratch = ctx.scratch_bytes ? aligned_alloc(64, (ctx.scratch_bytes + 63) & ~(size_t)63) : NULL;
    double t_best = 1e30, t_all[15];
    const int iters = 15;
    for (int it = -2; it < iters; it++) {
        double t0 = now_s();
        n->op->cpu_run(n, in, n->n_in, out, n->n_out, &ctx, &err);
        double dt = now_s() - t0;
        if (it >= 0) {
            t_all[it] = dt;
            t_best = dt < t_best ? dt : t_best;
        }
    }
    for (int i = 1; i < iters; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && t_all[j] < t_all[j - 1]; j--) {
            double tmp = t_all[j];
            t_all[j] = t_all[j - 1];
            t_all[j - 1] = tmp;
        }
    printf("%-44s median %9.1f us  best %9.1f us", label, t_all[iters / 2] * 1e6, t_best * 1e6);
    if (flops > 0)
        printf("  %6.1f GFLOP/s", flops / t_best * 1e-9);
    printf("\n");
    free(ctx.scratch);
    for (int i = 0; i < n->n_out; i++)
        free(out[i].data);
}

static void perf_conv(int nthreads, sp_threadpool *pool, int64_t c, int64_t hw, int64_t m, int64_t k, int64_t s,
                      int64_t group)
{
    tg t;
    tg_init(&t);
    int64_t xd[4] = {1, c, hw, hw}, wd[4] = {m, c / group, k, k};
    float *x = rand_buf(numel(4, xd), -1, 1), *w = rand_buf(numel(4, wd), -1, 1), *b = rand_buf(m, -1, 1);
    int ins[3] = {tg_const(&t, 4, xd, x), tg_const(&t, 4, wd, w), tg_const(&t, 1, &m, b)};
    sp_node *n = tg_node(&t, "Conv", ins, 3, 1);
    sp_node_set_attr_ints(n, "pads", (int64_t[]){k / 2, k / 2, k / 2, k / 2}, 4);
    sp_node_set_attr_ints(n, "strides", (int64_t[]){s, s}, 2);
    sp_node_set_attr_int(n, "group", group);
    n->fusion.act = SP_ACT_RELU;
    const int64_t oh = (hw + 2 * (k / 2) - k) / s + 1;
    char label[96];
    snprintf(label, sizeof label, "Conv %lldx%lld %lld->%lld %lldx%lld s%lld g%lld +relu", (long long)k, (long long)k,
             (long long)c, (long long)m, (long long)hw, (long long)hw, (long long)s, (long long)group);
    perf_node(&t, label, 2.0 * (double)(m * (c / group) * k * k * oh * oh), nthreads, pool);
    free(x);
    free(w);
    free(b);
    tg_free(&t);
}

static void perf_unary(int nthreads, sp_threadpool *pool, const char *op, int rank, const int64_t *d, int64_t axis)
{
    tg t;
    tg_init(&t);
    float *x = rand_buf(numel(rank, d), -3, 3);
    int in = tg_const(&t, rank, d, x);
    sp_node *n = tg_node(&t, op, &in, 1, 1);
    if (axis != 99)
        sp_node_set_attr_int(n, "axis", axis);
    char label[96], sb[64];
    sp_shape sh = sp_shape_make(rank, d);
    snprintf(label, sizeof label, "%s %s", op, sp_shape_str(&sh, sb, sizeof sb));
    perf_node(&t, label, 0, nthreads, pool);
    free(x);
    tg_free(&t);
}

static int run_perf(void)
{
    const int nthreads = sp_cpu_count();
    sp_threadpool *pool = sp_threadpool_create(nthreads);
    printf("ops_nn perf: %d threads, best and median of 15 runs\n", nthreads);
    /* ResNet-50 */
    perf_conv(nthreads, pool, 3, 224, 64, 7, 2, 1);
    perf_conv(nthreads, pool, 64, 56, 64, 3, 1, 1);
    perf_conv(nthreads, pool, 64, 56, 256, 1, 1, 1);
    perf_conv(nthreads, pool, 128, 28, 128, 3, 1, 1);
    perf_conv(nthreads, pool, 256, 14, 256, 3, 1, 1);
    perf_conv(nthreads, pool, 512, 7, 512, 3, 1, 1);
    perf_conv(nthreads, pool, 1024, 14, 256, 1, 1, 1);
    /* MobileNetV2 depthwise */
    perf_conv(nthreads, pool, 32, 112, 32, 3, 1, 32);
    perf_conv(nthreads, pool, 144, 56, 144, 3, 2, 144);
    perf_conv(nthreads, pool, 960, 7, 960, 3, 1, 960);
    {
        tg t;
        tg_init(&t);
        int64_t xd[4] = {1, 64, 112, 112};
        float *x = rand_buf(numel(4, xd), -1, 1);
        int in = tg_const(&t, 4, xd, x);
        sp_node *n = tg_node(&t, "MaxPool", &in, 1, 1);
        sp_node_set_attr_ints(n, "kernel_shape", (int64_t[]){3, 3}, 2);
        sp_node_set_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
        sp_node_set_attr_ints(n, "pads", (int64_t[]){1, 1, 1, 1}, 4);
        perf_node(&t, "MaxPool 3x3 s2 64x112x112", 0, nthreads, pool);
        free(x);
        tg_free(&t);
    }
    /* BERT-base, sequence 128 */
    {
        tg t;
        tg_init(&t);
        float *a = rand_buf(128 * 768, -1, 1), *b = rand_buf(768 * 3072, -1, 1);
        int ins[2] = {tg_const(&t, 3, (int64_t[]){1, 128, 768}, a), tg_const(&t, 2, (int64_t[]){768, 3072}, b)};
        tg_node(&t, "MatMul", ins, 2, 1);
        perf_node(&t, "MatMul 1x128x768 * 768x3072", 2.0 * 128 * 768 * 3072, nthreads, pool);
        free(a);
        free(b);
        tg_free(&t);
    }
    {
        tg t;
        tg_init(&t);
        float *a = rand_buf(12 * 128 * 64, -1, 1), *b = rand_buf(12 * 64 * 128, -1, 1);
        int ins[2] = {tg_const(&t, 4, (int64_t[]){1, 12, 128, 64}, a),
                      tg_const(&t, 4, (int64_t[]){1, 12, 64, 128}, b)};
        tg_node(&t, "MatMul", ins, 2, 1);
        perf_node(&t, "MatMul 1x12x128x64 * 1x12x64x128", 2.0 * 12 * 128 * 64 * 128, nthreads, pool);
        free(a);
        free(b);
        tg_free(&t);
    }
    perf_unary(nthreads, pool, "Softmax", 4, (int64_t[]){1, 12, 128, 128}, -1);
    {
        tg t;
        tg_init(&t);
        float *x = rand_buf(128 * 768, -1, 1), *sc = rand_buf(768, -1, 1);
        const int64_t d = 768;
        int ins[3] = {tg_const(&t, 3, (int64_t[]){1, 128, 768}, x), tg_const(&t, 1, &d, sc), tg_const(&t, 1, &d, sc)};
        tg_node(&t, "LayerNormalization", ins, 3, 1);
        perf_node(&t, "LayerNormalization 1x128x768", 0, nthreads, pool);
        free(x);
        free(sc);
        tg_free(&t);
    }
    perf_unary(nthreads, pool, "Erf", 3, (int64_t[]){1, 128, 3072}, 99);
    perf_unary(nthreads, pool, "Gelu", 3, (int64_t[]){1, 128, 3072}, 99);
    sp_threadpool_destroy(pool);
    return 0;
}

int main(void)
{
    const char *perf = getenv("SPRUN_OPS_NN_PERF");
    if (perf && perf[0] && strcmp(perf, "0") != 0)
        return run_perf();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_residual_in_place),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_gemm_matmul_fused),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_global_pool),
        cmocka_unit_test(test_pool_errors),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_instancenorm),
        cmocka_unit_test(test_lrn),
        cmocka_unit_test(test_mvn),
        cmocka_unit_test(test_groupnorm),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_hardmax),
        cmocka_unit_test(test_layernorm_fp16),
        cmocka_unit_test(test_maxpool_uint8),
        cmocka_unit_test(test_maxpool_indices),
    };
    return cmocka_run_group_tests_name("ops_nn", tests, NULL, NULL);
}
