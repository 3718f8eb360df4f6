/*
 * test_cuda_backend.c - the CUDA backend against the CPU backend.
 *
 * Cases come from a list file: argv[1], or $SPRUN_CUDA_CASES, or, with
 * neither, one that tests/gpu/make_cases.py (per-op graphs and the tiny
 * ResNet-50 / BERT) writes into a fresh temporary folder, so plain
 * `ctest -L gpu` runs real cases. The script is looked up under
 * $SPRUN_SOURCE_DIR, else the source tree this test was built from.
 * A case line:
 *     path/to/model.onnx [name=DxDx..] ...
 * For each case: seeded random inputs (floats ~N(0,1); integer inputs in
 * [0, 16), or ones with a zero tail when the name contains "mask"), the CPU
 * backend in fp32 as reference, then the CUDA backend in fp16 (rel-L2 <=
 * 1e-2) and fp32 (<= 1e-4), each checked for the graph-replay path (run
 * twice: capture, then replay with fresh inputs) and the eager profiled
 * path. Outputs are poisoned between runs so unwritten elements show.
 * Exit: 0 all pass, 1 a failure (the generator's included), 77 skipped: no
 * GPU, a given list that cannot be opened, or no python3 / onnx / numpy /
 * make_cases.py to generate one.
 */
#include "runtime/half.h"
#include "sprun.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SPRUN_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#ifndef SPRUN_SOURCE_DIR
#define SPRUN_SOURCE_DIR "."
#endif

static uint64_t rng = 88172645463325252ULL;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float nrand(void)
{
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

typedef struct tensors {
    sprun_tensor t[16];
    int n;
} tensors;

static int make_inputs(const sprun_model *m, int nspec, char **spec, tensors *in)
{
    in->n = (int)sprun_model_input_count(m);
    for (int i = 0; i < in->n; i++) {
        sprun_tensor_info info;
        sprun_model_input_info(m, (size_t)i, &info);
        sprun_tensor *t = &in->t[i];
        memset(t, 0, sizeof *t);
        t->name = info.name;
        t->dtype = info.dtype;
        t->rank = info.rank;
        for (int d = 0; d < info.rank; d++)
            t->dims[d] = info.dims[d];
        for (int k = 0; k < nspec; k++) {
            size_t ln = strlen(info.name);
            if (!strncmp(spec[k], info.name, ln) && spec[k][ln] == '=') {
                char *p = spec[k] + ln + 1;
                t->rank = 0;
                while (*p) {
                    t->dims[t->rank++] = strtoll(p, &p, 10);
                    if (*p == 'x')
                        p++;
                    else
                        break;
                }
            }
        }
        t->name = NULL; /* positional: the model that owns info.name is destroyed before the runs */
        int64_t n = 1;
        for (int d = 0; d < t->rank; d++) {
            if (t->dims[d] < 0) {
                fprintf(stderr, "input %s has an open dim: give %s=DxD..\n", info.name, info.name);
                return -1;
            }
            n *= t->dims[d];
        }
        size_t es = sprun_dtype_size(t->dtype);
        t->nbytes = (size_t)n * es;
        t->data = malloc(t->nbytes ? t->nbytes : 1);
        int is_mask = strstr(info.name, "mask") != NULL; /* info.name still valid here */
        int64_t last = t->rank ? t->dims[t->rank - 1] : 1;
        for (int64_t j = 0; j < n; j++) {
            switch (t->dtype) {
            case SPRUN_DTYPE_FLOAT: ((float *)t->data)[j] = nrand(); break;
            case SPRUN_DTYPE_INT64:
                ((int64_t *)t->data)[j] = is_mask ? (j % last < last - last / 4) : (int64_t)(urand() * 16);
                break;
            case SPRUN_DTYPE_INT32: ((int32_t *)t->data)[j] = (int32_t)(urand() * 16); break;
            case SPRUN_DTYPE_BOOL: ((uint8_t *)t->data)[j] = urand() < 0.5; break;
            default: memset(t->data, 0, t->nbytes); j = n;
            }
        }
    }
    return 0;
}

static void refill(tensors *in)
{
    for (int i = 0; i < in->n; i++)
        if (in->t[i].dtype == SPRUN_DTYPE_FLOAT)
            for (size_t j = 0; j < in->t[i].nbytes / 4; j++)
                ((float *)in->t[i].data)[j] = nrand();
}

static double as_f64(const sprun_tensor *t, size_t i)
{
    switch (t->dtype) {
    case SPRUN_DTYPE_FLOAT: return ((const float *)t->data)[i];
    case SPRUN_DTYPE_FLOAT16: return sp_f16_to_f32(((const uint16_t *)t->data)[i]);
    case SPRUN_DTYPE_INT64: return (double)((const int64_t *)t->data)[i];
    case SPRUN_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case SPRUN_DTYPE_BOOL:
    case SPRUN_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
    default: return 0;
    }
}

/* Runs model on inputs; copies outputs out (caller frees). */
static int run_once(const char *path, int backend, int precision, int profile, tensors *in, int nrun,
                    sprun_tensor *outs, int *n_out, double *prof_total)
{
    sprun_options *o = NULL;
    sprun_options_create(&o);
    sprun_options_set_backend(o, (sprun_backend)backend);
    sprun_options_set_precision(o, (sprun_precision)precision);
    sprun_model *m = NULL;
    sprun_session *s = NULL;
    int rc = sprun_model_load(path, o, &m);
    sprun_options_destroy(o);
    if (rc) {
        printf("    load failed: %s\n", sprun_last_error());
        return -1;
    }
    if ((rc = sprun_session_create(m, &s))) {
        printf("    session failed: %s\n", sprun_last_error());
        sprun_model_destroy(m);
        return -1;
    }
    sprun_session_set_profiling(s, profile);
    for (int r = 0; r < nrun; r++) {
        if (r == nrun - 1 && nrun > 1)
            refill(in); /* replay must see new inputs */
        if ((rc = sprun_session_run(s, in->t, (size_t)in->n))) {
            printf("    run failed: %s\n", sprun_last_error());
            break;
        }
    }
    if (!rc) {
        *n_out = (int)sprun_model_output_count(m);
        for (int i = 0; i < *n_out; i++) {
            sprun_tensor t;
            sprun_session_output(s, (size_t)i, &t);
            outs[i] = t;
            outs[i].data = malloc(t.nbytes ? t.nbytes : 1);
            memcpy(outs[i].data, t.data, t.nbytes);
            memset(t.data, 0xff, t.nbytes); /* poison: the next run must rewrite it */
        }
        if (prof_total) {
            *prof_total = 0;
            size_t np = sprun_session_profile_count(s);
            for (size_t i = 0; i < np; i++) {
                double us;
                sprun_session_profile_entry(s, i, &us, NULL, 0);
                *prof_total += us;
            }
        }
    }
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    return rc ? -1 : 0;
}

static double rel_l2(const sprun_tensor *a, const sprun_tensor *ref)
{
    size_t n = ref->nbytes / sprun_dtype_size(ref->dtype);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x = as_f64(a, i), r = as_f64(ref, i);
        if (isnan(x) || isinf(x) != isinf(r))
            return INFINITY;
        if (isinf(r))
            continue;
        num += (x - r) * (x - r);
        den += r * r;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

#ifdef SPRUN_HAVE_CUDA
/* Out of device memory while planning must come back as
 * SPRUN_ERR_OUT_OF_MEMORY and leave the session usable: hog the GPU, run
 * (plan -> fails), release, run again on the same session (must pass). */
static int check_oom(const char *path, tensors *in)
{
    sprun_options *o = NULL;
    sprun_options_create(&o);
    sprun_options_set_backend(o, SPRUN_BACKEND_CUDA);
    sprun_model *m = NULL;
    sprun_session *s = NULL;
    int ok = 0;
    if (sprun_model_load(path, o, &m) || sprun_session_create(m, &s)) {
        printf("    oom check: load/session failed: %s\n", sprun_last_error());
        goto done;
    }
    size_t fr = 0, tot = 0;
    void *hog[64];
    int nh = 0;
    cudaMemGetInfo(&fr, &tot);
    /* take everything down to the last MiB, in halving chunks */
    for (size_t want = fr; want >= ((size_t)1 << 20) && nh < 64;) {
        if (cudaMalloc(&hog[nh], want) == cudaSuccess)
            nh++;
        else {
            (void)cudaGetLastError();
            want /= 2;
        }
    }
    int rc1 = sprun_session_run(s, in->t, (size_t)in->n);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", sprun_last_error());
    while (nh > 0)
        cudaFree(hog[--nh]);
    int rc2 = sprun_session_run(s, in->t, (size_t)in->n);
    ok = rc1 == SPRUN_ERR_OUT_OF_MEMORY && rc2 == SPRUN_OK;
    printf("%s oom: run with the GPU full -> %s (%.120s); after release -> %s\n", ok ? "PASS" : "FAIL",
           sprun_code_name((sprun_code)rc1), msg, sprun_code_name((sprun_code)rc2));
done:
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    sprun_options_destroy(o);
    return ok;
}

/* Runs every case of the list f; returns the failures, adds the passes to *npass. */
static int run_cases(FILE *f, int *npass)
{
    char line[4096];
    int pass = 0, fail = 0;
    while (fgets(line, sizeof line, f)) {
        char *tok[64];
        int nt = 0;
        for (char *p = strtok(line, " \t\r\n"); p && nt < 64; p = strtok(NULL, " \t\r\n"))
            tok[nt++] = p;
        if (nt == 0 || tok[0][0] == '#')
            continue;
        const char *path = tok[0];
        const char *short_name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        sprun_options *o = NULL;
        sprun_options_create(&o);
        sprun_options_set_backend(o, SPRUN_BACKEND_CPU);
        sprun_model *m = NULL;
        int rc = sprun_model_load(path, o, &m);
        sprun_options_destroy(o);
        if (rc) {
            printf("FAIL %-34s cpu load: %s\n", short_name, sprun_last_error());
            fail++;
            continue;
        }
        tensors in;
        if (make_inputs(m, nt - 1, tok + 1, &in)) {
            sprun_model_destroy(m);
            fail++;
            continue;
        }
        sprun_model_destroy(m);
        uint64_t seed = rng;
        struct {
            const char *name;
            int prec, profile;
            double tol;
        } modes[] = {{"fp16 graph", SPRUN_PRECISION_DEFAULT, 0, 1e-2}, {"fp16 eager", SPRUN_PRECISION_DEFAULT, 1, 1e-2},
                     {"fp32 graph", SPRUN_PRECISION_FP32, 0, 1e-4}};
        static int oom_done = 0;
        if (!oom_done) {
            oom_done = 1;
            check_oom(path, &in) ? pass++ : fail++;
        }
        for (int mi = 0; mi < 3; mi++) {
            sprun_tensor ref[8], got[8];
            int nref = 0, ngot = 0;
            double prof = 0;
            rng = seed;
            refill(&in);
            /* the CUDA run refills its inputs before its last run: replay the
             * same random sequence for the reference */
            uint64_t s2 = rng;
            int ok = run_once(path, SPRUN_BACKEND_CUDA, modes[mi].prec, modes[mi].profile, &in, 2, got, &ngot,
                              &prof) == 0;
            rng = s2;
            refill(&in);
            ok = ok && run_once(path, SPRUN_BACKEND_CPU, SPRUN_PRECISION_FP32, 0, &in, 1, ref, &nref, NULL) == 0;
            double worst = 0;
            for (int i = 0; ok && i < nref; i++) {
                double e = rel_l2(&got[i], &ref[i]);
                if (!(e <= worst))
                    worst = e;
            }
            int good = ok && worst <= modes[mi].tol;
            printf("%s %-34s %-10s rel-L2 %.3g (tol %.0e)", good ? "PASS" : "FAIL", short_name, modes[mi].name,
                   worst, modes[mi].tol);
            if (modes[mi].profile)
                printf("  profile sum %.1f us", prof);
            printf("\n");
            fflush(stdout);
            good ? pass++ : fail++;
            for (int i = 0; i < nref; i++)
                free(ref[i].data);
            for (int i = 0; i < ngot; i++)
                free(got[i].data);
        }
        for (int i = 0; i < in.n; i++)
            free(in.t[i].data);
    }
    *npass += pass;
    return fail;
}

/* Removes the flat folder dir that make_cases() made. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4400];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* No list given: python3 tests/gpu/make_cases.py DIR into a fresh DIR under
 * $TMPDIR (or /tmp), returned in dir. Returns 0 when DIR/cases.txt is
 * written, 77 (skip) when python3, its onnx / numpy or the script is
 * missing, 1 when the generator fails. */
static int make_cases(char *dir, size_t cap)
{
    const char *src = getenv("SPRUN_SOURCE_DIR");
    char script[4096];
    snprintf(script, sizeof script, "%s/tests/gpu/make_cases.py", src && *src ? src : SPRUN_SOURCE_DIR);
    if (access(script, R_OK)) {
        printf("no case list and no %s to make one (set SPRUN_SOURCE_DIR to the source tree): skipped\n", script);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/sprun-cuda-cases-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        printf("FAIL cannot make a folder for the cases (%s): %s\n", dir, strerror(errno));
        return 1;
    }
    printf("cases: python3 %s %s\n", script, dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL fork for make_cases.py: %s\n", strerror(errno));
        rmdir(dir);
        return 1;
    }
    if (pid == 0) {
        execlp("python3", "python3", script, dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 0)
        return 0;
    remove_dir(dir);
    if (code == 127) {
        printf("no case list and no python3 on PATH to run make_cases.py: skipped\n");
        return 77;
    }
    if (code == 77) {
        printf("no case list: python3 cannot import onnx / numpy for make_cases.py (pip install onnx numpy): "
               "skipped\n");
        return 77;
    }
    printf("FAIL make_cases.py %s %d\n", WIFEXITED(st) ? "exit" : "killed, status", WIFEXITED(st) ? code : st);
    return 1;
}
#endif

int main(int argc, char **argv)
{
#ifndef SPRUN_HAVE_CUDA
    (void)argc;
    (void)argv;
    printf("no CUDA in this build: skipped\n");
    return 77;
#else
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("no GPU: skipped\n");
        return 77;
    }
    const char *list = argc > 1 ? argv[1] : getenv("SPRUN_CUDA_CASES");
    if (argc <= 1 && list && !*list)
        list = NULL; /* an empty SPRUN_CUDA_CASES is no list */
    char dir[4096] = "", made[4200];
    if (!list) {
        int rc = make_cases(dir, sizeof dir);
        if (rc)
            return rc;
        snprintf(made, sizeof made, "%s/cases.txt", dir);
        list = made;
    }
    FILE *f = fopen(list, "r");
    if (!f && *dir) {
        printf("FAIL make_cases.py wrote no %s: %s\n", list, strerror(errno));
        remove_dir(dir);
        return 1;
    }
    if (!f) {
        printf("cannot open the case list %s: skipped\n", list);
        return 77;
    }
    int pass = 0, fail = run_cases(f, &pass);
    fclose(f);
    if (*dir && pass + fail == 0) {
        printf("FAIL make_cases.py listed no cases in %s\n", list);
        fail = 1;
    }
    printf("test_cuda_backend: %d passed, %d failed\n", pass, fail);
    if (*dir && fail)
        printf("cases kept in %s (rerun: %s %s)\n", dir, argv[0], list);
    else if (*dir)
        remove_dir(dir);
    return fail ? 1 : 0;
#endif
}
