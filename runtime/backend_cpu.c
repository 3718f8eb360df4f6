/*
 * backend_cpu.c - the CPU backend: runs a plan's nodes in order over one
 * host arena, with a per-session thread pool.
 *
 * Weights stay in the model graph (shared by all sessions, read-only); each
 * plan owns an arena of plan->arena_bytes and a scratch buffer sized for the
 * hungriest node, both allocated once when the plan is built.
 */
#include "ops/op.h"
#include "runtime/cpu_sparse.h"
#include "runtime/model.h"
#include "runtime/threadpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cpu_session {
    sp_threadpool *pool;
    int nthreads;
} cpu_session;

typedef struct cpu_plan {
    void *arena;
    void *scratch;
    const sp_sparse_matrix **sparse; /* per step of the order: packed weight or NULL */
} cpu_plan;

/* Model-level state: sparse weights packed once, shared by all sessions. */
static int cpu_model_init(struct sprun_model *m, sp_err *err)
{
    sp_cpu_packed *pk = calloc(1, sizeof *pk);
    if (!pk)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating the CPU model state");
    m->backend_model = pk;
    return sp_cpu_sparse_prepare(m, pk, err);
}

static void cpu_model_free(struct sprun_model *m)
{
    sp_cpu_packed *pk = m->backend_model;
    if (!pk)
        return;
    sp_cpu_sparse_release(pk);
    free(pk);
    m->backend_model = NULL;
}

static int cpu_session_init(struct sprun_session *s, sp_err *err)
{
    cpu_session *cs = calloc(1, sizeof *cs);
    if (!cs)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a CPU session");
    cs->nthreads = s->model->opt.threads > 0 ? s->model->opt.threads : sp_cpu_count();
    cs->pool = sp_threadpool_create(cs->nthreads);
    s->backend_session = cs;
    return SPRUN_OK;
}

static void cpu_session_free(struct sprun_session *s)
{
    cpu_session *cs = s->backend_session;
    if (!cs)
        return;
    sp_threadpool_destroy(cs->pool);
    free(cs);
    s->backend_session = NULL;
}

static void *alloc64(size_t bytes) { return aligned_alloc(64, ((bytes ? bytes : 1) + 63) & ~(size_t)63); }

static void *value_ptr(const sp_plan *p, const cpu_plan *cp, int v);
static void cpu_plan_free(struct sprun_session *s, sp_plan *p);
static int run_one(const sp_plan *p, const cpu_plan *cp, const sp_cpu_ctx *ctx, int s_i, const sp_sparse_matrix *w,
                   int skip_alias, sp_err *err);

/* Tuning callbacks (sp_cpu_sparse_tune): run one step, or fill its inputs. */
typedef struct tune_arg {
    sp_plan *p;
    cpu_plan *cp;
    sp_cpu_ctx ctx;
} tune_arg;

static int tune_run(void *vp, int step, const sp_sparse_matrix *w, sp_err *err)
{
    tune_arg *a = vp;
    return run_one(a->p, a->cp, &a->ctx, step, w, 0, err);
}

/* Random values in [-1, 1) for the step's activation inputs: the arena
 * holds nothing yet, and timing on garbage (NaN, denormals) or zeros would
 * flatter or penalise kernels unlike real data. */
static void tune_fill(void *vp, int step)
{
    tune_arg *a = vp;
    const sp_node *n = &a->p->g.nodes[a->p->order[step]];
    unsigned seed = 12345u + (unsigned)step;
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0)
            continue;
        const sp_value *v = &a->p->g.values[n->in[k]];
        float *d = v->kind == SP_VAL_CONST || v->dtype != SPRUN_DTYPE_FLOAT ? NULL : value_ptr(a->p, a->cp, n->in[k]);
        for (int64_t i = 0, cnt = d ? sp_shape_numel(&v->shape) : 0; i < cnt; i++) {
            seed = seed * 1664525u + 1013904223u;
            d[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        }
    }
}

static int cpu_plan_init(struct sprun_session *s, sp_plan *p, sp_err *err)
{
    cpu_plan *cp = calloc(1, sizeof *cp);
    if (!cp)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a CPU plan");
    cp->sparse = calloc((size_t)(p->n_order > 0 ? p->n_order : 1), sizeof *cp->sparse);
    if (!cp->sparse) {
        free(cp);
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory creating a CPU plan");
    }
    for (int i = 0; i < p->n_order; i++)
        cp->sparse[i] = sp_cpu_sparse_select(s->model, s->model->backend_model, p, p->order[i], &p->scratch_bytes,
                                             &p->step[i]);
    cp->arena = alloc64(p->arena_bytes);
    cp->scratch = p->scratch_bytes ? alloc64(p->scratch_bytes) : NULL;
    if (!cp->arena || (p->scratch_bytes && !cp->scratch)) {
        free(cp->arena);
        free(cp->scratch);
        free(cp->sparse);
        free(cp);
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY,
                          "out of host memory for the activation arena (%zu bytes) and scratch (%zu bytes)",
                          p->arena_bytes, p->scratch_bytes);
    }
    p->backend_plan = cp;
    if (s->model->tune) {
        cpu_session *cs = s->backend_session;
        tune_arg a = {p, cp, {.nthreads = cs->nthreads, .pool = cs->pool, .scratch = cp->scratch,
                              .scratch_bytes = p->scratch_bytes, .graph = &p->g}};
        int rc = sp_cpu_sparse_tune(s->model, s->model->backend_model, p, cs->nthreads, cp->sparse, tune_run,
                                    tune_fill, &a, err);
        if (rc != SPRUN_OK) {
            cpu_plan_free(s, p);
            return rc;
        }
    }
    return SPRUN_OK;
}

static void cpu_plan_free(struct sprun_session *s, sp_plan *p)
{
    (void)s;
    cpu_plan *cp = p->backend_plan;
    if (!cp)
        return;
    free(cp->arena);
    free(cp->scratch);
    free(cp->sparse);
    free(cp);
    p->backend_plan = NULL;
}

/* Host address of value v in this plan: constant payload or arena slot. */
static void *value_ptr(const sp_plan *p, const cpu_plan *cp, int v)
{
    const sp_value *val = &p->g.values[v];
    if (val->kind == SP_VAL_CONST)
        return val->data;
    return p->offset[v] >= 0 ? (char *)cp->arena + p->offset[v] : NULL;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* Runs step s_i of plan p with weight w (NULL: the dense op). Aliasing ops
 * whose output shares the input's buffer cost nothing and are skipped when
 * skip_alias is set. */
static int run_one(const sp_plan *p, const cpu_plan *cp, const sp_cpu_ctx *ctx, int s_i, const sp_sparse_matrix *w,
                   int skip_alias, sp_err *err)
{
    const sp_graph *g = &p->g;
    const sp_node *n = &g->nodes[p->order[s_i]];
    sp_tensor in[n->n_in > 0 ? n->n_in : 1];
    sp_tensor out[n->n_out > 0 ? n->n_out : 1];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0)
            continue;
        const sp_value *v = &g->values[n->in[k]];
        in[k].dtype = v->dtype;
        in[k].shape = v->shape;
        in[k].data = value_ptr(p, cp, n->in[k]);
    }
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0)
            continue;
        const sp_value *v = &g->values[n->out[k]];
        out[k].dtype = v->dtype;
        out[k].shape = v->shape;
        out[k].data = value_ptr(p, cp, n->out[k]);
    }
    if (skip_alias && (n->op->flags & SP_OPF_ALIAS) && n->n_in >= 1 && in[0].data && in[0].data == out[0].data)
        return SPRUN_OK;
    int rc = w ? sp_cpu_sparse_run(n, w, in, n->n_in, out, ctx, err)
               : n->op->cpu_run(n, in, n->n_in, out, n->n_out, ctx, err);
    if (rc != SPRUN_OK) {
        char label[256];
        if (err && !strstr(err->msg, n->name))
            sp_err_prefix(err, "node %s", sp_node_label(n, label, sizeof label));
    }
    return rc;
}

static int cpu_run(struct sprun_session *s, sp_plan *p, const sprun_tensor *const *inputs, sp_err *err)
{
    cpu_session *cs = s->backend_session;
    cpu_plan *cp = p->backend_plan;
    const sp_graph *g = &p->g;
    for (int i = 0; i < g->n_inputs; i++) {
        if (g->values[g->inputs[i]].kind == SP_VAL_CONST)
            continue; /* baked into this plan (shape-deciding input) */
        void *dst = value_ptr(p, cp, g->inputs[i]);
        if (dst && dst != inputs[i]->data)
            memcpy(dst, inputs[i]->data, inputs[i]->nbytes);
    }
    sp_cpu_ctx ctx = {
        .nthreads = cs->nthreads, .pool = cs->pool, .scratch = cp->scratch, .scratch_bytes = p->scratch_bytes,
        .graph = g};
    for (int s_i = 0; s_i < p->n_order; s_i++) {
        double t0 = s->profiling ? now_us() : 0;
        int rc = run_one(p, cp, &ctx, s_i, cp->sparse[s_i], 1, err);
        if (rc != SPRUN_OK)
            return rc;
        if (s->profiling && s_i < s->n_profile)
            s->profile_us[s_i] = now_us() - t0;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const void *src = value_ptr(p, cp, g->outputs[i]);
        if (src && p->out_bytes[i])
            memcpy(p->out_host[i], src, p->out_bytes[i]);
    }
    return SPRUN_OK;
}

/* No device memory: the device I/O hooks stay NULL, so sessions refuse
 * SPRUN_MEMORY_DEVICE inputs and outputs before reaching cpu_run. */
const sp_backend_i sp_backend_cpu = {
    /* .name          = */ "cpu",
    /* .model_init    = */ cpu_model_init,
    /* .model_free    = */ cpu_model_free,
    /* .session_init  = */ cpu_session_init,
    /* .session_free  = */ cpu_session_free,
    /* .plan_init     = */ cpu_plan_init,
    /* .plan_free     = */ cpu_plan_free,
    /* .run           = */ cpu_run,
    /* .device_check  = */ NULL,
    /* .device_read   = */ NULL,
    /* .device_output = */ NULL,
    /* .synchronize   = */ NULL,
};
