/*
 * spmm_bsr_tall_sm90.cu - block-sparse SpMM on Hopper's warpgroup tensor
 * cores with W's blocks stacked into 64-row units, each unit wgmma's A
 * operand as stored and X's chunk the B operand (sm_90a).
 *
 * Why a second sm_90 BSR kernel: the first (spmm_bsr_sm90.cu) gives wgmma
 * one block row at a time as its N dimension (16 or 32 features), so it
 * issues many narrow wgmmas, and at N >= 1024 its cost per wgmma
 * instruction, not the tensor-core work, bounds it (BSR32 at 50 %: 0.91x of
 * cuBLAS at N = 4096, H100, bench/results/bsr-wgmma-ss-pair-h100-
 * 2026-11-28.md). Here a unit is 64 / bs block rows of one block column
 * (64 rows x bs columns), stored whole with zeros for its absent blocks,
 * and every wgmma is m64 x n(BN tokens) x k16, the dense GEMM's shape: the
 * kernel is gemm_sm90.cu's that skips the units with no block. Tensor-core
 * work is the stored units' (a 32-wide block at 50 % random block sparsity
 * leaves a quarter of the units empty, a 16-wide one 6 %; at 70 % 49 % and
 * 24 %; at 90 % 81 % and 66 %).
 *  - Layout: sp_cuda_bsr's tall units (spmm_cuda.h), groups of
 *    SP_CUDA_BSR_TALL_ROWS = 128 rows of W (two units), a group's chunks
 *    being the block columns where either unit has a block, with a mask of
 *    the units there; a chunk's units contiguous and pre-swizzled.
 *  - CTA: a group x BN tokens. Producer warps (ChunkFeed, lane 0 issuing;
 *    four, each taking every fourth chunk): per chunk one bulk copy of its
 *    units and one TMA box of X [BN tokens x bs columns] in the swizzle of
 *    that width. Consumer warpgroup g takes
 *    unit g: where the chunk's mask has it, bs / 16 wgmmas m64nBNk16 with
 *    both operands in shared memory (desc_kmajor<bs>); the other warpgroup
 *    skips the chunk.
 *  - Output tile and split-K (summed in the CTA cluster where the clusters
 *    fit, else through the workspace) as in the 2:4 and dense kernels
 *    (sm90_common.cuh's tile_epilogue, plan_split).
 * Chosen by sp_cuda_bsr_spmm on sm_90 (spmm_bsr.cu, bsr_wg_default);
 * measured in bench/results/bsr-tall-*.md.
 */
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/sm90_wgmma_ra.cuh" /* bulk_load */
#include "kernels/cuda/sm90_wgmma_ss.cuh"
#include "kernels/cuda/spmm_bsr_sm90.h"
#include "kernels/cuda/spmm_bsr_sm90_launch.cuh"
#include "kernels/cuda/spmm_common.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>

namespace spmm {

template <int BS, int BN_> struct KBsrTall {
    static constexpr int BN = BN_;
    static constexpr int BM = SP_CUDA_BSR_TALL_ROWS; /* features (rows of W) per CTA */
    static constexpr int WGS = BM / 64;               /* a consumer warpgroup per unit */
    using Roles = WsRoles<WGS, 1>;
    static constexpr int NT = Roles::NT, NC = Roles::NC, R_PROD = Roles::R_PROD, R_CONS = Roles::R_CONS;
    static constexpr int CPS_ = 1;
    static constexpr int KS = BS / 16;        /* k16 steps per chunk */
    static constexpr int XST = BN * BS * 2;   /* X's box: BN tokens x bs columns */
    static constexpr int UNIT = 64 * BS * 2;  /* a unit: 64 rows x bs columns */
    static constexpr int STB = ((XST + WGS * UNIT + 1023) / 1024) * 1024;
    static constexpr int NACC = BN / 2;
    static constexpr int CBYTES = BN * (BM + 4) * 4; /* the fp32 output tile (the fp16 one is smaller) */
    using Pipe = UnitsPipe<STB, CBYTES, CPS_>;
    static constexpr int STAGES = Pipe::STAGES, BARS = Pipe::BARS, SMEM = Pipe::SMEM;
    static_assert(WGS == 2, "KBsrTall: two units per group");
    static_assert(Pipe::FITS, "KBsrTall: two stages must fit");

    __device__ static void run(const CUtensorMap *xmap, const BsrWgParams &p, const Epi &e) {
#ifdef SP_WGMMA_OK
        const UnitsCta cta = units_cta<STAGES, BM, BN>(p, BARS, NC);
        unsigned char *sm = cta.ps.sm;
        const uint32_t sb = cta.ps.sb, full0 = cta.ps.full0, empty0 = cta.ps.empty0;
        const int nk = cta.ps.nk;
        const int4 *ch = cta.ch; /* this CTA's chunks */
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        const int64_t m0 = cta.m0, n0 = cta.n0;

        if (warp < 4) {
            /* producer: the four warps take every fourth chunk each, lane 0
             * issuing (with one warp, ncu had it busy issuing 3/4 of the
             * time and the consumers waiting on "full" for most of theirs:
             * H200, BSR32 at 50 %, N = 4096) */
            asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R_PROD));
            /* pinned, as in the consumers (below) */
            uint32_t pf = full0, pe = empty0, ps0 = sb;
            asm volatile("" : "+r"(pf), "+r"(pe), "+r"(ps0));
            ChunkFeed feed;
            feed.start(ch, nk, lane);
            /* chunk c's units into stage st, their bytes and X's on its "full" barrier */
            auto issue_w = [&](const int4 &c, int st) {
                if (lane != 0) return;
                const uint32_t bytes = (uint32_t)(__popc((unsigned)c.y) * UNIT);
                const uint32_t full = pf + st * 8;
                mbar_expect_tx(full, bytes + XST);
                bulk_load(ps0 + st * STB + XST, p.blocks + (uint32_t)c.z, bytes, full);
            };
            /* Warp w feeds the stages st with st % 4 == w, every use of
             * such a stage in order. The "empty" wait for use q names the
             * phase by its parity only, so it also passes while use q - 2
             * is still unreleased; that cannot be when this warp has itself
             * issued use q - 1, which waited for that release. Dealt
             * round-robin by chunk instead, with STAGES not a multiple of 4,
             * a stage's uses went to different warps: one passed its wait
             * two uses early while a consumer warpgroup still held the
             * stage (it releases its own late, below) and armed the "full"
             * barrier twice in one phase: Warp Illegal Instruction on the
             * arrive, seen as "unspecified launch failure" (cuda-gdb, H200,
             * BSR32 with 9 stages of 256 tokens). The weight is constant:
             * the first stages' copies go out before the previous kernel
             * ends. */
            const int pre = nk < STAGES ? nk : STAGES; /* <= MAXST = 16: one window of ChunkFeed */
            for (int s = warp; s < pre; s += 4) issue_w(feed.at(s, lane), s);
            pdl_wait();
            for (int s = 0, st = 0, q = 0; s < nk; s++) {
                if ((st & 3) == warp) {
                    const int4 ci = feed.at(s, lane);
                    if (q > 0) {
                        /* the consumers' release of the stage's previous use */
                        mbar_wait(pe + st * 8, (uint32_t)(q - 1) & 1u);
                        issue_w(ci, st);
                    }
                    if (lane == 0) tma_load_2d(ps0 + st * STB, xmap, ci.x * BS, (int)n0, pf + st * 8);
                }
                if (++st == STAGES) {
                    st = 0;
                    q++;
                }
            }
        } else {
            asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R_CONS));
            pdl_wait(); /* the epilogue reads the residual and writes Y, the workspace */
            const int tid = threadIdx.x - 128;
            const int g = (warp - 4) >> 2, w4 = warp & 3;
            prefetch_residual<BM, BN>(e, m0, n0, tid, NC);
            float acc[1][NACC];
#pragma unroll
            for (int i = 0; i < NACC; i++) acc[0][i] = 0.0f;
            /* Every chunk's stage is waited for ("full") and released
             * ("empty", NC arrivals) by both warpgroups in chunk order, so
             * neither runs ahead of the barriers' phases; a warpgroup
             * whose unit the chunk lacks releases it at once. Its own
             * chunks are found by a ballot over 32 chunks at a time, so
             * that the wgmmas sit on no branch: under one that depends on
             * the mask ptxas serializes them (info C7520). Its own stage is
             * released a chunk late, when wait<1> retires its wgmmas, or
             * before the warpgroup waits for the chunk that will refill
             * that stage, STAGES chunks on (else both wait forever). */
            const uint32_t below = (1u << g) - 1u;
            /* The loop-invariant shared addresses pinned in registers:
             * ptxas otherwise re-derived the 1024-aligned dynamic shared
             * base for every chunk (S2UR of the cluster CTA id and five
             * uniform operations), and the descriptors from addresses,
             * at the head of each chunk's chain of dependent instructions.
             * That chain bounds the kernel at small N: ncu, H200, BSR32 at
             * 50 %, N = 128 (64 tokens, 49 chunks per consumer warp): about
             * 80 instructions per chunk at 8 cycles each, the tensor pipe
             * and DRAM at a fifth of their peaks. A descriptor holds
             * address >> 4 in its low 14 bits (desc_kmajor), so a stage's,
             * a unit's and a k step's are the first stage's plus their
             * offset >> 4; stages and phases advance with a cursor instead
             * of a division by STAGES per chunk. */
            uint32_t fbar = full0, ebar = empty0, sbase = sb;
            asm volatile("" : "+r"(fbar), "+r"(ebar), "+r"(sbase));
            const uint64_t dx0 = desc_kmajor<BS>(sbase);
            StageCursor cur = {0, 0u}; /* the stage and phase of chunk `next` */
            int next = 0;              /* the next chunk to see */
            /* the held stage's "empty" barrier (0: none held; barriers sit
             * above the stages, never at shared address 0) and its chunk */
            uint32_t held = 0;
            int held_s = 0;
            /* release the held stage: its wgmmas retired first */
            auto release_held = [&]() {
                if (held) {
                    wgmma_wait<0>();
                    mbar_arrive(held);
                    held = 0;
                }
            };
            /* before waiting for chunk c: c refills the held stage when it
             * is STAGES chunks after it */
            auto free_for = [&](int c) {
                if (c >= held_s + STAGES) release_held();
            };
            auto pass = [&](int upto) { /* chunks next .. upto - 1: not this warpgroup's */
                for (; next < upto; next++) {
                    free_for(next);
                    mbar_wait(fbar + cur.st * 8, cur.ph);
                    mbar_arrive(ebar + cur.st * 8);
                    cur.next(STAGES);
                }
            };
            for (int base = 0; base < nk; base += 32) {
                const int mine = base + lane < nk ? (int)__ldg(&ch[base + lane].y) : 0;
                unsigned bits = __ballot_sync(0xffffffffu, (mine >> g) & 1);
                while (bits) {
                    const int i = __ffs(bits) - 1;
                    bits &= bits - 1u;
                    const int s = base + i;
                    const uint32_t msk = (uint32_t)__shfl_sync(0xffffffffu, mine, i);
                    pass(s); /* now next == s: cur is chunk s's stage */
                    free_for(s);
                    mbar_wait(fbar + cur.st * 8, cur.ph);
                    const uint64_t dx = dx0 + (uint64_t)(cur.st * (STB >> 4));
                    /* this warpgroup's unit: after the chunk's lower ones */
                    const uint64_t du = dx + (uint64_t)((XST >> 4) + __popc(msk & below) * (UNIT >> 4));
                    acc_fence(acc[0]);
                    wgmma_fence();
#pragma unroll
                    for (int kk = 0; kk < KS; kk++)
                        wgmma_ss<BN>(acc[0], du + 2 * kk, dx + 2 * kk); /* k steps 32 bytes apart */
                    wgmma_commit();
                    if (held) {
                        wgmma_wait<1>();
                        mbar_arrive(held);
                    }
                    held = ebar + cur.st * 8;
                    held_s = s;
                    cur.next(STAGES);
                    next = s + 1;
                }
            }
            pass(nk);
            release_held();
            /* on every path, so ptxas need not inject one (info C7517:
             * it cannot see that the paths above retired the wgmmas) */
            wgmma_wait<0>();
            acc_fence(acc[0]);
            pdl_launch_dependents(); /* only the epilogue is left */
            tile_sync<1, NC>(); /* every consumer is done with the stages: they become the output tile */
            tile_epilogue<1, BM, BN, NC>(acc, sm, e, m0, n0, g, w4, lane, tid);
        }
#else
        (void)xmap; (void)p; (void)e;
        __trap();
#endif
    }
};

template <class KT>
__global__ void __launch_bounds__(KT::NT, 1)
kbsrtall_entry(const __grid_constant__ CUtensorMap xmap, BsrWgParams p, Epi e) {
    KT::run(&xmap, p, e);
}

template <class KT>
static int launch_bsr_tall(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    return launch_bsr_units<KT>(kbsrtall_entry<KT>, w->tall, w, a, e, st);
}

template <int BS> static int run_bsr_tall_bs(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a,
                                             const Epi &e, sp_cuda_status *st) {
    switch (cfg) {
    case 0: return launch_bsr_tall<KBsrTall<BS, 256>>(w, a, e, st);
    case 1: return launch_bsr_tall<KBsrTall<BS, 128>>(w, a, e, st);
    case 2: return launch_bsr_tall<KBsrTall<BS, 64>>(w, a, e, st);
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no such tall-unit configuration");
    }
}

int run_bsr_tall_sm90(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                      sp_cuda_status *st) {
    if (!w->tall.blocks)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "bsr spmm: weight has no tall-unit layout (its units would hold over "
                            "SP_CUDA_BSR_TALL_FILL of the dense weight, or not sm_90)");
    switch (w->bs) {
    case 16: return run_bsr_tall_bs<16>(cfg, w, a, e, st);
    case 32: return run_bsr_tall_bs<32>(cfg, w, a, e, st);
    case 64: return run_bsr_tall_bs<64>(cfg, w, a, e, st);
    }
    return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr spmm: block size");
}

} // namespace spmm
