/*
 * spmm_bsr_sm90.cu - block-sparse SpMM (square blocks of 16, 32 or 64) on
 * Hopper's warpgroup tensor cores, sm_90a.
 *
 * Why: the mma.sync BSR kernel (spmm_bsr.cu) gives a CTA one block row (or
 * a group of four) of W, so every X chunk it copies serves 16-128 rows of
 * W; at N >= 1024 it ran at 58-98 TFLOP/s of useful work, 0.16-0.26x of
 * cuBLAS at 50 % block sparsity (M = K = 4096, H100), bound by moving X.
 *
 * GEMM view, transposed against the other sm_90 kernels: the product is
 * D[n, m] = sum_k X[n, k] W[m, k], so X is wgmma's A operand (64 rows of X
 * per warpgroup, in registers) and a block of W is the B operand (bs
 * columns of D, from shared memory, K-major: W's rows as stored). wgmma
 * takes N down to 8 for B, so a block row of 16 or 32 is a whole wgmma
 * and nothing is padded; a warpgroup's A rows are rows of X, which every
 * block row shares.
 *  - A CTA owns SP_CUDA_BSR_WG_ROWS = 256 rows of W (R = 256 / bs block
 *    rows: its "group") and BN = 64 * WGS rows of X. The upload lists each
 *    group's chunks: the block columns where any of its rows has a block,
 *    with a mask of those rows, the chunk's blocks stored contiguously.
 *  - Producer, one warp (its lanes hold the chunk list a batch of 32
 *    ahead, ChunkFeed; lane 0 issues): per chunk, one bulk copy of its
 *    blocks (popcount(mask) * bs * bs * 2 bytes) and one TMA box of X
 *    [BN rows x bs columns] (zeros past N and K), both completing on the
 *    stage's "full" mbarrier.
 *  - Consumers: each warp loads its 16 rows of the X chunk into A registers
 *    with ldmatrix (once per chunk, whatever the number of blocks), then
 *    the warpgroup issues bs / 16 k16 wgmmas per block of the chunk, block
 *    row r into accumulator set r. 16-wide blocks go in pairs
 *    (bsr_wg_pair): the upload stores block rows 2p and 2p + 1 of a chunk
 *    together, zeros for an absent one, and one m64n32k16 wgmma covers
 *    both, acc[2p] and acc[2p + 1] being the two halves of its
 *    accumulator. Two register sets alternate as in the CSR kernel: chunk
 *    s + 1's fragments are loaded while chunk s's wgmmas run. Tensor-core
 *    work is exactly the stored blocks' (for 16-wide blocks, a pair's zero
 *    half included).
 *  - The output tile [BN rows of Y x 256 features] leaves through shared
 *    memory in fp16 (stmatrix, then sm90_common.cuh's h_to_y: residual and
 *    the activations on the way out) or, under split-K, as fp32 partial
 *    sums: summed in the CTA cluster that the split CTAs of a tile form
 *    (cluster_reduce_store, sm90_common.cuh's plan_split), else through the
 *    workspace (store_ctile).
 *  - CTAs take groups with the most chunks first (wg.order).
 * Chosen by sp_cuda_bsr_spmm on sm_90 (spmm_bsr.cu); measured in
 * bench/results/bsr-wgmma-h100-*.md.
 */
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/sm90_wgmma_ra.cuh"
#include "kernels/cuda/sm90_wgmma_ss.cuh"
#include "kernels/cuda/spmm_bsr_sm90.h"
#include "kernels/cuda/spmm_bsr_sm90_launch.cuh"
#include "kernels/cuda/spmm_common.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>

namespace spmm {

#ifdef SP_WGMMA_OK
/* four 8 x 8 fp16 matrices from mma accumulator fragments into shared
 * memory as they are: matrix q's row i goes to the address lane 8q + i gives */
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, const uint32_t (&r)[4]) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]),
                 "r"(r[1]), "r"(r[2]), "r"(r[3])
                 : "memory");
}

/* The consumers' accumulators acc[r][..] (block row r of the group; wgmma
 * D rows = rows of Y, columns = features) as an fp16 tile hs[BN][HLD] (row
 * = output row, features contiguous) with the bias and, when ACT is not
 * NONE, the activation applied in registers */
template <int ACT, int R, int BS>
__device__ __forceinline__ void acc_to_h_rows(const float (&acc)[R][BS / 2], const Epi &e, int64_t m0, uint32_t hs,
                                              int HLD, int g, int w4, int lane) {
    const int tig = lane & 3, mat = lane >> 3, rr = lane & 7;
    const uint32_t row0 = hs + (uint32_t)((g * 64 + w4 * 16 + (mat & 1) * 8 + rr) * HLD + (mat >> 1) * 8) * 2u;
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int jn = 0; jn < BS / 8; jn += 2) {
            uint32_t v[4];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int64_t mg = m0 + r * BS + (jn + h) * 8 + tig * 2;
                float b0 = 0.0f, b1 = 0.0f;
                if (e.bias) {
                    if (mg < e.m) b0 = __half2float(e.bias[mg]);
                    if (mg + 1 < e.m) b1 = __half2float(e.bias[mg + 1]);
                }
                const float *c = &acc[r][(jn + h) * 4];
                v[2 * h] = pack_h2(epi_act<ACT>(e, c[0] + b0), epi_act<ACT>(e, c[1] + b1));
                v[2 * h + 1] = pack_h2(epi_act<ACT>(e, c[2] + b0), epi_act<ACT>(e, c[3] + b1));
            }
            stmatrix_x4(row0 + (uint32_t)(r * BS + jn * 8) * 2u, v);
        }
}
#endif

template <int BS, int WGS, int CPS> struct KBsrWg {
    static constexpr int BM = SP_CUDA_BSR_WG_ROWS; /* features (rows of W) per CTA */
    static constexpr int R = BM / BS;              /* block rows per group */
    static constexpr int BN = 64 * WGS;            /* rows of X and Y per CTA */
    using Roles = WsRoles<WGS, CPS>;
    static constexpr int NT = Roles::NT, NC = Roles::NC, R_PROD = Roles::R_PROD, R_CONS = Roles::R_CONS;
    static constexpr int CPS_ = CPS;
    static constexpr int KS = BS / 16;   /* k16 steps per block */
    static constexpr bool PAIR = bsr_wg_pair(BS); /* a unit of the chunk: a pair of blocks, or one */
    static constexpr int UN = PAIR ? 2 * BS : BS;  /* its wgmma's n */
    static constexpr int UB = PAIR ? 2 : 1;        /* its blocks */
    static constexpr int XST = BN * BS * 2;
    static constexpr int BLK = BS * BS * 2;
    static constexpr int STB = ((XST + R * BLK + 1023) / 1024) * 1024;
    static constexpr int NACC = BS / 2;
    static constexpr int CBYTES = BN * (BM + 4) * 4; /* the fp32 output tile (the fp16 one is smaller) */
    using Pipe = UnitsPipe<STB, CBYTES, CPS>;
    static constexpr int STAGES = Pipe::STAGES, BARS = Pipe::BARS, SMEM = Pipe::SMEM;
    static_assert(R <= 32, "KBsrWg: a 32-bit mask per chunk");
    static_assert(Pipe::FITS, "KBsrWg: two stages must fit");

    __device__ static void run(const CUtensorMap *xmap, const BsrWgParams &p, const Epi &e) {
#ifdef SP_WGMMA_OK
        const UnitsCta cta = units_cta<STAGES, BM, BN>(p, BARS, NC);
        unsigned char *sm = cta.ps.sm;
        const uint32_t sb = cta.ps.sb, full0 = cta.ps.full0, empty0 = cta.ps.empty0;
        const int nk = cta.ps.nk;
        const int4 *ch = cta.ch; /* this CTA's chunks */
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        const int64_t m0 = cta.m0, n0 = cta.n0;

        if (warp < 4) { /* producer: warp 0, lane 0 issuing */
            asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R_PROD));
            if (warp != 0) return;
            ChunkFeed feed;
            feed.start(ch, nk, lane);
            /* chunk c's blocks into stage st, their bytes and X's on its "full" barrier */
            auto issue_w = [&](const int4 &c, int st) {
                if (lane != 0) return;
                const uint32_t bytes = (uint32_t)(__popc((unsigned)c.y) * BLK * UB);
                const uint32_t full = full0 + st * 8;
                mbar_expect_tx(full, bytes + XST);
                bulk_load(sb + st * STB + XST, p.blocks + (uint32_t)c.z, bytes, full);
            };
            /* the weight is constant: the first stages' copies go out before
             * the previous kernel ends */
            const int pre = nk < STAGES ? nk : STAGES;
            for (int s = 0; s < pre; s++) issue_w(feed.at(s, lane), s);
            pdl_wait();
            StageCursor c = {0, 0u};
            for (int s = 0; s < nk; s++, c.next(STAGES)) {
                const int4 ci = feed.at(s, lane);
                if (s >= pre) {
                    mbar_wait(empty0 + c.st * 8, c.ph ^ 1u); /* the consumers' release of its previous use */
                    issue_w(ci, c.st);
                }
                if (lane == 0) tma_load_2d(sb + c.st * STB, xmap, ci.x * BS, (int)n0, full0 + c.st * 8);
            }
        } else {
            asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R_CONS));
            pdl_wait(); /* the epilogue reads the residual and writes Y, the workspace */
            const int tid = threadIdx.x - 128;
            const int g = (warp - 4) >> 2, w4 = warp & 3;
            prefetch_residual<BM, BN>(e, m0, n0, tid, NC);
            float acc[R][NACC];
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int i = 0; i < NACC; i++) acc[r][i] = 0.0f;
            /* this lane's ldmatrix row of the X chunk (warp w4 of warpgroup
             * g: rows 64 g + 16 w4 ..) and its half of each k16 step */
            const int xrow = g * 64 + w4 * 16 + (lane & 15);
            const int xsw = bsr_wg_swizzle(BS, xrow), khalf = lane >> 4;
            uint32_t a[2][KS][4];
            uint32_t mask_of[2] = {0u, 0u};
            int st_of[2] = {0, 0}; /* the stage each register set holds */
            StageCursor c = {0, 0u};
            int next = 0; /* the next chunk to load */
            ChunkFeed feed;
            feed.start(ch, nk, lane);
            auto load = [&](auto set) {
                const uint32_t msk = (uint32_t)feed.at(next, lane).y;
                mbar_wait(full0 + c.st * 8, c.ph);
                const unsigned char *xs = sm + c.st * STB + xrow * (BS * 2);
#pragma unroll
                for (int kk = 0; kk < KS; kk++) ldmatrix_x4(a[set][kk], xs + (((kk * 2 + khalf) ^ xsw) << 4));
                mask_of[set] = msk;
                st_of[set] = c.st;
                c.next(STAGES);
                next++;
            };
            auto issue = [&](auto set) {
                const uint32_t msk = mask_of[set];
#pragma unroll
                for (int r = 0; r < R; r++) acc_fence(acc[r]);
                wgmma_fence();
                /* the chunk's blocks (or pairs) lie in mask order: bb
                 * walks them. ptxas fences each unit's wgmmas again (info
                 * C7519) and closes a hardware wgmma group after each, as it
                 * does for wgmmas under guard predicates */
                uint32_t bb = sb + st_of[set] * STB + XST;
#pragma unroll
                for (int u = 0; u < R / UB; u++) {
                    if (msk & (1u << u)) {
                        /* unit u's accumulator: block rows UB u .. UB u + UB - 1 */
                        float(&au)[UN / 2] = *reinterpret_cast<float(*)[UN / 2]>(&acc[UB * u][0]);
#pragma unroll
                        for (int kk = 0; kk < KS; kk++) wgmma_ra<UN>(au, a[set][kk], desc_kmajor<BS>(bb + kk * 32));
                        bb += BLK * UB;
                    }
                }
                wgmma_commit();
            };
            /* a set stays live until the wait that retires its chunk (ptxas
             * does not know a wgmma reads its registers after issue) */
            auto reg_fence = [&](auto set) {
#pragma unroll
                for (int kk = 0; kk < KS; kk++)
                    asm volatile("" : "+r"(a[set][kk][0]), "+r"(a[set][kk][1]), "+r"(a[set][kk][2]),
                                 "+r"(a[set][kk][3]));
            };
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
            for (int r = 0; r < R; r++) acc_fence(acc[r]);
            pdl_launch_dependents();
            tile_sync<1, NC>(); /* every consumer is done with the stages: they become the output tile */
            epilogue(acc, sm, e, m0, n0, g, w4, lane, tid);
        }
#else
        (void)xmap; (void)p; (void)e;
        __trap();
#endif
    }

#ifdef SP_WGMMA_OK
    /* the output tile [BN rows x BM features] from the accumulators: fp16
     * through shared memory when h_stage_ok, else fp32 to store_ctile
     * (split-K partial sums included); bias, residual, activation on the way */
    __device__ static void epilogue(const float (&acc)[R][NACC], unsigned char *sm, const Epi &e, int64_t m0,
                                    int64_t n0, int g, int w4, int lane, int tid) {
        if (h_stage_ok(e)) {
            constexpr int HLD = BM + 8;
            const uint32_t hs = smem_u32(sm);
            const __half *hp = reinterpret_cast<const __half *>(sm);
            const bool relu_in_regs = !e.residual && e.act == SP_CUDA_ACT_RELU;
            if (relu_in_regs) acc_to_h_rows<SP_CUDA_ACT_RELU, R, BS>(acc, e, m0, hs, HLD, g, w4, lane);
            else acc_to_h_rows<SP_CUDA_ACT_NONE, R, BS>(acc, e, m0, hs, HLD, g, w4, lane);
            tile_sync<1, NC>();
            if (relu_in_regs || e.act == SP_CUDA_ACT_NONE) h_to_y<SP_CUDA_ACT_NONE, BM, BN, NC>(hp, HLD, e, m0, n0, tid);
            else if (e.act == SP_CUDA_ACT_RELU) h_to_y<SP_CUDA_ACT_RELU, BM, BN, NC>(hp, HLD, e, m0, n0, tid);
            else if (e.act == SP_CUDA_ACT_GELU) h_to_y<SP_CUDA_ACT_GELU, BM, BN, NC>(hp, HLD, e, m0, n0, tid);
            else h_to_y<SP_CUDA_ACT_ANY, BM, BN, NC>(hp, HLD, e, m0, n0, tid);
            return;
        }
        constexpr int CLD = BM + 4;
        float *cs = reinterpret_cast<float *>(sm);
        const int gid = lane >> 2, tig = lane & 3;
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int jn = 0; jn < BS / 8; jn++)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int nl = g * 64 + w4 * 16 + gid + (q >> 1) * 8;
                    const int ml = r * BS + jn * 8 + tig * 2 + (q & 1);
                    cs[nl * CLD + ml] = acc[r][jn * 4 + q];
                }
        tile_sync<1, NC>();
        if (e.csplit) cluster_reduce_store<BM, BN, CLD, NC>(cs, m0, n0, e, tid);
        else store_ctile<BM, BN, CLD, NC, 1>(cs, m0, n0, e, tid);
    }
#endif
};

template <class KT>
__global__ void __launch_bounds__(KT::NT, KT::CPS_)
kbsrwg_entry(const __grid_constant__ CUtensorMap xmap, BsrWgParams p, Epi e) {
    KT::run(&xmap, p, e);
}

template <class KT>
static int launch_bsr_wg(const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    return launch_bsr_units<KT>(kbsrwg_entry<KT>, w->wg, w, a, e, st);
}

template <int BS> static int run_bsr_wg_bs(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e,
                                           sp_cuda_status *st) {
    switch (cfg) {
    case 0: return launch_bsr_wg<KBsrWg<BS, 2, 1>>(w, a, e, st);
    case 1: return launch_bsr_wg<KBsrWg<BS, 1, 2>>(w, a, e, st);
    default: return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "bsr spmm: no such wgmma configuration");
    }
}

int run_bsr_sm90(int cfg, const sp_cuda_bsr *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    if (!w->wg.blocks) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr spmm: weight has no sm_90 layout");
    switch (w->bs) {
    case 16: return run_bsr_wg_bs<16>(cfg, w, a, e, st);
    case 32: return run_bsr_wg_bs<32>(cfg, w, a, e, st);
    case 64: return run_bsr_wg_bs<64>(cfg, w, a, e, st);
    }
    return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "bsr spmm: block size");
}

} // namespace spmm
