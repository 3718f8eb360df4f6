/*
 * tune_plan.c - the CUDA backend's plan-time tuning (cu_tune_plan, see
 * cu_plan.h): every choice the plan leaves open is timed on the plan's own
 * arena (on whatever it holds: GEMM and convolution speed does not depend
 * on the contents), in this order:
 *  1. each GEMM's cuBLASLt algorithm among the heuristic's candidates;
 *  2. each conv's cuDNN algorithm among cuDNN's own shortlist;
 *  3. each sparse layer's launch configuration (the sm_90 2:4 kernel's
 *     tile shapes, sp_cuda_sparse_configs);
 *  4. per node, a conv as a GEMM or through cuDNN, then the dense winner
 *     against the sparse layer: each layer alone, the close calls again in
 *     a window of the plan (time_in_place), then the plan as a whole
 *     (check_whole_plan).
 * Decisions are remembered per process (tune_memo.h), keyed by device,
 * node, shapes and sparse format, so a later plan of the same model runs
 * the same kernels without timing them again. With tuning off
 * (SPRUN_CUDA_TUNE=0) the cost model decides the variants
 * (untuned_choice).
 */
#include "runtime/cuda/cu_plan.h"

#include "runtime/cuda/tune_memo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Launches steps idx[0..n) `reps` times; 0 on success */
static int launch_reps(const cu_plan *cp, cu_session *cs, const sp_plan *p, const int *idx, int n, int reps,
                       cudaStream_t sm)
{
    sp_err e = {0};
    for (int it = 0; it < reps; it++)
        for (int k = 0; k < n; k++)
            if (cu_launch_step(cp, cs, p, &cp->st[idx[k]], sm, &e) != SPRUN_OK)
                return -1;
    return 0;
}

/* Captures `launches` launches of steps idx[0..n) (n < 0: the whole plan as
 * it stands, cu_launch_all) into a graph exec; NULL when capture fails */
static cudaGraphExec_t capture_steps(const cu_plan *cp, cu_session *cs, const sp_plan *p, const int *idx, int n,
                                     int launches, cudaStream_t sm)
{
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    if (n == 0 || cudaStreamBeginCapture(sm, cudaStreamCaptureModeThreadLocal) != cudaSuccess)
        return NULL;
    int lr = 0;
    sp_err err = {0};
    for (int r = 0; r < launches && !lr; r++)
        lr = n < 0 ? cu_launch_all(cp, cs, p, sm, 0, &err) != SPRUN_OK : launch_reps(cp, cs, p, idx, n, 1, sm);
    const cudaError_t e = cudaStreamEndCapture(sm, &graph);
    if (lr || e != cudaSuccess || !graph || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
        exec = NULL;
    if (graph)
        cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return exec;
}

/* Device time (ms) of one launch of steps idx[0..n): the fastest of 3
 * replays of a CUDA graph holding 5 launches, after one warm-up replay (a
 * single round was noisy enough to pick variants several times slower).
 * Timed as a graph, the way the plan runs: launched one by one from the
 * host, cuDNN's and cuBLASLt's host overhead (tens of us a call) kept the
 * GPU waiting, and the events measured the host (H100: a 20 us conv timed
 * at 60-85 us, and the plan kept a 86 us variant). Where capture fails, the
 * launches are timed directly. Negative when a launch fails (that variant
 * is then never chosen). */
static float time_steps(const cu_plan *cp, cu_session *cs, const sp_plan *p, const int *idx, int n, cudaStream_t sm,
                        cudaEvent_t *ev)
{
    float best = -1.f;
    cudaGraphExec_t exec = capture_steps(cp, cs, p, idx, n, 5, sm);
    for (int round = 0; round < 4; round++) { /* round 0 warms up */
        cudaEventRecord(ev[0], sm);
        int rc;
        if (exec)
            rc = cudaGraphLaunch(exec, sm) == cudaSuccess ? 0 : -1;
        else
            rc = launch_reps(cp, cs, p, idx, n, round ? 5 : 3, sm);
        cudaEventRecord(ev[1], sm);
        float ms = -1.f;
        if (rc || cudaEventSynchronize(ev[1]) != cudaSuccess || cudaEventElapsedTime(&ms, ev[0], ev[1]) != cudaSuccess) {
            cudaStreamSynchronize(sm);
            (void)cudaGetLastError();
            best = -1.f;
            break;
        }
        if (round && (best < 0.f || ms / 5 < best))
            best = ms / 5;
    }
    if (exec)
        cudaGraphExecDestroy(exec);
    return best;
}

int cu_tune_key(const sp_plan *p, const cu_step *st, const char *what, char *buf, size_t len)
{
    int dev = 0;
    if (st->ord < 0 || cudaGetDevice(&dev) != cudaSuccess)
        return 0;
    const sp_node *n = ord_node(p, st->ord);
    int used = snprintf(buf, len, "dev%d|%s|%s|%s|dt%d", dev, n->op_type, n->name, what, st->dtype);
    for (int k = 0; k < n->n_in + n->n_out && used > 0 && (size_t)used < len; k++) {
        int v = k < n->n_in ? n->in[k] : n->out[k - n->n_in];
        used += snprintf(buf + used, len - (size_t)used, "|");
        if (v < 0)
            continue;
        const sp_shape *sh = &p->g.values[v].shape;
        for (int d = 0; d < sh->rank && (size_t)used < len; d++)
            used += snprintf(buf + used, len - (size_t)used, "%lldx", (long long)sh->d[d]);
    }
    return used > 0 && (size_t)used < len;
}

/* The memo's "what" for a decision about sparse step sp ("sparse": dense
 * or sparse; "config": the launch configuration): the format it runs, the
 * formats uploaded and the nonzeros stored in each, so that two models of
 * one architecture pruned differently (same node names and shapes) in one
 * process do not share decisions */
static void sparse_what(const cu_step *sp, const char *what, char *buf, size_t len)
{
    const sp_cuda_sparse_w *w = sp ? sp->sl.w : NULL;
    const unsigned have = w ? w->have : 0;
    snprintf(buf, len, "%s/f%d/csr%lld/bsr%dx%lld/24%s", what, sp ? sp->sl.kind : -1,
             have & (1u << SP_SPARSE_CSR) ? (long long)w->csr.nnz : -1LL,
             have & (1u << SP_SPARSE_BSR) ? (int)w->bsr.bs : 0,
             have & (1u << SP_SPARSE_BSR) ? (long long)w->bsr.nblocks : -1LL,
             !(have & (1u << SP_SPARSE_24)) ? "-" : w->s24_rsc ? "rsc" : "k");
}

/* Index of the smallest non-negative time of t[0..n) (a negative one is a
 * candidate that failed), -1 when there is none */
static int fastest(const float *t, int n)
{
    int best = -1;
    for (int c = 0; c < n; c++)
        if (t[c] >= 0.f && (best < 0 || t[c] < t[best]))
            best = c;
    return best;
}

/* The first step of alternative group g that is its sparse variant (3)
 * when sparse is set, else the first of its dense ones; -1 if none */
static int group_step(const cu_plan *cp, int g, int sparse)
{
    for (int i = 0; i < cp->n_st; i++)
        if (cp->st[i].alt == g && (cp->st[i].var == 3) == (sparse != 0))
            return i;
    return -1;
}

/* The sparse step of alternative group g, NULL if none */
static const cu_step *group_sparse_step(const cu_plan *cp, int g)
{
    const int i = group_step(cp, g, 1);
    return i < 0 ? NULL : &cp->st[i];
}

/* Warms the GPU up before variants are timed: from idle its clocks take
 * milliseconds to rise, and a variant timed meanwhile looked several times
 * slower than it is (H100, ResNet-50 batch 32: a 3x3 conv kept at 304 us
 * where its twin layer ran 27 us). Whole-plan launches, both variants of
 * every alternative, until 25 ms of GPU time. */
static void warm_up(const cu_plan *cp, cu_session *cs, const sp_plan *p, cudaStream_t sm, cudaEvent_t *ev)
{
    sp_err e = {0};
    float total = 0.f, ms = 0.f;
    for (int it = 0; it < 50 && total < 25.f; it++) {
        cudaEventRecord(ev[0], sm);
        if (cu_launch_all(cp, cs, p, sm, 0, &e) != SPRUN_OK)
            break;
        cudaEventRecord(ev[1], sm);
        if (cudaEventSynchronize(ev[1]) != cudaSuccess || cudaEventElapsedTime(&ms, ev[0], ev[1]) != cudaSuccess)
            break;
        total += ms;
    }
    cudaStreamSynchronize(sm);
    (void)cudaGetLastError();
}

/* SPRUN_CUDA_DEBUG: one line per tuning decision (node, what was timed,
 * each candidate's time in us, the pick; "memo" when remembered from an
 * earlier plan of the process) */
static void trace_decision(const sp_plan *p, const cu_step *st, const char *what, const float *ms, int n, int pick)
{
    static int on = -1;
    if (on < 0)
        on = getenv("SPRUN_CUDA_DEBUG") != NULL;
    if (!on || (st && st->ord < 0))
        return;
    fprintf(stderr, "sprun cuda tune: %s %s:", st ? ord_node(p, st->ord)->name : "(whole plan)", what);
    for (int c = 0; ms && c < n; c++)
        fprintf(stderr, " %.1f", ms[c] * 1e3);
    fprintf(stderr, "%s -> %d\n", ms ? "" : " memo", pick);
}

/* The node's step info names the kernel that runs: the dense kernel where
 * the sparse alternative lost, its own where it won (restored when a later
 * round of tuning reverses a dense decision) */
static void info_choice(const sp_plan *p, cu_step *sparse, int sparse_wins)
{
    if (sparse->ord < 0)
        return;
    sp_step_info *info = &((sp_plan *)p)->step[sparse->ord];
    if (!sparse->sparse_info_kept) {
        sparse->sparse_kernel = info->kernel;
        sparse->sparse_pred_us = info->predicted_us;
        sparse->sparse_info_kept = 1;
    }
    info->kernel = sparse_wins ? sparse->sparse_kernel : sparse->sl.dense_kernel;
    info->predicted_us = sparse_wins ? sparse->sparse_pred_us : sparse->sl.dense_pred_us;
}

/* Once the alternatives are decided: a dense conv that runs as a GEMM
 * (im2col where needed, then cuBLAS; variant 1) rather than through cuDNN
 * is named so in its step info (a sparse label is left alone), and a
 * MatMul that runs as the dense sm_90 GEMM "gemm90" */
static void info_conv_gemm(cu_plan *cp, const sp_plan *p)
{
    for (int i = 0; i < cp->n_st; i++) {
        const cu_step *st = &cp->st[i];
        if (st->skip || st->ord < 0)
            continue;
        sp_step_info *info = &((sp_plan *)p)->step[st->ord];
        if (st->kind == ST_GEMM90)
            info->kernel = "gemm90";
        else if (st->var == 1 && info->kernel && !strcmp(info->kernel, "cudnn"))
            info->kernel = "gemm";
    }
}

/* Alternatives decided without timing: convs as GEMMs where they can be,
 * sparse layers where the cost model predicts them faster. */
static void untuned_choice(cu_plan *cp, const sp_plan *p)
{
    for (int i = 0; i < cp->n_st; i++)
        cp->st[i].skip = cp->st[i].var == 2;
    for (int i = 0; i < cp->n_st; i++) {
        cu_step *sp = &cp->st[i];
        if (sp->var != 3)
            continue;
        int dense_var = 2;
        for (int j = 0; j < cp->n_st; j++)
            if (cp->st[j].alt == sp->alt && cp->st[j].var == 1)
                dense_var = 1;
        for (int j = 0; j < cp->n_st; j++)
            if (cp->st[j].alt == sp->alt)
                cp->st[j].skip = cp->st[j].var != (sp->sl.cost_sparse ? 3 : dense_var);
        if (!sp->sl.cost_sparse)
            info_choice(p, sp, 0);
    }
    info_conv_gemm(cp, p);
}

/* Device time (ms) of variant v of alternative group g (its steps in
 * order; idx is scratch for n_st indices), negative when it has none or a
 * launch failed */
static float time_variant(const cu_plan *cp, cu_session *cs, const sp_plan *p, int g, int v, int *idx,
                          cudaStream_t sm, cudaEvent_t *ev)
{
    int n = 0;
    for (int i = 0; i < cp->n_st; i++)
        if (cp->st[i].alt == g && cp->st[i].var == v)
            idx[n++] = i;
    return n ? time_steps(cp, cs, p, idx, n, sm, ev) : -1.f;
}

/* The dense-vs-sparse decisions that are timed a second time in the plan's
 * context (time_in_place): those where sparse alone was faster than dense,
 * or slower by less than 10 %. The window: 6 running steps before the
 * layer, 2 after; 3 launches per graph, median of 9 replays of each (the
 * whole-plan check, check_whole_plan, replays each plan 9 times too). */
#define IN_PLACE_BAND 1.10f
enum { IN_PLACE_BEFORE = 6, IN_PLACE_AFTER = 2, IN_PLACE_LAUNCHES = 3, IN_PLACE_ROUNDS = 9 };

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Dense (dense_var) or sparse (variant 3) for alternative group g: the
 * other variants' steps are skipped; a dense winner's step info names it. */
static void choose_sparse(cu_plan *cp, const sp_plan *p, int g, int dense_var, int sparse_wins)
{
    for (int i = 0; i < cp->n_st; i++) {
        cu_step *st = &cp->st[i];
        if (st->alt != g)
            continue;
        st->skip = st->var != (sparse_wins ? 3 : dense_var);
        if (st->var == 3)
            info_choice(p, st, sparse_wins);
    }
}

/* Steps of a window around group g, in plan order, for time_in_place:
 * IN_PLACE_BEFORE running steps before the group (they produce its input
 * and leave in L2 what the plan leaves there), the group's variant v, and
 * IN_PLACE_AFTER running steps after it (the consumer reads its output).
 * Every other step as currently chosen. Returns the count in idx. */
static int window_steps(const cu_plan *cp, int g, int v, int *idx)
{
    int lo = -1, hi = -1;
    for (int i = 0; i < cp->n_st; i++)
        if (cp->st[i].alt == g) {
            if (lo < 0)
                lo = i;
            hi = i;
        }
    if (lo < 0)
        return 0;
    int start = lo, end = hi;
    for (int k = 0; k < IN_PLACE_BEFORE && start > 0;)
        if (!cp->st[--start].skip && cp->st[start].alt != g)
            k++;
    for (int k = 0; k < IN_PLACE_AFTER && end + 1 < cp->n_st;)
        if (!cp->st[++end].skip && cp->st[end].alt != g)
            k++;
    int n = 0;
    for (int i = start; i <= end; i++) {
        const cu_step *st = &cp->st[i];
        if (st->alt == g ? st->var == v : !st->skip)
            idx[n++] = i;
    }
    return n;
}

/* Device time (ms, into t[0..n)) of one launch of each of n graph execs
 * holding `launches` launches each: replayed in turn, the order rotating
 * each round so that none always follows another, after a warm-up round;
 * the median of IN_PLACE_ROUNDS replays of each. 0, or -1 when a replay
 * failed. */
static int time_graphs(cudaGraphExec_t *exec, int n, int launches, cudaStream_t sm, cudaEvent_t *ev, float *t)
{
    float ms[3][IN_PLACE_ROUNDS];
    int rc = n < 1 || n > 3 ? -1 : 0;
    for (int r = -1; r < IN_PLACE_ROUNDS && !rc; r++) /* round -1 warms every one up */
        for (int k = 0; k < n && !rc; k++) {
            const int w = (k + (r < 0 ? 0 : r)) % n;
            float e = 0.f;
            rc = cudaEventRecord(ev[0], sm) != cudaSuccess || cudaGraphLaunch(exec[w], sm) != cudaSuccess ||
                         cudaEventRecord(ev[1], sm) != cudaSuccess || cudaEventSynchronize(ev[1]) != cudaSuccess ||
                         cudaEventElapsedTime(&e, ev[0], ev[1]) != cudaSuccess
                     ? -1
                     : 0;
            if (r >= 0)
                ms[w][r] = e / launches;
        }
    if (rc) {
        cudaStreamSynchronize(sm);
        (void)cudaGetLastError();
        return -1;
    }
    for (int w = 0; w < n; w++) {
        qsort(ms[w], IN_PLACE_ROUNDS, sizeof ms[w][0], cmp_float);
        t[w] = ms[w][IN_PLACE_ROUNDS / 2];
    }
    return 0;
}

/* Device time (ms, into t[0] dense and t[1] sparse) of the window of steps
 * around group g (window_steps) with its dense variant and with its sparse
 * one, each captured as IN_PLACE_LAUNCHES launches (time_graphs). Alone on
 * a warm L2 (time_steps), a layer reads its input and weights from L2; in
 * the plan its weights come from memory and its input from the layer
 * before. On the H100 seven of ResNet-50's 2:4 1x1 convs at batch 32 led
 * dense by 2-11 % alone and ran at 0.79-0.86x of it in the plan. 0, or -1
 * where a window could not be captured or a launch failed. */
static int time_in_place(const cu_plan *cp, cu_session *cs, const sp_plan *p, int g, int dense_var, int *idx,
                         cudaStream_t sm, cudaEvent_t *ev, float t[2])
{
    cudaGraphExec_t exec[2] = {NULL, NULL};
    for (int w = 0; w < 2; w++)
        exec[w] = capture_steps(cp, cs, p, idx, window_steps(cp, g, w ? 3 : dense_var, idx), IN_PLACE_LAUNCHES, sm);
    const int rc = exec[0] && exec[1] ? time_graphs(exec, 2, IN_PLACE_LAUNCHES, sm, ev, t) : -1;
    for (int w = 0; w < 2; w++)
        if (exec[w])
            cudaGraphExecDestroy(exec[w]);
    return rc;
}

/* The last check of the sparse plan, as a whole: the per-layer decisions
 * (pick[g]) against every layer dense and every layer sparse (each group g
 * with dvar[g] > 0 has both; dvar is its dense variant), one launch of the
 * whole plan per replay (time_graphs). The fastest stays; where it is not
 * the per-layer one, pick[] is rewritten. Per-layer timing, even in place,
 * sees each layer with its neighbours as they were then decided; this sees
 * the plan that runs. Returns which won (0 per layer, 1 dense, 2 sparse),
 * -1 when the timing failed (the per-layer decisions stand); t gets the
 * three times. */
static int check_whole_plan(cu_plan *cp, cu_session *cs, const sp_plan *p, const int *dvar, int *pick,
                            cudaStream_t sm, cudaEvent_t *ev, float t[3])
{
    cudaGraphExec_t exec[3] = {NULL, NULL, NULL};
    int ok = 1;
    for (int c = 0; c < 3 && ok; c++) {
        for (int g = 1; g <= cp->n_alt; g++)
            if (dvar[g])
                choose_sparse(cp, p, g, dvar[g], c == 0 ? pick[g] : c == 2);
        ok = (exec[c] = capture_steps(cp, cs, p, NULL, -1, 1, sm)) != NULL;
    }
    const int best = ok && time_graphs(exec, 3, 1, sm, ev, t) == 0 ? fastest(t, 3) : -1;
    for (int c = 0; c < 3; c++)
        if (exec[c])
            cudaGraphExecDestroy(exec[c]);
    for (int g = 1; g <= cp->n_alt; g++)
        if (dvar[g]) {
            if (best > 0)
                pick[g] = best == 2;
            choose_sparse(cp, p, g, dvar[g], pick[g]);
        }
    return best;
}

/* wall-clock milliseconds, for SPRUN_CUDA_DEBUG's report of tuning time */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void cu_tune_plan(cu_plan *cp, cu_session *cs, const sp_plan *p, cudaStream_t sm)
{
    const double t_start = now_ms();
    if (!sp_cuda_plan_tuning()) {
        untuned_choice(cp, p);
        return;
    }
    cudaEvent_t ev[2];
    if (cudaEventCreate(&ev[0]) != cudaSuccess || cudaEventCreate(&ev[1]) != cudaSuccess) {
        (void)cudaGetLastError();
        untuned_choice(cp, p);
        return;
    }
    cublasSetStream(cs->blas, sm);
    cudnnSetStream(cs->dnn, sm);
    int warm = 0; /* warm_up ran: once, before the first decision that is measured (none when all are memoized) */
    char key[640], what[96];
    for (int i = 0; i < cp->n_st; i++) {
        cu_step *st = &cp->st[i];
        if (st->kind != ST_LT || st->n_cand < 2)
            continue;
        int nth = 0; /* which cuBLASLt step of its node */
        for (int j = i - 1; j >= 0 && cp->st[j].ord == st->ord; j--)
            nth += cp->st[j].kind == ST_LT;
        snprintf(what, sizeof what, "lt%d/%d", nth, st->n_cand);
        const int keyed = cu_tune_key(p, st, what, key, sizeof key);
        int best = 0;
        if (!keyed || !sp_cuda_tune_memo_get(key, &best) || best < 0 || best >= st->n_cand) {
            if (!warm++)
                warm_up(cp, cs, p, sm, ev);
            float tc[LT_CANDIDATES];
            for (int c = 0; c < st->n_cand; c++) {
                st->lalgo = st->cand[c];
                tc[c] = time_steps(cp, cs, p, &i, 1, sm, ev);
            }
            const int f = fastest(tc, st->n_cand);
            best = f < 0 ? 0 : f;
            if (keyed && f >= 0)
                sp_cuda_tune_memo_put(key, best);
            trace_decision(p, st, what, tc, st->n_cand, best);
        } else
            trace_decision(p, st, what, NULL, 0, best);
        st->lalgo = st->cand[best];
    }
    /* cuDNN's shortlist per conv, before GEMM vs cuDNN is decided */
    for (int i = 0; i < cp->n_st; i++) {
        cu_step *st = &cp->st[i];
        if (st->kind != ST_CONV || st->n_dnn < 2)
            continue;
        const int keyed = cu_tune_key(p, st, "cudnn", key, sizeof key);
        if (!warm++)
            warm_up(cp, cs, p, sm, ev);
        float tc[DNN_CANDIDATES];
        for (int c = 0; c < st->n_dnn; c++) {
            st->algo = st->dalgo[c];
            tc[c] = -1.f;
            if (cudnnSetConvolutionMathType(st->cd, st->dmath[c]) == CUDNN_STATUS_SUCCESS)
                tc[c] = time_steps(cp, cs, p, &i, 1, sm, ev);
        }
        const int f = fastest(tc, st->n_dnn), best = f < 0 ? 0 : f;
        st->algo = st->dalgo[best];
        cudnnSetConvolutionMathType(st->cd, st->dmath[best]);
        if (keyed && f >= 0)
            sp_cuda_tune_memo_put(key, (int)st->dalgo[best] * 8 + (int)st->dmath[best]);
        snprintf(what, sizeof what, "cudnn algos %d/%d/%d/%d", (int)st->dalgo[0], st->n_dnn > 1 ? (int)st->dalgo[1] : -1,
                 st->n_dnn > 2 ? (int)st->dalgo[2] : -1, st->n_dnn > 3 ? (int)st->dalgo[3] : -1);
        trace_decision(p, st, what, tc, st->n_dnn, best);
    }
    /* Each sparse layer's launch configuration (the 2:4 kernel's tile shape
     * and CTAs per SM on sm_90) and each dense sm_90 GEMM's tile shape,
     * before the layer is timed against its alternatives */
    for (int i = 0; i < cp->n_st; i++) {
        cu_step *st = &cp->st[i];
        int cfg[16];
        const int nc = st->kind == ST_SPMM     ? sp_cuda_sparse_configs(&st->sl, cfg, 16)
                       : st->kind == ST_GEMM90 ? sp_cuda_dense_tune_configs(cfg, 16)
                                               : 0;
        if (nc < 2)
            continue;
        int *conf = st->kind == ST_GEMM90 ? &st->gcfg : &st->sl.config;
        if (st->kind == ST_GEMM90)
            snprintf(what, sizeof what, "config/gemm90");
        else
            sparse_what(st, "config", what, sizeof what);
        const int keyed = cu_tune_key(p, st, what, key, sizeof key);
        int best = 0;
        if (keyed && sp_cuda_tune_memo_get(key, &best) && best >= 0 && best < nc) {
            trace_decision(p, st, "config", NULL, 0, cfg[best]);
        } else {
            if (!warm++)
                warm_up(cp, cs, p, sm, ev);
            float tc[16];
            for (int c = 0; c < nc; c++) {
                *conf = cfg[c];
                tc[c] = time_steps(cp, cs, p, &i, 1, sm, ev);
            }
            const int f = fastest(tc, nc);
            best = f < 0 ? 0 : f;
            if (keyed && f >= 0)
                sp_cuda_tune_memo_put(key, best);
            trace_decision(p, st, "config", tc, nc, cfg[best]);
        }
        *conf = cfg[best];
        if (st->kind == ST_SPMM && st->ord >= 0) /* the step info names the configuration (a dense winner overrides it) */
            ((sp_plan *)p)->step[st->ord].kernel = sp_cuda_sparse_label(&st->sl);
    }
    int *idx = malloc((size_t)(cp->n_st > 0 ? cp->n_st : 1) * sizeof *idx);
    /* per group, 3 ints: close (1 where the sparse layer's time alone was
     * within IN_PLACE_BAND of dense's: decided again in place), dvar (its
     * dense variant where it has a sparse one, else 0) and pick (1 sparse) */
    int *close = calloc(3 * ((size_t)cp->n_alt + 1), sizeof *close);
    int *dvar = close ? close + cp->n_alt + 1 : NULL, *pick = close ? dvar + cp->n_alt + 1 : NULL;
    int timed_sparse = 0; /* dense-vs-sparse decisions timed in this plan, not remembered */
    /* Alternatives of one node: conv as GEMM (var 1) vs cuDNN (var 2), then
     * the dense winner vs the sparse layer (var 3). Decided in that order so
     * the dense choice is the one the dense plan of the same model makes
     * (same memo key). */
    for (int g = 1; idx && g <= cp->n_alt; g++) {
        int first = -1, present[4] = {0};
        for (int i = 0; i < cp->n_st; i++)
            if (cp->st[i].alt == g) {
                present[cp->st[i].var & 3] = 1;
                if (first < 0 && cp->st[i].var != 3)
                    first = i;
            }
        if (first < 0)
            continue; /* a group whose steps joined another one's (lower_plan, backend_cuda.c) */
        float t[4] = {-1.f, -1.f, -1.f, -1.f};
        int dense_var = present[1] ? 1 : 2;
        if (present[1] && present[2]) {
            /* a conv's GEMM vs cuDNN, or a MatMul's cuBLASLt vs the dense sm_90 GEMM */
            int gemm90 = 0;
            for (int i = 0; i < cp->n_st; i++)
                gemm90 |= cp->st[i].alt == g && cp->st[i].kind == ST_GEMM90;
            const char *rivals = gemm90 ? "cublas/gemm90" : "gemm/cudnn";
            const int keyed = cu_tune_key(p, &cp->st[first], gemm90 ? "gemm90" : "conv", key, sizeof key);
            int lose;
            if (!keyed || !sp_cuda_tune_memo_get(key, &lose) || (lose != 1 && lose != 2)) {
                if (!warm++)
                    warm_up(cp, cs, p, sm, ev);
                for (int v = 1; v <= 2; v++)
                    t[v] = time_variant(cp, cs, p, g, v, idx, sm, ev);
                lose = (t[1] >= 0.f && (t[2] < 0.f || t[1] <= t[2])) ? 2 : 1;
                if (keyed && (t[1] >= 0.f || t[2] >= 0.f))
                    sp_cuda_tune_memo_put(key, lose);
                trace_decision(p, &cp->st[first], rivals, t + 1, 2, lose == 2 ? 0 : 1);
            } else
                trace_decision(p, &cp->st[first], rivals, NULL, 0, lose == 2 ? 0 : 1);
            dense_var = lose == 2 ? 1 : 2;
            for (int i = 0; i < cp->n_st; i++)
                if (cp->st[i].alt == g && cp->st[i].var == lose)
                    cp->st[i].skip = 1;
        }
        if (!present[3])
            continue;
        /* dense (its winning variant) vs sparse: 0 dense, 1 sparse */
        sparse_what(group_sparse_step(cp, g), "sparse", what, sizeof what);
        const int keyed = cu_tune_key(p, &cp->st[first], what, key, sizeof key);
        int sparse_wins;
        if (!keyed || !sp_cuda_tune_memo_get(key, &sparse_wins) || (sparse_wins != 0 && sparse_wins != 1)) {
            if (!warm++)
                warm_up(cp, cs, p, sm, ev);
            float ts[2]; /* dense (timed above where it had a rival), sparse */
            ts[0] = t[dense_var] >= 0.f ? t[dense_var] : time_variant(cp, cs, p, g, dense_var, idx, sm, ev);
            ts[1] = time_variant(cp, cs, p, g, 3, idx, sm, ev);
            sparse_wins = ts[1] >= 0.f && (ts[0] < 0.f || ts[1] < ts[0]);
            trace_decision(p, &cp->st[first], "dense/sparse", ts, 2, sparse_wins);
            timed_sparse++;
            if (close && ts[0] >= 0.f && ts[1] >= 0.f && ts[1] < ts[0] * IN_PLACE_BAND)
                close[g] = 1; /* decided again in place */
            if (!close && keyed && (ts[0] >= 0.f || ts[1] >= 0.f))
                sp_cuda_tune_memo_put(key, sparse_wins); /* no later rounds without their arrays */
        } else
            trace_decision(p, &cp->st[first], "dense/sparse", NULL, 0, sparse_wins);
        choose_sparse(cp, p, g, dense_var, sparse_wins);
        if (close) {
            dvar[g] = dense_var;
            pick[g] = sparse_wins;
        }
    }
    /* The close calls again, each layer in its place in the plan, in plan order */
    for (int g = 1; idx && close && g <= cp->n_alt; g++) {
        if (!close[g])
            continue;
        const int dense_var = dvar[g], first = group_step(cp, g, 0);
        float tp[2];
        if (time_in_place(cp, cs, p, g, dense_var, idx, sm, ev, tp) != 0)
            continue; /* the decision made alone stands */
        pick[g] = tp[1] < tp[0];
        choose_sparse(cp, p, g, dense_var, pick[g]);
        trace_decision(p, &cp->st[first], "dense/sparse in place", tp, 2, pick[g]);
    }
    /* Then the plan as a whole; the decisions are memoized only now, so a
     * later plan of the same model in this process runs the same kernels */
    const double t_whole = now_ms();
    if (close && timed_sparse) {
        float tw[3];
        const int won = check_whole_plan(cp, cs, p, dvar, pick, sm, ev, tw);
        if (won >= 0)
            trace_decision(p, NULL, "per-layer/dense/sparse", tw, 3, won);
        for (int g = 1; g <= cp->n_alt; g++) {
            const int first = group_step(cp, g, 0);
            if (!dvar[g] || first < 0)
                continue;
            sparse_what(group_sparse_step(cp, g), "sparse", what, sizeof what);
            if (cu_tune_key(p, &cp->st[first], what, key, sizeof key))
                sp_cuda_tune_memo_put(key, pick[g]);
        }
    }
    info_conv_gemm(cp, p);
    if (getenv("SPRUN_CUDA_DEBUG")) {
        int again = 0;
        for (int g = 1; close && g <= cp->n_alt; g++)
            again += close[g];
        fprintf(stderr,
                "sprun cuda tune: plan tuned in %.0f ms (whole-plan check %.0f ms); %d dense/sparse calls timed, "
                "%d of them again in place\n",
                now_ms() - t_start, now_ms() - t_whole, timed_sparse, again);
    }
    free(close);
    free(idx);
    cudaEventDestroy(ev[0]);
    cudaEventDestroy(ev[1]);
}
