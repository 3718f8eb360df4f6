/*
 * test_device_io_cpu.c - device-resident inputs and outputs (sprun_tensor.memory,
 * sprun_session_set_output_memory, sprun_session_synchronize) without a GPU.
 *
 * The CPU backend must refuse device tensors with SPRUN_ERR_INVALID_ARGUMENT
 * naming the input, and device outputs likewise, never crash, and keep
 * working for host tensors afterwards. The session's own part of device I/O
 * (checking device inputs, the planner's host copies of the inputs whose
 * values decide shapes, device output views) is exercised through a fake
 * device backend: the CPU backend plus device hooks over an mmap'd region
 * that is PROT_NONE except inside the hooks, so any host read of "device"
 * memory by session.c would fault. The same run on the GPU is
 * tests/gpu/test_device_io.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "runtime/model.h"
#include "sprun.h"
#include "tests/unit/test_device_io_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle)) {
        print_error("'%s' does not contain '%s'\n", haystack ? haystack : "(null)", needle);
        fail();
    }
}

static void expect_invalid(sprun_code rc, const char *needle, const char *needle2)
{
    if (rc != SPRUN_ERR_INVALID_ARGUMENT) {
        print_error("expected SPRUN_ERR_INVALID_ARGUMENT, got %s (%s)\n", sprun_code_name(rc), sprun_last_error());
        fail();
    }
    assert_contains(sprun_last_error(), needle);
    if (needle2)
        assert_contains(sprun_last_error(), needle2);
}

static sprun_model *load(dio_pb model)
{
    sprun_options *opt = NULL;
    assert_int_equal(sprun_options_create(&opt), SPRUN_OK);
    assert_int_equal(sprun_options_set_backend(opt, SPRUN_BACKEND_CPU), SPRUN_OK);
    assert_int_equal(sprun_options_set_threads(opt, 2), SPRUN_OK);
    sprun_model *m = NULL;
    sprun_code rc = sprun_model_load_buffer(model.b, model.n, opt, &m);
    free(model.b);
    sprun_options_destroy(opt);
    if (rc != SPRUN_OK) {
        print_error("load failed: %s: %s\n", sprun_code_name(rc), sprun_last_error());
        fail();
    }
    return m;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float rand_nonzero(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    float v = (float)(rng >> 40) / 16777216.0f * 2.0f - 1.0f; /* [-1, 1) */
    return v == 0.0f ? 0.25f : v;
}

/* dio_tensor filled with random non-zero floats, or int64 in [1, 31] */
static sprun_tensor tensor(const char *name, sprun_dtype dt, int rank, const int64_t *dims)
{
    sprun_tensor t = dio_tensor(name, dt, rank, dims);
    assert_non_null(t.data);
    size_t n = t.nbytes / sprun_dtype_size(dt);
    for (size_t i = 0; i < n; i++)
        if (dt == SPRUN_DTYPE_FLOAT)
            ((float *)t.data)[i] = rand_nonzero();
        else
            ((int64_t *)t.data)[i] = 1 + (int64_t)(i * 5 % 31);
    return t;
}

/* The main model's inputs at batch N (host memory). */
static void main_inputs(int64_t n, sprun_tensor in[3])
{
    in[0] = tensor("x", SPRUN_DTYPE_FLOAT, 4, (const int64_t[]){n, 3, 32, 32});
    in[1] = tensor("b", SPRUN_DTYPE_FLOAT, 1, (const int64_t[]){32});
    in[2] = tensor("idx", SPRUN_DTYPE_INT64, 1, (const int64_t[]){5});
}

/* frees the inputs' host data, the session and the model */
static void teardown(sprun_tensor *in, int n, sprun_session *s, sprun_model *m)
{
    for (int i = 0; i < n; i++)
        free(in[i].data);
    sprun_session_destroy(s);
    sprun_model_destroy(m);
}

typedef struct outs {
    sprun_tensor t[8];
    int n;
} outs;

/* Host copies of every output of the session's last run (device views are
 * read through read_dev). */
static void copy_outputs(const sprun_session *s, const sprun_model *m, sprun_memory where,
                         void (*read_dev)(void *, const void *, size_t), outs *o)
{
    o->n = (int)sprun_model_output_count(m);
    for (int i = 0; i < o->n; i++) {
        sprun_tensor v;
        assert_int_equal(sprun_session_output(s, (size_t)i, &v), SPRUN_OK);
        assert_int_equal(v.memory, where);
        o->t[i] = v;
        o->t[i].data = malloc(v.nbytes ? v.nbytes : 1);
        assert_non_null(o->t[i].data);
        if (where == SPRUN_MEMORY_DEVICE)
            read_dev(o->t[i].data, v.data, v.nbytes);
        else
            memcpy(o->t[i].data, v.data, v.nbytes);
    }
}

static void assert_same_outputs(const outs *a, const outs *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_int_equal(a->t[i].dtype, b->t[i].dtype);
        assert_int_equal(a->t[i].rank, b->t[i].rank);
        for (int d = 0; d < a->t[i].rank; d++)
            assert_int_equal(a->t[i].dims[d], b->t[i].dims[d]);
        assert_int_equal(a->t[i].nbytes, b->t[i].nbytes);
        assert_memory_equal(a->t[i].data, b->t[i].data, a->t[i].nbytes);
    }
}

static void free_outs(outs *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->t[i].data);
    o->n = 0;
}

/* the outputs of the session's last run are in `where` and equal ref's */
static void expect_outputs(const sprun_session *s, const sprun_model *m, sprun_memory where,
                           void (*read_dev)(void *, const void *, size_t), const outs *ref)
{
    outs got;
    copy_outputs(s, m, where, read_dev, &got);
    assert_same_outputs(ref, &got);
    free_outs(&got);
}

/* ------------------------------------------------------------------------ */
/* the CPU backend refuses device memory                                     */
/* ------------------------------------------------------------------------ */

static void test_cpu_refuses_device_inputs(void **state)
{
    (void)state;
    sprun_model *m = load(dio_model_main());
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    sprun_tensor in[3];
    main_inputs(2, in);
    outs ref;
    assert_int_equal(sprun_session_run(s, in, 3), SPRUN_OK);
    copy_outputs(s, m, SPRUN_MEMORY_HOST, NULL, &ref);

    /* one input said to be on the device: named, refused, no outputs left */
    in[1].memory = SPRUN_MEMORY_DEVICE;
    expect_invalid(sprun_session_run(s, in, 3), "input 'b'", "cpu backend");
    assert_contains(sprun_last_error(), "SPRUN_MEMORY_DEVICE");
    sprun_tensor v;
    expect_invalid(sprun_session_output(s, 0, &v), "no successful run", NULL);
    in[1].memory = SPRUN_MEMORY_HOST;

    /* positional inputs: the message names the model's input */
    sprun_tensor pos[3] = {in[0], in[1], in[2]};
    pos[0].name = pos[1].name = pos[2].name = NULL;
    pos[2].memory = SPRUN_MEMORY_DEVICE;
    expect_invalid(sprun_session_run(s, pos, 3), "input 'idx'", "cpu backend");

    /* a value that is no sprun_memory */
    in[0].memory = (sprun_memory)7;
    expect_invalid(sprun_session_run(s, in, 3), "input 'x'", "memory 7");
    in[0].memory = SPRUN_MEMORY_HOST;

    /* an empty or NULL device pointer is refused just the same, never read */
    sprun_tensor bad = in[2];
    bad.data = (void *)(uintptr_t)0x10; /* would fault if dereferenced */
    bad.memory = SPRUN_MEMORY_DEVICE;
    sprun_tensor mix[3] = {in[0], in[1], bad};
    expect_invalid(sprun_session_run(s, mix, 3), "input 'idx'", "cpu backend");

    /* the session still works, with the same results */
    assert_int_equal(sprun_session_run(s, in, 3), SPRUN_OK);
    expect_outputs(s, m, SPRUN_MEMORY_HOST, NULL, &ref);
    free_outs(&ref);
    teardown(in, 3, s, m);
}

static void test_cpu_output_memory_and_synchronize(void **state)
{
    (void)state;
    sprun_model *m = load(dio_model_main());
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);

    expect_invalid(sprun_session_set_output_memory(NULL, SPRUN_MEMORY_HOST), "sprun_session_set_output_memory",
                   "NULL session");
    expect_invalid(sprun_session_set_output_memory(s, SPRUN_MEMORY_DEVICE), "sprun_session_set_output_memory",
                   "cpu backend");
    expect_invalid(sprun_session_set_output_memory(s, (sprun_memory)5), "sprun_session_set_output_memory",
                   "memory 5");
    assert_int_equal(sprun_session_set_output_memory(s, SPRUN_MEMORY_HOST), SPRUN_OK);
    expect_invalid(sprun_session_synchronize(NULL), "sprun_session_synchronize", "NULL session");
    assert_int_equal(sprun_session_synchronize(s), SPRUN_OK); /* nothing in flight on the CPU */

    /* the refused DEVICE setting changed nothing: runs still give host views */
    sprun_tensor in[3];
    main_inputs(1, in);
    assert_int_equal(sprun_session_run(s, in, 3), SPRUN_OK);
    assert_int_equal(sprun_session_synchronize(s), SPRUN_OK);
    for (size_t i = 0; i < sprun_model_output_count(m); i++) {
        sprun_tensor v;
        assert_int_equal(sprun_session_output(s, i, &v), SPRUN_OK);
        assert_int_equal(v.memory, SPRUN_MEMORY_HOST);
        assert_non_null(v.data);
    }
    teardown(in, 3, s, m);
}

/* ------------------------------------------------------------------------ */
/* a fake device: the session's part of device I/O                           */
/* ------------------------------------------------------------------------ */

#define FDEV_BYTES ((size_t)16 << 20)

static struct {
    char *base;
    size_t used;
    int reads, syncs;
    struct {
        const sp_plan *p;
        int idx;
        size_t bytes;
        void *dev;
    } out[64];
    int n_out;
} fdev;

static void fdev_open(void)
{
    memset(&fdev, 0, sizeof fdev);
    void *p = mmap(NULL, FDEV_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    fdev.base = p;
}

static void fdev_close(void) { munmap(fdev.base, FDEV_BYTES); }

static int fdev_has(const void *p, size_t n)
{
    const char *c = p;
    return c >= fdev.base && c + n <= fdev.base + FDEV_BYTES;
}

static void *fdev_alloc(size_t n)
{
    size_t a = (n + 63) & ~(size_t)63;
    assert_true(fdev.used + a <= FDEV_BYTES);
    void *p = fdev.base + fdev.used;
    fdev.used += a ? a : 64;
    return p;
}

/* the fake's cudaMemcpy: "device" memory is readable only in here */
static void fdev_copy(void *dst, const void *src, size_t n)
{
    assert_int_equal(mprotect(fdev.base, FDEV_BYTES, PROT_READ | PROT_WRITE), 0);
    memcpy(dst, src, n);
    assert_int_equal(mprotect(fdev.base, FDEV_BYTES, PROT_NONE), 0);
}

static void *fdev_upload(const sprun_tensor *t, sprun_tensor *dev)
{
    *dev = *t;
    dev->data = fdev_alloc(t->nbytes);
    dev->memory = SPRUN_MEMORY_DEVICE;
    fdev_copy(dev->data, t->data, t->nbytes);
    return dev->data;
}

static int fake_check(const struct sprun_session *s, const void *ptr, sp_err *err)
{
    (void)s;
    return fdev_has(ptr, 1) ? SPRUN_OK : sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "data %p is not fake device memory", ptr);
}

static int fake_read(struct sprun_session *s, void *dst, const void *src, size_t bytes, sp_err *err)
{
    (void)s;
    (void)err;
    assert_true(fdev_has(src, bytes));
    assert_false(fdev_has(dst, bytes));
    fdev.reads++;
    fdev_copy(dst, src, bytes);
    return SPRUN_OK;
}

static void **fake_slot(const sp_plan *p, int idx, size_t bytes)
{
    for (int i = 0; i < fdev.n_out; i++)
        if (fdev.out[i].p == p && fdev.out[i].idx == idx && fdev.out[i].bytes == bytes)
            return &fdev.out[i].dev;
    assert_true(fdev.n_out < 64);
    fdev.out[fdev.n_out].p = p;
    fdev.out[fdev.n_out].idx = idx;
    fdev.out[fdev.n_out].bytes = bytes;
    fdev.out[fdev.n_out].dev = fdev_alloc(bytes);
    return &fdev.out[fdev.n_out++].dev;
}

static void *fake_output(const struct sprun_session *s, const sp_plan *p, int idx)
{
    (void)s;
    return *fake_slot(p, idx, p->out_bytes[idx]);
}

static int fake_sync(struct sprun_session *s, sp_err *err)
{
    (void)s;
    (void)err;
    fdev.syncs++;
    return SPRUN_OK;
}

/* the CPU backend's run on host copies of the device inputs; device outputs
 * are copied into fake device memory and the host ones poisoned */
static int fake_run(struct sprun_session *s, sp_plan *p, const sprun_tensor *const *inputs, sp_err *err)
{
    sprun_tensor host[16];
    const sprun_tensor *hp[16] = {0};
    int n = p->g.n_inputs;
    for (int i = 0; i < n; i++) {
        hp[i] = inputs[i];
        if (inputs[i]->memory != SPRUN_MEMORY_DEVICE)
            continue;
        host[i] = *inputs[i];
        host[i].memory = SPRUN_MEMORY_HOST;
        host[i].data = malloc(inputs[i]->nbytes ? inputs[i]->nbytes : 1);
        assert_non_null(host[i].data);
        fdev_copy(host[i].data, inputs[i]->data, inputs[i]->nbytes);
        hp[i] = &host[i];
    }
    int rc = sp_backend_cpu.run(s, p, hp, err);
    for (int i = 0; i < n; i++)
        if (hp[i] == &host[i])
            free(host[i].data);
    if (rc == SPRUN_OK && s->out_memory == SPRUN_MEMORY_DEVICE)
        for (int i = 0; i < p->g.n_outputs; i++) {
            fdev_copy(*fake_slot(p, i, p->out_bytes[i]), p->out_host[i], p->out_bytes[i]);
            memset(p->out_host[i], 0xff, p->out_bytes[i]);
        }
    return rc;
}

static sp_backend_i fake_backend;

static void use_fake_device(sprun_model *m)
{
    fake_backend = sp_backend_cpu;
    fake_backend.name = "fake-device";
    fake_backend.run = fake_run;
    fake_backend.device_check = fake_check;
    fake_backend.device_read = fake_read;
    fake_backend.device_output = fake_output;
    fake_backend.synchronize = fake_sync;
    m->backend = &fake_backend;
}

static void read_fdev(void *dst, const void *src, size_t n)
{
    assert_true(fdev_has(src, n));
    fdev_copy(dst, src, n);
}

static void test_fake_device_inputs_and_outputs(void **state)
{
    (void)state;
    fdev_open();
    sprun_model *m = load(dio_model_main());
    sprun_tensor in[3], dev[3];
    main_inputs(4, in); /* x: 48 KiB, more than the planner reads back */
    outs ref;
    {
        sprun_session *s = NULL;
        assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
        assert_int_equal(sprun_session_run(s, in, 3), SPRUN_OK);
        copy_outputs(s, m, SPRUN_MEMORY_HOST, NULL, &ref);
        sprun_session_destroy(s);
    }
    use_fake_device(m);
    for (int i = 0; i < 3; i++)
        fdev_upload(&in[i], &dev[i]);
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    assert_int_equal(sprun_session_set_output_memory(s, SPRUN_MEMORY_DEVICE), SPRUN_OK);

    /* planning reads back the small device inputs (b, idx), never x */
    assert_int_equal(sprun_session_run(s, dev, 3), SPRUN_OK);
    assert_int_equal(fdev.reads, 2);
    expect_outputs(s, m, SPRUN_MEMORY_DEVICE, read_fdev, &ref);

    /* a planned run reads nothing back */
    assert_int_equal(sprun_session_run(s, dev, 3), SPRUN_OK);
    assert_int_equal(fdev.reads, 2);
    assert_int_equal(sprun_session_synchronize(s), SPRUN_OK);
    assert_int_equal(fdev.syncs, 1);
    expect_outputs(s, m, SPRUN_MEMORY_DEVICE, read_fdev, &ref);

    /* host and device inputs mixed, host outputs again */
    sprun_tensor mix[3] = {in[0], dev[1], in[2]};
    assert_int_equal(sprun_session_set_output_memory(s, SPRUN_MEMORY_HOST), SPRUN_OK);
    assert_int_equal(sprun_session_run(s, mix, 3), SPRUN_OK);
    expect_outputs(s, m, SPRUN_MEMORY_HOST, NULL, &ref);

    /* the views of a run keep their memory when the setting changes after it */
    assert_int_equal(sprun_session_set_output_memory(s, SPRUN_MEMORY_DEVICE), SPRUN_OK);
    sprun_tensor v;
    assert_int_equal(sprun_session_output(s, 0, &v), SPRUN_OK);
    assert_int_equal(v.memory, SPRUN_MEMORY_HOST);

    /* a host pointer said to be device memory: the backend's check, named */
    sprun_tensor liar[3] = {dev[0], dev[1], in[2]};
    liar[2].memory = SPRUN_MEMORY_DEVICE;
    expect_invalid(sprun_session_run(s, liar, 3), "input 'idx'", "not fake device memory");
    expect_invalid(sprun_session_output(s, 0, &v), "no successful run", NULL);
    assert_int_equal(sprun_session_run(s, dev, 3), SPRUN_OK);
    expect_outputs(s, m, SPRUN_MEMORY_DEVICE, read_fdev, &ref);

    free_outs(&ref);
    teardown(in, 3, s, m);
    fdev_close();
}

/* Reshape(x, shape) with `shape` on the device: the planner needs its values
 * (plan per value), read back when planning and when looking the plan up. */
static void test_fake_device_shape_input(void **state)
{
    (void)state;
    fdev_open();
    sprun_model *m = load(dio_model_reshape());
    sprun_tensor x = tensor("x", SPRUN_DTYPE_FLOAT, 2, (const int64_t[]){6, 8});
    sprun_tensor shape = tensor("shape", SPRUN_DTYPE_INT64, 1, (const int64_t[]){2});
    const int64_t targets[2][2] = {{8, 6}, {2, 24}};
    outs ref[2];
    {
        sprun_session *s = NULL;
        assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
        for (int k = 0; k < 2; k++) {
            memcpy(shape.data, targets[k], sizeof targets[k]);
            sprun_tensor in[2] = {x, shape};
            assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
            copy_outputs(s, m, SPRUN_MEMORY_HOST, NULL, &ref[k]);
            assert_int_equal(ref[k].t[0].dims[0], targets[k][0]);
        }
        sprun_session_destroy(s);
    }
    use_fake_device(m);
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    assert_int_equal(sprun_session_set_output_memory(s, SPRUN_MEMORY_DEVICE), SPRUN_OK);
    sprun_tensor dx, dshape[2];
    fdev_upload(&x, &dx);
    for (int k = 0; k < 2; k++) {
        memcpy(shape.data, targets[k], sizeof targets[k]);
        fdev_upload(&shape, &dshape[k]);
    }
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 2; k++) {
            sprun_tensor in[2] = {dx, dshape[k]};
            int reads = fdev.reads;
            assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
            assert_true(fdev.reads > reads); /* the values decide the plan */
            assert_int_equal(s->n_plans, round ? 2 : k + 1);
            expect_outputs(s, m, SPRUN_MEMORY_DEVICE, read_fdev, &ref[k]);
        }
    free_outs(&ref[0]);
    free_outs(&ref[1]);
    sprun_tensor in[2] = {x, shape};
    teardown(in, 2, s, m);
    fdev_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_refuses_device_inputs),
        cmocka_unit_test(test_cpu_output_memory_and_synchronize),
        cmocka_unit_test(test_fake_device_inputs_and_outputs),
        cmocka_unit_test(test_fake_device_shape_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
