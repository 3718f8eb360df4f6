/*
 * cpu_sparse.h - sparse Conv / Gemm / MatMul layers on the CPU backend.
 *
 * At model load every analysed weight that the CPU kernels can serve is
 * given a format: the one the user forced (--format), or under AUTO the
 * sparse format the cost model predicts fastest, packed once (fp32 values)
 * and shared by all sessions. Each plan then decides per node, with the
 * real N (positions x batch, or rows), between that packed format and the
 * dense op, again by the cost model unless forced. Layers that cannot run
 * sparse (grouped convs, transposed Gemm inputs, fp16 tensors...) stay dense
 * and the reason is recorded in the weight record.
 */
#ifndef SPRUN_CPU_SPARSE_H
#define SPRUN_CPU_SPARSE_H

#include "loaders/sparse_format.h"
#include "ops/op.h"
#include "runtime/model.h"

/* Model-level packed weights, one per weight record (kind DENSE = none). */
typedef struct sp_cpu_packed {
    sp_sparse_matrix *mat; /* [n_weights] */
    /* With tuning on: every candidate format of each eligible weight,
     * [n_weights][SP_CPU_NCAND] in sp_weight_candidates' order (CSR, BSR at
     * its best block size, 2:4 when the weight is 2:4), the unused slots
     * kind DENSE. */
    sp_sparse_matrix *cand;
    int n;
} sp_cpu_packed;

#define SP_CPU_NCAND 3

/* Chooses and packs formats for m->weights (fills format and reason). */
int sp_cpu_sparse_prepare(struct sprun_model *m, sp_cpu_packed *packed, sp_err *err);
void sp_cpu_sparse_release(sp_cpu_packed *packed);

/* Per plan: for node ni of plan p, the packed weight it should run with, or
 * NULL to run the dense op. *scratch_bytes grows to what the sparse path
 * needs; info (the node's step) receives the kernel label, the GEMM view and
 * the cost model's prediction for nodes with an analysed weight. */
const sp_sparse_matrix *sp_cpu_sparse_select(const struct sprun_model *m, const sp_cpu_packed *packed,
                                             const sp_plan *p, int ni, size_t *scratch_bytes, sp_step_info *info);

/* Tuning: times the dense op and every packed candidate of each step with
 * an analysed weight (inputs filled with random values in the plan's arena,
 * which holds nothing yet), keeps the fastest, and records it in
 * m->tune; a decision already in the cache is reused without timing.
 * run_step(arg, step, w) must run step `step` with weight w (NULL: dense). */
typedef int (*sp_cpu_step_runner)(void *arg, int step, const sp_sparse_matrix *w, sp_err *err);
typedef void (*sp_cpu_step_filler)(void *arg, int step);
int sp_cpu_sparse_tune(const struct sprun_model *m, const sp_cpu_packed *packed, sp_plan *p, int nthreads,
                       const sp_sparse_matrix **chosen, sp_cpu_step_runner run_step, sp_cpu_step_filler fill_inputs,
                       void *arg, sp_err *err);

/* Runs node n with sparse weight w: same inputs/outputs as the dense op. */
int sp_cpu_sparse_run(const sp_node *n, const sp_sparse_matrix *w, const sp_tensor *in, int n_in, sp_tensor *out,
                      const sp_cpu_ctx *ctx, sp_err *err);

#endif
