/*
 * test_fuzz_regressions.c - replays every input the fuzzers ever crashed on
 * (tests/fuzz/regressions/) through both fuzz entry points, in the normal
 * build: model loading + one run (fuzz_load.c) and the .npy / TensorProto
 * input parsers (fuzz_inputs.c). The entry points are the fuzz targets' own
 * code, included here without their libFuzzer wrapper, so a regression
 * replays exactly what the fuzzer ran. Under the ASan/UBSan build a
 * regression shows up as a sanitizer report; in any build as an abort from
 * the targets' own consistency checks.
 *
 * The directory: tests/fuzz/regressions, the sibling of $SPRUN_TEST_DATA's
 * parent (ctest sets SPRUN_TEST_DATA to tests/data), else found from this
 * file's path.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pthread barriers, strdup, dirent (the build adds _GNU_SOURCE) */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#define SP_FUZZ_NO_ENTRY 1
#include "tests/fuzz/fuzz_inputs.c"
#include "tests/fuzz/fuzz_load.c"
#include "tools/npy.c"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Opens the regressions directory: the sibling of $SPRUN_TEST_DATA (taken
 * textually: tests/data need not exist), else next to this source file. */
static DIR *open_regressions_dir(char *out, size_t len)
{
    const char *data = getenv("SPRUN_TEST_DATA");
    if (data && data[0]) {
        snprintf(out, len, "%s", data);
        size_t l = strlen(out);
        while (l > 1 && out[l - 1] == '/')
            out[--l] = '\0';
        char *slash = strrchr(out, '/');
        if (slash) {
            snprintf(slash, len - (size_t)(slash - out), "/fuzz/regressions");
            DIR *d = opendir(out);
            if (d)
                return d;
        }
    }
    /* __FILE__ is .../tests/unit/test_fuzz_regressions.c under CMake */
    snprintf(out, len, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    if (slash)
        snprintf(slash, len - (size_t)(slash - out), "/../fuzz/regressions");
    else
        snprintf(out, len, "tests/fuzz/regressions");
    return opendir(out);
}

/* Under ASan (the CI sanitizer build), let a huge allocation fail as libc's
 * does instead of aborting, as the fuzzers run (tests/fuzz/run.sh). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=1024"; }

static unsigned char *read_all_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Both entry points on one buffer. A copy of exactly `size` bytes, so that
 * ASan flags any read past the end as the fuzzer would. */
static void replay(const unsigned char *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    if (size)
        memcpy(copy, data, size);
    assert_int_equal(sp_fuzz_load_one(copy, size), 0);
    assert_int_equal(sp_fuzz_inputs_one(copy, size), 0);
    free(copy);
}

static void test_replay_regressions(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    DIR *d = open_regressions_dir(dir, sizeof dir);
    if (!d) {
        /* The directory is part of the source tree (it holds a README). */
        print_error("tests/fuzz/regressions not found (last tried %s)\n", dir);
        fail();
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        assert_non_null(names);
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* Named before it runs: a crash leaves the culprit as the last line. */
        print_message("replaying %s\n", names[i]);
        size_t size;
        unsigned char *buf = read_all_file(path, &size);
        replay(buf, size);
        free(buf);
        free(names[i]);
    }
    print_message("%zu regression input%s replayed from %s\n", n, n == 1 ? "" : "s", dir);
    free(names);
}

/* The entry points themselves on inputs that must merely fail cleanly, so
 * this test is never vacuous even with an empty regressions directory. */
static void test_entry_points_smoke(void **state)
{
    (void)state;
    static const unsigned char junk[] = {0x08, 0x07, 0x12, 0x05, 'h', 'e', 'l', 'l', 'o', 0x3a, 0xff};
    static const unsigned char npy[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, "
                                       "'shape': (1,), }";
    replay(NULL, 0);
    replay(junk, sizeof junk);
    replay(npy, sizeof npy - 1);
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof bytes; len += 16)
        replay(bytes, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_points_smoke),
        cmocka_unit_test(test_replay_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
