/*
 * compare.c - `sprun --compare`: the dense and the sparse plan of one model
 * in one process. Checks that their outputs agree, times both (median and
 * p90 of many runs after warm-up) and prints a per-layer table: GEMM shape,
 * density, structure, chosen kernel, predicted and measured time, and the
 * realized reduction R3 = dense time / sparse time of each layer.
 */
#include "tools/clock.h"
#include "tools/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SPRUN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

typedef struct timing {
    double median, p90;
} timing;

static void summarize(double *lat, int runs, timing *t)
{
    qsort(lat, (size_t)runs, sizeof *lat, sprun_cmp_double);
    t->median = lat[runs / 2];
    t->p90 = lat[(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1];
}

/* One run, finished (device-output runs return before the GPU is done). */
static int run_sync(sprun_session *s, const sprun_tensor *in, size_t n_in)
{
    return sprun_session_run(s, in, n_in) == SPRUN_OK && sprun_session_synchronize(s) == SPRUN_OK ? 0 : -1;
}

/* Times both plans with their runs interleaved (dense, sparse, dense, ...),
 * so clock and thermal drift and the order of measurement affect both
 * alike instead of favouring the plan timed first. */
static int time_pair(sprun_session *ds, sprun_session *ss, const sprun_tensor *in, size_t n_in, int warmup, int runs,
                     timing *td, timing *ts)
{
    for (int i = 0; i < warmup; i++)
        if (run_sync(ds, in, n_in) != 0 || run_sync(ss, in, n_in) != 0)
            return -1;
    double *ld = malloc((size_t)runs * sizeof *ld), *ls = malloc((size_t)runs * sizeof *ls);
    int rc = ld && ls ? 0 : -1;
    for (int i = 0; i < runs && rc == 0; i++) {
        double t0 = sprun_now_us();
        rc = run_sync(ds, in, n_in);
        double t1 = sprun_now_us();
        rc = rc == 0 ? run_sync(ss, in, n_in) : rc;
        ld[i] = t1 - t0;
        ls[i] = sprun_now_us() - t1;
    }
    if (rc == 0) {
        summarize(ld, runs, td);
        summarize(ls, runs, ts);
    }
    free(ld);
    free(ls);
    return rc;
}

/* The two plans' rows of the latency table and the speedup. */
/* s as a JSON string: quotes, backslashes and control characters escaped */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_pair(const timing *td, const timing *ts)
{
    printf("  %-8s %12.1f %12.1f\n", "dense", td->median, td->p90);
    printf("  %-8s %12.1f %12.1f\n", "sparse", ts->median, ts->p90);
    printf("  speedup (dense median / sparse median): %.2fx\n", td->median / ts->median);
}

/* Relative L2 error of output idx of a against b (float outputs only). */
static double rel_l2(const sprun_tensor *a, const sprun_tensor *b)
{
    if (a->dtype != SPRUN_DTYPE_FLOAT || b->dtype != SPRUN_DTYPE_FLOAT || a->nbytes != b->nbytes)
        return NAN;
    const float *x = a->data, *y = b->data;
    double num = 0, den = 0;
    for (size_t i = 0; i < a->nbytes / sizeof(float); i++) {
        num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        den += (double)y[i] * y[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static const char *structure(const sprun_weight_info *w, char *buf, size_t len)
{
    if (w->density > 0.999)
        snprintf(buf, len, "dense");
    else if (w->is_2_4 || w->is_2_4_c)
        snprintf(buf, len, "2:4");
    else if (w->zero_block_frac[2] > 0.5 * (1 - w->density))
        snprintf(buf, len, "blocks16");
    else
        snprintf(buf, len, "unstructured");
    return buf;
}

/* Measured time of the dense plan's node called name (profile of s). */
static double dense_time_of(const sprun_session *dense, const char *name)
{
    size_t n = sprun_session_profile_count(dense);
    for (size_t i = 0; i < n; i++) {
        sprun_layer_profile lp;
        if (sprun_session_profile_layer(dense, i, &lp) == SPRUN_OK && !strcmp(lp.node_name, name))
            return lp.usec;
    }
    return NAN;
}

/* CUDA plans: both timed again with device-resident I/O (inputs copied to
 * the GPU once, outputs left there: sprun_session_set_output_memory), the
 * latency a serving process that keeps its tensors on the GPU sees, without
 * the pageable host copies of the end-to-end figure. Returns 1 when timed,
 * 0 when not applicable (CPU backend, no CUDA build), -1 on failure. */
static int time_pair_device(sprun_session *ds, sprun_session *ss, const sprun_tensor *in, size_t n_in,
                            const compare_opts *o, timing *td, timing *ts)
{
#ifdef SPRUN_HAVE_CUDA
    sprun_tensor *din = calloc(n_in ? n_in : 1, sizeof *din);
    int rc = din ? 0 : -1;
    for (size_t i = 0; i < n_in && rc == 0; i++) {
        din[i] = in[i];
        din[i].data = NULL;
        din[i].memory = SPRUN_MEMORY_DEVICE;
        void *d = NULL;
        if (cudaMalloc(&d, in[i].nbytes ? in[i].nbytes : 1) != cudaSuccess ||
            cudaMemcpy(d, in[i].data, in[i].nbytes, cudaMemcpyHostToDevice) != cudaSuccess)
            rc = -1;
        din[i].data = d;
    }
    if (rc == 0 && (sprun_session_set_output_memory(ds, SPRUN_MEMORY_DEVICE) != SPRUN_OK ||
                    sprun_session_set_output_memory(ss, SPRUN_MEMORY_DEVICE) != SPRUN_OK))
        rc = -1;
    if (rc == 0)
        rc = time_pair(ds, ss, din, n_in, o->warmup, o->runs, td, ts);
    sprun_session_set_output_memory(ds, SPRUN_MEMORY_HOST);
    sprun_session_set_output_memory(ss, SPRUN_MEMORY_HOST);
    for (size_t i = 0; din && i < n_in; i++)
        cudaFree((void *)din[i].data);
    free(din);
    (void)cudaGetLastError();
    return rc == 0 ? 1 : -1;
#else
    (void)ds, (void)ss, (void)in, (void)n_in, (void)o, (void)td, (void)ts;
    return 0;
#endif
}

static sprun_model *load_as(const char *path, const compare_opts *o, sprun_format format)
{
    sprun_options *opt = NULL;
    sprun_model *m = NULL;
    if (sprun_options_create(&opt) != SPRUN_OK)
        return NULL;
    sprun_options_set_backend(opt, o->backend);
    sprun_options_set_precision(opt, o->precision);
    sprun_options_set_threads(opt, o->threads);
    sprun_options_set_format(opt, format);
    if (format != SPRUN_FORMAT_DENSE && o->tune_path)
        sprun_options_set_tuning(opt, o->tune_path);
    if (o->calibration_path)
        sprun_options_set_calibration(opt, o->calibration_path);
    if (sprun_model_load(path, opt, &m) != SPRUN_OK)
        m = NULL;
    sprun_options_destroy(opt);
    return m;
}

int sprun_cli_compare(const char *model_path, const sprun_tensor *inputs, size_t n_inputs, const compare_opts *o)
{
    int rc = 4;
    sprun_model *dm = load_as(model_path, o, SPRUN_FORMAT_DENSE);
    sprun_model *sm = dm ? load_as(model_path, o, o->format) : NULL;
    sprun_session *ds = NULL, *ss = NULL;
    FILE *json = NULL;
    if (!dm || !sm) {
        fprintf(stderr, "sprun: cannot load model: %s\n", sprun_last_error());
        sprun_model_destroy(dm);
        return 2;
    }
    if (sprun_session_create(dm, &ds) != SPRUN_OK || sprun_session_create(sm, &ss) != SPRUN_OK) {
        fprintf(stderr, "sprun: %s\n", sprun_last_error());
        goto done;
    }
    timing td, ts;
    if (time_pair(ds, ss, inputs, n_inputs, o->warmup, o->runs, &td, &ts) != 0) {
        fprintf(stderr, "sprun: run failed: %s\n", sprun_last_error());
        goto done;
    }
    timing tdd = {0, 0}, tsd = {0, 0};
    const int have_dev = sprun_model_backend(sm) == SPRUN_BACKEND_CUDA
                             ? time_pair_device(ds, ss, inputs, n_inputs, o, &tdd, &tsd)
                             : 0;
    if (have_dev < 0) {
        fprintf(stderr, "sprun: device-resident run failed: %s\n", sprun_last_error());
        goto done;
    }
    /* one profiled run of each for the per-layer table */
    sprun_session_set_profiling(ds, 1);
    sprun_session_set_profiling(ss, 1);
    if (sprun_session_run(ds, inputs, n_inputs) != SPRUN_OK || sprun_session_run(ss, inputs, n_inputs) != SPRUN_OK) {
        fprintf(stderr, "sprun: run failed: %s\n", sprun_last_error());
        goto done;
    }
    static const char *backends[] = {"auto", "cpu", "cuda"};
    printf("compare: %s on %s, %d runs of each plan (interleaved) after %d warm-up\n", model_path, backends[sprun_model_backend(sm)], o->runs,
           o->warmup);
    printf("  cost model: %s\n", sprun_model_cost_table(sm));
    double worst = 0;
    for (size_t i = 0; i < sprun_model_output_count(sm); i++) {
        sprun_tensor a, b;
        sprun_session_output(ss, i, &a);
        sprun_session_output(ds, i, &b);
        double e = rel_l2(&a, &b);
        printf("  output '%s': sparse vs dense rel-L2 %.3g\n", a.name, e);
        if (e > worst || isnan(e))
            worst = e;
    }
    printf("  end to end (host inputs and outputs, wall clock around sprun_session_run):\n");
    printf("  %-8s %12s %12s\n", "plan", "median us", "p90 us");
    print_pair(&td, &ts);
    if (have_dev > 0) {
        printf("  device-resident I/O (inputs already on the GPU, outputs left there; run + synchronize):\n");
        print_pair(&tdd, &tsd);
    }
    printf("\n");
    if (o->json_path && !(json = fopen(o->json_path, "w")))
        fprintf(stderr, "sprun: cannot write %s\n", o->json_path);
    if (json) {
        fprintf(json, "{\"model\": ");
        json_string(json, model_path);
        fprintf(json, ", \"cost_model\": ");
        json_string(json, sprun_model_cost_table(sm));
        fprintf(json,
                ", \"backend\": \"%s\", \"runs\": %d, \"dense_median_us\": %.3f, "
                "\"dense_p90_us\": %.3f, \"sparse_median_us\": %.3f, \"sparse_p90_us\": %.3f, \"max_rel_l2\": %.6g, ",
                backends[sprun_model_backend(sm)], o->runs, td.median, td.p90, ts.median, ts.p90, worst);
    }
    if (json && have_dev > 0)
        fprintf(json,
                "\"device_io\": {\"dense_median_us\": %.3f, \"dense_p90_us\": %.3f, \"sparse_median_us\": %.3f, "
                "\"sparse_p90_us\": %.3f}, ",
                tdd.median, tdd.p90, tsd.median, tsd.p90);
    if (json)
        fprintf(json, "\"layers\": [");
    printf("%-40s %-6s %6s %6s %6s %7s %-12s %-6s %9s %9s %9s %6s\n", "layer", "op", "M", "K", "N", "density",
           "structure", "kernel", "pred us", "meas us", "dense us", "R3");
    double sum_dense = 0, sum_sparse = 0, work_dense = 0, work_sparse = 0;
    int first = 1;
    for (size_t i = 0; i < sprun_session_profile_count(ss); i++) {
        sprun_layer_profile lp;
        if (sprun_session_profile_layer(ss, i, &lp) != SPRUN_OK || lp.weight_index < 0)
            continue;
        sprun_weight_info w;
        sprun_model_weight_info(sm, (size_t)lp.weight_index, &w);
        char st[32];
        double dt = dense_time_of(ds, lp.node_name);
        sum_dense += dt;
        sum_sparse += lp.usec;
        work_dense += 2.0 * (double)lp.m * (double)lp.k * (double)lp.n;
        work_sparse += 2.0 * (double)w.nnz * (double)lp.n;
        printf("%-40.40s %-6s %6lld %6lld %6lld %7.3f %-12s %-6s %9.1f %9.1f %9.1f %6.2f\n", lp.node_name, lp.op_type,
               (long long)lp.m, (long long)lp.k, (long long)lp.n, w.density, structure(&w, st, sizeof st),
               lp.kernel ? lp.kernel : "-", lp.predicted_usec, lp.usec, dt, dt / lp.usec);
        if (json)
            fprintf(json,
                    "%s{\"node\": \"%s\", \"op\": \"%s\", \"m\": %lld, \"k\": %lld, \"n\": %lld, \"density\": %.6f, "
                    "\"structure\": \"%s\", \"kernel\": \"%s\", \"predicted_us\": %.3f, \"measured_us\": %.3f, "
                    "\"dense_us\": %.3f}",
                    first ? "" : ", ", lp.node_name, lp.op_type, (long long)lp.m, (long long)lp.k, (long long)lp.n,
                    w.density, st, lp.kernel ? lp.kernel : "", lp.predicted_usec, lp.usec, dt);
        first = 0;
    }
    printf("weight layers: dense %.1f us, sparse %.1f us, R3 %.2f (one profiled run of each plan: an event pair per "
           "node; on CUDA inside a graph replay)\n",
           sum_dense, sum_sparse, sum_dense / sum_sparse);
    /* The seed's "compute advantage": the work reduction if every zero weight
     * were skipped; how much of it the measured speedup realizes. */
    const double advantage = work_sparse > 0 ? work_dense / work_sparse : NAN;
    const double speedup = have_dev > 0 ? tdd.median / tsd.median : td.median / ts.median;
    printf("weight-layer work if every zero were skipped: %.2fx less (compute advantage); realized %.2fx = %.0f%% of it "
           "(%s speedup)\n",
           advantage, speedup, 100.0 * speedup / advantage, have_dev > 0 ? "device-I/O" : "end-to-end");
    if (json) {
        fprintf(json, "], \"compute_advantage\": %.4f, \"realized_speedup\": %.4f}\n", advantage, speedup);
        fclose(json);
    }
    rc = worst <= o->tolerance ? 0 : 4;
    if (rc)
        fprintf(stderr, "sprun: sparse and dense outputs disagree: rel-L2 %.3g > %.3g\n", worst, o->tolerance);
done:
    sprun_session_destroy(ds);
    sprun_session_destroy(ss);
    sprun_model_destroy(sm);
    sprun_model_destroy(dm);
    return rc;
}
