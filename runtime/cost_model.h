/*
 * cost_model.h - the seed essay's model of sparse vs dense, made explicit.
 *
 * For every resource R (arithmetic, memory traffic) a kernel needs
 *     time_R = W_R / (P_R * E_R)
 * where W_R is the work (flops, bytes), P_R the platform's peak for the
 * unit the kernel uses (dense FMA units / tensor cores, sparse tensor cores,
 * memory bandwidth) and E_R the efficiency that kernel family reaches. The
 * kernel's time is the larger term plus a fixed launch/overhead cost. A
 * sparse format wins only when its work reduction (W_dense / W_sparse)
 * beats its efficiency and peak loss (P_dense*E_dense / P_sparse*E_sparse):
 * the seed's realized reduction R3 = time_dense / time_sparse > 1.
 *
 * P and E come from a per-device table (sp_cost_device) whose numbers are
 * calibrated from bench/ results (the numbers and where they came from are
 * next to each table in cost_model.c).
 */
#ifndef SPRUN_COST_MODEL_H
#define SPRUN_COST_MODEL_H

#include "sprun.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sp_cost_device {
    char name[32];
    double bandwidth;      /* bytes/s, measured (device-to-device copy or STREAM) */
    double dense_peak;     /* flop/s of the dense matrix unit for this precision */
    double sparse24_peak;  /* flop/s of 2:4 sparse tensor cores (counting dense flops / 2), 0 if none */
    double simt_peak;      /* flop/s of plain FMA units (CSR's unit) */
    /* efficiencies E (0..1] reached by each kernel family on large problems */
    double e_dense, e_csr, e_bsr[4] /* blocks 4, 8, 16, 32 */, e_24;
    double e_mem;          /* fraction of bandwidth the dense kernel reaches when memory-bound */
    double e_mem_sparse;   /* same for the sparse kernels (indices, gathers, split-K) */
    double e_mem_24;       /* same for the 2:4 kernel; 0 = e_mem_sparse */
    double overhead_s;     /* fixed per-call cost of the dense kernel (launch, threading) */
    double overhead_sparse_s; /* fixed per-call cost of a sparse kernel */
    /* 1 when the CSR kernel expands tiles into dense tensor-core fragments, so
     * its arithmetic is the dense product's whatever the density (sprun's
     * CSR-TC on the H100: time flat across sparsity), with e_csr measured
     * against dense_peak; 0 when it does 2*nnz*N flops on simt_peak. */
    int csr_expands;
    /* Seconds the CSR tensor-core kernel takes per 16 x 64 tile of W to
     * expand it, for each 512 columns of X (at least one pass): below
     * N = 512 that expansion, not the arithmetic or the bytes, bounds the
     * kernel (0: not counted). */
    double csr_tile_s;
} sp_cost_device;

/* Below this density the CUDA upload stores a CSR weight's tensor-core tiles
 * in the pair layout (kernels/cuda/spmm_csr.cu: a bitmap bit per pair of
 * adjacent columns, each pair holding a nonzero stored whole); at or above
 * it, a bit per position. The cost model counts the bytes of the same one. */
#define SP_CSR_PAIR_TILES_BELOW 0.45

/* The CUDA upload adds the split path to a CSR weight (a 2:4 part plus the
 * overflow, kernels/cuda/spmm_csr_split24.cu) when at most this fraction of
 * its positions overflow 2:4 (a random pattern at about 71 % sparsity or
 * more); the cost model counts the path under the same bound. */
#define SP_SPLIT24_MAX_OVERFLOW 0.02

/* The GEMM a weight takes part in: Y[M, N] = W[M, K] X[K, N]. */
typedef struct sp_cost_problem {
    int64_t m, k, n;
    double density;            /* nonzeros / (m*k) */
    int is_24;                 /* 2:4 along K */
    double zero_block_frac[4]; /* all-zero fraction of 4, 8, 16, 32 blocks */
    size_t value_bytes;        /* 4 (fp32) or 2 (fp16) */
    /* fraction of positions holding a nonzero past the first two of its
     * group of 4 along K (what the CSR split path runs on the CUDA cores),
     * counted only when overflow24_known */
    double overflow24;
    int overflow24_known;
} sp_cost_problem;

typedef struct sp_cost_estimate {
    sprun_format format;
    int block;          /* BSR block size, 0 otherwise */
    double work_flops;  /* W_compute */
    double work_bytes;  /* W_memory */
    double t_compute, t_memory, t_total; /* seconds */
} sp_cost_estimate;

/* The calibrated tables. */
extern const sp_cost_device sp_cost_cpu_generic;
extern const sp_cost_device sp_cost_h100_fp16;
extern const sp_cost_device sp_cost_h200_fp16;

/* What the CUDA backend knows of its GPU when it picks a table
 * (cudaDeviceProp / cudaDeviceGetAttribute). */
typedef struct sp_cost_gpu {
    const char *name;     /* "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;
    int sm_count;
    double clock_hz;      /* peak SM clock */
    double mem_clock_hz;  /* peak memory clock */
    int bus_width_bits;
} sp_cost_gpu;

/* The built-in table for gpu: the H100's or the H200's when its name says
 * so and it is the board the table was measured on (132 SMs, the nominal
 * bandwidth within 15 %), else a table derived from its properties (peaks from SM count x clock
 * x the per-SM rate of its architecture, bandwidth from the memory clock and
 * bus at the fraction the H100 and H200 copies reach) with the efficiencies
 * the same kernels reached on the H100 (or on the H200 for another H200
 * board; below sm_90, those of the mma.sync kernels that run there), named
 * "derived-smXY". Writes into note (may be
 * NULL) one line
 * saying which and why. Never fails; a calibration file read afterwards
 * (sp_cost_device_load) overrides it. */
void sp_cost_device_for_gpu(const sp_cost_gpu *gpu, sp_cost_device *out, char *note, size_t note_len);

/* Reads a calibration file ("key = value" lines, '#' comments; keys are the
 * field names above, e_bsr takes four values) over *dev, which holds the
 * backend's built-in table: keys absent from the file keep their values.
 * Returns 0, or -1 with a message naming the file, line and key. */
int sp_cost_device_load(const char *path, sp_cost_device *dev, char *err, size_t errlen);

/* Writes dev in the same format (the files in bench/calibration/). */
void sp_cost_device_write(const sp_cost_device *dev, FILE *f);

/* Estimate for one format (BSR: block = 4, 8, 16 or 32). Returns 0 when the
 * format cannot hold this weight (2:4 on a non-2:4 weight), 1 otherwise. */
int sp_cost_estimate_format(const sp_cost_device *dev, const sp_cost_problem *p, sprun_format f, int block,
                            sp_cost_estimate *out);

/* Time (s) of a separate elementwise pass over an m x n output (read and
 * write once, at the dense kernels' memory efficiency, plus a launch): what
 * a layer pays when its kernel cannot fuse the layer's activation into its
 * epilogue (cuBLASLt/cuDNN fuse only ReLU; the sparse kernels fuse every
 * activation of the IR). */
double sp_cost_unfused_epilogue_s(const sp_cost_device *dev, int64_t m, int64_t n, size_t value_bytes);

/* Time (s) of a memory-bound helper kernel moving `bytes` (read + written)
 * at the dense kernels' memory efficiency, plus a launch: an activation
 * pass, or the patch gather (im2col) in front of a sparse k x k conv. */
double sp_cost_memory_pass_s(const sp_cost_device *dev, double bytes);

/* The fastest of the allowed sparse formats (bit 1 << format for CSR, BSR,
 * 24; BSR tries the block sizes 4, 8, 16, 32 from min_block up), dense
 * excluded. Returns 0 when none applies (e.g. 24 on a non-2:4 weight). Ties
 * go to the earlier candidate in that order. */
int sp_cost_best_sparse(const sp_cost_device *dev, const sp_cost_problem *p, unsigned allowed, int min_block,
                        sp_cost_estimate *best);

/* Chooses the fastest allowed format (allowed: bit (1 << format) for DENSE,
 * CSR, BSR, 24). Fills *best and a one-line reason ("csr: 0.42 ms vs dense
 * 0.95 ms, R3 2.26") and returns the chosen format. Dense always allowed. */
sprun_format sp_cost_choose(const sp_cost_device *dev, const sp_cost_problem *p, unsigned allowed,
                            sp_cost_estimate *best, sp_cost_estimate *dense, char *reason, size_t reason_len);

#endif
