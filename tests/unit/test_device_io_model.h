/*
 * test_device_io_model.h - the ONNX models of the device I/O tests
 * (tests/unit/test_device_io_cpu.c on the CPU, tests/gpu/test_device_io.c on the
 * GPU), serialized by a few lines of protobuf wire format so that neither
 * test needs protobuf-c, Python or a model file.
 *
 * dio_model_main: inputs x float [N, 3, 32, 32] (N symbolic; 48 KiB at
 * N = 4, larger than what the planner reads back), b float [32], idx int64
 * [5]; outputs
 *     y  = Relu(Conv(x, W[4,3,3,3], B[4], pads 1))   [N, 4, 32, 32]
 *     z  = Add(x, b)                                   [N, 3, 32, 32]
 *     gb = Gather(b, idx)                              [5]
 *     sh = Shape(x)                                    int64 [4], a constant of each plan
 *     mm = MatMul(Reshape(x, [-1, 64]), Wm[64, 16])    [N * 48, 16]
 * dio_model_reshape: inputs x float [6, 8], shape int64 [2]; output
 *     y  = Relu(Reshape(x, shape))                     (a shape decided by an input's values)
 * Weights are deterministic, non-zero, in [-1, 1].
 */
#ifndef SPRUN_TEST_DEVICE_IO_MODEL_H
#define SPRUN_TEST_DEVICE_IO_MODEL_H

#include "sprun.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- protobuf wire format ------------------------------------------------ */

typedef struct dio_pb {
    uint8_t *b;
    size_t n, cap;
} dio_pb;

static void dio_raw(dio_pb *p, const void *data, size_t n)
{
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
        if (!p->b) {
            fprintf(stderr, "test_device_io_model: out of memory\n");
            exit(1);
        }
    }
    if (n)
        memcpy(p->b + p->n, data, n);
    p->n += n;
}

static void dio_varint(dio_pb *p, uint64_t v)
{
    uint8_t c[10];
    size_t n = 0;
    do {
        c[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    dio_raw(p, c, n);
}

/* field = integer (wire type 0) */
static void dio_int(dio_pb *p, int field, int64_t v)
{
    dio_varint(p, (uint64_t)field << 3);
    dio_varint(p, (uint64_t)v);
}

/* field = bytes, string or message (wire type 2) */
static void dio_bytes(dio_pb *p, int field, const void *data, size_t n)
{
    dio_varint(p, (uint64_t)field << 3 | 2);
    dio_varint(p, n);
    dio_raw(p, data, n);
}

static void dio_str(dio_pb *p, int field, const char *s) { dio_bytes(p, field, s, strlen(s)); }

/* field = the message in sub, which is freed */
static void dio_msg(dio_pb *p, int field, dio_pb *sub)
{
    dio_bytes(p, field, sub->b, sub->n);
    free(sub->b);
    memset(sub, 0, sizeof *sub);
}

/* --- ONNX messages (field numbers of onnx.proto) -------------------------- */

enum { DIO_F32 = 1, DIO_I64 = 7 };

/* GraphProto.input (11) or .output (12); dims[i] < 0 is the symbolic "N" */
static void dio_value(dio_pb *graph, int field, const char *name, int dtype, int rank, const int64_t *dims)
{
    dio_pb shape = {0}, tensor = {0}, type = {0}, info = {0};
    for (int i = 0; i < rank; i++) {
        dio_pb dim = {0};
        if (dims[i] >= 0)
            dio_int(&dim, 1, dims[i]);
        else
            dio_str(&dim, 2, "N");
        dio_msg(&shape, 1, &dim);
    }
    dio_int(&tensor, 1, dtype);
    if (rank >= 0)
        dio_msg(&tensor, 2, &shape);
    free(shape.b);
    dio_msg(&type, 1, &tensor);
    dio_str(&info, 1, name);
    dio_msg(&info, 2, &type);
    dio_msg(graph, field, &info);
}

/* GraphProto.initializer (5): TensorProto with raw_data */
static void dio_init(dio_pb *graph, const char *name, int dtype, int rank, const int64_t *dims, const void *data,
                     size_t nbytes)
{
    dio_pb t = {0};
    for (int i = 0; i < rank; i++)
        dio_int(&t, 1, dims[i]);
    dio_int(&t, 2, dtype);
    dio_str(&t, 8, name);
    dio_bytes(&t, 9, data, nbytes);
    dio_msg(graph, 5, &t);
}

/* GraphProto.node (1); ins/outs NULL-terminated; attrs: encoded
 * AttributeProto messages (dio_attr_*), may be empty */
static void dio_node(dio_pb *graph, const char *op, const char *name, const char *const *ins,
                     const char *const *outs, dio_pb *attrs)
{
    dio_pb n = {0};
    for (; *ins; ins++)
        dio_str(&n, 1, *ins);
    for (; *outs; outs++)
        dio_str(&n, 2, *outs);
    dio_str(&n, 3, name);
    dio_str(&n, 4, op);
    if (attrs && attrs->n)
        dio_raw(&n, attrs->b, attrs->n);
    if (attrs) {
        free(attrs->b);
        memset(attrs, 0, sizeof *attrs);
    }
    dio_msg(graph, 1, &n);
}

/* NodeProto.attribute (5): type INTS (7) */
static void dio_attr_ints(dio_pb *attrs, const char *name, int n, const int64_t *v)
{
    dio_pb a = {0};
    dio_str(&a, 1, name);
    for (int i = 0; i < n; i++)
        dio_int(&a, 8, v[i]);
    dio_int(&a, 20, 7);
    dio_msg(attrs, 5, &a);
}

/* ModelProto: ir_version 8, opset 13, the graph (freed); caller frees .b */
static dio_pb dio_finish(dio_pb *graph)
{
    dio_pb m = {0}, opset = {0};
    dio_str(graph, 2, "g");
    dio_int(&m, 1, 8);
    dio_str(&opset, 1, "");
    dio_int(&opset, 2, 13);
    dio_msg(&m, 8, &opset);
    dio_msg(&m, 7, graph);
    return m;
}

#define DIO_NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* deterministic non-zero weights in [-1, 1] */
static void dio_weights(float *w, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        float v = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
        w[i] = v == 0.0f ? 0.5f : v;
    }
}

/* A host tensor with room for its values (data malloc'ed, NULL if out of
 * memory); memory is SPRUN_MEMORY_HOST. */
static inline sprun_tensor dio_tensor(const char *name, sprun_dtype dt, int rank, const int64_t *dims)
{
    sprun_tensor t = {.name = name, .dtype = dt, .rank = rank};
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)(t.dims[i] = dims[i]);
    t.nbytes = n * sprun_dtype_size(dt);
    t.data = malloc(t.nbytes ? t.nbytes : 1);
    return t;
}

/* --- the models ------------------------------------------------------------ */

static inline dio_pb dio_model_main(void)
{
    dio_pb g = {0}, attrs = {0};
    float w[4 * 3 * 3 * 3], bias[4], wm[64 * 16];
    dio_weights(w, 4 * 3 * 3 * 3, 1);
    dio_weights(bias, 4, 2);
    dio_weights(wm, 64 * 16, 3);
    const int64_t target[2] = {-1, 64};
    dio_value(&g, 11, "x", DIO_F32, 4, (const int64_t[]){-1, 3, 32, 32});
    dio_value(&g, 11, "b", DIO_F32, 1, (const int64_t[]){32});
    dio_value(&g, 11, "idx", DIO_I64, 1, (const int64_t[]){5});
    dio_init(&g, "W", DIO_F32, 4, (const int64_t[]){4, 3, 3, 3}, w, sizeof w);
    dio_init(&g, "B", DIO_F32, 1, (const int64_t[]){4}, bias, sizeof bias);
    dio_init(&g, "Wm", DIO_F32, 2, (const int64_t[]){64, 16}, wm, sizeof wm);
    dio_init(&g, "target", DIO_I64, 1, (const int64_t[]){2}, target, sizeof target);
    dio_attr_ints(&attrs, "pads", 4, (const int64_t[]){1, 1, 1, 1});
    dio_attr_ints(&attrs, "kernel_shape", 2, (const int64_t[]){3, 3});
    dio_node(&g, "Conv", "conv", DIO_NAMES("x", "W", "B"), DIO_NAMES("c"), &attrs);
    dio_node(&g, "Relu", "relu", DIO_NAMES("c"), DIO_NAMES("y"), NULL);
    dio_node(&g, "Add", "add", DIO_NAMES("x", "b"), DIO_NAMES("z"), NULL);
    dio_node(&g, "Gather", "gather", DIO_NAMES("b", "idx"), DIO_NAMES("gb"), NULL);
    dio_node(&g, "Shape", "shape", DIO_NAMES("x"), DIO_NAMES("sh"), NULL);
    dio_node(&g, "Reshape", "reshape", DIO_NAMES("x", "target"), DIO_NAMES("r"), NULL);
    dio_node(&g, "MatMul", "matmul", DIO_NAMES("r", "Wm"), DIO_NAMES("mm"), NULL);
    dio_value(&g, 12, "y", DIO_F32, -1, NULL);
    dio_value(&g, 12, "z", DIO_F32, -1, NULL);
    dio_value(&g, 12, "gb", DIO_F32, -1, NULL);
    dio_value(&g, 12, "sh", DIO_I64, -1, NULL);
    dio_value(&g, 12, "mm", DIO_F32, -1, NULL);
    return dio_finish(&g);
}

static inline dio_pb dio_model_reshape(void)
{
    dio_pb g = {0};
    dio_value(&g, 11, "x", DIO_F32, 2, (const int64_t[]){6, 8});
    dio_value(&g, 11, "shape", DIO_I64, 1, (const int64_t[]){2});
    dio_node(&g, "Reshape", "reshape", DIO_NAMES("x", "shape"), DIO_NAMES("r"), NULL);
    dio_node(&g, "Relu", "relu", DIO_NAMES("r"), DIO_NAMES("y"), NULL);
    dio_value(&g, 12, "y", DIO_F32, -1, NULL);
    return dio_finish(&g);
}

#endif
