/*
 * weights.c - per-weight sparsity analysis of a loaded model.
 *
 * Every Conv / Gemm / MatMul whose weight is a constant is analysed in the
 * GEMM view (rows = output features, K = reduction): density, 2:4
 * compliance along K and zero-block fractions. Backends read the records to
 * choose a kernel per weight; `sprun --info` prints them.
 */
#include "runtime/model.h"

#include "loaders/sparse_pack.h"
#include "loaders/sparsity_analysis.h"
#include "runtime/half.h"

#include <stdlib.h>
#include <string.h>

/* Float copy of a constant weight (float32 or float16); NULL otherwise. */
static float *weight_as_f32(const sp_value *v)
{
    int64_t n = sp_shape_numel(&v->shape);
    if (n <= 0 || !v->data)
        return NULL;
    float *w = malloc((size_t)n * sizeof *w);
    if (!w)
        return NULL;
    if (v->dtype == SPRUN_DTYPE_FLOAT)
        memcpy(w, v->data, (size_t)n * sizeof *w);
    else if (v->dtype == SPRUN_DTYPE_FLOAT16)
        for (int64_t i = 0; i < n; i++)
            w[i] = sp_f16_to_f32(((const uint16_t *)v->data)[i]);
    else {
        free(w);
        return NULL;
    }
    return w;
}

float *sp_weight_gemm_view(const sp_graph *g, const sp_node *n, int *value_idx, int64_t *m, int64_t *k)
{
    const sp_value *wv = sp_node_in(g, n, 1);
    if (!wv || wv->kind != SP_VAL_CONST)
        return NULL;
    const sp_shape *s = &wv->shape;
    int transpose = 0;
    if (!strcmp(n->op_type, "Conv")) {
        if (s->rank < 3)
            return NULL;
        *m = s->d[0];
        *k = sp_shape_numel(s) / (s->d[0] ? s->d[0] : 1);
    } else if (!strcmp(n->op_type, "Gemm")) {
        if (s->rank != 2)
            return NULL;
        transpose = sp_attr_int(n, "transB", 0) == 0;
        *m = transpose ? s->d[1] : s->d[0];
        *k = transpose ? s->d[0] : s->d[1];
    } else if (!strcmp(n->op_type, "MatMul")) {
        if (s->rank != 2)
            return NULL;
        transpose = 1;
        *m = s->d[1];
        *k = s->d[0];
    } else
        return NULL;
    float *w = weight_as_f32(wv);
    if (!w || !transpose) {
        if (value_idx)
            *value_idx = n->in[1];
        return w;
    }
    float *t = sp_transpose_f32(w, *k, *m);
    free(w);
    if (value_idx)
        *value_idx = n->in[1];
    return t;
}

/* Kernel positions kh * kw of node n's weight when it is a k x k Conv
 * (rank 4, kh * kw > 1), whose K order (ci, ky, kx) differs from
 * (ky, kx, ci); else 0. */
static int64_t conv_positions(const sp_graph *g, const sp_node *n)
{
    const sp_value *wv = sp_node_in(g, n, 1);
    if (strcmp(n->op_type, "Conv") || !wv || wv->shape.rank != 4)
        return 0;
    const int64_t khw = wv->shape.d[2] * wv->shape.d[3];
    return khw > 1 ? khw : 0;
}

/* Rows of the [m, k] view w from K order (ci, q) to (q, ci), q = ky * kw + kx,
 * in place; k = c * khw. 0, or -1 out of memory (w unchanged). */
static int rows_to_rsc(float *w, int64_t m, int64_t k, int64_t khw)
{
    const int64_t c = k / khw;
    float *row = malloc((size_t)k * sizeof *row);
    if (!row)
        return -1;
    for (int64_t r = 0; r < m; r++) {
        float *wr = w + r * k;
        for (int64_t ci = 0; ci < c; ci++)
            for (int64_t q = 0; q < khw; q++)
                row[q * c + ci] = wr[ci * khw + q];
        memcpy(wr, row, (size_t)k * sizeof *row);
    }
    free(row);
    return 0;
}

float *sp_weight_gemm_view_order(const sp_graph *g, const sp_node *n, int rsc, int *value_idx, int64_t *m,
                                 int64_t *k)
{
    float *w = sp_weight_gemm_view(g, n, value_idx, m, k);
    const int64_t khw = rsc ? conv_positions(g, n) : 0;
    if (w && khw && rows_to_rsc(w, *m, *k, khw) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

int sp_model_analyse_weights(struct sprun_model *m, sp_err *err)
{
    const sp_graph *g = &m->graph;
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        cap += !n->dead && (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm") ||
                            !strcmp(n->op_type, "MatMul"));
    }
    m->weights = calloc((size_t)(cap > 0 ? cap : 1), sizeof *m->weights);
    if (!m->weights)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for the weight analysis");
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        int vi = -1;
        int64_t rows = 0, k = 0;
        float *w = sp_weight_gemm_view(g, n, &vi, &rows, &k);
        if (!w)
            continue;
        sp_weight_stats st, st_c;
        char msg[256] = "";
        int rc = sp_weight_analyze(w, rows, k, &st, msg, sizeof msg);
        int is_24_c = st.is_24;
        /* a k x k conv: 2:4 in (ky, kx, ci) order too (the same weight, permuted in place) */
        const int64_t khw = conv_positions(g, n);
        if (rc == 0 && khw) {
            if (rows_to_rsc(w, rows, k, khw) != 0) {
                rc = SPRUN_ERR_OUT_OF_MEMORY;
                snprintf(msg, sizeof msg, "out of memory permuting to (kh, kw, c) order");
            } else
                rc = sp_weight_analyze(w, rows, k, &st_c, msg, sizeof msg);
            is_24_c = rc == 0 && st_c.is_24;
        }
        free(w);
        if (rc != 0)
            return sp_err_set(err, rc, "weight analysis of node '%s': %s", n->name, msg);
        sp_weight_record *r = &m->weights[m->n_weights++];
        r->node = i;
        r->value = vi;
        r->node_name = sp_strdup(n->name);
        r->op_type = sp_strdup(n->op_type);
        r->weight_name = sp_strdup(g->values[vi].name);
        if (!r->node_name || !r->op_type || !r->weight_name)
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for the weight analysis");
        r->m = st.m;
        r->k = st.k;
        r->nnz = st.nnz;
        r->density = st.density;
        r->is_24 = st.is_24;
        r->nnz_over_24 = st.nnz_over_24;
        r->is_24_c = is_24_c;
        for (int b = 0; b < 4; b++)
            r->zero_block_frac[b] = st.zero_block_frac[b];
        r->format = SPRUN_FORMAT_DENSE;
    }
    return SPRUN_OK;
}

sp_cost_problem sp_weight_problem(const sp_weight_record *r, int64_t n, size_t value_bytes)
{
    sp_cost_problem p = {.m = r->m, .k = r->k, .n = n, .density = r->density, .is_24 = r->is_24,
                         .value_bytes = value_bytes};
    for (int i = 0; i < 4; i++)
        p.zero_block_frac[i] = r->zero_block_frac[i];
    p.overflow24_known = r->m > 0 && r->k > 0;
    p.overflow24 = p.overflow24_known ? (double)r->nnz_over_24 / ((double)r->m * (double)r->k) : 0;
    return p;
}

int sp_weight_candidates(const sp_cost_device *dev, const sp_weight_record *r, int64_t n, size_t value_bytes,
                         int min_block, sp_cost_estimate out[3])
{
    const sp_cost_problem pr = sp_weight_problem(r, n, value_bytes);
    int c = 0;
    memset(&out[c], 0, sizeof out[c]);
    out[c++].format = SPRUN_FORMAT_CSR;
    if (sp_cost_best_sparse(dev, &pr, 1u << SPRUN_FORMAT_BSR, min_block, &out[c]))
        c++;
    if (r->is_24) {
        memset(&out[c], 0, sizeof out[c]);
        out[c++].format = SPRUN_FORMAT_24;
    }
    return c;
}

const char *sp_weight_gemm_ineligible(const sp_graph *g, const sp_node *n)
{
    const sp_value *w = sp_node_in(g, n, 1);
    if (!strcmp(n->op_type, "Gemm")) {
        if (sp_attr_int(n, "transA", 0) != 0)
            return "Gemm with transA: activations must be [rows, K]";
        if (sp_attr_float(n, "alpha", 1.f) != 1.f ||
            (n->n_in > 2 && n->in[2] >= 0 && sp_attr_float(n, "beta", 1.f) != 1.f))
            return "Gemm alpha/beta other than 1";
        return NULL;
    }
    if (!strcmp(n->op_type, "MatMul"))
        return w && w->shape.rank == 2 ? NULL : "MatMul weight is not 2-D";
    return "not a Conv/Gemm/MatMul";
}

int sp_weight_pack(const sp_graph *g, const sp_node *n, sprun_format f, int block, int rsc, sp_sparse_vtype vt,
                   sp_sparse_matrix *out, sp_err *err)
{
    const sp_sparse_kind kind = f == SPRUN_FORMAT_CSR ? SP_SPARSE_CSR : f == SPRUN_FORMAT_BSR ? SP_SPARSE_BSR
                                                                                              : SP_SPARSE_24;
    int64_t rows, k;
    memset(out, 0, sizeof *out);
    float *w = sp_weight_gemm_view_order(g, n, rsc, NULL, &rows, &k);
    if (!w)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory reading the weight of '%s'", n->name);
    char msg[256] = "";
    int rc = sp_pack(w, rows, k, kind, block, block, vt, out, msg, sizeof msg);
    free(w);
    return rc != 0 ? sp_err_set(err, rc, "packing the weight of '%s': %s", n->name, msg) : SPRUN_OK;
}
