/*
 * graph.h - sprun's intermediate representation.
 *
 * A graph is a list of values (tensors: graph inputs, constants and
 * activations) and a list of nodes kept in topological order. Everything
 * refers to values and nodes by index, so a graph can be cloned cheaply
 * (sp_graph_clone) for shape specialisation: the model keeps one graph with
 * symbolic dims; every input shape gets a plan holding a clone whose shapes
 * are concrete and whose shape-dependent subgraphs are folded to constants.
 *
 * Shapes: rank -1 means unknown; a dim of -1 is unknown or symbolic
 * (dim_param names it). Inside a plan every shape is concrete.
 *
 * Ownership: a graph owns its values' names and constant payloads when
 * owns_data is set; a clone shares the source's attributes and constant
 * payloads (owns_data = 0 for those) and owns what it folds itself.
 */
#ifndef SPRUN_GRAPH_H
#define SPRUN_GRAPH_H

#include "runtime/error.h"
#include "sprun.h"

#include <stddef.h>
#include <stdint.h>

#define SP_MAX_RANK SPRUN_MAX_RANK

typedef struct sp_shape {
    int32_t rank;          /* -1: unknown */
    int64_t d[SP_MAX_RANK]; /* -1: unknown / symbolic */
} sp_shape;

/* A dense tensor view handed to kernels: row-major, data not owned. */
typedef struct sp_tensor {
    int dtype; /* sprun_dtype */
    sp_shape shape;
    void *data;
} sp_tensor;

typedef enum sp_value_kind {
    SP_VAL_ACT = 0,   /* produced by a node at run time */
    SP_VAL_INPUT = 1, /* graph input fed by the caller */
    SP_VAL_CONST = 2, /* initializer, Constant, or folded */
} sp_value_kind;

typedef struct sp_value {
    char *name;
    int dtype; /* sprun_dtype; 0 = not yet known */
    sp_shape shape;
    char *dim_param[SP_MAX_RANK]; /* symbolic dim names (graph inputs/outputs) */
    int kind;                      /* sp_value_kind */
    void *data;                    /* SP_VAL_CONST: host payload, row-major */
    size_t nbytes;
    int owns_data; /* free(data) when the graph is freed */
    int producer;  /* index of producing node, -1 if none */
    int is_output; /* graph output */
} sp_value;

/* ONNX AttributeProto.AttributeType values. */
typedef enum sp_attr_type {
    SP_ATTR_UNDEFINED = 0,
    SP_ATTR_FLOAT = 1,
    SP_ATTR_INT = 2,
    SP_ATTR_STRING = 3,
    SP_ATTR_TENSOR = 4,
    SP_ATTR_GRAPH = 5,
    SP_ATTR_FLOATS = 6,
    SP_ATTR_INTS = 7,
    SP_ATTR_STRINGS = 8,
    SP_ATTR_TENSORS = 9,
    SP_ATTR_GRAPHS = 10,
} sp_attr_type;

typedef struct sp_attr {
    char *name;
    int type; /* sp_attr_type */
    float f;
    int64_t i;
    char *s; /* STRING: NUL-terminated copy */
    size_t s_len;
    int64_t n;       /* count for FLOATS / INTS / STRINGS */
    float *floats;   /* FLOATS */
    int64_t *ints;   /* INTS */
    char **strings;  /* STRINGS */
    sp_value *tensor; /* TENSOR: a standalone constant value (owned) */
} sp_attr;

/* Activation functions an epilogue can apply (shared with the kernels). */
typedef enum sp_act {
    SP_ACT_NONE = 0,
    SP_ACT_RELU = 1,
    SP_ACT_CLIP = 2, /* min = alpha, max = beta */
    SP_ACT_SIGMOID = 3,
    SP_ACT_GELU = 4, /* erf form */
    SP_ACT_TANH = 5,
    SP_ACT_HARDSWISH = 6,
    SP_ACT_HARDSIGMOID = 7, /* alpha, beta as in ONNX */
    SP_ACT_LEAKYRELU = 8,   /* alpha */
} sp_act;

/* What a node computes on top of its own op, recorded by the fusion pass:
 *   y = act(op(x) + in[residual_input])
 * residual_input indexes the node's in[] (the fused Add's other operand was
 * appended there, so liveness and memory planning see it as an input). */
typedef struct sp_fusion {
    int act;          /* sp_act */
    float alpha, beta;
    int residual_input; /* -1: none */
    int n_fused;        /* how many nodes were fused into this one */
} sp_fusion;

typedef struct sp_node {
    char *name;
    char *op_type;
    char *domain;
    const struct sp_op_def *op; /* NULL: unsupported */
    int n_in, n_out;
    int *in;  /* value indices, -1 for an absent optional input */
    int *out; /* value indices, -1 for an absent optional output */
    int n_attr;
    sp_attr *attr;
    sp_fusion fusion;
    int dead; /* removed by a pass; skipped everywhere */
} sp_node;

typedef struct sp_graph {
    sp_value *values;
    int n_values, cap_values;
    sp_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs; /* graph inputs fed at run time (not initializers) */
    int n_inputs;
    int *outputs;
    int n_outputs;
    int64_t opset;          /* opset of the default ONNX domain */
    int borrowed_attrs;     /* clone: attributes belong to the source graph */
    struct sp_strmap *index; /* value name -> index */
    char *base_dir;          /* for external data */
} sp_graph;

/* --- construction ------------------------------------------------------ */

/* Initialises an empty graph. */
void sp_graph_init(sp_graph *g);
/* Frees everything the graph owns (not the struct itself). */
void sp_graph_free(sp_graph *g);
/* Deep-copies src into dst for specialisation; constant payloads and
 * attributes are shared with src (src must outlive dst). */
int sp_graph_clone(sp_graph *dst, const sp_graph *src, sp_err *err);

/* Returns the index of the value named name, creating an empty activation
 * value if it does not exist yet; -1 on out-of-memory. An empty name means an
 * absent optional input/output and returns -1 without creating anything
 * (check name[0] before calling if you need to tell the two apart). */
int sp_graph_value(sp_graph *g, const char *name, sp_err *err);
/* Index of value name, or -1. */
int sp_graph_find(const sp_graph *g, const char *name);
/* Adds a new value with a unique name derived from base ("base_1"...). */
int sp_graph_new_value(sp_graph *g, const char *base, sp_err *err);
/* Appends a node (copies name/op_type/domain strings, takes ownership of
 * nothing else: in/out arrays are copied). Returns node index or -1. */
int sp_graph_add_node(sp_graph *g, const char *name, const char *op_type, const char *domain, const int *in, int n_in,
                      const int *out, int n_out, sp_err *err);
/* Reorders the node table topologically (producers before consumers),
 * keeping the present order wherever it already is one; passes that append
 * a node consumed by earlier ones call it. Updates the values' producers;
 * node indices held elsewhere become stale. A cycle is SPRUN_ERR_INTERNAL. */
int sp_graph_sort_nodes(sp_graph *g, sp_err *err);
/* Makes value v a constant owning data (takes ownership of data). */
void sp_value_set_const(sp_value *v, int dtype, const sp_shape *shape, void *data, size_t nbytes, int owns);

/* Attribute builders (tests, passes): copy their arguments; return 0 or an
 * out-of-memory code. */
int sp_node_set_attr_int(sp_node *n, const char *name, int64_t v);
int sp_node_set_attr_float(sp_node *n, const char *name, float v);
int sp_node_set_attr_string(sp_node *n, const char *name, const char *v);
int sp_node_set_attr_ints(sp_node *n, const char *name, const int64_t *v, int64_t count);
int sp_node_set_attr_floats(sp_node *n, const char *name, const float *v, int64_t count);

/* --- queries used by ops ------------------------------------------------ */

/* Input i of node n, or NULL when absent (i >= n_in or in[i] < 0). */
sp_value *sp_node_in(const sp_graph *g, const sp_node *n, int i);
sp_value *sp_node_out(const sp_graph *g, const sp_node *n, int i);
/* Constant payload of input i, or NULL if that input is not a constant. */
const void *sp_node_const(const sp_graph *g, const sp_node *n, int i);
/* Sets dtype and shape of output i (no-op for absent outputs). */
void sp_node_set_out(sp_graph *g, const sp_node *n, int i, int dtype, const sp_shape *shape);

const sp_attr *sp_attr_find(const sp_node *n, const char *name);
int64_t sp_attr_int(const sp_node *n, const char *name, int64_t def);
float sp_attr_float(const sp_node *n, const char *name, float def);
const char *sp_attr_string(const sp_node *n, const char *name, const char *def);
/* Number of ints (or floats) of a list attribute, *vals pointing into the
 * node; -1 and *vals = NULL when absent. */
int64_t sp_attr_ints(const sp_node *n, const char *name, const int64_t **vals);
int64_t sp_attr_floats(const sp_node *n, const char *name, const float **vals);
const sp_value *sp_attr_tensor(const sp_node *n, const char *name);

/* Element i of a constant of any numeric dtype as int64 or double:
 * sp_ld_i64 / sp_ld_f64 in kernels/cpu/tensor_cpu.h. */

/* --- shapes ------------------------------------------------------------- */

int64_t sp_shape_numel(const sp_shape *s); /* -1 if any dim unknown */
int sp_shape_known(const sp_shape *s);      /* rank >= 0 and every dim >= 0 */
int sp_shape_equal(const sp_shape *a, const sp_shape *b);
sp_shape sp_shape_make(int rank, const int64_t *d);
/* NumPy-style multidirectional broadcast of a and b into out; returns 0 or
 * SPRUN_ERR_SHAPE with a message naming both shapes. */
int sp_shape_broadcast(const sp_shape *a, const sp_shape *b, sp_shape *out, sp_err *err);
/* "1x3x224x224" (or "?" for unknown) into buf; returns buf. */
char *sp_shape_str(const sp_shape *s, char *buf, size_t len);
/* Normalises a possibly negative axis against rank; -1 if out of range. */
int sp_axis(int64_t axis, int rank);

/* Size of one element of dtype (0 if unsupported). */
size_t sp_dtype_size(int dtype);
const char *sp_dtype_name(int dtype);

/* Human-readable name of a node for messages: "'name' (OpType)". */
const char *sp_node_label(const sp_node *n, char *buf, size_t len);

/* Number of live consumers of value v (inputs of live nodes) plus 1 if it is
 * a graph output. O(nodes); passes call it sparingly. */
int sp_value_use_count(const sp_graph *g, int v);

#endif
