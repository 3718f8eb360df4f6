/*
 * test_runtime_core.c - the runtime core: IR, shapes, memory planner, graph
 * passes, plan-time constant folding and the session API contract.
 *
 * Graph-level tests build sp_graph values directly through the IR API. API
 * tests build small ONNX models in memory with the protobuf-c structs
 * generated from onnx.proto (no Python at test time), load them with
 * sprun_model_load_buffer and compare an optimised model (BatchNorm folding,
 * epilogue fusion) with the same model loaded with optimisations off.
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

#include "onnx.pb-c.h"
#include "runtime/model.h"
#include "sprun.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Allocation counter: "a run with already planned shapes allocates nothing"  */
/* (sprun.h). malloc & co are interposed in this executable and forwarded to  */
/* glibc; not under ASan, which owns malloc itself.                          */
/* ------------------------------------------------------------------------ */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SP_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SP_TEST_ASAN 1
#endif
#if defined(__GLIBC__) && !defined(SP_TEST_ASAN)
#define SP_COUNT_ALLOCS 1
#include <stdatomic.h>
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
static atomic_int counting_allocs;
static atomic_long n_allocs;
static void note_alloc(void)
{
    if (atomic_load_explicit(&counting_allocs, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
}
void *malloc(size_t size)
{
    note_alloc();
    return __libc_malloc(size);
}
void *calloc(size_t n, size_t size)
{
    note_alloc();
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size)
{
    note_alloc();
    return __libc_realloc(p, size);
}
void *aligned_alloc(size_t align, size_t size)
{
    note_alloc();
    return __libc_memalign(align, size);
}
void *memalign(size_t align, size_t size);
void *memalign(size_t align, size_t size)
{
    note_alloc();
    return __libc_memalign(align, size);
}
int posix_memalign(void **out, size_t align, size_t size)
{
    note_alloc();
    void *p = __libc_memalign(align, size);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* Deterministic pseudo-random numbers (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }
static float rng_float(void) { return (float)((rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f; }

static void fill_random(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rng_float();
}

static void assert_close(const float *a, const float *b, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]), scale = fabsf(b[i]) > 1.f ? fabsf(b[i]) : 1.f;
        if (!(d <= tol * scale)) {
            print_error("element %zu: %g vs %g (tolerance %g)\n", i, (double)a[i], (double)b[i], (double)tol);
            fail();
        }
    }
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle)) {
        print_error("'%s' does not contain '%s'\n", haystack ? haystack : "(null)", needle);
        fail();
    }
}

/* ------------------------------------------------------------------------ */
/* ONNX model builder: every allocation is tracked and freed after packing.  */
/* ------------------------------------------------------------------------ */

#define MB_MAX 32

typedef struct mb {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    Onnx__NodeProto *nodes[MB_MAX];
    Onnx__ValueInfoProto *inputs[MB_MAX], *outputs[MB_MAX];
    Onnx__TensorProto *inits[MB_MAX];
    void **mem;
    size_t n_mem, cap_mem;
} mb;

static void *mb_alloc(mb *b, size_t size)
{
    if (b->n_mem == b->cap_mem) {
        b->cap_mem = b->cap_mem ? 2 * b->cap_mem : 64;
        b->mem = realloc(b->mem, b->cap_mem * sizeof *b->mem);
        assert_non_null(b->mem);
    }
    void *p = calloc(1, size ? size : 1);
    assert_non_null(p);
    b->mem[b->n_mem++] = p;
    return p;
}

static char *mb_str(mb *b, const char *s)
{
    char *p = mb_alloc(b, strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

static mb *mb_create(int64_t opset)
{
    mb *b = calloc(1, sizeof *b);
    assert_non_null(b);
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.graph = &b->graph;
    b->graph.name = "g";
    b->graph.node = b->nodes;
    b->graph.input = b->inputs;
    b->graph.output = b->outputs;
    b->graph.initializer = b->inits;
    return b;
}

static void mb_destroy(mb *b)
{
    for (size_t i = 0; i < b->n_mem; i++)
        free(b->mem[i]);
    free(b->mem);
    free(b);
}

/* A value info; rank < 0: no shape. dims[i] < 0 is the symbolic dim "N". */
static Onnx__ValueInfoProto *mb_value_info(mb *b, const char *name, int dtype, int rank, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = mb_alloc(b, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = mb_str(b, name);
    Onnx__TypeProto *t = mb_alloc(b, sizeof *t);
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = mb_alloc(b, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = dtype;
    if (rank >= 0) {
        Onnx__TensorShapeProto *s = mb_alloc(b, sizeof *s);
        onnx__tensor_shape_proto__init(s);
        s->n_dim = (size_t)rank;
        s->dim = mb_alloc(b, (size_t)(rank + 1) * sizeof *s->dim);
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = mb_alloc(b, sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = mb_str(b, "N");
            }
            s->dim[i] = d;
        }
        tt->shape = s;
    }
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

static void mb_input(mb *b, const char *name, int dtype, int rank, const int64_t *dims)
{
    assert_true(b->graph.n_input < MB_MAX);
    b->inputs[b->graph.n_input++] = mb_value_info(b, name, dtype, rank, dims);
}

static void mb_output(mb *b, const char *name, int dtype)
{
    assert_true(b->graph.n_output < MB_MAX);
    b->outputs[b->graph.n_output++] = mb_value_info(b, name, dtype, -1, NULL);
}

/* An initializer with raw_data (the payload is copied). */
static void mb_init(mb *b, const char *name, int dtype, int rank, const int64_t *dims, const void *data,
                    size_t nbytes)
{
    assert_true(b->graph.n_initializer < MB_MAX);
    Onnx__TensorProto *t = mb_alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = mb_str(b, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = mb_alloc(b, (size_t)(rank + 1) * sizeof *t->dims);
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = mb_alloc(b, nbytes);
    memcpy(t->raw_data.data, data, nbytes);
    b->inits[b->graph.n_initializer++] = t;
}

static void mb_init_f32(mb *b, const char *name, int rank, const int64_t *dims, const float *data)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    mb_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims, data, n * sizeof(float));
}

static void mb_init_i64(mb *b, const char *name, int rank, const int64_t *dims, const int64_t *data)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    mb_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, rank, dims, data, n * sizeof(int64_t));
}

#define NAMES(...) ((const char *[]){__VA_ARGS__, NULL})

/* A node; ins/outs are NULL-terminated lists ("" for an absent optional). */
static Onnx__NodeProto *mb_node(mb *b, const char *op, const char *name, const char **ins, const char **outs)
{
    assert_true(b->graph.n_node < MB_MAX);
    Onnx__NodeProto *n = mb_alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = mb_str(b, op);
    n->name = mb_str(b, name);
    n->domain = "";
    while (ins[n->n_input])
        n->n_input++;
    while (outs[n->n_output])
        n->n_output++;
    n->input = mb_alloc(b, (n->n_input + 1) * sizeof *n->input);
    n->output = mb_alloc(b, (n->n_output + 1) * sizeof *n->output);
    for (size_t i = 0; i < n->n_input; i++)
        n->input[i] = mb_str(b, ins[i]);
    for (size_t i = 0; i < n->n_output; i++)
        n->output[i] = mb_str(b, outs[i]);
    n->attribute = mb_alloc(b, 16 * sizeof *n->attribute);
    b->nodes[b->graph.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *mb_attr(mb *b, Onnx__NodeProto *n, const char *name, int type)
{
    assert_true(n->n_attribute < 16);
    Onnx__AttributeProto *a = mb_alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_str(b, name);
    a->has_type = 1;
    a->type = (Onnx__AttributeProto__AttributeType)type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void mb_attr_int(mb *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void mb_attr_float(mb *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void mb_attr_ints(mb *b, Onnx__NodeProto *n, const char *name, size_t count, const int64_t *v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = count;
    a->ints = mb_alloc(b, count * sizeof *a->ints);
    memcpy(a->ints, v, count * sizeof *v);
}

static void *mb_pack(mb *b, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(&b->model);
    void *buf = malloc(*size ? *size : 1);
    assert_non_null(buf);
    assert_int_equal(onnx__model_proto__pack(&b->model, buf), *size);
    return buf;
}

/* Packs and loads b on the CPU backend; fails the test with the library's
 * message when loading fails. */
static sprun_model *mb_load(mb *b, int optimize)
{
    size_t size;
    void *buf = mb_pack(b, &size);
    sprun_options *opt = NULL;
    assert_int_equal(sprun_options_create(&opt), SPRUN_OK);
    assert_int_equal(sprun_options_set_backend(opt, SPRUN_BACKEND_CPU), SPRUN_OK);
    assert_int_equal(sprun_options_set_threads(opt, 2), SPRUN_OK);
    assert_int_equal(sprun_options_set_optimize(opt, optimize), SPRUN_OK);
    sprun_model *m = NULL;
    sprun_code rc = sprun_model_load_buffer(buf, size, opt, &m);
    free(buf);
    sprun_options_destroy(opt);
    if (rc != SPRUN_OK) {
        print_error("load failed: %s: %s\n", sprun_code_name(rc), sprun_last_error());
        fail();
    }
    assert_non_null(m);
    return m;
}

static sprun_tensor f32_tensor(const char *name, int rank, const int64_t *dims, float *data)
{
    sprun_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = SPRUN_DTYPE_FLOAT;
    t.rank = rank;
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        t.dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    t.data = data;
    t.nbytes = n * sizeof(float);
    return t;
}

/* Runs model m once on inputs and copies output 0 into a malloc'ed array
 * (*count elements); the session's plan stats go to *st when not NULL. */
static float *run_copy(const sprun_model *m, const sprun_tensor *inputs, size_t n_inputs, size_t *count,
                       sprun_plan_stats *st)
{
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    sprun_code rc = sprun_session_run(s, inputs, n_inputs);
    if (rc != SPRUN_OK) {
        print_error("run failed: %s: %s\n", sprun_code_name(rc), sprun_last_error());
        fail();
    }
    sprun_tensor out;
    assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
    assert_int_equal(out.dtype, SPRUN_DTYPE_FLOAT);
    *count = out.nbytes / sizeof(float);
    float *copy = malloc(out.nbytes ? out.nbytes : 1);
    assert_non_null(copy);
    memcpy(copy, out.data, out.nbytes);
    if (st)
        assert_int_equal(sprun_session_plan_stats(s, st), SPRUN_OK);
    sprun_session_destroy(s);
    return copy;
}

/* Loads b optimised and not, runs both on the same inputs, and checks that
 * the outputs agree; returns the optimised plan's stats in *opt_st and the
 * unoptimised ones in *ref_st. */
static void compare_optimized(mb *b, const sprun_tensor *inputs, size_t n_inputs, sprun_plan_stats *opt_st,
                              sprun_plan_stats *ref_st)
{
    sprun_model *mo = mb_load(b, 1), *mr = mb_load(b, 0);
    size_t no, nr;
    float *yo = run_copy(mo, inputs, n_inputs, &no, opt_st);
    float *yr = run_copy(mr, inputs, n_inputs, &nr, ref_st);
    assert_int_equal(no, nr);
    assert_close(yo, yr, no, 1e-4f);
    free(yo);
    free(yr);
    sprun_model_destroy(mo);
    sprun_model_destroy(mr);
}

#define F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64
#define DIMS(...) ((const int64_t[]){__VA_ARGS__})

/* ------------------------------------------------------------------------ */
/* IR                                                                        */
/* ------------------------------------------------------------------------ */

static int input_value(sp_graph *g, const char *name, int rank, const int64_t *dims)
{
    sp_err err = {0};
    int v = sp_graph_value(g, name, &err);
    assert_true(v >= 0);
    g->values[v].kind = SP_VAL_INPUT;
    g->values[v].dtype = SPRUN_DTYPE_FLOAT;
    g->values[v].shape = sp_shape_make(rank, dims);
    g->inputs = realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof *g->inputs);
    assert_non_null(g->inputs);
    g->inputs[g->n_inputs++] = v;
    return v;
}

static void mark_output(sp_graph *g, int v)
{
    g->outputs = realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof *g->outputs);
    assert_non_null(g->outputs);
    g->outputs[g->n_outputs++] = v;
    g->values[v].is_output = 1;
}

static int const_f32(sp_graph *g, const char *name, int rank, const int64_t *dims, const float *data)
{
    sp_err err = {0};
    int v = sp_graph_value(g, name, &err);
    assert_true(v >= 0);
    sp_shape s = sp_shape_make(rank, dims);
    size_t bytes = (size_t)sp_shape_numel(&s) * sizeof(float);
    float *copy = malloc(bytes ? bytes : 1);
    assert_non_null(copy);
    memcpy(copy, data, bytes);
    sp_value_set_const(&g->values[v], SPRUN_DTYPE_FLOAT, &s, copy, bytes, 1);
    return v;
}

static int add_node(sp_graph *g, const char *name, const char *op, const int *in, int n_in, const int *out, int n_out)
{
    sp_err err = {0};
    int ni = sp_graph_add_node(g, name, op, "", in, n_in, out, n_out, &err);
    assert_true(ni >= 0);
    return ni;
}

static void test_ir_values(void **state)
{
    (void)state;
    sp_graph g;
    sp_graph_init(&g);
    sp_err err = {0};
    int a = sp_graph_value(&g, "a", &err);
    assert_true(a >= 0);
    assert_int_equal(sp_graph_value(&g, "a", &err), a); /* found, not created twice */
    assert_int_equal(g.n_values, 1);
    assert_int_equal(g.values[a].shape.rank, -1);
    assert_int_equal(g.values[a].producer, -1);
    assert_int_equal(g.values[a].kind, SP_VAL_ACT);
    assert_int_equal(sp_graph_value(&g, "", &err), -1); /* absent optional */
    assert_int_equal(sp_graph_value(&g, NULL, &err), -1);
    assert_int_equal(g.n_values, 1);
    assert_int_equal(sp_graph_find(&g, "a"), a);
    assert_int_equal(sp_graph_find(&g, "nope"), -1);

    /* Unique names derived from a base; every one findable afterwards. */
    int t0 = sp_graph_new_value(&g, "t", &err);
    int t1 = sp_graph_new_value(&g, "t", &err);
    int t2 = sp_graph_new_value(&g, "t", &err);
    int a1 = sp_graph_new_value(&g, "a", &err);
    int v0 = sp_graph_new_value(&g, NULL, &err);
    assert_true(t0 >= 0 && t1 >= 0 && t2 >= 0 && a1 >= 0 && v0 >= 0);
    assert_string_equal(g.values[t0].name, "t");
    assert_string_equal(g.values[t1].name, "t_1");
    assert_string_equal(g.values[t2].name, "t_2");
    assert_string_equal(g.values[a1].name, "a_1");
    assert_int_equal(sp_graph_find(&g, "t_2"), t2);
    for (int i = 0; i < g.n_values; i++)
        for (int j = i + 1; j < g.n_values; j++)
            assert_string_not_equal(g.values[i].name, g.values[j].name);

    /* Many values: the table grows and the index keeps up. */
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "many%d", i);
        int v = sp_graph_value(&g, name, &err);
        assert_int_equal(v, g.n_values - 1);
    }
    for (int i = 0; i < 500; i += 37) {
        snprintf(name, sizeof name, "many%d", i);
        int v = sp_graph_find(&g, name);
        assert_true(v >= 0);
        assert_string_equal(g.values[v].name, name);
    }

    /* Nodes: strings copied, arrays copied, producer set, op looked up. */
    int x = sp_graph_value(&g, "x", &err), y = sp_graph_value(&g, "y", &err), z = sp_graph_value(&g, "z", &err);
    int in[2] = {x, -1}, out[1] = {y};
    char opname[8] = "Relu";
    int n0 = sp_graph_add_node(&g, "r0", opname, "", in, 2, out, 1, &err);
    opname[0] = 'X';
    in[0] = 12345;
    assert_true(n0 >= 0);
    assert_string_equal(g.nodes[n0].op_type, "Relu");
    assert_int_equal(g.nodes[n0].in[0], x);
    assert_int_equal(g.nodes[n0].in[1], -1);
    assert_int_equal(g.values[y].producer, n0);
    assert_non_null(g.nodes[n0].op);
    assert_int_equal(g.nodes[n0].fusion.residual_input, -1);
    assert_int_equal(g.nodes[n0].dead, 0);
    int n1 = sp_graph_add_node(&g, "u", "NoSuchOp", "", &y, 1, &z, 1, &err);
    assert_true(n1 >= 0);
    assert_null(g.nodes[n1].op);
    int n2 = sp_graph_add_node(&g, "c", "Relu", "com.example", &z, 1, &a1, 1, &err);
    assert_null(g.nodes[n2].op); /* other domains are never the default op */
    int n3 = sp_graph_add_node(&g, NULL, "Relu", NULL, &z, 1, &t0, 1, &err);
    assert_string_equal(g.nodes[n3].name, "");
    assert_string_equal(g.nodes[n3].domain, "");
    assert_non_null(sp_node_in(&g, &g.nodes[n0], 0));
    assert_null(sp_node_in(&g, &g.nodes[n0], 1)); /* absent optional */
    assert_null(sp_node_in(&g, &g.nodes[n0], 2)); /* past the end */
    assert_null(sp_node_in(&g, &g.nodes[n0], -1));
    assert_ptr_equal(sp_node_out(&g, &g.nodes[n0], 0), &g.values[y]);
    assert_null(sp_node_const(&g, &g.nodes[n0], 0)); /* x is no constant */

    /* Constants: set_const replaces an owned payload without leaking. */
    float *p1 = malloc(4 * sizeof *p1), *p2 = malloc(2 * sizeof *p2);
    assert_non_null(p1);
    assert_non_null(p2);
    sp_shape s4 = sp_shape_make(1, DIMS(4)), s2 = sp_shape_make(1, DIMS(2));
    sp_value_set_const(&g.values[x], SPRUN_DTYPE_FLOAT, &s4, p1, 4 * sizeof *p1, 1);
    assert_ptr_equal(sp_node_const(&g, &g.nodes[n0], 0), p1);
    sp_value_set_const(&g.values[x], SPRUN_DTYPE_FLOAT, &s2, p2, 2 * sizeof *p2, 1);
    assert_int_equal(g.values[x].kind, SP_VAL_CONST);
    assert_int_equal(g.values[x].nbytes, 2 * sizeof(float));
    assert_int_equal(g.values[x].shape.d[0], 2);
    sp_graph_free(&g);
    sp_graph_free(&g); /* freed graphs are zeroed: freeing again is harmless */
    sp_graph_free(NULL);
}

static void test_ir_attributes(void **state)
{
    (void)state;
    sp_graph g;
    sp_graph_init(&g);
    int x = sp_graph_value(&g, "x", NULL), y = sp_graph_value(&g, "y", NULL);
    int ni = add_node(&g, "n", "Conv", &x, 1, &y, 1); /* g.nodes may move: index first */
    sp_node *n = &g.nodes[ni];
    const int64_t pads[4] = {1, 2, 3, 4};
    const float scales[3] = {0.5f, 1.5f, -2.f};
    assert_int_equal(sp_node_set_attr_int(n, "group", 3), SPRUN_OK);
    assert_int_equal(sp_node_set_attr_float(n, "alpha", 0.25f), SPRUN_OK);
    assert_int_equal(sp_node_set_attr_string(n, "auto_pad", "SAME_UPPER"), SPRUN_OK);
    assert_int_equal(sp_node_set_attr_ints(n, "pads", pads, 4), SPRUN_OK);
    assert_int_equal(sp_node_set_attr_floats(n, "scales", scales, 3), SPRUN_OK);
    assert_int_equal(sp_node_set_attr_ints(n, "empty", NULL, 0), SPRUN_OK);
    assert_int_equal(n->n_attr, 6);

    assert_int_equal(sp_attr_int(n, "group", 1), 3);
    assert_int_equal(sp_attr_int(n, "missing", 7), 7);
    assert_int_equal(sp_attr_int(n, "alpha", 9), 9); /* wrong type: default */
    assert_true(sp_attr_float(n, "alpha", 0.f) == 0.25f);
    assert_true(sp_attr_float(n, "group", 0.f) == 3.f); /* an INT read as float */
    assert_true(sp_attr_float(n, "auto_pad", -1.f) == -1.f);
    assert_string_equal(sp_attr_string(n, "auto_pad", "NOTSET"), "SAME_UPPER");
    assert_string_equal(sp_attr_string(n, "missing", "NOTSET"), "NOTSET");
    assert_string_equal(sp_attr_string(n, "group", "def"), "def");
    const int64_t *iv;
    const float *fv;
    assert_int_equal(sp_attr_ints(n, "pads", &iv), 4);
    assert_memory_equal(iv, pads, sizeof pads);
    assert_int_equal(sp_attr_ints(n, "empty", &iv), 0);
    assert_int_equal(sp_attr_ints(n, "missing", &iv), -1);
    assert_null(iv);
    assert_int_equal(sp_attr_ints(n, "scales", &iv), -1); /* FLOATS is not INTS */
    assert_int_equal(sp_attr_floats(n, "scales", &fv), 3);
    assert_memory_equal(fv, scales, sizeof scales);
    assert_null(sp_attr_tensor(n, "pads"));
    const sp_attr *a = sp_attr_find(n, "auto_pad");
    assert_non_null(a);
    assert_int_equal(a->type, SP_ATTR_STRING);
    assert_int_equal(a->s_len, strlen("SAME_UPPER"));

    /* Setting an attribute again replaces it (type included), no duplicate. */
    assert_int_equal(sp_node_set_attr_ints(n, "group", pads, 2), SPRUN_OK);
    assert_int_equal(sp_node_set_attr_string(n, "auto_pad", "VALID"), SPRUN_OK);
    assert_int_equal(n->n_attr, 6);
    assert_int_equal(sp_attr_int(n, "group", -1), -1);
    assert_int_equal(sp_attr_ints(n, "group", &iv), 2);
    assert_string_equal(sp_attr_string(n, "auto_pad", ""), "VALID");
    sp_graph_free(&g);
}

static void test_ir_clone(void **state)
{
    (void)state;
    sp_graph g;
    sp_graph_init(&g);
    g.opset = 13;
    int x = input_value(&g, "x", 2, DIMS(-1, 4));
    g.values[x].dim_param[0] = sp_strdup("batch");
    int w = const_f32(&g, "w", 1, DIMS(4), (const float[]){1, 2, 3, 4});
    int y = sp_graph_value(&g, "y", NULL), z = sp_graph_value(&g, "z", NULL);
    int ni = add_node(&g, "mul", "Mul", (const int[]){x, w}, 2, &y, 1);
    add_node(&g, "relu", "Relu", &y, 1, &z, 1);
    assert_int_equal(sp_node_set_attr_int(&g.nodes[ni], "k", 5), SPRUN_OK);
    mark_output(&g, z);

    sp_graph c;
    sp_err err = {0};
    assert_int_equal(sp_graph_clone(&c, &g, &err), SPRUN_OK);
    assert_int_equal(c.n_values, g.n_values);
    assert_int_equal(c.n_nodes, g.n_nodes);
    assert_int_equal(c.n_inputs, 1);
    assert_int_equal(c.n_outputs, 1);
    assert_int_equal(c.opset, 13);
    assert_int_equal(c.borrowed_attrs, 1);
    /* constant payloads shared, not owned; names and arrays copied */
    assert_ptr_equal(c.values[w].data, g.values[w].data);
    assert_int_equal(c.values[w].owns_data, 0);
    assert_ptr_not_equal(c.values[w].name, g.values[w].name);
    assert_string_equal(c.values[x].dim_param[0], "batch");
    assert_ptr_not_equal(c.values[x].dim_param[0], g.values[x].dim_param[0]);
    assert_ptr_not_equal(c.nodes[ni].in, g.nodes[ni].in);
    assert_int_equal(sp_graph_find(&c, "y"), y);
    assert_int_equal(sp_attr_int(&c.nodes[ni], "k", 0), 5);
    assert_ptr_equal(c.nodes[ni].op, g.nodes[ni].op);

    /* Specialising the clone leaves the source alone. */
    c.values[x].shape.d[0] = 8;
    c.nodes[ni].dead = 1;
    c.nodes[ni].in[0] = w;
    int extra = sp_graph_new_value(&c, "y", &err);
    assert_true(extra >= g.n_values);
    assert_int_equal(sp_graph_find(&g, c.values[extra].name), -1);
    assert_int_equal(g.values[x].shape.d[0], -1);
    assert_int_equal(g.nodes[ni].dead, 0);
    assert_int_equal(g.nodes[ni].in[0], x);

    /* A clone of a clone, then free in any order: the payload stays valid
     * until the source goes (ASan checks the rest). */
    sp_graph c2;
    assert_int_equal(sp_graph_clone(&c2, &c, &err), SPRUN_OK);
    sp_graph_free(&c);
    assert_true(((const float *)c2.values[w].data)[3] == 4.f);
    sp_graph_free(&c2);
    sp_graph_free(&g);
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                    */
/* ------------------------------------------------------------------------ */

static void test_shape_broadcast(void **state)
{
    (void)state;
    static const struct {
        int ra;
        int64_t a[4];
        int rb;
        int64_t b[4];
        int ok, ro;
        int64_t o[4];
    } cases[] = {
        {2, {3, 4}, 1, {4}, 1, 2, {3, 4}},
        {1, {4}, 2, {3, 4}, 1, 2, {3, 4}},
        {3, {2, 1, 5}, 2, {3, 1}, 1, 3, {2, 3, 5}},
        {0, {0}, 2, {2, 3}, 1, 2, {2, 3}},          /* scalar */
        {2, {2, 3}, 0, {0}, 1, 2, {2, 3}},
        {0, {0}, 0, {0}, 1, 0, {0}},
        {2, {0, 3}, 2, {1, 3}, 1, 2, {0, 3}},       /* empty dims broadcast against 1 */
        {4, {1, 1, 1, 1}, 1, {7}, 1, 4, {1, 1, 1, 7}},
        {4, {8, 1, 6, 1}, 3, {7, 1, 5}, 1, 4, {8, 7, 6, 5}},
        {1, {3}, 1, {4}, 0, 0, {0}},
        {2, {2, 3}, 2, {3, 3}, 0, 0, {0}},
        {2, {0, 3}, 2, {2, 3}, 0, 0, {0}},          /* 0 is not 1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_shape a = sp_shape_make(cases[i].ra, cases[i].a), b = sp_shape_make(cases[i].rb, cases[i].b), o;
        memset(&o, 0x5a, sizeof o);
        sp_err err = {0};
        int rc = sp_shape_broadcast(&a, &b, &o, &err);
        if (cases[i].ok) {
            assert_int_equal(rc, SPRUN_OK);
            sp_shape want = sp_shape_make(cases[i].ro, cases[i].o);
            assert_true(sp_shape_equal(&o, &want));
        } else {
            assert_int_equal(rc, SPRUN_ERR_SHAPE);
            assert_int_equal(err.code, SPRUN_ERR_SHAPE);
            char sa[64], sb[64];
            assert_contains(err.msg, sp_shape_str(&a, sa, sizeof sa));
            assert_contains(err.msg, sp_shape_str(&b, sb, sizeof sb));
        }
    }
    /* NULL err is allowed */
    sp_shape a = sp_shape_make(1, DIMS(3)), b = sp_shape_make(1, DIMS(4)), o;
    assert_int_equal(sp_shape_broadcast(&a, &b, &o, NULL), SPRUN_ERR_SHAPE);

    /* numel, known, str */
    char buf[64];
    sp_shape s = sp_shape_make(4, DIMS(1, 3, 224, 224));
    assert_int_equal(sp_shape_numel(&s), 150528);
    assert_string_equal(sp_shape_str(&s, buf, sizeof buf), "1x3x224x224");
    s.d[0] = -1;
    assert_int_equal(sp_shape_numel(&s), -1);
    assert_false(sp_shape_known(&s));
    assert_string_equal(sp_shape_str(&s, buf, sizeof buf), "?x3x224x224");
    s.rank = -1;
    assert_string_equal(sp_shape_str(&s, buf, sizeof buf), "?");
    s = sp_shape_make(0, NULL);
    assert_int_equal(sp_shape_numel(&s), 1);
    assert_true(sp_shape_known(&s));
    assert_string_equal(sp_shape_str(&s, buf, sizeof buf), "scalar");
    s = sp_shape_make(8, DIMS(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000));
    char tiny[6];
    sp_shape_str(&s, tiny, sizeof tiny); /* truncated, always terminated */
    assert_true(strlen(tiny) < sizeof tiny);
    assert_memory_equal(tiny, "1000", 4);
    assert_int_equal(sp_axis(-1, 4), 3);
    assert_int_equal(sp_axis(4, 4), -1);
    assert_int_equal(sp_axis(-5, 4), -1);
    assert_int_equal(sp_axis(0, 0), 0);
}

/* ------------------------------------------------------------------------ */
/* Memory planner                                                            */
/* ------------------------------------------------------------------------ */

static void check_memplan(const sp_buf_req *bufs, int n, size_t align)
{
    int64_t *off = malloc((size_t)(n > 0 ? n : 1) * sizeof *off);
    assert_non_null(off);
    size_t total = 12345;
    sp_err err = {0};
    assert_int_equal(sp_memplan_assign(bufs, n, align, off, &total, &err), SPRUN_OK);
    int max_step = 0;
    size_t sum = 0, biggest = 0;
    for (int i = 0; i < n; i++) {
        if (bufs[i].size == 0)
            continue;
        assert_true(off[i] >= 0);
        assert_int_equal((size_t)off[i] % align, 0);
        assert_true((size_t)off[i] + bufs[i].size <= total);
        if (bufs[i].last > max_step)
            max_step = bufs[i].last;
        sum += (bufs[i].size + align - 1) / align * align;
        if (bufs[i].size > biggest)
            biggest = bufs[i].size;
    }
    /* Brute force: buffers alive at a common step share no byte. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!bufs[i].size || !bufs[j].size)
                continue;
            int live_together = bufs[i].first <= bufs[j].last && bufs[j].first <= bufs[i].last;
            int disjoint = (size_t)off[i] + bufs[i].size <= (size_t)off[j] ||
                           (size_t)off[j] + bufs[j].size <= (size_t)off[i];
            if (live_together && !disjoint) {
                print_error("buffers %d [%zu B, steps %d-%d @%lld] and %d [%zu B, steps %d-%d @%lld] overlap\n", i,
                            bufs[i].size, bufs[i].first, bufs[i].last, (long long)off[i], j, bufs[j].size,
                            bufs[j].first, bufs[j].last, (long long)off[j]);
                fail();
            }
        }
    /* Lower bound: the bytes live at the busiest step; upper: no reuse. */
    for (int t = 0; t <= max_step; t++) {
        size_t live = 0;
        for (int i = 0; i < n; i++)
            if (bufs[i].first <= t && t <= bufs[i].last)
                live += bufs[i].size;
        assert_true(total >= live);
    }
    assert_true(total >= biggest);
    assert_true(total <= sum);
    free(off);
}

static void test_memplan_random(void **state)
{
    (void)state;
    /* Nothing to place. */
    size_t total = 99;
    int64_t dummy;
    assert_int_equal(sp_memplan_assign(NULL, 0, 64, &dummy, &total, NULL), SPRUN_OK);
    assert_int_equal(total, 0);

    /* A chain (each buffer lives two steps): only two need to coexist. */
    sp_buf_req chain[10];
    for (int i = 0; i < 10; i++)
        chain[i] = (sp_buf_req){.size = 1000, .first = i, .last = i + 1};
    check_memplan(chain, 10, 64);
    int64_t off[10];
    assert_int_equal(sp_memplan_assign(chain, 10, 64, off, &total, NULL), SPRUN_OK);
    assert_int_equal(total, 2 * 1024);

    /* All alive at once: no reuse possible, exact sum. */
    sp_buf_req all[5];
    for (int i = 0; i < 5; i++)
        all[i] = (sp_buf_req){.size = (size_t)(i + 1) * 100, .first = 0, .last = 3};
    check_memplan(all, 5, 1);
    assert_int_equal(sp_memplan_assign(all, 5, 1, off, &total, NULL), SPRUN_OK);
    assert_int_equal(total, 1500);

    /* Random lifetimes and sizes, zero sizes and equal sizes included. */
    sp_buf_req bufs[80];
    static const size_t aligns[] = {1, 16, 64, 256};
    for (int iter = 0; iter < 400; iter++) {
        int n = rng_int(1, 80), steps = rng_int(1, 50);
        for (int i = 0; i < n; i++) {
            int first = rng_int(0, steps), len = rng_int(0, iter % 2 ? 3 : 20);
            int kind = rng_int(0, 9);
            size_t size = kind == 0 ? 0 : kind == 1 ? 4096 : (size_t)rng_int(1, kind < 5 ? 100 : 100000);
            bufs[i] = (sp_buf_req){.size = size, .first = first, .last = first + len};
        }
        check_memplan(bufs, n, aligns[iter % 4]);
    }
}

/* ------------------------------------------------------------------------ */
/* Passes on hand-built graphs                                               */
/* ------------------------------------------------------------------------ */

/* Conv(x, W[, B]) -> BatchNormalization -> (output or other consumer). */
typedef struct bn_graph {
    sp_graph g;
    int conv, bn, x, w, b, y, z;
} bn_graph;

static void bn_graph_build(bn_graph *t, int with_bias)
{
    sp_graph *g = &t->g;
    sp_graph_init(g);
    float w[3 * 2 * 1 * 1] = {1, 2, -1, 0.5f, 3, -2}, b[3] = {0.1f, -0.2f, 0.3f};
    float scale[3] = {2, 0.5f, -1}, beta[3] = {1, 0, -1}, mean[3] = {0.5f, -1, 2}, var[3] = {4, 0.25f, 1};
    t->x = input_value(g, "x", 4, DIMS(1, 2, 3, 3));
    t->w = const_f32(g, "W", 4, DIMS(3, 2, 1, 1), w);
    t->b = with_bias ? const_f32(g, "B", 1, DIMS(3), b) : -1;
    int s = const_f32(g, "scale", 1, DIMS(3), scale), be = const_f32(g, "beta", 1, DIMS(3), beta);
    int me = const_f32(g, "mean", 1, DIMS(3), mean), va = const_f32(g, "var", 1, DIMS(3), var);
    t->y = sp_graph_value(g, "y", NULL);
    t->z = sp_graph_value(g, "z", NULL);
    int cin[3] = {t->x, t->w, t->b};
    t->conv = add_node(g, "conv", "Conv", cin, with_bias ? 3 : 2, &t->y, 1);
    t->bn = add_node(g, "bn", "BatchNormalization", (const int[]){t->y, s, be, me, va}, 5, &t->z, 1);
    assert_int_equal(sp_node_set_attr_float(&g->nodes[t->bn], "epsilon", 1e-3f), SPRUN_OK);
    mark_output(g, t->z);
}

static void test_pass_fold_batchnorm_graph(void **state)
{
    (void)state;
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        bn_graph t;
        bn_graph_build(&t, with_bias);
        sp_graph *g = &t.g;
        const float *w0 = g->values[t.w].data;
        float w_orig[6];
        memcpy(w_orig, w0, sizeof w_orig);
        int folded = -1;
        sp_err err = {0};
        assert_int_equal(sp_pass_fold_batchnorm(g, &folded, &err), SPRUN_OK);
        assert_int_equal(folded, 1);
        const sp_node *conv = &g->nodes[t.conv];
        assert_true(g->nodes[t.bn].dead);
        assert_false(conv->dead);
        assert_int_equal(conv->out[0], t.z); /* conv now writes the BN output */
        assert_int_equal(g->values[t.z].producer, t.conv);
        assert_int_equal(conv->fusion.n_fused, 1);
        assert_int_equal(conv->n_in, 3); /* a bias is added when there was none */
        const sp_value *nw = &g->values[conv->in[1]], *nb = &g->values[conv->in[2]];
        assert_int_equal(nw->kind, SP_VAL_CONST);
        assert_true(sp_shape_equal(&nw->shape, &g->values[t.w].shape));
        assert_int_equal(nb->shape.rank, 1);
        assert_int_equal(nb->shape.d[0], 3);
        /* The source weight is untouched (a model's weights may be shared). */
        assert_memory_equal(g->values[t.w].data, w_orig, sizeof w_orig);
        const float scale[3] = {2, 0.5f, -1}, beta[3] = {1, 0, -1}, mean[3] = {0.5f, -1, 2}, var[3] = {4, 0.25f, 1};
        const float b[3] = {0.1f, -0.2f, 0.3f};
        for (int o = 0; o < 3; o++) {
            double s = scale[o] / sqrt(var[o] + 1e-3);
            for (int j = 0; j < 2; j++)
                assert_true(fabs(((const float *)nw->data)[o * 2 + j] - w_orig[o * 2 + j] * s) < 1e-5);
            double want_b = ((with_bias ? b[o] : 0.0) - mean[o]) * s + beta[o];
            assert_true(fabs(((const float *)nb->data)[o] - want_b) < 1e-5);
        }
        sp_graph_free(g);
    }
}

static void test_pass_fold_batchnorm_refusals(void **state)
{
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        bn_graph t;
        bn_graph_build(&t, 1);
        sp_graph *g = &t.g;
        switch (variant) {
        case 0: /* the conv output has a second consumer */
            add_node(g, "other", "Relu", &t.y, 1, (const int[]){sp_graph_value(g, "o2", NULL)}, 1);
            break;
        case 1: /* training mode */
            assert_int_equal(sp_node_set_attr_int(&g->nodes[t.bn], "training_mode", 1), SPRUN_OK);
            break;
        case 2: /* the conv output is itself a graph output */
            mark_output(g, t.y);
            break;
        case 3: /* the weight is not a constant */
            g->nodes[t.conv].in[1] = input_value(g, "Wdyn", 4, DIMS(3, 2, 1, 1));
            break;
        }
        int folded = -1;
        assert_int_equal(sp_pass_fold_batchnorm(g, &folded, NULL), SPRUN_OK);
        assert_int_equal(folded, 0);
        assert_false(g->nodes[t.bn].dead);
        assert_int_equal(g->nodes[t.conv].out[0], t.y);
        sp_graph_free(g);
    }
}

static void test_pass_remove_dead(void **state)
{
    (void)state;
    sp_graph g;
    sp_graph_init(&g);
    int x = input_value(&g, "x", 1, DIMS(4));
    int a = sp_graph_value(&g, "a", NULL), b = sp_graph_value(&g, "b", NULL), c = sp_graph_value(&g, "c", NULL);
    int y = sp_graph_value(&g, "y", NULL), s0 = sp_graph_value(&g, "s0", NULL), s1 = sp_graph_value(&g, "s1", NULL);
    int u = sp_graph_value(&g, "u", NULL), k = sp_graph_value(&g, "k", NULL);
    int n_a = add_node(&g, "na", "Relu", &x, 1, &a, 1);     /* feeds only the dead chain */
    int n_b = add_node(&g, "nb", "Neg", &a, 1, &b, 1);      /* dead chain */
    int n_c = add_node(&g, "nc", "Abs", &b, 1, &c, 1);      /* unused end of the chain */
    int n_y = add_node(&g, "ny", "Sigmoid", &x, 1, &y, 1);  /* graph output */
    int n_split = add_node(&g, "split", "Split", &y, 1, (const int[]){s0, s1}, 2); /* one output used */
    int n_k = add_node(&g, "nk", "Relu", &s1, 1, &k, 1);    /* graph output */
    int n_u = add_node(&g, "nu", "Tanh", &s0, 1, &u, 1);    /* unused */
    int n_opt = add_node(&g, "opt", "Relu", (const int[]){-1}, 1, (const int[]){-1}, 1); /* no outputs */
    mark_output(&g, y);
    mark_output(&g, k);
    sp_pass_remove_dead(&g);
    assert_true(g.nodes[n_a].dead);
    assert_true(g.nodes[n_b].dead);
    assert_true(g.nodes[n_c].dead);
    assert_true(g.nodes[n_u].dead);
    assert_true(g.nodes[n_opt].dead);
    assert_false(g.nodes[n_y].dead);
    assert_false(g.nodes[n_split].dead);
    assert_false(g.nodes[n_k].dead);
    /* Idempotent, and a node already dead stays dead. */
    sp_pass_remove_dead(&g);
    assert_true(g.nodes[n_a].dead);
    assert_false(g.nodes[n_k].dead);
    sp_graph_free(&g);
}

#ifdef SPRUN_HAVE_CUDA
#include "runtime/cuda/tune_memo.h"
/* The CUDA backend's process-wide memo of tuning decisions (plain C). */
static void test_cuda_tune_memo(void **state)
{
    (void)state;
    int c = -7;
    assert_int_equal(sp_cuda_tune_memo_get("test|nothing", &c), 0);
    assert_int_equal(c, -7);
    char key[64];
    for (int i = 0; i < 200; i++) { /* past the first growth */
        snprintf(key, sizeof key, "test|layer%d", i);
        sp_cuda_tune_memo_put(key, i * 3);
    }
    assert_int_equal(sp_cuda_tune_memo_get("test|layer137", &c), 1);
    assert_int_equal(c, 411);
    sp_cuda_tune_memo_put("test|layer137", 5); /* replaces */
    assert_int_equal(sp_cuda_tune_memo_get("test|layer137", &c), 1);
    assert_int_equal(c, 5);
}
#endif

/* Builds MatMul -> Add(bias) -> x*0.5*(1+erf(x/sqrt2)) (add_one: the
 * constant added to erf, 1 for a real GELU). Returns the MatMul's index. */
static int gelu_graph(sp_graph *g, float add_one, int *div_node, int *y_out)
{
    const float w[4] = {1, 2, 3, 4}, bias[2] = {0.5f, -0.5f};
    const float sqrt2 = 1.41421356f, half = 0.5f;
    int x = input_value(g, "x", 2, DIMS(1, 2));
    int wv = const_f32(g, "w", 2, DIMS(2, 2), w), bv = const_f32(g, "b", 1, DIMS(2), bias);
    int c2 = const_f32(g, "sqrt2", 0, NULL, &sqrt2), c1 = const_f32(g, "one", 0, NULL, &add_one);
    int ch = const_f32(g, "half", 0, NULL, &half);
    int h = sp_graph_value(g, "h", NULL), hb = sp_graph_value(g, "hb", NULL), d = sp_graph_value(g, "d", NULL);
    int e = sp_graph_value(g, "e", NULL), a = sp_graph_value(g, "a", NULL), m = sp_graph_value(g, "m", NULL);
    int y = sp_graph_value(g, "y", NULL);
    int mm = add_node(g, "mm", "MatMul", (const int[]){x, wv}, 2, &h, 1);
    add_node(g, "bias", "Add", (const int[]){h, bv}, 2, &hb, 1);
    *div_node = add_node(g, "div", "Div", (const int[]){hb, c2}, 2, &d, 1);
    add_node(g, "erf", "Erf", &d, 1, &e, 1);
    add_node(g, "add1", "Add", (const int[]){e, c1}, 2, &a, 1);
    add_node(g, "mulx", "Mul", (const int[]){hb, a}, 2, &m, 1);
    add_node(g, "half", "Mul", (const int[]){m, ch}, 2, &y, 1);
    mark_output(g, y);
    *y_out = y;
    return mm;
}

static void test_pass_fuse_gelu(void **state)
{
    (void)state;
    sp_graph g;
    sp_graph_init(&g);
    int div, y, fused = -1;
    sp_err err = {0};
    int mm = gelu_graph(&g, 1.f, &div, &y);
    assert_int_equal(sp_pass_epilogue_act(&g, mm), SP_ACT_NONE); /* five nodes: no activation yet */
    assert_int_equal(sp_pass_fuse_gelu(&g, &fused, &err), SPRUN_OK);
    assert_int_equal(fused, 1);
    const sp_node *n = &g.nodes[div];
    assert_string_equal(n->op_type, "Gelu");
    assert_non_null(n->op);
    assert_int_equal(n->n_in, 1);
    assert_int_equal(n->out[0], y);
    assert_int_equal(g.values[y].producer, div);
    for (int i = div + 1; i < g.n_nodes; i++)
        assert_true(g.nodes[i].dead);
    /* what the plan's epilogue fusion will fold into the MatMul */
    assert_int_equal(sp_pass_epilogue_act(&g, mm), SP_ACT_GELU);
    sp_graph_free(&g);

    /* not GELU: 2 + erf(...) */
    sp_graph_init(&g);
    mm = gelu_graph(&g, 2.f, &div, &y);
    assert_int_equal(sp_pass_fuse_gelu(&g, &fused, &err), SPRUN_OK);
    assert_int_equal(fused, 0);
    assert_string_equal(g.nodes[div].op_type, "Div");
    for (int i = 0; i < g.n_nodes; i++)
        assert_false(g.nodes[i].dead);
    sp_graph_free(&g);
}

/* ------------------------------------------------------------------------ */
/* Passes through the public API: optimised == unoptimised                   */
/* ------------------------------------------------------------------------ */

static void test_api_batchnorm_folding(void **state)
{
    (void)state;
    mb *b = mb_create(13);
    float w[4 * 3 * 3 * 3], bias[4], scale[4], beta[4], mean[4], var[4];
    fill_random(w, 108);
    fill_random(bias, 4);
    fill_random(scale, 4);
    fill_random(beta, 4);
    fill_random(mean, 4);
    for (int i = 0; i < 4; i++)
        var[i] = 0.1f + fabsf(rng_float());
    mb_input(b, "x", F32, 4, DIMS(-1, 3, 6, 6));
    mb_output(b, "y", F32);
    mb_init_f32(b, "W", 4, DIMS(4, 3, 3, 3), w);
    mb_init_f32(b, "B", 1, DIMS(4), bias);
    mb_init_f32(b, "scale", 1, DIMS(4), scale);
    mb_init_f32(b, "beta", 1, DIMS(4), beta);
    mb_init_f32(b, "mean", 1, DIMS(4), mean);
    mb_init_f32(b, "var", 1, DIMS(4), var);
    Onnx__NodeProto *conv = mb_node(b, "Conv", "conv1", NAMES("x", "W", "B"), NAMES("c"));
    mb_attr_ints(b, conv, "pads", 4, DIMS(1, 1, 1, 1));
    Onnx__NodeProto *bn = mb_node(b, "BatchNormalization", "bn1", NAMES("c", "scale", "beta", "mean", "var"),
                                  NAMES("y"));
    mb_attr_float(b, bn, "epsilon", 1e-3f);

    sprun_model *mo = mb_load(b, 1), *mr = mb_load(b, 0);
    assert_int_equal(sprun_model_node_count(mo), 1);
    assert_int_equal(sprun_model_node_count(mr), 2);
    char desc[256];
    assert_int_equal(sprun_model_node_describe(mo, 0, desc, sizeof desc), SPRUN_OK);
    assert_contains(desc, "conv1");
    assert_contains(desc, "fused");
    assert_int_not_equal(sprun_model_node_describe(mo, 1, desc, sizeof desc), SPRUN_OK);
    sprun_model_destroy(mo);
    sprun_model_destroy(mr);

    float x[2 * 3 * 6 * 6];
    fill_random(x, 216);
    sprun_tensor in = f32_tensor("x", 4, DIMS(2, 3, 6, 6), x);
    sprun_plan_stats so, sr;
    compare_optimized(b, &in, 1, &so, &sr);
    assert_int_equal(so.n_nodes, 1);
    assert_int_equal(sr.n_nodes, 2);
    mb_destroy(b);
}

/* Query/key/value-like MatMuls of one input become one MatMul + bias Add +
 * Split (sp_pass_fuse_parallel_matmuls); a consumer of the first result sits
 * before the second MatMul in the file, so the Split has to be sorted in
 * front of it; a bias-less MatMul of the same input stays apart. */
static void test_api_fuse_parallel_matmuls(void **state)
{
    (void)state;
    mb *b = mb_create(13);
    float wq[16 * 8], wk[16 * 8], wv[16 * 8], wn[16 * 8], bq[8], bk[8], bv[8];
    fill_random(wq, 128);
    fill_random(wk, 128);
    fill_random(wv, 128);
    fill_random(wn, 128);
    fill_random(bq, 8);
    fill_random(bk, 8);
    fill_random(bv, 8);
    mb_input(b, "x", F32, 3, DIMS(-1, 5, 16));
    mb_output(b, "y", F32);
    mb_init_f32(b, "Wq", 2, DIMS(16, 8), wq);
    mb_init_f32(b, "Wk", 2, DIMS(16, 8), wk);
    mb_init_f32(b, "Wv", 2, DIMS(16, 8), wv);
    mb_init_f32(b, "Wn", 2, DIMS(16, 8), wn);
    mb_init_f32(b, "Bq", 1, DIMS(8), bq);
    mb_init_f32(b, "Bk", 1, DIMS(8), bk);
    mb_init_f32(b, "Bv", 1, DIMS(8), bv);
    mb_node(b, "MatMul", "q_mm", NAMES("x", "Wq"), NAMES("qm"));
    mb_node(b, "Add", "q_add", NAMES("qm", "Bq"), NAMES("q"));
    mb_node(b, "Relu", "q_relu", NAMES("q"), NAMES("r"));
    mb_node(b, "MatMul", "k_mm", NAMES("x", "Wk"), NAMES("km"));
    mb_node(b, "Add", "k_add", NAMES("Bk", "km"), NAMES("k"));
    mb_node(b, "MatMul", "v_mm", NAMES("x", "Wv"), NAMES("vm"));
    mb_node(b, "Add", "v_add", NAMES("vm", "Bv"), NAMES("v"));
    mb_node(b, "MatMul", "n_mm", NAMES("x", "Wn"), NAMES("nm"));
    mb_node(b, "Mul", "kv", NAMES("k", "v"), NAMES("p"));
    mb_node(b, "Add", "s1", NAMES("r", "p"), NAMES("s"));
    mb_node(b, "Add", "s2", NAMES("s", "nm"), NAMES("y"));

    sprun_model *mo = mb_load(b, 1), *mr = mb_load(b, 0);
    assert_int_equal(sprun_model_node_count(mr), 11);
    assert_int_equal(sprun_model_node_count(mo), 8); /* fused MatMul, its bias Add, Split, 5 others */
    char desc[256];
    int split = 0;
    for (size_t i = 0; i < sprun_model_node_count(mo); i++)
        if (sprun_model_node_describe(mo, i, desc, sizeof desc) == SPRUN_OK && strstr(desc, "Split"))
            split = 1;
    assert_true(split);
    sprun_model_destroy(mo);
    sprun_model_destroy(mr);

    float x[2 * 5 * 16];
    fill_random(x, 160);
    sprun_tensor in = f32_tensor("x", 3, DIMS(2, 5, 16), x);
    compare_optimized(b, &in, 1, NULL, NULL);
    mb_destroy(b);
}

/* Conv -> Add(residual input) -> Relu fuses into one node. */
static void test_api_fuse_conv_residual_relu(void **state)
{
    (void)state;
    for (int swap = 0; swap <= 1; swap++) {
        mb *b = mb_create(13);
        float w[2 * 2 * 3 * 3], bias[2];
        fill_random(w, 36);
        fill_random(bias, 2);
        mb_input(b, "x", F32, 4, DIMS(1, 2, 5, 5));
        mb_input(b, "r", F32, 4, DIMS(1, 2, 5, 5));
        mb_output(b, "y", F32);
        mb_init_f32(b, "W", 4, DIMS(2, 2, 3, 3), w);
        mb_init_f32(b, "B", 1, DIMS(2), bias);
        Onnx__NodeProto *conv = mb_node(b, "Conv", "conv", NAMES("x", "W", "B"), NAMES("c"));
        mb_attr_ints(b, conv, "pads", 4, DIMS(1, 1, 1, 1));
        if (swap) /* the conv output as the Add's second operand */
            mb_node(b, "Add", "add", NAMES("r", "c"), NAMES("s"));
        else
            mb_node(b, "Add", "add", NAMES("c", "r"), NAMES("s"));
        mb_node(b, "Relu", "relu", NAMES("s"), NAMES("y"));
        float x[50], r[50];
        fill_random(x, 50);
        fill_random(r, 50);
        sprun_tensor in[2] = {f32_tensor("x", 4, DIMS(1, 2, 5, 5), x), f32_tensor("r", 4, DIMS(1, 2, 5, 5), r)};
        sprun_plan_stats so, sr;
        compare_optimized(b, in, 2, &so, &sr);
        assert_int_equal(so.n_nodes, 1);
        assert_int_equal(sr.n_nodes, 3);

        /* The fusion is recorded in the plan's IR for every backend. */
        sprun_model *m = mb_load(b, 1);
        const sprun_tensor *bound[2] = {&in[0], &in[1]};
        sp_plan *p = NULL;
        sp_err err = {0};
        assert_int_equal(sp_plan_build(m, bound, &p, &err), SPRUN_OK);
        assert_int_equal(p->n_order, 1);
        const sp_node *n = &p->g.nodes[p->order[0]];
        assert_string_equal(n->op_type, "Conv");
        assert_int_equal(n->fusion.act, SP_ACT_RELU);
        assert_int_equal(n->fusion.n_fused, 2);
        assert_true(n->fusion.residual_input >= 0 && n->fusion.residual_input < n->n_in);
        assert_string_equal(p->g.values[n->in[n->fusion.residual_input]].name, "r");
        assert_string_equal(p->g.values[n->out[0]].name, "y");
        /* the model's own graph is not changed by planning */
        assert_int_equal(sprun_model_node_count(m), 3);
        sp_plan_free(p);
        sprun_model_destroy(m);
        mb_destroy(b);
    }
}

/* Epilogues that must and must not fuse; every variant must compute the
 * same as the unoptimised graph. */
static void test_api_fuse_epilogue_variants(void **state)
{
    (void)state;
    enum { GEMM_SIGMOID, MATMUL_BIAS_ROW, MATMUL_BIAS_BCAST, RELU_THEN_ADD, CLIP, LATE_RESIDUAL, N_VARIANTS };
    static const int want_nodes[N_VARIANTS] = {1, 1, 2, 2, 1, 4};
    for (int v = 0; v < N_VARIANTS; v++) {
        mb *b = mb_create(13);
        float w[4 * 6], bias[6], col[3 * 1];
        fill_random(w, 24);
        fill_random(bias, 6);
        fill_random(col, 3);
        mb_input(b, "x", F32, 2, DIMS(3, 4));
        mb_output(b, "y", F32);
        mb_init_f32(b, "W", 2, DIMS(4, 6), w);
        switch (v) {
        case GEMM_SIGMOID:
            mb_node(b, "Gemm", "gemm", NAMES("x", "W"), NAMES("g"));
            mb_node(b, "Sigmoid", "sig", NAMES("g"), NAMES("y"));
            break;
        case MATMUL_BIAS_ROW: /* bias along the last dim: fusable on Gemm/MatMul */
            mb_init_f32(b, "bias", 1, DIMS(6), bias);
            mb_node(b, "MatMul", "mm", NAMES("x", "W"), NAMES("g"));
            mb_node(b, "Add", "add", NAMES("g", "bias"), NAMES("y"));
            break;
        case MATMUL_BIAS_BCAST: /* [3, 1] column broadcast: not a residual */
            mb_init_f32(b, "colb", 2, DIMS(3, 1), col);
            mb_node(b, "MatMul", "mm", NAMES("x", "W"), NAMES("g"));
            mb_node(b, "Add", "add", NAMES("g", "colb"), NAMES("y"));
            break;
        case RELU_THEN_ADD: /* act(op) + r is not act(op + r): only the Relu fuses */
            mb_init_f32(b, "bias", 1, DIMS(6), bias);
            mb_node(b, "MatMul", "mm", NAMES("x", "W"), NAMES("g"));
            mb_node(b, "Relu", "relu", NAMES("g"), NAMES("h"));
            mb_node(b, "Add", "add", NAMES("h", "bias"), NAMES("y"));
            break;
        case CLIP: {
            float lo = -0.1f, hi = 0.2f;
            mb_init_f32(b, "lo", 0, NULL, &lo);
            mb_init_f32(b, "hi", 0, NULL, &hi);
            mb_node(b, "MatMul", "mm", NAMES("x", "W"), NAMES("g"));
            mb_node(b, "Clip", "clip", NAMES("g", "lo", "hi"), NAMES("y"));
            break;
        }
        case LATE_RESIDUAL: /* the residual is computed after the MatMul (from -x: two MatMuls of x
                               would become one, sp_pass_fuse_parallel_matmuls) */
            mb_node(b, "MatMul", "mm", NAMES("x", "W"), NAMES("g"));
            mb_node(b, "Neg", "neg", NAMES("x"), NAMES("nx"));
            mb_node(b, "MatMul", "mm2", NAMES("nx", "W"), NAMES("g2"));
            mb_node(b, "Relu", "relu2", NAMES("g2"), NAMES("r"));
            mb_node(b, "Add", "add", NAMES("g", "r"), NAMES("y"));
            break;
        }
        float x[12];
        fill_random(x, 12);
        sprun_tensor in = f32_tensor("x", 2, DIMS(3, 4), x);
        sprun_plan_stats so, sr;
        compare_optimized(b, &in, 1, &so, &sr);
        if (so.n_nodes != (size_t)want_nodes[v]) {
            print_error("variant %d: %zu nodes after fusion, expected %d\n", v, so.n_nodes, want_nodes[v]);
            fail();
        }
        assert_true(sr.n_nodes >= so.n_nodes);
        mb_destroy(b);
    }
}

/* ------------------------------------------------------------------------ */
/* Plan-time constant folding of the Shape -> Gather -> Unsqueeze -> Concat  */
/* -> Reshape chain exporters emit                                           */
/* ------------------------------------------------------------------------ */

/* dst = Reshape(src, Concat(Unsqueeze(Gather(Shape(src), 0)), [-1])): the
 * batch-preserving flatten exporters emit. */
static void mb_shape_chain(mb *b, const char *src, const char *dst)
{
    int64_t zero = 0, minus1 = -1;
    mb_init_i64(b, "idx0", 0, NULL, &zero);
    mb_init_i64(b, "axes", 1, DIMS(1), &zero);
    mb_init_i64(b, "rest", 1, DIMS(1), &minus1);
    mb_node(b, "Shape", "shape", NAMES(src), NAMES("s"));
    Onnx__NodeProto *ga = mb_node(b, "Gather", "gather", NAMES("s", "idx0"), NAMES("batch"));
    mb_attr_int(b, ga, "axis", 0);
    mb_node(b, "Unsqueeze", "unsq", NAMES("batch", "axes"), NAMES("batch1"));
    Onnx__NodeProto *cc = mb_node(b, "Concat", "concat", NAMES("batch1", "rest"), NAMES("newshape"));
    mb_attr_int(b, cc, "axis", 0);
    mb_node(b, "Reshape", "reshape", NAMES(src, "newshape"), NAMES(dst));
}

static mb *shape_chain_model(void)
{
    mb *b = mb_create(13);
    mb_input(b, "x", F32, 3, DIMS(-1, 3, 4));
    mb_output(b, "y", F32);
    mb_shape_chain(b, "x", "r");
    mb_node(b, "Relu", "relu", NAMES("r"), NAMES("y"));
    return b;
}

static void test_plan_folds_shape_chain(void **state)
{
    (void)state;
    mb *b = shape_chain_model();
    sprun_model *m = mb_load(b, 1);
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    for (int batch = 1; batch <= 3; batch++) {
        float x[3 * 12];
        fill_random(x, (size_t)batch * 12);
        sprun_tensor in = f32_tensor("x", 3, DIMS(batch, 3, 4), x);
        if (sprun_session_run(s, &in, 1) != SPRUN_OK) {
            print_error("run failed: %s\n", sprun_last_error());
            fail();
        }
        sprun_plan_stats st;
        assert_int_equal(sprun_session_plan_stats(s, &st), SPRUN_OK);
        /* Shape, Gather, Unsqueeze, Concat folded; Reshape + Relu run. */
        assert_true(st.n_folded >= 4);
        assert_int_equal(st.n_nodes, 2);
        const sp_plan *p = s->current;
        for (int k = 0; k < p->n_order; k++) {
            const char *op = p->g.nodes[p->order[k]].op_type;
            assert_true(!strcmp(op, "Reshape") || !strcmp(op, "Relu"));
        }
        sprun_tensor out;
        assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
        assert_int_equal(out.rank, 2);
        assert_int_equal(out.dims[0], batch);
        assert_int_equal(out.dims[1], 12);
        for (int i = 0; i < batch * 12; i++)
            assert_true(((const float *)out.data)[i] == (x[i] > 0 ? x[i] : 0.f));
    }
    assert_int_equal(s->n_plans, 3);
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    mb_destroy(b);
}

/* ------------------------------------------------------------------------ */
/* Session API contract                                                      */
/* ------------------------------------------------------------------------ */

/* y = relu(a + b), a: [N, 4], b: [4] */
static sprun_model *add_model(mb **out_b)
{
    mb *b = mb_create(13);
    mb_input(b, "a", F32, 2, DIMS(-1, 4));
    mb_input(b, "b", F32, 1, DIMS(4));
    mb_output(b, "y", F32);
    mb_node(b, "Add", "add", NAMES("a", "b"), NAMES("s"));
    mb_node(b, "Relu", "relu", NAMES("s"), NAMES("y"));
    sprun_model *m = mb_load(b, 1);
    *out_b = b;
    return m;
}

static void expect_invalid(sprun_code rc, const char *needle)
{
    if (rc != SPRUN_ERR_INVALID_ARGUMENT) {
        print_error("expected SPRUN_ERR_INVALID_ARGUMENT, got %s (%s)\n", sprun_code_name(rc), sprun_last_error());
        fail();
    }
    assert_true(strlen(sprun_last_error()) > 0);
    if (needle)
        assert_contains(sprun_last_error(), needle);
}

static void test_session_bad_inputs(void **state)
{
    (void)state;
    mb *b;
    sprun_model *m = add_model(&b);
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    float a[8] = {1, -2, 3, -4, 5, -6, 7, -8}, bb[4] = {1, 1, 1, 1};
    sprun_tensor ok[2] = {f32_tensor("a", 2, DIMS(2, 4), a), f32_tensor("b", 1, DIMS(4), bb)};
    sprun_tensor in[2];

    /* No successful run yet: no output, no stats. */
    sprun_tensor out;
    sprun_plan_stats st;
    expect_invalid(sprun_session_output(s, 0, &out), NULL);
    expect_invalid(sprun_session_plan_stats(s, &st), NULL);

    expect_invalid(sprun_session_run(NULL, ok, 2), "NULL session");
    expect_invalid(sprun_session_run(s, NULL, 2), "NULL");
    expect_invalid(sprun_session_run(s, ok, 1), "2 inputs, 1 given");
    expect_invalid(sprun_session_run(s, ok, 3), "2 inputs, 3 given");
    expect_invalid(sprun_session_run(s, NULL, 0), "2 inputs, 0 given");

    memcpy(in, ok, sizeof in);
    in[0].dtype = SPRUN_DTYPE_DOUBLE;
    in[0].nbytes = 8 * sizeof(double);
    expect_invalid(sprun_session_run(s, in, 2), "expected dtype float32, got float64");

    memcpy(in, ok, sizeof in);
    in[1].rank = 2;
    in[1].dims[0] = 1;
    in[1].dims[1] = 4;
    expect_invalid(sprun_session_run(s, in, 2), "expected shape 4, got 1x4");

    memcpy(in, ok, sizeof in);
    in[0].dims[1] = 2;
    in[0].dims[0] = 4; /* same byte count, wrong fixed dim */
    expect_invalid(sprun_session_run(s, in, 2), "expected shape ?x4, got 4x2");

    memcpy(in, ok, sizeof in);
    in[0].nbytes -= 4;
    expect_invalid(sprun_session_run(s, in, 2), "needs 32 bytes, 28 given");

    memcpy(in, ok, sizeof in);
    in[0].dims[0] = -1;
    expect_invalid(sprun_session_run(s, in, 2), "input 'a'");

    memcpy(in, ok, sizeof in);
    in[0].rank = SPRUN_MAX_RANK + 1;
    expect_invalid(sprun_session_run(s, in, 2), "rank");
    in[0].rank = -1;
    expect_invalid(sprun_session_run(s, in, 2), "rank");

    memcpy(in, ok, sizeof in);
    in[1].data = NULL;
    expect_invalid(sprun_session_run(s, in, 2), "data is NULL");

    memcpy(in, ok, sizeof in);
    in[1].name = "c";
    expect_invalid(sprun_session_run(s, in, 2), "no input named 'c'");

    memcpy(in, ok, sizeof in);
    in[1].name = "a";
    expect_invalid(sprun_session_run(s, in, 2), "'a' given twice");

    /* None of the failures left a current plan behind. */
    expect_invalid(sprun_session_output(s, 0, &out), NULL);

    /* Unnamed inputs are taken in model order; named ones in any order. */
    in[0] = ok[1];
    in[1] = ok[0];
    assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
    assert_string_equal(sprun_last_error(), "");
    sprun_tensor unnamed[2] = {ok[0], ok[1]};
    unnamed[0].name = unnamed[1].name = NULL;
    assert_int_equal(sprun_session_run(s, unnamed, 2), SPRUN_OK);
    assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
    assert_string_equal(out.name, "y");
    assert_int_equal(out.rank, 2);
    assert_int_equal(out.dims[0], 2);
    const float want[8] = {2, 0, 4, 0, 6, 0, 8, 0};
    assert_memory_equal(out.data, want, sizeof want);

    /* Output queries out of range / NULL. */
    expect_invalid(sprun_session_output(s, 1, &out), NULL);
    expect_invalid(sprun_session_output(s, 0, NULL), NULL);
    expect_invalid(sprun_session_output(NULL, 0, &out), NULL);
    expect_invalid(sprun_session_plan_stats(s, NULL), NULL);

    /* A failed run after a good one. */
    memcpy(in, ok, sizeof in);
    in[0].nbytes = 3;
    expect_invalid(sprun_session_run(s, in, 2), NULL);
    /* ... leaves no stale output of the good run to read. */
    expect_invalid(sprun_session_output(s, 0, &out), NULL);

    /* Other NULL handles. */
    expect_invalid(sprun_session_create(NULL, &s), NULL);
    expect_invalid(sprun_session_create(m, NULL), NULL);
    expect_invalid(sprun_session_set_profiling(NULL, 1), NULL);
    expect_invalid(sprun_session_set_stream(NULL, NULL), NULL);
    sprun_tensor_info info;
    expect_invalid(sprun_model_input_info(m, 2, &info), NULL);
    expect_invalid(sprun_model_input_info(NULL, 0, &info), NULL);
    expect_invalid(sprun_model_output_info(m, 0, NULL), NULL);
    expect_invalid(sprun_model_weight_info(m, 0, NULL), NULL);
    expect_invalid(sprun_model_node_describe(m, 0, NULL, 0), NULL);
    assert_int_equal(sprun_model_input_count(NULL), 0);
    assert_int_equal(sprun_model_output_count(NULL), 0);
    assert_int_equal(sprun_model_node_count(NULL), 0);
    assert_int_equal(sprun_session_profile_count(NULL), 0);
    sprun_model *m2 = (sprun_model *)0x1;
    expect_invalid(sprun_model_load(NULL, NULL, &m2), NULL);
    expect_invalid(sprun_model_load("x.onnx", NULL, NULL), NULL);
    expect_invalid(sprun_model_load_buffer(NULL, 10, NULL, &m2), NULL);
    assert_int_not_equal(sprun_model_load_buffer("", 0, NULL, &m2), SPRUN_OK);
    assert_null(m2);
    assert_int_equal(sprun_model_load("/nonexistent/dir/model.onnx", NULL, &m2), SPRUN_ERR_IO);
    assert_contains(sprun_last_error(), "/nonexistent/dir/model.onnx");
    assert_null(m2);

    /* Options. */
    sprun_options *o = NULL;
    expect_invalid(sprun_options_create(NULL), NULL);
    assert_int_equal(sprun_options_create(&o), SPRUN_OK);
    expect_invalid(sprun_options_set_backend(o, (sprun_backend)42), NULL);
    expect_invalid(sprun_options_set_precision(o, (sprun_precision)42), NULL);
    expect_invalid(sprun_options_set_device(o, -1), NULL);
    expect_invalid(sprun_options_set_backend(NULL, SPRUN_BACKEND_CPU), NULL);
    sprun_options_destroy(o);

    /* Info of inputs: names, dtype, symbolic dims. */
    assert_int_equal(sprun_model_input_count(m), 2);
    assert_int_equal(sprun_model_input_info(m, 0, &info), SPRUN_OK);
    assert_string_equal(info.name, "a");
    assert_int_equal(info.dtype, SPRUN_DTYPE_FLOAT);
    assert_int_equal(info.rank, 2);
    assert_int_equal(info.dims[0], -1);
    assert_string_equal(info.dim_names[0], "N");
    assert_int_equal(info.dims[1], 4);
    assert_null(info.dim_names[1]);

    sprun_session_destroy(s);
    sprun_model_destroy(m);
    mb_destroy(b);
}

static void test_session_plan_cache(void **state)
{
    (void)state;
    mb *b;
    sprun_model *m = add_model(&b);
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    float a[64 * 4], bb[4] = {0.5f, -0.5f, 1, -1};
    fill_random(a, 64 * 4);
    sprun_tensor in[2] = {f32_tensor("a", 2, DIMS(2, 4), a), f32_tensor("b", 1, DIMS(4), bb)};

    /* Same shapes: one plan, reused; the output buffer and values stable. */
    assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
    const sp_plan *p2 = s->current;
    sprun_tensor out;
    assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
    void *data2 = out.data;
    float first[8];
    memcpy(first, out.data, sizeof first);
    for (int i = 0; i < 8; i++)
        assert_true(first[i] == fmaxf(a[i] + bb[i % 4], 0.f));
    for (int r = 0; r < 3; r++) {
        assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
        assert_int_equal(s->n_plans, 1);
        assert_ptr_equal(s->current, p2);
        assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
        assert_ptr_equal(out.data, data2);
        assert_memory_equal(out.data, first, sizeof first);
    }

    /* A new batch size: a new plan; then back to the first one. */
    in[0] = f32_tensor("a", 2, DIMS(3, 4), a);
    assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
    assert_int_equal(s->n_plans, 2);
    assert_ptr_not_equal(s->current, p2);
    assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
    assert_int_equal(out.dims[0], 3);
    assert_int_equal(out.nbytes, 12 * sizeof(float));
    assert_memory_equal(out.data, first, sizeof first); /* first two rows identical */
    in[0] = f32_tensor("a", 2, DIMS(2, 4), a);
    assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
    assert_int_equal(s->n_plans, 2);
    assert_ptr_equal(s->current, p2);

    /* More shapes than the cache holds: LRU eviction, results still right. */
    for (int batch = 1; batch <= SP_MAX_PLANS + 4; batch++) {
        in[0] = f32_tensor("a", 2, DIMS(batch, 4), a);
        assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
        assert_true(s->n_plans <= SP_MAX_PLANS);
        assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
        assert_int_equal(out.dims[0], batch);
        for (int i = 0; i < batch * 4; i++)
            assert_true(((const float *)out.data)[i] == fmaxf(a[i] + bb[i % 4], 0.f));
    }
    assert_int_equal(s->n_plans, SP_MAX_PLANS);
    /* The most recent shape is still cached: no re-plan. */
    const sp_plan *last = s->current;
    assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
    assert_ptr_equal(s->current, last);

    /* A batch of 0 is a valid (empty) shape. */
    in[0] = f32_tensor("a", 2, DIMS(0, 4), a);
    assert_int_equal(sprun_session_run(s, in, 2), SPRUN_OK);
    assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
    assert_int_equal(out.dims[0], 0);
    assert_int_equal(out.nbytes, 0);

    /* Two sessions of one model do not share plans or outputs. */
    sprun_session *s2 = NULL;
    assert_int_equal(sprun_session_create(m, &s2), SPRUN_OK);
    in[0] = f32_tensor("a", 2, DIMS(1, 4), a);
    assert_int_equal(sprun_session_run(s2, in, 2), SPRUN_OK);
    assert_int_equal(s2->n_plans, 1);
    sprun_tensor out2;
    assert_int_equal(sprun_session_output(s2, 0, &out2), SPRUN_OK);
    assert_int_equal(sprun_session_output(s, 0, &out), SPRUN_OK);
    assert_ptr_not_equal(out.data, out2.data);
    sprun_session_destroy(s2);
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    mb_destroy(b);
}

static void test_destroy_accepts_null(void **state)
{
    (void)state;
    sprun_options_destroy(NULL);
    sprun_model_destroy(NULL);
    sprun_session_destroy(NULL);
    assert_non_null(sprun_version());
    assert_string_equal(sprun_code_name(SPRUN_ERR_PARSE), "SPRUN_ERR_PARSE");
    assert_int_equal(sprun_dtype_size(SPRUN_DTYPE_FLOAT16), 2);
    assert_int_equal(sprun_dtype_size(SPRUN_DTYPE_STRING), 0);
    assert_string_equal(sprun_dtype_name(SPRUN_DTYPE_INT64), "int64");
}

/* Each thread's last error is its own. */
typedef struct err_thread {
    pthread_barrier_t *barrier;
    int which;
    int ok;
    char msg[512];
} err_thread;

static void *err_thread_main(void *arg)
{
    err_thread *t = arg;
    sprun_model *m = NULL;
    if (t->which == 0)
        sprun_model_load("/nonexistent/thread-zero.onnx", NULL, &m);
    else
        sprun_session_run(NULL, NULL, 0);
    /* Both errors are set before either thread reads its own. */
    pthread_barrier_wait(t->barrier);
    snprintf(t->msg, sizeof t->msg, "%s", sprun_last_error());
    pthread_barrier_wait(t->barrier);
    /* A success on one thread clears only that thread's message. */
    if (t->which == 1) {
        sprun_options *o = NULL;
        sprun_options_create(&o);
        sprun_options_set_backend(o, SPRUN_BACKEND_CPU); /* succeeds */
        sprun_options_destroy(o);
        sprun_session_create(NULL, NULL); /* fails with its own message */
    }
    pthread_barrier_wait(t->barrier);
    t->ok = t->which == 0 ? strstr(sprun_last_error(), "thread-zero.onnx") != NULL
                          : strstr(sprun_last_error(), "sprun_session_create") != NULL;
    return NULL;
}

static void test_last_error_thread_local(void **state)
{
    (void)state;
    sprun_options_set_device(NULL, 0); /* main thread's own error */
    char main_msg[512];
    snprintf(main_msg, sizeof main_msg, "%s", sprun_last_error());
    assert_contains(main_msg, "sprun_options_set_device");

    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    err_thread t[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].barrier = &barrier;
        t[i].which = i;
        assert_int_equal(pthread_create(&th[i], NULL, err_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&barrier);
    assert_contains(t[0].msg, "thread-zero.onnx");
    assert_null(strstr(t[0].msg, "NULL session"));
    assert_contains(t[1].msg, "NULL session");
    assert_null(strstr(t[1].msg, "thread-zero"));
    assert_true(t[0].ok);
    assert_true(t[1].ok);
    /* The main thread's message is untouched by the threads. */
    assert_string_equal(sprun_last_error(), main_msg);
}

/* Sessions of one model on several threads at once (the documented contract:
 * the model is shared, a session per thread). */
typedef struct run_thread {
    const sprun_model *m;
    int batch, ok;
} run_thread;

static void *run_thread_main(void *arg)
{
    run_thread *t = arg;
    sprun_session *s = NULL;
    if (sprun_session_create(t->m, &s) != SPRUN_OK)
        return NULL;
    float a[16 * 4], bb[4] = {1, -1, 2, -2};
    for (int i = 0; i < t->batch * 4; i++)
        a[i] = (float)(i % 7) - 3.f + (float)t->batch;
    sprun_tensor in[2] = {f32_tensor("a", 2, DIMS(t->batch, 4), a), f32_tensor("b", 1, DIMS(4), bb)};
    t->ok = 1;
    for (int r = 0; r < 50 && t->ok; r++) {
        sprun_tensor out;
        if (sprun_session_run(s, in, 2) != SPRUN_OK || sprun_session_output(s, 0, &out) != SPRUN_OK ||
            out.dims[0] != t->batch) {
            t->ok = 0;
            break;
        }
        for (int i = 0; i < t->batch * 4; i++)
            if (((const float *)out.data)[i] != fmaxf(a[i] + bb[i % 4], 0.f))
                t->ok = 0;
    }
    sprun_session_destroy(s);
    return NULL;
}

static void test_sessions_in_parallel(void **state)
{
    (void)state;
    mb *b;
    sprun_model *m = add_model(&b);
    run_thread t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (run_thread){.m = m, .batch = 1 + 5 * i, .ok = 0};
        assert_int_equal(pthread_create(&th[i], NULL, run_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_true(t[i].ok);
    }
    sprun_model_destroy(m);
    mb_destroy(b);
}

/* A run whose input shapes were planned before allocates nothing: not in
 * the session, the backend, the thread pool or the kernels (Conv's im2col
 * scratch, Gemm, Softmax, the folded shape chain), also when the plan cache
 * alternates between two batch sizes. */
static void test_planned_run_allocates_nothing(void **state)
{
    (void)state;
#ifndef SP_COUNT_ALLOCS
    skip();
#else
    mb *b = mb_create(13);
    float w[4 * 3 * 3 * 3], bias[4], w2[5 * 4];
    fill_random(w, 108);
    fill_random(bias, 4);
    fill_random(w2, 20);
    mb_input(b, "x", F32, 4, DIMS(-1, 3, 6, 6));
    mb_output(b, "y", F32);
    mb_init_f32(b, "W", 4, DIMS(4, 3, 3, 3), w);
    mb_init_f32(b, "B", 1, DIMS(4), bias);
    mb_init_f32(b, "W2", 2, DIMS(5, 4), w2);
    Onnx__NodeProto *conv = mb_node(b, "Conv", "conv", NAMES("x", "W", "B"), NAMES("c"));
    mb_attr_ints(b, conv, "pads", 4, DIMS(1, 1, 1, 1));
    mb_node(b, "Relu", "relu", NAMES("c"), NAMES("r"));
    mb_node(b, "GlobalAveragePool", "gap", NAMES("r"), NAMES("g"));
    mb_shape_chain(b, "g", "f");
    Onnx__NodeProto *gemm = mb_node(b, "Gemm", "fc", NAMES("f", "W2"), NAMES("logits"));
    mb_attr_int(b, gemm, "transB", 1);
    mb_node(b, "Softmax", "softmax", NAMES("logits"), NAMES("y"));
    sprun_model *m = mb_load(b, 1);
    sprun_session *s = NULL;
    assert_int_equal(sprun_session_create(m, &s), SPRUN_OK);
    float x[3 * 3 * 6 * 6];
    fill_random(x, 3 * 108);
    sprun_tensor in2 = f32_tensor("x", 4, DIMS(2, 3, 6, 6), x), in3 = f32_tensor("x", 4, DIMS(3, 3, 6, 6), x);
    assert_int_equal(sprun_session_run(s, &in2, 1), SPRUN_OK); /* plans batch 2 */
    assert_int_equal(sprun_session_run(s, &in3, 1), SPRUN_OK); /* plans batch 3 */
    sprun_tensor out;
    atomic_store(&n_allocs, 0);
    atomic_store(&counting_allocs, 1);
    for (int r = 0; r < 6; r++) {
        sprun_code rc = sprun_session_run(s, r % 2 ? &in3 : &in2, 1);
        sprun_code rc2 = sprun_session_output(s, 0, &out);
        if (rc != SPRUN_OK || rc2 != SPRUN_OK) {
            atomic_store(&counting_allocs, 0);
            fail_msg("run %d failed: %s", r, sprun_last_error());
        }
    }
    atomic_store(&counting_allocs, 0);
    long count = atomic_load(&n_allocs);
    if (count != 0)
        fail_msg("6 runs of already planned shapes made %ld allocations", count);
    assert_int_equal(out.dims[0], 3); /* the last run was batch 3 */
    assert_int_equal(out.dims[1], 5);
    /* The counter does see allocations: planning a new batch size makes some. */
    sprun_tensor in1 = f32_tensor("x", 4, DIMS(1, 3, 6, 6), x);
    atomic_store(&counting_allocs, 1);
    sprun_code rc = sprun_session_run(s, &in1, 1);
    atomic_store(&counting_allocs, 0);
    assert_int_equal(rc, SPRUN_OK);
    assert_true(atomic_load(&n_allocs) > 0);
    sprun_session_destroy(s);
    sprun_model_destroy(m);
    mb_destroy(b);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ir_values),
        cmocka_unit_test(test_ir_attributes),
        cmocka_unit_test(test_ir_clone),
        cmocka_unit_test(test_shape_broadcast),
        cmocka_unit_test(test_memplan_random),
        cmocka_unit_test(test_pass_fold_batchnorm_graph),
        cmocka_unit_test(test_pass_fold_batchnorm_refusals),
        cmocka_unit_test(test_pass_fuse_gelu),
#ifdef SPRUN_HAVE_CUDA
        cmocka_unit_test(test_cuda_tune_memo),
#endif
        cmocka_unit_test(test_pass_remove_dead),
        cmocka_unit_test(test_api_batchnorm_folding),
        cmocka_unit_test(test_api_fuse_parallel_matmuls),
        cmocka_unit_test(test_api_fuse_conv_residual_relu),
        cmocka_unit_test(test_api_fuse_epilogue_variants),
        cmocka_unit_test(test_plan_folds_shape_chain),
        cmocka_unit_test(test_session_bad_inputs),
        cmocka_unit_test(test_session_plan_cache),
        cmocka_unit_test(test_destroy_accepts_null),
        cmocka_unit_test(test_last_error_thread_local),
        cmocka_unit_test(test_sessions_in_parallel),
        cmocka_unit_test(test_planned_run_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
