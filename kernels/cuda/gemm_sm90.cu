/*
 * gemm_sm90.cu - dense fp16 GEMM on Hopper's warpgroup tensor cores
 * (wgmma.mma_async m64nNk16, sm_90a) with the sparse kernels' fused
 * epilogue: Y[n, m] = act(sum_k W[m, k] X[n, k] + bias[m] + residual[n, m]).
 *
 * Why a dense kernel of our own: cuBLASLt's epilogues fuse bias and ReLU
 * (and GELU only in its tanh approximation), so a dense layer followed by
 * ONNX's exact (erf) GELU, or any other activation, paid a second pass over
 * its output (BERT-base's FFN1 at 4096 tokens: 25 MB read and written
 * again). This kernel applies every SP_CUDA_ACT_* in its epilogue; the
 * runtime times it against cuBLASLt plus the separate activation per layer
 * and keeps the faster (runtime/cuda/backend_cuda.c, lower_gemm).
 *
 * It is the 2:4 kernel (spmm_24_sm90.cu) with a dense weight: the same
 * producer/consumer warpgroups, TMA stages, PDL start and output tile
 * (sm90_common.cuh), so the two differ only in the product itself. W is
 * [m][k] row-major (K contiguous) and comes through TMA in 128-byte
 * swizzled 64-column boxes like X; both wgmma operands are read from shared
 * memory. Per 64-column stage a consumer warpgroup issues 4 k16 steps per
 * 64-row slab.
 */
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sm90_common.cuh"
#include "kernels/cuda/sm90_wgmma_ss.cuh"
#include "kernels/cuda/spmm_common.cuh"

namespace spmm {


/* One CTA: a BM x BN output tile, BM = 64 * MI * WGS; warpgroup 0
 * produces (one lane issues the TMA copies of W and X per 64-column stage),
 * warpgroups 1..WGS consume (MI slabs of 64 rows each); STAGES deep. Split-K
 * over gridDim.z through the workspace as in the 2:4 kernel. */
template <int WGS, int MI, int BN_, int STAGES> struct KDt {
    static constexpr int BN = BN_;
    using Roles = WsRoles<WGS>;
    static constexpr int NT = Roles::NT, NC = Roles::NC, R_PROD = Roles::R_PROD, R_CONS = Roles::R_CONS;
    static constexpr int BM = 64 * MI * WGS;
    static constexpr int XST = BN * 128; /* BN rows x 64 columns of X */
    static constexpr int WST = BM * 128; /* BM rows x 64 columns of W */
    static constexpr int STB = ((XST + WST + 1023) / 1024) * 1024;
    static constexpr int CBYTES = BN * (BM + 4) * 4; /* the fp32 output tile (tile_epilogue) */
    static constexpr int PIPE = STAGES * STB;
    static constexpr int BARS = PIPE > CBYTES ? PIPE : CBYTES;
    static constexpr int SMEM = BARS + 2 * STAGES * 8 + 1024;
    static constexpr int NACC = BN / 2;
    static_assert(SMEM <= 227 * 1024, "KDt: the stages do not fit an SM's shared memory");

    __device__ static void run(const CUtensorMap *xmap, const CUtensorMap *wmap, int nk_all, const Epi &e) {
#ifdef SP_WGMMA_OK
        const PipeStart ps = pipe_start<STAGES>(BARS, nk_all, 1, NC);
        unsigned char *sm = ps.sm;
        const uint32_t sb = ps.sb, full0 = ps.full0, empty0 = ps.empty0;
        const int j0 = ps.j0, nk = ps.nk;
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        const int m0 = blockIdx.x * BM;
        const int64_t n0 = (int64_t)blockIdx.y * BN;

        if (warp < 4) { /* producer */
            asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R_PROD));
            if (warp == 0 && lane == 0) {
                /* the first stages' W copies before waiting for the previous
                 * kernel (the weight is constant), then every X copy */
                const int pre = nk < STAGES ? nk : STAGES;
                for (int s = 0; s < pre; s++) {
                    mbar_expect_tx(full0 + s * 8, (uint32_t)(XST + WST));
                    tma_load_2d(sb + s * STB + XST, wmap, (j0 + s) * 64, m0, full0 + s * 8);
                }
                pdl_wait();
                for (int s = 0; s < nk; s++) {
                    const int st = s % STAGES, j = j0 + s;
                    const uint32_t full = full0 + st * 8;
                    if (s >= pre) {
                        mbar_wait(empty0 + st * 8, ((s / STAGES) - 1) & 1);
                        mbar_expect_tx(full, (uint32_t)(XST + WST));
                        /* W rows m0.., columns 64j..: zero past M and K */
                        tma_load_2d(sb + st * STB + XST, wmap, j * 64, m0, full);
                    }
                    /* X rows n0.., columns 64j..: zero past N and K */
                    tma_load_2d(sb + st * STB, xmap, j * 64, (int)n0, full);
                }
            }
        } else {
            asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R_CONS));
            pdl_wait(); /* the epilogue reads the residual and writes Y, the workspace */
            const int tid = threadIdx.x - 128;
            prefetch_residual<BM, BN>(e, m0, n0, tid, NC);
            const int g = (warp - 4) >> 2, w4 = warp & 3;
            float acc[MI][NACC];
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int i = 0; i < NACC; i++) acc[mi][i] = 0.0f;
            for (int s = 0; s < nk; s++) {
                const int st = s % STAGES;
                mbar_wait(full0 + st * 8, (s / STAGES) & 1);
                const uint32_t xb = sb + st * STB, wb = xb + XST;
#pragma unroll
                for (int mi = 0; mi < MI; mi++) acc_fence(acc[mi]);
                wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < 4; kk++)
#pragma unroll
                    for (int mi = 0; mi < MI; mi++)
                        wgmma_ss<BN>(acc[mi], desc_sw128(wb + (g * MI + mi) * 64 * 128 + kk * 32),
                                        desc_sw128(xb + kk * 32));
                wgmma_commit();
                /* the previous stage's wgmmas are done: its buffers go back */
                if (s > 0) {
                    wgmma_wait<1>();
                    mbar_arrive(empty0 + ((s - 1) % STAGES) * 8);
                }
            }
            if (nk > 0) {
                wgmma_wait<0>();
                mbar_arrive(empty0 + ((nk - 1) % STAGES) * 8);
            }
#pragma unroll
            for (int mi = 0; mi < MI; mi++) acc_fence(acc[mi]);
            pdl_launch_dependents(); /* only the epilogue is left */
            tile_sync<1, NC>(); /* every consumer is done with the stages: they become the C tile */
            tile_epilogue<MI, BM, BN, NC>(acc, sm, e, m0, n0, g, w4, lane, tid);
        }
#else
        (void)xmap; (void)wmap; (void)nk_all; (void)e;
        __trap();
#endif
    }
};

template <class KT>
__global__ void __launch_bounds__(KT::NT, 1)
kdt_entry(const __grid_constant__ CUtensorMap xmap, const __grid_constant__ CUtensorMap wmap, int nk, Epi e) {
    KT::run(&xmap, &wmap, nk, e);
}

template <class KT>
static int launch_dense(const sp_cuda_dense *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    const int64_t gx = (w->m + KT::BM - 1) / KT::BM;
    const int64_t gy = (a->n + KT::BN - 1) / KT::BN;
    if (gy > 65535 || gx > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "dense gemm: m or n too large");
    CUtensorMap xmap, wmap;
    /* X [n][k] and W [m][k], rows ldx / ldw apart: boxes of 64 columns x BN (BM) rows, 128-byte swizzle */
    int rc = encode_f16_rows(&xmap, a->x, a->n, w->k, a->ldx, 64, KT::BN, CU_TENSOR_MAP_SWIZZLE_128B, "dense gemm", st);
    if (!rc) rc = encode_f16_rows(&wmap, w->w, w->m, w->k, w->ldw, 64, KT::BM, CU_TENSOR_MAP_SWIZZLE_128B, "dense gemm", st);
    if (rc) return rc;
    static int occ_cache[kDevSlots];
    int occ = 0;
    const int orc = occupancy_once(kdt_entry<KT>, KT::NT, KT::SMEM, occ_cache, &occ, st);
    if (orc) return orc;
    const int nk = (int)((w->k + 63) / 64);
    const int z = e.ws ? pick_split(gx * gy, nk, sm_count(), 4) : 1;
    Epi ek = e;
    ek.h_stage = 1;
    return (int)SP_CUDA_CHECK(st, pdl_launch(pdl_env_enabled(), kdt_entry<KT>,
                                             dim3((unsigned)gx, (unsigned)gy, (unsigned)z), dim3(KT::NT), KT::SMEM,
                                             (cudaStream_t)a->stream, xmap, wmap, nk, ek));
}

/* The shape's configuration: the tile that needs the fewest turns of the
 * GPU, a turn costing the tile's area (larger tiles first on a tie: fewer
 * bytes per flop); 128 x 64 tiles with split-K (5) when even 128 x 128
 * ones leave SMs idle */
static int dense_rule(int64_t m, int64_t n) {
    const int64_t sms = sm_count();
    auto tiles = [&](int64_t bm, int64_t bn) { return ((m + bm - 1) / bm) * ((n + bn - 1) / bn); };
    auto cost = [&](int64_t bm, int64_t bn) { return (tiles(bm, bn) + sms - 1) / sms * bm * bn; };
    if (tiles(128, 128) < sms) return 5;
    int best = 1;
    int64_t bc = cost(128, 256);
    if (cost(256, 128) < bc) { best = 2; bc = cost(256, 128); }
    if (m % 192 == 0 && cost(192, 128) < bc) { best = 4; bc = cost(192, 128); }
    if (cost(128, 128) < bc) best = 3;
    return best;
}

static int route_dense(const sp_cuda_dense *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st) {
    switch (a->config ? a->config : dense_rule(w->m, a->n)) {
    case 1: return launch_dense<KDt<2, 1, 256, 4>>(w, a, e, st);
    case 2: return launch_dense<KDt<2, 2, 128, 4>>(w, a, e, st);
    case 3: return launch_dense<KDt<2, 1, 128, 6>>(w, a, e, st);
    case 4: return launch_dense<KDt<3, 1, 128, 5>>(w, a, e, st);
    default: return launch_dense<KDt<2, 1, 64, 8>>(w, a, e, st);
    }
}

} // namespace spmm

extern "C" int sp_cuda_dense_gemm_ok(void) { return spmm::sm90_ok() ? 1 : 0; }

extern "C" int sp_cuda_dense_tune_configs(int *cfg, int max) {
    static const int all[] = {0, 1, 2, 3, 4, 5};
    const int n = spmm::sm90_ok() ? (int)(sizeof all / sizeof all[0]) : 1;
    int i = 0;
    for (; i < n && i < max; i++) cfg[i] = all[i];
    return i;
}

extern "C" int sp_cuda_dense_gemm(const sp_cuda_dense *w, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    using namespace spmm;
    if (!w || !w->w || w->m < 0 || w->k < 1 || w->ldw < w->k)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "dense gemm: no weight, or ldw < k");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0 || w->m == 0) return 0;
    if (a->config < 0 || a->config > SP_CUDA_DENSE_CONFIGS)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "dense gemm: unknown launch configuration");
    if (!sm90_ok()) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "dense gemm: needs an sm_90 GPU");
    if (w->ldw % 8 || a->ldx % 8 || ((uintptr_t)w->w & 15) || ((uintptr_t)a->x & 15))
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "dense gemm: needs ldw, ldx multiples of 8 and W, X 16-byte aligned");
    return route_dense(w, a, e, st);
}
