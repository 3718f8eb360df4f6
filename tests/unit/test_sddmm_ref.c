/* test_sddmm_ref.c - the float64 SDDMM reference (kernels/cpu/sddmm_ref.c)
 * that the GPU kernel's test trusts: a hand-computed case and its refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/cpu/sddmm_ref.h"
#include "sprun.h"

static void test_hand_computed(void **state)
{
    (void)state;
    /* A [2, 3] (lda 4), B [3, 3] (ldb 3); pattern row 0: {2, 0}, row 1: {} */
    const float a[] = {1, 2, 3, 99, -1, 0, 5, 99};
    const float b[] = {1, 1, 1, 0, 2, 0, 4, 5, 6};
    const int32_t rp[] = {0, 2, 2}, ci[] = {2, 0};
    double out[2] = {0, 0};
    assert_int_equal(sp_sddmm_ref_f64(2, 3, 3, rp, ci, a, 4, b, 3, 0.5, out), 0);
    assert_true(out[0] == 0.5 * (4 + 10 + 18)); /* A0 . B2 */
    assert_true(out[1] == 0.5 * (1 + 2 + 3));   /* A0 . B0 */
}

static void test_refuses_bad_patterns(void **state)
{
    (void)state;
    const float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4};
    double out[4];
    const int32_t rp_dec[] = {0, 2, 1}, ci[] = {0, 1};
    assert_int_equal(sp_sddmm_ref_f64(2, 2, 2, rp_dec, ci, a, 2, b, 2, 1.0, out), SPRUN_ERR_INVALID_ARGUMENT);
    const int32_t rp[] = {0, 1, 2}, ci_out[] = {0, 2}; /* column 2 of a 2-column pattern */
    assert_int_equal(sp_sddmm_ref_f64(2, 2, 2, rp, ci_out, a, 2, b, 2, 1.0, out), SPRUN_ERR_INVALID_ARGUMENT);
    assert_int_equal(sp_sddmm_ref_f64(2, 2, 2, rp, ci, a, 1, b, 2, 1.0, out), SPRUN_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_refuses_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
