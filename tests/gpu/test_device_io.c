/*
 * test_device_io.c - device-resident inputs and outputs on the CUDA backend.
 *
 * Models: tests/unit/test_device_io_model.h (Conv+Relu in NHWC, a broadcast
 * Add, Gather with int64 indices, Shape as a plan constant, Reshape+MatMul;
 * and Reshape by an int64 input whose values decide the shape). For fp32 and
 * fp16 precision, on a session bound to a stream of the test's own:
 *   1. device-in/device-out equals host-in/host-out bit for bit: per round,
 *      fresh random non-zero inputs are copied to cudaMalloc'ed memory
 *      (cudaMemcpy), the session runs on them with
 *      sprun_session_set_output_memory(DEVICE), sprun_session_synchronize,
 *      every output view must say SPRUN_MEMORY_DEVICE, point to device memory
 *      (cudaPointerGetAttributes) and have the host run's dtype, shape and
 *      size; its bytes, read back with cudaMemcpy, must equal those of the
 *      same session's host-in/host-out run on the same inputs (run second,
 *      so a device run that wrote nothing cannot pass on stale results).
 *      Rounds cover the eager first run, graph capture and replay, a second
 *      batch size (second plan), host and device inputs mixed;
 *   2. a device-output run does not wait for the stream: with the stream
 *      held by a host function, sprun_session_run returns while the stream
 *      is still blocked; results are checked after releasing it;
 *   3. refusals: a malloc'ed and a cudaMallocHost'ed pointer marked
 *      SPRUN_MEMORY_DEVICE give SPRUN_ERR_INVALID_ARGUMENT naming the input,
 *      and the session works afterwards;
 *   4. the Reshape model with both inputs on the device, two target shapes
 *      alternating (the planner reads the values back): equal to host runs.
 * Prints host-I/O vs device-I/O time per run at batch 32 (no threshold).
 * Exit: 0 all pass, 1 a failure, 77 no GPU.
 */
#include "sprun.h"
#include "tests/unit/test_device_io_model.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

static int failures;

static void ck(cudaError_t e, const char *call, int line)
{
    if (e == cudaSuccess)
        return;
    fprintf(stderr, "test_device_io.c:%d: %s: %s\n", line, call, cudaGetErrorString(e));
    exit(1);
}
#define CK(call) ck((call), #call, __LINE__)

/* a check that counts a failure and goes on */
static void expect(int ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect(int ok, int line, const char *fmt, ...)
{
    if (ok)
        return;
    failures++;
    fprintf(stderr, "FAIL test_device_io.c:%d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#define EXPECT(cond, ...) expect((cond) ? 1 : 0, __LINE__, __VA_ARGS__)

/* a sprun call that must succeed; on failure the test stops */
static void ok(sprun_code rc, const char *call, int line)
{
    if (rc == SPRUN_OK)
        return;
    fprintf(stderr, "test_device_io.c:%d: %s: %s: %s\n", line, call, sprun_code_name(rc), sprun_last_error());
    exit(1);
}
#define OK(call) ok((call), #call, __LINE__)

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float rand_nonzero(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    float v = (float)(rng >> 40) / 16777216.0f * 2.0f - 1.0f;
    return v == 0.0f ? 0.25f : v;
}

typedef struct io {
    sprun_tensor host[4], dev[4];
    int n;
} io;

static void io_add(io *t, const char *name, sprun_dtype dt, int rank, const int64_t *dims)
{
    sprun_tensor *h = &t->host[t->n], *d = &t->dev[t->n];
    *h = dio_tensor(name, dt, rank, dims);
    if (!h->data)
        exit(1);
    *d = *h;
    CK(cudaMalloc(&d->data, h->nbytes));
    d->memory = SPRUN_MEMORY_DEVICE;
    t->n++;
}

/* fresh random non-zero values (indices in [1, 32)), copied to the device */
static void io_fill(io *t)
{
    for (int i = 0; i < t->n; i++) {
        sprun_tensor *h = &t->host[i];
        size_t n = h->nbytes / sprun_dtype_size(h->dtype);
        for (size_t j = 0; j < n; j++)
            if (h->dtype == SPRUN_DTYPE_FLOAT)
                ((float *)h->data)[j] = rand_nonzero();
            else if (strcmp(h->name, "shape"))
                ((int64_t *)h->data)[j] = 1 + (int64_t)((rand_nonzero() + 1.0f) * 15.0f) % 31;
        CK(cudaMemcpy(t->dev[i].data, h->data, h->nbytes, cudaMemcpyHostToDevice));
    }
    /* a pageable cudaMemcpy may return before its DMA lands, and the
     * sessions' streams do not wait for the legacy stream */
    CK(cudaDeviceSynchronize());
}

static void io_free(io *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->host[i].data);
        CK(cudaFree(t->dev[i].data));
    }
    t->n = 0;
}

typedef struct outs {
    sprun_tensor t[8];
    int n;
} outs;

/* Copies every output view of the last run to the host (cudaMemcpy for
 * device views, after checking that they are device memory). */
static void take_outputs(const sprun_session *s, size_t n, sprun_memory want, const char *what, outs *o)
{
    o->n = (int)n;
    for (int i = 0; i < o->n; i++) {
        sprun_tensor v;
        OK(sprun_session_output(s, (size_t)i, &v));
        EXPECT(v.memory == want, "%s: output %s: memory %d, want %d", what, v.name, (int)v.memory, (int)want);
        o->t[i] = v;
        o->t[i].data = malloc(v.nbytes ? v.nbytes : 1);
        if (!o->t[i].data)
            exit(1);
        if (v.memory == SPRUN_MEMORY_DEVICE && v.nbytes) {
            struct cudaPointerAttributes a;
            CK(cudaPointerGetAttributes(&a, v.data));
            EXPECT(a.type == cudaMemoryTypeDevice, "%s: output %s: %p is not device memory (type %d)", what, v.name,
                   v.data, (int)a.type);
            CK(cudaMemcpy(o->t[i].data, v.data, v.nbytes, cudaMemcpyDeviceToHost));
        } else if (v.nbytes)
            memcpy(o->t[i].data, v.data, v.nbytes);
    }
}

static void free_outs(outs *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->t[i].data);
    o->n = 0;
}

/* device outputs (got) against the host run's (ref), bit for bit */
static void compare(const outs *ref, const outs *got, const char *what)
{
    for (int i = 0; i < ref->n; i++) {
        const sprun_tensor *r = &ref->t[i], *g = &got->t[i];
        int same = r->dtype == g->dtype && r->rank == g->rank && r->nbytes == g->nbytes;
        for (int d = 0; same && d < r->rank; d++)
            same = r->dims[d] == g->dims[d];
        EXPECT(same, "%s: output %s: dtype/shape/size differ from the host run", what, r->name);
        if (!same)
            continue;
        const unsigned char *a = r->data, *b = g->data;
        size_t k = 0;
        while (k < r->nbytes && a[k] == b[k])
            k++;
        EXPECT(k == r->nbytes, "%s: output %s: byte %zu of %zu differs (host %02x, device %02x)", what, r->name, k,
               r->nbytes, k < r->nbytes ? a[k] : 0, k < r->nbytes ? b[k] : 0);
    }
}

/* one round: device run on t (device inputs where use_dev[i]), then the
 * host run on the same values, compared */
static void round_trip(sprun_session *s, size_t n_out, io *t, const int *use_dev, const char *what)
{
    sprun_tensor in[4];
    for (int i = 0; i < t->n; i++)
        in[i] = use_dev[i] ? t->dev[i] : t->host[i];
    outs got, ref;
    OK(sprun_session_set_output_memory(s, SPRUN_MEMORY_DEVICE));
    OK(sprun_session_run(s, in, (size_t)t->n));
    OK(sprun_session_synchronize(s));
    take_outputs(s, n_out, SPRUN_MEMORY_DEVICE, what, &got);
    OK(sprun_session_set_output_memory(s, SPRUN_MEMORY_HOST));
    OK(sprun_session_run(s, t->host, (size_t)t->n));
    take_outputs(s, n_out, SPRUN_MEMORY_HOST, what, &ref);
    compare(&ref, &got, what);
    free_outs(&got);
    free_outs(&ref);
}

/* --- a stream held by a host function --------------------------------------- */

static atomic_int gate_open, gate_passed;

static void CUDART_CB gate(void *arg)
{
    (void)arg;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!atomic_load(&gate_open) && (t.tv_sec - t0.tv_sec) < 10);
    atomic_store(&gate_passed, 1);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static sprun_model *load(dio_pb model, sprun_precision prec)
{
    sprun_options *opt = NULL;
    OK(sprun_options_create(&opt));
    OK(sprun_options_set_backend(opt, SPRUN_BACKEND_CUDA));
    OK(sprun_options_set_precision(opt, prec));
    sprun_model *m = NULL;
    sprun_code rc = sprun_model_load_buffer(model.b, model.n, opt, &m);
    free(model.b);
    sprun_options_destroy(opt);
    if (rc == SPRUN_ERR_NO_DEVICE) {
        printf("no GPU: skipped (%s)\n", sprun_last_error());
        exit(77);
    }
    if (rc != SPRUN_OK) {
        fprintf(stderr, "load: %s: %s\n", sprun_code_name(rc), sprun_last_error());
        exit(1);
    }
    return m;
}

static void main_io(io *t, int64_t n)
{
    io_add(t, "x", SPRUN_DTYPE_FLOAT, 4, (const int64_t[]){n, 3, 32, 32});
    io_add(t, "b", SPRUN_DTYPE_FLOAT, 1, (const int64_t[]){32});
    io_add(t, "idx", SPRUN_DTYPE_INT64, 1, (const int64_t[]){5});
}

static void test_main_model(sprun_precision prec, const char *pname)
{
    sprun_model *m = load(dio_model_main(), prec);
    size_t n_out = sprun_model_output_count(m);
    sprun_session *s = NULL;
    OK(sprun_session_create(m, &s));
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    OK(sprun_session_set_stream(s, st));
    const int all[3] = {1, 1, 1}, mixed[3] = {1, 0, 1};
    char what[96];

    /* 1. bit-for-bit against host I/O: eager, capture, replay, a second plan, mixed */
    io t4 = {0}, t2 = {0};
    main_io(&t4, 4);
    main_io(&t2, 2);
    for (int round = 0; round < 4; round++) {
        snprintf(what, sizeof what, "%s batch 4 round %d", pname, round);
        io_fill(&t4);
        round_trip(s, n_out, &t4, round == 2 ? mixed : all, what);
    }
    for (int round = 0; round < 3; round++) {
        snprintf(what, sizeof what, "%s batch 2 round %d", pname, round);
        io_fill(&t2);
        round_trip(s, n_out, &t2, all, what);
    }

    /* 2. a device-output run returns without waiting for the stream */
    {
        io_fill(&t4);
        atomic_store(&gate_open, 0);
        atomic_store(&gate_passed, 0);
        OK(sprun_session_set_output_memory(s, SPRUN_MEMORY_DEVICE));
        CK(cudaLaunchHostFunc(st, gate, NULL));
        sprun_code rc = sprun_session_run(s, t4.dev, 3);
        int passed = atomic_load(&gate_passed);
        atomic_store(&gate_open, 1);
        EXPECT(rc == SPRUN_OK, "%s async run: %s", pname, sprun_last_error());
        EXPECT(!passed, "%s: a device-output run waited for its stream", pname);
        OK(sprun_session_synchronize(s));
        outs got, ref;
        take_outputs(s, n_out, SPRUN_MEMORY_DEVICE, "async", &got);
        OK(sprun_session_set_output_memory(s, SPRUN_MEMORY_HOST));
        OK(sprun_session_run(s, t4.host, 3));
        take_outputs(s, n_out, SPRUN_MEMORY_HOST, "async", &ref);
        snprintf(what, sizeof what, "%s async run", pname);
        compare(&ref, &got, what);
        free_outs(&got);
        free_outs(&ref);
    }

    /* 3. host memory marked as device memory is refused, naming the input */
    {
        sprun_tensor in[3] = {t4.dev[0], t4.dev[1], t4.dev[2]};
        in[0].data = t4.host[0].data;
        sprun_code rc = sprun_session_run(s, in, 3);
        EXPECT(rc == SPRUN_ERR_INVALID_ARGUMENT && strstr(sprun_last_error(), "input 'x'") &&
                   strstr(sprun_last_error(), "not device memory"),
               "%s malloc'ed pointer as device input: %s: %s", pname, sprun_code_name(rc), sprun_last_error());
        sprun_tensor v;
        EXPECT(sprun_session_output(s, 0, &v) == SPRUN_ERR_INVALID_ARGUMENT, "%s: outputs after a refused run",
               pname);
        void *pinned = NULL;
        CK(cudaMallocHost(&pinned, t4.host[1].nbytes));
        in[0] = t4.dev[0];
        in[1].data = pinned;
        rc = sprun_session_run(s, in, 3);
        EXPECT(rc == SPRUN_ERR_INVALID_ARGUMENT && strstr(sprun_last_error(), "input 'b'") &&
                   strstr(sprun_last_error(), "pinned host memory"),
               "%s pinned pointer as device input: %s: %s", pname, sprun_code_name(rc), sprun_last_error());
        CK(cudaFreeHost(pinned));
        snprintf(what, sizeof what, "%s after refusals", pname);
        io_fill(&t4);
        round_trip(s, n_out, &t4, all, what);
    }

    /* timing (informative): host I/O vs device I/O at batch 32 */
    {
        io t32 = {0};
        main_io(&t32, 32);
        io_fill(&t32);
        double us[2];
        for (int mode = 0; mode < 2; mode++) {
            OK(sprun_session_set_output_memory(s, mode ? SPRUN_MEMORY_DEVICE : SPRUN_MEMORY_HOST));
            const sprun_tensor *in = mode ? t32.dev : t32.host;
            for (int i = 0; i < 3; i++)
                OK(sprun_session_run(s, in, 3));
            OK(sprun_session_synchronize(s));
            double t0 = now_s();
            for (int i = 0; i < 50; i++)
                OK(sprun_session_run(s, in, 3));
            OK(sprun_session_synchronize(s));
            us[mode] = (now_s() - t0) / 50 * 1e6;
        }
        printf("%s batch 32: host I/O %.1f us/run, device I/O %.1f us/run\n", pname, us[0], us[1]);
        io_free(&t32);
    }
    io_free(&t4);
    io_free(&t2);
    sprun_session_destroy(s);
    CK(cudaStreamDestroy(st));
    sprun_model_destroy(m);
}

/* 4. the planner reads a shape-deciding device input back */
static void test_reshape_model(sprun_precision prec, const char *pname)
{
    sprun_model *m = load(dio_model_reshape(), prec);
    sprun_session *s = NULL;
    OK(sprun_session_create(m, &s));
    io t = {0};
    io_add(&t, "x", SPRUN_DTYPE_FLOAT, 2, (const int64_t[]){6, 8});
    io_add(&t, "shape", SPRUN_DTYPE_INT64, 1, (const int64_t[]){2});
    const int64_t targets[2][2] = {{8, 6}, {2, 24}};
    const int all[2] = {1, 1};
    for (int round = 0; round < 4; round++) {
        memcpy(t.host[1].data, targets[round % 2], sizeof targets[0]);
        io_fill(&t);
        char what[96];
        snprintf(what, sizeof what, "%s reshape round %d", pname, round);
        round_trip(s, 1, &t, all, what);
        sprun_tensor v;
        OK(sprun_session_output(s, 0, &v));
        EXPECT(v.rank == 2 && v.dims[0] == targets[round % 2][0], "%s: shape [%lld, %lld]", what,
               (long long)v.dims[0], (long long)v.dims[1]);
    }
    io_free(&t);
    sprun_session_destroy(s);
    sprun_model_destroy(m);
}

int main(void)
{
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        printf("no GPU: skipped\n");
        return 77;
    }
    test_main_model(SPRUN_PRECISION_FP32, "fp32");
    test_main_model(SPRUN_PRECISION_FP16, "fp16");
    test_reshape_model(SPRUN_PRECISION_FP32, "fp32");
    test_reshape_model(SPRUN_PRECISION_FP16, "fp16");
    if (failures) {
        fprintf(stderr, "test_device_io: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_device_io: all passed\n");
    return 0;
}
