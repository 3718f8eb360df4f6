/*
 * model.c - sprun_model: loading, load-time passes and static queries.
 */
#include "runtime/model.h"

#include "loaders/onnx_loader.h"
#include "ops/op.h"
#include "runtime/fold.h"
#include "runtime/tune_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *act_name(int act)
{
    static const char *names[] = {"none", "relu", "clip", "sigmoid", "gelu", "tanh", "hardswish", "hardsigmoid",
                                  "leakyrelu"};
    return act >= 0 && act < (int)(sizeof names / sizeof names[0]) ? names[act] : "?";
}

/* Lists every unsupported op type with the names of its nodes, at once. */
static int check_supported(const sp_graph *g, sp_err *err)
{
    int n_bad = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_bad += g->nodes[i].op == NULL;
    if (!n_bad)
        return SPRUN_OK;
    sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%d node%s use%s unsupported ops:", n_bad, n_bad > 1 ? "s" : "",
               n_bad > 1 ? "" : "s");
    char *seen = calloc((size_t)g->n_nodes, 1);
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (n->op || (seen && seen[i]))
            continue;
        sp_err_append(err, " %s%s%s (nodes:", n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type);
        int listed = 0;
        for (int j = i; j < g->n_nodes; j++) {
            const sp_node *o = &g->nodes[j];
            if (o->op || strcmp(o->op_type, n->op_type) || strcmp(o->domain, n->domain))
                continue;
            if (seen)
                seen[j] = 1;
            if (listed++ < 8)
                sp_err_append(err, "%s '%s'", listed > 1 ? "," : "", o->name);
        }
        if (listed > 8)
            sp_err_append(err, " and %d more", listed - 8);
        sp_err_append(err, ");");
    }
    free(seen);
    return SPRUN_ERR_UNSUPPORTED;
}

static int check_nodes(const sp_graph *g, sp_err *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        char label[256];
        if (!n->dead && n->op->since_opset > g->opset)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED,
                              "node %s: sprun implements %s from opset %d; the model imports opset %lld",
                              sp_node_label(n, label, sizeof label), n->op_type, n->op->since_opset,
                              (long long)g->opset);
        if (n->dead || !n->op->check)
            continue;
        int rc = n->op->check(g, n, err);
        if (rc != SPRUN_OK) {
            if (!strstr(err->msg, n->name))
                sp_err_prefix(err, "node %s", sp_node_label(n, label, sizeof label));
            return rc;
        }
    }
    return SPRUN_OK;
}

static int fill_info(const sp_graph *g, const int *idx, int count, sprun_tensor_info **out, sp_err *err)
{
    *out = calloc((size_t)(count > 0 ? count : 1), sizeof **out);
    if (!*out)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory describing model inputs/outputs");
    for (int i = 0; i < count; i++) {
        const sp_value *v = &g->values[idx[i]];
        sprun_tensor_info *t = &(*out)[i];
        t->name = v->name;
        t->dtype = (sprun_dtype)v->dtype;
        t->rank = v->shape.rank;
        for (int d = 0; d < v->shape.rank && d < SPRUN_MAX_RANK; d++) {
            t->dims[d] = v->shape.d[d];
            t->dim_names[d] = v->dim_param[d];
        }
    }
    return SPRUN_OK;
}

static int choose_backend(sprun_model *m, sp_err *err)
{
    sprun_backend want = m->opt.backend;
#ifdef SPRUN_HAVE_CUDA_BACKEND
    if (want == SPRUN_BACKEND_CUDA || want == SPRUN_BACKEND_AUTO) {
        if (sp_cuda_available(m->opt.device_id)) {
            m->backend_kind = SPRUN_BACKEND_CUDA;
            m->backend = &sp_backend_cuda;
            return SPRUN_OK;
        }
        if (want == SPRUN_BACKEND_CUDA)
            return sp_err_set(err, SPRUN_ERR_NO_DEVICE, "CUDA backend requested but no usable GPU (device %d)",
                              m->opt.device_id);
    }
#else
    if (want == SPRUN_BACKEND_CUDA)
        return sp_err_set(err, SPRUN_ERR_NO_DEVICE, "CUDA backend requested but this build has no CUDA backend");
#endif
    m->backend_kind = SPRUN_BACKEND_CPU;
    m->backend = &sp_backend_cpu;
    return SPRUN_OK;
}

static int model_finish(sprun_model *m, sp_err *err)
{
    sp_graph *g = &m->graph;
    int rc;
    if ((rc = check_supported(g, err)) != SPRUN_OK || (rc = check_nodes(g, err)) != SPRUN_OK)
        return rc;
    int threads = m->opt.threads > 0 ? m->opt.threads : 1;
    if ((rc = sp_graph_fold_constants(g, threads, &m->n_load_folded, err)) != SPRUN_OK)
        return sp_err_prefix(err, "constant folding at load");
    if (m->opt.optimize && ((rc = sp_pass_fold_batchnorm(g, NULL, err)) != SPRUN_OK ||
                            (rc = sp_pass_fuse_gelu(g, NULL, err)) != SPRUN_OK ||
                            (rc = sp_pass_fuse_parallel_matmuls(g, NULL, err)) != SPRUN_OK))
        return rc;
    sp_pass_remove_dead(g);
    if ((rc = fill_info(g, g->inputs, g->n_inputs, &m->inputs, err)) != SPRUN_OK ||
        (rc = fill_info(g, g->outputs, g->n_outputs, &m->outputs, err)) != SPRUN_OK)
        return rc;
    if ((rc = sp_model_analyse_weights(m, err)) != SPRUN_OK)
        return rc;
    if (m->opt.tune_path[0] && !(m->tune = sp_tune_cache_open(m->opt.tune_path)))
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory opening the tuning cache");
    if ((rc = choose_backend(m, err)) != SPRUN_OK)
        return rc;
    return m->backend->model_init(m, err);
}

static sprun_model *model_new(const sprun_options *opt)
{
    sprun_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (opt)
        m->opt = *opt;
    else {
        m->opt.backend = SPRUN_BACKEND_AUTO;
        m->opt.format = SPRUN_FORMAT_AUTO;
        m->opt.optimize = 1;
    }
    sp_graph_init(&m->graph);
    return m;
}

static sprun_code load_common(sprun_model *m, int rc, sp_err *err, sprun_model **out)
{
    if (rc == SPRUN_OK)
        rc = model_finish(m, err);
    if (rc != SPRUN_OK) {
        sprun_model_destroy(m);
        return (sprun_code)sp_err_publish(err);
    }
    *out = m;
    sp_err_publish(NULL);
    return SPRUN_OK;
}

sprun_code sprun_model_load(const char *path, const sprun_options *opt, sprun_model **out)
{
    sp_err err = {0};
    if (!out || !path) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_model_load: path and out must not be NULL");
        return (sprun_code)sp_err_publish(&err);
    }
    *out = NULL;
    sprun_model *m = model_new(opt);
    if (!m) {
        sp_err_set(&err, SPRUN_ERR_OUT_OF_MEMORY, "sprun_model_load: out of memory");
        return (sprun_code)sp_err_publish(&err);
    }
    int rc = sp_onnx_load_file(path, &m->graph, &err);
    if (rc != SPRUN_OK && !strstr(err.msg, path))
        sp_err_prefix(&err, "%s", path);
    return load_common(m, rc, &err, out);
}

sprun_code sprun_model_load_buffer(const void *data, size_t size, const sprun_options *opt, sprun_model **out)
{
    sp_err err = {0};
    if (!out || (!data && size)) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_model_load_buffer: data and out must not be NULL");
        return (sprun_code)sp_err_publish(&err);
    }
    *out = NULL;
    sprun_model *m = model_new(opt);
    if (!m) {
        sp_err_set(&err, SPRUN_ERR_OUT_OF_MEMORY, "sprun_model_load_buffer: out of memory");
        return (sprun_code)sp_err_publish(&err);
    }
    int rc = sp_onnx_load_buffer(data, size, ".", &m->graph, &err);
    return load_common(m, rc, &err, out);
}

void sprun_model_destroy(sprun_model *m)
{
    if (!m)
        return;
    if (m->backend && m->backend->model_free)
        m->backend->model_free(m);
    for (int i = 0; i < m->n_weights; i++) {
        free(m->weights[i].node_name);
        free(m->weights[i].op_type);
        free(m->weights[i].weight_name);
    }
    free(m->weights);
    free(m->inputs);
    free(m->outputs);
    sp_tune_cache_close(m->tune);
    sp_graph_free(&m->graph);
    free(m);
}

sprun_backend sprun_model_backend(const sprun_model *m) { return m ? m->backend_kind : SPRUN_BACKEND_CPU; }
size_t sprun_model_input_count(const sprun_model *m) { return m ? (size_t)m->graph.n_inputs : 0; }
size_t sprun_model_output_count(const sprun_model *m) { return m ? (size_t)m->graph.n_outputs : 0; }

static sprun_code info_at(const sprun_model *m, const sprun_tensor_info *arr, size_t count, size_t idx,
                          sprun_tensor_info *info, const char *fn)
{
    sp_err err = {0};
    if (!m || !info || idx >= count) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "%s: NULL argument or index %zu out of range (%zu)", fn, idx,
                   count);
        return (sprun_code)sp_err_publish(&err);
    }
    *info = arr[idx];
    return SPRUN_OK;
}

sprun_code sprun_model_input_info(const sprun_model *m, size_t idx, sprun_tensor_info *info)
{
    return info_at(m, m ? m->inputs : NULL, sprun_model_input_count(m), idx, info, "sprun_model_input_info");
}

sprun_code sprun_model_output_info(const sprun_model *m, size_t idx, sprun_tensor_info *info)
{
    return info_at(m, m ? m->outputs : NULL, sprun_model_output_count(m), idx, info, "sprun_model_output_info");
}

size_t sprun_model_weight_count(const sprun_model *m) { return m ? (size_t)m->n_weights : 0; }

sprun_code sprun_model_weight_info(const sprun_model *m, size_t idx, sprun_weight_info *info)
{
    sp_err err = {0};
    if (!m || !info || idx >= (size_t)m->n_weights) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_model_weight_info: NULL argument or index out of range");
        return (sprun_code)sp_err_publish(&err);
    }
    const sp_weight_record *w = &m->weights[idx];
    info->node_name = w->node_name;
    info->op_type = w->op_type;
    info->weight_name = w->weight_name;
    info->m = w->m;
    info->k = w->k;
    info->nnz = w->nnz;
    info->density = w->density;
    info->is_2_4 = w->is_24;
    info->is_2_4_c = w->is_24_c;
    for (int i = 0; i < 4; i++)
        info->zero_block_frac[i] = w->zero_block_frac[i];
    info->format = w->format;
    info->reason = w->reason;
    return SPRUN_OK;
}

size_t sprun_model_node_count(const sprun_model *m)
{
    if (!m)
        return 0;
    size_t n = 0;
    for (int i = 0; i < m->graph.n_nodes; i++)
        n += !m->graph.nodes[i].dead;
    return n;
}

sprun_code sprun_model_node_describe(const sprun_model *m, size_t idx, char *buf, size_t buflen)
{
    sp_err err = {0};
    if (!m || !buf || !buflen) {
        sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_model_node_describe: NULL argument");
        return (sprun_code)sp_err_publish(&err);
    }
    const sp_graph *g = &m->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (n->dead || idx-- != 0)
            continue;
        int w = snprintf(buf, buflen, "%-20s %s", n->op_type, n->name);
        if (n->fusion.n_fused && w > 0 && (size_t)w < buflen)
            snprintf(buf + w, buflen - (size_t)w, "  [folded/fused %d node%s, act %s]", n->fusion.n_fused,
                     n->fusion.n_fused > 1 ? "s" : "", act_name(n->fusion.act));
        return SPRUN_OK;
    }
    sp_err_set(&err, SPRUN_ERR_INVALID_ARGUMENT, "sprun_model_node_describe: index out of range");
    return (sprun_code)sp_err_publish(&err);
}

int sp_model_set_cost(struct sprun_model *m, const sp_cost_device *base, const char *why, sp_err *err)
{
    m->cost = *base;
    char msg[512];
    if (m->opt.calibration_path[0] && sp_cost_device_load(m->opt.calibration_path, &m->cost, msg, sizeof msg) != 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "calibration: %s", msg);
    if (m->opt.calibration_path[0])
        snprintf(m->cost_origin, sizeof m->cost_origin, "%s: calibration file '%s' over the built-in %s", m->cost.name,
                 m->opt.calibration_path, base->name);
    else if (why && why[0])
        snprintf(m->cost_origin, sizeof m->cost_origin, "%s", why);
    else
        snprintf(m->cost_origin, sizeof m->cost_origin, "%s: built-in table", m->cost.name);
    return SPRUN_OK;
}

const char *sprun_model_cost_table(const sprun_model *m)
{
    return m && m->cost_origin[0] ? m->cost_origin : "";
}
