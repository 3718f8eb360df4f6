/*
 * test_sparse_analysis.c - loaders/sparsity_analysis.c: statistics on
 * hand-made matrices, agreement with a brute-force count and with the 2:4
 * packer on random ones, the transpose helper, a ResNet-50-sized timing.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loaders/sparse_pack.h"
#include "loaders/sparsity_analysis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng_u32(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static void analyze_ok(const float *w, int64_t m, int64_t k, sp_weight_stats *st)
{
    char err[128] = "";
    assert_int_equal(sp_weight_analyze(w, m, k, st, err, sizeof err), 0);
    assert_int_equal(st->m, m);
    assert_int_equal(st->k, k);
}

static void test_single_nonzero_8x8(void **state)
{
    (void)state;
    float w[64] = {0};
    w[0] = 1.0f;
    sp_weight_stats st;
    analyze_ok(w, 8, 8, &st);
    assert_int_equal(st.nnz, 1);
    assert_true(st.density == 1.0 / 64);
    assert_true(st.is_24);
    assert_int_equal(st.groups_over_24, 0);
    /* 4x4: 4 blocks, 3 empty; 8, 16, 32: one (edge) block, not empty. */
    const double sq[4] = {0.75, 0, 0, 0};
    /* 1x4: 16 blocks, 15 empty; 1xb, b >= 8: 8 blocks, 7 empty. */
    const double row[4] = {15.0 / 16, 7.0 / 8, 7.0 / 8, 7.0 / 8};
    for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++) {
        assert_true(st.zero_block_frac[l] == sq[l]);
        assert_true(st.zero_block_frac_1x[l] == row[l]);
    }
}

/* Edge blocks are judged on their part inside the matrix. */
static void test_ragged_edges(void **state)
{
    (void)state;
    float w[5 * 5] = {0};
    w[4 * 5 + 4] = -3.0f; /* corner: in the partial 4x4 block (1, 1) */
    sp_weight_stats st;
    analyze_ok(w, 5, 5, &st);
    assert_true(st.zero_block_frac[0] == 0.75);   /* 2x2 blocks of 4 */
    assert_true(st.zero_block_frac[1] == 0.0);    /* one 8x8 block */
    assert_true(st.zero_block_frac_1x[0] == 0.9); /* 5 rows x 2 */
    assert_true(st.zero_block_frac_1x[3] == 0.8); /* 5 rows x 1 */

    /* -0.0 is zero; NaN is nonzero. */
    memset(w, 0, sizeof w);
    w[0] = -0.0f;
    w[1] = NAN;
    analyze_ok(w, 5, 5, &st);
    assert_int_equal(st.nnz, 1);
}

static void test_24_detection(void **state)
{
    (void)state;
    /* 3 x 10: groups {0..3}, {4..7}, {8, 9} */
    float w[3 * 10] = {0};
    w[0] = w[1] = 1.0f;              /* row 0 group 0: 2, fine */
    w[10 + 8] = w[10 + 9] = 2.0f;    /* row 1 ragged group: 2, fine */
    sp_weight_stats st;
    analyze_ok(w, 3, 10, &st);
    assert_true(st.is_24);
    w[20 + 4] = w[20 + 5] = w[20 + 7] = 1.0f; /* row 2 group 1: 3 */
    analyze_ok(w, 3, 10, &st);
    assert_false(st.is_24);
    assert_int_equal(st.groups_over_24, 1);
    assert_int_equal(st.nnz, 7);
    assert_true(fabs(st.density - 7.0 / 30) < 1e-15);
}

static void test_empty_and_errors(void **state)
{
    (void)state;
    sp_weight_stats st;
    analyze_ok(NULL, 0, 16, &st);
    assert_int_equal(st.nnz, 0);
    assert_true(st.density == 0.0);
    assert_true(st.is_24);
    analyze_ok(NULL, 16, 0, &st);
    char err[128] = "";
    assert_int_not_equal(sp_weight_analyze(NULL, 2, 2, &st, err, sizeof err), 0);
    assert_non_null(strstr(err, "sparsity analysis"));
    assert_int_not_equal(sp_weight_analyze((float[4]){0}, 2, 2, NULL, err, sizeof err), 0);
    assert_int_not_equal(sp_weight_analyze((float[4]){0}, -2, 2, &st, NULL, 0), 0);
}

/* Brute force: count empty b_r x b_c blocks directly. */
static double brute_zero_frac(const float *w, int64_t m, int64_t k, int64_t br, int64_t bc)
{
    int64_t zero = 0, total = 0;
    for (int64_t i0 = 0; i0 < m; i0 += br)
        for (int64_t j0 = 0; j0 < k; j0 += bc) {
            int any = 0;
            for (int64_t i = i0; i < i0 + br && i < m; i++)
                for (int64_t j = j0; j < j0 + bc && j < k; j++)
                    any |= w[i * k + j] != 0.0f;
            zero += !any;
            total++;
        }
    return total ? (double)zero / (double)total : 0.0;
}

static void test_random_vs_brute_force(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {33, 65}, {64, 64}, {100, 37}, {7, 200}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t m = shapes[s][0], k = shapes[s][1];
        for (int dens = 1; dens <= 64; dens *= 4) { /* P(nonzero) = 1/dens */
            float *w = malloc((size_t)(m * k) * sizeof *w);
            assert_non_null(w);
            int64_t nnz = 0;
            for (int64_t i = 0; i < m * k; i++) {
                w[i] = (rng_u32() % (uint32_t)dens == 0) ? 1.0f + (float)(rng_u32() % 7) : 0.0f;
                nnz += w[i] != 0.0f;
            }
            sp_weight_stats st;
            analyze_ok(w, m, k, &st);
            assert_int_equal(st.nnz, nnz);
            assert_true(st.density == (double)nnz / (double)(m * k));
            for (int l = 0; l < SP_ANALYSIS_NBLOCK; l++) {
                const int b = sp_analysis_block_sizes[l];
                assert_true(fabs(st.zero_block_frac[l] - brute_zero_frac(w, m, k, b, b)) < 1e-12);
                assert_true(fabs(st.zero_block_frac_1x[l] - brute_zero_frac(w, m, k, 1, b)) < 1e-12);
            }
            /* is_24 agrees with what the 2:4 packer accepts. */
            sp_24 t;
            const int rc = sp_pack_24(w, m, k, SP_VT_F32, &t, NULL, 0);
            assert_int_equal(rc == 0, st.is_24);
            if (rc == 0) {
                sp_sparse_matrix sm = {.kind = SP_SPARSE_24, .u.s24 = t};
                sp_sparse_free(&sm);
            }
            free(w);
        }
    }
}

static void test_transpose(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{1, 1}, {37, 53}, {64, 32}, {1, 100}, {100, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t r = shapes[s][0], c = shapes[s][1];
        float *a = malloc((size_t)(r * c) * sizeof *a);
        assert_non_null(a);
        for (int64_t i = 0; i < r * c; i++)
            a[i] = (float)i;
        float *t = sp_transpose_f32(a, r, c);
        assert_non_null(t);
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                assert_true(t[j * r + i] == a[i * c + j]);
        free(t);
        free(a);
    }
    float *e = sp_transpose_f32(NULL, 0, 5);
    assert_non_null(e); /* empty: valid, freeable */
    free(e);
    assert_null(sp_transpose_f32(NULL, -1, 5));
    assert_null(sp_transpose_f32(NULL, INT64_MAX / 2, INT64_MAX / 2)); /* overflow */
}

/* All of ResNet-50's conv/fc weights hold about 25.5 M parameters; one
 * analysis of a matrix that size must stay well under a second. */
static void test_resnet50_sized_timing(void **state)
{
    (void)state;
    const int64_t m = 2048, k = 12500; /* 25.6 M elements */
    float *w = malloc((size_t)(m * k) * sizeof *w);
    assert_non_null(w);
    for (int64_t i = 0; i < m * k; i++)
        w[i] = (rng_u32() & 3) ? 0.0f : 1.0f;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sp_weight_stats st;
    analyze_ok(w, m, k, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("analysis of [%lld, %lld]: %.1f ms (density %.3f)\n", (long long)m, (long long)k, ms,
           st.density);
    assert_true(st.density > 0.2 && st.density < 0.3);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_nonzero_8x8),
        cmocka_unit_test(test_ragged_edges),
        cmocka_unit_test(test_24_detection),
        cmocka_unit_test(test_empty_and_errors),
        cmocka_unit_test(test_random_vs_brute_force),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_resnet50_sized_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
