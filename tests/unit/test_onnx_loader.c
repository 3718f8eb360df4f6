/*
 * test_onnx_loader.c - the ONNX loader and TensorProto reader.
 *
 * Models are built in C with the protobuf-c structs generated from
 * onnx.proto, packed, and loaded back (no Python at test time). Every error
 * the loader promises is provoked, and truncation is tried at every length
 * of a valid model: the loader must fail cleanly, never crash or leak
 * (run under ASan in CI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "loaders/onnx_loader.h"
#include "loaders/onnx_tensor.h"
#include "onnx.pb-c.h"
#include "ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REAL_MODEL "/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding"

/* ------------------------------------------------------------------------ */
/* Builders: everything malloc'ed so onnx__model_proto__free_unpacked frees  */
/* a hand-built message like an unpacked one.                                */
/* ------------------------------------------------------------------------ */

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    return p;
}

static char *S(const char *s)
{
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

/* Appends item to a protobuf-c repeated pointer field. */
#define PUSH(arr, n, item)                                                   \
    do {                                                                     \
        (arr) = realloc((arr), ((n) + 1) * sizeof *(arr));                   \
        assert_non_null(arr);                                                \
        (arr)[(n)++] = (item);                                               \
    } while (0)

static Onnx__ModelProto *model_new(int64_t opset)
{
    Onnx__ModelProto *m = xmalloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1, m->ir_version = 8;
    if (opset > 0) {
        Onnx__OperatorSetIdProto *op = xmalloc(sizeof *op);
        onnx__operator_set_id_proto__init(op);
        op->domain = S("");
        op->has_version = 1, op->version = opset;
        PUSH(m->opset_import, m->n_opset_import, op);
    }
    m->graph = xmalloc(sizeof *m->graph);
    onnx__graph_proto__init(m->graph);
    m->graph->name = S("g");
    return m;
}

static Onnx__TensorShapeProto *shape_new(int rank, const int64_t *dims, const char *const *params)
{
    Onnx__TensorShapeProto *s = xmalloc(sizeof *s);
    onnx__tensor_shape_proto__init(s);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = xmalloc(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (params && params[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = S(params[i]);
        } else if (dims[i] != -2) { /* -2: neither value nor name */
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        PUSH(s->dim, s->n_dim, d);
    }
    return s;
}

/* rank -1: no shape at all. */
static Onnx__ValueInfoProto *vinfo(const char *name, int dt, int rank, const int64_t *dims, const char *const *params)
{
    Onnx__ValueInfoProto *vi = xmalloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = S(name);
    vi->type = xmalloc(sizeof *vi->type);
    onnx__type_proto__init(vi->type);
    vi->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    vi->type->tensor_type = xmalloc(sizeof *vi->type->tensor_type);
    onnx__type_proto__tensor__init(vi->type->tensor_type);
    vi->type->tensor_type->has_elem_type = 1, vi->type->tensor_type->elem_type = dt;
    if (rank >= 0)
        vi->type->tensor_type->shape = shape_new(rank, dims, params);
    return vi;
}

static Onnx__TensorProto *tensor_new(const char *name, int dt, int rank, const int64_t *dims)
{
    Onnx__TensorProto *t = xmalloc(sizeof *t);
    onnx__tensor_proto__init(t);
    if (name)
        t->name = S(name);
    t->has_data_type = 1, t->data_type = dt;
    t->n_dims = (size_t)rank;
    t->dims = xmalloc((size_t)rank * sizeof(int64_t));
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    return t;
}

static Onnx__TensorProto *tensor_raw(const char *name, int dt, int rank, const int64_t *dims, const void *data,
                                     size_t nbytes)
{
    Onnx__TensorProto *t = tensor_new(name, dt, rank, dims);
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = xmalloc(nbytes);
    memcpy(t->raw_data.data, data, nbytes);
    return t;
}

static void tensor_external(Onnx__TensorProto *t, const char *location, const char *offset, const char *length)
{
    const char *keys[] = {"location", "offset", "length"};
    const char *vals[] = {location, offset, length};
    t->has_data_location = 1, t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        Onnx__StringStringEntryProto *kv = xmalloc(sizeof *kv);
        onnx__string_string_entry_proto__init(kv);
        kv->key = S(keys[i]);
        kv->value = S(vals[i]);
        PUSH(t->external_data, t->n_external_data, kv);
    }
}

/* ins/outs: comma-separated names ("x,,w": an empty name is an absent optional). */
static void split_names(const char *list, char ***arr, size_t *n)
{
    if (!list)
        return;
    const char *c = list;
    for (;;) {
        const char *e = strchr(c, ',');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        char *s = xmalloc(len + 1);
        memcpy(s, c, len);
        PUSH(*arr, *n, s);
        if (!e)
            break;
        c = e + 1;
    }
}

static Onnx__NodeProto *node_add(Onnx__GraphProto *g, const char *op, const char *name, const char *ins,
                                 const char *outs)
{
    Onnx__NodeProto *n = xmalloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = S(op);
    if (name)
        n->name = S(name);
    split_names(ins, &n->input, &n->n_input);
    split_names(outs, &n->output, &n->n_output);
    PUSH(g->node, g->n_node, n);
    return n;
}

static Onnx__AttributeProto *attr_add(Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = xmalloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = S(name);
    if (type) {
        a->has_type = 1;
        a->type = (Onnx__AttributeProto__AttributeType)type;
    }
    PUSH(n->attribute, n->n_attribute, a);
    return a;
}

/* Packs m into a malloc'ed buffer and frees m. */
static uint8_t *pack_model(Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = xmalloc(*len);
    assert_int_equal(onnx__model_proto__pack(m, buf), *len);
    onnx__model_proto__free_unpacked(m, NULL);
    return buf;
}

/* Loads m (consumed) from a buffer; returns the code, graph in *g. */
static int load_model(Onnx__ModelProto *m, const char *base_dir, sp_graph *g, sp_err *err)
{
    size_t len;
    uint8_t *buf = pack_model(m, &len);
    sp_graph_init(g);
    memset(err, 0, sizeof *err);
    int rc = sp_onnx_load_buffer(buf, len, base_dir, g, err);
    free(buf);
    return rc;
}

/* Expects load of m to fail with code and a message containing needle. */
static void expect_error(Onnx__ModelProto *m, const char *base_dir, int code, const char *needle)
{
    sp_graph g;
    sp_err err;
    int rc = load_model(m, base_dir, &g, &err);
    if (rc != code || !strstr(err.msg, needle))
        fail_msg("expected code %d with '%s', got %d: %s", code, needle, rc, err.msg);
    assert_int_equal(g.n_nodes, 0); /* left empty on failure */
    assert_int_equal(g.n_values, 0);
    sp_graph_free(&g);
}

static const sp_value *val(const sp_graph *g, const char *name)
{
    int v = sp_graph_find(g, name);
    if (v < 0)
        fail_msg("value '%s' not in graph", name);
    return &g->values[v];
}

/* A small valid model: y = Relu(x) + w, x[batch, 3, ?], w[3, 1] from raw_data;
 * w is also listed as a graph input (IR < 4 style). */
static Onnx__ModelProto *small_model(void)
{
    Onnx__ModelProto *m = model_new(17);
    Onnx__GraphProto *g = m->graph;
    const int64_t xd[] = {0, 3, -2};
    const char *const xp[] = {"batch", NULL, NULL};
    PUSH(g->input, g->n_input, vinfo("x", SPRUN_DTYPE_FLOAT, 3, xd, xp));
    const int64_t wd[] = {3, 1};
    PUSH(g->input, g->n_input, vinfo("w", SPRUN_DTYPE_FLOAT, 2, wd, NULL));
    const float w[] = {1.f, 2.f, 3.f};
    PUSH(g->initializer, g->n_initializer, tensor_raw("w", SPRUN_DTYPE_FLOAT, 2, wd, w, sizeof w));
    node_add(g, "Relu", "relu", "x", "r");
    node_add(g, "Add", NULL, "r,w", "y");
    const int64_t yd[] = {0, 3, 7};
    const char *const yp[] = {"batch", NULL, NULL};
    PUSH(g->output, g->n_output, vinfo("y", SPRUN_DTYPE_FLOAT, 3, yd, yp));
    return m;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_inputs_outputs_shapes(void **state)
{
    (void)state;
    sp_graph g;
    sp_err err;
    assert_int_equal(load_model(small_model(), NULL, &g, &err), SPRUN_OK);
    assert_int_equal(g.opset, 17);
    assert_string_equal(g.base_dir, ".");

    assert_int_equal(g.n_inputs, 1); /* w is an initializer, not a run-time input */
    const sp_value *x = &g.values[g.inputs[0]];
    assert_string_equal(x->name, "x");
    assert_int_equal(x->kind, SP_VAL_INPUT);
    assert_int_equal(x->dtype, SPRUN_DTYPE_FLOAT);
    assert_int_equal(x->shape.rank, 3);
    assert_int_equal(x->shape.d[0], -1);
    assert_string_equal(x->dim_param[0], "batch");
    assert_int_equal(x->shape.d[1], 3);
    assert_null(x->dim_param[1]);
    assert_int_equal(x->shape.d[2], -1); /* neither value nor name */
    assert_null(x->dim_param[2]);

    const sp_value *w = val(&g, "w");
    assert_int_equal(w->kind, SP_VAL_CONST);
    assert_int_equal(w->shape.rank, 2);
    assert_int_equal(w->nbytes, 12);
    assert_true(w->owns_data);
    assert_true(((const float *)w->data)[2] == 3.f);

    assert_int_equal(g.n_nodes, 2);
    assert_string_equal(g.nodes[0].name, "relu");
    assert_string_equal(g.nodes[1].name, "Add_1"); /* unnamed: <op_type>_<index> */
    assert_ptr_equal(g.nodes[0].op, sp_op_find("", "Relu"));
    assert_int_equal(g.nodes[1].n_in, 2);
    assert_int_equal(g.nodes[1].in[1], sp_graph_find(&g, "w"));
    assert_int_equal(val(&g, "r")->producer, 0);

    assert_int_equal(g.n_outputs, 1);
    const sp_value *y = &g.values[g.outputs[0]];
    assert_string_equal(y->name, "y");
    assert_true(y->is_output);
    assert_int_equal(y->producer, 1);
    assert_int_equal(y->dtype, SPRUN_DTYPE_FLOAT);
    assert_int_equal(y->shape.d[0], -1);
    assert_string_equal(y->dim_param[0], "batch");
    assert_int_equal(y->shape.d[2], 7);
    sp_graph_free(&g);
}

static void test_optional_io_domains_and_order(void **state)
{
    (void)state;
    Onnx__ModelProto *m = model_new(13);
    Onnx__GraphProto *gp = m->graph;
    const int64_t d[] = {2};
    PUSH(gp->input, gp->n_input, vinfo("x", SPRUN_DTYPE_FLOAT, 1, d, NULL));
    /* Out of order on purpose: b consumes a, but comes first. */
    node_add(gp, "Dropout", "b", "a,,", "y,");
    Onnx__NodeProto *c = node_add(gp, "MyOp", "a", "x", "a");
    c->domain = S("com.example");
    PUSH(gp->output, gp->n_output, vinfo("y", SPRUN_DTYPE_FLOAT, -1, NULL, NULL));
    sp_graph g;
    sp_err err;
    assert_int_equal(load_model(m, NULL, &g, &err), SPRUN_OK);
    assert_int_equal(g.n_nodes, 2);
    assert_string_equal(g.nodes[0].name, "a"); /* sorted */
    assert_string_equal(g.nodes[0].domain, "com.example");
    assert_null(g.nodes[0].op); /* other domain: kept, unsupported */
    assert_string_equal(g.nodes[1].name, "b");
    assert_int_equal(g.nodes[1].n_in, 3);
    assert_int_equal(g.nodes[1].in[1], -1);
    assert_int_equal(g.nodes[1].in[2], -1);
    assert_int_equal(g.nodes[1].n_out, 2);
    assert_int_equal(g.nodes[1].out[1], -1);
    assert_int_equal(val(&g, "a")->producer, 0);
    assert_int_equal(val(&g, "y")->producer, 1);
    assert_int_equal(val(&g, "y")->shape.rank, -1); /* output without shape */
    sp_graph_free(&g);
}

static void test_initializer_typed_fields(void **state)
{
    (void)state;
    Onnx__ModelProto *m = model_new(18);
    Onnx__GraphProto *gp = m->graph;
    const int64_t d3[] = {3};
    Onnx__TensorProto *t;

    t = tensor_new("f32", SPRUN_DTYPE_FLOAT, 1, d3);
    t->n_float_data = 3, t->float_data = xmalloc(12);
    t->float_data[0] = 1.5f, t->float_data[2] = -2.f;
    PUSH(gp->initializer, gp->n_initializer, t);

    /* int32_data carries every type of <= 16 bits. */
    const int types32[] = {SPRUN_DTYPE_INT32,  SPRUN_DTYPE_INT16, SPRUN_DTYPE_UINT16,  SPRUN_DTYPE_INT8,
                           SPRUN_DTYPE_UINT8,  SPRUN_DTYPE_BOOL,  SPRUN_DTYPE_FLOAT16, SPRUN_DTYPE_BFLOAT16};
    const char *names32[] = {"i32", "i16", "u16", "i8", "u8", "b", "f16", "bf16"};
    const int32_t v32[][3] = {{-7, 0, 70000}, {-300, 1, 2}, {65535, 0, 1}, {-128, 127, 5},
                              {255, 0, 1},    {0, 1, 5},    {0x3C00, 0xC000, 0x7C00}, {0x3F80, 0, 0xBF80}};
    for (int i = 0; i < 8; i++) {
        t = tensor_new(names32[i], types32[i], 1, d3);
        t->n_int32_data = 3, t->int32_data = xmalloc(12);
        memcpy(t->int32_data, v32[i], 12);
        PUSH(gp->initializer, gp->n_initializer, t);
    }
    t = tensor_new("i64", SPRUN_DTYPE_INT64, 1, d3);
    t->n_int64_data = 3, t->int64_data = xmalloc(24);
    t->int64_data[0] = -(1LL << 40), t->int64_data[2] = 9;
    PUSH(gp->initializer, gp->n_initializer, t);
    t = tensor_new("f64", SPRUN_DTYPE_DOUBLE, 1, d3);
    t->n_double_data = 3, t->double_data = xmalloc(24);
    t->double_data[1] = 0.25;
    PUSH(gp->initializer, gp->n_initializer, t);
    t = tensor_new("u32", SPRUN_DTYPE_UINT32, 1, d3);
    t->n_uint64_data = 3, t->uint64_data = xmalloc(24);
    t->uint64_data[0] = 4000000000u;
    PUSH(gp->initializer, gp->n_initializer, t);
    t = tensor_new("u64", SPRUN_DTYPE_UINT64, 1, d3);
    t->n_uint64_data = 3, t->uint64_data = xmalloc(24);
    t->uint64_data[2] = UINT64_MAX;
    PUSH(gp->initializer, gp->n_initializer, t);
    /* A scalar (rank 0) and an empty tensor. */
    t = tensor_new("scalar", SPRUN_DTYPE_INT64, 0, NULL);
    t->n_int64_data = 1, t->int64_data = xmalloc(8);
    t->int64_data[0] = 42;
    PUSH(gp->initializer, gp->n_initializer, t);
    const int64_t d0[] = {0, 4};
    PUSH(gp->initializer, gp->n_initializer, tensor_new("empty", SPRUN_DTYPE_FLOAT, 2, d0));

    sp_graph g;
    sp_err err;
    assert_int_equal(load_model(m, NULL, &g, &err), SPRUN_OK);
    const float *f = val(&g, "f32")->data;
    assert_true(f[0] == 1.5f && f[1] == 0.f && f[2] == -2.f);
    const int32_t *i32 = val(&g, "i32")->data;
    assert_true(i32[0] == -7 && i32[2] == 70000);
    const int16_t *i16 = val(&g, "i16")->data;
    assert_int_equal(val(&g, "i16")->nbytes, 6);
    assert_true(i16[0] == -300 && i16[2] == 2);
    assert_int_equal(((const uint16_t *)val(&g, "u16")->data)[0], 65535);
    const int8_t *i8 = val(&g, "i8")->data;
    assert_true(i8[0] == -128 && i8[1] == 127);
    assert_int_equal(((const uint8_t *)val(&g, "u8")->data)[0], 255);
    const uint8_t *b = val(&g, "b")->data;
    assert_true(b[0] == 0 && b[1] == 1 && b[2] == 1); /* normalised to 0/1 */
    const uint16_t *h = val(&g, "f16")->data;
    assert_int_equal(val(&g, "f16")->dtype, SPRUN_DTYPE_FLOAT16);
    assert_true(h[0] == 0x3C00 && h[1] == 0xC000 && h[2] == 0x7C00);
    assert_int_equal(((const uint16_t *)val(&g, "bf16")->data)[2], 0xBF80);
    const int64_t *i64 = val(&g, "i64")->data;
    assert_true(i64[0] == -(1LL << 40) && i64[2] == 9);
    assert_true(((const double *)val(&g, "f64")->data)[1] == 0.25);
    assert_int_equal(val(&g, "u32")->nbytes, 12);
    assert_int_equal(((const uint32_t *)val(&g, "u32")->data)[0], 4000000000u);
    assert_true(((const uint64_t *)val(&g, "u64")->data)[2] == UINT64_MAX);
    const sp_value *sc = val(&g, "scalar");
    assert_int_equal(sc->shape.rank, 0);
    assert_int_equal(*(const int64_t *)sc->data, 42);
    const sp_value *em = val(&g, "empty");
    assert_int_equal(em->nbytes, 0);
    assert_non_null(em->data); /* NULL would read as "not a constant" */
    assert_int_equal(em->kind, SP_VAL_CONST);
    sp_graph_free(&g);
}

static void test_fp16_raw(void **state)
{
    (void)state;
    Onnx__ModelProto *m = model_new(17);
    const int64_t d[] = {2, 2};
    const uint16_t h[] = {0x3C00, 0x4000, 0xBC00, 0x0000}; /* 1, 2, -1, 0 */
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("h", SPRUN_DTYPE_FLOAT16, 2, d, h, sizeof h));
    sp_graph g;
    sp_err err;
    assert_int_equal(load_model(m, NULL, &g, &err), SPRUN_OK);
    const sp_value *v = val(&g, "h");
    assert_int_equal(v->dtype, SPRUN_DTYPE_FLOAT16);
    assert_int_equal(v->nbytes, 8);
    assert_memory_equal(v->data, h, sizeof h);
    sp_graph_free(&g);
}

/* A fresh directory under /tmp for files the test writes. */
static void make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/sprun_test_loader_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void remove_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* One float[4] initializer stored externally; loading it from base_dir
 * must fail with code and a message containing needle. */
static void expect_external_error(const char *base_dir, const char *name, const char *location, const char *offset,
                                  const char *length, int code, const char *needle)
{
    const int64_t d[] = {4};
    Onnx__ModelProto *m = model_new(17);
    Onnx__TensorProto *t = tensor_new(name, SPRUN_DTYPE_FLOAT, 1, d);
    tensor_external(t, location, offset, length);
    PUSH(m->graph->initializer, m->graph->n_initializer, t);
    expect_error(m, base_dir, code, needle);
}

static void test_external_data(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/weights", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    /* Two tensors in one file: a at offset 0, b at offset 16. */
    float blob[8] = {1, 2, 3, 4, 0, 0, 0, 0};
    const float bvals[] = {10, 20};
    memcpy(blob + 4, bvals, sizeof bvals);
    write_file(dir, "weights/data.bin", blob, 24);

    const int64_t da[] = {4}, db[] = {2};
    Onnx__ModelProto *m = model_new(17);
    Onnx__TensorProto *ta = tensor_new("a", SPRUN_DTYPE_FLOAT, 1, da);
    tensor_external(ta, "weights/data.bin", NULL, "16");
    Onnx__TensorProto *tb = tensor_new("b", SPRUN_DTYPE_FLOAT, 1, db);
    tensor_external(tb, "./weights/data.bin", "16", "8");
    PUSH(m->graph->initializer, m->graph->n_initializer, ta);
    PUSH(m->graph->initializer, m->graph->n_initializer, tb);

    /* From a file: external data is resolved against the model's directory. */
    size_t len;
    uint8_t *buf = pack_model(m, &len);
    write_file(dir, "model.onnx", buf, len);
    free(buf);
    char path[256];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    sp_graph g;
    sp_graph_init(&g);
    sp_err err = {0};
    assert_int_equal(sp_onnx_load_file(path, &g, &err), SPRUN_OK);
    assert_string_equal(g.base_dir, dir);
    assert_memory_equal(val(&g, "a")->data, blob, 16);
    assert_memory_equal(val(&g, "b")->data, bvals, 8);
    sp_graph_free(&g);

    /* Missing file: IO error naming the file and the tensor. */
    expect_external_error(dir, "gone", "nope.bin", NULL, NULL, SPRUN_ERR_IO, "nope.bin");
    expect_external_error(dir, "gone", "nope.bin", NULL, NULL, SPRUN_ERR_IO, "'gone'");
    /* Escapes: "..", absolute, empty. */
    const char *bad[] = {"../data.bin", "weights/../../etc/passwd", "/etc/passwd", ""};
    for (int i = 0; i < 4; i++)
        expect_external_error(sub, "esc", bad[i], NULL, NULL, SPRUN_ERR_PARSE, "leaves the model directory");
    /* Short file, length that disagrees with the shape, junk offset, a
     * directory instead of a file. */
    expect_external_error(dir, "short", "weights/data.bin", "16", NULL, SPRUN_ERR_PARSE, "too short");
    expect_external_error(dir, "len", "weights/data.bin", "0", "12", SPRUN_ERR_PARSE, "length 12");
    expect_external_error(dir, "off", "weights/data.bin", "-4", NULL, SPRUN_ERR_PARSE, "offset");
    expect_external_error(dir, "dir", "weights", NULL, NULL, SPRUN_ERR_IO, "not a regular file");

    remove_file(dir, "weights/data.bin");
    remove_file(dir, "model.onnx");
    rmdir(sub);
    rmdir(dir);
}

static void test_attributes_every_kind(void **state)
{
    (void)state;
    Onnx__ModelProto *m = model_new(17);
    Onnx__GraphProto *gp = m->graph;
    Onnx__NodeProto *n = node_add(gp, "Constant", "c", NULL, "k");
    Onnx__AttributeProto *a = attr_add(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    const int64_t kd[] = {2};
    const int64_t kv[] = {5, -6};
    a->t = tensor_raw(NULL, SPRUN_DTYPE_INT64, 1, kd, kv, sizeof kv);

    n = node_add(gp, "Custom", "all", "k", "z");
    n->domain = S("test.domain");
    a = attr_add(n, "f", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1, a->f = 0.5f;
    a = attr_add(n, "i", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1, a->i = -3;
    a = attr_add(n, "s", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1, a->s.len = 5, a->s.data = (uint8_t *)S("SAME_");
    a = attr_add(n, "fs", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = 2, a->floats = xmalloc(8);
    a->floats[0] = 1.f, a->floats[1] = 2.5f;
    a = attr_add(n, "is", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = 3, a->ints = xmalloc(24);
    a->ints[0] = 1, a->ints[1] = 2, a->ints[2] = INT64_MIN;
    a = attr_add(n, "ss", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = 2, a->strings = xmalloc(2 * sizeof *a->strings);
    a->strings[0].data = (uint8_t *)S("ab"), a->strings[0].len = 2;
    a->strings[1].data = (uint8_t *)S("c"), a->strings[1].len = 1;
    a = attr_add(n, "empty_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a = attr_add(n, "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = xmalloc(sizeof *a->g);
    onnx__graph_proto__init(a->g);
    a = attr_add(n, "untyped_int", 0); /* IR v1: type deduced from the field */
    a->has_i = 1, a->i = 9;

    sp_graph g;
    sp_err err;
    assert_int_equal(load_model(m, NULL, &g, &err), SPRUN_OK);
    const sp_node *c = &g.nodes[0];
    assert_ptr_equal(c->op, sp_op_find("", "Constant"));
    const sp_value *t = sp_attr_tensor(c, "value");
    assert_non_null(t);
    assert_int_equal(t->kind, SP_VAL_CONST);
    assert_int_equal(t->dtype, SPRUN_DTYPE_INT64);
    assert_int_equal(t->shape.rank, 1);
    assert_int_equal(t->shape.d[0], 2);
    assert_memory_equal(t->data, kv, sizeof kv);
    assert_string_equal(t->name, "c.value");
    assert_int_equal(val(&g, "k")->kind, SP_VAL_ACT); /* Constant stays a node */

    const sp_node *x = &g.nodes[1];
    assert_null(x->op);
    assert_int_equal(x->n_attr, 9);
    assert_true(sp_attr_float(x, "f", 0.f) == 0.5f);
    assert_int_equal(sp_attr_int(x, "i", 0), -3);
    assert_string_equal(sp_attr_string(x, "s", ""), "SAME_");
    const float *fs;
    assert_int_equal(sp_attr_floats(x, "fs", &fs), 2);
    assert_true(fs[1] == 2.5f);
    const int64_t *is;
    assert_int_equal(sp_attr_ints(x, "is", &is), 3);
    assert_true(is[2] == INT64_MIN);
    const sp_attr *ss = sp_attr_find(x, "ss");
    assert_int_equal(ss->type, SP_ATTR_STRINGS);
    assert_int_equal(ss->n, 2);
    assert_string_equal(ss->strings[0], "ab");
    assert_string_equal(ss->strings[1], "c");
    assert_int_equal(sp_attr_ints(x, "empty_ints", &is), 0);
    assert_int_equal(sp_attr_find(x, "body")->type, SP_ATTR_GRAPH);
    assert_int_equal(sp_attr_find(x, "untyped_int")->type, SP_ATTR_INT);
    assert_int_equal(sp_attr_int(x, "untyped_int", 0), 9);
    sp_graph_free(&g);

    /* A TENSOR attribute with a bad tensor fails the load, naming both. */
    m = model_new(17);
    n = node_add(m->graph, "Constant", "bad", NULL, "k");
    a = attr_add(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = tensor_raw(NULL, SPRUN_DTYPE_INT64, 1, kd, kv, 8);
    expect_error(m, NULL, SPRUN_ERR_PARSE, "attribute 'value' of node bad");
}

static void test_not_onnx(void **state)
{
    (void)state;
    sp_graph g;
    sp_graph_init(&g);
    sp_err err;
    const char *text = "hello, this is not a model\n";
    assert_int_equal(sp_onnx_load_buffer(text, strlen(text), NULL, &g, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "not an ONNX model"));
    assert_int_equal(sp_onnx_load_buffer(text, 0, NULL, &g, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(sp_onnx_load_buffer(NULL, 0, NULL, &g, &err), SPRUN_ERR_PARSE);
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    assert_int_equal(sp_onnx_load_buffer(png, sizeof png, NULL, &g, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "not an ONNX model"));
    /* Valid protobuf, no graph. */
    const uint8_t only_ir[] = {0x08, 0x07};
    assert_int_equal(sp_onnx_load_buffer(only_ir, sizeof only_ir, NULL, &g, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "ModelProto has no graph"));
    /* A file that does not exist, a directory, an empty file. */
    assert_int_equal(sp_onnx_load_file("/nonexistent/model.onnx", &g, &err), SPRUN_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/model.onnx"));
    assert_int_equal(sp_onnx_load_file("/tmp", &g, &err), SPRUN_ERR_IO);
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    write_file(dir, "empty.onnx", "", 0);
    char path[128];
    snprintf(path, sizeof path, "%s/empty.onnx", dir);
    assert_int_equal(sp_onnx_load_file(path, &g, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "empty"));
    remove_file(dir, "empty.onnx");
    rmdir(dir);
    /* NULL err is allowed. */
    assert_int_equal(sp_onnx_load_buffer(text, strlen(text), NULL, &g, NULL), SPRUN_ERR_PARSE);
    sp_graph_free(&g);
}

static void test_truncated_every_length(void **state)
{
    (void)state;
    /* A model with attributes, a TENSOR attribute and several initializers,
     * cut at every length: always an error, never a crash or a leak. */
    Onnx__ModelProto *m = small_model();
    Onnx__NodeProto *n = node_add(m->graph, "Constant", "c", NULL, "k");
    Onnx__AttributeProto *a = attr_add(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    const int64_t kd[] = {2};
    const int64_t kv[] = {5, -6};
    a->t = tensor_raw("kt", SPRUN_DTYPE_INT64, 1, kd, kv, sizeof kv);
    size_t len;
    uint8_t *buf = pack_model(m, &len);
    int truncated_msgs = 0;
    for (size_t cut = 0; cut < len; cut++) {
        /* A separate allocation of exactly `cut` bytes, so ASan sees overreads. */
        uint8_t *part = xmalloc(cut);
        memcpy(part, buf, cut);
        sp_graph g;
        sp_graph_init(&g);
        sp_err err = {0};
        int rc = sp_onnx_load_buffer(part, cut, NULL, &g, &err);
        if (rc == SPRUN_OK) /* a cut exactly between top-level fields can be valid */
            assert_true(cut > 0);
        else
            assert_true(err.msg[0] != '\0');
        truncated_msgs += strstr(err.msg, "truncated") != NULL;
        sp_graph_free(&g);
        free(part);
    }
    assert_true(truncated_msgs > (int)len / 2);
    /* And the whole buffer still loads. */
    sp_graph g;
    sp_graph_init(&g);
    sp_err err;
    assert_int_equal(sp_onnx_load_buffer(buf, len, NULL, &g, &err), SPRUN_OK);
    sp_graph_free(&g);
    /* Every single-byte corruption: errors or a graph, never a crash. */
    for (size_t i = 0; i < len; i++) {
        uint8_t *c = xmalloc(len);
        memcpy(c, buf, len);
        c[i] ^= 0xA5;
        sp_graph_init(&g);
        sp_onnx_load_buffer(c, len, NULL, &g, &err);
        sp_graph_free(&g);
        free(c);
    }
    free(buf);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* 200 levels of GRAPH attributes: protobuf-c would recurse without
     * bound; the pre-scan refuses. */
    Onnx__ModelProto *m = model_new(17);
    Onnx__GraphProto *gp = m->graph;
    for (int i = 0; i < 200; i++) {
        Onnx__NodeProto *n = node_add(gp, "If", NULL, NULL, NULL);
        Onnx__AttributeProto *a = attr_add(n, "then_branch", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
        a->g = xmalloc(sizeof *a->g);
        onnx__graph_proto__init(a->g);
        gp = a->g;
    }
    expect_error(m, NULL, SPRUN_ERR_PARSE, "nested");
}

static void test_opset(void **state)
{
    (void)state;
    /* Old opsets load (each op refuses what it does not implement); newer
     * than the runtime knows are refused. */
    sp_graph g6;
    sp_err e6;
    assert_int_equal(load_model(model_new(6), NULL, &g6, &e6), SPRUN_OK);
    assert_int_equal(g6.opset, 6);
    sp_graph_free(&g6);
    expect_error(model_new(24), NULL, SPRUN_ERR_UNSUPPORTED, "opset 24");
    expect_error(model_new(0), NULL, SPRUN_ERR_UNSUPPORTED, "no opset");
    /* ai.onnx spelled out, next to another domain's opset. */
    Onnx__ModelProto *m = model_new(0);
    const char *doms[] = {"com.microsoft", "ai.onnx"};
    for (int i = 0; i < 2; i++) {
        Onnx__OperatorSetIdProto *op = xmalloc(sizeof *op);
        onnx__operator_set_id_proto__init(op);
        op->domain = S(doms[i]);
        op->has_version = 1, op->version = i ? 7 : 1;
        PUSH(m->opset_import, m->n_opset_import, op);
    }
    sp_graph g;
    sp_err err;
    assert_int_equal(load_model(m, NULL, &g, &err), SPRUN_OK);
    assert_int_equal(g.opset, 7);
    sp_graph_free(&g);
}

static void test_bad_tensors(void **state)
{
    (void)state;
    const int64_t d2[] = {2};
    const float f2[] = {1, 2};
    /* Unsupported element types, named. */
    const int bad_types[] = {SPRUN_DTYPE_STRING, 14 /* COMPLEX64 */, 17 /* FLOAT8E4M3FN */};
    const char *bad_names[] = {"STRING", "COMPLEX64", "FLOAT8E4M3FN"};
    for (int i = 0; i < 3; i++) {
        Onnx__ModelProto *m = model_new(17);
        PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("t", bad_types[i], 1, d2, f2, 8));
        expect_error(m, NULL, SPRUN_ERR_UNSUPPORTED, bad_names[i]);
    }
    /* Graph input of an unsupported type. */
    Onnx__ModelProto *m = model_new(17);
    PUSH(m->graph->input, m->graph->n_input, vinfo("s", SPRUN_DTYPE_STRING, 1, d2, NULL));
    expect_error(m, NULL, SPRUN_ERR_UNSUPPORTED, "graph input 's'");
    /* raw_data size mismatch names the tensor. */
    m = model_new(17);
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("w1", SPRUN_DTYPE_FLOAT, 1, d2, f2, 6));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "'w1'");
    /* Typed-field count mismatch, and no data at all. */
    m = model_new(17);
    Onnx__TensorProto *t = tensor_new("w2", SPRUN_DTYPE_INT64, 1, d2);
    t->n_int64_data = 1, t->int64_data = xmalloc(8);
    PUSH(m->graph->initializer, m->graph->n_initializer, t);
    expect_error(m, NULL, SPRUN_ERR_PARSE, "int64_data has 1 values");
    m = model_new(17);
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_new("w3", SPRUN_DTYPE_FLOAT, 1, d2));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "no data");
    /* Negative dims, rank 9, overflow. */
    m = model_new(17);
    const int64_t neg[] = {2, -1};
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("n", SPRUN_DTYPE_FLOAT, 2, neg, f2, 8));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "negative");
    m = model_new(17);
    const int64_t r9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("r9", SPRUN_DTYPE_FLOAT, 9, r9, f2, 4));
    expect_error(m, NULL, SPRUN_ERR_UNSUPPORTED, "rank 9");
    m = model_new(17);
    PUSH(m->graph->input, m->graph->n_input, vinfo("x9", SPRUN_DTYPE_FLOAT, 9, r9, NULL));
    expect_error(m, NULL, SPRUN_ERR_UNSUPPORTED, "rank 9");
    m = model_new(17);
    const int64_t negi[] = {-3};
    PUSH(m->graph->input, m->graph->n_input, vinfo("xn", SPRUN_DTYPE_FLOAT, 1, negi, NULL));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "negative");
    m = model_new(17);
    const int64_t huge[] = {INT64_MAX, INT64_MAX, 2};
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("big", SPRUN_DTYPE_FLOAT, 3, huge, f2, 8));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "'big'");
    /* No data_type. */
    m = model_new(17);
    t = tensor_raw("nt", SPRUN_DTYPE_FLOAT, 1, d2, f2, 8);
    t->has_data_type = 0;
    PUSH(m->graph->initializer, m->graph->n_initializer, t);
    expect_error(m, NULL, SPRUN_ERR_PARSE, "data_type");
}

static void test_bad_graphs(void **state)
{
    (void)state;
    const int64_t d2[] = {2};
    const float f2[] = {1, 2};
    /* Two producers of one value. */
    Onnx__ModelProto *m = model_new(17);
    PUSH(m->graph->input, m->graph->n_input, vinfo("x", SPRUN_DTYPE_FLOAT, 1, d2, NULL));
    node_add(m->graph, "Relu", "r1", "x", "y");
    node_add(m->graph, "Relu", "r2", "x", "y");
    expect_error(m, NULL, SPRUN_ERR_PARSE, "produced twice");
    /* A node writing an initializer / a graph input. */
    m = model_new(17);
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("w", SPRUN_DTYPE_FLOAT, 1, d2, f2, 8));
    PUSH(m->graph->input, m->graph->n_input, vinfo("x", SPRUN_DTYPE_FLOAT, 1, d2, NULL));
    node_add(m->graph, "Relu", "r", "x", "w");
    expect_error(m, NULL, SPRUN_ERR_PARSE, "initializer 'w'");
    m = model_new(17);
    PUSH(m->graph->input, m->graph->n_input, vinfo("x", SPRUN_DTYPE_FLOAT, 1, d2, NULL));
    node_add(m->graph, "Relu", "r", "x", "x");
    expect_error(m, NULL, SPRUN_ERR_PARSE, "graph input 'x'");
    /* Duplicate initializer. */
    m = model_new(17);
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("w", SPRUN_DTYPE_FLOAT, 1, d2, f2, 8));
    PUSH(m->graph->initializer, m->graph->n_initializer, tensor_raw("w", SPRUN_DTYPE_FLOAT, 1, d2, f2, 8));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "defined twice");
    /* Undefined input, undefined output, cycle, missing op_type. */
    m = model_new(17);
    node_add(m->graph, "Relu", "r", "ghost", "y");
    expect_error(m, NULL, SPRUN_ERR_PARSE, "'ghost'");
    m = model_new(17);
    PUSH(m->graph->output, m->graph->n_output, vinfo("nowhere", SPRUN_DTYPE_FLOAT, 1, d2, NULL));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "'nowhere'");
    m = model_new(17);
    PUSH(m->graph->input, m->graph->n_input, vinfo("x", SPRUN_DTYPE_FLOAT, 1, d2, NULL));
    node_add(m->graph, "Add", "a", "x,b_out", "a_out");
    node_add(m->graph, "Relu", "b", "a_out", "b_out");
    expect_error(m, NULL, SPRUN_ERR_PARSE, "cycle");
    m = model_new(17);
    Onnx__NodeProto *n = node_add(m->graph, "Relu", "r", NULL, "y");
    free(n->op_type);
    n->op_type = NULL;
    expect_error(m, NULL, SPRUN_ERR_PARSE, "op_type");
    /* Graph input without a type, and of a sequence type. */
    m = model_new(17);
    Onnx__ValueInfoProto *vi = vinfo("x", SPRUN_DTYPE_FLOAT, 1, d2, NULL);
    onnx__type_proto__free_unpacked(vi->type, NULL);
    vi->type = NULL;
    PUSH(m->graph->input, m->graph->n_input, vi);
    expect_error(m, NULL, SPRUN_ERR_PARSE, "no type");
    m = model_new(17);
    PUSH(m->graph->input, m->graph->n_input, vinfo("u", 0, 1, d2, NULL));
    expect_error(m, NULL, SPRUN_ERR_PARSE, "no element type");
    m = model_new(17);
    vi = vinfo("seq", SPRUN_DTYPE_FLOAT, 1, d2, NULL);
    protobuf_c_message_free_unpacked(&vi->type->tensor_type->base, NULL);
    vi->type->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    vi->type->sequence_type = xmalloc(sizeof *vi->type->sequence_type);
    onnx__type_proto__sequence__init(vi->type->sequence_type);
    PUSH(m->graph->input, m->graph->n_input, vi);
    expect_error(m, NULL, SPRUN_ERR_UNSUPPORTED, "not a dense tensor");
}

static void test_tensor_from_buffer(void **state)
{
    (void)state;
    const int64_t d[] = {2, 3};
    const int32_t v[] = {1, -2, 3, -4, 5, -6};
    Onnx__TensorProto *t = tensor_raw("input_0", SPRUN_DTYPE_INT32, 2, d, v, sizeof v);
    size_t len = onnx__tensor_proto__get_packed_size(t);
    uint8_t *buf = xmalloc(len);
    onnx__tensor_proto__pack(t, buf);
    onnx__tensor_proto__free_unpacked(t, NULL);
    sp_value out;
    sp_err err;
    assert_int_equal(sp_onnx_tensor_from_buffer(buf, len, &out, &err), SPRUN_OK);
    assert_string_equal(out.name, "input_0");
    assert_int_equal(out.kind, SP_VAL_CONST);
    assert_int_equal(out.dtype, SPRUN_DTYPE_INT32);
    assert_int_equal(out.shape.rank, 2);
    assert_int_equal(out.shape.d[1], 3);
    assert_int_equal(out.nbytes, sizeof v);
    assert_memory_equal(out.data, v, sizeof v);
    sp_onnx_tensor_release(&out);
    assert_null(out.data);
    /* Every truncation fails cleanly. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *part = xmalloc(cut);
        memcpy(part, buf, cut);
        int rc = sp_onnx_tensor_from_buffer(part, cut, &out, &err);
        if (rc != SPRUN_OK)
            assert_null(out.data);
        sp_onnx_tensor_release(&out);
        free(part);
    }
    free(buf);
    const char *text = "not a tensor";
    assert_int_equal(sp_onnx_tensor_from_buffer(text, strlen(text), &out, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "not an ONNX TensorProto"));
    assert_int_equal(sp_onnx_tensor_from_buffer(text, 0, &out, &err), SPRUN_ERR_PARSE);
    /* External data has no directory to resolve against here. */
    t = tensor_new("ext", SPRUN_DTYPE_FLOAT, 1, d);
    tensor_external(t, "x.bin", NULL, NULL);
    len = onnx__tensor_proto__get_packed_size(t);
    buf = xmalloc(len);
    onnx__tensor_proto__pack(t, buf);
    onnx__tensor_proto__free_unpacked(t, NULL);
    assert_int_equal(sp_onnx_tensor_from_buffer(buf, len, &out, &err), SPRUN_ERR_PARSE);
    assert_non_null(strstr(err.msg, "'ext'"));
    free(buf);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = xmalloc(*len);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void test_real_model(void **state)
{
    (void)state;
    if (access(REAL_MODEL "/model.onnx", R_OK) != 0)
        skip(); /* libonnx-testdata not installed */
    sp_graph g;
    sp_graph_init(&g);
    sp_err err;
    assert_int_equal(sp_onnx_load_file(REAL_MODEL "/model.onnx", &g, &err), SPRUN_OK);
    assert_int_equal(g.opset, 11);
    assert_string_equal(g.base_dir, REAL_MODEL);
    assert_int_equal(g.n_inputs, 2); /* x and W are both fed (no initializers) */
    const sp_value *x = &g.values[g.inputs[0]], *w = &g.values[g.inputs[1]];
    assert_string_equal(x->name, "x");
    assert_string_equal(w->name, "W");
    const int64_t xs[] = {1, 1, 7, 5}, ws[] = {1, 1, 3, 3};
    assert_int_equal(x->shape.rank, 4);
    assert_memory_equal(x->shape.d, xs, sizeof xs);
    assert_memory_equal(w->shape.d, ws, sizeof ws);
    assert_int_equal(g.n_nodes, 1);
    const sp_node *conv = &g.nodes[0];
    assert_string_equal(conv->op_type, "Conv");
    assert_string_equal(conv->name, "Conv_0");
    assert_ptr_equal(conv->op, sp_op_find("", "Conv"));
    const int64_t *v;
    assert_int_equal(sp_attr_ints(conv, "strides", &v), 2);
    assert_true(v[0] == 2 && v[1] == 2);
    assert_int_equal(sp_attr_ints(conv, "pads", &v), 4);
    assert_int_equal(sp_attr_ints(conv, "kernel_shape", &v), 2);
    assert_int_equal(g.n_outputs, 1);
    const sp_value *y = &g.values[g.outputs[0]];
    assert_string_equal(y->name, "y");
    assert_int_equal(y->shape.rank, 4);
    assert_int_equal(y->shape.d[2], 4);
    assert_int_equal(y->shape.d[3], 3);
    sp_graph_free(&g);

    /* Its test data: TensorProto files. */
    size_t len = 0;
    uint8_t *buf = read_whole(REAL_MODEL "/test_data_set_0/input_0.pb", &len);
    assert_non_null(buf);
    sp_value t;
    assert_int_equal(sp_onnx_tensor_from_buffer(buf, len, &t, &err), SPRUN_OK);
    assert_int_equal(t.dtype, SPRUN_DTYPE_FLOAT);
    assert_memory_equal(t.shape.d, xs, sizeof xs);
    assert_int_equal(t.nbytes, 35 * sizeof(float));
    assert_true(((const float *)t.data)[34] == 34.f); /* np.arange */
    sp_onnx_tensor_release(&t);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inputs_outputs_shapes),
        cmocka_unit_test(test_optional_io_domains_and_order),
        cmocka_unit_test(test_initializer_typed_fields),
        cmocka_unit_test(test_fp16_raw),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_attributes_every_kind),
        cmocka_unit_test(test_not_onnx),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_opset),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_bad_graphs),
        cmocka_unit_test(test_tensor_from_buffer),
        cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
