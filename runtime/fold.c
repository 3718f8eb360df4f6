/* fold.c - constant folding: running nodes on the CPU at load/plan time. */
#include "runtime/fold.h"

#include "ops/op.h"

#include <stdlib.h>
#include <string.h>

int sp_node_foldable(const sp_graph *g, int ni)
{
    const sp_node *n = &g->nodes[ni];
    if (n->dead || !n->op || (n->op->flags & SP_OPF_NO_FOLD))
        return 0;
    if (n->op->flags & SP_OPF_SHAPE_ONLY) {
        const sp_value *v = sp_node_in(g, n, 0);
        return v && v->dtype && sp_shape_known(&v->shape);
    }
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && v->kind != SP_VAL_CONST)
            return 0;
    }
    return 1;
}

int sp_node_eval_const(sp_graph *g, int ni, int nthreads, sp_err *err)
{
    sp_node *n = &g->nodes[ni];
    char label[256];
    sp_node_label(n, label, sizeof label);
    if (!n->op)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "node %s: op '%s%s%s' is not supported", label,
                          n->domain && n->domain[0] ? n->domain : "", n->domain && n->domain[0] ? "." : "",
                          n->op_type);
    int rc;
    if (n->op->check && (rc = n->op->check(g, n, err)) != SPRUN_OK)
        return rc;
    if ((rc = n->op->infer(g, n, err)) != SPRUN_OK)
        return rc;

    sp_tensor in[n->n_in > 0 ? n->n_in : 1];
    sp_tensor out[n->n_out > 0 ? n->n_out : 1];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    for (int i = 0; i < n->n_in; i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (!v)
            continue;
        in[i].dtype = v->dtype;
        in[i].shape = v->shape;
        in[i].data = v->kind == SP_VAL_CONST ? v->data : NULL;
    }
    size_t bytes[n->n_out > 0 ? n->n_out : 1];
    for (int i = 0; i < n->n_out; i++) {
        const sp_value *v = sp_node_out(g, n, i);
        bytes[i] = 0;
        if (!v)
            continue;
        int64_t numel = sp_shape_numel(&v->shape);
        size_t es = sp_dtype_size(v->dtype);
        if (numel < 0 || es == 0) {
            rc = sp_err_set(err, SPRUN_ERR_INTERNAL, "node %s: output %d has no inferred shape/dtype", label, i);
            goto fail;
        }
        bytes[i] = (size_t)numel * es;
        out[i].dtype = v->dtype;
        out[i].shape = v->shape;
        out[i].data = calloc(1, bytes[i] ? bytes[i] : 1);
        if (!out[i].data) {
            rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "node %s: out of memory folding (%zu bytes)", label,
                            bytes[i]);
            goto fail;
        }
    }
    sp_cpu_ctx ctx = {.nthreads = nthreads > 0 ? nthreads : 1, .graph = g};
    void *scratch = NULL;
    if (n->op->cpu_scratch) {
        ctx.scratch_bytes = n->op->cpu_scratch(g, n, ctx.nthreads);
        if (ctx.scratch_bytes) {
            scratch = aligned_alloc(64, (ctx.scratch_bytes + 63) & ~(size_t)63);
            if (!scratch) {
                rc = sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "node %s: out of memory for %zu bytes of scratch", label,
                                ctx.scratch_bytes);
                goto fail;
            }
            ctx.scratch = scratch;
        }
    }
    rc = n->op->cpu_run(n, in, n->n_in, out, n->n_out, &ctx, err);
    free(scratch);
    if (rc != SPRUN_OK)
        goto fail;
    for (int i = 0; i < n->n_out; i++) {
        sp_value *v = sp_node_out(g, n, i);
        if (v)
            sp_value_set_const(v, out[i].dtype, &out[i].shape, out[i].data, bytes[i], 1);
    }
    n->dead = 1;
    return SPRUN_OK;
fail:
    for (int i = 0; i < n->n_out; i++)
        free(out[i].data);
    if (err && !strstr(err->msg, label))
        sp_err_prefix(err, "node %s", label);
    return rc;
}

int sp_graph_fold_constants(sp_graph *g, int nthreads, int *n_folded, sp_err *err)
{
    int folded = 0;
    /* Nodes are in topological order, so one forward sweep folds every chain
     * whose sources are constant. */
    for (int i = 0; i < g->n_nodes; i++) {
        if (!sp_node_foldable(g, i))
            continue;
        int rc = sp_node_eval_const(g, i, nthreads, err);
        if (rc != SPRUN_OK)
            return rc;
        folded++;
    }
    if (n_folded)
        *n_folded = folded;
    return SPRUN_OK;
}
