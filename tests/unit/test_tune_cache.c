/* test_tune_cache.c - the tuning decision cache: put, get, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/tune_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void test_roundtrip_and_reload(void **state)
{
    (void)state;
    char path[] = "/tmp/sprun-tune-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path); /* the cache creates it on the first put */
    sp_tune_cache *c = sp_tune_cache_open(path);
    assert_non_null(c);
    char choice[16];
    assert_int_equal(sp_tune_cache_get(c, "cpu-2t M=64 K=576 N=3136", choice, sizeof choice), 0);
    assert_int_equal(sp_tune_cache_put(c, "cpu-2t M=64 K=576 N=3136", "csr", "dense=100us csr=40us"), 0);
    assert_int_equal(sp_tune_cache_put(c, "cpu-2t M=256 K=64 N=196", "dense", "dense=9us csr=12us"), 0);
    assert_int_equal(sp_tune_cache_put(c, "bad", "fastest", NULL), -1); /* unknown choice refused */
    assert_int_equal(sp_tune_cache_get(c, "cpu-2t M=64 K=576 N=3136", choice, sizeof choice), 1);
    assert_string_equal(choice, "csr");
    sp_tune_cache_close(c);

    /* A later load reads the decisions back; a later line overrides. */
    c = sp_tune_cache_open(path);
    assert_non_null(c);
    assert_int_equal(sp_tune_cache_get(c, "cpu-2t M=256 K=64 N=196", choice, sizeof choice), 1);
    assert_string_equal(choice, "dense");
    assert_int_equal(sp_tune_cache_put(c, "cpu-2t M=256 K=64 N=196", "2:4", ""), 0);
    sp_tune_cache_close(c);
    c = sp_tune_cache_open(path);
    assert_int_equal(sp_tune_cache_get(c, "cpu-2t M=256 K=64 N=196", choice, sizeof choice), 1);
    assert_string_equal(choice, "2:4");
    assert_int_equal(sp_tune_cache_get(c, "bad", choice, sizeof choice), 0);
    sp_tune_cache_close(c);
    sp_tune_cache_close(NULL);
    unlink(path);
}

static void test_unwritable_path_keeps_memory(void **state)
{
    (void)state;
    sp_tune_cache *c = sp_tune_cache_open("/nonexistent-dir/sprun/tune.txt");
    assert_non_null(c);
    char choice[16];
    assert_int_equal(sp_tune_cache_put(c, "k", "bsr", ""), -1); /* file not writable */
    assert_int_equal(sp_tune_cache_get(c, "k", choice, sizeof choice), 1);
    assert_string_equal(choice, "bsr");
    sp_tune_cache_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_reload),
        cmocka_unit_test(test_unwritable_path_keeps_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
