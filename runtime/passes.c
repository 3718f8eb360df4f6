/*
 * passes.c - graph rewrites shared by every backend.
 *
 * BatchNorm folding runs at load (weights are constant, so the folded
 * weights are computed once per model), and so does GELU recognition: the
 * erf form exporters write, x * 0.5 * (1 + erf(x / sqrt 2)) as five nodes,
 * becomes one Gelu node, which epilogue fusion can then fold into the
 * MatMul/Gemm before it. Epilogue fusion runs per plan, when
 * shapes are concrete, because whether an Add is a same-shape residual or a
 * broadcast bias can only be told from shapes.
 */
#include "ops/op.h"
#include "runtime/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consumers of value v among live nodes: returns count, first in *only. */
static int consumers(const sp_graph *g, int v, int *only)
{
    int count = 0;
    *only = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v) {
                if (count == 0)
                    *only = i;
                count++;
            }
    }
    return count;
}

static int is_f32_const(const sp_graph *g, int v)
{
    return v >= 0 && g->values[v].kind == SP_VAL_CONST && g->values[v].dtype == SPRUN_DTYPE_FLOAT &&
           g->values[v].data;
}

/* Adds a new float constant value named after base; takes ownership. */
static int new_const_f32(sp_graph *g, const char *base, float *data, const sp_shape *shape, sp_err *err)
{
    int v = sp_graph_new_value(g, base, err);
    if (v < 0) {
        free(data);
        return -1;
    }
    sp_value_set_const(&g->values[v], SPRUN_DTYPE_FLOAT, shape, data, (size_t)sp_shape_numel(shape) * sizeof(float),
                       1);
    return v;
}

static int append_input(sp_node *n, int v)
{
    int *ni = realloc(n->in, (size_t)(n->n_in + 1) * sizeof *ni);
    if (!ni)
        return -1;
    n->in = ni;
    n->in[n->n_in++] = v;
    return n->n_in - 1;
}

int sp_pass_fold_batchnorm(sp_graph *g, int *n_folded, sp_err *err)
{
    int folded = 0;
    for (int ci = 0; ci < g->n_nodes; ci++) {
        sp_node *conv = &g->nodes[ci];
        if (conv->dead || strcmp(conv->op_type, "Conv") != 0 || conv->n_out < 1 || conv->n_in < 2)
            continue;
        int y = conv->out[0];
        if (y < 0 || g->values[y].is_output)
            continue;
        int bi;
        if (consumers(g, y, &bi) != 1)
            continue;
        sp_node *bn = &g->nodes[bi];
        if (strcmp(bn->op_type, "BatchNormalization") != 0 || bn->n_in < 5 || bn->in[0] != y)
            continue;
        if (sp_attr_int(bn, "training_mode", 0) != 0)
            continue;
        int w = conv->in[1], b = conv->n_in > 2 ? conv->in[2] : -1;
        if (!is_f32_const(g, w) || (b >= 0 && !is_f32_const(g, b)))
            continue;
        int ok = 1;
        for (int k = 1; k < 5; k++)
            ok &= is_f32_const(g, bn->in[k]);
        if (!ok)
            continue;
        const sp_value *wv = &g->values[w];
        int64_t m = wv->shape.rank > 0 ? wv->shape.d[0] : 0;
        int64_t per = m > 0 ? sp_shape_numel(&wv->shape) / m : 0;
        int bad = m <= 0 || per <= 0;
        for (int k = 1; k < 5 && !bad; k++)
            bad = sp_shape_numel(&g->values[bn->in[k]].shape) != m;
        if (bad)
            continue;
        const float *scale = g->values[bn->in[1]].data, *beta = g->values[bn->in[2]].data,
                    *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
        const float *w0 = wv->data, *b0 = b >= 0 ? g->values[b].data : NULL;
        float eps = sp_attr_float(bn, "epsilon", 1e-5f);
        float *nw = malloc((size_t)(m * per) * sizeof *nw), *nb = malloc((size_t)m * sizeof *nb);
        if (!nw || !nb) {
            free(nw);
            free(nb);
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory folding BatchNormalization '%s'",
                              bn->name);
        }
        for (int64_t o = 0; o < m; o++) {
            double s = (double)scale[o] / sqrt((double)var[o] + (double)eps);
            for (int64_t j = 0; j < per; j++)
                nw[o * per + j] = (float)(w0[o * per + j] * s);
            nb[o] = (float)(((b0 ? b0[o] : 0.0) - mean[o]) * s + beta[o]);
        }
        char base[256];
        sp_shape bshape = sp_shape_make(1, &m);
        snprintf(base, sizeof base, "%s_bnfolded_W", conv->name);
        sp_shape wshape = wv->shape;
        int nwv = new_const_f32(g, base, nw, &wshape, err);
        if (nwv < 0) {
            free(nb);
            return err ? err->code : SPRUN_ERR_OUT_OF_MEMORY;
        }
        snprintf(base, sizeof base, "%s_bnfolded_B", conv->name);
        int nbv = new_const_f32(g, base, nb, &bshape, err);
        if (nbv < 0)
            return err ? err->code : SPRUN_ERR_OUT_OF_MEMORY;
        conv = &g->nodes[ci]; /* value table may have moved; nodes did not */
        bn = &g->nodes[bi];
        conv->in[1] = nwv;
        if (conv->n_in > 2)
            conv->in[2] = nbv;
        else if (append_input(conv, nbv) < 0)
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory folding BatchNormalization");
        conv->out[0] = bn->out[0];
        g->values[bn->out[0]].producer = ci;
        bn->dead = 1;
        conv->fusion.n_fused++;
        folded++;
    }
    if (n_folded)
        *n_folded = folded;
    return SPRUN_OK;
}

/* Activation op -> sp_act, reading its parameters; 0 if not fusable. */
static int activation_of(const sp_graph *g, const sp_node *n, int *act, float *alpha, float *beta)
{
    const char *t = n->op_type;
    *alpha = 0.f;
    *beta = 0.f;
    if (!strcmp(t, "Relu"))
        *act = SP_ACT_RELU;
    else if (!strcmp(t, "Sigmoid"))
        *act = SP_ACT_SIGMOID;
    else if (!strcmp(t, "Tanh"))
        *act = SP_ACT_TANH;
    else if (!strcmp(t, "HardSwish"))
        *act = SP_ACT_HARDSWISH;
    else if (!strcmp(t, "LeakyRelu")) {
        *act = SP_ACT_LEAKYRELU;
        *alpha = sp_attr_float(n, "alpha", 0.01f);
    } else if (!strcmp(t, "HardSigmoid")) {
        *act = SP_ACT_HARDSIGMOID;
        *alpha = sp_attr_float(n, "alpha", 0.2f);
        *beta = sp_attr_float(n, "beta", 0.5f);
    } else if (!strcmp(t, "Gelu")) {
        if (strcmp(sp_attr_string(n, "approximate", "none"), "none") != 0)
            return 0;
        *act = SP_ACT_GELU;
    } else if (!strcmp(t, "Clip")) {
        *act = SP_ACT_CLIP;
        *alpha = -INFINITY;
        *beta = INFINITY;
        if (g->opset < 11) {
            *alpha = sp_attr_float(n, "min", -INFINITY);
            *beta = sp_attr_float(n, "max", INFINITY);
        } else {
            for (int k = 1; k <= 2; k++) {
                const sp_value *v = sp_node_in(g, n, k);
                if (!v)
                    continue;
                if (v->kind != SP_VAL_CONST || v->dtype != SPRUN_DTYPE_FLOAT || sp_shape_numel(&v->shape) != 1)
                    return 0;
                *(k == 1 ? alpha : beta) = *(const float *)v->data;
            }
        }
    } else
        return 0;
    return 1;
}

/* Value v is a one-element float constant: its value in *c. */
static int scalar_f32(const sp_graph *g, int v, float *c)
{
    if (!is_f32_const(g, v) || sp_shape_numel(&g->values[v].shape) != 1)
        return 0;
    *c = *(const float *)g->values[v].data;
    return 1;
}

/* The live node that is the only consumer of value v (and v is no graph
 * output), of type op_type; -1 otherwise. */
static int sole_consumer_of_type(const sp_graph *g, int v, const char *op_type)
{
    int ci;
    if (v < 0 || g->values[v].is_output || consumers(g, v, &ci) != 1 || strcmp(g->nodes[ci].op_type, op_type))
        return -1;
    return ci;
}

/* The other input of binary node n besides v (-1 when n does not read v). */
static int other_input(const sp_node *n, int v)
{
    if (n->n_in != 2)
        return -1;
    return n->in[0] == v ? n->in[1] : n->in[1] == v ? n->in[0] : -1;
}

int sp_pass_fuse_gelu(sp_graph *g, int *n_fused, sp_err *err)
{
    int fused = 0;
    const sp_op_def *gelu = sp_op_find("", "Gelu");
    for (int di = 0; di < g->n_nodes && gelu; di++) {
        sp_node *d = &g->nodes[di];
        float c;
        /* x / sqrt(2)  or  x * (1 / sqrt(2)) */
        if (d->dead || d->n_in != 2 || d->n_out != 1 || !scalar_f32(g, d->in[1], &c))
            continue;
        if (!((!strcmp(d->op_type, "Div") && fabsf(c - 1.41421356f) < 1e-3f) ||
              (!strcmp(d->op_type, "Mul") && fabsf(c - 0.70710678f) < 1e-3f)))
            continue;
        const int x = d->in[0];
        const int ei = sole_consumer_of_type(g, d->out[0], "Erf");
        if (ei < 0)
            continue;
        const int ai = sole_consumer_of_type(g, g->nodes[ei].out[0], "Add");
        if (ai < 0 || !scalar_f32(g, other_input(&g->nodes[ai], g->nodes[ei].out[0]), &c) || c != 1.f)
            continue;
        const int m1 = sole_consumer_of_type(g, g->nodes[ai].out[0], "Mul");
        if (m1 < 0 || other_input(&g->nodes[m1], g->nodes[ai].out[0]) != x)
            continue;
        const int m2 = sole_consumer_of_type(g, g->nodes[m1].out[0], "Mul");
        if (m2 < 0 || !scalar_f32(g, other_input(&g->nodes[m2], g->nodes[m1].out[0]), &c) || c != 0.5f)
            continue;
        const int y = g->nodes[m2].out[0];
        if (g->values[x].dtype != g->values[y].dtype)
            continue;
        char *t = malloc(sizeof "Gelu");
        if (!t)
            return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory fusing GELU at '%s'", d->name);
        memcpy(t, "Gelu", sizeof "Gelu");
        free(d->op_type);
        d->op_type = t;
        d->op = gelu;
        d->n_in = 1; /* in[0] stays x */
        d->out[0] = y;
        g->values[y].producer = di;
        g->nodes[ei].dead = g->nodes[ai].dead = g->nodes[m1].dead = g->nodes[m2].dead = 1;
        fused++;
    }
    if (n_fused)
        *n_fused = fused;
    return SPRUN_OK;
}

static int is_gemm_like(const sp_node *n)
{
    return !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul");
}

int sp_pass_epilogue_act(const sp_graph *g, int pi)
{
    const sp_node *p = &g->nodes[pi];
    if (p->fusion.act != SP_ACT_NONE || p->n_out != 1)
        return p->fusion.act;
    int y = p->out[0], adds = p->fusion.residual_input >= 0;
    for (;;) { /* at most one Add (bias or residual), then the activation */
        int ci;
        if (y < 0 || g->values[y].is_output || consumers(g, y, &ci) != 1)
            return SP_ACT_NONE;
        const sp_node *c = &g->nodes[ci];
        if (!strcmp(c->op_type, "Add") && !adds && c->n_out == 1) {
            adds = 1;
            y = c->out[0];
            continue;
        }
        int act;
        float a, b;
        return c->n_in >= 1 && c->in[0] == y && activation_of(g, c, &act, &a, &b) ? act : SP_ACT_NONE;
    }
}

int sp_pass_fuse_epilogues(sp_graph *g, int *n_fused, sp_err *err)
{
    int fused = 0;
    for (int pi = 0; pi < g->n_nodes; pi++) {
        sp_node *p = &g->nodes[pi];
        if (p->dead || !p->op || !(p->op->flags & SP_OPF_FUSABLE) || !is_gemm_like(p) || p->n_out != 1)
            continue;
        for (;;) {
            int y = p->out[0], ci;
            if (y < 0 || g->values[y].is_output || consumers(g, y, &ci) != 1)
                break;
            sp_node *c = &g->nodes[ci];
            const sp_value *yv = &g->values[y];
            if (!strcmp(c->op_type, "Add") && c->n_in == 2 && p->fusion.residual_input < 0 &&
                p->fusion.act == SP_ACT_NONE) {
                int other = c->in[0] == y ? c->in[1] : c->in[0];
                if (other < 0 || other == y)
                    break;
                const sp_value *ov = &g->values[other];
                /* The fused node must not read a value produced after it:
                 * nodes are in topological order, so the residual's producer
                 * must come first (else the other branch fuses instead). */
                if (ov->producer >= pi && ov->kind != SP_VAL_CONST && ov->kind != SP_VAL_INPUT)
                    break;
                const sp_value *cv = &g->values[c->out[0]];
                if (!sp_shape_equal(&cv->shape, &yv->shape) || ov->dtype != yv->dtype)
                    break;
                int same = sp_shape_equal(&ov->shape, &yv->shape);
                /* Gemm/MatMul also take a bias along the last dim. */
                int row_bias = strcmp(p->op_type, "Conv") != 0 && ov->shape.rank == 1 && yv->shape.rank >= 1 &&
                               ov->shape.d[0] == yv->shape.d[yv->shape.rank - 1];
                if (!same && !row_bias)
                    break;
                int slot = append_input(p, other);
                if (slot < 0)
                    return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory fusing '%s'", p->name);
                p->fusion.residual_input = slot;
            } else if (p->fusion.act == SP_ACT_NONE && c->n_in >= 1 && c->in[0] == y) {
                int act;
                float a, b;
                if (!activation_of(g, c, &act, &a, &b))
                    break;
                p->fusion.act = act;
                p->fusion.alpha = a;
                p->fusion.beta = b;
            } else
                break;
            p->out[0] = c->out[0];
            g->values[c->out[0]].producer = pi;
            c->dead = 1;
            p->fusion.n_fused++;
            fused++;
        }
    }
    if (n_fused)
        *n_fused = fused;
    return SPRUN_OK;
}

void sp_pass_remove_dead(sp_graph *g)
{
    int *uses = calloc((size_t)(g->n_values > 0 ? g->n_values : 1), sizeof *uses);
    if (!uses)
        return; /* dead-node removal is an optimisation: skipping it is safe */
    for (int v = 0; v < g->n_values; v++)
        uses[v] = g->values[v].is_output ? 1 : 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const sp_node *n = &g->nodes[i];
        if (!n->dead)
            for (int k = 0; k < n->n_in; k++)
                if (n->in[k] >= 0)
                    uses[n->in[k]]++;
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        sp_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        int used = 0;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0 && uses[n->out[k]] > 0)
                used = 1;
        if (used)
            continue;
        n->dead = 1;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                uses[n->in[k]]--;
    }
    free(uses);
}

/* Sole consumer of MatMul node mi's output if it is an Add of a [n] fp32
 * constant (the bias): the Add's node index, else -1. */
static int bias_add_of(const sp_graph *g, int mi, int64_t n)
{
    const int y = g->nodes[mi].out[0], ci = sole_consumer_of_type(g, y, "Add");
    if (ci < 0 || g->nodes[ci].n_out != 1)
        return -1;
    const int b = other_input(&g->nodes[ci], y);
    if (b < 0 || b == y || !is_f32_const(g, b) || g->values[b].shape.rank != 1 || g->values[b].shape.d[0] != n)
        return -1;
    return ci;
}

/* MatMul node i reads activation x with a constant fp32 [k, n] weight and
 * nothing fused: *k and *n set. */
static int plain_weight_matmul(const sp_graph *g, int i, int x, int64_t *k, int64_t *n)
{
    const sp_node *m = &g->nodes[i];
    if (m->dead || strcmp(m->op_type, "MatMul") || m->n_in != 2 || m->n_out != 1 || m->in[0] != x ||
        m->out[0] < 0 || m->fusion.n_fused || m->fusion.residual_input >= 0 || m->fusion.act != SP_ACT_NONE)
        return 0;
    const sp_value *w = &g->values[m->in[1]];
    if (!is_f32_const(g, m->in[1]) || w->shape.rank != 2 || g->values[m->out[0]].is_output)
        return 0;
    *k = w->shape.d[0];
    *n = w->shape.d[1];
    return 1;
}

#define PAR_MAX 8

int sp_pass_fuse_parallel_matmuls(sp_graph *g, int *n_fused, sp_err *err)
{
    int groups = 0, rc = SPRUN_OK;
    const int n_nodes0 = g->n_nodes, n_values0 = g->n_values;
    /* a group per activation, found at its first MatMul */
    unsigned char *seen = calloc((size_t)(n_values0 > 0 ? n_values0 : 1), 1);
    if (!seen)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory fusing parallel MatMuls");
    for (int i0 = 0; i0 < n_nodes0; i0++) {
        const sp_node *first = &g->nodes[i0];
        if (first->dead || strcmp(first->op_type, "MatMul") || first->n_in != 2 || first->in[0] < 0)
            continue;
        const int x = first->in[0];
        if (x >= n_values0 || seen[x] || g->values[x].kind == SP_VAL_CONST)
            continue;
        seen[x] = 1;
        int mm[PAR_MAX], ad[PAR_MAX], nm = 0, nb = 0;
        int64_t K = -1, N = -1;
        for (int i = i0; i < n_nodes0 && nm < PAR_MAX; i++) {
            int64_t k, n;
            if (!plain_weight_matmul(g, i, x, &k, &n) || (K >= 0 && (k != K || n != N)))
                continue;
            K = k;
            N = n;
            ad[nm] = bias_add_of(g, i, n);
            nb += ad[nm] >= 0;
            mm[nm++] = i;
        }
        if (nm < 2)
            continue;
        /* all with a bias, or all without: members of the other kind drop out */
        const int with_bias = nb >= 2;
        int k2 = 0;
        for (int j = 0; j < nm; j++)
            if ((ad[j] >= 0) == with_bias) {
                mm[k2] = mm[j];
                ad[k2++] = ad[j];
            }
        nm = k2;
        if (nm < 2 || K <= 0 || N <= 0 || K * N * nm > ((int64_t)1 << 31))
            continue;
        const int64_t NT = N * nm;
        float *wc = malloc((size_t)(K * NT) * sizeof *wc), *bc = with_bias ? malloc((size_t)NT * sizeof *bc) : NULL;
        if (!wc || (with_bias && !bc)) {
            free(wc);
            free(bc);
            rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory fusing the MatMuls of '%s'",
                            g->values[x].name);
            goto done;
        }
        for (int j = 0; j < nm; j++) {
            const float *w = g->values[g->nodes[mm[j]].in[1]].data;
            for (int64_t r = 0; r < K; r++)
                memcpy(wc + r * NT + j * N, w + r * N, (size_t)N * sizeof *wc);
            if (with_bias)
                memcpy(bc + j * N, g->values[other_input(&g->nodes[ad[j]], g->nodes[mm[j]].out[0])].data,
                       (size_t)N * sizeof *bc);
        }
        char base[300];
        const int64_t wd[2] = {K, NT};
        sp_shape ws = sp_shape_make(2, wd), bs = sp_shape_make(1, &NT);
        snprintf(base, sizeof base, "%s_fused_W", g->nodes[mm[0]].name);
        const int wv = new_const_f32(g, base, wc, &ws, err);
        if (wv < 0) {
            free(bc);
            rc = err ? err->code : SPRUN_ERR_OUT_OF_MEMORY;
            goto done;
        }
        int bv = -1;
        if (with_bias) {
            snprintf(base, sizeof base, "%s_fused_B", g->nodes[mm[0]].name);
            if ((bv = new_const_f32(g, base, bc, &bs, err)) < 0) {
                rc = err ? err->code : SPRUN_ERR_OUT_OF_MEMORY;
                goto done;
            }
        }
        snprintf(base, sizeof base, "%s_fused", g->nodes[mm[0]].name);
        const int y = sp_graph_new_value(g, base, err);
        const int yb = with_bias ? sp_graph_new_value(g, base, err) : y;
        if (y < 0 || yb < 0) {
            rc = err ? err->code : SPRUN_ERR_OUT_OF_MEMORY;
            goto done;
        }
        /* the split's outputs: the original results (after the bias) */
        int outs[PAR_MAX];
        for (int j = 0; j < nm; j++)
            outs[j] = with_bias ? g->nodes[ad[j]].out[0] : g->nodes[mm[j]].out[0];
        sp_node *m0 = &g->nodes[mm[0]];
        m0->in[1] = wv;
        m0->out[0] = y;
        g->values[y].producer = mm[0];
        if (with_bias) {
            sp_node *a0 = &g->nodes[ad[0]];
            a0->in[0] = y;
            a0->in[1] = bv;
            a0->out[0] = yb;
            g->values[yb].producer = ad[0];
        }
        for (int j = 1; j < nm; j++) {
            g->nodes[mm[j]].dead = 1;
            if (with_bias)
                g->nodes[ad[j]].dead = 1;
        }
        snprintf(base, sizeof base, "%s_split", g->nodes[mm[0]].name);
        const int si = sp_graph_add_node(g, base, "Split", "", &yb, 1, outs, nm, err);
        if (si < 0 || sp_node_set_attr_int(&g->nodes[si], "axis", -1)) {
            rc = err && err->code ? err->code : sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory adding a Split");
            goto done;
        }
        groups++;
    }
    if (n_fused)
        *n_fused = groups;
    if (groups)
        rc = sp_graph_sort_nodes(g, err);
done:
    free(seen);
    return rc;
}
