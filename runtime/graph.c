/* graph.c - construction, cloning and queries of the IR (see graph.h). */
#include "runtime/graph.h"

#include "ops/op.h"
#include "runtime/strmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sp_graph_init(sp_graph *g)
{
    memset(g, 0, sizeof *g);
    g->opset = 17;
}

static void attr_free(sp_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (int64_t i = 0; i < a->n; i++)
            free(a->strings[i]);
    free(a->strings);
    if (a->tensor) {
        free(a->tensor->name);
        for (int d = 0; d < SP_MAX_RANK; d++)
            free(a->tensor->dim_param[d]);
        if (a->tensor->owns_data)
            free(a->tensor->data);
        free(a->tensor);
    }
}

void sp_graph_free(sp_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++) {
        sp_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < SP_MAX_RANK; d++)
            free(v->dim_param[d]);
        if (v->owns_data)
            free(v->data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        sp_node *n = &g->nodes[i];
        free(n->name);
        free(n->op_type);
        free(n->domain);
        free(n->in);
        free(n->out);
        if (!g->borrowed_attrs) {
            for (int a = 0; a < n->n_attr; a++)
                attr_free(&n->attr[a]);
            free(n->attr);
        }
    }
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->base_dir);
    sp_strmap_destroy(g->index);
    memset(g, 0, sizeof *g);
}

static int *dup_ints(const int *src, int n)
{
    int *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (p && n > 0)
        memcpy(p, src, (size_t)n * sizeof *p);
    return p;
}

int sp_graph_clone(sp_graph *dst, const sp_graph *src, sp_err *err)
{
    sp_graph_init(dst);
    dst->opset = src->opset;
    dst->borrowed_attrs = 1;
    dst->values = calloc((size_t)(src->n_values > 0 ? src->n_values : 1), sizeof *dst->values);
    dst->nodes = calloc((size_t)(src->n_nodes > 0 ? src->n_nodes : 1), sizeof *dst->nodes);
    dst->inputs = dup_ints(src->inputs, src->n_inputs);
    dst->outputs = dup_ints(src->outputs, src->n_outputs);
    dst->index = sp_strmap_create();
    if (!dst->values || !dst->nodes || !dst->inputs || !dst->outputs || !dst->index)
        goto oom;
    dst->cap_values = src->n_values > 0 ? src->n_values : 1;
    dst->cap_nodes = src->n_nodes > 0 ? src->n_nodes : 1;
    dst->n_inputs = src->n_inputs;
    dst->n_outputs = src->n_outputs;
    dst->base_dir = sp_strdup(src->base_dir);
    for (int i = 0; i < src->n_values; i++) {
        const sp_value *s = &src->values[i];
        sp_value *d = &dst->values[i];
        *d = *s;
        d->owns_data = 0; /* payload shared with the source graph */
        d->name = sp_strdup(s->name);
        for (int k = 0; k < SP_MAX_RANK; k++)
            d->dim_param[k] = s->dim_param[k] ? sp_strdup(s->dim_param[k]) : NULL;
        dst->n_values = i + 1;
        if (!d->name || sp_strmap_put(dst->index, d->name, i) != 0)
            goto oom;
    }
    for (int i = 0; i < src->n_nodes; i++) {
        const sp_node *s = &src->nodes[i];
        sp_node *d = &dst->nodes[i];
        *d = *s;
        d->name = sp_strdup(s->name);
        d->op_type = sp_strdup(s->op_type);
        d->domain = sp_strdup(s->domain ? s->domain : "");
        d->in = dup_ints(s->in, s->n_in);
        d->out = dup_ints(s->out, s->n_out);
        dst->n_nodes = i + 1;
        if (!d->name || !d->op_type || !d->domain || !d->in || !d->out)
            goto oom;
    }
    return SPRUN_OK;
oom:
    sp_graph_free(dst);
    return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory cloning the graph");
}

static int ensure_values(sp_graph *g, sp_err *err)
{
    if (!g->index && !(g->index = sp_strmap_create()))
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory (value index)");
    if (g->n_values < g->cap_values)
        return SPRUN_OK;
    int ncap = g->cap_values ? g->cap_values * 2 : 64;
    sp_value *nv = realloc(g->values, (size_t)ncap * sizeof *nv);
    if (!nv)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory growing the value table to %d", ncap);
    g->values = nv;
    g->cap_values = ncap;
    return SPRUN_OK;
}

static int add_value(sp_graph *g, const char *name, sp_err *err)
{
    if (ensure_values(g, err) != SPRUN_OK)
        return -1;
    int idx = g->n_values;
    sp_value *v = &g->values[idx];
    memset(v, 0, sizeof *v);
    v->name = sp_strdup(name);
    v->shape.rank = -1;
    v->producer = -1;
    if (!v->name || sp_strmap_put(g->index, name, idx) != 0) {
        free(v->name);
        sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory adding value '%s'", name);
        return -1;
    }
    g->n_values++;
    return idx;
}

int sp_graph_find(const sp_graph *g, const char *name) { return sp_strmap_get(g->index, name); }

int sp_graph_value(sp_graph *g, const char *name, sp_err *err)
{
    if (!name || !name[0])
        return -1;
    int idx = sp_graph_find(g, name);
    return idx >= 0 ? idx : add_value(g, name, err);
}

int sp_graph_new_value(sp_graph *g, const char *base, sp_err *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s", base && base[0] ? base : "v");
    for (int k = 1; sp_graph_find(g, name) >= 0; k++)
        snprintf(name, sizeof name, "%s_%d", base && base[0] ? base : "v", k);
    return add_value(g, name, err);
}

int sp_graph_add_node(sp_graph *g, const char *name, const char *op_type, const char *domain, const int *in, int n_in,
                      const int *out, int n_out, sp_err *err)
{
    if (g->n_nodes == g->cap_nodes) {
        int ncap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        sp_node *nn = realloc(g->nodes, (size_t)ncap * sizeof *nn);
        if (!nn) {
            sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory growing the node table");
            return -1;
        }
        g->nodes = nn;
        g->cap_nodes = ncap;
    }
    int idx = g->n_nodes;
    sp_node *n = &g->nodes[idx];
    memset(n, 0, sizeof *n);
    n->name = sp_strdup(name ? name : "");
    n->op_type = sp_strdup(op_type);
    n->domain = sp_strdup(domain ? domain : "");
    n->in = dup_ints(in, n_in);
    n->out = dup_ints(out, n_out);
    n->n_in = n_in;
    n->n_out = n_out;
    n->fusion.residual_input = -1;
    if (!n->name || !n->op_type || !n->domain || !n->in || !n->out) {
        free(n->name);
        free(n->op_type);
        free(n->domain);
        free(n->in);
        free(n->out);
        sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory adding node '%s'", name ? name : "");
        return -1;
    }
    n->op = sp_op_find(n->domain, n->op_type);
    g->n_nodes++;
    for (int i = 0; i < n_out; i++)
        if (out[i] >= 0)
            g->values[out[i]].producer = idx;
    return idx;
}

void sp_value_set_const(sp_value *v, int dtype, const sp_shape *shape, void *data, size_t nbytes, int owns)
{
    if (v->owns_data && v->data != data)
        free(v->data);
    v->kind = SP_VAL_CONST;
    v->dtype = dtype;
    v->shape = *shape;
    v->data = data;
    v->nbytes = nbytes;
    v->owns_data = owns;
}

/* --- attributes ---------------------------------------------------------- */

static sp_attr *attr_slot(sp_node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attr[i].name, name) == 0) {
            attr_free(&n->attr[i]);
            memset(&n->attr[i], 0, sizeof n->attr[i]);
            n->attr[i].name = sp_strdup(name);
            return n->attr[i].name ? &n->attr[i] : NULL;
        }
    sp_attr *na = realloc(n->attr, (size_t)(n->n_attr + 1) * sizeof *na);
    if (!na)
        return NULL;
    n->attr = na;
    sp_attr *a = &n->attr[n->n_attr];
    memset(a, 0, sizeof *a);
    a->name = sp_strdup(name);
    if (!a->name)
        return NULL;
    n->n_attr++;
    return a;
}

int sp_node_set_attr_int(sp_node *n, const char *name, int64_t v)
{
    sp_attr *a = attr_slot(n, name);
    if (!a)
        return SPRUN_ERR_OUT_OF_MEMORY;
    a->type = SP_ATTR_INT;
    a->i = v;
    return SPRUN_OK;
}

int sp_node_set_attr_float(sp_node *n, const char *name, float v)
{
    sp_attr *a = attr_slot(n, name);
    if (!a)
        return SPRUN_ERR_OUT_OF_MEMORY;
    a->type = SP_ATTR_FLOAT;
    a->f = v;
    return SPRUN_OK;
}

int sp_node_set_attr_string(sp_node *n, const char *name, const char *v)
{
    sp_attr *a = attr_slot(n, name);
    if (!a)
        return SPRUN_ERR_OUT_OF_MEMORY;
    a->type = SP_ATTR_STRING;
    a->s = sp_strdup(v);
    a->s_len = strlen(v);
    return a->s ? SPRUN_OK : SPRUN_ERR_OUT_OF_MEMORY;
}

int sp_node_set_attr_ints(sp_node *n, const char *name, const int64_t *v, int64_t count)
{
    sp_attr *a = attr_slot(n, name);
    if (!a)
        return SPRUN_ERR_OUT_OF_MEMORY;
    a->type = SP_ATTR_INTS;
    a->n = count;
    a->ints = malloc((size_t)(count > 0 ? count : 1) * sizeof *a->ints);
    if (!a->ints)
        return SPRUN_ERR_OUT_OF_MEMORY;
    if (count > 0)
        memcpy(a->ints, v, (size_t)count * sizeof *v);
    return SPRUN_OK;
}

int sp_node_set_attr_floats(sp_node *n, const char *name, const float *v, int64_t count)
{
    sp_attr *a = attr_slot(n, name);
    if (!a)
        return SPRUN_ERR_OUT_OF_MEMORY;
    a->type = SP_ATTR_FLOATS;
    a->n = count;
    a->floats = malloc((size_t)(count > 0 ? count : 1) * sizeof *a->floats);
    if (!a->floats)
        return SPRUN_ERR_OUT_OF_MEMORY;
    if (count > 0)
        memcpy(a->floats, v, (size_t)count * sizeof *v);
    return SPRUN_OK;
}

const sp_attr *sp_attr_find(const sp_node *n, const char *name)
{
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attr[i].name, name) == 0)
            return &n->attr[i];
    return NULL;
}

int64_t sp_attr_int(const sp_node *n, const char *name, int64_t def)
{
    const sp_attr *a = sp_attr_find(n, name);
    return a && a->type == SP_ATTR_INT ? a->i : def;
}

float sp_attr_float(const sp_node *n, const char *name, float def)
{
    const sp_attr *a = sp_attr_find(n, name);
    if (!a)
        return def;
    if (a->type == SP_ATTR_FLOAT)
        return a->f;
    if (a->type == SP_ATTR_INT)
        return (float)a->i;
    return def;
}

const char *sp_attr_string(const sp_node *n, const char *name, const char *def)
{
    const sp_attr *a = sp_attr_find(n, name);
    return a && a->type == SP_ATTR_STRING && a->s ? a->s : def;
}

int64_t sp_attr_ints(const sp_node *n, const char *name, const int64_t **vals)
{
    const sp_attr *a = sp_attr_find(n, name);
    if (!a || a->type != SP_ATTR_INTS) {
        *vals = NULL;
        return -1;
    }
    *vals = a->ints;
    return a->n;
}

int64_t sp_attr_floats(const sp_node *n, const char *name, const float **vals)
{
    const sp_attr *a = sp_attr_find(n, name);
    if (!a || a->type != SP_ATTR_FLOATS) {
        *vals = NULL;
        return -1;
    }
    *vals = a->floats;
    return a->n;
}

const sp_value *sp_attr_tensor(const sp_node *n, const char *name)
{
    const sp_attr *a = sp_attr_find(n, name);
    return a && a->type == SP_ATTR_TENSOR ? a->tensor : NULL;
}

/* --- node queries --------------------------------------------------------- */

sp_value *sp_node_in(const sp_graph *g, const sp_node *n, int i)
{
    if (i < 0 || i >= n->n_in || n->in[i] < 0)
        return NULL;
    return &g->values[n->in[i]];
}

sp_value *sp_node_out(const sp_graph *g, const sp_node *n, int i)
{
    if (i < 0 || i >= n->n_out || n->out[i] < 0)
        return NULL;
    return &g->values[n->out[i]];
}

const void *sp_node_const(const sp_graph *g, const sp_node *n, int i)
{
    const sp_value *v = sp_node_in(g, n, i);
    return v && v->kind == SP_VAL_CONST ? (v->data ? v->data : (const void *)"") : NULL;
}

void sp_node_set_out(sp_graph *g, const sp_node *n, int i, int dtype, const sp_shape *shape)
{
    sp_value *v = sp_node_out(g, n, i);
    if (!v)
        return;
    v->dtype = dtype;
    v->shape = *shape;
}

/* --- shapes ---------------------------------------------------------------- */

int64_t sp_shape_numel(const sp_shape *s)
{
    if (s->rank < 0)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i] < 0)
            return -1;
        if (s->d[i] == 0)
            n = 0;
    }
    if (n == 0)
        return 0;
    /* Overflow-checked: element counts past 2^62 are treated as unknown, so
     * absurd shapes from corrupt models fail as shape errors, never wrap. */
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i] > (INT64_C(1) << 62) / n)
            return -1;
        n *= s->d[i];
    }
    return n;
}

int sp_shape_known(const sp_shape *s) { return sp_shape_numel(s) >= 0; }

int sp_shape_equal(const sp_shape *a, const sp_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

sp_shape sp_shape_make(int rank, const int64_t *d)
{
    sp_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank && i < SP_MAX_RANK; i++)
        s.d[i] = d ? d[i] : 1;
    return s;
}

int sp_shape_broadcast(const sp_shape *a, const sp_shape *b, sp_shape *out, sp_err *err)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    sp_shape o;
    memset(&o, 0, sizeof o);
    o.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da == db || db == 1)
            o.d[i] = da;
        else if (da == 1)
            o.d[i] = db;
        else {
            char sa[128], sb[128];
            return sp_err_set(err, SPRUN_ERR_SHAPE, "shapes %s and %s cannot be broadcast",
                              sp_shape_str(a, sa, sizeof sa), sp_shape_str(b, sb, sizeof sb));
        }
    }
    *out = o;
    return SPRUN_OK;
}

char *sp_shape_str(const sp_shape *s, char *buf, size_t len)
{
    if (!len)
        return buf;
    buf[0] = '\0';
    if (s->rank < 0) {
        snprintf(buf, len, "?");
        return buf;
    }
    if (s->rank == 0) {
        snprintf(buf, len, "scalar");
        return buf;
    }
    size_t used = 0;
    for (int i = 0; i < s->rank && used < len; i++) {
        int w = s->d[i] >= 0 ? snprintf(buf + used, len - used, "%s%lld", i ? "x" : "", (long long)s->d[i])
                             : snprintf(buf + used, len - used, "%s?", i ? "x" : "");
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

int sp_axis(int64_t axis, int rank)
{
    if (axis < 0)
        axis += rank;
    return axis >= 0 && axis < (rank > 0 ? rank : 1) ? (int)axis : -1;
}

size_t sp_dtype_size(int dtype)
{
    switch (dtype) {
    case SPRUN_DTYPE_FLOAT:
    case SPRUN_DTYPE_INT32:
    case SPRUN_DTYPE_UINT32: return 4;
    case SPRUN_DTYPE_UINT8:
    case SPRUN_DTYPE_INT8:
    case SPRUN_DTYPE_BOOL: return 1;
    case SPRUN_DTYPE_UINT16:
    case SPRUN_DTYPE_INT16:
    case SPRUN_DTYPE_FLOAT16:
    case SPRUN_DTYPE_BFLOAT16: return 2;
    case SPRUN_DTYPE_INT64:
    case SPRUN_DTYPE_DOUBLE:
    case SPRUN_DTYPE_UINT64: return 8;
    default: return 0;
    }
}

size_t sprun_dtype_size(sprun_dtype dtype) { return sp_dtype_size(dtype); }

const char *sp_dtype_name(int dtype)
{
    switch (dtype) {
    case SPRUN_DTYPE_FLOAT: return "float32";
    case SPRUN_DTYPE_UINT8: return "uint8";
    case SPRUN_DTYPE_INT8: return "int8";
    case SPRUN_DTYPE_UINT16: return "uint16";
    case SPRUN_DTYPE_INT16: return "int16";
    case SPRUN_DTYPE_INT32: return "int32";
    case SPRUN_DTYPE_INT64: return "int64";
    case SPRUN_DTYPE_STRING: return "string";
    case SPRUN_DTYPE_BOOL: return "bool";
    case SPRUN_DTYPE_FLOAT16: return "float16";
    case SPRUN_DTYPE_DOUBLE: return "float64";
    case SPRUN_DTYPE_UINT32: return "uint32";
    case SPRUN_DTYPE_UINT64: return "uint64";
    case SPRUN_DTYPE_BFLOAT16: return "bfloat16";
    default: return "undefined";
    }
}

const char *sprun_dtype_name(sprun_dtype dtype) { return sp_dtype_name(dtype); }

const char *sp_node_label(const sp_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "'%s' (%s)", n->name ? n->name : "", n->op_type ? n->op_type : "?");
    return buf;
}

int sp_value_use_count(const sp_graph *g, int v)
{
    int uses = g->values[v].is_output ? 1 : 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v)
                uses++;
    }
    return uses;
}

int sp_graph_sort_nodes(sp_graph *g, sp_err *err)
{
    const int n = g->n_nodes;
    if (n <= 1)
        return SPRUN_OK;
    size_t edges = 0;
    for (int i = 0; i < n; i++)
        edges += (size_t)g->nodes[i].n_in;
    signed char *state = calloc((size_t)n, 1); /* 0 new, 1 inputs pending, 2 placed */
    int *order = malloc((size_t)n * sizeof *order), *inv = malloc((size_t)n * sizeof *inv);
    int *stack = malloc((edges + (size_t)n) * sizeof *stack);
    sp_node *sorted = malloc((size_t)n * sizeof *sorted);
    int rc = SPRUN_OK, cnt = 0;
    if (!state || !order || !inv || !stack || !sorted) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of host memory ordering the nodes");
        goto done;
    }
    /* depth first from each node in index order, producers first: nodes
     * already in order keep it */
    for (int i = 0; i < n; i++) {
        if (state[i])
            continue;
        int sp = 0;
        stack[sp++] = i;
        while (sp) {
            const int u = stack[sp - 1];
            if (state[u] == 2) {
                sp--;
                continue;
            }
            if (state[u] == 1) {
                sp--;
                state[u] = 2;
                order[cnt++] = u;
                continue;
            }
            state[u] = 1;
            const sp_node *nu = &g->nodes[u];
            for (int k = nu->n_in - 1; k >= 0; k--) {
                const int v = nu->in[k];
                const int pr = v >= 0 ? g->values[v].producer : -1;
                if (pr < 0 || pr == u || state[pr] == 2)
                    continue;
                if (state[pr] == 1) {
                    rc = sp_err_set(err, SPRUN_ERR_INTERNAL, "the graph has a cycle through node '%s'", nu->name);
                    goto done;
                }
                stack[sp++] = pr;
            }
        }
    }
    for (int j = 0; j < n; j++) {
        sorted[j] = g->nodes[order[j]];
        inv[order[j]] = j;
    }
    memcpy(g->nodes, sorted, (size_t)n * sizeof *sorted);
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].producer >= 0 && g->values[v].producer < n)
            g->values[v].producer = inv[g->values[v].producer];
done:
    free(state);
    free(order);
    free(inv);
    free(stack);
    free(sorted);
    return rc;
}
