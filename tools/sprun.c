/*
 * sprun.c - the command-line front end:  sprun MODEL.onnx [NAME=]INPUT ...
 *
 * Exit codes (documented in --help and README):
 *   0 success, 1 usage error, 2 model could not be loaded, 3 bad input file
 *   or size, 4 run failed, 5 output could not be written.
 */
#include "sprun.h"

#include "kernels/cpu/tensor_cpu.h"
#include "loaders/onnx_tensor.h"
#include "tools/clock.h"
#include "tools/compare.h"
#include "tools/npy.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { EXIT_USAGE = 1, EXIT_MODEL = 2, EXIT_INPUT = 3, EXIT_RUN = 4, EXIT_OUTPUT = 5 };

#define MAX_ARGS 64

typedef struct cli {
    const char *model_path;
    const char *inputs[MAX_ARGS];
    int n_inputs;
    const char *shapes[MAX_ARGS];
    int n_shapes;
    const char *out_path;
    const char *json_path;
    const char *tune_path;
    const char *calibration_path;
    sprun_backend backend;
    sprun_precision precision;
    sprun_format format;
    int threads, info, profile, runs, warmup, optimize, quiet, compare;
} cli;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sprun MODEL.onnx [NAME=]INPUT ... [options]\n"
            "\n"
            "Runs an ONNX model on one set of inputs and prints its outputs.\n"
            "INPUT is raw little-endian bytes in the input's dtype and shape (.bin),\n"
            "a NumPy .npy file, or an ONNX TensorProto (.pb). With several model inputs\n"
            "name them: input_ids=ids.bin attention_mask=mask.bin.\n"
            "\n"
            "options:\n"
            "  -o, --output PATH     write the output as .npy (PATH/<name>.npy per output\n"
            "                        when PATH is a directory or there are several)\n"
            "  --shape NAME=DxDx..   fix the symbolic dims of raw inputs (e.g. input=1x3x224x224)\n"
            "  --backend B           cpu | cuda | auto (default auto: GPU when present)\n"
            "  --precision P         fp32 | fp16 | default (fp16 on GPU, fp32 on CPU)\n"
            "  --format F            auto | dense | csr | bsr | 24: weight format of sparse layers\n"
            "  --threads N           CPU threads (default: all cores)\n"
            "  --calibration FILE    cost-model table for the device (bench/calibration/*.cal)\n"
            "  --tune FILE           time every candidate kernel of sparse layers at planning,\n"
            "                        keep the fastest, cache decisions in FILE for later loads\n"
            "  --runs N              run N times and print latency (median, p90)\n"
            "  --warmup N            untimed runs before timing (default 3 with --runs)\n"
            "  --profile             per-node time of the last run\n"
            "  --no-optimize         disable BatchNorm folding and fusion\n"
            "  --compare             build the dense and the sparse plan, check they agree,\n"
            "                        time both (default 20 runs) and print a per-layer table\n"
            "  --json PATH           with --compare: write the same data as JSON\n"
            "  --info                print the graph summary and per-weight sparsity analysis\n"
            "  -q, --quiet           print only errors and timings\n"
            "  --version, -h/--help\n"
            "\n"
            "exit codes: 0 ok, 1 usage, 2 model load failed, 3 bad input, 4 run failed,\n"
            "            5 output not written\n");
}

static int parse_args(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof *c);
    c->optimize = 1;
    c->runs = 1;
    c->warmup = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT()                                                                                                         \
    do {                                                                                                               \
        if (i + 1 >= argc) {                                                                                           \
            fprintf(stderr, "sprun: %s needs a value\n", a);                                                           \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("sprun %s\n", sprun_version());
            exit(0);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            NEXT();
            c->out_path = argv[++i];
        } else if (!strcmp(a, "--calibration")) {
            NEXT();
            c->calibration_path = argv[++i];
        } else if (!strcmp(a, "--tune")) {
            NEXT();
            c->tune_path = argv[++i];
        } else if (!strcmp(a, "--json")) {
            NEXT();
            c->json_path = argv[++i];
        } else if (!strcmp(a, "--shape")) {
            NEXT();
            if (c->n_shapes == MAX_ARGS)
                return -1;
            c->shapes[c->n_shapes++] = argv[++i];
        } else if (!strcmp(a, "--backend")) {
            NEXT();
            const char *v = argv[++i];
            if (!strcmp(v, "cpu"))
                c->backend = SPRUN_BACKEND_CPU;
            else if (!strcmp(v, "cuda") || !strcmp(v, "gpu"))
                c->backend = SPRUN_BACKEND_CUDA;
            else if (!strcmp(v, "auto"))
                c->backend = SPRUN_BACKEND_AUTO;
            else {
                fprintf(stderr, "sprun: unknown backend '%s' (cpu, cuda, auto)\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--precision")) {
            NEXT();
            const char *v = argv[++i];
            if (!strcmp(v, "fp32"))
                c->precision = SPRUN_PRECISION_FP32;
            else if (!strcmp(v, "fp16"))
                c->precision = SPRUN_PRECISION_FP16;
            else if (!strcmp(v, "default"))
                c->precision = SPRUN_PRECISION_DEFAULT;
            else {
                fprintf(stderr, "sprun: unknown precision '%s' (fp32, fp16, default)\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--format")) {
            NEXT();
            const char *v = argv[++i];
            static const char *names[] = {"auto", "dense", "csr", "bsr", "24"};
            int f = -1;
            for (int k = 0; k < 5; k++)
                if (!strcmp(v, names[k]) || (k == 4 && !strcmp(v, "2:4")))
                    f = k;
            if (f < 0) {
                fprintf(stderr, "sprun: unknown format '%s' (auto, dense, csr, bsr, 24)\n", v);
                return -1;
            }
            c->format = (sprun_format)f;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "--runs") || !strcmp(a, "--warmup")) {
            NEXT();
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1000000) {
                fprintf(stderr, "sprun: %s needs a non-negative integer\n", a);
                return -1;
            }
            if (!strcmp(a, "--threads"))
                c->threads = (int)v;
            else if (!strcmp(a, "--runs"))
                c->runs = v > 0 ? (int)v : 1;
            else
                c->warmup = (int)v;
        } else if (!strcmp(a, "--profile"))
            c->profile = 1;
        else if (!strcmp(a, "--info"))
            c->info = 1;
        else if (!strcmp(a, "--compare"))
            c->compare = 1;
        else if (!strcmp(a, "--no-optimize"))
            c->optimize = 0;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
            c->quiet = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sprun: unknown option '%s' (see --help)\n", a);
            return -1;
        } else if (!c->model_path)
            c->model_path = a;
        else {
            if (c->n_inputs == MAX_ARGS)
                return -1;
            c->inputs[c->n_inputs++] = a;
        }
#undef NEXT
    }
    if (!c->model_path) {
        usage(stderr);
        return -1;
    }
    if (c->compare && c->runs == 1)
        c->runs = 20;
    if (c->warmup < 0)
        c->warmup = c->runs > 1 ? 3 : 0;
    return 0;
}

static const char *ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix) ? s + n - k : NULL;
}

static void *read_file(const char *path, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        snprintf(err, errlen, "cannot seek '%s'", path);
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    void *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "cannot read '%s'", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* Parses "1x3x224x224" into dims; returns rank or -1. */
static int parse_dims(const char *s, int64_t *dims)
{
    int rank = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || rank == SPRUN_MAX_RANK)
            return -1;
        dims[rank++] = v;
        s = end;
        if (*s == 'x' || *s == 'X' || *s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return rank;
}

typedef struct loaded_input {
    sprun_tensor t;
    void *file;     /* file contents, freed at exit */
    sp_value value; /* when parsed from .pb */
    int from_pb;
} loaded_input;

/* Shape for a raw input: the model's, with --shape overriding; a single
 * unknown dim is inferred from the byte count. */
static int raw_shape(const cli *c, const sprun_tensor_info *info, size_t bytes, sprun_tensor *t, char *err,
                     size_t errlen)
{
    t->rank = info->rank;
    for (int d = 0; d < info->rank; d++)
        t->dims[d] = info->dims[d];
    for (int k = 0; k < c->n_shapes; k++) {
        const char *eq = strchr(c->shapes[k], '=');
        const char *dims = eq ? eq + 1 : c->shapes[k];
        if (eq && (strncmp(c->shapes[k], info->name, (size_t)(eq - c->shapes[k])) != 0 ||
                   strlen(info->name) != (size_t)(eq - c->shapes[k])))
            continue;
        int r = parse_dims(dims, t->dims);
        if (r < 0) {
            snprintf(err, errlen, "--shape '%s' is not of the form NAME=1x3x224x224", c->shapes[k]);
            return -1;
        }
        t->rank = r;
    }
    size_t es = sprun_dtype_size(info->dtype);
    int unknown = -1, n_unknown = 0;
    uint64_t known = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0) {
            unknown = d;
            n_unknown++;
        } else
            known *= (uint64_t)t->dims[d];
    }
    if (n_unknown == 1 && known > 0 && es && bytes % (known * es) == 0)
        t->dims[unknown] = (int64_t)(bytes / (known * es));
    else if (n_unknown > 0) {
        snprintf(err, errlen, "input '%s' has symbolic dims: give --shape %s=...", info->name, info->name);
        return -1;
    }
    return 0;
}

static int load_input(const cli *c, const sprun_model *m, const char *arg, int position, loaded_input *in, char *err,
                      size_t errlen)
{
    const char *path = arg;
    char name[256] = "";
    const char *eq = strchr(arg, '=');
    if (eq && (size_t)(eq - arg) < sizeof name) {
        memcpy(name, arg, (size_t)(eq - arg));
        name[eq - arg] = '\0';
        path = eq + 1;
    }
    sprun_tensor_info info;
    int found = 0;
    for (size_t i = 0; i < sprun_model_input_count(m); i++) {
        sprun_model_input_info(m, i, &info);
        if (name[0] ? !strcmp(info.name, name) : (int)i == position) {
            found = 1;
            break;
        }
    }
    if (!found) {
        if (name[0])
            snprintf(err, errlen, "the model has no input named '%s'", name);
        else
            snprintf(err, errlen, "more inputs given than the model has (%zu)", sprun_model_input_count(m));
        return -1;
    }
    size_t size = 0;
    in->file = read_file(path, &size, err, errlen);
    if (!in->file)
        return -1;
    memset(&in->t, 0, sizeof in->t);
    if (ends_with(path, ".npy")) {
        char e2[256];
        if (sprun_npy_parse(in->file, size, &in->t, e2, sizeof e2) != 0) {
            snprintf(err, errlen, "%s: %s", path, e2);
            return -1;
        }
    } else if (ends_with(path, ".pb")) {
        sp_err e = {0};
        if (sp_onnx_tensor_from_buffer(in->file, size, &in->value, &e) != SPRUN_OK) {
            snprintf(err, errlen, "%s: %.900s", path, e.msg);
            return -1;
        }
        in->from_pb = 1;
        in->t.dtype = (sprun_dtype)in->value.dtype;
        in->t.rank = in->value.shape.rank;
        for (int d = 0; d < in->t.rank; d++)
            in->t.dims[d] = in->value.shape.d[d];
        in->t.data = in->value.data;
        in->t.nbytes = in->value.nbytes;
    } else {
        if (raw_shape(c, &info, size, &in->t, err, errlen) != 0)
            return -1;
        in->t.dtype = info.dtype;
        in->t.data = in->file;
        in->t.nbytes = size;
        uint64_t numel = 1;
        for (int d = 0; d < in->t.rank; d++)
            numel *= (uint64_t)in->t.dims[d];
        size_t want = (size_t)numel * sprun_dtype_size(info.dtype);
        if (want != size) {
            char shape[128] = "";
            size_t used = 0;
            for (int d = 0; d < in->t.rank && used < sizeof shape; d++)
                used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", d ? "x" : "",
                                         (long long)in->t.dims[d]);
            snprintf(err, errlen, "%s: %zu bytes, but input '%s' of shape %s (%s) needs %zu bytes", path, size,
                     info.name, shape, sprun_dtype_name(info.dtype), want);
            return -1;
        }
    }
    in->t.name = info.name;
    return 0;
}

/* Element i as double for printing; dtypes the shared reader does not
 * decode (bfloat16, uint64, string) print as NaN. */
static double elem_f64(const sprun_tensor *t, size_t i)
{
    if (t->dtype == SPRUN_DTYPE_BFLOAT16 || t->dtype == SPRUN_DTYPE_UINT64 || t->dtype == SPRUN_DTYPE_STRING)
        return NAN;
    return sp_ld_f64(t->dtype, t->data, (int64_t)i);
}

static void print_output(const sprun_tensor *t)
{
    char shape[128] = "";
    size_t n = 1, used = 0;
    for (int d = 0; d < t->rank; d++) {
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", d ? "x" : "", (long long)t->dims[d]);
        n *= (size_t)t->dims[d];
    }
    if (t->rank == 0)
        snprintf(shape, sizeof shape, "scalar");
    printf("output '%s': %s %s (%zu elements)\n", t->name, sprun_dtype_name(t->dtype), shape, n);
    if (!n)
        return;
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double v = elem_f64(t, i);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        sum += v;
    }
    printf("  min %.6g  max %.6g  mean %.6g\n  first:", mn, mx, sum / (double)n);
    for (size_t i = 0; i < n && i < 8; i++)
        printf(" %.6g", elem_f64(t, i));
    printf("%s\n", n > 8 ? " ..." : "");
    /* A class-score vector ([C] or [1, C]): top-5 indices. */
    size_t classes = t->rank == 1 ? (size_t)t->dims[0] : (t->rank == 2 && t->dims[0] == 1 ? (size_t)t->dims[1] : 0);
    if (classes >= 10 && (t->dtype == SPRUN_DTYPE_FLOAT || t->dtype == SPRUN_DTYPE_FLOAT16 ||
                          t->dtype == SPRUN_DTYPE_DOUBLE)) {
        size_t top[5] = {0};
        int k = 0;
        for (size_t i = 0; i < classes; i++) {
            double v = elem_f64(t, i);
            int pos = k;
            while (pos > 0 && elem_f64(t, top[pos - 1]) < v)
                pos--;
            if (pos >= 5)
                continue;
            for (int j = (k < 5 ? k : 4); j > pos; j--)
                top[j] = top[j - 1];
            top[pos] = i;
            if (k < 5)
                k++;
        }
        printf("  top-5:");
        for (int i = 0; i < k; i++)
            printf(" %zu (%.4g)", top[i], elem_f64(t, top[i]));
        printf("\n");
    }
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '.' || *s == '-'))
            *s = '_';
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void print_info(const sprun_model *m)
{
    static const char *backends[] = {"auto", "cpu", "cuda"};
    static const char *formats[] = {"auto", "dense", "csr", "bsr", "2:4"};
    printf("backend: %s\n", backends[sprun_model_backend(m)]);
    for (size_t i = 0; i < sprun_model_input_count(m); i++) {
        sprun_tensor_info ti;
        sprun_model_input_info(m, i, &ti);
        printf("input  %-24s %-8s [", ti.name, sprun_dtype_name(ti.dtype));
        for (int d = 0; d < ti.rank; d++)
            ti.dims[d] >= 0 ? printf("%s%lld", d ? ", " : "", (long long)ti.dims[d])
                            : printf("%s%s", d ? ", " : "", ti.dim_names[d] ? ti.dim_names[d] : "?");
        printf("]\n");
    }
    for (size_t i = 0; i < sprun_model_output_count(m); i++) {
        sprun_tensor_info ti;
        sprun_model_output_info(m, i, &ti);
        printf("output %-24s %-8s [", ti.name, sprun_dtype_name(ti.dtype));
        for (int d = 0; d < ti.rank; d++)
            ti.dims[d] >= 0 ? printf("%s%lld", d ? ", " : "", (long long)ti.dims[d])
                            : printf("%s%s", d ? ", " : "", ti.dim_names[d] ? ti.dim_names[d] : "?");
        printf("]\n");
    }
    size_t nn = sprun_model_node_count(m);
    printf("nodes after load-time passes: %zu\n", nn);
    size_t nw = sprun_model_weight_count(m);
    printf("\nper-weight sparsity analysis (GEMM view: M = output features, K = reduction; 2:4 \"C\": along a "
           "conv's input channels only)\n");
    printf("%-36s %-6s %6s %6s %8s %5s %6s %6s %6s %6s  %-6s %s\n", "node", "op", "M", "K", "density", "2:4",
           "zb4", "zb8", "zb16", "zb32", "format", "why");
    int64_t total = 0, nnz = 0;
    for (size_t i = 0; i < nw; i++) {
        sprun_weight_info w;
        sprun_model_weight_info(m, i, &w);
        printf("%-36.36s %-6s %6lld %6lld %8.4f %5s %6.3f %6.3f %6.3f %6.3f  %-6s %s\n", w.node_name, w.op_type,
               (long long)w.m, (long long)w.k, w.density, w.is_2_4 ? "yes" : w.is_2_4_c ? "C" : "no", w.zero_block_frac[0],
               w.zero_block_frac[1], w.zero_block_frac[2], w.zero_block_frac[3], formats[w.format],
               w.reason ? w.reason : "");
        total += w.m * w.k;
        nnz += w.nnz;
    }
    if (total)
        printf("weights: %zu layers, %lld parameters, %lld nonzero, overall density %.4f\n", nw, (long long)total,
               (long long)nnz, (double)nnz / (double)total);
    if (sprun_model_cost_table(m)[0])
        printf("cost model: %s\n", sprun_model_cost_table(m));
}

int main(int argc, char **argv)
{
    cli c;
    if (parse_args(argc, argv, &c) != 0)
        return EXIT_USAGE;
    sprun_options *opt = NULL;
    if (sprun_options_create(&opt) != SPRUN_OK) {
        fprintf(stderr, "sprun: %s\n", sprun_last_error());
        return EXIT_MODEL;
    }
    sprun_options_set_backend(opt, c.backend);
    sprun_options_set_precision(opt, c.precision);
    sprun_options_set_format(opt, c.format);
    sprun_options_set_threads(opt, c.threads);
    sprun_options_set_optimize(opt, c.optimize);
    if ((c.tune_path && sprun_options_set_tuning(opt, c.tune_path) != SPRUN_OK) ||
        (c.calibration_path && sprun_options_set_calibration(opt, c.calibration_path) != SPRUN_OK)) {
        fprintf(stderr, "sprun: %s\n", sprun_last_error());
        sprun_options_destroy(opt);
        return EXIT_USAGE;
    }
    sprun_model *m = NULL;
    double t0 = sprun_now_us();
    if (sprun_model_load(c.model_path, opt, &m) != SPRUN_OK) {
        fprintf(stderr, "sprun: cannot load model: %s\n", sprun_last_error());
        sprun_options_destroy(opt);
        return EXIT_MODEL;
    }
    double load_ms = (sprun_now_us() - t0) / 1000.0;
    sprun_options_destroy(opt);
    int rc = 0;
    loaded_input ins[MAX_ARGS];
    memset(ins, 0, sizeof ins);
    sprun_tensor tensors[MAX_ARGS];
    sprun_session *s = NULL;
    if (c.info) {
        printf("model: %s (loaded in %.1f ms)\n", c.model_path, load_ms);
        print_info(m);
        if (!c.n_inputs)
            goto done;
        printf("\n");
    }
    if ((size_t)c.n_inputs != sprun_model_input_count(m)) {
        fprintf(stderr, "sprun: the model has %zu input%s, %d given\n", sprun_model_input_count(m),
                sprun_model_input_count(m) == 1 ? "" : "s", c.n_inputs);
        rc = EXIT_INPUT;
        goto done;
    }
    for (int i = 0; i < c.n_inputs; i++) {
        char err[1024];
        if (load_input(&c, m, c.inputs[i], i, &ins[i], err, sizeof err) != 0) {
            fprintf(stderr, "sprun: %s\n", err);
            rc = EXIT_INPUT;
            goto done;
        }
        tensors[i] = ins[i].t;
    }
    if (c.compare) {
        compare_opts co = {.backend = c.backend, .precision = c.precision, .format = c.format, .threads = c.threads,
                           .runs = c.runs, .warmup = c.warmup, .json_path = c.json_path, .tune_path = c.tune_path,
                           .calibration_path = c.calibration_path};
        co.tolerance = sprun_model_backend(m) == SPRUN_BACKEND_CPU || c.precision == SPRUN_PRECISION_FP32 ? 1e-4 : 2e-2;
        rc = sprun_cli_compare(c.model_path, tensors, (size_t)c.n_inputs, &co);
        goto done;
    }
    if (sprun_session_create(m, &s) != SPRUN_OK) {
        fprintf(stderr, "sprun: %s\n", sprun_last_error());
        rc = EXIT_RUN;
        goto done;
    }
    for (int w = 0; w < c.warmup; w++)
        if (sprun_session_run(s, tensors, (size_t)c.n_inputs) != SPRUN_OK)
            break;
    double *lat = calloc((size_t)c.runs, sizeof *lat);
    if (!lat) {
        rc = EXIT_RUN;
        goto done;
    }
    for (int r = 0; r < c.runs; r++) {
        if (c.profile && r == c.runs - 1)
            sprun_session_set_profiling(s, 1);
        double t = sprun_now_us();
        sprun_code code = sprun_session_run(s, tensors, (size_t)c.n_inputs);
        if (code != SPRUN_OK) {
            fprintf(stderr, "sprun: run failed: %s\n", sprun_last_error());
            /* A malformed input (wrong size, shape or dtype) is the caller's fault. */
            rc = code == SPRUN_ERR_INVALID_ARGUMENT ? EXIT_INPUT : EXIT_RUN;
            free(lat);
            goto done;
        }
        lat[r] = sprun_now_us() - t;
    }
    if (c.runs > 1) {
        qsort(lat, (size_t)c.runs, sizeof *lat, sprun_cmp_double);
        printf("latency over %d runs (after %d warm-up): median %.1f us, p90 %.1f us, min %.1f us\n", c.runs,
               c.warmup, lat[c.runs / 2], lat[(c.runs * 9) / 10 < c.runs ? (c.runs * 9) / 10 : c.runs - 1],
               lat[0]);
    } else if (!c.quiet)
        printf("run: %.1f us (first run, includes planning)\n", lat[0]);
    free(lat);
    sprun_plan_stats st;
    if (!c.quiet && sprun_session_plan_stats(s, &st) == SPRUN_OK)
        printf("plan: %zu nodes, %zu folded to constants, activation arena %.2f MiB\n", st.n_nodes, st.n_folded,
               st.arena_bytes / 1048576.0);
    size_t n_out = sprun_model_output_count(m);
    for (size_t i = 0; i < n_out; i++) {
        sprun_tensor t;
        if (sprun_session_output(s, i, &t) != SPRUN_OK)
            continue;
        if (!c.quiet)
            print_output(&t);
        if (c.out_path) {
            char path[4096], err[512];
            if (n_out > 1 || is_dir(c.out_path)) {
                char name[256];
                snprintf(name, sizeof name, "%s", t.name);
                sanitize(name);
                snprintf(path, sizeof path, "%s/%s.npy", c.out_path, name);
            } else
                snprintf(path, sizeof path, "%s", c.out_path);
            if (sprun_npy_write(path, &t, err, sizeof err) != 0) {
                fprintf(stderr, "sprun: %s\n", err);
                rc = EXIT_OUTPUT;
            }
        }
    }
    if (c.profile) {
        size_t np = sprun_session_profile_count(s);
        double total = 0;
        printf("\nprofile of the last run (%zu nodes):\n", np);
        for (size_t i = 0; i < np; i++) {
            double us;
            char desc[256];
            sprun_session_profile_entry(s, i, &us, desc, sizeof desc);
            printf("  %9.1f us  %s\n", us, desc);
            total += us;
        }
        printf("  %9.1f us  total\n", total);
    }
done:
    sprun_session_destroy(s);
    for (int i = 0; i < c.n_inputs; i++) {
        if (ins[i].from_pb)
            sp_onnx_tensor_release(&ins[i].value);
        free(ins[i].file);
    }
    sprun_model_destroy(m);
    return rc;
}
