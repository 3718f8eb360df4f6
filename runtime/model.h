/*
 * model.h - the internal structures behind sprun_model, sprun_session and
 * the per-shape plans, and the interface every backend implements.
 *
 * Life cycle:
 *   sprun_model_load   -> loader fills model->graph; unsupported ops are
 *                         listed; load-time passes (constant folding,
 *                         BatchNorm folding, dead-node removal); per-weight
 *                         sparsity analysis; backend->model_init (upload).
 *   sprun_session_run  -> look up the plan for these input shapes, or build
 *                         one: clone the graph, infer concrete shapes, fold
 *                         shape-dependent subgraphs, fuse epilogues, remove
 *                         dead nodes, plan memory (one arena), then
 *                         backend->plan_init; then backend->run.
 */
#ifndef SPRUN_MODEL_H
#define SPRUN_MODEL_H

#include "loaders/sparse_format.h"
#include "runtime/cost_model.h"
#include "runtime/graph.h"
#include "sprun.h"

#include <stddef.h>
#include <stdint.h>

struct sprun_options {
    sprun_backend backend;
    sprun_precision precision;
    int32_t device_id;
    int32_t threads;
    sprun_format format;
    int32_t optimize;
    char tune_path[1024];        /* "" = tuning off */
    char calibration_path[1024]; /* "" = the backend's built-in cost table */
};

/* Per-weight analysis record (public view: sprun_weight_info). */
typedef struct sp_weight_record {
    int node;         /* node index in model->graph */
    int value;        /* weight value index */
    char *node_name, *op_type, *weight_name;
    int64_t m, k, nnz;
    double density;
    int is_24;
    /* Conv with a k x k kernel: 2:4 along the input channels of every kernel
     * position, i.e. in the (ky, kx, ci) K order of KRSC weights (TensorRT's
     * and NVIDIA ASP's convention); other layers: equal to is_24. */
    int is_24_c;
    double zero_block_frac[4];
    int64_t nnz_over_24; /* nonzeros past the first two of their group of 4 along K */
    sprun_format format; /* chosen by the backend */
    char reason[160];
} sp_weight_record;

typedef struct sp_plan sp_plan;
typedef struct sp_backend_i sp_backend_i;

struct sprun_model {
    sprun_options opt;
    sp_graph graph;
    sprun_backend backend_kind;
    const sp_backend_i *backend;
    void *backend_model; /* backend's shared state (uploaded weights) */
    sp_weight_record *weights;
    int n_weights;
    sprun_tensor_info *inputs, *outputs; /* static descriptions */
    struct sp_tune_cache *tune; /* measured kernel choices (tuning on), else NULL */
    sp_cost_device cost;        /* cost-model table of the chosen backend (sp_model_set_cost) */
    char cost_origin[1280];     /* which table and why (sprun_model_cost_table) */
    int n_load_folded;
};

/* What a backend tells about one step of a plan: which kernel runs it and,
 * for Conv/Gemm/MatMul with a constant weight, the GEMM it computes and the
 * cost model's prediction (for --profile and --compare). */
typedef struct sp_step_info {
    const char *kernel;  /* "csr", "bsr16", "2:4", "dense", "cudnn"... (static string) or NULL */
    int weight;          /* index into model->weights, -1 if none */
    int64_t m, k, n;     /* GEMM view (n = columns: positions x batch or rows) */
    double predicted_us; /* cost-model prediction for the chosen kernel, 0 if none */
} sp_step_info;

/* One specialisation of the graph for concrete input shapes. */
struct sp_plan {
    sp_shape input_shapes[16]; /* key: shapes of graph inputs in order */
    int n_inputs;
    sp_graph g;      /* clone with concrete shapes, folded, fused */
    int *order;      /* live nodes to run, in order */
    int n_order;
    int64_t *offset; /* per value: byte offset in the arena, -1 = none */
    size_t arena_bytes;
    size_t scratch_bytes; /* max CPU scratch over nodes */
    int n_folded;
    /* graph inputs (bit i = g.inputs[i]) whose values were baked in as
     * constants because a shape depends on them; the plan is reused only
     * for the same values */
    unsigned promoted;
    /* outputs copied back to the host after each run */
    void **out_host;
    size_t *out_bytes;
    sp_step_info *step; /* per step of the order, filled by the backend (kernel choice, GEMM view) */
    void *backend_plan; /* backend's per-plan state */
    uint64_t last_used;
};

#define SP_MAX_PLANS 8

struct sprun_session {
    const struct sprun_model *model;
    sp_plan *plans[SP_MAX_PLANS];
    int n_plans;
    sp_plan *current; /* plan of the last successful run */
    uint64_t tick;
    void *backend_session;
    void *stream; /* user-supplied cudaStream_t or NULL */
    sprun_memory out_memory;     /* where the next runs put outputs (sprun_session_set_output_memory) */
    sprun_memory current_memory; /* where the outputs of `current` are */
    int profiling;
    double *profile_us; /* per entry of current->order */
    int n_profile;
};

/* A backend: a struct of function pointers (ggml's ggml_backend_i style). */
struct sp_backend_i {
    const char *name;
    /* Called once per model after load-time passes: upload/convert weights,
     * choose weight formats (fill model->weights[i].format/reason). */
    int (*model_init)(struct sprun_model *m, sp_err *err);
    void (*model_free)(struct sprun_model *m);
    int (*session_init)(struct sprun_session *s, sp_err *err);
    void (*session_free)(struct sprun_session *s);
    /* Called after the generic plan is built (shapes, order, offsets). */
    int (*plan_init)(struct sprun_session *s, sp_plan *p, sp_err *err);
    void (*plan_free)(struct sprun_session *s, sp_plan *p);
    /* Runs plan p: inputs[i] is the caller's tensor for graph input i
     * (already validated; in device memory when its .memory says so, which
     * only a backend with device I/O below is given). Writes every graph
     * output into p->out_host and finishes; or, when s->out_memory is
     * SPRUN_MEMORY_DEVICE, leaves them in device memory (device_output)
     * and returns without waiting for the device. */
    int (*run)(struct sprun_session *s, sp_plan *p, const sprun_tensor *const *inputs, sp_err *err);

    /* Device I/O. All NULL in a backend without device memory (the CPU's):
     * its sessions refuse SPRUN_MEMORY_DEVICE inputs and outputs. */
    /* Whether ptr is device memory this session can read as an input; err
     * says why not (session.c prefixes the input's name). */
    int (*device_check)(const struct sprun_session *s, const void *ptr, sp_err *err);
    /* Copies bytes at device address src to host dst in the session's
     * stream order and waits (inputs whose values the planner reads). */
    int (*device_read)(struct sprun_session *s, void *dst, const void *src, size_t bytes, sp_err *err);
    /* Device address of graph output idx of plan p (valid after a
     * device-output run of p; NULL for an empty output). */
    void *(*device_output)(const struct sprun_session *s, const sp_plan *p, int idx);
    /* Waits for the session's enqueued work; reports asynchronous failures. */
    int (*synchronize)(struct sprun_session *s, sp_err *err);
};

extern const sp_backend_i sp_backend_cpu;
#ifdef SPRUN_HAVE_CUDA
extern const sp_backend_i sp_backend_cuda;
/* True when a CUDA device is usable (driver present, device_id exists). */
int sp_cuda_available(int device_id);
#endif

/* Sets m->cost to base overridden by the calibration file of the options,
 * if any (backends call it from model_init with their built-in table), and
 * m->cost_origin to the table's name and origin (why base: a line from
 * sp_cost_device_for_gpu, or NULL). */
int sp_model_set_cost(struct sprun_model *m, const sp_cost_device *base, const char *why, sp_err *err);

/* --- passes (runtime/passes.c) ------------------------------------------ */

/* Folds BatchNormalization into a preceding Conv whose weights are
 * constant; returns the number folded. */
int sp_pass_fold_batchnorm(sp_graph *g, int *n_folded, sp_err *err);
/* Fuses residual Add and activation into Conv/Gemm/MatMul (shapes must be
 * concrete: plan time). */
int sp_pass_fuse_epilogues(sp_graph *g, int *n_fused, sp_err *err);
/* The activation GEMM-like node pi has fused (after sp_pass_fuse_epilogues)
 * or will fuse (before: a sole-consumer Add, then an activation), as an
 * SP_ACT_* value. Read-only. */
int sp_pass_epilogue_act(const sp_graph *g, int pi);
/* Rewrites Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5) (also with
 * Mul(x, 1/sqrt 2) first) into one Gelu node; the intermediate values must
 * have no other consumers. Run at load, before epilogue fusion. */
int sp_pass_fuse_gelu(sp_graph *g, int *n_fused, sp_err *err);
/* MatMuls reading the same activation with constant [K, N] weights of one
 * shape, each with or each without its own bias Add (BERT's query / key /
 * value): one MatMul with the weights side by side ([K, n*N], the biases
 * likewise) and a Split along the last axis into the original results.
 * Fewer, wider GEMMs (launch latency at small batch; a wider operand for
 * the sparse kernels); the CUDA backend reads the Split's outputs in place
 * where fused attention consumes them. Run at load, before weight analysis. */
int sp_pass_fuse_parallel_matmuls(sp_graph *g, int *n_fused, sp_err *err);
/* Marks nodes whose outputs nobody uses as dead. */
void sp_pass_remove_dead(sp_graph *g);

/* --- planning (runtime/plan.c, runtime/memplan.c) ----------------------- */

int sp_plan_build(const struct sprun_model *m, const sprun_tensor *const *inputs, sp_plan **out, sp_err *err);
void sp_plan_free(sp_plan *p);

/* Union-find root of v with path halving (values that share one buffer:
 * aliasing ops like Reshape). */
int sp_union_root(int *parent, int v);

typedef struct sp_buf_req {
    size_t size;
    int first, last; /* inclusive step range during which the buffer lives */
} sp_buf_req;
/* Assigns offsets so that buffers alive at the same step never overlap;
 * greedy by decreasing size, lowest fitting offset. *total = arena size. */
int sp_memplan_assign(const sp_buf_req *bufs, int n, size_t align, int64_t *offsets, size_t *total, sp_err *err);

/* The planners' last step, shared by the CPU plan and the CUDA backend: one
 * buffer per alias class (values with the same sp_union_root in parent),
 * living from the earliest first[] to the latest last[] of its members and as
 * large as the largest member (bytes_of(ctx, value)); constants and values
 * with first[v] < 0 get none. Lays the buffers out with sp_memplan_assign and
 * writes off[v] (-1 where no buffer; all -1 on failure) and *total. parent
 * is path-compressed. */
int sp_memplan_classes(const sp_graph *g, int *parent, const int *first, const int *last,
                       size_t (*bytes_of)(const void *ctx, const sp_value *v), const void *ctx, size_t align,
                       int64_t *off, size_t *total, sp_err *err);

/* --- sparsity analysis glue (runtime/weights.c) -------------------------- */
int sp_model_analyse_weights(struct sprun_model *m, sp_err *err);

/* Weight of node n in the GEMM view [m, k] as a freshly malloc'd float
 * array (Conv: [M, C/g*kh*kw]; Gemm: honours transB; MatMul: transposed);
 * NULL when n has no constant float weight. Caller frees. */
float *sp_weight_gemm_view(const sp_graph *g, const sp_node *n, int *value_idx, int64_t *m, int64_t *k);

/* The same with a Conv's K in (ky, kx, ci) order (rsc != 0; the order of
 * KRSC weights and of sp_cuda_im2col_nhwc's rsc gather); other ops and
 * rsc == 0: sp_weight_gemm_view. */
float *sp_weight_gemm_view_order(const sp_graph *g, const sp_node *n, int rsc, int *value_idx, int64_t *m,
                                 int64_t *k);

/* Packs node n's weight (GEMM view, a Conv's K in (ky, kx, ci) order when
 * rsc != 0) into format f (CSR, BSR with square blocks of `block`, or 24)
 * with values of type vt. *out owns the arrays (sp_sparse_free); on failure
 * it owns nothing and err names the node. */
int sp_weight_pack(const sp_graph *g, const sp_node *n, sprun_format f, int block, int rsc, sp_sparse_vtype vt,
                   sp_sparse_matrix *out, sp_err *err);

/* The cost-model problem of weight record r at N columns. */
sp_cost_problem sp_weight_problem(const sp_weight_record *r, int64_t n, size_t value_bytes);

/* The sparse formats tuning times for weight r, in this order: CSR; BSR at
 * the block size (>= min_block) the cost model of dev likes best at n
 * columns, when it has one; 2:4 when r is 2:4. Fills out[0..] (format and
 * block) and returns how many (at most 3). */
int sp_weight_candidates(const sp_cost_device *dev, const sp_weight_record *r, int64_t n, size_t value_bytes,
                         int min_block, sp_cost_estimate out[3]);

/* Why a Gemm/MatMul node cannot run as an SpMM Y = X W^T with a bias /
 * residual epilogue (NULL if it can); other ops get "not a Conv/Gemm/MatMul".
 * Conv's conditions are each backend's own. */
const char *sp_weight_gemm_ineligible(const sp_graph *g, const sp_node *n);

#endif
