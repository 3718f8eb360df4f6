/*
 * onnx_loader.c - ONNX ModelProto -> sp_graph. See onnx_loader.h.
 */
#include "loaders/onnx_loader.h"

#include "loaders/onnx_tensor.h"
#include "onnx.pb-c.h"
#include "ops/op.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names are printed with %.*s bounded by this, so one absurd name cannot
 * push the useful part out of the 4 KiB message. */
#define NM 200

/* ------------------------------------------------------------------------ */
/* Types and shapes of graph inputs/outputs                                  */
/* ------------------------------------------------------------------------ */

/* Fills v's dtype/shape/dim_param from a declared type. `what` names the
 * value ("graph input 'x'"). required: a missing type is an error. */
static int set_declared_type(sp_value *v, const Onnx__TypeProto *tp, const char *what, int required, sp_err *err)
{
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) {
        if (required)
            return sp_err_set(err, SPRUN_ERR_PARSE, "%s has no type", what);
        return SPRUN_OK;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s is not a dense tensor (sequence, map, optional and sparse "
                                                      "types are not supported)", what);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int dt = tt->has_elem_type ? tt->elem_type : 0;
    if (dt == 0 && required)
        return sp_err_set(err, SPRUN_ERR_PARSE, "%s has no element type", what);
    if (dt != 0 && !sp_onnx_dtype_supported(dt))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s has unsupported element type %s (%d)", what,
                          sp_onnx_dtype_name(dt), dt);
    sp_shape s = {.rank = -1};
    if (tt->shape) {
        if (tt->shape->n_dim > SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s has rank %zu (at most %d supported)", what,
                              tt->shape->n_dim, SP_MAX_RANK);
        s.rank = (int32_t)tt->shape->n_dim;
        for (int i = 0; i < s.rank; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            s.d[i] = -1;
            if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                if (d->dim_value < 0)
                    return sp_err_set(err, SPRUN_ERR_PARSE, "%s has negative dimension %lld at axis %d", what,
                                      (long long)d->dim_value, i);
                s.d[i] = d->dim_value;
            }
        }
        /* Names second, so an error above leaves nothing allocated. */
        for (int i = 0; i < s.rank; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param &&
                d->dim_param[0]) {
                free(v->dim_param[i]);
                v->dim_param[i] = sp_strdup(d->dim_param);
                if (!v->dim_param[i])
                    return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory naming a dim of %s", what);
            }
        }
    }
    v->dtype = dt;
    v->shape = s;
    return SPRUN_OK;
}

/* ------------------------------------------------------------------------ */
/* Attributes                                                                */
/* ------------------------------------------------------------------------ */

/* IR version 1 files may omit the type: deduce it from the field that is set. */
static int attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_type)
        return (int)a->type;
    if (a->has_f) return SP_ATTR_FLOAT;
    if (a->has_i) return SP_ATTR_INT;
    if (a->has_s) return SP_ATTR_STRING;
    if (a->t) return SP_ATTR_TENSOR;
    if (a->g) return SP_ATTR_GRAPH;
    if (a->n_floats) return SP_ATTR_FLOATS;
    if (a->n_ints) return SP_ATTR_INTS;
    if (a->n_strings) return SP_ATTR_STRINGS;
    if (a->n_tensors) return SP_ATTR_TENSORS;
    if (a->n_graphs) return SP_ATTR_GRAPHS;
    return SP_ATTR_UNDEFINED;
}

static char *copy_bytes(const ProtobufCBinaryData *b)
{
    char *s = malloc(b->len + 1);
    if (s) {
        if (b->len)
            memcpy(s, b->data, b->len);
        s[b->len] = '\0';
    }
    return s;
}

/* Copies a list attribute's n elements. Never NULL, even when empty: NULL
 * reads as "absent" to some users of the list. */
static void *copy_array(const void *src, size_t n, size_t esize)
{
    void *p = malloc((n ? n : 1) * esize);
    if (p && n)
        memcpy(p, src, n * esize);
    return p;
}

/* Converts one attribute into out (zeroed by the caller). Partial results
 * stay in out and are freed with the graph. The attribute's tensor payload
 * is taken over from the message (a is not const for that reason). */
static int convert_attr(Onnx__AttributeProto *a, sp_attr *out, const char *node, const char *base_dir, sp_err *err)
{
    if (!a || !a->name || !a->name[0])
        return sp_err_set(err, SPRUN_ERR_PARSE, "node %.*s has an attribute without a name", NM, node);
    out->name = sp_strdup(a->name);
    if (!out->name)
        goto oom;
    out->type = attr_type(a);
    switch (out->type) {
    case SP_ATTR_FLOAT: out->f = a->f; break;
    case SP_ATTR_INT: out->i = a->i; break;
    case SP_ATTR_STRING:
        out->s = copy_bytes(&a->s);
        out->s_len = a->s.len;
        if (!out->s)
            goto oom;
        break;
    case SP_ATTR_TENSOR: {
        char what[3 * NM];
        snprintf(what, sizeof what, "attribute '%.*s' of node %.*s", NM, a->name, NM, node);
        if (!a->t)
            return sp_err_set(err, SPRUN_ERR_PARSE, "%s is a TENSOR without a tensor", what);
        sp_value *v = calloc(1, sizeof *v);
        if (!v)
            goto oom;
        v->producer = -1;
        out->tensor = v;
        /* The tensor's own name when it has one, else "node.attr". */
        if (a->t->name && a->t->name[0]) {
            v->name = sp_strdup(a->t->name);
        } else {
            size_t len = strlen(node) + strlen(a->name) + 2;
            v->name = malloc(len);
            if (v->name)
                snprintf(v->name, len, "%s.%s", node, a->name);
        }
        if (!v->name)
            goto oom;
        return sp_onnx_tensor_convert(a->t, base_dir, what, v, err);
    }
    case SP_ATTR_FLOATS:
        if (!(out->floats = copy_array(a->floats, a->n_floats, sizeof(float))))
            goto oom;
        out->n = (int64_t)a->n_floats;
        break;
    case SP_ATTR_INTS:
        if (!(out->ints = copy_array(a->ints, a->n_ints, sizeof(int64_t))))
            goto oom;
        out->n = (int64_t)a->n_ints;
        break;
    case SP_ATTR_STRINGS:
        out->strings = calloc(a->n_strings ? a->n_strings : 1, sizeof(char *));
        if (!out->strings)
            goto oom;
        out->n = (int64_t)a->n_strings;
        for (size_t i = 0; i < a->n_strings; i++)
            if (!(out->strings[i] = copy_bytes(&a->strings[i])))
                goto oom;
        break;
    default:
        /* TENSORS, GRAPH(S), SPARSE_TENSOR(S), TYPE_PROTO(S), UNDEFINED: the
         * type is kept so an op can say what it cannot handle; no payload. */
        break;
    }
    return SPRUN_OK;
oom:
    return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory converting attribute of node %.*s", NM, node);
}

/* ------------------------------------------------------------------------ */
/* Graph                                                                     */
/* ------------------------------------------------------------------------ */

/* A node proto with its names resolved to value indices. */
typedef struct res_node {
    int *in, *out;
    int n_in, n_out;
    char *name; /* node name, or "<op_type>_<index>" */
} res_node;

static int value_index(sp_graph *g, const char *name, sp_err *err)
{
    int v = sp_graph_value(g, name, err);
    if (v < 0)
        sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory adding value '%.*s'", NM, name);
    return v;
}

static int load_initializers(Onnx__GraphProto *gp, const char *base_dir, sp_graph *g, sp_err *err)
{
    if (gp->n_sparse_initializer)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "the graph has %zu sparse_initializer(s) (not supported)",
                          gp->n_sparse_initializer);
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *t = gp->initializer[i];
        if (!t || !t->name || !t->name[0])
            return sp_err_set(err, SPRUN_ERR_PARSE, "initializer #%zu has no name", i);
        char what[NM + 32];
        snprintf(what, sizeof what, "initializer '%.*s'", NM, t->name);
        if (sp_graph_find(g, t->name) >= 0)
            return sp_err_set(err, SPRUN_ERR_PARSE, "%s is defined twice", what);
        sp_value tmp = {0};
        int rc = sp_onnx_tensor_convert(t, base_dir, what, &tmp, err);
        if (rc)
            return rc;
        int v = value_index(g, t->name, err);
        if (v < 0) {
            free(tmp.data);
            return SPRUN_ERR_OUT_OF_MEMORY;
        }
        sp_value_set_const(&g->values[v], tmp.dtype, &tmp.shape, tmp.data, tmp.nbytes, 1);
        g->values[v].kind = SP_VAL_CONST;
        g->values[v].producer = -1;
    }
    return SPRUN_OK;
}

/* Resolves every node's input/output names to values and checks that each
 * value has one producer. prod[v] = index of the node proto producing v. */
static int resolve_nodes(const Onnx__GraphProto *gp, sp_graph *g, res_node *rn, int **prod_out, sp_err *err)
{
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        if (!np || !np->op_type || !np->op_type[0])
            return sp_err_set(err, SPRUN_ERR_PARSE, "node #%zu has no op_type", i);
        if (np->n_input > INT_MAX / 2 || np->n_output > INT_MAX / 2)
            return sp_err_set(err, SPRUN_ERR_PARSE, "node #%zu has too many inputs/outputs", i);
        if (np->name && np->name[0]) {
            rn[i].name = sp_strdup(np->name);
        } else {
            size_t len = strlen(np->op_type) + 24;
            if ((rn[i].name = malloc(len)))
                snprintf(rn[i].name, len, "%s_%zu", np->op_type, i);
        }
        rn[i].in = malloc((np->n_input + 1) * sizeof(int));
        rn[i].out = malloc((np->n_output + 1) * sizeof(int));
        if (!rn[i].name || !rn[i].in || !rn[i].out)
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory reading node #%zu", i);
        rn[i].n_in = (int)np->n_input;
        rn[i].n_out = (int)np->n_output;
        for (int k = 0; k < rn[i].n_in; k++) {
            const char *nm = np->input[k] ? np->input[k] : "";
            if ((rn[i].in[k] = nm[0] ? value_index(g, nm, err) : -1) < 0 && nm[0])
                return SPRUN_ERR_OUT_OF_MEMORY;
        }
        for (int k = 0; k < rn[i].n_out; k++) {
            const char *nm = np->output[k] ? np->output[k] : "";
            if ((rn[i].out[k] = nm[0] ? value_index(g, nm, err) : -1) < 0 && nm[0])
                return SPRUN_ERR_OUT_OF_MEMORY;
        }
    }

    int *prod = malloc(((size_t)g->n_values + 1) * sizeof(int));
    if (!prod)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory ordering nodes");
    *prod_out = prod;
    for (int v = 0; v < g->n_values; v++)
        prod[v] = -1;
    for (size_t i = 0; i < gp->n_node; i++) {
        for (int k = 0; k < rn[i].n_out; k++) {
            int v = rn[i].out[k];
            if (v < 0)
                continue;
            const sp_value *val = &g->values[v];
            if (val->kind != SP_VAL_ACT)
                return sp_err_set(err, SPRUN_ERR_PARSE, "node '%.*s' (%.*s) writes to %s '%.*s'", NM, rn[i].name, NM,
                                  gp->node[i]->op_type, val->kind == SP_VAL_INPUT ? "graph input" : "initializer", NM,
                                  val->name);
            if (prod[v] >= 0)
                return sp_err_set(err, SPRUN_ERR_PARSE, "value '%.*s' is produced twice: by node '%.*s' and by node '%.*s'",
                                  NM, val->name, NM, rn[prod[v]].name, NM, rn[i].name);
            prod[v] = (int)i;
        }
    }
    for (size_t i = 0; i < gp->n_node; i++)
        for (int k = 0; k < rn[i].n_in; k++) {
            int v = rn[i].in[k];
            if (v >= 0 && g->values[v].kind == SP_VAL_ACT && prod[v] < 0)
                return sp_err_set(err, SPRUN_ERR_PARSE,
                                  "node '%.*s' (%.*s): input '%.*s' is not produced by any node, graph input or "
                                  "initializer",
                                  NM, rn[i].name, NM, gp->node[i]->op_type, NM, g->values[v].name);
        }
    return SPRUN_OK;
}

/* Topological order of the node protos into order[]. Keeps the file's order
 * when it is already topological (the normal case); otherwise Kahn's
 * algorithm. A cycle is an error naming a node on it. */
static int order_nodes(size_t n, const res_node *rn, const int *prod, int *order, sp_err *err)
{
    int sorted = 1;
    for (size_t i = 0; i < n && sorted; i++)
        for (int k = 0; k < rn[i].n_in; k++)
            if (rn[i].in[k] >= 0 && prod[rn[i].in[k]] >= (int)i)
                sorted = 0;
    if (sorted) {
        for (size_t i = 0; i < n; i++)
            order[i] = (int)i;
        return SPRUN_OK;
    }
    /* Edges producer -> consumer in CSR form. */
    size_t n_edges = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < rn[i].n_in; k++)
            n_edges += rn[i].in[k] >= 0 && prod[rn[i].in[k]] >= 0;
    int *indeg = calloc(n + 1, sizeof(int)), *start = calloc(n + 2, sizeof(int));
    int *adj = malloc((n_edges + 1) * sizeof(int)), *fill = calloc(n + 1, sizeof(int));
    int rc = SPRUN_OK;
    if (!indeg || !start || !adj || !fill) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory ordering nodes");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < rn[i].n_in; k++)
            if (rn[i].in[k] >= 0 && prod[rn[i].in[k]] >= 0) {
                start[prod[rn[i].in[k]] + 1]++;
                indeg[i]++;
            }
    for (size_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < rn[i].n_in; k++)
            if (rn[i].in[k] >= 0 && prod[rn[i].in[k]] >= 0) {
                int p = prod[rn[i].in[k]];
                adj[start[p] + fill[p]++] = (int)i;
            }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            order[tail++] = (int)i;
    while (head < tail) {
        int u = order[head++];
        for (int e = start[u]; e < start[u + 1]; e++)
            if (--indeg[adj[e]] == 0)
                order[tail++] = adj[e];
    }
    if (tail < n) {
        size_t bad = 0;
        while (indeg[bad] == 0)
            bad++;
        rc = sp_err_set(err, SPRUN_ERR_PARSE, "the graph has a cycle through node '%.*s'", NM, rn[bad].name);
    }
done:
    free(indeg);
    free(start);
    free(adj);
    free(fill);
    return rc;
}

static int load_nodes(Onnx__GraphProto *gp, const char *base_dir, sp_graph *g, sp_err *err)
{
    size_t n = gp->n_node;
    if (n > INT_MAX / 2)
        return sp_err_set(err, SPRUN_ERR_PARSE, "the graph has too many nodes (%zu)", n);
    res_node *rn = calloc(n + 1, sizeof *rn);
    int *order = malloc((n + 1) * sizeof(int));
    int *prod = NULL;
    int rc = SPRUN_OK;
    if (!rn || !order) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory reading %zu nodes", n);
        goto done;
    }
    if ((rc = resolve_nodes(gp, g, rn, &prod, err)) || (rc = order_nodes(n, rn, prod, order, err)))
        goto done;

    for (size_t j = 0; j < n; j++) {
        int i = order[j];
        Onnx__NodeProto *np = gp->node[i];
        const char *domain = np->domain ? np->domain : "";
        int idx = sp_graph_add_node(g, rn[i].name, np->op_type, domain, rn[i].in, rn[i].n_in, rn[i].out,
                                    rn[i].n_out, err);
        if (idx < 0) {
            rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory adding node '%.*s'", NM, rn[i].name);
            goto done;
        }
        for (int k = 0; k < rn[i].n_out; k++)
            if (rn[i].out[k] >= 0)
                g->values[rn[i].out[k]].producer = idx;
        sp_node *node = &g->nodes[idx];
        node->op = sp_op_find(domain, np->op_type); /* NULL: listed later by the model loader */
        if (np->n_attribute) {
            node->attr = calloc(np->n_attribute, sizeof(sp_attr));
            if (!node->attr) {
                rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory reading attributes of '%.*s'", NM,
                                rn[i].name);
                goto done;
            }
            for (size_t a = 0; a < np->n_attribute; a++) {
                /* Count it first: whatever convert_attr allocated before a
                 * failure is then freed with the graph. */
                node->n_attr++;
                if ((rc = convert_attr(np->attribute[a], &node->attr[a], rn[i].name, base_dir, err)))
                    goto done;
            }
        }
    }
done:
    if (rn)
        for (size_t i = 0; i < n; i++) {
            free(rn[i].in);
            free(rn[i].out);
            free(rn[i].name);
        }
    free(rn);
    free(order);
    free(prod);
    return rc;
}

/* Graph inputs (outputs = 0) or outputs (outputs = 1) into g->inputs /
 * g->outputs. Runs before / after the nodes respectively: an input is a new
 * value, an output must already exist. */
static int load_io(Onnx__ValueInfoProto *const *list, size_t n, int outputs, sp_graph *g, sp_err *err)
{
    const char *kind = outputs ? "graph output" : "graph input";
    int *idx = malloc((n ? n : 1) * sizeof(int));
    if (!idx)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory listing %ss", kind);
    int *count = outputs ? &g->n_outputs : &g->n_inputs;
    *(outputs ? &g->outputs : &g->inputs) = idx;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *vi = list[i];
        if (!vi || !vi->name || !vi->name[0])
            return sp_err_set(err, SPRUN_ERR_PARSE, "%s #%zu has no name", kind, i);
        char what[NM + 32];
        snprintf(what, sizeof what, "%s '%.*s'", kind, NM, vi->name);
        int v = sp_graph_find(g, vi->name);
        if (!outputs) {
            if (v >= 0 && g->values[v].kind == SP_VAL_CONST)
                continue; /* an initializer listed as input (IR < 4 style): a constant */
            if (v >= 0)
                return sp_err_set(err, SPRUN_ERR_PARSE, "%s is listed twice", what);
            if ((v = value_index(g, vi->name, err)) < 0)
                return SPRUN_ERR_OUT_OF_MEMORY;
            g->values[v].kind = SP_VAL_INPUT;
        } else {
            if (v < 0 || (g->values[v].kind == SP_VAL_ACT && g->values[v].producer < 0))
                return sp_err_set(err, SPRUN_ERR_PARSE, "%s is not produced by any node, graph input or initializer",
                                  what);
            g->values[v].is_output = 1;
        }
        idx[(*count)++] = v;
        /* Inputs must declare their type; an output's declared type is a hint
         * for activations only (a constant or input keeps its own). */
        if (g->values[v].kind == SP_VAL_CONST || (outputs && g->values[v].kind == SP_VAL_INPUT))
            continue;
        int rc = set_declared_type(&g->values[v], vi->type, what, !outputs, err);
        if (rc)
            return rc;
    }
    return SPRUN_OK;
}

static int load_opset(const Onnx__ModelProto *m, sp_graph *g, sp_err *err)
{
    int found = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *op = m->opset_import[i];
        if (!op)
            continue;
        const char *d = op->domain ? op->domain : "";
        if (d[0] && strcmp(d, "ai.onnx") != 0)
            continue; /* other domains: their nodes are kept, and reported unsupported by op lookup */
        int64_t ver = op->has_version ? op->version : 0;
        if (!found || ver > g->opset)
            g->opset = ver;
        found = 1;
    }
    if (!found)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                          "the model imports no opset of the default ONNX domain (supported: %d to %d)",
                          SP_ONNX_MIN_OPSET, SP_ONNX_MAX_OPSET);
    if (g->opset < SP_ONNX_MIN_OPSET || g->opset > SP_ONNX_MAX_OPSET)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "opset %lld of the default ONNX domain is not supported "
                                                      "(supported: %d to %d)",
                          (long long)g->opset, SP_ONNX_MIN_OPSET, SP_ONNX_MAX_OPSET);
    return SPRUN_OK;
}

/* Converts an unpacked model into g; m's payloads are taken over. */
static int convert_model(Onnx__ModelProto *m, const char *base_dir, sp_graph *g, sp_err *err)
{
    int rc;
    if (!m->graph)
        return sp_err_set(err, SPRUN_ERR_PARSE, "ModelProto has no graph (is this an ONNX model?)");
    if ((rc = load_opset(m, g, err)))
        return rc;
    if (!(g->base_dir = sp_strdup(base_dir)))
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory");
    Onnx__GraphProto *gp = m->graph;
    if ((rc = load_initializers(gp, base_dir, g, err)) || (rc = load_io(gp->input, gp->n_input, 0, g, err)) ||
        (rc = load_nodes(gp, base_dir, g, err)) || (rc = load_io(gp->output, gp->n_output, 1, g, err)))
        return rc;
    return SPRUN_OK;
}

int sp_onnx_load_buffer(const void *data, size_t size, const char *base_dir, sp_graph *g, sp_err *err)
{
    sp_err local;
    if (!err)
        err = &local;
    if (!g)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "sp_onnx_load_buffer: graph is NULL");
    Onnx__ModelProto *m = sp_onnx_unpack(SP_ONNX_MODEL, data, size, err);
    if (!m)
        return err->code;
    int rc = convert_model(m, base_dir ? base_dir : ".", g, err);
    onnx__model_proto__free_unpacked(m, NULL);
    if (rc != SPRUN_OK) {
        sp_graph_free(g);
        sp_graph_init(g);
    }
    return rc;
}

/* Directory part of path ("." when there is none); malloc'ed. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return sp_strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = '\0';
    }
    return d;
}

int sp_onnx_load_file(const char *path, sp_graph *g, sp_err *err)
{
    sp_err local;
    if (!err)
        err = &local;
    if (!path || !g)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "sp_onnx_load_file: path or graph is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_err_set(err, SPRUN_ERR_IO, "cannot open model file '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sp_err_set(err, SPRUN_ERR_IO, "model file '%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return sp_err_set(err, SPRUN_ERR_PARSE, "%s: empty file (0 bytes): not an ONNX model", path);
    }
    size_t size = (size_t)st.st_size;

    /* Map the file instead of reading it: its pages are clean page cache, so
     * together with taking the weights over from the unpacked message
     * (onnx_tensor.c) the weights are held once in anonymous memory. The
     * mapping is dropped right after unpacking, before any conversion. */
    void *buf = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int mapped = buf != MAP_FAILED;
    if (!mapped) {
        buf = malloc(size);
        if (!buf) {
            close(fd);
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, size);
        }
        for (size_t got = 0; got < size;) {
            ssize_t r = read(fd, (char *)buf + got, size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                int e = errno;
                free(buf);
                close(fd);
                return sp_err_set(err, SPRUN_ERR_IO, "%s: read failed after %zu of %zu bytes%s%s", path, got, size,
                                  r < 0 ? ": " : "", r < 0 ? strerror(e) : "");
            }
            got += (size_t)r;
        }
    }
    close(fd);
    Onnx__ModelProto *m = sp_onnx_unpack(SP_ONNX_MODEL, buf, size, err);
    if (mapped)
        munmap(buf, size);
    else
        free(buf);
    if (!m)
        return sp_err_prefix(err, "%s", path);

    char *dir = dir_of(path);
    int rc = dir ? convert_model(m, dir, g, err) : sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory");
    free(dir);
    onnx__model_proto__free_unpacked(m, NULL);
    if (rc != SPRUN_OK) {
        sp_err_prefix(err, "%s", path);
        sp_graph_free(g);
        sp_graph_init(g);
    }
    return rc;
}
