/*
 * spmm_bsr_sm90.h - what the BSR upload and dispatch (spmm_bsr.cu) share
 * with the sm_90 wgmma BSR kernels (spmm_bsr_sm90.cu on blocks,
 * spmm_bsr_tall_sm90.cu on 64-row units): the swizzle of the weight blocks
 * as stored, the chunk list's feed, and the launchers.
 */
#ifndef SPRUN_SPMM_BSR_SM90_H
#define SPRUN_SPMM_BSR_SM90_H

#include "kernels/cuda/spmm_common.cuh"

namespace spmm {

/* A tile of bs fp16 columns (rows 2 * bs bytes apart, the tile aligned to
 * 1024 bytes) in the swizzle TMA writes and wgmma reads for that row width
 * (32, 64, 128 bytes for bs = 16, 32, 64): 16-byte piece c of row r lies at
 * piece c ^ bsr_wg_swizzle(bs, r) of the row. The upload stores W's blocks
 * so; the kernel's X chunks arrive so from TMA. */
__host__ __device__ constexpr int bsr_wg_swizzle(int bs, int r) {
    return bs == 16 ? (r >> 2) & 1 : bs == 32 ? (r >> 1) & 3 : r & 7;
}

/* Whether the sm_90 layout of bs-wide blocks stores pairs of block rows
 * whole (spmm_cuda.h, sp_cuda_bsr: wg), so that the kernel issues one
 * m64n(2 bs) wgmma per pair: for 16-wide blocks, whose m64n16k16 wgmmas
 * cost about what wider ones do, 1.08-1.27x faster at N >= 128 although
 * half of a pair may be zeros (H100,
 * bench/results/bsr-wgmma-ss-pair-h100-2026-11-28.md, call 4). At bs = 32
 * the same was level with single blocks. */
__host__ __device__ constexpr bool bsr_wg_pair(int bs) { return bs == 16; }

/* What a launch of either sm_90 BSR kernel passes besides X's tensor map
 * (one of the weight's sp_cuda_bsr_units) */
struct BsrWgParams {
    const uint4 *blocks;
    const int4 *chunks;
    const int32_t *gptr, *gorder;
};

/* A warp's view of its CTA's chunk list (the sm_90 BSR kernels' producers,
 * and the consumers of spmm_bsr_sm90.cu): lane l holds chunk base + l of
 * the current batch of 32 and of the next (loaded a batch ahead), so a
 * chunk's column, mask and offset come from a shuffle, not from a global
 * load on the pipeline's critical path (one per chunk had left the
 * producer a memory latency per chunk). Every lane calls at(), with s
 * non-decreasing within base .. base + 63. */
struct ChunkFeed {
    const int4 *ch;
    int nk, base;
    int4 cur, nxt;
    __device__ int4 ld(int i) const { return i < nk ? __ldg(ch + i) : make_int4(0, 0, 0, 0); }
    __device__ void start(const int4 *c, int n, int lane) {
        ch = c;
        nk = n;
        base = 0;
        cur = ld(lane);
        nxt = ld(32 + lane);
    }
    __device__ int4 at(int s, int lane) {
        if (s - base >= 32) {
            cur = nxt;
            base += 32;
            nxt = ld(base + 32 + lane);
        }
        const int i = s - base;
        return make_int4(__shfl_sync(0xffffffffu, cur.x, i), __shfl_sync(0xffffffffu, cur.y, i),
                         __shfl_sync(0xffffffffu, cur.z, i), 0);
    }
};

/* launch configurations of run_bsr_sm90: 0 = two consumer warpgroups (CTA
 * tile 256 rows of W x 128 rows of X), 1 = one (256 x 64), two CTAs per SM */
constexpr int kBsrWgCfgs = 2;

/* Y = act(X W^T + ...) for w's sm_90 layout (w->wg.blocks set), launch
 * configuration cfg; needs sm90_ok() and X's rows 16-byte aligned
 * (x_vec_ok). Same contract as sp_cuda_bsr_spmm. */
int run_bsr_sm90(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st);

/* launch configurations of run_bsr_tall_sm90 (spmm_bsr_tall_sm90.cu): CTA
 * tile 128 rows of W x 256, 128 or 64 tokens */
constexpr int kBsrTallCfgs = 3;

/* The same for w's tall-unit layout (w->tall.blocks set; else
 * SP_CUDA_E_UNSUPPORTED), launch configuration cfg */
int run_bsr_tall_sm90(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                      sp_cuda_status *st);

} // namespace spmm

#endif
