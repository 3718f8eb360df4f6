/*
 * spmm_csr_sm90.cu - the tiled CSR path (spmm_csr.cu (a): 16 x 64 tiles of a
 * bitmap and the nonzero values, built at upload) on Hopper's warpgroup
 * tensor cores: dense wgmma.mma_async m64nNk16 with A in registers, sm_90a.
 *
 * Why: the mma.sync kernel gives every warp its own copy of X's fragments
 * (ldmatrix from shared memory per warp and per 16 rows) and leaves a warp
 * one tile per pipeline stage to cover the expansion's latency; from N = 64
 * on it ran at 14 % of its bandwidth floor (M = K = 4096, N = 128: 39-52 us
 * from 50 to 98 % sparsity, against cuBLAS's 17.4). Here the tensor cores
 * read X once per warpgroup straight from shared memory and a warp's
 * expansion of the next stage's tile overlaps the current stage's wgmmas.
 *
 * GEMM view and roles as in the sm_90 2:4 kernel (spmm_24_sm90.cu):
 *  - A CTA computes a BM x BN output tile, BM = 64 * WGS rows of W, with one
 *    producer warpgroup and WGS consumer warpgroups (setmaxnreg).
 *  - Producer, one warp: per 64-column step j of K, waits for a free stage,
 *    reads the byte ranges of its BM / 16 tiles (tile_off, read a step
 *    ahead), arms the stage's "full" mbarrier with their bytes plus X's and
 *    issues one bulk copy (cp.async.bulk) per tile, lane t for tile row t,
 *    into a slot of fixed size (the smallest the weight's largest tile fits,
 *    as in spmm_csr.cu), and one TMA copy of X's [BN rows x 64 columns] box
 *    (128-byte swizzle, zeros past N and K). The stage count is what shared
 *    memory holds (up to MAXST): a runtime value, so the slot size needs no
 *    instantiation of its own.
 *  - Consumers: warp w of warpgroup g owns tile row 4g + w; it expands that
 *    row's tile of each stage into its A registers (csr_tiles.cuh: the
 *    m16n8k16 A-fragment layout is also a warp's 16 rows of wgmma's A) and
 *    the warpgroup issues four k16 wgmmas against X's swizzled box. Two
 *    register sets alternate as in the 2:4 kernel: stage s + 1 is expanded
 *    while stage s's wgmmas run.
 *  - The output tile: tile_epilogue (sm90_common.cuh): fp16 through shared
 *    memory, or fp32 partial sums through the workspace under split-K.
 *  - Programmatic dependent launch: the first stages' weight copies are
 *    issued before the wait for the previous kernel.
 * Chosen per N by spmm_csr.cu (tc_default_cfg) on sm_90 when X's rows are
 * 16-byte aligned; measured in bench/results/csr-wgmma-h100-*.md.
 */
#include "kernels/cuda/csr_tiles.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/sm90_wgmma_ra.cuh"
#include "kernels/cuda/spmm_common.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>

namespace spmm {


/* What a launch passes besides X's tensor map: the weight's tiles and their
 * offsets (16-byte pieces), and the shared-memory plan worked out on the
 * host (slot and stage sizes in bytes, the stage count, the barriers'
 * offset) */
struct CsrWgParams {
    const uint4 *tiles;
    const int32_t *off;
    int mt, kt;
    int slot, stb, stages, bars;
};

template <int WGS, int MI, int BN_, bool PAIR, int CPS> struct KCsrWg {
    static constexpr int BN = BN_;
    using Roles = WsRoles<WGS, CPS>;
    static constexpr int NT = Roles::NT, NC = Roles::NC, R_PROD = Roles::R_PROD, R_CONS = Roles::R_CONS;
    static constexpr int CPS_ = CPS;
    static constexpr int MAXST = SmemPlan<CPS>::MAXST;
    static constexpr int BM = 64 * MI * WGS;
    static constexpr int TR = BM / 16;
    static constexpr int XST = BN * 128;
    static constexpr int CBYTES = BN * (BM + 4) * 4; /* the fp32 output tile (the fp16 one is smaller) */
    static constexpr int NACC = BN / 2;
    using Smem = SmemPlan<CPS>;
    static constexpr int SMEM_CAP = Smem::CAP;
    static_assert(TR <= 32, "KCsrWg: one producer lane per tile row");

    __device__ static void run(const CUtensorMap *xmap, const CsrWgParams &p, const Epi &e) {
#ifdef SP_WGMMA_OK
        const PipeStart ps = pipe_start<MAXST>(p.bars, p.kt, 1, NC);
        unsigned char *sm = ps.sm;
        const uint32_t sb = ps.sb, full0 = ps.full0, empty0 = ps.empty0;
        const int j0 = ps.j0, nk = ps.nk, stages = p.stages, stb = p.stb;
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        const int mt0 = blockIdx.x * TR;
        const int64_t n0 = (int64_t)blockIdx.y * BN;

        if (warp < 4) { /* producer */
            asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R_PROD));
            if (warp != 0) return;
            const int mt = mt0 + lane;
            const bool mine = lane < TR && mt < p.mt;
            const int32_t *orow = p.off + (int64_t)(mine ? mt : 0) * p.kt + j0;
            int b = 0, len = 0; /* this lane's tile of the next step: first piece, pieces */
            auto fetch = [&](int s) {
                if (mine && s < nk) {
                    b = __ldg(orow + s);
                    len = __ldg(orow + s + 1) - b;
                } else {
                    b = len = 0;
                }
            };
            /* the step's W: its byte count on the "full" barrier (with X's),
             * then one bulk copy per tile */
            auto issue_w = [&](int st) {
                const uint32_t full = full0 + st * 8;
                const int pieces = __reduce_add_sync(0xffffffffu, len);
                if (lane == 0) mbar_expect_tx(full, (uint32_t)(pieces * 16 + XST));
                __syncwarp();
                if (len > 0)
                    bulk_load(sb + st * stb + XST + lane * p.slot, p.tiles + b, (uint32_t)len * 16, full);
            };
            fetch(0);
            /* the weight is constant: the first stages' copies go out before
             * the previous kernel ends */
            const int pre = nk < stages ? nk : stages;
            for (int s = 0; s < pre; s++) {
                issue_w(s);
                fetch(s + 1);
            }
            pdl_wait();
            StageCursor c = {0, 0u};
            for (int s = 0; s < nk; s++, c.next(stages)) {
                const uint32_t full = full0 + c.st * 8;
                if (s >= pre) {
                    /* the consumers' release of this stage's previous use */
                    mbar_wait(empty0 + c.st * 8, c.ph ^ 1u);
                    issue_w(c.st);
                    fetch(s + 1);
                }
                if (lane == 0) tma_load_2d(sb + c.st * stb, xmap, (j0 + s) * 64, (int)n0, full);
            }
        } else {
            asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R_CONS));
            pdl_wait(); /* the epilogue reads the residual and writes Y, the workspace */
            const int tid = threadIdx.x - 128;
            const int g = (warp - 4) >> 2, w4 = warp & 3;
            prefetch_residual<BM, BN>(e, (int64_t)mt0 * 16, n0, tid, NC);
            float acc[MI][NACC];
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int i = 0; i < NACC; i++) acc[mi][i] = 0.0f;
            /* warp w4 of warpgroup g: tile row (g * MI + mi) * 4 + w4 of the
             * CTA for its slab mi (the rows of wgmma's A for that slab) */
            int rowoff[MI];
            bool valid[MI];
#pragma unroll
            for (int mi = 0; mi < MI; mi++) {
                const int row = (g * MI + mi) * 4 + w4;
                rowoff[mi] = XST + row * p.slot;
                valid[mi] = mt0 + row < p.mt;
            }
            uint32_t a[2][MI][4][4];
            int st_of[2] = {0, 0}; /* the stage each register set holds */
            StageCursor c = {0, 0u};
            auto load = [&](auto set) {
                mbar_wait(full0 + c.st * 8, c.ph);
                const unsigned char *stage = sm + c.st * stb;
#pragma unroll
                for (int mi = 0; mi < MI; mi++) {
                    if (valid[mi]) {
                        expand_tile<PAIR>(stage + rowoff[mi], a[set][mi], lane);
                    } else {
#pragma unroll
                        for (int kk = 0; kk < 4; kk++)
#pragma unroll
                            for (int r = 0; r < 4; r++) a[set][mi][kk][r] = 0u;
                    }
                }
                st_of[set] = c.st;
                c.next(stages);
            };
            auto issue = [&](auto set) {
                const uint32_t xb = sb + st_of[set] * stb;
#pragma unroll
                for (int mi = 0; mi < MI; mi++) acc_fence(acc[mi]);
                wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < 4; kk++)
#pragma unroll
                    for (int mi = 0; mi < MI; mi++) wgmma_ra<BN>(acc[mi], a[set][mi][kk], desc_sw128(xb + kk * 32));
                wgmma_commit();
            };
            /* ptxas does not know a wgmma reads its register operands after
             * issue: a set stays live until the wait that retires its stage */
            auto reg_fence = [&](auto set) {
#pragma unroll
                for (int mi = 0; mi < MI; mi++)
#pragma unroll
                    for (int kk = 0; kk < 4; kk++)
                        asm volatile("" : "+r"(a[set][mi][kk][0]), "+r"(a[set][mi][kk][1]), "+r"(a[set][mi][kk][2]),
                                     "+r"(a[set][mi][kk][3]));
            };
            /* retire the older in-flight stage: its set is free, its shared memory goes back */
            auto retire = [&](auto set) {
                wgmma_wait<1>();
                reg_fence(set);
                mbar_arrive(empty0 + st_of[set] * 8);
            };
            constexpr RegSet<0> S0{};
            constexpr RegSet<1> S1{};
            if (nk > 0) load(S0);
            for (int s = 0; s < nk; s += 2) {
                issue(S0);
                if (s > 0) retire(S1);
                if (s + 1 >= nk) break;
                load(S1);
                issue(S1);
                retire(S0);
                if (s + 2 < nk) load(S0);
            }
            if (nk > 0) {
                wgmma_wait<0>();
                reg_fence(S0);
                reg_fence(S1);
                mbar_arrive(empty0 + st_of[(nk - 1) & 1] * 8);
            }
#pragma unroll
            for (int mi = 0; mi < MI; mi++) acc_fence(acc[mi]);
            pdl_launch_dependents();
            tile_sync<1, NC>(); /* every consumer is done with the stages: they become the C tile */
            tile_epilogue<MI, BM, BN, NC>(acc, sm, e, (int64_t)mt0 * 16, n0, g, w4, lane, tid);
        }
#else
        (void)xmap; (void)p; (void)e;
        __trap();
#endif
    }
};

template <class KT>
__global__ void __launch_bounds__(KT::NT, KT::CPS_)
kcsrwg_entry(const __grid_constant__ CUtensorMap xmap, CsrWgParams p, Epi e) {
    KT::run(&xmap, p, e);
}

template <class KT>
static int launch_csr_wg(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const Epi &e, int slot_bytes,
                         sp_cuda_status *st) {
    const int64_t gx = (w->m + KT::BM - 1) / KT::BM;
    const int64_t gy = (a->n + KT::BN - 1) / KT::BN;
    if (gy > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: n too large");
    /* the shared-memory plan: as many stages as fit beside the barriers and
     * the 1024-byte alignment, the output tile reusing the stages */
    CsrWgParams p;
    p.tiles = (const uint4 *)w->tiles;
    p.off = w->tile_off;
    p.mt = (int)w->mt;
    p.kt = (int)w->kt;
    p.slot = slot_bytes;
    p.stb = ((KT::XST + KT::TR * slot_bytes + 1023) / 1024) * 1024;
    const int room = KT::Smem::ROOM;
    p.stages = room / p.stb < KT::MAXST ? room / p.stb : KT::MAXST;
    if (p.stages < 2) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: tiles too large for the wgmma path");
    p.bars = p.stages * p.stb > KT::CBYTES ? p.stages * p.stb : KT::CBYTES;
    const int smem = p.bars + 2 * KT::MAXST * 8 + 1024;
    if (smem > KT::SMEM_CAP) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: output tile too large");
    CUtensorMap xmap;
    /* X: [n][k] fp16, rows ldx apart; boxes of 64 columns x BN rows, 128-byte swizzle */
    if (const int rc = encode_f16_rows(&xmap, a->x, a->n, w->k, a->ldx, 64, KT::BN, CU_TENSOR_MAP_SWIZZLE_128B,
                                       "csr spmm", st))
        return rc;
    static int occ_cache[kDevSlots]; /* per instantiation: raises the limit to SMEM_CAP once */
    int occ = 0;
    const int orc = occupancy_once(kcsrwg_entry<KT>, KT::NT, KT::SMEM_CAP, occ_cache, &occ, st);
    if (orc) return orc;
    const int z = e.ws ? pick_split(gx * gy, p.kt, sm_count() * KT::CPS_, 4) : 1;
    Epi ek = e;
    ek.h_stage = 1;
    return (int)SP_CUDA_CHECK(st, pdl_launch(pdl_env_enabled(), kcsrwg_entry<KT>,
                                             dim3((unsigned)gx, (unsigned)gy, (unsigned)z), dim3(KT::NT), smem,
                                             (cudaStream_t)a->stream, xmap, p, ek));
}

/* The launch configurations (consumer warpgroups, 64-row slabs per
 * warpgroup, columns, CTAs per SM): CTA tiles 128 x 16, 128 x 32, 128 x 64,
 * 128 x 128, 128 x 256, 64 x 64, 64 x 128, 128 x 128. Small CTAs several to
 * an SM keep more warps expanding tiles at once: the expansion, a chain of
 * dependent shared loads and shuffles, bounds the kernel below N = 256
 * (ncu, N = 128: 12 cycles per issued instruction, 0.18 instructions per
 * cycle per scheduler with two consumer warps each). More warps per SM at
 * N = 16 did not help: a 192 x 16 tile, two CTAs per SM at 64 registers
 * (24 consumer warps per SM against 16 here) was 2-7 % slower than 128 x 16
 * at every density from 50 to 98 % (H200, M = K = 4096, 21.28 against
 * 19.86 us at 50 %; bench/results/csr-split24-underfill-h200-2026-11-29.md),
 * and ptxas compiles the consumers within the launch's register count, not
 * setmaxnreg's, so 192 x 32 two to an SM and 128 x 16 three spill and
 * serialize their wgmmas. */
template <bool PAIR>
static int run_csr_wg_layout(int cfg, const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const Epi &e,
                             int slot_bytes, sp_cuda_status *st) {
    switch (cfg) {
    case 0: return launch_csr_wg<KCsrWg<2, 1, 16, PAIR, 2>>(w, a, e, slot_bytes, st);
    case 1: return launch_csr_wg<KCsrWg<1, 2, 32, PAIR, 2>>(w, a, e, slot_bytes, st);
    case 2: return launch_csr_wg<KCsrWg<1, 2, 64, PAIR, 2>>(w, a, e, slot_bytes, st);
    case 3: return launch_csr_wg<KCsrWg<1, 2, 128, PAIR, 1>>(w, a, e, slot_bytes, st);
    case 4: return launch_csr_wg<KCsrWg<2, 1, 256, PAIR, 1>>(w, a, e, slot_bytes, st);
    case 5: return launch_csr_wg<KCsrWg<1, 1, 64, PAIR, 3>>(w, a, e, slot_bytes, st);
    case 6: return launch_csr_wg<KCsrWg<1, 1, 128, PAIR, 2>>(w, a, e, slot_bytes, st);
    case 7: return launch_csr_wg<KCsrWg<2, 1, 128, PAIR, 1>>(w, a, e, slot_bytes, st);
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr spmm: no such wgmma configuration");
    }
}

int run_csr_sm90(int cfg, const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const Epi &e, int slot_bytes,
                 sp_cuda_status *st) {
    if (w->tile_pairs) return run_csr_wg_layout<true>(cfg, w, a, e, slot_bytes, st);
    return run_csr_wg_layout<false>(cfg, w, a, e, slot_bytes, st);
}

} // namespace spmm
