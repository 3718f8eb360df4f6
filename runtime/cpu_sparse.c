/* cpu_sparse.c - choosing, packing and running sparse layers on the CPU. */
#include "runtime/cpu_sparse.h"

#include "kernels/cpu/nn_cpu.h"
#include "kernels/cpu/spmm_cpu.h"
#include "runtime/cost_model.h"
#include "runtime/tune_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Why node n cannot run sparse on the CPU (NULL: it can). Static checks
 * that need no shapes. */
static const char *ineligible(const sp_graph *g, const sp_node *n)
{
    const sp_value *w = sp_node_in(g, n, 1);
    if (!w || w->kind != SP_VAL_CONST || w->dtype != SPRUN_DTYPE_FLOAT)
        return "weight is not a constant float32 tensor";
    if (!strcmp(n->op_type, "Conv")) {
        if (sp_attr_int(n, "group", 1) != 1)
            return "grouped convolution: CPU sparse kernels take group = 1";
        return NULL;
    }
    return sp_weight_gemm_ineligible(g, n);
}

static unsigned allowed_formats(sprun_format forced, int is_24)
{
    switch (forced) {
    case SPRUN_FORMAT_CSR: return 1u << SPRUN_FORMAT_CSR;
    case SPRUN_FORMAT_BSR: return 1u << SPRUN_FORMAT_BSR;
    case SPRUN_FORMAT_24: return is_24 ? 1u << SPRUN_FORMAT_24 : 0;
    case SPRUN_FORMAT_DENSE: return 0;
    default:
        return (1u << SPRUN_FORMAT_CSR) | (1u << SPRUN_FORMAT_BSR) | (is_24 ? 1u << SPRUN_FORMAT_24 : 0);
    }
}

/* Tuning: packs every candidate format of weight i (sp_weight_candidates at
 * a 14 x 14 map, blocks from 4). */
static int pack_candidates(const struct sprun_model *m, sp_cpu_packed *packed, int i, sp_err *err)
{
    const sp_weight_record *r = &m->weights[i];
    const sp_node *n = &m->graph.nodes[r->node];
    sp_sparse_matrix *c = &packed->cand[i * SP_CPU_NCAND];
    sp_cost_estimate cand[3];
    const int nc = sp_weight_candidates(&m->cost, r, 196, 4, 4, cand);
    int rc = SPRUN_OK;
    for (int k = 0; k < nc && rc == SPRUN_OK; k++)
        rc = sp_weight_pack(&m->graph, n, cand[k].format, cand[k].block, 0, SP_VT_F32, &c[k], err);
    return rc;
}

int sp_cpu_sparse_prepare(struct sprun_model *m, sp_cpu_packed *packed, sp_err *err)
{
    int rc0 = sp_model_set_cost(m, &sp_cost_cpu_generic, NULL, err);
    if (rc0 != SPRUN_OK)
        return rc0;
    packed->n = m->n_weights;
    packed->mat = calloc((size_t)(m->n_weights > 0 ? m->n_weights : 1), sizeof *packed->mat);
    if (!packed->mat)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for packed weights");
    const sp_graph *g = &m->graph;
    sprun_format forced = m->opt.format;
    int tuning = m->tune && forced == SPRUN_FORMAT_AUTO;
    if (tuning && !(packed->cand = calloc((size_t)(m->n_weights > 0 ? m->n_weights : 1) * SP_CPU_NCAND,
                                           sizeof *packed->cand)))
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for tuning candidates");
    for (int i = 0; i < m->n_weights; i++) {
        sp_weight_record *r = &m->weights[i];
        const sp_node *n = &g->nodes[r->node];
        r->format = SPRUN_FORMAT_DENSE;
        const char *why = ineligible(g, n);
        if (why) {
            snprintf(r->reason, sizeof r->reason, "dense: %s", why);
            continue;
        }
        if (tuning && r->density < 1.0) {
            int rc = pack_candidates(m, packed, i, err);
            if (rc != SPRUN_OK)
                return rc;
            snprintf(r->reason, sizeof r->reason, "tuned per plan: dense and each sparse candidate timed");
            continue;
        }
        unsigned allowed = allowed_formats(forced, r->is_24);
        if (!allowed) {
            snprintf(r->reason, sizeof r->reason, "%s",
                     forced == SPRUN_FORMAT_24 ? "dense: weight is not 2:4 along K" : "dense: forced");
            continue;
        }
        /* Nominal N for the load-time choice: one 14x14 feature map, or one
         * 128-token sequence; each plan re-decides with its real N. */
        sp_cost_problem pr = sp_weight_problem(r, !strcmp(n->op_type, "Conv") ? 196 : 128, 4);
        sp_cost_estimate best = {0}, dense;
        if (!sp_cost_best_sparse(&m->cost, &pr, allowed, 4, &best))
            continue;
        sp_cost_estimate_format(&m->cost, &pr, SPRUN_FORMAT_DENSE, 0, &dense);
        if (forced == SPRUN_FORMAT_AUTO && best.t_total >= dense.t_total) {
            snprintf(r->reason, sizeof r->reason, "dense: predicted %.1f us vs best sparse %.1f us (density %.2f)",
                     dense.t_total * 1e6, best.t_total * 1e6, r->density);
            continue;
        }
        int rc = sp_weight_pack(g, n, best.format, best.block, 0, SP_VT_F32, &packed->mat[i], err);
        if (rc != SPRUN_OK)
            return rc;
        r->format = best.format;
        snprintf(r->reason, sizeof r->reason, "%s%.0d: predicted %.1f us vs dense %.1f us at N=%lld%s",
                 best.format == SPRUN_FORMAT_CSR ? "csr" : best.format == SPRUN_FORMAT_BSR ? "bsr" : "2:4",
                 best.block, best.t_total * 1e6, dense.t_total * 1e6, (long long)pr.n,
                 forced != SPRUN_FORMAT_AUTO ? " (forced)" : "");
    }
    return SPRUN_OK;
}

void sp_cpu_sparse_release(sp_cpu_packed *packed)
{
    for (int i = 0; packed->mat && i < packed->n; i++)
        sp_sparse_free(&packed->mat[i]);
    for (int i = 0; packed->cand && i < packed->n * SP_CPU_NCAND; i++)
        sp_sparse_free(&packed->cand[i]);
    free(packed->mat);
    free(packed->cand);
    packed->mat = NULL;
    packed->cand = NULL;
}

/* N (columns of X) of node n in plan p, and bytes of scratch its sparse
 * path needs; 0 if shapes do not fit the sparse path. */
static int64_t plan_n(const sp_plan *p, const sp_node *n, int64_t m, int64_t k, size_t *scratch)
{
    const sp_value *x = sp_node_in(&p->g, n, 0), *y = sp_node_out(&p->g, n, 0);
    if (!x || !y || x->dtype != SPRUN_DTYPE_FLOAT || y->dtype != SPRUN_DTYPE_FLOAT)
        return 0;
    if (!strcmp(n->op_type, "Conv")) {
        if (x->shape.rank < 3 || y->shape.rank != x->shape.rank || y->shape.d[1] != m)
            return 0;
        int64_t ohw = sp_shape_numel(&y->shape) / (y->shape.d[0] * m);
        *scratch = (size_t)(k * ohw) * sizeof(float); /* im2col of one image */
        return ohw;
    }
    if (x->shape.rank < 2 || x->shape.d[x->shape.rank - 1] != k)
        return 0;
    int64_t rows = sp_shape_numel(&x->shape) / k;
    int r = sp_nn_residual_index(n, n->n_in);
    const sp_value *c = r != 2 ? sp_node_in(&p->g, n, 2) : NULL;
    const sp_value *res = r >= 0 ? sp_node_in(&p->g, n, r) : NULL;
    if ((c && sp_shape_numel(&c->shape) != m) ||
        (res && sp_shape_numel(&res->shape) != m && sp_shape_numel(&res->shape) != m * rows))
        return 0; /* broadcast shapes the sparse epilogue does not take */
    *scratch = (size_t)(k * rows + m * rows) * sizeof(float); /* X^T and Y^T */
    return rows;
}

const sp_sparse_matrix *sp_cpu_sparse_select(const struct sprun_model *m, const sp_cpu_packed *packed,
                                             const sp_plan *p, int ni, size_t *scratch_bytes, sp_step_info *info)
{
    static const char *labels[] = {"dense", "csr", "bsr", "2:4"};
    for (int i = 0; i < m->n_weights; i++) {
        const sp_weight_record *r = &m->weights[i];
        if (r->node != ni)
            continue;
        const sp_node *n = &p->g.nodes[ni];
        size_t need = 0;
        int64_t n_cols = plan_n(p, n, r->m, r->k, &need);
        info->weight = i;
        info->m = r->m;
        info->k = r->k;
        info->n = n_cols;
        info->kernel = "dense";
        sp_cost_problem pr = sp_weight_problem(r, n_cols > 0 ? n_cols : 1, 4);
        sp_cost_estimate dense, sp;
        sp_cost_estimate_format(&m->cost, &pr, SPRUN_FORMAT_DENSE, 0, &dense);
        info->predicted_us = dense.t_total * 1e6;
        if (packed->cand && n_cols > 0 && need > *scratch_bytes)
            *scratch_bytes = need; /* tuning may pick any candidate */
        const sp_sparse_matrix *w = &packed->mat[i];
        if (w->kind == SP_SPARSE_DENSE || n_cols <= 0)
            return NULL;
        int blk = w->kind == SP_SPARSE_BSR ? w->u.bsr.br : 0;
        if (!sp_cost_estimate_format(&m->cost, &pr, r->format, blk, &sp))
            return NULL;
        if (m->opt.format == SPRUN_FORMAT_AUTO && sp.t_total >= dense.t_total)
            return NULL; /* at this plan's N the dense op is predicted faster */
        if (need > *scratch_bytes)
            *scratch_bytes = need;
        info->kernel = labels[w->kind];
        info->predicted_us = sp.t_total * 1e6;
        return w;
    }
    return NULL;
}

typedef struct {
    const float *src;
    float *dst;
    int64_t rows, cols; /* src is [rows, cols] */
} tjob;

static void transpose_range(void *vp, int64_t b, int64_t e)
{
    const tjob *j = vp;
    for (int64_t r = b; r < e; r++)
        for (int64_t c = 0; c < j->cols; c++)
            j->dst[c * j->rows + r] = j->src[r * j->cols + c];
}

typedef struct {
    const float *yt; /* [M, N] */
    float *y;        /* [N, M] */
    int64_t m, n;
    const float *res;
    int64_t res_n; /* residual numel: N*M (exact) or M (per feature) */
    const sp_fusion *f;
} ejob;

static void untranspose_range(void *vp, int64_t b, int64_t e)
{
    const ejob *j = vp;
    for (int64_t r = b; r < e; r++)
        for (int64_t c = 0; c < j->m; c++) {
            float v = j->yt[c * j->n + r];
            if (j->res)
                v += j->res[(r * j->m + c) % j->res_n];
            j->y[r * j->m + c] = sp_act_apply(j->f->act, v, j->f->alpha, j->f->beta);
        }
}

int sp_cpu_sparse_run(const sp_node *n, const sp_sparse_matrix *w, const sp_tensor *in, int n_in, sp_tensor *out,
                      const sp_cpu_ctx *ctx, sp_err *err)
{
    char msg[256] = "";
    int r = sp_nn_residual_index(n, n_in);
    const float *bias = n_in > 2 && r != 2 && in[2].data ? in[2].data : NULL;
    sp_spmm_args a = {.nthreads = ctx->nthreads, .pool = ctx};
    int64_t m = w->kind == SP_SPARSE_CSR ? w->u.csr.m : w->kind == SP_SPARSE_BSR ? w->u.bsr.m : w->u.s24.m;
    int64_t k = w->kind == SP_SPARSE_CSR ? w->u.csr.k : w->kind == SP_SPARSE_BSR ? w->u.bsr.k : w->u.s24.k;
    if (!strcmp(n->op_type, "Conv")) {
        const sp_shape *xs = &in[0].shape;
        int nsp = xs->rank - 2;
        sp_win win;
        int rc = sp_win_compute(n, nsp, xs->d + 2, in[1].shape.d + 2, 0, &win, err);
        if (rc != SPRUN_OK)
            return rc;
        int64_t batch = xs->d[0], c = xs->d[1];
        int64_t ihw = sp_shape_numel(xs) / (batch * c);
        int64_t ohw = sp_shape_numel(&out[0].shape) / (batch * m);
        int direct = 1;
        for (int d = 0; d < 3; d++)
            direct &= win.k[d] == 1 && win.s[d] == 1 && win.pb[d] == 0 && win.pe[d] == 0;
        for (int64_t b = 0; b < batch; b++) {
            const float *xb = (const float *)in[0].data + b * c * ihw;
            if (!direct) {
                if (sp_nn_need_scratch(n, ctx, (size_t)(k * ohw) * sizeof(float), err) != SPRUN_OK)
                    return err->code;
                sp_im2col(ctx, xb, c, &win, ctx->scratch);
                xb = ctx->scratch;
            }
            a.n = ohw;
            a.x = xb;
            a.x_sk = ohw;
            a.x_sn = 1;
            a.y = (float *)out[0].data + b * m * ohw;
            a.y_sm = ohw;
            a.y_sn = 1;
            a.bias = bias;
            a.residual = r >= 0 ? (const float *)in[r].data + b * m * ohw : NULL;
            a.r_sm = ohw;
            a.r_sn = 1;
            a.act = n->fusion.act;
            a.alpha = n->fusion.alpha;
            a.beta = n->fusion.beta;
            if (sp_spmm_cpu(w, &a, msg, sizeof msg) != 0)
                return sp_err_set(err, SPRUN_ERR_INTERNAL, "sparse conv: %s", msg);
        }
        return SPRUN_OK;
    }
    /* Gemm / MatMul: Y[rows, M] = X[rows, K] W^T. The CPU kernels are
     * fastest with n contiguous, so X is transposed into scratch, Y^T
     * computed there, and transposed back with the residual/activation. */
    int64_t rows = sp_shape_numel(&in[0].shape) / k;
    size_t need = (size_t)(k * rows + m * rows) * sizeof(float);
    if (sp_nn_need_scratch(n, ctx, need, err) != SPRUN_OK)
        return err->code;
    float *xt = ctx->scratch, *yt = xt + k * rows;
    tjob tj = {in[0].data, xt, rows, k};
    sp_parallel_for(ctx, rows, 16, transpose_range, &tj);
    a.n = rows;
    a.x = xt;
    a.x_sk = rows;
    a.x_sn = 1;
    a.y = yt;
    a.y_sm = rows;
    a.y_sn = 1;
    a.bias = bias && sp_shape_numel(&in[2].shape) == m ? bias : NULL;
    if (bias && !a.bias)
        return sp_err_set(err, SPRUN_ERR_INTERNAL, "sparse %s '%s': bias of unexpected shape", n->op_type, n->name);
    if (sp_spmm_cpu(w, &a, msg, sizeof msg) != 0)
        return sp_err_set(err, SPRUN_ERR_INTERNAL, "sparse %s: %s", n->op_type, msg);
    ejob ej = {yt, out[0].data, m, rows, r >= 0 ? in[r].data : NULL, r >= 0 ? sp_shape_numel(&in[r].shape) : 1,
               &n->fusion};
    if (ej.res && ej.res_n != m && ej.res_n != m * rows)
        return sp_err_set(err, SPRUN_ERR_INTERNAL, "sparse %s '%s': residual of unexpected shape", n->op_type,
                          n->name);
    sp_parallel_for(ctx, rows, 16, untranspose_range, &ej);
    return SPRUN_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best of 3 timed runs after one warm-up; < 0 on error. */
static double time_step(sp_cpu_step_runner run, void *arg, int step, const sp_sparse_matrix *w, sp_err *err)
{
    if (run(arg, step, w, err) != SPRUN_OK)
        return -1;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        if (run(arg, step, w, err) != SPRUN_OK)
            return -1;
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    return best;
}

int sp_cpu_sparse_tune(const struct sprun_model *m, const sp_cpu_packed *packed, sp_plan *p, int nthreads,
                       const sp_sparse_matrix **chosen, sp_cpu_step_runner run_step, sp_cpu_step_filler fill_inputs,
                       void *arg, sp_err *err)
{
    static const char *labels[] = {"dense", "csr", "bsr", "2:4"};
    if (!m->tune || !packed->cand)
        return SPRUN_OK;
    for (int s = 0; s < p->n_order; s++) {
        sp_step_info *info = &p->step[s];
        if (info->weight < 0 || info->n <= 0)
            continue;
        const sp_weight_record *r = &m->weights[info->weight];
        const sp_sparse_matrix *cand = &packed->cand[info->weight * SP_CPU_NCAND];
        if (cand[0].kind == SP_SPARSE_DENSE)
            continue; /* not eligible or fully dense: nothing to tune */
        size_t need = 0;
        if (plan_n(p, &p->g.nodes[p->order[s]], r->m, r->k, &need) <= 0)
            continue;
        char key[256], choice[16];
        snprintf(key, sizeof key, "cpu-%dt M=%lld K=%lld N=%lld nnz=%lld 2:4=%d zb16=%.3f", nthreads,
                 (long long)r->m, (long long)r->k, (long long)info->n, (long long)r->nnz, r->is_24,
                 r->zero_block_frac[2]);
        int pick = -1; /* -1 dense, else candidate index */
        if (sp_tune_cache_get(m->tune, key, choice, sizeof choice)) {
            for (int c = 0; c < SP_CPU_NCAND; c++)
                if (cand[c].kind != SP_SPARSE_DENSE && !strcmp(labels[cand[c].kind], choice))
                    pick = c;
        } else {
            fill_inputs(arg, s);
            double best = time_step(run_step, arg, s, NULL, err);
            if (best < 0)
                return err->code;
            char note[256];
            int used = snprintf(note, sizeof note, "dense=%.1fus", best * 1e6);
            for (int c = 0; c < SP_CPU_NCAND; c++) {
                if (cand[c].kind == SP_SPARSE_DENSE)
                    continue;
                double t = time_step(run_step, arg, s, &cand[c], err);
                if (t < 0)
                    return err->code;
                if (used > 0 && (size_t)used < sizeof note)
                    used += snprintf(note + used, sizeof note - (size_t)used, " %s=%.1fus", labels[cand[c].kind],
                                     t * 1e6);
                if (t < best) {
                    best = t;
                    pick = c;
                }
            }
            sp_tune_cache_put(m->tune, key, pick < 0 ? "dense" : labels[cand[pick].kind], note);
        }
        chosen[s] = pick < 0 ? NULL : &cand[pick];
        info->kernel = pick < 0 ? "dense" : labels[cand[pick].kind];
    }
    return SPRUN_OK;
}
