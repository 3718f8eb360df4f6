/*
 * test_spmm_cpu.c - kernels/cpu/spmm_cpu.c against the float64 dense
 * reference (kernels/cpu/spmm_ref.c) for CSR, BSR and 2:4 weights.
 *
 * Tolerances (relative L2 over Y, sp_spmm_rel_l2):
 *   fp32 values:                            <= 1e-5
 *   fp16 values vs the fp16-rounded weight: <= 1e-5 (the kernel itself)
 *   fp16 values vs the original fp32 weight: <= 1e-3 (kernel + rounding)
 * Inputs are random and never zero; Y is NaN-poisoned before every run, so
 * an element the kernel forgets to write makes the error infinite, and in
 * padded layouts the padding must still be NaN afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/cpu/spmm_cpu.h"
#include "loaders/sparse_pack.h"
#include "runtime/half.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_F32 1e-5
#define TOL_F16 1e-3

static uint64_t rng_state = 0xd1b54a32d192ed03ull;

static uint32_t rng_u32(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static double rng_unit(void) { return rng_u32() / 4294967296.0; }

/* +-[0.25, 1.25): never zero, so no product vanishes by accident. */
static float rng_nonzero(void)
{
    const float v = 0.25f + (float)rng_unit();
    return (rng_u32() & 1) ? v : -v;
}

static float *alloc_f(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

static float *random_vec(int64_t n)
{
    float *p = alloc_f(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = rng_nonzero();
    return p;
}

static void poison(float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = NAN;
}

/* Random weight for a layout: density ~0.3 with an empty row (3) and a
 * fully dense row (5) where M allows; for 2:4 every group of 4 keeps at most
 * 2 of its elements. */
static float *random_weight(int64_t m, int64_t k, sp_sparse_kind kind)
{
    float *w = alloc_f(m * k);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) {
            float v = rng_unit() < 0.3 ? rng_nonzero() : 0.0f;
            if (m > 5 && i == 5)
                v = rng_nonzero();
            if (i == 3)
                v = 0.0f;
            w[i * k + j] = v;
        }
    if (kind == SP_SPARSE_24)
        for (int64_t i = 0; i < m; i++)
            for (int64_t g = 0; g < k; g += 4) {
                const int64_t keep0 = g + rng_u32() % 4, keep1 = g + rng_u32() % 4;
                for (int64_t j = g; j < g + 4 && j < k; j++)
                    if (j != keep0 && j != keep1)
                        w[i * k + j] = 0.0f;
            }
    return w;
}

typedef struct layout {
    const char *name;
    int n_major;  /* 0: X [K, N], Y [M, N] (CPU); 1: X [N, K], Y [N, M] (GPU) */
    int64_t ypad; /* extra elements after each Y row, left untouched */
} layout;

static const layout layouts[] = {
    {"cpu [K,N]/[M,N]", 0, 0},
    {"gpu [N,K]/[N,M]", 1, 0},
    {"cpu, padded Y rows", 0, 3},
    {"gpu, padded Y rows", 1, 2},
};

typedef struct epilogue {
    int bias, residual, act;
    float alpha, beta;
} epilogue;

static const epilogue epilogues[] = {
    {0, 0, SP_ACT_NONE, 0, 0},        {1, 0, SP_ACT_NONE, 0, 0},
    {1, 1, SP_ACT_RELU, 0, 0},        {0, 1, SP_ACT_CLIP, -0.5f, 0.75f},
    {1, 0, SP_ACT_RELU, 0, 0},        {1, 1, SP_ACT_GELU, 0, 0},
    {0, 0, SP_ACT_SIGMOID, 0, 0},     {1, 1, SP_ACT_LEAKYRELU, 0.1f, 0},
};
#define NEPI (sizeof epilogues / sizeof epilogues[0])

/* Runs one case; returns nothing, asserts everything. */
static void spmm_case(int64_t m, int64_t k, int64_t n, sp_sparse_kind kind, int br, int bc,
                      sp_sparse_vtype vt, const layout *lay, const epilogue *ep, int nthreads)
{
    float *w = random_weight(m, k, kind);
    char err[256] = "";
    sp_sparse_matrix s;
    assert_int_equal(sp_pack(w, m, k, kind, br, bc, vt, &s, err, sizeof err), 0);
    float *wq = alloc_f(m * k); /* the weight as stored (fp16-rounded) */
    assert_int_equal(sp_unpack_dense(&s, wq), 0);

    float *x = random_vec(k * n);
    float *bias = random_vec(m);
    /* Y rows (length M or N, plus padding) and a residual with the same
     * strides as Y. */
    const int64_t ylen = lay->n_major ? m : n;
    const int64_t yrows = lay->n_major ? n : m;
    const int64_t ystride = ylen + lay->ypad;
    const int64_t ysize = yrows * ystride;
    float *y = alloc_f(ysize);
    float *r = random_vec(ysize);
    double *ref = malloc((size_t)(ysize > 0 ? ysize : 1) * sizeof *ref);
    assert_non_null(ref);

    sp_spmm_args a = {.n = n, .x = x, .y = y, .act = ep->act, .alpha = ep->alpha,
                      .beta = ep->beta, .nthreads = nthreads};
    if (lay->n_major) {
        a.x_sk = 1, a.x_sn = k;
        a.y_sm = 1, a.y_sn = ystride;
    } else {
        a.x_sk = n, a.x_sn = 1;
        a.y_sm = ystride, a.y_sn = 1;
    }
    a.bias = ep->bias ? bias : NULL;
    if (ep->residual) {
        a.residual = r;
        a.r_sm = a.y_sm, a.r_sn = a.y_sn;
    }
    poison(y, ysize);
    assert_int_equal(sp_spmm_cpu(&s, &a, err, sizeof err), 0);

    /* Padding untouched. */
    for (int64_t row = 0; row < yrows; row++)
        for (int64_t c = ylen; c < ystride; c++)
            assert_true(isnan(y[row * ystride + c]));

    assert_int_equal(sp_spmm_ref_f64(wq, m, k, &a, ref), 0);
    const double e_kernel = sp_spmm_rel_l2(y, ref, m, n, a.y_sm, a.y_sn);
    double e_total = e_kernel;
    if (vt == SP_VT_F16) {
        assert_int_equal(sp_spmm_ref_f64(w, m, k, &a, ref), 0);
        e_total = sp_spmm_rel_l2(y, ref, m, n, a.y_sm, a.y_sn);
    }
    if (e_kernel > TOL_F32 || e_total > (vt == SP_VT_F16 ? TOL_F16 : TOL_F32))
        fail_msg("kind %d %dx%d vt %d [%lld x %lld] n %lld, %s, act %d, threads %d: "
                 "rel L2 %.3g (vs fp32 weight %.3g)",
                 (int)kind, br, bc, (int)vt, (long long)m, (long long)k, (long long)n,
                 lay->name, ep->act, nthreads, e_kernel, e_total);

    sp_sparse_free(&s);
    free(w);
    free(wq);
    free(x);
    free(bias);
    free(y);
    free(r);
    free(ref);
}

typedef struct kind_case {
    sp_sparse_kind kind;
    int br, bc;
} kind_case;

static const kind_case kinds[] = {
    {SP_SPARSE_CSR, 0, 0},  {SP_SPARSE_BSR, 4, 4}, {SP_SPARSE_BSR, 8, 8},
    {SP_SPARSE_BSR, 1, 8},  {SP_SPARSE_BSR, 3, 5}, {SP_SPARSE_BSR, 32, 32},
    {SP_SPARSE_24, 0, 0},
};

static const int64_t shapes[][3] = { /* m, k, n */
    {1, 1, 1}, {7, 9, 3}, {17, 33, 5}, {64, 64, 16}, {33, 127, 1029}, {100, 36, 7},
    {6, 2, 40},
};

static void test_spmm_vs_reference(void **state)
{
    (void)state;
    int c = 0;
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int vt = 0; vt < 2; vt++)
                for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++, c++)
                    spmm_case(shapes[si][0], shapes[si][1], shapes[si][2], kinds[ki].kind,
                              kinds[ki].br, kinds[ki].bc, (sp_sparse_vtype)vt, &layouts[li],
                              &epilogues[c % NEPI], 1 + (c % 3) * 2 /* 1, 3, 5 threads */);
}

/* Every epilogue on every layout, one shape. */
static void test_spmm_epilogues(void **state)
{
    (void)state;
    for (size_t e = 0; e < NEPI; e++)
        for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++)
            spmm_case(20, 50, 9, SP_SPARSE_CSR, 0, 0, SP_VT_F32, &layouts[li], &epilogues[e], 2);
}

/* K > 65536: 32-bit CSR columns. */
static void test_spmm_wide_k(void **state)
{
    (void)state;
    spmm_case(3, 70001, 4, SP_SPARSE_CSR, 0, 0, SP_VT_F32, &layouts[0], &epilogues[2], 1);
    spmm_case(3, 70001, 4, SP_SPARSE_CSR, 0, 0, SP_VT_F16, &layouts[1], &epilogues[1], 2);
}

/* The thread count does not change a single bit of the result, and Y may be
 * its own residual (in-place residual add). */
static void test_spmm_threads_and_inplace(void **state)
{
    (void)state;
    const int64_t m = 45, k = 70, n = 33;
    float *w = random_weight(m, k, SP_SPARSE_CSR);
    sp_sparse_matrix s;
    assert_int_equal(sp_pack(w, m, k, SP_SPARSE_CSR, 0, 0, SP_VT_F32, &s, NULL, 0), 0);
    float *x = random_vec(k * n), *r = random_vec(m * n);
    float *y1 = alloc_f(m * n), *y8 = alloc_f(m * n), *yin = alloc_f(m * n);
    sp_spmm_args a = {.n = n, .x = x, .x_sk = n, .x_sn = 1, .y = y1, .y_sm = n, .y_sn = 1,
                      .residual = r, .r_sm = n, .r_sn = 1, .act = SP_ACT_RELU, .nthreads = 1};
    poison(y1, m * n);
    assert_int_equal(sp_spmm_cpu(&s, &a, NULL, 0), 0);
    a.y = y8;
    a.nthreads = 8;
    poison(y8, m * n);
    assert_int_equal(sp_spmm_cpu(&s, &a, NULL, 0), 0);
    assert_memory_equal(y1, y8, (size_t)(m * n) * sizeof *y1);

    memcpy(yin, r, (size_t)(m * n) * sizeof *r);
    a.y = yin;
    a.residual = yin;
    assert_int_equal(sp_spmm_cpu(&s, &a, NULL, 0), 0);
    assert_memory_equal(y1, yin, (size_t)(m * n) * sizeof *y1);

    /* Same in the strided (N-major) path: Y [N, M] its own residual. */
    float *xt = alloc_f(k * n);
    for (int64_t j = 0; j < k; j++)
        for (int64_t c = 0; c < n; c++)
            xt[c * k + j] = x[j * n + c];
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++)
            yin[c * m + i] = r[i * n + c];
    sp_spmm_args b = {.n = n, .x = xt, .x_sk = 1, .x_sn = k, .y = yin, .y_sm = 1, .y_sn = m,
                      .residual = yin, .r_sm = 1, .r_sn = m, .act = SP_ACT_RELU, .nthreads = 3};
    assert_int_equal(sp_spmm_cpu(&s, &b, NULL, 0), 0);
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++)
            assert_true(fabsf(yin[c * m + i] - y1[i * n + c]) <= 1e-5f * (1.0f + fabsf(y1[i * n + c])));

    sp_sparse_free(&s);
    free(w);
    free(x);
    free(xt);
    free(r);
    free(y1);
    free(y8);
    free(yin);
}

/* An all-zero weight: Y = act(bias + residual) everywhere (every row of
 * the packed matrix is empty). */
static void test_spmm_all_zero_weight(void **state)
{
    (void)state;
    const int64_t m = 9, k = 12, n = 5;
    float w[9 * 12] = {0};
    float *x = random_vec(k * n), *bias = random_vec(m), y[9 * 5];
    for (int kind = SP_SPARSE_CSR; kind <= SP_SPARSE_24; kind++) {
        sp_sparse_matrix s;
        assert_int_equal(sp_pack(w, m, k, (sp_sparse_kind)kind, 4, 4, SP_VT_F16, &s, NULL, 0), 0);
        sp_spmm_args a = {.n = n, .x = x, .x_sk = n, .x_sn = 1, .y = y, .y_sm = n, .y_sn = 1,
                          .bias = bias};
        poison(y, m * n);
        assert_int_equal(sp_spmm_cpu(&s, &a, NULL, 0), 0);
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = 0; c < n; c++)
                assert_true(y[i * n + c] == bias[i]);
        sp_sparse_free(&s);
    }
    free(x);
    free(bias);
}

static void test_spmm_errors(void **state)
{
    (void)state;
    const float w[4] = {1, 0, 0, 1};
    float x[2] = {1, 2}, y[2] = {NAN, NAN};
    sp_sparse_matrix s;
    assert_int_equal(sp_pack(w, 2, 2, SP_SPARSE_CSR, 0, 0, SP_VT_F32, &s, NULL, 0), 0);
    sp_spmm_args a = {.n = 1, .x = x, .x_sk = 1, .x_sn = 1, .y = y, .y_sm = 1, .y_sn = 1};
    char err[128] = "";
    assert_int_not_equal(sp_spmm_cpu(NULL, &a, err, sizeof err), 0);
    assert_int_not_equal(sp_spmm_cpu(&s, NULL, err, sizeof err), 0);
    a.act = 99;
    assert_int_not_equal(sp_spmm_cpu(&s, &a, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown activation 99"));
    a.act = SP_ACT_NONE;
    a.n = -1;
    assert_int_not_equal(sp_spmm_cpu(&s, &a, err, sizeof err), 0);
    a.n = 1;
    a.y = NULL;
    assert_int_not_equal(sp_spmm_cpu(&s, &a, err, sizeof err), 0);
    assert_non_null(strstr(err, "y is NULL"));
    assert_true(isnan(y[0]) && isnan(y[1])); /* untouched on error */
    a.y = y;
    sp_sparse_matrix dense = {.kind = SP_SPARSE_DENSE};
    assert_int_not_equal(sp_spmm_cpu(&dense, &a, err, sizeof err), 0);
    assert_int_equal(sp_spmm_cpu(&s, &a, err, sizeof err), 0);
    assert_true(y[0] == 1.0f && y[1] == 2.0f);
    a.n = 0; /* nothing to do: fine even with NULL buffers */
    a.x = NULL;
    a.y = NULL;
    assert_int_equal(sp_spmm_cpu(&s, &a, err, sizeof err), 0);
    sp_sparse_free(&s);

    /* The metric flags unwritten (NaN) outputs. */
    const float yy[2] = {1.0f, NAN};
    const double rr[2] = {1.0, 1.0};
    assert_true(isinf(sp_spmm_rel_l2(yy, rr, 1, 2, 2, 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spmm_vs_reference),
        cmocka_unit_test(test_spmm_epilogues),
        cmocka_unit_test(test_spmm_wide_k),
        cmocka_unit_test(test_spmm_threads_and_inplace),
        cmocka_unit_test(test_spmm_all_zero_weight),
        cmocka_unit_test(test_spmm_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
