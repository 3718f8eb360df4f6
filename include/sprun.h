/*
 * sprun.h - the public C API of sprun, a sparse DNN inference runtime.
 *
 * A typical embedding:
 *
 *     sprun_options *opt = NULL;
 *     sprun_options_create(&opt);
 *     sprun_options_set_backend(opt, SPRUN_BACKEND_AUTO);     // GPU if present
 *
 *     sprun_model *model = NULL;
 *     if (sprun_model_load("resnet50.onnx", opt, &model) != SPRUN_OK)
 *         fprintf(stderr, "%s\n", sprun_last_error());
 *
 *     sprun_session *sess = NULL;                  // one per thread / stream
 *     sprun_session_create(model, &sess);
 *
 *     sprun_tensor in = { .name = "input", .dtype = SPRUN_DTYPE_FLOAT,
 *                         .rank = 4, .dims = {1, 3, 224, 224},
 *                         .data = pixels, .nbytes = sizeof pixels };
 *     if (sprun_session_run(sess, &in, 1) != SPRUN_OK) { ...sprun_last_error()... }
 *
 *     sprun_tensor out;
 *     sprun_session_output(sess, 0, &out);        // view, valid until next run
 *
 *     sprun_session_destroy(sess);
 *     sprun_model_destroy(model);                 // frees all host and GPU memory
 *     sprun_options_destroy(opt);
 *
 * Device I/O (CUDA backend). Inputs already on the GPU are passed with
 * .memory = SPRUN_MEMORY_DEVICE (copied device-to-device, no host copy);
 * sprun_session_set_output_memory(sess, SPRUN_MEMORY_DEVICE) leaves the
 * outputs on the GPU (views of device memory, no device-to-host copy) and
 * lets runs return without waiting: call sprun_session_synchronize, or
 * consume them on the session's stream.
 *
 * Errors. Every fallible call returns a sprun_code; SPRUN_OK is zero. The
 * message of the last failing call on the calling thread is returned by
 * sprun_last_error() and names what failed (the file, the node, the op, the
 * CUDA call). The library never aborts or exits on bad input.
 *
 * Threads. A sprun_model is immutable after sprun_model_load returns: any
 * number of threads may create sessions from it and query it concurrently.
 * A sprun_session is NOT thread-safe: use one session per thread (or per
 * CUDA stream). Sessions of one model share its weights (uploaded once per
 * device). Destroy every session before its model.
 *
 * Ownership. Every create or load function has a destroy that accepts NULL.
 * Pointers returned by query functions (names, tensor views) are owned by
 * the object they were queried from and stay valid as stated per function.
 */
#ifndef SPRUN_H
#define SPRUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SPRUN_API __declspec(dllexport)
#else
#define SPRUN_API __attribute__((visibility("default")))
#endif

#define SPRUN_MAX_RANK 8

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum sprun_code {
    SPRUN_OK = 0,
    SPRUN_ERR_INVALID_ARGUMENT = 1, /* NULL handle, bad option, wrong input size */
    SPRUN_ERR_IO = 2,               /* file missing or unreadable */
    SPRUN_ERR_PARSE = 3,            /* not an ONNX model, truncated, corrupt */
    SPRUN_ERR_UNSUPPORTED = 4,      /* op, dtype, opset or attribute not supported */
    SPRUN_ERR_SHAPE = 5,            /* shapes inconsistent or not inferable */
    SPRUN_ERR_OUT_OF_MEMORY = 6,    /* host or device allocation failed */
    SPRUN_ERR_BACKEND = 7,          /* CUDA / cuBLAS / cuDNN call failed */
    SPRUN_ERR_NO_DEVICE = 8,        /* CUDA backend asked for, no usable GPU */
    SPRUN_ERR_INTERNAL = 9,         /* a bug in sprun: please report */
} sprun_code;

/* Message of the last failing call on this thread ("" if none). Owned by the
 * library; valid until the next sprun call on this thread. Thread-safe. */
SPRUN_API const char *sprun_last_error(void);

/* Short name of a code ("SPRUN_ERR_PARSE"). Static string. Thread-safe. */
SPRUN_API const char *sprun_code_name(sprun_code code);

/* Library version "MAJOR.MINOR.PATCH". Static string. Thread-safe. */
SPRUN_API const char *sprun_version(void);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

/* Element types; the values are ONNX TensorProto.DataType's. */
typedef enum sprun_dtype {
    SPRUN_DTYPE_UNDEFINED = 0,
    SPRUN_DTYPE_FLOAT = 1,
    SPRUN_DTYPE_UINT8 = 2,
    SPRUN_DTYPE_INT8 = 3,
    SPRUN_DTYPE_UINT16 = 4,
    SPRUN_DTYPE_INT16 = 5,
    SPRUN_DTYPE_INT32 = 6,
    SPRUN_DTYPE_INT64 = 7,
    SPRUN_DTYPE_STRING = 8, /* not supported for compute */
    SPRUN_DTYPE_BOOL = 9,   /* one byte per element, 0 or 1 */
    SPRUN_DTYPE_FLOAT16 = 10,
    SPRUN_DTYPE_DOUBLE = 11,
    SPRUN_DTYPE_UINT32 = 12,
    SPRUN_DTYPE_UINT64 = 13,
    SPRUN_DTYPE_BFLOAT16 = 16,
} sprun_dtype;

/* Size in bytes of one element; 0 for unsupported types. Thread-safe. */
SPRUN_API size_t sprun_dtype_size(sprun_dtype dtype);
/* Lower-case name ("float32", "int64", ...). Static string. Thread-safe. */
SPRUN_API const char *sprun_dtype_name(sprun_dtype dtype);

/* Where a tensor's data lives. Zero is host memory, so a zero-initialised
 * sprun_tensor (`= {0}`, designated initialisers, memset) is a host tensor
 * as before this field existed. */
typedef enum sprun_memory {
    SPRUN_MEMORY_HOST = 0,   /* host memory, pageable or pinned */
    SPRUN_MEMORY_DEVICE = 1, /* CUDA memory of the model's device (cudaMalloc, cudaMallocAsync, managed) */
} sprun_memory;

/* A dense row-major tensor. Used both to pass inputs (the caller owns
 * `data`) and to view outputs (the session owns `data`). `memory` says
 * whether `data` is a host or a device address: device inputs are accepted
 * by CUDA sessions (see sprun_session_run), device outputs are produced
 * after sprun_session_set_output_memory(sess, SPRUN_MEMORY_DEVICE). */
typedef struct sprun_tensor {
    const char *name;
    sprun_dtype dtype;
    int32_t rank;
    int64_t dims[SPRUN_MAX_RANK];
    void *data;
    size_t nbytes;
    sprun_memory memory; /* SPRUN_MEMORY_HOST (0) unless set */
} sprun_tensor;

/* Static description of a model input or output. A dimension that is
 * symbolic (e.g. batch) is -1 in dims and named in dim_names[i]; names are
 * NULL for fixed dims. All strings owned by the model. */
typedef struct sprun_tensor_info {
    const char *name;
    sprun_dtype dtype;
    int32_t rank;
    int64_t dims[SPRUN_MAX_RANK];
    const char *dim_names[SPRUN_MAX_RANK];
} sprun_tensor_info;

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum sprun_backend {
    SPRUN_BACKEND_AUTO = 0, /* CUDA when a GPU is usable, else CPU (said in sprun_model_backend) */
    SPRUN_BACKEND_CPU = 1,
    SPRUN_BACKEND_CUDA = 2, /* fails with SPRUN_ERR_NO_DEVICE when no GPU */
} sprun_backend;

typedef enum sprun_precision {
    SPRUN_PRECISION_DEFAULT = 0, /* fp16 (fp32 accumulation) on CUDA, fp32 on CPU */
    SPRUN_PRECISION_FP32 = 1,
    SPRUN_PRECISION_FP16 = 2,
} sprun_precision;

/* Weight format of the Conv/Gemm/MatMul layers. AUTO lets the cost model
 * choose per weight; the others force one format where the weight allows it
 * (a layer that cannot use the forced format stays dense, and says why). */
typedef enum sprun_format {
    SPRUN_FORMAT_AUTO = 0,
    SPRUN_FORMAT_DENSE = 1,
    SPRUN_FORMAT_CSR = 2,
    SPRUN_FORMAT_BSR = 3,
    SPRUN_FORMAT_24 = 4,
} sprun_format;

typedef struct sprun_options sprun_options;

/* Creates options with defaults (AUTO backend, default precision, device 0,
 * threads = number of cores, format AUTO). Caller owns *out; free with
 * sprun_options_destroy. Options are copied by sprun_model_load, so they can
 * be destroyed right after. Not thread-safe per object. */
SPRUN_API sprun_code sprun_options_create(sprun_options **out);
SPRUN_API void sprun_options_destroy(sprun_options *opt);
SPRUN_API sprun_code sprun_options_set_backend(sprun_options *opt, sprun_backend backend);
SPRUN_API sprun_code sprun_options_set_precision(sprun_options *opt, sprun_precision precision);
SPRUN_API sprun_code sprun_options_set_device(sprun_options *opt, int32_t device_id);
/* CPU threads used by one session's run (0 = all cores). */
SPRUN_API sprun_code sprun_options_set_threads(sprun_options *opt, int32_t threads);
SPRUN_API sprun_code sprun_options_set_format(sprun_options *opt, sprun_format format);
/* Measured kernel choice. With a cache path, every sparse-capable layer's
 * candidate kernels (dense and each sparse format its weight allows) are
 * timed the first time a plan needs them, on the backend that runs them, and
 * the fastest is kept; decisions are appended to cache_path (created if
 * missing) keyed by device, GEMM shape and sparsity, and reused by later
 * loads without timing. Applies under SPRUN_FORMAT_AUTO; NULL turns it off.
 * On CUDA every candidate format is uploaded at load, and the dense
 * candidate is timed as a cuBLAS GEMM of the layer's shape (k x k convs: plus
 * the patch gather both paths pay); on the CPU as the layer's own dense op.
 * Planning takes longer the first time; the file may be shared by models. */
SPRUN_API sprun_code sprun_options_set_tuning(sprun_options *opt, const char *cache_path);
/* Cost-model calibration file for the backend's device (efficiencies and
 * peaks of each kernel family, "key = value" lines as in
 * the .cal files in bench/calibration); NULL uses the built-in table. A malformed file
 * makes sprun_model_load fail with a message naming the line. */
SPRUN_API sprun_code sprun_options_set_calibration(sprun_options *opt, const char *path);
/* Disable load-time graph optimisations (BatchNorm folding, fusion); for
 * debugging and for comparing against an unoptimised graph. */
SPRUN_API sprun_code sprun_options_set_optimize(sprun_options *opt, int32_t enabled);

/* ------------------------------------------------------------------------ */
/* Model: immutable, shareable across threads                                */
/* ------------------------------------------------------------------------ */

typedef struct sprun_model sprun_model;

/* Loads an ONNX model from a file (external data files are resolved relative
 * to it). opt may be NULL for defaults. On success the caller owns *out and
 * frees it with sprun_model_destroy. On failure *out is NULL and the message
 * says what is wrong; unsupported ops are listed all at once with their node
 * names. Thread-safe (no shared state). */
SPRUN_API sprun_code sprun_model_load(const char *path, const sprun_options *opt, sprun_model **out);

/* Same, from a serialized ModelProto in memory. The buffer is only read
 * during the call; the caller keeps ownership. External data is resolved
 * relative to the current directory. */
SPRUN_API sprun_code sprun_model_load_buffer(const void *data, size_t size, const sprun_options *opt,
                                             sprun_model **out);

/* Frees the model, its weights on host and device. Accepts NULL. All its
 * sessions must have been destroyed. */
SPRUN_API void sprun_model_destroy(sprun_model *model);

/* Backend the model runs on after AUTO resolution. Thread-safe. */
SPRUN_API sprun_backend sprun_model_backend(const sprun_model *model);

SPRUN_API size_t sprun_model_input_count(const sprun_model *model);
SPRUN_API size_t sprun_model_output_count(const sprun_model *model);
/* Fills *info for input/output idx; strings owned by the model, valid until
 * sprun_model_destroy. Thread-safe. */
SPRUN_API sprun_code sprun_model_input_info(const sprun_model *model, size_t idx, sprun_tensor_info *info);
SPRUN_API sprun_code sprun_model_output_info(const sprun_model *model, size_t idx, sprun_tensor_info *info);

/* Per-weight sparsity analysis of every Conv/Gemm/MatMul constant weight, in
 * the GEMM view: rows (m) = output features, k = reduction dim (MatMul's
 * [K, N] weights are transposed for this view). */
typedef struct sprun_weight_info {
    const char *node_name;   /* owned by the model */
    const char *op_type;     /* "Conv", "Gemm", "MatMul" */
    const char *weight_name;
    int64_t m, k;
    int64_t nnz;
    double density;          /* nnz / (m * k) */
    int32_t is_2_4;          /* every group of 4 along k has <= 2 nonzeros */
    double zero_block_frac[4]; /* fraction of all-zero square blocks of 4, 8, 16, 32 */
    sprun_format format;     /* the format the backend chose for this weight */
    const char *reason;      /* why that format (owned by the model) */
    int32_t is_2_4_c;        /* Conv with a k x k kernel: every group of 4 input channels at each kernel
                                position has <= 2 nonzeros (TensorRT / NVIDIA ASP 2:4 for convs); the CUDA
                                backend runs such weights 2:4. Other layers: equal to is_2_4 */
} sprun_weight_info;

SPRUN_API size_t sprun_model_weight_count(const sprun_model *model);
SPRUN_API sprun_code sprun_model_weight_info(const sprun_model *model, size_t idx, sprun_weight_info *info);

/* The cost-model table the backend chose each weight's kernel with, in one
 * line: its name, then where it came from ("h200-fp16: built-in table for
 * 'NVIDIA H200'", a calibration file, or "derived-sm86: no built-in table
 * for ..." with the peaks it derived). "" before the backend made its
 * choices. Owned by the model, valid until sprun_model_destroy. Thread-safe. */
SPRUN_API const char *sprun_model_cost_table(const sprun_model *model);

/* Number of nodes after load-time passes, and a one-line description of node
 * idx ("Conv conv1 [fused: bias+relu]"), written into buf. Thread-safe. */
SPRUN_API size_t sprun_model_node_count(const sprun_model *model);
SPRUN_API sprun_code sprun_model_node_describe(const sprun_model *model, size_t idx, char *buf, size_t buflen);

/* ------------------------------------------------------------------------ */
/* Session: per-thread / per-stream execution state                           */
/* ------------------------------------------------------------------------ */

typedef struct sprun_session sprun_session;

/* Creates execution state for model. The model must outlive the session.
 * Caller owns *out. Thread-safe with respect to the model. */
SPRUN_API sprun_code sprun_session_create(const sprun_model *model, sprun_session **out);
/* Frees the session and every buffer it holds (host and device). Accepts NULL. */
SPRUN_API void sprun_session_destroy(sprun_session *sess);

/* CUDA backend: run on this cudaStream_t (NULL = the session's own stream).
 * Changing it drops the session's plans (graphs are captured per stream),
 * with their outputs. Ignored by the CPU backend. */
SPRUN_API sprun_code sprun_session_set_stream(sprun_session *sess, void *cuda_stream);

/* Runs the model. inputs[i].name selects the model input (NULL names are
 * taken in model input order); dtype, shape and nbytes must match the model
 * (symbolic dims take the given sizes). The first run with a new set of
 * input shapes plans memory (and, on CUDA, captures a graph); later runs with
 * the same shapes reuse the plan and allocate nothing. The caller keeps
 * ownership of every input; host inputs may be reused as soon as the call
 * returns. Not thread-safe per session.
 *
 * Device inputs (inputs[i].memory = SPRUN_MEMORY_DEVICE), CUDA sessions only:
 * data must be memory of the model's device (another device's memory or a
 * host pointer is refused with SPRUN_ERR_INVALID_ARGUMENT naming the input).
 * It is copied device-to-device into the plan's memory on the session's
 * stream, before the captured graph is launched: no host staging, no
 * pageable copy. Stream order applies: the data must be complete when the
 * session's stream reaches the run (written on that stream, see
 * sprun_session_set_stream, or synchronized before the call) and must not
 * change until the run has finished on the stream (sprun_session_synchronize,
 * or any host-output run, which returns finished). One exception reads
 * device memory from the host: an input whose values decide shapes (a
 * Reshape target fed at run time) is copied back, synchronously, when a plan
 * is built and at each run to find the plan for its values. CPU sessions
 * refuse device inputs with SPRUN_ERR_INVALID_ARGUMENT naming the input. */
SPRUN_API sprun_code sprun_session_run(sprun_session *sess, const sprun_tensor *inputs, size_t n_inputs);

/* Where the outputs of the session's next runs go. SPRUN_MEMORY_HOST (the
 * default): every output is copied to session-owned host memory and the run
 * returns with its work finished. SPRUN_MEMORY_DEVICE (CUDA sessions only;
 * CPU sessions refuse it with SPRUN_ERR_INVALID_ARGUMENT): outputs stay in
 * the plan's device memory, no device-to-host copy is made, and the run
 * returns as soon as its work is enqueued on the session's stream, without
 * synchronizing (except while profiling, whose timings need it). The caller
 * then either calls sprun_session_synchronize before touching the outputs
 * from the host or another stream, or consumes them with work enqueued on
 * the session's stream (its own, given with sprun_session_set_stream).
 * CUDA failures that happen after the run returned are reported by the next
 * sprun_session_synchronize or run. Setting HOST is accepted by every
 * backend. Takes effect at the next run; the views of the last run keep the
 * memory they were made in. Not thread-safe per session. */
SPRUN_API sprun_code sprun_session_set_output_memory(sprun_session *sess, sprun_memory memory);

/* Waits until every run of the session has finished on its stream (the one
 * given with sprun_session_set_stream, else the session's own) and reports a
 * CUDA failure that happened meanwhile (SPRUN_ERR_BACKEND, naming the call).
 * CPU sessions return SPRUN_OK at once (their runs are synchronous). Not
 * thread-safe per session. */
SPRUN_API sprun_code sprun_session_synchronize(sprun_session *sess);

/* View of output idx of the last run, if it succeeded, owned by the
 * session: out->memory says where data is. Host views (the default) are
 * valid until the next run, sprun_session_set_stream or destroy. Device views
 * (after sprun_session_set_output_memory(DEVICE)) point into the plan's
 * device memory, row-major in the dtype out->dtype says (fp32 outputs stay
 * fp32 under fp16 compute: the bytes a host view would hold); they are
 * read-only, complete once the run has finished on the session's stream, and
 * valid until the next run's work on that stream overwrites them, or
 * sprun_session_set_stream or destroy frees them. After a failed run (bad
 * inputs included) there is no output to view until a run succeeds. */
SPRUN_API sprun_code sprun_session_output(const sprun_session *sess, size_t idx, sprun_tensor *out);

/* Statistics of the current plan. */
typedef struct sprun_plan_stats {
    size_t arena_bytes;      /* peak activation memory (one arena) */
    size_t weight_bytes;     /* weights as stored on the backend */
    size_t n_nodes;          /* nodes executed per run after folding */
    size_t n_folded;         /* nodes folded to constants for these shapes */
} sprun_plan_stats;
SPRUN_API sprun_code sprun_session_plan_stats(const sprun_session *sess, sprun_plan_stats *stats);

/* Per-node profile of the last run (when enabled before the run): time in
 * microseconds for node idx (after folding), its description in buf. */
SPRUN_API sprun_code sprun_session_set_profiling(sprun_session *sess, int32_t enabled);
SPRUN_API size_t sprun_session_profile_count(const sprun_session *sess);
SPRUN_API sprun_code sprun_session_profile_entry(const sprun_session *sess, size_t idx, double *usec, char *buf,
                                                 size_t buflen);

/* The same profile entry as structured data, for tools that compare plans
 * (sprun --compare). Strings are owned by the session and valid until the
 * next run. */
typedef struct sprun_layer_profile {
    const char *node_name;
    const char *op_type;
    const char *kernel;     /* "dense", "csr", "bsr", "2:4", ... ; NULL for ops without a weight */
    double usec;            /* measured in the last profiled run */
    double predicted_usec;  /* cost model's prediction for the chosen kernel; 0 if none */
    int64_t m, k, n;        /* GEMM view of a weight layer; 0 otherwise */
    int32_t weight_index;   /* for sprun_model_weight_info; -1 if the node has no analysed weight */
} sprun_layer_profile;
SPRUN_API sprun_code sprun_session_profile_layer(const sprun_session *sess, size_t idx, sprun_layer_profile *out);

#ifdef __cplusplus
}
#endif
#endif /* SPRUN_H */
