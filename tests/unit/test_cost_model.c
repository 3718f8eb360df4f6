/* test_cost_model.c - the cost model's choices and its calibration files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/cost_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SPRUN_SOURCE_DIR
#define SPRUN_SOURCE_DIR "."
#endif

static sp_cost_problem problem(double density, int is_24, double zb16)
{
    sp_cost_problem p = {.m = 1024, .k = 1024, .n = 3136, .density = density, .is_24 = is_24, .value_bytes = 4};
    p.zero_block_frac[2] = zb16;
    return p;
}

static void test_choices_follow_work_over_efficiency(void **state)
{
    (void)state;
    const unsigned all = (1u << SPRUN_FORMAT_CSR) | (1u << SPRUN_FORMAT_BSR) | (1u << SPRUN_FORMAT_24);
    char why[160];
    sp_cost_estimate best, dense;
    /* CPU: CSR reaches about a quarter of dense GEMM's efficiency, so it
     * wins at 10 % density and loses at 50 %. */
    sp_cost_problem p = problem(0.1, 0, 0);
    assert_int_equal(sp_cost_choose(&sp_cost_cpu_generic, &p, all, &best, &dense, why, sizeof why), SPRUN_FORMAT_CSR);
    assert_true(dense.t_total / best.t_total > 1.5);
    assert_non_null(strstr(why, "csr"));
    p = problem(0.5, 0, 0);
    assert_int_equal(sp_cost_choose(&sp_cost_cpu_generic, &p, all, &best, &dense, why, sizeof why),
                     SPRUN_FORMAT_DENSE);
    /* 2:4 only for weights that are 2:4. */
    sp_cost_estimate e;
    p = problem(0.5, 0, 0);
    assert_int_equal(sp_cost_estimate_format(&sp_cost_cpu_generic, &p, SPRUN_FORMAT_24, 0, &e), 0);
    p = problem(0.5, 1, 0);
    assert_int_equal(sp_cost_estimate_format(&sp_cost_cpu_generic, &p, SPRUN_FORMAT_24, 0, &e), 1);
    /* BSR only at the block sizes the tables know. */
    assert_int_equal(sp_cost_estimate_format(&sp_cost_cpu_generic, &p, SPRUN_FORMAT_BSR, 12, &e), 0);
    /* H100: the measured sparse kernels lose to cuBLAS at 80 % on a big N,
     * so the selector keeps dense (what bench/results shows). */
    p = problem(0.2, 0, 0.2);
    p.value_bytes = 2;
    p.n = 4096;
    assert_int_equal(sp_cost_choose(&sp_cost_h100_fp16, &p, all, &best, &dense, why, sizeof why),
                     SPRUN_FORMAT_DENSE);
    /* Memory-bound regime: at N = 16 with 98 % empty 16x16 blocks, BSR wins. */
    p = problem(0.02, 0, 0.98);
    p.value_bytes = 2;
    p.m = p.k = 4096;
    p.n = 16;
    assert_int_equal(sp_cost_choose(&sp_cost_h100_fp16, &p, all, &best, &dense, why, sizeof why), SPRUN_FORMAT_BSR);
}

static void expect_same(const sp_cost_device *a, const sp_cost_device *b)
{
    assert_string_equal(a->name, b->name);
    assert_true(a->bandwidth == b->bandwidth && a->dense_peak == b->dense_peak && a->e_dense == b->e_dense);
    assert_true(a->e_csr == b->e_csr && a->e_24 == b->e_24 && a->e_mem_sparse == b->e_mem_sparse &&
                a->e_mem_24 == b->e_mem_24);
    for (int i = 0; i < 4; i++)
        assert_true(a->e_bsr[i] == b->e_bsr[i]);
    assert_int_equal(a->csr_expands, b->csr_expands);
}

/* The committed calibration files are the built-in tables, written out. */
static void test_calibration_files_match_builtin(void **state)
{
    (void)state;
    char err[512];
    sp_cost_device d;
    memset(&d, 0, sizeof d);
    d.e_dense = d.e_csr = d.e_24 = d.e_mem = d.e_mem_sparse = 1;
    int rc = sp_cost_device_load(SPRUN_SOURCE_DIR "/bench/calibration/cpu-2core.cal", &d, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    expect_same(&d, &sp_cost_cpu_generic);
    memset(&d, 0, sizeof d);
    rc = sp_cost_device_load(SPRUN_SOURCE_DIR "/bench/calibration/h100-fp16.cal", &d, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    expect_same(&d, &sp_cost_h100_fp16);
}

static void test_calibration_errors(void **state)
{
    (void)state;
    char path[] = "/tmp/sprun-cal-XXXXXX", err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# partial file: other keys keep the base table's values\ne_csr = 0.5\nbogus_key = 1\n");
    fclose(f);
    sp_cost_device d = sp_cost_cpu_generic;
    assert_int_equal(sp_cost_device_load(path, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key 'bogus_key'"));
    f = fopen(path, "w");
    fprintf(f, "e_csr = 0.5\ne_bsr = 0.1 0.2\n");
    fclose(f);
    assert_int_equal(sp_cost_device_load(path, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "e_bsr"));
    f = fopen(path, "w");
    fprintf(f, "e_csr = 0.5   # measured\n\nname = test\n");
    fclose(f);
    d = sp_cost_cpu_generic;
    assert_int_equal(sp_cost_device_load(path, &d, err, sizeof err), 0);
    assert_true(d.e_csr == 0.5);
    assert_true(d.e_dense == sp_cost_cpu_generic.e_dense);
    assert_string_equal(d.name, "test");
    f = fopen(path, "w");
    fprintf(f, "e_dense = 0\n");
    fclose(f);
    assert_int_equal(sp_cost_device_load(path, &d, err, sizeof err), -1); /* would divide by zero */
    unlink(path);
    assert_int_equal(sp_cost_device_load("/nonexistent/cal", &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/cal"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choices_follow_work_over_efficiency),
        cmocka_unit_test(test_calibration_files_match_builtin),
        cmocka_unit_test(test_calibration_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
