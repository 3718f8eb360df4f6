/* epilogue.c - the generic (unfused-loop) form of a node's fusion epilogue. */
#include "ops/op.h"

typedef struct {
    const sp_node *n;
    const float *res; /* NULL or same count as y */
    float *y;
} epi_job;

static void epi_range(void *vp, int64_t b, int64_t e)
{
    const epi_job *j = vp;
    const sp_fusion *f = &j->n->fusion;
    for (int64_t i = b; i < e; i++) {
        float v = j->y[i] + (j->res ? j->res[i] : 0.f);
        j->y[i] = sp_act_apply(f->act, v, f->alpha, f->beta);
    }
}

void sp_fusion_apply(const sp_node *n, const sp_tensor *in, float *y, int64_t count, const sp_cpu_ctx *ctx)
{
    const sp_fusion *f = &n->fusion;
    epi_job j = {n, NULL, y};
    if (f->residual_input >= 0 && f->residual_input < n->n_in)
        j.res = in[f->residual_input].data;
    if (!j.res && f->act == SP_ACT_NONE)
        return;
    sp_parallel_for(ctx, count, 16384, epi_range, &j);
}
