/*
 * session.c - sprun_session: input validation, the plan cache and runs.
 *
 * Plans are cached per set of input shapes (up to SP_MAX_PLANS, least
 * recently used evicted), so a serving loop that alternates between a few
 * batch sizes plans each once and then allocates nothing per run.
 *
 * Device I/O: inputs in device memory are checked here (refused by backends
 * without device memory) and handed to backend->run as they are; the planner
 * sees host copies of the few it may read (host_view). Where outputs go is
 * the session's out_memory, recorded per run in current_memory.
 */
#include "runtime/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sprun_code fail(sp_err *err) { return (sprun_code)sp_err_publish(err); }

sprun_code sprun_session_create(const sprun_model *model, sprun_session **out)
{
    sp_err err = {0};
    if (!model || !out) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_create: model and out must not be NULL");
        return fail(&err);
    }
    *out = NULL;
    sprun_session *s = calloc(1, sizeof *s);
    if (!s) {
        sp_err_set(&err, SPRUN_ERR_OUT_OF_MEMORY, "sprun_session_create: out of memory");
        return fail(&err);
    }
    s->model = model;
    int rc = model->backend->session_init(s, &err);
    if (rc != SPRUN_OK) {
        free(s);
        return fail(&err);
    }
    *out = s;
    return SPRUN_OK;
}

static void drop_plan(sprun_session *s, int i)
{
    sp_plan *p = s->plans[i];
    if (s->current == p)
        s->current = NULL;
    if (s->model->backend->plan_free)
        s->model->backend->plan_free(s, p);
    sp_plan_free(p);
    s->plans[i] = s->plans[--s->n_plans];
}

void sprun_session_destroy(sprun_session *s)
{
    if (!s)
        return;
    while (s->n_plans > 0)
        drop_plan(s, s->n_plans - 1);
    if (s->model->backend->session_free)
        s->model->backend->session_free(s);
    free(s->profile_us);
    free(s);
}

sprun_code sprun_session_set_stream(sprun_session *s, void *stream)
{
    sp_err err = {0};
    if (!s) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_set_stream: NULL session");
        return fail(&err);
    }
    if (s->stream != stream) {
        /* captured CUDA graphs belong to a stream: replan on the new one */
        while (s->n_plans > 0)
            drop_plan(s, s->n_plans - 1);
    }
    s->stream = stream;
    return SPRUN_OK;
}

/* Matches caller tensors to graph inputs and checks dtype, shape and size. */
static int bind_inputs(const sprun_session *s, const sprun_tensor *inputs, size_t n_inputs,
                       const sprun_tensor **bound, sp_err *err)
{
    const sp_graph *g = &s->model->graph;
    if (n_inputs != (size_t)g->n_inputs)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "model has %d input%s, %zu given", g->n_inputs,
                          g->n_inputs == 1 ? "" : "s", n_inputs);
    if (n_inputs && !inputs)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "inputs is NULL");
    for (int i = 0; i < g->n_inputs; i++)
        bound[i] = NULL;
    for (size_t k = 0; k < n_inputs; k++) {
        int slot = -1;
        if (inputs[k].name) {
            for (int i = 0; i < g->n_inputs; i++)
                if (!strcmp(g->values[g->inputs[i]].name, inputs[k].name))
                    slot = i;
            if (slot < 0)
                return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "the model has no input named '%s'",
                                  inputs[k].name);
        } else
            slot = (int)k;
        if (bound[slot])
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "input '%s' given twice",
                              g->values[g->inputs[slot]].name);
        bound[slot] = &inputs[k];
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const sp_value *v = &g->values[g->inputs[i]];
        const sprun_tensor *t = bound[i];
        char want[160], got[160];
        sp_shape gs = sp_shape_make(t->rank >= 0 && t->rank <= SP_MAX_RANK ? t->rank : 0, t->dims);
        if (t->rank < 0 || t->rank > SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "input '%s': rank %d out of range", v->name,
                              t->rank);
        if ((int)t->dtype != v->dtype)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "input '%s': expected dtype %s, got %s", v->name,
                              sp_dtype_name(v->dtype), sp_dtype_name(t->dtype));
        int ok = v->shape.rank < 0 || v->shape.rank == t->rank;
        for (int d = 0; ok && v->shape.rank >= 0 && d < t->rank; d++)
            ok = t->dims[d] >= 0 && (v->shape.d[d] < 0 || v->shape.d[d] == t->dims[d]);
        if (!ok)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "input '%s': expected shape %s, got %s", v->name,
                              sp_shape_str(&v->shape, want, sizeof want), sp_shape_str(&gs, got, sizeof got));
        int64_t numel = sp_shape_numel(&gs);
        size_t bytes = (size_t)numel * sp_dtype_size(v->dtype);
        if (t->nbytes != bytes)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                              "input '%s': shape %s of %s needs %zu bytes, %zu given", v->name,
                              sp_shape_str(&gs, got, sizeof got), sp_dtype_name(v->dtype), bytes, t->nbytes);
        if (bytes && !t->data)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "input '%s': data is NULL", v->name);
        if (t->memory != SPRUN_MEMORY_HOST && t->memory != SPRUN_MEMORY_DEVICE)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                              "input '%s': memory %d is neither SPRUN_MEMORY_HOST nor SPRUN_MEMORY_DEVICE", v->name,
                              (int)t->memory);
        if (t->memory == SPRUN_MEMORY_DEVICE && !s->model->backend->device_check)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT,
                              "input '%s': data is in device memory (SPRUN_MEMORY_DEVICE) but the %s backend reads "
                              "inputs from host memory only",
                              v->name, s->model->backend->name);
        if (t->memory == SPRUN_MEMORY_DEVICE && bytes && s->model->backend->device_check(s, t->data, err) != SPRUN_OK)
            return sp_err_prefix(err, "input '%s' (SPRUN_MEMORY_DEVICE)", v->name);
    }
    return SPRUN_OK;
}

/* The planner reads the values of a graph input only to bake them into a
 * plan when a shape depends on them (plan.c's promotable_input: at most
 * 4096 elements of at most 8 bytes), and find_plan compares them. For device
 * inputs it gets host copies, read from the device when first needed. */
#define SP_PLANNER_READ_MAX ((size_t)4096 * 8)

typedef struct host_view {
    const sprun_tensor *bound[16]; /* the caller's tensor, or t[k] */
    sprun_tensor t[16];            /* host copy of a device input */
    void *buf[16];
} host_view;

static void host_view_init(host_view *hv, const sprun_tensor *const *bound, int n)
{
    for (int k = 0; k < n && k < 16; k++) {
        hv->bound[k] = bound[k];
        hv->buf[k] = NULL;
    }
}

static void host_view_free(host_view *hv, int n)
{
    for (int k = 0; k < n && k < 16; k++)
        free(hv->buf[k]);
}

/* Makes hv->bound[k] a host tensor for every device input k in mask: a
 * copy of its data when the planner may read it, else without data. */
static int host_view_read(sprun_session *s, host_view *hv, int n, unsigned mask, sp_err *err)
{
    for (int k = 0; k < n && k < 16; k++) {
        const sprun_tensor *t = hv->bound[k];
        if (!(mask & (1u << k)) || t->memory != SPRUN_MEMORY_DEVICE)
            continue;
        hv->t[k] = *t;
        hv->t[k].memory = SPRUN_MEMORY_HOST;
        hv->t[k].data = NULL;
        if (t->nbytes && t->nbytes <= SP_PLANNER_READ_MAX) {
            if (!(hv->buf[k] = malloc(t->nbytes)))
                return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory reading input '%s' back",
                                  s->model->graph.values[s->model->graph.inputs[k]].name);
            if (s->model->backend->device_read(s, hv->buf[k], t->data, t->nbytes, err) != SPRUN_OK)
                return sp_err_prefix(err, "reading device input '%s' for the planner",
                                     s->model->graph.values[s->model->graph.inputs[k]].name);
            hv->t[k].data = hv->buf[k];
        }
        hv->bound[k] = &hv->t[k];
    }
    return SPRUN_OK;
}

static sp_plan *find_plan(sprun_session *s, const sprun_tensor *const *bound, int n)
{
    for (int i = 0; i < s->n_plans; i++) {
        sp_plan *p = s->plans[i];
        int same = 1;
        for (int k = 0; k < n && k < 16 && same; k++) {
            sp_shape sh = sp_shape_make(bound[k]->rank, bound[k]->dims);
            same = sp_shape_equal(&sh, &p->input_shapes[k]);
            if (same && (p->promoted & (1u << k))) {
                const sp_value *v = &p->g.values[p->g.inputs[k]];
                same = v->nbytes == bound[k]->nbytes && !memcmp(v->data, bound[k]->data, v->nbytes);
            }
        }
        if (same)
            return p;
    }
    return NULL;
}

sprun_code sprun_session_run(sprun_session *s, const sprun_tensor *inputs, size_t n_inputs)
{
    sp_err err = {0};
    if (!s) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_run: NULL session");
        return fail(&err);
    }
    const sp_graph *g = &s->model->graph;
    const sprun_tensor *bound[g->n_inputs > 0 ? g->n_inputs : 1];
    if (g->n_inputs > 16) {
        sp_err_set(&err, SPRUN_ERR_UNSUPPORTED, "models with more than 16 inputs are not supported (%d)",
                   g->n_inputs);
        return fail(&err);
    }
    /* Outputs are those of the last *successful* run: any failure below,
     * input validation included, leaves none to read. */
    s->current = NULL;
    if (bind_inputs(s, inputs, n_inputs, bound, &err) != SPRUN_OK)
        return fail(&err);
    unsigned on_device = 0, promoted = 0;
    for (int k = 0; k < g->n_inputs; k++)
        if (bound[k]->memory == SPRUN_MEMORY_DEVICE)
            on_device |= 1u << k;
    for (int i = 0; i < s->n_plans; i++)
        promoted |= s->plans[i]->promoted;
    host_view hv;
    host_view_init(&hv, bound, g->n_inputs);
    int rc = host_view_read(s, &hv, g->n_inputs, on_device & promoted, &err);
    sp_plan *p = rc == SPRUN_OK ? find_plan(s, hv.bound, g->n_inputs) : NULL;
    if (rc == SPRUN_OK && !p) {
        if (s->n_plans == SP_MAX_PLANS) {
            int lru = 0;
            for (int i = 1; i < s->n_plans; i++)
                if (s->plans[i]->last_used < s->plans[lru]->last_used)
                    lru = i;
            drop_plan(s, lru);
        }
        if ((rc = host_view_read(s, &hv, g->n_inputs, on_device, &err)) != SPRUN_OK)
            goto done;
        if ((rc = sp_plan_build(s->model, hv.bound, &p, &err)) != SPRUN_OK) {
            /* The inputs were validated above: an op refusing its
             * attributes or shapes while planning is the model's fault,
             * not the caller's, so it is not INVALID_ARGUMENT. */
            if (err.code == SPRUN_ERR_INVALID_ARGUMENT)
                rc = err.code = SPRUN_ERR_SHAPE;
            goto done;
        }
        if ((rc = s->model->backend->plan_init(s, p, &err)) != SPRUN_OK) {
            sp_plan_free(p);
            goto done;
        }
        s->plans[s->n_plans++] = p;
    }
    if (rc != SPRUN_OK)
        goto done;
    p->last_used = ++s->tick;
    if (s->profiling) {
        if (s->n_profile < p->n_order) {
            double *np = realloc(s->profile_us, (size_t)p->n_order * sizeof *np);
            if (!np) {
                rc = sp_err_set(&err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for the profile");
                goto done;
            }
            s->profile_us = np;
        }
        s->n_profile = p->n_order;
        memset(s->profile_us, 0, (size_t)p->n_order * sizeof *s->profile_us);
    }
    if ((rc = s->model->backend->run(s, p, bound, &err)) != SPRUN_OK)
        goto done;
    s->current = p;
    s->current_memory = s->out_memory;
done:
    host_view_free(&hv, g->n_inputs);
    if (rc != SPRUN_OK)
        return fail(&err);
    sp_err_publish(NULL);
    return SPRUN_OK;
}

sprun_code sprun_session_set_output_memory(sprun_session *s, sprun_memory memory)
{
    sp_err err = {0};
    if (!s) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_set_output_memory: NULL session");
        return fail(&err);
    }
    if (memory != SPRUN_MEMORY_HOST && memory != SPRUN_MEMORY_DEVICE) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT,
                   "sprun_session_set_output_memory: memory %d is neither SPRUN_MEMORY_HOST nor SPRUN_MEMORY_DEVICE",
                   (int)memory);
        return fail(&err);
    }
    if (memory == SPRUN_MEMORY_DEVICE && !s->model->backend->device_output) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT,
                   "sprun_session_set_output_memory: the %s backend has no device memory to leave outputs in",
                   s->model->backend->name);
        return fail(&err);
    }
    s->out_memory = memory;
    return SPRUN_OK;
}

sprun_code sprun_session_synchronize(sprun_session *s)
{
    sp_err err = {0};
    if (!s) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_synchronize: NULL session");
        return fail(&err);
    }
    if (s->model->backend->synchronize && s->model->backend->synchronize(s, &err) != SPRUN_OK) {
        sp_err_prefix(&err, "sprun_session_synchronize");
        return fail(&err);
    }
    return SPRUN_OK;
}

sprun_code sprun_session_output(const sprun_session *s, size_t idx, sprun_tensor *out)
{
    sp_err err = {0};
    if (!s || !out || !s->current || idx >= (size_t)s->current->g.n_outputs) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT,
                   "sprun_session_output: NULL argument, no successful run yet, or index %zu out of range", idx);
        return fail(&err);
    }
    const sp_plan *p = s->current;
    const sp_value *v = &p->g.values[p->g.outputs[idx]];
    memset(out, 0, sizeof *out);
    out->name = s->model->outputs[idx].name;
    out->dtype = (sprun_dtype)v->dtype;
    out->rank = v->shape.rank;
    for (int d = 0; d < v->shape.rank; d++)
        out->dims[d] = v->shape.d[d];
    out->data = p->out_host[idx];
    out->nbytes = p->out_bytes[idx];
    if (s->current_memory == SPRUN_MEMORY_DEVICE) {
        out->data = s->model->backend->device_output(s, p, (int)idx);
        out->memory = SPRUN_MEMORY_DEVICE;
    }
    return SPRUN_OK;
}

sprun_code sprun_session_plan_stats(const sprun_session *s, sprun_plan_stats *st)
{
    sp_err err = {0};
    if (!s || !st || !s->current) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_plan_stats: NULL argument or no run yet");
        return fail(&err);
    }
    const sp_plan *p = s->current;
    memset(st, 0, sizeof *st);
    st->arena_bytes = p->arena_bytes;
    st->n_nodes = (size_t)p->n_order;
    st->n_folded = (size_t)p->n_folded + (size_t)s->model->n_load_folded;
    for (int v = 0; v < p->g.n_values; v++) {
        const sp_value *val = &p->g.values[v];
        if (val->kind == SP_VAL_CONST && !val->owns_data)
            st->weight_bytes += val->nbytes;
    }
    return SPRUN_OK;
}

sprun_code sprun_session_set_profiling(sprun_session *s, int32_t enabled)
{
    sp_err err = {0};
    if (!s) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_set_profiling: NULL session");
        return fail(&err);
    }
    s->profiling = enabled != 0;
    return SPRUN_OK;
}

size_t sprun_session_profile_count(const sprun_session *s)
{
    return s && s->current && s->profiling ? (size_t)s->n_profile : 0;
}

sprun_code sprun_session_profile_entry(const sprun_session *s, size_t idx, double *usec, char *buf, size_t buflen)
{
    sp_err err = {0};
    if (!s || !s->current || idx >= sprun_session_profile_count(s)) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_profile_entry: no profile or index out of range");
        return fail(&err);
    }
    const sp_plan *p = s->current;
    const sp_node *n = &p->g.nodes[p->order[idx]];
    if (usec)
        *usec = s->profile_us[idx];
    if (buf && buflen) {
        char shape[128] = "";
        if (n->n_out > 0 && n->out[0] >= 0)
            sp_shape_str(&p->g.values[n->out[0]].shape, shape, sizeof shape);
        const char *kernel = p->step[idx].kernel;
        snprintf(buf, buflen, "%-18s %-40s -> %-16s%s%s%s", n->op_type, n->name, shape,
                 n->fusion.n_fused ? " (fused)" : "", kernel ? " [" : "", kernel ? kernel : "");
        if (kernel && strlen(buf) + 2 < buflen)
            strcat(buf, "]");
    }
    return SPRUN_OK;
}

sprun_code sprun_session_profile_layer(const sprun_session *s, size_t idx, sprun_layer_profile *out)
{
    sp_err err = {0};
    if (!s || !out || !s->current || idx >= sprun_session_profile_count(s)) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_session_profile_layer: no profile or index out of range");
        return fail(&err);
    }
    const sp_plan *p = s->current;
    const sp_node *n = &p->g.nodes[p->order[idx]];
    const sp_step_info *st = &p->step[idx];
    memset(out, 0, sizeof *out);
    out->node_name = n->name;
    out->op_type = n->op_type;
    out->kernel = st->kernel;
    out->usec = s->profile_us[idx];
    out->predicted_usec = st->predicted_us;
    out->m = st->m;
    out->k = st->k;
    out->n = st->n;
    out->weight_index = st->weight;
    return SPRUN_OK;
}
