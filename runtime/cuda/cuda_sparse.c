/* cuda_sparse.c - choosing, uploading and launching sparse layers on the GPU. */
#include "runtime/cuda/cuda_sparse.h"

#include "loaders/sparse_pack.h" /* sp_csr_overflow24 */
#include "runtime/cost_model.h"
#include "runtime/tune_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest BSR block the GPU kernels take (tensor-core fragments of 16;
 * the cost tables go up to 32). */
#define GPU_MIN_BLOCK 16
/* Format AUTO with plan-time tuning: a sparse weight predicted up to this
 * many times slower than dense at the nominal N is still uploaded, for the
 * plans to time (the model's small-N latency is the least reliable: at
 * ResNet-50 batch 1 the 2:4 3x3 convs ran 1.4-2x faster than cuDNN while it
 * predicted them slower). */
#define MEASURE_MARGIN 3.0

static int is_conv(const sp_node *n) { return !strcmp(n->op_type, "Conv"); }

/* Static reasons a node cannot run sparse on the GPU (NULL: it can). */
static const char *ineligible(const sp_graph *g, const sp_node *n)
{
    const sp_value *w = sp_node_in(g, n, 1);
    if (!w || w->kind != SP_VAL_CONST || (w->dtype != SPRUN_DTYPE_FLOAT && w->dtype != SPRUN_DTYPE_FLOAT16))
        return "weight is not a constant float tensor";
    if (is_conv(n)) {
        if (w->shape.rank != 4)
            return "only 2-D convolutions run sparse on the GPU";
        if (sp_attr_int(n, "group", 1) != 1)
            return "grouped convolution stays on cuDNN";
        return NULL;
    }
    return sp_weight_gemm_ineligible(g, n);
}

/* The dense path (cuBLASLt, cuDNN) fuses only ReLU; another activation of
 * the layer costs it a separate pass over the output, which the sparse
 * kernels' epilogue saves. Added to the dense estimate. */
static void add_unfused_act(const sp_cost_device *dev, const sp_graph *g, int node, int64_t m, int64_t n,
                            sp_cost_estimate *dense)
{
    const int act = sp_pass_epilogue_act(g, node);
    if (act != SP_ACT_NONE && act != SP_ACT_RELU)
        dense->t_total += sp_cost_unfused_epilogue_s(dev, m, n, 2);
}

static const char *fmt_label(sprun_format f)
{
    return f == SPRUN_FORMAT_CSR ? "csr" : f == SPRUN_FORMAT_BSR ? "bsr" : f == SPRUN_FORMAT_24 ? "2:4" : "dense";
}

/* 2:4 on the GPU: along ONNX's K, or for a k x k conv along its input
 * channels (the gather then produces (kh, kw, c) columns). */
static int gpu_is_24(const sp_weight_record *r) { return r->is_24 || r->is_24_c; }

/* Packs the GEMM view of node n's weight into format f and uploads it. */
static int upload_one(const sp_graph *g, const sp_node *n, const sp_weight_record *r, const sp_cost_estimate *best,
                      void *stream, sp_cuda_sparse_w *out, size_t *bytes, sp_err *err)
{
    sp_sparse_matrix sm;
    const int rsc = best->format == SPRUN_FORMAT_24 && !r->is_24 && r->is_24_c;
    int rc = sp_weight_pack(g, n, best->format, best->block, rsc, SP_VT_F16, &sm, err);
    if (rc != SPRUN_OK)
        return rc;
    sp_cuda_status st = {0};
    const int kind = sm.kind; /* sp_sparse_free below zeroes sm */
    if (sm.kind == SP_SPARSE_CSR) {
        rc = sp_cuda_csr_upload(&sm.u.csr, 1, &out->csr, stream, &st);
        /* the split path (2:4 part + overflow) where few nonzeros overflow
         * 2:4: plan-time tuning times it beside the tiled and CUDA-core
         * paths (sp_cuda_sparse_configs) */
        const double positions = (double)sm.u.csr.m * (double)sm.u.csr.k;
        if (rc == 0 && sm.u.csr.col_idx16 && positions > 0 &&
            (double)sp_csr_overflow24(&sm.u.csr) <= SP_SPLIT24_MAX_OVERFLOW * positions)
            rc = sp_cuda_csr_add_split24(&sm.u.csr, &out->csr, stream, &st);
        *bytes += out->csr.bytes;
    } else if (sm.kind == SP_SPARSE_BSR) {
        rc = sp_cuda_bsr_upload(&sm.u.bsr, &out->bsr, stream, &st);
        *bytes += out->bsr.bytes;
    } else {
        rc = sp_cuda_24_upload(&sm.u.s24, &out->s24, stream, &st);
        *bytes += out->s24.bytes;
        out->s24_rsc = rsc;
    }
    sp_sparse_free(&sm);
    if (rc != 0)
        return sp_err_set(err, rc == cudaErrorMemoryAllocation ? SPRUN_ERR_OUT_OF_MEMORY : SPRUN_ERR_BACKEND,
                          "uploading the %s weight of '%s': %s", fmt_label(best->format), n->name, st.msg);
    out->have |= 1u << kind;
    return SPRUN_OK;
}

/* Tuning: the candidates (sp_weight_candidates at the load-time nominal N)
 * other than the cost model's choice, which is already uploaded. */
static int upload_candidates(const struct sprun_model *m, const sp_weight_record *r, const sp_node *n, void *stream,
                             sp_cuda_sparse_w *out, size_t *bytes, sp_err *err)
{
    static const int kind_of[] = {[SPRUN_FORMAT_CSR] = SP_SPARSE_CSR, [SPRUN_FORMAT_BSR] = SP_SPARSE_BSR,
                                  [SPRUN_FORMAT_24] = SP_SPARSE_24};
    sp_cost_estimate cand[3];
    sp_weight_record rg = *r;
    rg.is_24 = gpu_is_24(r);
    const int nc = sp_weight_candidates(&m->cost, &rg, 4096, 2, GPU_MIN_BLOCK, cand);
    int rc = SPRUN_OK;
    for (int k = 0; k < nc && rc == SPRUN_OK; k++)
        if (!(out->have & (1u << kind_of[cand[k].format])))
            rc = upload_one(&m->graph, n, r, &cand[k], stream, out, bytes, err);
    return rc;
}

/* sp_cost_device_for_gpu for the current device; a device that cannot be
 * queried gets the derived table with no peaks of its own (the H100's) */
static void gpu_cost_table(sp_cost_device *out, char *why, size_t why_len)
{
    int dev = 0, sms = 0, clk = 0, memclk = 0, bus = 0;
    struct cudaDeviceProp prop;
    sp_cost_gpu g = {0};
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
        g.name = prop.name;
        g.cc_major = prop.major;
        g.cc_minor = prop.minor;
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess)
            g.sm_count = sms;
        if (cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev) == cudaSuccess)
            g.clock_hz = clk * 1e3;
        if (cudaDeviceGetAttribute(&memclk, cudaDevAttrMemoryClockRate, dev) == cudaSuccess)
            g.mem_clock_hz = memclk * 1e3;
        if (cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, dev) == cudaSuccess)
            g.bus_width_bits = bus;
    } else
        cudaGetLastError(); /* not sticky: clear it */
    sp_cost_device_for_gpu(&g, out, why, why_len);
}

int sp_cuda_sparse_prepare(struct sprun_model *m, int fp16, void *stream, sp_cuda_sparse_set *set, sp_err *err)
{
    memset(set, 0, sizeof *set);
    /* The built-in table for this GPU (the H100's, the H200's, or one derived
     * from its properties), under the calibration file if one was given */
    sp_cost_device table;
    char why[384];
    gpu_cost_table(&table, why, sizeof why);
    int rc0 = sp_model_set_cost(m, &table, why, err);
    if (rc0 != SPRUN_OK)
        return rc0;
    set->n = m->n_weights;
    set->w = calloc((size_t)(m->n_weights > 0 ? m->n_weights : 1), sizeof *set->w);
    if (!set->w)
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory for sparse weights");
    const sp_graph *g = &m->graph;
    sprun_format forced = m->opt.format;
    for (int i = 0; i < m->n_weights; i++) {
        sp_weight_record *r = &m->weights[i];
        const sp_node *n = &g->nodes[r->node];
        r->format = SPRUN_FORMAT_DENSE;
        const char *why = ineligible(g, n);
        if (!why && !fp16)
            why = "fp32 precision: sparse GPU kernels are fp16";
        if (!why && forced == SPRUN_FORMAT_DENSE)
            why = "forced";
        if (!why && forced == SPRUN_FORMAT_24 && !gpu_is_24(r))
            why = "weight is not 2:4 along K (nor, for a conv, along its input channels)";
        if (why) {
            snprintf(r->reason, sizeof r->reason, "dense (cuDNN/cuBLAS): %s", why);
            continue;
        }
        /* Nominal N for the load-time choice: a 14x14 map at batch 32, or 32
         * sequences of 128 tokens; each plan re-decides with its real N. */
        sp_cost_problem pr = sp_weight_problem(r, 4096, 2);
        pr.is_24 = gpu_is_24(r);
        sp_cost_estimate best, dense;
        sp_cost_estimate_format(&m->cost, &pr, SPRUN_FORMAT_DENSE, 0, &dense);
        add_unfused_act(&m->cost, g, r->node, r->m, 4096, &dense);
        /* the sparse side's patch gather of a k x k conv, at the nominal N:
         * writes N x K, reads about N x K / (kh kw) */
        double gather = 0;
        const sp_value *wv = sp_node_in(g, n, 1);
        if (is_conv(n) && wv->shape.rank == 4 && wv->shape.d[2] * wv->shape.d[3] > 1) {
            const double col = 2.0 * 4096 * (double)r->k;
            gather = sp_cost_memory_pass_s(&m->cost, col + col / (double)(wv->shape.d[2] * wv->shape.d[3]));
        }
        if (!sp_cost_best_sparse(&m->cost, &pr,
                                 forced == SPRUN_FORMAT_AUTO ? (1u << SPRUN_FORMAT_CSR) | (1u << SPRUN_FORMAT_BSR) |
                                                                   (1u << SPRUN_FORMAT_24)
                                                             : 1u << forced,
                                 GPU_MIN_BLOCK, &best)) {
            snprintf(r->reason, sizeof r->reason, "dense: no GPU sparse format fits");
            continue;
        }
        best.t_total += gather;
        const int tuning = m->tune && forced == SPRUN_FORMAT_AUTO;
        /* where plans time sparse against dense (format AUTO, plan-time
         * tuning on), a candidate the model does not rule out by far is
         * uploaded and each plan measures it */
        const int measured = forced == SPRUN_FORMAT_AUTO && !tuning && sp_cuda_plan_tuning() &&
                             best.t_total < MEASURE_MARGIN * dense.t_total;
        if (forced == SPRUN_FORMAT_AUTO && best.t_total >= dense.t_total && !tuning && !measured) {
            snprintf(r->reason, sizeof r->reason,
                     "dense: predicted %.1f us vs best sparse (%s) %.1f us at N=4096, density %.2f",
                     dense.t_total * 1e6, fmt_label(best.format), best.t_total * 1e6, r->density);
            continue;
        }
        int rc = upload_one(g, n, r, &best, stream, &set->w[i], &set->device_bytes, err);
        if (rc == SPRUN_OK && tuning) /* every candidate, to be timed when a plan needs the layer */
            rc = upload_candidates(m, r, n, stream, &set->w[i], &set->device_bytes, err);
        if (rc != SPRUN_OK)
            return rc;
        set->w[i].kind = best.format == SPRUN_FORMAT_CSR   ? SP_SPARSE_CSR
                         : best.format == SPRUN_FORMAT_BSR ? SP_SPARSE_BSR
                                                           : SP_SPARSE_24;
        r->format = best.format;
        snprintf(r->reason, sizeof r->reason, "%s%.0d: predicted %.1f us vs dense %.1f us at N=4096%s",
                 fmt_label(best.format), best.block, best.t_total * 1e6, dense.t_total * 1e6,
                 forced != SPRUN_FORMAT_AUTO ? " (forced)"
                 : tuning                    ? " (each plan times the candidates)"
                                             : " (each plan times it against dense)");
    }
    return SPRUN_OK;
}

void sp_cuda_sparse_release(sp_cuda_sparse_set *set)
{
    if (!set->w)
        return;
    for (int i = 0; i < set->n; i++) { /* each free accepts a zeroed struct */
        sp_cuda_csr_free(&set->w[i].csr);
        sp_cuda_bsr_free(&set->w[i].bsr);
        sp_cuda_24_free(&set->w[i].s24);
    }
    free(set->w);
    memset(set, 0, sizeof *set);
}

/* Conv geometry from the node's attributes (2-D, explicit or auto pads). */
static int conv_geometry(const sp_node *n, const sp_shape *x, const sp_shape *wsh, const sp_shape *y,
                         sp_cuda_sparse_layer *L)
{
    const int64_t *v;
    L->batch = x->d[0];
    L->c = x->d[1];
    L->h = x->d[2];
    L->wd = x->d[3];
    L->kh = wsh->d[2];
    L->kw = wsh->d[3];
    L->oh = y->d[2];
    L->ow = y->d[3];
    L->sh = L->sw = L->dh = L->dw = 1;
    if (sp_attr_ints(n, "strides", &v) == 2) {
        L->sh = v[0];
        L->sw = v[1];
    }
    if (sp_attr_ints(n, "dilations", &v) == 2) {
        L->dh = v[0];
        L->dw = v[1];
    }
    const char *ap = sp_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET")) {
        L->ph = L->pw = 0;
        if (sp_attr_ints(n, "pads", &v) == 4) {
            if (v[0] != v[2] || v[1] != v[3])
                return 0; /* asymmetric pads: leave to cuDNN */
            L->ph = v[0];
            L->pw = v[1];
        }
    } else if (!strcmp(ap, "VALID"))
        L->ph = L->pw = 0;
    else {
        int64_t th = ((L->oh - 1) * L->sh + (L->kh - 1) * L->dh + 1 - L->h);
        int64_t tw = ((L->ow - 1) * L->sw + (L->kw - 1) * L->dw + 1 - L->wd);
        th = th > 0 ? th : 0;
        tw = tw > 0 ? tw : 0;
        if (th % 2 || tw % 2)
            return 0; /* asymmetric SAME padding: leave to cuDNN */
        L->ph = th / 2;
        L->pw = tw / 2;
    }
    return 1;
}

static const char *const kind_label[4] = {"dense", "csr", "bsr", "2:4"};

int sp_cuda_plan_tuning(void)
{
    const char *env = getenv("SPRUN_CUDA_TUNE");
    return !(env && !strcmp(env, "0"));
}

/* ST_SPMM passes the node's fused activation straight to the kernels */
_Static_assert((int)SP_CUDA_ACT_NONE == (int)SP_ACT_NONE &&
                   (int)SP_CUDA_ACT_RELU == (int)SP_ACT_RELU &&
                   (int)SP_CUDA_ACT_CLIP == (int)SP_ACT_CLIP &&
                   (int)SP_CUDA_ACT_SIGMOID == (int)SP_ACT_SIGMOID &&
                   (int)SP_CUDA_ACT_GELU == (int)SP_ACT_GELU &&
                   (int)SP_CUDA_ACT_TANH == (int)SP_ACT_TANH &&
                   (int)SP_CUDA_ACT_HARDSWISH == (int)SP_ACT_HARDSWISH &&
                   (int)SP_CUDA_ACT_HARDSIGMOID == (int)SP_ACT_HARDSIGMOID &&
                   (int)SP_CUDA_ACT_LEAKYRELU == (int)SP_ACT_LEAKYRELU,
               "SP_CUDA_ACT_* must equal the IR's SP_ACT_*");

/* Tuning (m->tune): the cached choice for this layer's device, shape and
 * sparsity, else every uploaded candidate measured now against the dense
 * GEMM and the fastest recorded. Returns the SP_SPARSE_* kind to run
 * (SP_SPARSE_DENSE: the dense path), or -1 when it could not measure. */
static int tuned_kind(const struct sprun_model *m, const sp_weight_record *r, const sp_cuda_sparse_layer *L,
                      sp_step_info *info)
{
    int dev = 0;
    struct cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess)
        return -1;
    char key[384], choice[16];
    snprintf(key, sizeof key, "cuda-%s M=%lld K=%lld N=%lld nnz=%lld 2:4=%d zb16=%.3f conv=%lldx%lld/%lld", prop.name,
             (long long)r->m, (long long)r->k, (long long)L->n, (long long)r->nnz, gpu_is_24(r), r->zero_block_frac[2],
             (long long)L->kh, (long long)L->kw, (long long)L->sh);
    int pick = -1;
    if (sp_tune_cache_get(m->tune, key, choice, sizeof choice)) {
        for (int k = 0; k < 4; k++)
            if (!strcmp(choice, kind_label[k]) && (k == SP_SPARSE_DENSE || (L->w->have & (1u << k))))
                pick = k;
        if (pick < 0)
            return -1; /* a choice this load cannot run */
        if (pick != SP_SPARSE_DENSE)
            info->kernel = kind_label[pick];
        return pick;
    }
    double us[4];
    if (sp_cuda_sparse_time(L, us) != 0 || us[0] <= 0)
        return -1;
    char note[160];
    int used = snprintf(note, sizeof note, "dense=%.1fus", us[0]);
    pick = SP_SPARSE_DENSE;
    for (int k = 1; k < 4; k++) {
        if (us[k] <= 0)
            continue;
        if (used > 0 && (size_t)used < sizeof note)
            used += snprintf(note + used, sizeof note - (size_t)used, " %s=%.1fus", kind_label[k], us[k]);
        if (us[k] < us[pick])
            pick = k;
    }
    sp_tune_cache_put(m->tune, key, kind_label[pick], note);
    if (pick != SP_SPARSE_DENSE)
        info->kernel = kind_label[pick];
    info->predicted_us = us[pick];
    return pick;
}

int sp_cuda_sparse_select(const struct sprun_model *m, const sp_cuda_sparse_set *set, const sp_plan *p, int ni,
                          sp_cuda_sparse_layer *L, sp_step_info *info)
{
    memset(L, 0, sizeof *L);
    for (int i = 0; i < m->n_weights; i++) {
        const sp_weight_record *r = &m->weights[i];
        if (r->node != ni)
            continue;
        const sp_node *n = &p->g.nodes[ni];
        const sp_value *x = sp_node_in(&p->g, n, 0), *y = sp_node_out(&p->g, n, 0);
        const sp_value *w = sp_node_in(&p->g, n, 1);
        info->weight = i;
        info->m = r->m;
        info->k = r->k;
        info->kernel = is_conv(n) ? "cudnn" : "cublas";
        if (!x || !y || !w)
            return 0;
        int64_t rows;
        if (is_conv(n)) {
            if (x->shape.rank != 4 || y->shape.rank != 4)
                return 0;
            rows = y->shape.d[0] * y->shape.d[2] * y->shape.d[3];
        } else {
            if (x->shape.rank < 2 || x->shape.d[x->shape.rank - 1] != r->k)
                return 0;
            rows = sp_shape_numel(&x->shape) / r->k;
        }
        info->n = rows;
        sp_cost_problem pr = sp_weight_problem(r, rows, 2);
        pr.is_24 = gpu_is_24(r);
        sp_cost_estimate dense, sp;
        sp_cost_estimate_format(&m->cost, &pr, SPRUN_FORMAT_DENSE, 0, &dense);
        add_unfused_act(&m->cost, &p->g, ni, r->m, rows, &dense);
        info->predicted_us = dense.t_total * 1e6;
        const sp_cuda_sparse_w *sw = &set->w[i];
        if (sw->kind == SP_SPARSE_DENSE)
            return 0;
        L->w = sw;
        L->kind = sw->kind;
        L->n = rows;
        L->m = r->m;
        L->k = r->k;
        if (is_conv(n)) {
            if (!conv_geometry(n, &x->shape, &w->shape, &y->shape, L))
                return 0;
            L->im2col = !(L->kh == 1 && L->kw == 1 && L->sh == 1 && L->sw == 1 && L->ph == 0 && L->pw == 0);
            if (L->im2col)
                L->col_bytes = (size_t)(rows * r->k) * 2;
            /* A 2:4 k x k or strided conv runs as an implicit GEMM (no patch
             * matrix; sp_cuda_24_conv_implicit) where the weight's K is in
             * (kh, kw, c) order and C % 64 == 0. Measured on the H100 against
             * the patch matrix + SpMM, ResNet-50's 3x3 convs at batch 32:
             * 25-41 us vs 28-125 us (bench/results/sparse-models-h100-*).
             * SPRUN_SPARSE_CONV=explicit forces the patch matrix,
             * =implicit-copies the producer warps' gather (for comparison). */
            const char *mode = getenv("SPRUN_SPARSE_CONV");
            L->implicit = L->im2col && !(mode && !strcmp(mode, "explicit")) && (sw->have & (1u << SP_SPARSE_24)) &&
                          L->c % 64 == 0 && (sw->s24_rsc || L->kh * L->kw == 1) && L->dh > 0 && L->dw > 0;
            if (L->implicit && mode && !strcmp(mode, "implicit-copies"))
                L->implicit = 2;
            L->implicit = L->implicit && sp_cuda_24_conv_implicit_ok() ? L->implicit : 0;
        }
        /* with a CSR weight, room for the X transpose of its CUDA-core path */
        L->ws_bytes = (sw->have & (1u << SP_SPARSE_CSR)) ? sp_cuda_csr_workspace_bytes(L->m, L->k, L->n)
                                                          : sp_cuda_spmm_workspace_bytes(L->m, L->n);
        if (m->tune && m->opt.format == SPRUN_FORMAT_AUTO) {
            const char *dense_label = info->kernel;
            const double dense_pred = info->predicted_us;
            const int kind = tuned_kind(m, r, L, info);
            if (kind == SP_SPARSE_DENSE)
                return 0;
            if (kind > 0) {
                /* the tune file picked the format, against a GEMM; the plan
                 * still times it against the dense lowering it would
                 * replace (cuDNN or GEMM, whichever the plan keeps) */
                L->kind = kind;
                L->cost_sparse = 1;
                L->dense_kernel = dense_label;
                L->dense_pred_us = dense_pred;
                L->measure = sp_cuda_plan_tuning();
                return 1;
            }
            /* kind < 0: could not measure; the cost model decides */
        }
        int blk = sw->kind == SP_SPARSE_BSR ? sw->bsr.bs : 0;
        if (!sp_cost_estimate_format(&m->cost, &pr, r->format, blk, &sp))
            return 0;
        /* a k x k (or strided) conv gathers its patches first: read the
         * input, write the patch matrix (the dense path's cuDNN does not) */
        if (L->im2col && !(L->implicit && sw->kind == SP_SPARSE_24))
            sp.t_total += sp_cost_memory_pass_s(&m->cost, 2.0 * (double)(L->batch * L->h * L->wd * L->c) +
                                                              (double)L->col_bytes);
        L->cost_sparse = sp.t_total < dense.t_total;
        L->dense_kernel = info->kernel;
        L->dense_pred_us = info->predicted_us;
        L->measure = m->opt.format == SPRUN_FORMAT_AUTO && !m->tune && sp_cuda_plan_tuning();
        if (m->opt.format == SPRUN_FORMAT_AUTO && !L->cost_sparse && !L->measure)
            return 0;
        info->kernel = kind_label[sw->kind];
        info->predicted_us = sp.t_total * 1e6;
        return 1;
    }
    return 0;
}

int sp_cuda_sparse_gather(const sp_cuda_sparse_layer *L, int kind, const void *x, void *col, void *stream)
{
    const int rsc = kind == SP_SPARSE_24 && L->w && L->w->s24_rsc;
    return sp_cuda_im2col_nhwc(x, col, L->batch, L->h, L->wd, L->c, L->kh, L->kw, L->sh, L->sw, L->ph, L->pw, L->dh,
                               L->dw, L->oh, L->ow, rsc, stream);
}

int sp_cuda_sparse_product(const sp_cuda_sparse_layer *L, int kind, const void *x, void *col, sp_cuda_spmm_args *a,
                           sp_cuda_status *st)
{
    a->n = L->n;
    a->x = x;
    a->ldx = L->k;
    if (L->im2col && L->implicit && kind == SP_SPARSE_24) {
        const sp_cuda_conv_geom g = {L->batch, L->h,  L->wd, L->c,  L->oh, L->ow,
                                     L->kh,    L->kw, L->sh, L->sw, L->ph, L->pw,
                                     L->dh,    L->dw, L->implicit == 2 ? SP_CUDA_GATHER_COPIES : SP_CUDA_GATHER_AUTO};
        return sp_cuda_24_conv_implicit(&L->w->s24, &g, a, st);
    }
    if (L->im2col) {
        int e = sp_cuda_sparse_gather(L, kind, x, col, a->stream);
        if (e != 0)
            return SP_CUDA_FAIL(st, e, "im2col launch failed");
        a->x = col;
    }
    switch (kind) {
    case SP_SPARSE_CSR: /* config: 0 the kernel's own choice, else the path tuning picked */
        return sp_cuda_csr_spmm(&L->w->csr, a,
                                a->config == 1   ? SP_CUDA_CSR_TC
                                : a->config == 2 ? SP_CUDA_CSR_SIMT
                                : a->config == 3 ? SP_CUDA_CSR_SPLIT24
                                                 : SP_CUDA_CSR_AUTO,
                                st);
    case SP_SPARSE_BSR: /* config: 0 the kernels' own choice, else the one tuning picked */
        return sp_cuda_bsr_spmm_path(&L->w->bsr, a,
                                     a->config == 1   ? SP_CUDA_BSR_MMA
                                     : a->config == 2 ? SP_CUDA_BSR_WGMMA
                                                      : SP_CUDA_BSR_AUTO,
                                     st);
    case SP_SPARSE_24: return sp_cuda_24_spmm(&L->w->s24, a, st);
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "no sparse weight of that format");
    }
}

const char *sp_cuda_sparse_label(const sp_cuda_sparse_layer *L)
{
    static const char *const c24[] = {"2:4",     "2:4/c1",  "2:4/c2",  "2:4/c3",  "2:4/c4",  "2:4/c5",
                                      "2:4/c6",  "2:4/c7",  "2:4/c8",  "2:4/c9",  "2:4/c10", "2:4/c11",
                                      "2:4/c12", "2:4/c13", "2:4/c14", "2:4/c15", "2:4/c16", "2:4/c17",
                                      "2:4/p18", "2:4/p19"};
    _Static_assert(sizeof c24 / sizeof c24[0] == SP_CUDA_24_TILE_HINTS + 1, "a label per 2:4 configuration");
    if (L->kind == SP_SPARSE_24 && L->config > 0 && L->config < (int)(sizeof c24 / sizeof c24[0]))
        return c24[L->config];
    if (L->kind == SP_SPARSE_CSR && L->config >= 1 && L->config <= 3)
        return L->config == 1 ? "csr/tc" : L->config == 2 ? "csr/simt" : "csr/2:4+ovf";
    if (L->kind == SP_SPARSE_BSR && (L->config == 1 || L->config == 2))
        return L->config == 1 ? "bsr/mma" : "bsr/wgmma";
    return L->kind >= 0 && L->kind < (int)(sizeof kind_label / sizeof kind_label[0]) ? kind_label[L->kind] : "sparse";
}

int sp_cuda_sparse_configs(const sp_cuda_sparse_layer *L, int *cfg, int max)
{
    if (max < 1)
        return 0;
    if (L->kind == SP_SPARSE_24) {
        int n = sp_cuda_24_tune_configs(cfg, max), kept = 0;
        /* the persistent configurations take X tiles: an implicit-GEMM
         * convolution would run the rule's kernel under their label */
        for (int i = 0; i < n; i++)
            if (!(L->implicit && cfg[i] >= SP_CUDA_24_PT_FIRST))
                cfg[kept++] = cfg[i];
        return kept;
    }
    /* the CSR split path (3: 2:4 part + overflow, spmm_csr_split24.cu),
     * with both others, where the upload built it */
    if (L->kind == SP_SPARSE_CSR && L->w->csr.split24 && L->w->csr.tiles && L->w->csr.col16 && max >= 3) {
        cfg[0] = 1;
        cfg[1] = 2;
        cfg[2] = 3;
        return 3;
    }
    /* both CSR paths: the tiled tensor-core one (1) and the CUDA-core one
     * (2), which wins on very sparse rows at small N; or both BSR kernels:
     * mma.sync (1) and, where the upload built its layout, the sm_90 wgmma
     * one (2), their crossover depending on M, N and the block density */
    const int two_paths = (L->kind == SP_SPARSE_CSR && L->w->csr.tiles && L->w->csr.col16) ||
                          (L->kind == SP_SPARSE_BSR && L->w->bsr.wg.blocks);
    if (two_paths && max >= 2) {
        cfg[0] = 1;
        cfg[1] = 2;
        return 2;
    }
    cfg[0] = 0;
    return 1;
}

int sp_cuda_sparse_launch(const sp_cuda_sparse_layer *L, const sp_node *n, const void *x, void *y, const void *bias,
                          const void *residual, int act, void *col, void *ws, size_t ws_bytes, void *stream,
                          sp_err *err)
{
    sp_cuda_spmm_args a = {.y = y, .ldy = L->m, .bias = bias, .residual = residual, .ldr = L->m, .act = act,
                           .alpha = n->fusion.alpha, .beta = n->fusion.beta, .workspace = ws,
                           .workspace_bytes = ws ? ws_bytes : 0, .stream = stream, .config = L->config};
    sp_cuda_status st = {0};
    if (sp_cuda_sparse_product(L, L->kind, x, col, &a, &st) != 0)
        return sp_err_set(err, SPRUN_ERR_BACKEND, "node '%s': sparse layer failed: %s", n->name, st.msg);
    return SPRUN_OK;
}
