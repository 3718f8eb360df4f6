/*
 * test_cuda_tune.c - `--tune` on the CUDA backend (runtime/cuda/cuda_sparse.c,
 * sparse_tune.c): a model with a 2:4-pruned 3x3 Conv (patch-gather path) and
 * a 2:4-pruned MatMul, loaded
 *   1. dense (SPRUN_FORMAT_DENSE): the reference outputs;
 *   2. with tuning into a fresh cache file: outputs agree with the dense ones
 *      (fp16, relative L2 <= 1e-2), and the file records one measured
 *      decision per layer ("cuda-<GPU> M=... <TAB>choice<TAB>dense=..us ...");
 *   3. again with the same file: same outputs, and no line is added (the
 *      decisions are reused, nothing is measured again);
 *   4. with 2:4 forced: the sparse kernels inside the model agree too;
 *   5. (first, before anything is remembered) format AUTO without a cache,
 *      twice: plan-time tuning (each layer alone, close calls again in place,
 *      then the whole plan against all-dense and all-sparse) gives outputs
 *      that agree with the dense ones, and the second load runs the same
 *      kernel on every layer as the first (the decisions are remembered for
 *      the process).
 * All of it twice: the Conv pruned 2:4 along ONNX's K (ci, ky, kx), then
 * along its input channels at each kernel position (TensorRT / ASP; packed
 * and gathered in (ky, kx, ci) order).
 * The model is built in memory (tests/unit/test_device_io_model.h).
 * Exit codes: 0 passed, 1 failed, 77 no GPU.
 */
#include "sprun.h"
#include "tests/unit/test_device_io_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BATCH = 8, C = 64, HW = 16, TK = 256, TN = 512 };

static int failures = 0;
#define CHECK(cond, ...)                  \
    do {                                  \
        if (!(cond)) {                    \
            printf("FAIL  " __VA_ARGS__); \
            printf("\n");                 \
            failures++;                   \
        }                                 \
    } while (0)

/* zero two of every four consecutive values along the GEMM's K: for the
 * Conv, K runs over (ci, ky, kx) within an output channel's row; for the
 * MatMul's [K, N] weight, down a column */
static void prune24_rows(float *w, int64_t rows, int64_t k)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g + 4 <= k; g += 4) {
            const int64_t z = (r + g / 4) % 3; /* which pair to keep varies */
            for (int q = 0; q < 4; q++)
                if (q == z || q == z + 1)
                    continue;
                else
                    w[r * k + g + q] = 0.0f;
        }
}

/* zero two of every four input channels at each kernel position of the
 * [C, C, 3, 3] conv weight (which two varies) */
static void prune24_channels(float *w)
{
    for (int64_t m = 0; m < C; m++)
        for (int64_t ci = 0; ci < C; ci++)
            for (int64_t pos = 0; pos < 9; pos++) {
                const int64_t z = (m + pos + ci / 4) % 3, q = ci % 4;
                if (q != z && q != z + 1)
                    w[(m * C + ci) * 9 + pos] = 0.0f;
            }
}

static dio_pb tune_model(int along_c)
{
    dio_pb g = {0}, attrs = {0};
    static float wc[C * C * 9], bc[C], wm[TK * TN], wmt[TN * TK];
    dio_weights(wc, C * C * 9, 7);
    dio_weights(bc, C, 8);
    dio_weights(wmt, TN * TK, 9);
    if (along_c)
        prune24_channels(wc);
    else
        prune24_rows(wc, C, C * 9);
    prune24_rows(wmt, TN, TK); /* [N, K] view: rows are output features */
    for (int64_t n = 0; n < TN; n++)
        for (int64_t k = 0; k < TK; k++)
            wm[k * TN + n] = wmt[n * TK + k];
    const int64_t xd[] = {-1, C, HW, HW}, td[] = {-1, TK};
    const int64_t wcd[] = {C, C, 3, 3}, bcd[] = {C}, wmd[] = {TK, TN}, pads[] = {1, 1, 1, 1};
    dio_value(&g, 11, "x", DIO_F32, 4, xd);
    dio_value(&g, 11, "t", DIO_F32, 2, td);
    dio_init(&g, "Wc", DIO_F32, 4, wcd, wc, sizeof wc);
    dio_init(&g, "Bc", DIO_F32, 1, bcd, bc, sizeof bc);
    dio_init(&g, "Wm", DIO_F32, 2, wmd, wm, sizeof wm);
    dio_attr_ints(&attrs, "pads", 4, pads);
    dio_node(&g, "Conv", "conv", DIO_NAMES("x", "Wc", "Bc"), DIO_NAMES("c"), &attrs);
    dio_node(&g, "Relu", "relu", DIO_NAMES("c"), DIO_NAMES("y"), NULL);
    dio_node(&g, "MatMul", "mm", DIO_NAMES("t", "Wm"), DIO_NAMES("z"), NULL);
    dio_value(&g, 12, "y", DIO_F32, -1, NULL);
    dio_value(&g, 12, "z", DIO_F32, -1, NULL);
    return dio_finish(&g);
}

typedef struct {
    float *y, *z;
    size_t ny, nz;
    char kernel[4][32]; /* each weight layer's kernel, from the profiled run */
    int n_kernel;
} outs;

/* loads the model with format f (and tuning into cache when not NULL), runs
 * it once on the fixed inputs, copies the outputs; 0 on success */
static int run(const dio_pb *model, sprun_format f, const char *cache, sprun_tensor *in, outs *o)
{
    sprun_options *opt = NULL;
    sprun_model *m = NULL;
    sprun_session *s = NULL;
    int rc = 1;
    if (sprun_options_create(&opt) != SPRUN_OK || sprun_options_set_backend(opt, SPRUN_BACKEND_CUDA) != SPRUN_OK ||
        sprun_options_set_precision(opt, SPRUN_PRECISION_FP16) != SPRUN_OK ||
        sprun_options_set_format(opt, f) != SPRUN_OK || (cache && sprun_options_set_tuning(opt, cache) != SPRUN_OK))
        goto done;
    if (sprun_model_load_buffer(model->b, model->n, opt, &m) != SPRUN_OK ||
        sprun_session_create(m, &s) != SPRUN_OK || sprun_session_set_profiling(s, 1) != SPRUN_OK ||
        sprun_session_run(s, in, 2) != SPRUN_OK) {
        printf("      %s\n", sprun_last_error());
        goto done;
    }
    o->n_kernel = 0;
    for (size_t i = 0; i < sprun_session_profile_count(s); i++) {
        sprun_layer_profile lp;
        if (sprun_session_profile_layer(s, i, &lp) == SPRUN_OK && lp.kernel && o->n_kernel < 4)
            snprintf(o->kernel[o->n_kernel++], sizeof o->kernel[0], "%s", lp.kernel);
    }
    sprun_tensor v;
    if (sprun_session_output(s, 0, &v) != SPRUN_OK || !(o->y = malloc(v.nbytes)))
        goto done;
    memcpy(o->y, v.data, v.nbytes);
    o->ny = v.nbytes / 4;
    if (sprun_session_output(s, 1, &v) != SPRUN_OK || !(o->z = malloc(v.nbytes)))
        goto done;
    memcpy(o->z, v.data, v.nbytes);
    o->nz = v.nbytes / 4;
    rc = 0;
done:
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    sprun_options_destroy(opt);
    return rc;
}

static double rel_l2(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num) / (sqrt(den) + 1e-30);
}

static int count_lines(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += !strncmp(line, prefix, strlen(prefix));
    fclose(f);
    return n;
}

static void compare(const char *what, const outs *o, const outs *ref)
{
    CHECK(o->ny == ref->ny && o->nz == ref->nz, "%s: output sizes differ", what);
    if (o->ny != ref->ny || o->nz != ref->nz)
        return;
    const double ey = rel_l2(o->y, ref->y, ref->ny), ez = rel_l2(o->z, ref->z, ref->nz);
    printf("%-5s %s: conv rel-L2 %.2e, matmul rel-L2 %.2e (tol 1e-2)\n", ey <= 1e-2 && ez <= 1e-2 ? "PASS" : "FAIL",
           what, ey, ez);
    CHECK(ey <= 1e-2 && ez <= 1e-2, "%s: outputs differ from the dense plan's", what);
}

static void run_all(int along_c);

int main(void)
{
    sprun_options *probe = NULL;
    sprun_model *pm = NULL;
    dio_pb model = tune_model(0);
    sprun_options_create(&probe);
    sprun_options_set_backend(probe, SPRUN_BACKEND_CUDA);
    if (sprun_model_load_buffer(model.b, model.n, probe, &pm) == SPRUN_ERR_NO_DEVICE) {
        printf("no GPU: skipped\n");
        sprun_options_destroy(probe);
        free(model.b);
        return 77;
    }
    sprun_model_destroy(pm);
    sprun_options_destroy(probe);
    free(model.b);
    for (int along_c = 0; along_c < 2; along_c++) {
        printf("== conv pruned 2:4 along %s\n", along_c ? "its input channels" : "ONNX's K");
        run_all(along_c);
    }
    printf("test_cuda_tune: %s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}

static void run_all(int along_c)
{
    dio_pb model = tune_model(along_c);
    const int64_t xd[] = {BATCH, C, HW, HW}, td[] = {BATCH * 16, TK};
    sprun_tensor in[2] = {dio_tensor("x", SPRUN_DTYPE_FLOAT, 4, xd), dio_tensor("t", SPRUN_DTYPE_FLOAT, 2, td)};
    if (!in[0].data || !in[1].data) {
        failures++;
        return;
    }
    dio_weights(in[0].data, in[0].nbytes / 4, 11);
    dio_weights(in[1].data, in[1].nbytes / 4, 12);

    char cache[] = "/tmp/sprun-tune-XXXXXX";
    int fd = mkstemp(cache);
    if (fd < 0) {
        failures++;
        return;
    }
    close(fd);
    unlink(cache); /* the backend creates it */

    outs dense = {0}, tuned = {0}, again = {0}, forced = {0}, plan1 = {0}, plan2 = {0};
    CHECK(run(&model, SPRUN_FORMAT_AUTO, NULL, in, &plan1) == 0, "plan-time tuned load/run");
    CHECK(run(&model, SPRUN_FORMAT_AUTO, NULL, in, &plan2) == 0, "second plan-time tuned load/run");
    int same = plan1.n_kernel == plan2.n_kernel && plan1.n_kernel == 2;
    for (int i = 0; same && i < plan1.n_kernel; i++)
        same = !strcmp(plan1.kernel[i], plan2.kernel[i]);
    printf("%-5s plan-time tuning: kernels %s, %s; a second load of the model runs %s, %s\n", same ? "PASS" : "FAIL",
           plan1.n_kernel > 0 ? plan1.kernel[0] : "?", plan1.n_kernel > 1 ? plan1.kernel[1] : "?",
           plan2.n_kernel > 0 ? plan2.kernel[0] : "?", plan2.n_kernel > 1 ? plan2.kernel[1] : "?");
    CHECK(same, "two loads of one model, plan-time tuned, chose different kernels (or not 2 weight layers)");
    CHECK(run(&model, SPRUN_FORMAT_DENSE, NULL, in, &dense) == 0, "dense load/run");
    CHECK(run(&model, SPRUN_FORMAT_AUTO, cache, in, &tuned) == 0, "tuned load/run");
    const int decisions = count_lines(cache, "cuda-");
    printf("%-5s tuning recorded %d decisions in %s\n", decisions == 2 ? "PASS" : "FAIL", decisions, cache);
    CHECK(decisions == 2, "expected one measured decision per sparse-capable layer (2), found %d", decisions);
    CHECK(run(&model, SPRUN_FORMAT_AUTO, cache, in, &again) == 0, "reloaded tuned load/run");
    const int after = count_lines(cache, "cuda-");
    printf("%-5s reload reused the decisions (%d lines after, %d before)\n", after == decisions ? "PASS" : "FAIL",
           after, decisions);
    CHECK(after == decisions, "the reload measured again");
    CHECK(run(&model, SPRUN_FORMAT_24, NULL, in, &forced) == 0, "2:4 forced load/run");
    if (!failures) {
        compare("tuned", &tuned, &dense);
        compare("reloaded", &again, &dense);
        compare("2:4 forced", &forced, &dense);
        compare("plan-time tuned", &plan1, &dense);
        compare("plan-time tuned, second load", &plan2, &dense);
    }
    FILE *f = fopen(cache, "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f))
            printf("      cache: %s", line);
        fclose(f);
    }
    unlink(cache);
    free(model.b);
    free(in[0].data);
    free(in[1].data);
    free(dense.y), free(dense.z), free(tuned.y), free(tuned.z), free(again.y), free(again.z), free(forced.y),
        free(forced.z), free(plan1.y), free(plan1.z), free(plan2.y), free(plan2.z);
}
