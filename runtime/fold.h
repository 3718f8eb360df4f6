/*
 * fold.h - evaluating nodes on the CPU at load/plan time.
 *
 * Constant folding and the op unit tests share one path: a node whose
 * inputs are all constants (or, for SP_OPF_SHAPE_ONLY ops, whose input shape
 * is known) is checked, its output shapes inferred, its outputs allocated on
 * the host and computed by the op's cpu_run; the outputs become constants
 * owned by the graph and the node is marked dead.
 */
#ifndef SPRUN_FOLD_H
#define SPRUN_FOLD_H

#include "runtime/graph.h"

/* True when node ni can be folded now (all present inputs constant, or the
 * SHAPE_ONLY rule), the op allows folding, and it is not dead. */
int sp_node_foldable(const sp_graph *g, int ni);

/* Folds node ni as described above. On error nothing is marked dead and the
 * message names the node. nthreads: CPU threads for the kernel (1 is fine). */
int sp_node_eval_const(sp_graph *g, int ni, int nthreads, sp_err *err);

/* Folds every foldable node, in order, repeatedly until none is left;
 * *n_folded (may be NULL) receives the count. */
int sp_graph_fold_constants(sp_graph *g, int nthreads, int *n_folded, sp_err *err);

#endif
