/*
 * node_tests.c - runs ONNX's own node tests (libonnx-testdata) through sprun.
 *
 *   node_tests [--dir DIR] [--backend cpu|cuda] [--precision fp32|fp16]
 *              [--rtol R] [--atol A] [--filter SUBSTR] [--xfail FILE] [-v]
 *
 * For every test directory (model.onnx + test_data_set_N/{input,output}_K.pb):
 * a model that sprun rejects as unsupported (op, attribute, dtype or a
 * data-dependent shape) is SKIPPED with the reason; otherwise every data set
 * is run and each output compared elementwise: |out - ref| <= atol + rtol*|ref|
 * (ONNX's backend-test rule, defaults rtol 1e-3, atol 1e-7), exact for
 * integer and bool outputs, NaN where the reference has NaN.
 * Tests named in the expected-failure file (one per line, '#' comments give
 * the reason) are reported as XFAIL and do not fail the run.
 * Prints a table of failures and skips by reason, then
 * "N passed, N failed, N skipped"; exits 1 if any unexpected failure.
 */
#include "sprun.h"

#include "loaders/onnx_tensor.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cfg {
    const char *dir, *filter, *xfail_path;
    sprun_backend backend;
    sprun_precision precision;
    double rtol, atol;
    int verbose;
} cfg;

static char **xfail;
static int n_xfail;

static void load_xfail(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || !*p)
            continue;
        char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '#')
            e++;
        *e = '\0';
        char **nx = realloc(xfail, (size_t)(n_xfail + 1) * sizeof *nx);
        if (!nx)
            break;
        xfail = nx;
        xfail[n_xfail++] = strdup(p);
    }
    fclose(f);
}

static int is_xfail(const char *name)
{
    for (int i = 0; i < n_xfail; i++)
        if (!strcmp(xfail[i], name))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static int read_pb(const char *path, sp_value *v)
{
    size_t size;
    void *buf = slurp(path, &size);
    if (!buf)
        return -1;
    sp_err e = {0};
    memset(v, 0, sizeof *v);
    int rc = sp_onnx_tensor_from_buffer(buf, size, v, &e);
    free(buf);
    return rc == SPRUN_OK ? 0 : -1;
}

static double get(int dtype, const void *d, size_t i)
{
    switch (dtype) {
    case SPRUN_DTYPE_FLOAT: return ((const float *)d)[i];
    case SPRUN_DTYPE_DOUBLE: return ((const double *)d)[i];
    case SPRUN_DTYPE_FLOAT16: {
        uint16_t h = ((const uint16_t *)d)[i];
        int e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
        return h & 0x8000 ? -v : v;
    }
    case SPRUN_DTYPE_BFLOAT16: {
        uint32_t b = (uint32_t)((const uint16_t *)d)[i] << 16;
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    case SPRUN_DTYPE_INT64: return (double)((const int64_t *)d)[i];
    case SPRUN_DTYPE_INT32: return ((const int32_t *)d)[i];
    case SPRUN_DTYPE_INT16: return ((const int16_t *)d)[i];
    case SPRUN_DTYPE_INT8: return ((const int8_t *)d)[i];
    case SPRUN_DTYPE_UINT8:
    case SPRUN_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    case SPRUN_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case SPRUN_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case SPRUN_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    default: return NAN;
    }
}

static int is_float(int dt)
{
    return dt == SPRUN_DTYPE_FLOAT || dt == SPRUN_DTYPE_DOUBLE || dt == SPRUN_DTYPE_FLOAT16 ||
           dt == SPRUN_DTYPE_BFLOAT16;
}

/* Compares out with ref; writes a reason into why on mismatch. */
static int compare(const cfg *c, const sprun_tensor *out, const sp_value *ref, char *why, size_t len)
{
    if ((int)out->dtype != ref->dtype) {
        snprintf(why, len, "output '%s': dtype %s, expected %s", out->name, sprun_dtype_name(out->dtype),
                 sprun_dtype_name(ref->dtype));
        return 0;
    }
    if (out->rank != ref->shape.rank) {
        snprintf(why, len, "output '%s': rank %d, expected %d", out->name, out->rank, ref->shape.rank);
        return 0;
    }
    size_t n = 1;
    for (int d = 0; d < out->rank; d++) {
        if (out->dims[d] != ref->shape.d[d]) {
            snprintf(why, len, "output '%s': dim %d is %lld, expected %lld", out->name, d, (long long)out->dims[d],
                     (long long)ref->shape.d[d]);
            return 0;
        }
        n *= (size_t)out->dims[d];
    }
    int fl = is_float(ref->dtype);
    double rtol = c->rtol, atol = c->atol;
    if (ref->dtype == SPRUN_DTYPE_FLOAT16 || ref->dtype == SPRUN_DTYPE_BFLOAT16) {
        rtol = rtol > 1e-2 ? rtol : 1e-2;
        atol = atol > 1e-3 ? atol : 1e-3;
    }
    for (size_t i = 0; i < n; i++) {
        double a = get(out->dtype, out->data, i), b = get(ref->dtype, ref->data, i);
        int ok;
        if (!fl)
            ok = a == b;
        else if (isnan(b))
            ok = isnan(a);
        else if (isinf(b))
            ok = a == b;
        else
            ok = fabs(a - b) <= atol + rtol * fabs(b);
        if (!ok) {
            snprintf(why, len, "output '%s' element %zu: got %.9g, expected %.9g", out->name, i, a, b);
            return 0;
        }
    }
    return 1;
}

typedef enum { R_PASS, R_FAIL, R_SKIP } result;

static result run_test(const cfg *c, const char *tdir, char *why, size_t len)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/model.onnx", tdir);
    sprun_options *opt = NULL;
    sprun_options_create(&opt);
    sprun_options_set_backend(opt, c->backend);
    sprun_options_set_precision(opt, c->precision);
    sprun_options_set_threads(opt, 1);
    sprun_model *m = NULL;
    sprun_code rc = sprun_model_load(path, opt, &m);
    sprun_options_destroy(opt);
    if (rc == SPRUN_ERR_NO_DEVICE) {
        printf("no GPU: skipped (%s)\n", sprun_last_error());
        exit(77); /* ctest SKIP_RETURN_CODE: a GPU run without a GPU is skipped, never passed */
    }
    if (rc != SPRUN_OK) {
        snprintf(why, len, "%s: %s", sprun_code_name(rc), sprun_last_error());
        return rc == SPRUN_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
    }
    sprun_session *s = NULL;
    if (sprun_session_create(m, &s) != SPRUN_OK) {
        snprintf(why, len, "session: %s", sprun_last_error());
        sprun_model_destroy(m);
        return R_FAIL;
    }
    result res = R_PASS;
    int n_sets = 0;
    for (int set = 0; res == R_PASS; set++) {
        char sdir[4200];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%d", tdir, set);
        struct stat st;
        if (stat(sdir, &st) != 0)
            break;
        n_sets++;
        size_t n_in = sprun_model_input_count(m);
        sp_value vin[64];
        sprun_tensor tin[64];
        size_t got = 0;
        for (; got < n_in && got < 64; got++) {
            snprintf(path, sizeof path, "%s/input_%zu.pb", sdir, got);
            if (read_pb(path, &vin[got]) != 0)
                break;
            sprun_tensor_info info;
            sprun_model_input_info(m, got, &info);
            tin[got].name = info.name;
            tin[got].dtype = (sprun_dtype)vin[got].dtype;
            tin[got].rank = vin[got].shape.rank;
            for (int d = 0; d < vin[got].shape.rank; d++)
                tin[got].dims[d] = vin[got].shape.d[d];
            tin[got].data = vin[got].data;
            tin[got].nbytes = vin[got].nbytes;
        }
        if (got != n_in) {
            snprintf(why, len, "test data has fewer inputs than the model (%zu of %zu readable)", got, n_in);
            res = R_FAIL;
        } else if ((rc = sprun_session_run(s, tin, n_in)) != SPRUN_OK) {
            snprintf(why, len, "run %s: %s", sprun_code_name(rc), sprun_last_error());
            res = rc == SPRUN_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
        } else {
            for (size_t o = 0; o < sprun_model_output_count(m) && res == R_PASS; o++) {
                sp_value ref;
                snprintf(path, sizeof path, "%s/output_%zu.pb", sdir, o);
                if (read_pb(path, &ref) != 0)
                    continue; /* optional output without reference */
                sprun_tensor out;
                if (sprun_session_output(s, o, &out) != SPRUN_OK) {
                    snprintf(why, len, "no output %zu", o);
                    res = R_FAIL;
                } else if (!compare(c, &out, &ref, why, len))
                    res = R_FAIL;
                sp_onnx_tensor_release(&ref);
            }
        }
        for (size_t k = 0; k < got; k++)
            sp_onnx_tensor_release(&vin[k]);
    }
    if (res == R_PASS && n_sets == 0) {
        snprintf(why, len, "no test data sets");
        res = R_SKIP;
    }
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    return res;
}

int main(int argc, char **argv)
{
    cfg c = {.dir = "/usr/share/libonnx-testdata/data/node", .backend = SPRUN_BACKEND_CPU, .rtol = 1e-3, .atol = 1e-7};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--dir") && v)
            c.dir = argv[++i];
        else if (!strcmp(a, "--filter") && v)
            c.filter = argv[++i];
        else if (!strcmp(a, "--xfail") && v)
            c.xfail_path = argv[++i];
        else if (!strcmp(a, "--rtol") && v)
            c.rtol = atof(argv[++i]);
        else if (!strcmp(a, "--atol") && v)
            c.atol = atof(argv[++i]);
        else if (!strcmp(a, "--backend") && v) {
            i++;
            c.backend = !strcmp(v, "cuda") ? SPRUN_BACKEND_CUDA : !strcmp(v, "auto") ? SPRUN_BACKEND_AUTO
                                                                                     : SPRUN_BACKEND_CPU;
        } else if (!strcmp(a, "--precision") && v) {
            i++;
            c.precision = !strcmp(v, "fp16") ? SPRUN_PRECISION_FP16 : SPRUN_PRECISION_FP32;
        } else if (!strcmp(a, "-v"))
            c.verbose = 1;
        else {
            fprintf(stderr, "usage: node_tests [--dir D] [--backend cpu|cuda] [--precision fp32|fp16] [--rtol R] "
                            "[--atol A] [--filter S] [--xfail FILE] [-v]\n");
            return 2;
        }
    }
    load_xfail(c.xfail_path);
    DIR *d = opendir(c.dir);
    if (!d) {
        fprintf(stderr, "node_tests: cannot open %s (install libonnx-testdata)\n", c.dir);
        return 2;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "test_", 5) != 0 || (c.filter && !strstr(e->d_name, c.filter)))
            continue;
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
        if (!nn)
            break;
        names = nn;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int passed = 0, failed = 0, skipped = 0, xfailed = 0, xpassed = 0;
    for (int i = 0; i < n; i++) {
        char tdir[4096], why[2048] = "";
        snprintf(tdir, sizeof tdir, "%s/%s", c.dir, names[i]);
        result r = run_test(&c, tdir, why, sizeof why);
        int xf = is_xfail(names[i]);
        why[300] = '\0';
        if (r == R_PASS) {
            passed++;
            if (xf) {
                xpassed++;
                printf("XPASS %s (listed as expected to fail: remove it from the list)\n", names[i]);
            } else if (c.verbose)
                printf("PASS  %s\n", names[i]);
        } else if (r == R_SKIP) {
            skipped++;
            if (c.verbose)
                printf("SKIP  %s: %s\n", names[i], why);
        } else if (xf) {
            xfailed++;
            printf("XFAIL %s: %s\n", names[i], why);
        } else {
            failed++;
            printf("FAIL  %s: %s\n", names[i], why);
        }
        free(names[i]);
    }
    free(names);
    printf("\nONNX node tests (%s backend): %d run, %d passed, %d failed, %d expected failures, %d skipped "
           "(unsupported)%s\n",
           c.backend == SPRUN_BACKEND_CUDA ? "cuda" : "cpu", passed + failed + xfailed, passed, failed, xfailed,
           skipped, xpassed ? ", some expected failures passed" : "");
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped + xfailed);
    for (int i = 0; i < n_xfail; i++)
        free(xfail[i]);
    free(xfail);
    return failed ? 1 : 0;
}
