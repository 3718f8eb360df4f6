/*
 * plan.c - specialising the model graph for concrete input shapes.
 *
 * Shape inference and constant folding are one forward sweep: a node whose
 * inputs are constant (or, for Shape/Size, whose input shape is known) is
 * evaluated on the CPU and becomes a constant; every other node gets its
 * output shapes inferred. The Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape chains exporters emit therefore disappear for fixed input shapes.
 * Then epilogue fusion, dead-node removal, and one arena layout.
 */
#include "ops/op.h"
#include "runtime/fold.h"
#include "runtime/model.h"

#include <stdlib.h>
#include <string.h>

void sp_plan_free(sp_plan *p)
{
    if (!p)
        return;
    if (p->out_host)
        for (int i = 0; i < p->g.n_outputs; i++)
            free(p->out_host[i]);
    free(p->out_host);
    free(p->out_bytes);
    free(p->order);
    free(p->step);
    free(p->offset);
    sp_graph_free(&p->g);
    free(p);
}

static int infer_node(sp_graph *g, int ni, sp_err *err)
{
    sp_node *n = &g->nodes[ni];
    char label[256];
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && (!v->dtype || !sp_shape_known(&v->shape)))
            return sp_err_set(err, SPRUN_ERR_SHAPE, "node %s: input '%s' has no known shape",
                              sp_node_label(n, label, sizeof label), v->name);
    }
    int rc = n->op->infer(g, n, err);
    if (rc != SPRUN_OK && err && !strstr(err->msg, n->name))
        sp_err_prefix(err, "node %s", sp_node_label(n, label, sizeof label));
    return rc;
}

int sp_union_root(int *parent, int v)
{
    while (parent[v] != v)
        v = parent[v] = parent[parent[v]];
    return v;
}

static size_t value_bytes(const void *ctx, const sp_value *v)
{
    (void)ctx;
    return (size_t)sp_shape_numel(&v->shape) * sp_dtype_size(v->dtype);
}

static int plan_memory(sp_plan *p, sp_err *err)
{
    sp_graph *g = &p->g;
    int nv = g->n_values;
    int *parent = malloc((size_t)nv * sizeof *parent);
    int *first = malloc((size_t)nv * sizeof *first);
    int *last = malloc((size_t)nv * sizeof *last);
    p->offset = malloc((size_t)nv * sizeof *p->offset);
    int rc = SPRUN_OK;
    if (!parent || !first || !last || !p->offset) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory planning memory for %d values", nv);
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        parent[v] = v;
        first[v] = -1;
        last[v] = -1;
    }
    /* Graph inputs exist from step 0; node s of the order runs at step s+1. */
    for (int i = 0; i < g->n_inputs; i++)
        first[g->inputs[i]] = 0;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = &g->nodes[p->order[s]];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && g->values[n->in[k]].kind != SP_VAL_CONST)
                last[n->in[k]] = s + 1;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0) {
                first[n->out[k]] = s + 1;
                if (last[n->out[k]] < s + 1)
                    last[n->out[k]] = s + 1;
            }
        if ((n->op->flags & SP_OPF_ALIAS) && n->n_in >= 1 && n->in[0] >= 0 && n->out[0] >= 0 &&
            g->values[n->in[0]].kind != SP_VAL_CONST)
            parent[sp_union_root(parent, n->out[0])] = sp_union_root(parent, n->in[0]);
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->values[g->outputs[i]].kind != SP_VAL_CONST)
            last[g->outputs[i]] = p->n_order + 1;
    /* One buffer per alias class, living from its earliest def to last use. */
    rc = sp_memplan_classes(g, parent, first, last, value_bytes, NULL, 64, p->offset, &p->arena_bytes, err);
done:
    free(parent);
    free(first);
    free(last);
    return rc;
}

/* A graph input whose *values* decide a shape (a Reshape target, Slice
 * starts, Unsqueeze axes fed at run time): when infer refuses node ni for a
 * data-dependent shape and one of its non-constant inputs is a small integer
 * graph input, returns that input's position in g->inputs, else -1. The plan
 * is then rebuilt with that input's values as constants (and is reused only
 * for the same values). */
static int promotable_input(const sp_graph *g, const sp_node *n)
{
    for (int k = 0; k < n->n_in; k++) {
        const sp_value *v = sp_node_in(g, n, k);
        if (!v || v->kind != SP_VAL_INPUT || sp_shape_numel(&v->shape) > 4096)
            continue;
        if (v->dtype != SPRUN_DTYPE_INT64 && v->dtype != SPRUN_DTYPE_INT32 && v->dtype != SPRUN_DTYPE_BOOL &&
            v->dtype != SPRUN_DTYPE_FLOAT && v->dtype != SPRUN_DTYPE_DOUBLE)
            continue;
        for (int i = 0; i < g->n_inputs; i++)
            if (&g->values[g->inputs[i]] == v)
                return i;
    }
    return -1;
}

static int build_once(const struct sprun_model *m, const sprun_tensor *const *inputs, unsigned promoted,
                      sp_plan **out, int *promote, sp_err *err);

int sp_plan_build(const struct sprun_model *m, const sprun_tensor *const *inputs, sp_plan **out, sp_err *err)
{
    unsigned promoted = 0;
    for (;;) {
        int want = -1;
        int rc = build_once(m, inputs, promoted, out, &want, err);
        if (rc == SPRUN_OK || want < 0 || want >= 16 || (promoted & (1u << want)))
            return rc;
        promoted |= 1u << want;
    }
}

static int build_once(const struct sprun_model *m, const sprun_tensor *const *inputs, unsigned promoted,
                      sp_plan **out, int *promote, sp_err *err)
{
    *out = NULL;
    sp_plan *p = calloc(1, sizeof *p);
    if (!p)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a plan");
    int rc = sp_graph_clone(&p->g, &m->graph, err);
    if (rc != SPRUN_OK) {
        free(p);
        return rc;
    }
    sp_graph *g = &p->g;
    p->n_inputs = g->n_inputs;
    for (int i = 0; i < g->n_inputs; i++) {
        sp_value *v = &g->values[g->inputs[i]];
        v->shape = sp_shape_make(inputs[i]->rank, inputs[i]->dims);
        if (i < 16)
            p->input_shapes[i] = v->shape;
        if (i < 16 && (promoted & (1u << i))) {
            void *copy = malloc(inputs[i]->nbytes ? inputs[i]->nbytes : 1);
            if (!copy) {
                rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory planning");
                goto fail;
            }
            memcpy(copy, inputs[i]->data, inputs[i]->nbytes);
            sp_shape sh = v->shape;
            sp_value_set_const(v, v->dtype, &sh, copy, inputs[i]->nbytes, 1);
        }
    }
    p->promoted = promoted;
    int threads = m->opt.threads > 0 ? m->opt.threads : 1;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        if (g->nodes[ni].dead)
            continue;
        if (sp_node_foldable(g, ni)) {
            rc = sp_node_eval_const(g, ni, threads, err);
            p->n_folded++;
        } else {
            rc = infer_node(g, ni, err);
            if (rc == SPRUN_ERR_UNSUPPORTED)
                *promote = promotable_input(g, &g->nodes[ni]);
        }
        if (rc != SPRUN_OK)
            goto fail;
    }
    if (m->opt.optimize && (rc = sp_pass_fuse_epilogues(g, NULL, err)) != SPRUN_OK)
        goto fail;
    sp_pass_remove_dead(g);

    p->order = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *p->order);
    p->step = calloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1), sizeof *p->step);
    if (!p->order || !p->step) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory planning");
        goto fail;
    }
    for (int ni = 0; ni < g->n_nodes; ni++)
        if (!g->nodes[ni].dead) {
            p->step[p->n_order].weight = -1;
            p->order[p->n_order++] = ni;
        }
    if ((rc = plan_memory(p, err)) != SPRUN_OK)
        goto fail;
    for (int s = 0; s < p->n_order; s++) {
        const sp_node *n = &g->nodes[p->order[s]];
        if (n->op->cpu_scratch) {
            size_t b = n->op->cpu_scratch(g, n, threads);
            if (b > p->scratch_bytes)
                p->scratch_bytes = b;
        }
    }
    p->out_host = calloc((size_t)(g->n_outputs > 0 ? g->n_outputs : 1), sizeof *p->out_host);
    p->out_bytes = calloc((size_t)(g->n_outputs > 0 ? g->n_outputs : 1), sizeof *p->out_bytes);
    if (!p->out_host || !p->out_bytes) {
        rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for outputs");
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const sp_value *v = &g->values[g->outputs[i]];
        int64_t numel = sp_shape_numel(&v->shape);
        if (numel < 0 || !sp_dtype_size(v->dtype)) {
            rc = sp_err_set(err, SPRUN_ERR_SHAPE, "graph output '%s' has no inferable shape", v->name);
            goto fail;
        }
        p->out_bytes[i] = (size_t)numel * sp_dtype_size(v->dtype);
        p->out_host[i] = malloc(p->out_bytes[i] ? p->out_bytes[i] : 1);
        if (!p->out_host[i]) {
            rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for output '%s' (%zu bytes)", v->name,
                            p->out_bytes[i]);
            goto fail;
        }
    }
    *out = p;
    return SPRUN_OK;
fail:
    sp_plan_free(p);
    return rc;
}
