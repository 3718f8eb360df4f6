/* cost_model.c - time = W / (P * E) per resource; the larger term wins. */
#include "runtime/cost_model.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * CPU (fp32, OpenBLAS dense vs sprun's CPU sparse kernels), calibrated with
 * bench/cpu/cpu_spmm_bench on the 2-core CI machine, quiet, 2026-11-25:
 * OpenBLAS sgemm reached 72-150 GFLOP/s on ResNet-50/BERT GEMM shapes
 * (E ~ 0.65 of the 2-core AVX2 FMA peak of ~200 GFLOP/s); the CSR kernel
 * 17-40 GFLOP/s of useful (nonzero) work (E ~ 0.17), so CSR starts to win
 * below ~26 % density. Both run on the same FMA units, so P is shared.
 * BSR and 2:4 on the CPU decode each row into (column, value) pairs and run
 * the same loop as CSR, so they get CSR's efficiency (measured: ResNet-50
 * with 70 % 16x16 blocks ran 0.83x dense when BSR was credited more).
 */
const sp_cost_device sp_cost_cpu_generic = {
    .name = "cpu",
    .bandwidth = 20e9,
    .dense_peak = 200e9,
    .sparse24_peak = 0,
    .simt_peak = 200e9,
    .e_dense = 0.65,
    .e_csr = 0.17,
    .e_bsr = {0.17, 0.17, 0.17, 0.17},
    .e_24 = 0.17,
    .e_mem = 0.6,
    .e_mem_sparse = 0.5,
    .overhead_s = 5e-6,
    .overhead_sparse_s = 10e-6,
    .csr_expands = 0,
};

/*
 * H100 SXM, fp16 in / fp32 accumulate. P from the datasheet (dense tensor
 * cores 989 TFLOP/s, 2:4 sparse tensor cores twice that, fp16 FMA 134
 * TFLOP/s); bandwidth measured here (2.95 TB/s device copy). E measured by
 * bench/spmm on the lent H100, 2026-11-25 (bench/results/spmm-h100-
 * 2026-11-25.md), M = K = 4096:
 *   cuBLAS: 177.9 us at N = 4096 (773 TFLOP/s, E 0.78); 18.5 us at N = 16,
 *           62 % of the bandwidth floor.
 *   sprun 2:4 (wgmma.sp kernel, spmm_24_sm90.cu, bench/results/spmm-h100-
 *           2026-11-25-wgmma.md, commit f5b6f1e): 151.9 us at N = 4096 ->
 *           452 TFLOP/s useful, E 0.46 of the sparse peak on half the flops
 *           (0.44 at N = 1024); 15.7 us at N = 128 -> 45 % of its bandwidth
 *           floor, 30-83 % on ResNet-50 / BERT layers with N >= 1568
 *           (e_mem_24 0.45). The mma.sp kernel it replaced (now used off
 *           sm_90 and for unaligned X only) had
 *           E 0.15 and 17 % of the floor at N = 128.
 *   sprun BSR32 at 90 %: 333.9 us at N = 4096 -> 41 TFLOP/s useful, E 0.042;
 *           after the launch-configuration sweep of 2026-11-26 (bench/results/
 *           bsr-sweep-h200-2026-11-26.md, measured on an H200, whose compute
 *           is the H100's; not re-measured on an H100): 163.6 us, E 0.085 at
 *           90 %, 0.10 at 50-70 % (e_bsr[32] 0.09); BSR16 E 0.043-0.049.
 *           The grouped BSR16 configurations (a CTA per group of 4 block
 *           rows, bench/results/bsr-grouped-h100-2026-11-27.md, H100):
 *           E 0.064 / 0.060 / 0.045 at 50 / 70 / 90 %, N = 4096
 *           (e_bsr[16] 0.055). The sm_90 wgmma kernel (spmm_bsr_sm90.cu,
 *           bench/results/bsr-wgmma-h100-2026-11-27.md), N = 4096: BSR32
 *           E 0.36 / 0.25 / 0.14 at 50 / 70 / 90 % (190.7, 164.9, 102.8 us),
 *           BSR16 E 0.17 / 0.12 / 0.05 (404, 361, 277 us): each chunk (a
 *           block column of 256 rows) costs about the same whatever its
 *           blocks, so E falls with density; e_bsr takes the 70 % values,
 *           0.25 and 0.11.
 *   sprun CSR (tensor-core path): ~1360 us at N = 4096 at 70 % and at 90 %:
 *           flat in density, i.e. dense work at E ~ 0.10 (the mma.sync
 *           kernel). The wgmma kernel (spmm_csr_sm90.cu, bench/results/
 *           csr-wgmma-h100-2026-11-27.md): 54-57 us at N = 1024 from 50 to
 *           98 %, dense work at E 0.61-0.64 (e_csr 0.55 allows for other
 *           shapes). Below N = 256 it is bound by expanding the tiles
 *           (27-31 us at N = 128, flat in density): counted as csr_tile_s
 *           = 1.6 ns per 16 x 64 tile and per 512 columns of X, at least
 *           one pass (16384 tiles: 26 us up to N = 512; above, the
 *           arithmetic term is the larger: 63 us at N = 1024, 253 us at
 *           N = 4096 against 54-57 and 210-268 measured; at N = 16, 17-22
 *           us measured, it errs towards dense). Plans still
 *           time the layer against dense before they take it
 *           (MEASURE_MARGIN, runtime/cuda/cuda_sparse.c).
 * So on this GPU the sparse kernels win only where they are memory-bound
 * (small N) at high sparsity; the selector keeps the rest dense.
 */
double sp_cost_memory_pass_s(const sp_cost_device *dev, double bytes)
{
    return bytes / (dev->bandwidth * dev->e_mem) + dev->overhead_s;
}

double sp_cost_unfused_epilogue_s(const sp_cost_device *dev, int64_t m, int64_t n, size_t value_bytes)
{
    return sp_cost_memory_pass_s(dev, 2.0 * (double)m * (double)n * (double)value_bytes);
}

const sp_cost_device sp_cost_h100_fp16 = {
    .name = "h100-fp16",
    .bandwidth = 2.95e12,
    .dense_peak = 989e12,
    .sparse24_peak = 1979e12,
    .simt_peak = 134e12,
    .e_dense = 0.78,
    .e_csr = 0.55,
    .e_bsr = {0.02, 0.03, 0.11, 0.25},
    .e_24 = 0.44,
    .e_mem = 0.62,
    .e_mem_sparse = 0.30,
    .e_mem_24 = 0.45,
    .overhead_s = 4e-6,
    .overhead_sparse_s = 6e-6,
    .csr_expands = 1,
    .csr_tile_s = 1.6e-9,
};

/*
 * H200 SXM, fp16 in / fp32 accumulate: the H100's compute (same GH100 chip,
 * same peaks) with HBM3e. Measured by bench/spmm on the lent H200,
 * 2026-11-28 (bench/results/spmm-h200-2026-11-28-e4cf102.md), M = K = 4096,
 * the same method as the H100's:
 *   bandwidth: 4.237 TB/s, the device-to-device copy of that call.
 *   cuBLAS: 178.74 us at N = 4096 (769 TFLOP/s, E 0.78, as on the H100);
 *           15.52 / 17.28 us at N = 16 / 128: above overhead_s, 0.69 / 0.63
 *           of the bandwidth (e_mem 0.66).
 *   sprun 2:4: 531 / 479 TFLOP/s useful at N = 4096 / 1024 (E 0.54 / 0.48 of
 *           the sparse peak on half the flops: e_24 0.50); 12.88 / 14.98 us
 *           at N = 16 / 128, above overhead_sparse_s 0.66 / 0.55 of the
 *           bandwidth (e_mem_24 0.60).
 *   sprun BSR (the tall-unit kernel from N = 33, spmm_bsr_tall_sm90.cu),
 *           N = 4096, 70 % block sparsity: 32-wide 282 TFLOP/s useful (E 0.29;
 *           0.37 at 50 %, 0.19 at 90 %), 16-wide 138 (E 0.14; 0.22, 0.08).
 *           Memory-bound at N = 16, 32-wide blocks at 50 / 70 / 90 %: 0.40 /
 *           0.33 / 0.22 of the bandwidth above overhead_sparse_s
 *           (e_mem_sparse 0.32).
 *   sprun CSR (tensor-core path): dense work at E 0.62 / 0.66 at N = 1024 /
 *           4096, flat in density (e_csr 0.55 as on the H100); 26.7-27.3 us
 *           at N = 128 from 70 to 98 %: csr_tile_s = (27 - 6) us / 16384
 *           tiles = 1.3 ns.
 */
const sp_cost_device sp_cost_h200_fp16 = {
    .name = "h200-fp16",
    .bandwidth = 4.237e12,
    .dense_peak = 989e12,
    .sparse24_peak = 1979e12,
    .simt_peak = 134e12,
    .e_dense = 0.78,
    .e_csr = 0.55,
    .e_bsr = {0.02, 0.03, 0.14, 0.29},
    .e_24 = 0.50,
    .e_mem = 0.66,
    .e_mem_sparse = 0.32,
    .e_mem_24 = 0.60,
    .overhead_s = 4e-6,
    .overhead_sparse_s = 6e-6,
    .csr_expands = 1,
    .csr_tile_s = 1.3e-9,
};

/* Dense fp16 tensor-core flops (fp32 accumulation) per SM per clock, by
 * architecture, from the datasheets: V100 80 SMs x 1.53 GHz x 1024 = 125
 * TFLOP/s, T4 512, A100 2048 (312 TFLOP/s), the sm_86/89 parts 1024 (L40S
 * 362 TFLOP/s; GeForce boards run fp32 accumulation at half that), H100
 * 4096 (989 TFLOP/s SXM, 756 PCIe), B200 8192. */
static double tc_flops_per_sm_clock(int major, int minor)
{
    if (major >= 10)
        return 8192;
    if (major == 9)
        return 4096;
    if (major == 8)
        return minor == 0 ? 2048 : 1024;
    if (major == 7)
        return minor == 0 ? 1024 : 512;
    return 0; /* no tensor cores: the dense path runs on the FMA units */
}

/* The GPUs the built-in tables were measured on: a name tag, their SM count
 * and nominal memory bandwidth (H100 SXM5 80 GB: 3.35 TB/s; H200 SXM: 4.8). */
static const struct {
    const char *tag;
    const sp_cost_device *table;
    int sm_count;
    double nominal_bw;
} measured_on[] = {
    {"H200", &sp_cost_h200_fp16, 132, 4.8e12},
    {"H100", &sp_cost_h100_fp16, 132, 3.35e12},
};

void sp_cost_device_for_gpu(const sp_cost_gpu *gpu, sp_cost_device *out, char *note, size_t note_len)
{
    const char *name = gpu && gpu->name ? gpu->name : "";
    const int major = gpu ? gpu->cc_major : 0, minor = gpu ? gpu->cc_minor : 0;
    const int sms = gpu ? gpu->sm_count : 0;
    const double nominal = gpu && gpu->mem_clock_hz > 0 && gpu->bus_width_bits > 0
                               ? 2.0 * gpu->mem_clock_hz * gpu->bus_width_bits / 8.0
                               : 0;
    int k = -1;
    for (int i = 0; i < (int)(sizeof measured_on / sizeof measured_on[0]) && k < 0; i++)
        if (strstr(name, measured_on[i].tag))
            k = i;
    /* the board the table was measured on (what is unknown is taken to
     * match): same SM count, bandwidth within 15 % */
    if (k >= 0 && (sms <= 0 || sms == measured_on[k].sm_count) &&
        (nominal <= 0 || fabs(nominal / measured_on[k].nominal_bw - 1.0) < 0.15)) {
        *out = *measured_on[k].table;
        if (note && note_len)
            snprintf(note, note_len, "%s: built-in table for '%s'", out->name, name);
        return;
    }
    /* Any other GPU: peaks from its properties, efficiencies of the same
     * kernels where they were measured (a variant of a measured GPU: its
     * table's; else the H100's). The copy bandwidth the H100 and the H200
     * reach is 0.88 of their memory's nominal rate. */
    *out = k >= 0 ? *measured_on[k].table : sp_cost_h100_fp16;
    const double sm_clock = sms > 0 && gpu->clock_hz > 0 ? sms * gpu->clock_hz : 0;
    const double tc = tc_flops_per_sm_clock(major, minor);
    /* fp16 FMA: 128 lanes x 2 flops x 2 halves per SM and clock */
    if (sm_clock > 0) {
        out->simt_peak = sm_clock * 512.0;
        out->dense_peak = tc > 0 ? sm_clock * tc : out->simt_peak;
        /* sparse tensor cores (mma.sp) from Ampere on */
        out->sparse24_peak = major >= 8 && tc > 0 ? 2.0 * out->dense_peak : 0;
    }
    if (nominal > 0)
        out->bandwidth = 0.88 * nominal;
    if (major < 9) {
        /* no wgmma: the mma.sync / mma.sp kernels, with what they reached on
         * the H100 (see its table): 2:4 E 0.15 and about 0.2 of the
         * bandwidth, BSR 0.055 / 0.10 (16- / 32-wide blocks), CSR's dense
         * work 0.10 */
        out->e_24 = 0.15;
        out->e_mem_24 = 0.2;
        out->e_bsr[2] = 0.055;
        out->e_bsr[3] = 0.10;
        out->e_csr = 0.10;
    }
    snprintf(out->name, sizeof out->name, "derived-sm%d%d", major, minor);
    if (note && note_len)
        snprintf(note, note_len,
                 "%s: no built-in table for '%s'%s; peaks from its properties (%.0f TFLOP/s dense fp16, %.2f TB/s), "
                 "efficiencies of the same kernels on the %s: a calibration file (bench/calibration) makes the "
                 "choices accurate",
                 out->name, name, k >= 0 ? " (not the board the table of its name was measured on)" : "",
                 out->dense_peak / 1e12, out->bandwidth / 1e12, k >= 0 ? measured_on[k].tag : "H100");
}

static int block_index(int block)
{
    switch (block) {
    case 4: return 0;
    case 8: return 1;
    case 16: return 2;
    case 32: return 3;
    default: return -1;
    }
}

static int csr_split24_estimate(const sp_cost_device *dev, const sp_cost_problem *p, sp_cost_estimate *out);

int sp_cost_estimate_format(const sp_cost_device *dev, const sp_cost_problem *p, sprun_format f, int block,
                            sp_cost_estimate *out)
{
    double m = (double)p->m, k = (double)p->k, n = (double)p->n, vb = (double)p->value_bytes;
    double dense_flops = 2.0 * m * k * n;
    double act_bytes = (k * n + m * n) * vb; /* X read once, Y written once */
    double peak, eff, flops, wbytes;
    memset(out, 0, sizeof *out);
    out->format = f;
    switch (f) {
    case SPRUN_FORMAT_DENSE:
        flops = dense_flops;
        wbytes = m * k * vb;
        peak = dev->dense_peak;
        eff = dev->e_dense;
        break;
    case SPRUN_FORMAT_CSR: {
        double nnz = p->density * m * k;
        flops = dev->csr_expands ? dense_flops : 2.0 * nnz * n;
        /* tensor-core tiles (spmm_csr.cu): a 128-byte bitmap per 16 x 64
         * tile + the values, or below SP_CSR_PAIR_TILES_BELOW a 64-byte one
         * + every pair of adjacent values holding a nonzero (for a random
         * pattern 1 - (1 - density)^2 of the pairs); CUDA-core CSR: value +
         * 2- or 4-byte column */
        if (!dev->csr_expands)
            wbytes = nnz * (vb + (p->k <= 65536 ? 2.0 : 4.0)) + (m + 1) * 4.0;
        else if (p->density < SP_CSR_PAIR_TILES_BELOW)
            wbytes = m * k / 16.0 + m * k / 2.0 * (1.0 - (1.0 - p->density) * (1.0 - p->density)) * 2.0 * vb;
        else
            wbytes = m * k / 8.0 + nnz * vb;
        peak = dev->csr_expands ? dev->dense_peak : dev->simt_peak;
        eff = dev->e_csr;
        break;
    }
    case SPRUN_FORMAT_BSR: {
        int bi = block_index(block);
        if (bi < 0)
            return 0;
        double kept = 1.0 - p->zero_block_frac[bi]; /* fraction of blocks stored */
        flops = dense_flops * kept;
        wbytes = m * k * kept * vb + (m / block + 1) * 4.0 + m * k * kept / ((double)block * block) * 4.0;
        peak = dev->dense_peak;
        eff = dev->e_bsr[bi];
        out->block = block;
        break;
    }
    case SPRUN_FORMAT_24:
        if (!p->is_24)
            return 0;
        flops = dense_flops * 0.5;
        wbytes = m * k * 0.5 * vb + m * k / 8.0; /* values + 2 bits per kept value */
        peak = dev->sparse24_peak > 0 ? dev->sparse24_peak / 2.0 : dev->simt_peak;
        eff = dev->e_24;
        break;
    default: return 0;
    }
    out->work_flops = flops;
    out->work_bytes = wbytes + act_bytes;
    int dense = f == SPRUN_FORMAT_DENSE;
    out->t_compute = flops / (peak * eff);
    /* CSR on tensor cores: expanding the tiles is instruction work of the
     * SMs too, and below N = 512 the larger part (see csr_tile_s) */
    if (f == SPRUN_FORMAT_CSR && dev->csr_expands && dev->csr_tile_s > 0) {
        double tiles = ceil(m / 16.0) * ceil(k / 64.0);
        out->t_compute = fmax(out->t_compute, tiles * dev->csr_tile_s * fmax(1.0, n / 512.0));
    }
    double e_mem = dense ? dev->e_mem : dev->e_mem_sparse;
    if (f == SPRUN_FORMAT_24 && dev->e_mem_24 > 0)
        e_mem = dev->e_mem_24;
    out->t_memory = out->work_bytes / (dev->bandwidth * e_mem);
    out->t_total = fmax(out->t_compute, out->t_memory) + (dense ? dev->overhead_s : dev->overhead_sparse_s);
    /* CSR: the faster of its paths, the split one included where it applies */
    sp_cost_estimate split;
    if (f == SPRUN_FORMAT_CSR && csr_split24_estimate(dev, p, &split) && split.t_total < out->t_total)
        *out = split;
    return 1;
}

/* Efficiency of the CSR split path's overflow pass on the CUDA cores
 * (spmm_csr_split24.cu's own kernel: a gather of X per nonzero, fp32 FMA),
 * against simt_peak. Calibrated on the H200 (M = K = N = 4096, "overflow
 * pass alone" in bench/results/csr-split24-gather-h200-2026-11-29.md):
 * 54.7 / 32.4 / 26.4 us at 0.1 / 0.01 / 0.002 % overflow, against 54.7 /
 * 30 / 30 from this and the pass's bytes; plan-time tuning times the path
 * anyway. (0.25 before: 30 us at 0.1 %.) */
#define SPLIT24_OVERFLOW_E 0.021

/* The CSR split path (kernels/cuda/spmm_csr_split24.cu), in the form that
 * runs (the fused one wherever the upload builds it: measured faster than
 * the two-pass form at every sparsity where it fits at M = K = 4096):
 *  - two-pass: the overflow pass streams X in and Y out (its own kernel;
 *    plus the overflow's values and columns) at the dense kernels' memory
 *    efficiency, its FMAs on the CUDA cores, then the 2:4 part's estimate
 *    with Y read back as its residual;
 *  - fused (N >= 512, 128 x 128 tiles for every SM, and every 64-row x
 *    128-column window's overflow likely to fit the upload's 32 columns:
 *    for a random pattern at most 16 overflow entries expected per
 *    window): the 2:4 part's estimate, its time grown by 0.06 + 0.41 x
 *    the share of windows holding overflow, 1 - exp(-8192 x overflow)
 *    (fitted to H200, M = K = 4096, N = 4096: 1.12 / 1.30 / 1.47x the 2:4
 *    part at 98 / 95 / 90 % measured, 1.12 / 1.29 / 1.47x by this formula;
 *    N = 1024 1.07 / 1.26 / 1.44x,
 *    bench/results/csr-split24-gather-h200-2026-11-29.md). Where its tiles
 *    do not fill the GPU this estimates the two-pass form; the runtime
 *    runs the fused one there only where its tiles fill half the GPU or
 *    K <= 768 (spmm_csr_split24.cu's fused_runs; both forms were slower
 *    than dense on every such shape measured,
 *    bench/results/csr-split24-underfill-h200-2026-11-29.md).
 * 0 where the table has no sparse tensor cores or no tensor-core CSR, or
 * the weight's overflow is unknown or past SP_SPLIT24_MAX_OVERFLOW. */
static int csr_split24_estimate(const sp_cost_device *dev, const sp_cost_problem *p, sp_cost_estimate *out)
{
    if (!dev->csr_expands || dev->sparse24_peak <= 0 || !p->overflow24_known || p->value_bytes != 2 ||
        p->overflow24 > SP_SPLIT24_MAX_OVERFLOW)
        return 0;
    sp_cost_problem q = *p;
    q.is_24 = 1;
    if (!sp_cost_estimate_format(dev, &q, SPRUN_FORMAT_24, 0, out))
        return 0;
    const double m = (double)p->m, k = (double)p->k, n = (double)p->n, vb = (double)p->value_bytes;
    const double per_window = 8192.0 * p->overflow24;
    /* the fused kernel's tiles are 128 x 128 or 128 x 256, without split-K:
     * counted only where 128 x 128 tiles fill the GPU once (132 SMs, the
     * H100's and the H200's; the table does not hold an SM count).
     * ResNet-50's 64 x 64 x 3136 layer at batch 1 took 9.0 us on the split
     * path against dense's 5.9 (bench/results/sparse-models-h200-2026-11-29-7d92d19.md) */
    const double tiles128 = ceil(m / 128.0) * ceil(n / 128.0);
    out->format = SPRUN_FORMAT_CSR;
    if (p->n >= 512 && per_window <= 16.0 && tiles128 >= 132.0) { /* fused */
        const double busy = 1.0 - exp(-per_window);
        /* the work: the dense k16 wgmmas of the busy windows (the time's fit is not work) */
        out->work_flops += busy * 2.0 * m * 16.0 * n * ceil(k / 128.0);
        out->t_compute *= 1.0 + 0.06 + 0.41 * busy;
        out->t_total = fmax(out->t_compute, out->t_memory) + dev->overhead_sparse_s;
        return 1;
    }
    const double e_mem_24 = dev->e_mem_24 > 0 ? dev->e_mem_24 : dev->e_mem_sparse;
    const double res_bytes = m * n * vb; /* the 2:4 part reads the overflow's Y */
    out->work_bytes += res_bytes;
    out->t_memory += res_bytes / (dev->bandwidth * e_mem_24);
    out->t_total = fmax(out->t_compute, out->t_memory) + dev->overhead_sparse_s;
    const double onnz = p->overflow24 * m * k;
    const double bytes = (k * n + m * n) * vb + onnz * (vb + 2.0) + (m + 1) * 4.0;
    const double flops = 2.0 * onnz * n;
    out->work_flops += flops;
    out->work_bytes += bytes;
    out->t_total += fmax(bytes / (dev->bandwidth * dev->e_mem), flops / (dev->simt_peak * SPLIT24_OVERFLOW_E)) +
                    dev->overhead_sparse_s;
    return 1;
}

static const char *fmt_name(sprun_format f)
{
    switch (f) {
    case SPRUN_FORMAT_DENSE: return "dense";
    case SPRUN_FORMAT_CSR: return "csr";
    case SPRUN_FORMAT_BSR: return "bsr";
    case SPRUN_FORMAT_24: return "2:4";
    default: return "auto";
    }
}

int sp_cost_best_sparse(const sp_cost_device *dev, const sp_cost_problem *p, unsigned allowed, int min_block,
                        sp_cost_estimate *best)
{
    sp_cost_estimate e;
    int found = 0;
    if ((allowed & (1u << SPRUN_FORMAT_CSR)) && sp_cost_estimate_format(dev, p, SPRUN_FORMAT_CSR, 0, &e)) {
        *best = e;
        found = 1;
    }
    if (allowed & (1u << SPRUN_FORMAT_BSR))
        for (int blk = 4; blk <= 32; blk *= 2)
            if (blk >= min_block && sp_cost_estimate_format(dev, p, SPRUN_FORMAT_BSR, blk, &e) &&
                (!found || e.t_total < best->t_total)) {
                *best = e;
                found = 1;
            }
    if ((allowed & (1u << SPRUN_FORMAT_24)) && sp_cost_estimate_format(dev, p, SPRUN_FORMAT_24, 0, &e) &&
        (!found || e.t_total < best->t_total)) {
        *best = e;
        found = 1;
    }
    return found;
}

sprun_format sp_cost_choose(const sp_cost_device *dev, const sp_cost_problem *p, unsigned allowed,
                            sp_cost_estimate *best, sp_cost_estimate *dense, char *reason, size_t reason_len)
{
    sp_cost_estimate d, e;
    sp_cost_estimate_format(dev, p, SPRUN_FORMAT_DENSE, 0, &d);
    sp_cost_estimate b = d;
    if (sp_cost_best_sparse(dev, p, allowed, 4, &e) && e.t_total < b.t_total)
        b = e;
    if (best)
        *best = b;
    if (dense)
        *dense = d;
    if (reason && reason_len) {
        const char *bound = b.t_compute >= b.t_memory ? "compute" : "memory";
        if (b.format == SPRUN_FORMAT_DENSE)
            snprintf(reason, reason_len, "dense %.1f us (%s-bound); no sparse format predicted faster",
                     d.t_total * 1e6, bound);
        else
            snprintf(reason, reason_len, "%s%s%.0d %.1f us vs dense %.1f us (%s-bound), predicted R3 %.2f",
                     fmt_name(b.format), b.block ? " " : "", b.block, b.t_total * 1e6, d.t_total * 1e6, bound,
                     d.t_total / b.t_total);
    }
    return b.format;
}

/* Field table for the calibration file: name, offset, count of doubles. */
static const struct {
    const char *key;
    size_t off;
    int count;
} fields[] = {
    {"bandwidth", offsetof(sp_cost_device, bandwidth), 1},
    {"dense_peak", offsetof(sp_cost_device, dense_peak), 1},
    {"sparse24_peak", offsetof(sp_cost_device, sparse24_peak), 1},
    {"simt_peak", offsetof(sp_cost_device, simt_peak), 1},
    {"e_dense", offsetof(sp_cost_device, e_dense), 1},
    {"e_csr", offsetof(sp_cost_device, e_csr), 1},
    {"e_bsr", offsetof(sp_cost_device, e_bsr), 4},
    {"e_24", offsetof(sp_cost_device, e_24), 1},
    {"e_mem", offsetof(sp_cost_device, e_mem), 1},
    {"e_mem_sparse", offsetof(sp_cost_device, e_mem_sparse), 1},
    {"e_mem_24", offsetof(sp_cost_device, e_mem_24), 1},
    {"overhead_s", offsetof(sp_cost_device, overhead_s), 1},
    {"overhead_sparse_s", offsetof(sp_cost_device, overhead_sparse_s), 1},
    {"csr_tile_s", offsetof(sp_cost_device, csr_tile_s), 1},
};

int sp_cost_device_load(const char *path, sp_cost_device *dev, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open calibration file '%s'", path);
        return -1;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char key[64];
        int used = 0;
        if (sscanf(line, " %63[A-Za-z0-9_] = %n", key, &used) < 1 || used == 0) {
            if (strspn(line, " \t\r\n") != strlen(line)) {
                snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
                rc = -1;
            }
            continue;
        }
        const char *v = line + used;
        if (!strcmp(key, "name")) {
            char name[sizeof dev->name];
            if (sscanf(v, "%31s", name) != 1) {
                snprintf(err, errlen, "%s:%d: name needs a value", path, lineno);
                rc = -1;
            } else
                snprintf(dev->name, sizeof dev->name, "%s", name);
            continue;
        }
        if (!strcmp(key, "csr_expands")) {
            dev->csr_expands = atoi(v) != 0;
            continue;
        }
        int found = 0;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !found; i++) {
            if (strcmp(key, fields[i].key))
                continue;
            found = 1;
            double *dst = (double *)((char *)dev + fields[i].off);
            for (int k = 0; k < fields[i].count; k++) {
                char *end;
                double x = strtod(v, &end);
                if (end == v || !(x >= 0) || !isfinite(x)) {
                    snprintf(err, errlen, "%s:%d: '%s' needs %d non-negative number%s", path, lineno, key,
                             fields[i].count, fields[i].count > 1 ? "s" : "");
                    rc = -1;
                    break;
                }
                dst[k] = x;
                v = end;
            }
        }
        if (!found) {
            snprintf(err, errlen, "%s:%d: unknown key '%s'", path, lineno, key);
            rc = -1;
        }
    }
    fclose(f);
    /* efficiencies of zero would divide by zero in the estimates */
    if (rc == 0 && (dev->e_dense <= 0 || dev->e_csr <= 0 || dev->e_24 <= 0 || dev->e_mem <= 0 ||
                    dev->e_mem_sparse <= 0 || dev->bandwidth <= 0 || dev->dense_peak <= 0 || dev->simt_peak <= 0)) {
        snprintf(err, errlen, "%s: peaks, bandwidth and efficiencies must be positive", path);
        rc = -1;
    }
    return rc;
}

void sp_cost_device_write(const sp_cost_device *dev, FILE *f)
{
    fprintf(f, "name = %s\n", dev->name);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const double *src = (const double *)((const char *)dev + fields[i].off);
        fprintf(f, "%s =", fields[i].key);
        for (int k = 0; k < fields[i].count; k++)
            fprintf(f, " %.6g", src[k]);
        fprintf(f, "\n");
    }
    fprintf(f, "csr_expands = %d\n", dev->csr_expands);
}
