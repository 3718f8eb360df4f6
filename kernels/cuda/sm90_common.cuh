/*
 * sm90_common.cuh - Hopper (sm_90a) building blocks shared by the kernels
 * that run warpgroup MMAs behind TMA copies: the 2:4 SpMM
 * (spmm_24_sm90.cu), the dense GEMM with the same epilogue (gemm_sm90.cu),
 * the tiled CSR (spmm_csr_sm90.cu) and BSR (spmm_bsr_sm90.cu) kernels.
 * Shared-memory matrix descriptors and wgmma fences, mbarriers and a
 * pipeline's stage cursor, TMA tile loads, the fp16 output-tile epilogue (bias and
 * activation in registers, stmatrix into shared memory, residual and the
 * other activations on the way out), the persistent kernels' hand-over of
 * that tile to the warps that store it, and the driver's tensor-map
 * encoders.
 */
#ifndef SPRUN_SM90_COMMON_CUH
#define SPRUN_SM90_COMMON_CUH

#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/spmm_common.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>

namespace spmm {

/* wgmma is compiled for sm_90a only */
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SP_WGMMA_OK 1
#endif

/* A wgmma's accumulator operands "+f"(d[0]) .. "+f"(d[N - 1]) (inline asm
 * output lists; the asm text names them %0 .. %N-1) */
#define SP_ACC8(b) "+f"(d[b]), "+f"(d[b + 1]), "+f"(d[b + 2]), "+f"(d[b + 3]), "+f"(d[b + 4]), "+f"(d[b + 5]), \
                   "+f"(d[b + 6]), "+f"(d[b + 7])
#define SP_ACC16(b) SP_ACC8(b), SP_ACC8(b + 8)
#define SP_ACC32(b) SP_ACC16(b), SP_ACC16(b + 16)
#define SP_ACC64(b) SP_ACC32(b), SP_ACC32(b + 32)
#define SP_ACC128 SP_ACC64(0), SP_ACC64(64)

/* smem matrix descriptor: K-major, 128-byte swizzle, 8-row groups 1024 B apart */
__device__ __forceinline__ uint64_t desc_sw128(uint32_t saddr) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)1 << 16;             /* leading byte offset: unused with swizzle */
    d |= (uint64_t)(1024 >> 4) << 32;   /* stride byte offset */
    d |= (uint64_t)1 << 62;             /* 128-byte swizzle */
    return d;
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
template <int R> __device__ __forceinline__ void acc_fence(float (&d)[R]) {
#pragma unroll
    for (int i = 0; i < R; i++) asm volatile("" : "+f"(d[i])::"memory");
}

/* A warp-specialized CTA's threads and registers: one producer warpgroup
 * and WGS consumer warpgroups, CPS CTAs per SM. Registers per thread at
 * launch (what __launch_bounds__(NT, CPS) allows), the producer's after
 * setmaxnreg.dec (RP), the consumers' after .inc (what the producer gave
 * up, shared among the consumer warpgroups; at most 232). */
template <int WGS, int CPS = 1, int RP = 40> struct WsRoles {
    static constexpr int NT = 128 * (WGS + 1);
    static constexpr int NC = 128 * WGS; /* consumer threads */
    static constexpr int R_LAUNCH = ((65536 / (CPS * NT)) / 8) * 8;
    static constexpr int R_PROD = RP;
    static constexpr int R_CONS_ = ((R_LAUNCH + (R_LAUNCH - R_PROD) / WGS) / 8) * 8;
    static constexpr int R_CONS = R_CONS_ > 232 ? 232 : R_CONS_;
};

/* The dynamic shared memory of a warp-specialized sm_90 CTA, CPS of them
 * to an SM: CAP, what one may take (an SM's 227 KB opt-in limit for one
 * CTA less 1 KB for the static epilogue variables, the full 227 KB having
 * made cudaFuncSetAttribute fail; else its share of the 228 KB less the
 * 1 KB each CTA reserves); ROOM, what CAP leaves for pipeline stages beside
 * up to MAXST stages' two mbarriers and the 1024-byte alignment */
template <int CPS> struct SmemPlan {
    static constexpr int CAP = CPS == 1 ? 226 * 1024 : (228 * 1024) / CPS - 2048;
    static constexpr int MAXST = 16;
    static constexpr int ROOM = CAP - 1024 - 2 * MAXST * 8;
};

/* A register set's index as a type, so a generic lambda indexes it statically */
template <int V> struct RegSet {
    __host__ __device__ constexpr operator int() const { return V; }
};

/* mbarriers (a stage's "full" and "empty") and TMA tile copies that
 * complete on one */
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    asm volatile(
        "{\n.reg .pred done;\n"
        "WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n}\n" ::"r"(bar),
        "r"(parity)
        : "memory");
}
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap *map, int c0, int c1,
                                            uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, "
        "{%2, %3}], [%4];\n" ::"r"(dst),
        "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap *map, int c0, int c1,
                                            int c2, uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, "
        "{%2, %3, %4}], [%5];\n" ::"r"(dst),
        "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
        : "memory");
}

/* What every warp-specialized CTA starts with: its dynamic shared memory
 * aligned to 1024 bytes (the 128-byte swizzle's repeat), its share of the
 * nk_all 64-column K stages under split-K over gridDim.z (stages j0 ..
 * j0 + nk - 1, nk possibly 0), and STAGES "full" (full_count arrivals) and
 * "empty" (empty_count) mbarriers at byte offset bars of that memory,
 * initialized by thread 0; every thread of the CTA calls it, and it
 * synchronizes the CTA. */
struct PipeStart {
    unsigned char *sm;
    uint32_t sb, full0, empty0;
    int j0, nk;
};
template <int STAGES>
__device__ __forceinline__ PipeStart pipe_start(int bars, int nk_all, int full_count, int empty_count) {
    extern __shared__ unsigned char smem_raw[];
    PipeStart p;
    p.sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    p.sb = smem_u32(p.sm);
    p.full0 = p.sb + bars;
    p.empty0 = p.full0 + STAGES * 8;
    const int per = (nk_all + gridDim.z - 1) / gridDim.z;
    p.j0 = blockIdx.z * per;
    p.nk = max(0, min(nk_all, p.j0 + per) - p.j0);
    if (threadIdx.x == 0) {
        for (int i = 0; i < STAGES; i++) {
            mbar_init(p.full0 + i * 8, full_count);
            mbar_init(p.empty0 + i * 8, empty_count);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    return p;
}

/* A stage index and its mbarrier phase, advanced one pipeline step at a
 * time (a division by the runtime stage count per step had cost about a
 * third of a consumer warp's instructions) */
struct StageCursor {
    int st;
    uint32_t ph;
    __device__ void next(int stages) {
        if (++st == stages) {
            st = 0;
            ph ^= 1u;
        }
    }
};

#ifdef SP_WGMMA_OK
/* Asks the copy engine to bring this CTA's residual rows (BM features each
 * from m0, rows n0..) into L2 at the start of the tile, one bulk prefetch
 * per row, so that the epilogue's residual reads, after the main loop, find
 * them there instead of waiting on DRAM. Threads tid = 0..nt-1 share the
 * rows. Only for residuals the epilogue reads 16 bytes at a time (rows
 * 16-byte aligned, whole 16-byte pieces), and only the first split-K CTA. */
template <int BM, int BN>
__device__ __forceinline__ void prefetch_residual(const Epi &e, int64_t m0, int64_t n0, int tid, int nt) {
    if (!e.residual || blockIdx.z != 0 || m0 >= e.m || !epi_rows_vec8(e))
        return;
    const uint32_t bytes = (uint32_t)(e.m - m0 < BM ? e.m - m0 : BM) * 2u;
    for (int nl = tid; nl < BN && n0 + nl < e.n; nl += nt)
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(e.residual + (n0 + nl) * e.ldr + m0),
                     "r"(bytes)
                     : "memory");
}

/* Four 8 x 8 fp16 matrices from mma fragments into shared memory,
 * transposed: fragment element (row i, column j) of matrix q lands in the
 * row whose address lane 8q + j gives, at position i */
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, const uint32_t (&r)[4]) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr),
                 "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
                 : "memory");
}
__device__ __forceinline__ uint32_t pack_h2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
}

/* The fp16 epilogue (no split-K; features and rows in 16-byte pieces, see
 * h_stage_ok): a consumer warp adds the bias to its accumulators in
 * registers, applies ACT there (ReLU when nothing is added later, else
 * SP_CUDA_ACT_NONE), rounds to fp16 and writes them with stmatrix.trans
 * into hs[BN][HLD] (row = output row, features contiguous; HLD = BM + 8
 * keeps the eight rows of a matrix in distinct banks); h_to_y adds the
 * residual and applies the other activations on the way out. Against the
 * fp32 tile (one 4-byte store per element, then two 16-byte loads per 8
 * outputs) it takes an eighth of the shared-memory store instructions and
 * half the bytes both ways. A residual or an activation applied after the
 * fp16 rounding rounds twice, as a GEMM writing fp16 followed by an Add or
 * activation kernel does. */
template <int ACT, int MI, int BN, int NACC>
__device__ __forceinline__ void acc_to_h(const float (&acc)[MI][NACC], const Epi &e, int64_t m0, uint32_t hs,
                                         int HLD, int g, int w4, int lane) {
    const int gid = lane >> 2, mat = lane >> 3, rr = lane & 7;
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
        const int ml = (g * MI + mi) * 64 + w4 * 16;
        const int64_t mg = m0 + ml + gid;
        float b0 = 0.0f, b1 = 0.0f;
        if (e.bias) {
            if (mg < e.m) b0 = __half2float(e.bias[mg]);
            if (mg + 8 < e.m) b1 = __half2float(e.bias[mg + 8]);
        }
        const uint32_t row0 = hs + (uint32_t)(((mat >> 1) * 8 + rr) * HLD + ml + (mat & 1) * 8) * 2u;
#pragma unroll
        for (int jn = 0; jn < BN / 8; jn += 2) {
            uint32_t r[4];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float *c = &acc[mi][(jn + h) * 4];
                r[2 * h] = pack_h2(epi_act<ACT>(e, c[0] + b0), epi_act<ACT>(e, c[1] + b0));
                r[2 * h + 1] = pack_h2(epi_act<ACT>(e, c[2] + b1), epi_act<ACT>(e, c[3] + b1));
            }
            stmatrix_x4_trans(row0 + (uint32_t)(jn * 8 * HLD) * 2u, r);
        }
    }
}

/* Eight fp16 outputs v (16 bytes) plus the residual's r (when the launch
 * has one), added in fp32, through ACT, rounded back to fp16 */
template <int ACT>
__device__ __forceinline__ uint4 act_h8(const Epi &e, uint4 v, uint4 r) {
    if (ACT == SP_CUDA_ACT_NONE && !e.residual) return v;
    __half2 *vh = reinterpret_cast<__half2 *>(&v);
    const __half2 *rh = reinterpret_cast<const __half2 *>(&r);
#pragma unroll
    for (int q = 0; q < 4; q++) {
        float2 a = __half22float2(vh[q]);
        if (e.residual) {
            const float2 b = __half22float2(rh[q]);
            a.x += b.x;
            a.y += b.y;
        }
        vh[q] = __floats2half2_rn(epi_act<ACT>(e, a.x), epi_act<ACT>(e, a.y));
    }
    return v;
}

/* The fp16 tile hs[BN][HLD] through the activation ACT and the residual,
 * 16 bytes at a time, each result handed to out(nl, nn, mm, v): tile row
 * nl, output row nn, feature mm (h_to_y, pt_hand_over). Threads tid =
 * 0..NT-1; with a residual its RB rows are loaded before any is handed on. */
template <int ACT, int BM, int BN, int NT, class Out>
__device__ __forceinline__ void h_tile_apply(const __half *hs, int HLD, const Epi &e, int64_t m0, int64_t n0, int tid,
                                             Out out) {
    constexpr int CH = BM / 8, STEP = NT / CH, ROWS = (BN + STEP - 1) / STEP, RB = ROWS < 8 ? ROWS : 8;
    static_assert(NT % CH == 0, "h_tile_apply: threads must cover whole rows");
    const int c = tid % CH;
    const int64_t mm = m0 + c * 8;
    if (mm >= e.m) return;
    if (!e.residual) {
#pragma unroll 4
        for (int nl = tid / CH; nl < BN; nl += STEP) {
            const int64_t nn = n0 + nl;
            if (nn >= e.n) break;
            const uint4 v = *reinterpret_cast<const uint4 *>(hs + nl * HLD + c * 8);
            out(nl, nn, mm, act_h8<ACT>(e, v, make_uint4(0, 0, 0, 0)));
        }
        return;
    }
    rows_with_res<RB, STEP, BN>(e, mm, n0, tid / CH, [&](int nl, int64_t nn, uint4 r) {
        const uint4 v = *reinterpret_cast<const uint4 *>(hs + nl * HLD + c * 8);
        out(nl, nn, mm, act_h8<ACT>(e, v, r));
    });
}

/* The fp16 tile hs[BN][HLD] out to Y, 16 bytes at a time, through the
 * activation ACT (SP_CUDA_ACT_NONE where acc_to_h applied it): with a
 * residual, added in fp32 first, its RB rows loaded before any is stored
 * (as store_ctile does); without one, rows four at a time. Threads
 * tid = 0..NT-1. */
template <int ACT, int BM, int BN, int NT>
__device__ __forceinline__ void h_to_y(const __half *hs, int HLD, const Epi &e, int64_t m0, int64_t n0, int tid) {
    h_tile_apply<ACT, BM, BN, NT>(hs, HLD, e, m0, n0, tid, [&](int, int64_t nn, int64_t mm, uint4 v) {
        *reinterpret_cast<uint4 *>(e.y + nn * e.ldy + mm) = v;
    });
}

/* whether the fp16 epilogue applies to this launch (uniform over the grid) */
__device__ __forceinline__ bool h_stage_ok(const Epi &e) {
    return e.h_stage && !e.csplit && (gridDim.z == 1 || e.ws == nullptr) && epi_rows_vec8(e);
}

/* Split-K through the CTA cluster (e.csplit): the gridDim.z CTAs that
 * computed partial sums of one output tile form a cluster, each with its
 * fp32 partial tile cs[BN][CLD] in shared memory at the same offset. After
 * a cluster barrier, CTA r of the cluster sums rows [r * RPC, (r + 1) * RPC)
 * of the tile over every CTA's copy (ld.shared::cluster, in rank order, so
 * the result does not depend on timing), applies bias, residual and the
 * activation and stores them; a second barrier keeps each CTA's shared
 * memory until its peers have read it. Against the workspace path
 * (store_ctile: fp32 atomics into global memory, a fence, a counter, the
 * last CTA reading the sums back) it keeps the reduction on chip and needs
 * no workspace. The NT consumer threads (tid 0..NT-1) call it together;
 * the producer warps may have exited (an exit releases a cluster barrier). */
template <int BM, int BN, int CLD, int NT, int ACT>
__device__ void cluster_reduce_store_act(const float *cs, int64_t m0, int64_t n0, const Epi &e, int tid) {
    uint32_t rank, nrank;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(rank));
    asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(nrank));
    asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
    const int rpc = (BN + (int)nrank - 1) / (int)nrank;
    const int r0 = (int)rank * rpc, r1 = min(BN, r0 + rpc);
    const uint32_t base = smem_u32(cs);
    constexpr int CH = BM / 8;
    if (epi_rows_vec8(e) && ((uintptr_t)e.bias & 15) == 0) {
        for (int i = tid; i < (r1 - r0) * CH; i += NT) {
            const int nl = r0 + i / CH, c = i % CH;
            const int64_t mm = m0 + c * 8, nn = n0 + nl;
            if (mm >= e.m || nn >= e.n) continue;
            const uint32_t off = base + (uint32_t)(nl * CLD + c * 8) * 4u;
            float4 v0 = make_float4(0.f, 0.f, 0.f, 0.f), v1 = v0;
            for (uint32_t q = 0; q < nrank; q++) {
                uint32_t ra;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(off), "r"(q));
                float4 a, b;
                asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                             : "=f"(a.x), "=f"(a.y), "=f"(a.z), "=f"(a.w) : "r"(ra) : "memory");
                asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                             : "=f"(b.x), "=f"(b.y), "=f"(b.z), "=f"(b.w) : "r"(ra + 16u) : "memory");
                v0.x += a.x; v0.y += a.y; v0.z += a.z; v0.w += a.w;
                v1.x += b.x; v1.y += b.y; v1.z += b.z; v1.w += b.w;
            }
            float bb[8];
            load_bias8(e, mm, bb);
            store8<ACT>(e, v0, v1, bb, load_res8(e, mm, nn), mm, nn);
        }
    } else {
        for (int i = tid; i < (r1 - r0) * BM; i += NT) {
            const int nl = r0 + i / BM, ml = i % BM;
            const int64_t mm = m0 + ml, nn = n0 + nl;
            if (mm >= e.m || nn >= e.n) continue;
            const uint32_t off = base + (uint32_t)(nl * CLD + ml) * 4u;
            float v = 0.f;
            for (uint32_t q = 0; q < nrank; q++) {
                uint32_t ra;
                float a;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(off), "r"(q));
                asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(a) : "r"(ra) : "memory");
                v += a;
            }
            e.y[nn * e.ldy + mm] = epi_value<ACT>(e, v, mm, nn);
        }
    }
    asm volatile("barrier.cluster.arrive;\nbarrier.cluster.wait;\n" ::: "memory");
}
template <int BM, int BN, int CLD, int NT>
__device__ void cluster_reduce_store(const float *cs, int64_t m0, int64_t n0, const Epi &e, int tid) {
    switch (e.act) {
    case SP_CUDA_ACT_NONE: cluster_reduce_store_act<BM, BN, CLD, NT, SP_CUDA_ACT_NONE>(cs, m0, n0, e, tid); break;
    case SP_CUDA_ACT_RELU: cluster_reduce_store_act<BM, BN, CLD, NT, SP_CUDA_ACT_RELU>(cs, m0, n0, e, tid); break;
    case SP_CUDA_ACT_GELU: cluster_reduce_store_act<BM, BN, CLD, NT, SP_CUDA_ACT_GELU>(cs, m0, n0, e, tid); break;
    default: cluster_reduce_store_act<BM, BN, CLD, NT, SP_CUDA_ACT_ANY>(cs, m0, n0, e, tid); break;
    }
}
/* A consumer thread's part of writing its CTA's BM x BN output tile (rows
 * m0.., n0..) from the wgmma accumulators acc (warpgroup g, warp w4 of it,
 * lane; tid = 0..NC-1 over the NC consumer threads), through the shared
 * memory at sm that the pipeline stages used (every consumer must be done
 * with them): in fp16 when h_stage_ok (acc_to_h, then h_to_y), else as
 * fp32 to store_ctile (split-K partial sums included). Bias, residual and
 * e.act are applied on the way. */
template <int MI, int BM, int BN, int NC, int NACC>
__device__ __forceinline__ void tile_epilogue(const float (&acc)[MI][NACC], unsigned char *sm, const Epi &e,
                                              int64_t m0, int64_t n0, int g, int w4, int lane, int tid) {
    const uint32_t sb = smem_u32(sm);
    if (h_stage_ok(e)) {
        constexpr int HLD = BM + 8;
        const __half *hs = reinterpret_cast<const __half *>(sm);
        /* ReLU in registers when nothing is added after the
         * product; GELU and the rest in the copy-out, from fp16
         * (applied to all 128 accumulators of a thread at once they
         * made bias + GELU 1.5-2.5x slower, H100) */
        const bool relu_in_regs = !e.residual && e.act == SP_CUDA_ACT_RELU;
        if (relu_in_regs)
            acc_to_h<SP_CUDA_ACT_RELU, MI, BN>(acc, e, m0, sb, HLD, g, w4, lane);
        else
            acc_to_h<SP_CUDA_ACT_NONE, MI, BN>(acc, e, m0, sb, HLD, g, w4, lane);
        tile_sync<1, NC>();
        if (relu_in_regs || e.act == SP_CUDA_ACT_NONE) h_to_y<SP_CUDA_ACT_NONE, BM, BN, NC>(hs, HLD, e, m0, n0, tid);
        else if (e.act == SP_CUDA_ACT_RELU) h_to_y<SP_CUDA_ACT_RELU, BM, BN, NC>(hs, HLD, e, m0, n0, tid);
        else if (e.act == SP_CUDA_ACT_GELU) h_to_y<SP_CUDA_ACT_GELU, BM, BN, NC>(hs, HLD, e, m0, n0, tid);
        else h_to_y<SP_CUDA_ACT_ANY, BM, BN, NC>(hs, HLD, e, m0, n0, tid);
        return;
    }
    constexpr int CLD = BM + 4;
    float *cs = reinterpret_cast<float *>(sm);
    const int gid = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int jn = 0; jn < BN / 8; jn++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int ml = (g * MI + mi) * 64 + w4 * 16 + gid + (q >> 1) * 8;
                const int nl = jn * 8 + tig * 2 + (q & 1);
                cs[nl * CLD + ml] = acc[mi][jn * 4 + q];
            }
    tile_sync<1, NC>();
    if (e.csplit) cluster_reduce_store<BM, BN, CLD, NC>(cs, m0, n0, e, tid);
    else store_ctile<BM, BN, CLD, NC, 1>(cs, m0, n0, e, tid);
}
#endif

#ifdef SP_WGMMA_OK
/* Persistent warp-specialized kernels (the 2:4 kernel's PT
 * configurations): gridDim.x CTAs walk the output tiles t = blockIdx.x,
 * + gridDim.x, ... (gxm tiles along M, M fastest) and the stores leave the
 * consumers' path. The consumers finish each tile in fp16 in a C tile of
 * its own in shared memory (pt_hand_over: bias, residual, activation) and
 * go on to the next tile's wgmmas; PT_EW_THREADS threads of the producer
 * warpgroup, idle otherwise (its warps 1-3), copy it to Y meanwhile
 * (pt_store_tiles). Two named barriers pass the C tile between them:
 * PT_C_FULL (the consumers arrive, the epilogue warps wait) and PT_C_FREE
 * (the other way). Only with the fp16 epilogue (h_stage_ok). */
constexpr int PT_EW_THREADS = 96, PT_C_FULL = 8, PT_C_FREE = 9;

/* Arrives at named barrier ID (N threads in all) without waiting: the side
 * that hands shared memory over; the other side waits (tile_sync<ID, N>) */
template <int ID, int N> __device__ __forceinline__ void named_arrive() {
    asm volatile("bar.arrive %0, %1;\n" ::"n"(ID), "n"(N) : "memory");
}

/* A consumer thread's part of handing tile t's accumulators over (rows m0..,
 * n0..; tid = 0..NC-1): waits until the epilogue warps are done with the
 * previous C tile (not before the CTA's first), writes this one at cs
 * (fp16, [BN][BM + 8]; bias, and ReLU where nothing is added after it,
 * applied in registers), adds the residual and applies the other
 * activations to it in place (every consumer warp sharing the work, as
 * h_to_y would on the way out: three epilogue warps alone made BERT's bias
 * + GELU 1.2-1.3x slower than one-tile CTAs) and arrives. */
template <int MI, int BM, int BN, int NC, int NACC>
__device__ __forceinline__ void pt_hand_over(const float (&acc)[MI][NACC], unsigned char *cs, const Epi &e, int64_t m0,
                                             int64_t n0, bool first, int g, int w4, int lane, int tid) {
    constexpr int NB = NC + PT_EW_THREADS, HLD = BM + 8;
    const uint32_t hs = smem_u32(cs);
    const bool relu_in_regs = !e.residual && e.act == SP_CUDA_ACT_RELU;
    if (!first) tile_sync<PT_C_FREE, NB>();
    if (relu_in_regs) acc_to_h<SP_CUDA_ACT_RELU, MI, BN>(acc, e, m0, hs, HLD, g, w4, lane);
    else acc_to_h<SP_CUDA_ACT_NONE, MI, BN>(acc, e, m0, hs, HLD, g, w4, lane);
    if (e.residual || (!relu_in_regs && e.act != SP_CUDA_ACT_NONE)) {
        __half *h = reinterpret_cast<__half *>(cs);
        auto back = [&](int nl, int64_t, int64_t mm, uint4 v) {
            *reinterpret_cast<uint4 *>(h + nl * HLD + (mm - m0)) = v;
        };
        tile_sync<1, NC>(); /* the whole tile is written */
        if (e.act == SP_CUDA_ACT_NONE) h_tile_apply<SP_CUDA_ACT_NONE, BM, BN, NC>(h, HLD, e, m0, n0, tid, back);
        else if (e.act == SP_CUDA_ACT_RELU) h_tile_apply<SP_CUDA_ACT_RELU, BM, BN, NC>(h, HLD, e, m0, n0, tid, back);
        else if (e.act == SP_CUDA_ACT_GELU) h_tile_apply<SP_CUDA_ACT_GELU, BM, BN, NC>(h, HLD, e, m0, n0, tid, back);
        else h_tile_apply<SP_CUDA_ACT_ANY, BM, BN, NC>(h, HLD, e, m0, n0, tid, back);
    }
    named_arrive<PT_C_FULL, NB>();
}

/* The epilogue warps' loop (te = 0..PT_EW_THREADS-1): for each of the CTA's
 * tiles, asks its residual rows into L2 as its main loop begins (the
 * consumers add them), waits for its finished C tile at hs, copies it to Y
 * and hands the C tile back (not after the last) */
template <int BM, int BN, int NC>
__device__ __forceinline__ void pt_store_tiles(const __half *hs, const Epi &e, int gxm, int ntiles, int te) {
    constexpr int NB = NC + PT_EW_THREADS, HLD = BM + 8, EW = PT_EW_THREADS;
    Epi eo = e; /* the tile is final: a plain copy */
    eo.residual = nullptr;
    pdl_wait(); /* reads the residual, writes Y */
    for (int t = blockIdx.x; t < ntiles; t += gridDim.x) {
        const int64_t m0 = (int64_t)(t % gxm) * BM, n0 = (int64_t)(t / gxm) * BN;
        prefetch_residual<BM, BN>(e, m0, n0, te, EW);
        tile_sync<PT_C_FULL, NB>();
        h_to_y<SP_CUDA_ACT_NONE, BM, BN, EW>(hs, HLD, eo, m0, n0, te);
        if (t + (int)gridDim.x < ntiles) named_arrive<PT_C_FREE, NB>();
    }
}
#endif

/* How many clusters of cz CTAs (nt threads, smem bytes of dynamic shared
 * memory each) of kernel fn can be resident at once, 0 where the query
 * fails; asked once per device and cluster size (cache: the caller's,
 * one per kernel instantiation, the count + 1, zero-initialized). The
 * kernel's shared-memory attribute must be set (occupancy_once). */
template <class... KArgs>
int resident_clusters(void (*fn)(KArgs...), int nt, int smem, int cz, int (*cache)[9]) {
    const int slot = dev_slot();
    if (cz < 2 || cz > 8) return 0;
    if (slot >= 0 && cache[slot][cz]) return cache[slot][cz] - 1;
    cudaLaunchConfig_t lc = {};
    lc.gridDim = dim3(1, 1, (unsigned)cz);
    lc.blockDim = dim3((unsigned)nt);
    lc.dynamicSmemBytes = (size_t)smem;
    cudaLaunchAttribute at;
    at.id = cudaLaunchAttributeClusterDimension;
    at.val.clusterDim.x = 1;
    at.val.clusterDim.y = 1;
    at.val.clusterDim.z = (unsigned)cz;
    lc.attrs = &at;
    lc.numAttrs = 1;
    int n = 0;
    if (cudaOccupancyMaxActiveClusters(&n, fn, &lc) != cudaSuccess) {
        (void)cudaGetLastError();
        n = 0;
    }
    if (slot >= 0) cache[slot][cz] = n + 1;
    return n;
}

/* Split-K of an sm_90 kernel whose partial tiles end in
 * cluster_reduce_store or store_ctile (the 2:4 kernel's tile_epilogue, the
 * BSR kernel's; the tiled-CSR kernel and the dense GEMM measured no gain or
 * a loss, bench/results/spmm24-cluster-split-h100-2026-11-28.md) over
 * `tiles` output tiles: z = pick_split(...). The split is summed on chip,
 * the z CTAs of a tile forming a cluster (sets e->csplit; launch with
 * pdl_launch_cluster(..., z, ...)), where z <= 8 (the portable cluster
 * size), g_cluster_split is on and every cluster can be resident at once.
 * Where they cannot (z = 8 at two CTAs per SM, for one), or z > 8, the
 * largest of 8, 4, 2 below z whose clusters can all be resident is taken,
 * as long as each CTA keeps at most 64 stages. The BSR kernel at N =
 * 64-256 ran 1.2-1.3x faster with the smaller split in a cluster than with
 * z through the workspace (BSR32, 4096^2, N = 128: 4 CTAs in a cluster
 * 26.1 us, 8 through the workspace 33.0); at 128 stages per CTA the smaller
 * split lost (BSR16, N = 256: 57.5 against 53.7;
 * bench/results/bsr-cluster-split-h100-2026-11-28.md). Else through the
 * workspace (store_ctile) when e has one; else no split. Returns the
 * grid's z. */
template <class... KArgs>
int plan_split(void (*fn)(KArgs...), int nt, int smem, int (*cache)[9], int64_t tiles, int nstages, int slots,
               int min_stages, Epi *e) {
    const int z = pick_split(tiles, nstages, slots, min_stages);
    if (z > 1 && g_cluster_split)
        for (int zc = z < 8 ? z : 8; zc >= 2 && (zc == z || nstages <= 64 * zc); zc /= 2)
            if (resident_clusters(fn, nt, smem, zc, cache) >= tiles) {
                e->csplit = 1;
                return zc;
            }
    return e->ws ? z : 1;
}

/* A driver entry point (CUDA 12.0 ABI), found through the runtime (no -lcuda);
 * looked up once per process per name (a race only repeats the lookup) */
inline void *driver_fn(const char *name, void **cache, int *tried) {
    if (!*tried) {
        void *p = nullptr;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            *cache = p;
        *tried = 1;
    }
    return *cache;
}
inline PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static void *fn = nullptr;
    static int tried = 0;
    return (PFN_cuTensorMapEncodeTiled_v12000)driver_fn("cuTensorMapEncodeTiled", &fn, &tried);
}
inline PFN_cuTensorMapEncodeIm2col_v12000 encode_im2col_fn() {
    static void *fn = nullptr;
    static int tried = 0;
    return (PFN_cuTensorMapEncodeIm2col_v12000)driver_fn("cuTensorMapEncodeIm2col", &fn, &tried);
}

/* The fp16 matrix [rows][cols] at p, rows ld elements apart, as a 2-D TMA
 * map of box_cols x box_rows boxes in swizzle sw (zeros past the edges, L2
 * promotion of 256 B): how the sm_90 kernels read X (and the dense GEMM W).
 * 0, or the failure through st, its message starting with `what` (the
 * caller: "csr spmm", ...). Thread-safe. */
inline int encode_f16_rows(CUtensorMap *map, const void *p, int64_t rows, int64_t cols, int64_t ld,
                           uint32_t box_cols, uint32_t box_rows, CUtensorMapSwizzle sw, const char *what,
                           sp_cuda_status *st) {
    char msg[96];
    PFN_cuTensorMapEncodeTiled_v12000 enc = encode_fn();
    if (!enc) {
        snprintf(msg, sizeof msg, "%s: cuTensorMapEncodeTiled unavailable", what);
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, msg);
    }
    const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows};
    const cuuint64_t str[1] = {(cuuint64_t)ld * 2};
    const cuuint32_t box[2] = {box_cols, box_rows};
    const cuuint32_t estr[2] = {1, 1};
    if (enc(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<void *>(p), dims, str, box, estr,
            CU_TENSOR_MAP_INTERLEAVE_NONE, sw, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
        snprintf(msg, sizeof msg, "%s: cuTensorMapEncodeTiled failed", what);
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, msg);
    }
    return 0;
}

} // namespace spmm

#endif
