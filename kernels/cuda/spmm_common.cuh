/*
 * spmm_common.cuh - the tensor-core SpMM skeleton shared by the 2:4, BSR and
 * tiled-CSR kernels (spmm_24.cu, spmm_bsr.cu, spmm_csr.cu). Internal: only
 * those files include it.
 *
 * One CTA computes a BM x BN tile of the output in the GEMM view
 * (BM rows of W = output features, BN rows of X = tokens/positions).
 * K is walked in "chunks" whose width CW and position depend on the format
 * (2:4: 32 contiguous columns; tiled CSR: 64; BSR: one stored block, whose
 * columns come from block_col). Per pipeline stage the CTA copies WARPS_K
 * chunks of X (BN rows x CW columns each) into shared memory with cp.async
 * (zero-filled past N and K), STAGES deep. Warp (wm, wn, wk) takes the chunks
 * of its K slot wk, loads its W fragments straight from global memory into
 * registers one chunk ahead (W is read exactly once per CTA column, in
 * fragment order, 16 B per lane: fully coalesced), reads X fragments with
 * ldmatrix and issues mma. Warps of different wk are summed through shared
 * memory; CTAs of different blockIdx.z (split-K) through the fp32 workspace,
 * where the last CTA to arrive for a tile runs the epilogue and clears the
 * workspace for the next launch.
 *
 * A format is a struct with
 * template <int WM> with
 *   static constexpr int CW;              chunk width (multiple of 16)
 *   struct Params;                        device pointers
 *   struct Frag;                          W registers for one chunk
 *   __device__ static int row_block(p, bx)  CTA's m-block (BM rows; BSR
 *                                         walks block rows by row_order)
 *   __device__ static int nchunks(p, mb)  chunks of that m-block
 *   __device__ static int chunk_k0(p, mb, c, meta)
 *   static constexpr int META_CAP;        ints of per-CTA metadata (0: none)
 *   template <int BM> __device__ static int meta_load(p, int *smem, mb,
 *       cbeg, cend)                       copies the index data the CTA's
 *       chunks [cbeg, cend) need (BSR block columns, tiled-CSR tile
 *       offsets) into shared memory once, before the pipeline starts, when
 *       it fits in META_CAP ints, and returns its row stride (-1 when it
 *       does not fit: every thread the same answer; then chunk_k0 and w_pre
 *       read global memory, as before). Read a stage ahead from global, each
 *       stage of a short-K, small-N product waited a full memory latency
 *       for its offsets before it could issue its copies.
 * and either (W_SMEM = true: W staged in shared memory with X)
 *   template <int BM, int CPS, int NT> struct WPre; w_pre(p, WPre&, mb, c0,
 *       cend, meta) (offsets a stage ahead), load_w(p, WPre, smem, mb, c0,
 *       cend) (cp.async), mma_s(p, smem chunk, acc, X rows, wm, mtile0, lane)
 * or (W_SMEM = false: W read straight into registers one chunk ahead)
 *   __device__ static void load(p, Frag&, mb, mtile0, c, lane)
 *   template <int WN, int LD> __device__ static void
 *       mma(p, const Frag&, acc[WM][WN][4], X rows in smem, mtile0, lane)
 * WM 16-row tiles per warp; W tiles past the matrix are skipped by F.
 */
#ifndef SPRUN_SPMM_COMMON_CUH
#define SPRUN_SPMM_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/gelu.cuh"
#include "kernels/cuda/spmm_cuda.h"

namespace spmm {

/* ---- PTX wrappers -------------------------------------------------------- */
__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}
/* 16-byte async copy, zero-filling when src_bytes == 0 */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)),
                 "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *smem) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(smem)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void *smem) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem_u32(smem)));
}
/* D += A(16x16, row) * B(16x8, col), fp16 in, fp32 accumulate */
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/* D += A(16x32, 2:4 sparse, compressed 16x16) * B(32x8), metadata e, selector 0 */
__device__ __forceinline__ void mma_sp_16832(float (&d)[4], const uint4 &a, const uint32_t (&b)[4],
                                             uint32_t e) {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
          "r"(e));
}
/* W is streamed: read through the non-coherent path, no L1 allocation */
__device__ __forceinline__ uint4 ldg_stream(const uint4 *p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(p));
    return r;
}

/* ---- epilogue ------------------------------------------------------------ */
struct Epi {
    const __half *bias;     /* [m] or NULL */
    const __half *residual; /* [n, ldr] or NULL */
    int64_t ldr;
    __half *y;
    int64_t ldy;
    int64_t m, n;
    int act;
    float alpha, beta;
    float *ws;              /* split-K partials [n][m] fp32, or NULL */
    unsigned int *counters; /* one per (bx, by) tile */
    int no_meta;            /* 1: formats read their index data from global
                               memory a stage ahead (sp_cuda_spmm_set_meta_preload) */
    int h_stage;            /* 1: the sm_90 2:4 kernel stages its output tile in
                               fp16 (its launcher sets it from
                               sp_cuda_24_set_fp16_epilogue; 0 elsewhere) */
    int csplit;             /* 1: the gridDim.z split-K CTAs of a tile form a
                               cluster and sum their partials through distributed
                               shared memory (sm90_common.cuh's
                               cluster_reduce_store; set by the sm_90 2:4
                               kernel's launcher, 0 elsewhere) */
};

/* Whether the epilogue may move rows in 16-byte pieces of 8 features: Y
 * (and the residual, when there is one) 16-byte aligned with row pitches
 * and M in multiples of 8. Uniform over the grid. Every 16-byte epilogue
 * path (store_ctile_act, and the sm_90 2:4 kernel's fp16 tile and residual
 * prefetch) asks this. */
__host__ __device__ __forceinline__ bool epi_rows_vec8(const Epi &e) {
    return e.m % 8 == 0 && e.ldy % 8 == 0 && ((uintptr_t)e.y & 15) == 0 &&
           (!e.residual || (e.ldr % 8 == 0 && ((uintptr_t)e.residual & 15) == 0));
}

/* the activation, as ops/op.h's sp_act_apply computes it on the CPU */
__device__ __forceinline__ float act_apply(int act, float x, float alpha, float beta) {
    switch (act) {
    case SP_CUDA_ACT_RELU: return fmaxf(x, 0.0f);
    case SP_CUDA_ACT_CLIP: return fminf(fmaxf(x, alpha), beta);
    case SP_CUDA_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case SP_CUDA_ACT_GELU: return sp_gelu(x);
    case SP_CUDA_ACT_TANH: return tanhf(x);
    case SP_CUDA_ACT_HARDSWISH: return x * fminf(fmaxf(x / 6.0f + 0.5f, 0.0f), 1.0f);
    case SP_CUDA_ACT_HARDSIGMOID: return fminf(fmaxf(alpha * x + beta, 0.0f), 1.0f);
    case SP_CUDA_ACT_LEAKYRELU: return x >= 0.0f ? x : alpha * x;
    default: return x;
    }
}
/* The epilogue below is instantiated per activation (ACT, a compile-time
 * SP_CUDA_ACT_*, or SP_CUDA_ACT_ANY: e.act) and store_ctile picks the
 * instance once per tile: a
 * per-element switch on the launch's activation kept ptxas from unrolling
 * the store loop and made the whole wgmma 2:4 kernel 1.6x slower (measured
 * on the H100, M = K = 768, N = 4096: 21.6 us vs 13.7 us). */
template <int ACT> __device__ __forceinline__ float epi_act(const Epi &e, float x) {
    return act_apply(ACT < 0 ? e.act : ACT, x, e.alpha, e.beta);
}

template <int ACT> __device__ __forceinline__ __half epi_value(const Epi &e, float v, int64_t m, int64_t n) {
    if (e.bias) v += __half2float(e.bias[m]);
    if (e.residual) v += __half2float(e.residual[n * e.ldr + m]);
    return __float2half_rn(epi_act<ACT>(e, v));
}

/* 8 consecutive features [mm, mm + 8) of output row nn, 16-byte aligned:
 * bias (preloaded by load_bias8), residual, activation, one 16-byte store */
__device__ __forceinline__ void load_bias8(const Epi &e, int64_t mm, float (&b)[8]) {
#pragma unroll
    for (int q = 0; q < 8; q++) b[q] = 0.0f;
    if (e.bias) {
        const uint4 bv = *reinterpret_cast<const uint4 *>(e.bias + mm);
        const __half2 *bh = reinterpret_cast<const __half2 *>(&bv);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const float2 f = __half22float2(bh[q]);
            b[2 * q] = f.x;
            b[2 * q + 1] = f.y;
        }
    }
}
/* the residual's 8 features [mm, mm + 8) of output row nn (16-byte aligned),
 * or zeros without a residual */
__device__ __forceinline__ uint4 load_res8(const Epi &e, int64_t mm, int64_t nn) {
    return e.residual ? *reinterpret_cast<const uint4 *>(e.residual + nn * e.ldr + mm) : make_uint4(0, 0, 0, 0);
}
/* Calls f(nl, nn, res) for a thread's rows nl = nl_first, + STEP, ... of a
 * tile's BN rows from n0 (nn = n0 + nl < N), res = the residual's 16-byte
 * piece at feature mm of that row (zeros without a residual), loading the
 * residual of RB rows before any call (see store_ctile_act) */
template <int RB, int STEP, int BN, class F>
__device__ __forceinline__ void rows_with_res(const Epi &e, int64_t mm, int64_t n0, int nl_first, F f) {
    for (int nl0 = nl_first; nl0 < BN; nl0 += RB * STEP) {
        uint4 r[RB];
#pragma unroll
        for (int i = 0; i < RB; i++) {
            const int nl = nl0 + i * STEP;
            r[i] = nl < BN && n0 + nl < e.n ? load_res8(e, mm, n0 + nl) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int i = 0; i < RB; i++) {
            const int nl = nl0 + i * STEP;
            if (nl >= BN || n0 + nl >= e.n) break;
            f(nl, n0 + nl, r[i]);
        }
    }
}
template <int ACT>
__device__ __forceinline__ void store8(const Epi &e, float4 v0, float4 v1, const float (&b)[8], uint4 rv,
                                       int64_t mm, int64_t nn) {
    float v[8] = {v0.x + b[0], v0.y + b[1], v0.z + b[2], v0.w + b[3],
                  v1.x + b[4], v1.y + b[5], v1.z + b[6], v1.w + b[7]};
    if (e.residual) {
        const __half2 *rh = reinterpret_cast<const __half2 *>(&rv);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const float2 f = __half22float2(rh[q]);
            v[2 * q] += f.x;
            v[2 * q + 1] += f.y;
        }
    }
    uint4 out;
    __half2 *oh = reinterpret_cast<__half2 *>(&out);
#pragma unroll
    for (int q = 0; q < 4; q++) {
        oh[q] = __floats2half2_rn(epi_act<ACT>(e, v[2 * q]), epi_act<ACT>(e, v[2 * q + 1]));
    }
    *reinterpret_cast<uint4 *>(e.y + nn * e.ldy + mm) = out;
}

/* Barrier over the NT threads that store a tile: the whole CTA (BAR == 0)
 * or named barrier BAR (warp-specialized kernels whose producer warps left) */
template <int BAR, int NT> __device__ __forceinline__ void tile_sync() {
    if constexpr (BAR == 0) __syncthreads();
    else asm volatile("bar.sync %0, %1;\n" ::"n"(BAR), "n"(NT) : "memory");
}

/* Writes a CTA's fp32 output tile cs[BN][CLD] (row nl = output row n0 + nl,
 * column ml = output feature m0 + ml): straight through the epilogue when the
 * launch has no split-K, else adds it into the workspace, and the last CTA of
 * the tile to arrive applies the epilogue and clears the workspace. Threads
 * tid = 0..NT-1 call it together (it synchronizes with tile_sync<BAR, NT>). */
template <int BM, int BN, int CLD, int NT, int BAR, int ACT>
__device__ void store_ctile_act(const float *cs, int64_t m0, int64_t n0, const Epi &e, int tid) {
    /* 16-byte chunks of 8 features: thread tid keeps chunk tid % CH (its
     * bias loaded once) and walks rows tid / CH, + NT / CH, ... */
    constexpr int CH = BM / 8;
    const bool vec = NT % CH == 0 && epi_rows_vec8(e) && ((uintptr_t)e.bias & 15) == 0;
    if (gridDim.z == 1 || e.ws == nullptr) {
        if (vec) {
            const int c = tid % CH;
            const int64_t mm = m0 + c * 8;
            if (mm >= e.m) return;
            float b[8];
            load_bias8(e, mm, b);
            if (!e.residual) {
#pragma unroll 4
                for (int nl = tid / CH; nl < BN; nl += NT / CH) {
                    const int64_t nn = n0 + nl;
                    if (nn >= e.n) break;
                    const float4 v0 = *reinterpret_cast<const float4 *>(&cs[nl * CLD + c * 8]);
                    const float4 v1 = *reinterpret_cast<const float4 *>(&cs[nl * CLD + c * 8 + 4]);
                    store8<ACT>(e, v0, v1, b, make_uint4(0, 0, 0, 0), mm, nn);
                }
                return;
            }
            /* With a residual, RB rows of it are loaded before any of them
             * is stored: Y may alias the residual, so the compiler keeps
             * each load after the previous row's store, and one row at a
             * time waited a memory latency per row (H100, 3072 x 768,
             * N = 4096, bias + residual + ReLU over the plain kernel: 22.7 us
             * before, 9.3 us with this and the sm_90 kernel's L2 prefetch of
             * the residual; bench/results/spmm24-epilogue-h100-2026-11-26.md).
             * Without one the loop above stays as it was: batching eight
             * rows there made bias + GELU 8 % slower. */
            constexpr int STEP = NT / CH, ROWS = (BN + STEP - 1) / STEP, RB = ROWS < 8 ? ROWS : 8;
            rows_with_res<RB, STEP, BN>(e, mm, n0, tid / CH, [&](int nl, int64_t nn, uint4 r) {
                const float4 v0 = *reinterpret_cast<const float4 *>(&cs[nl * CLD + c * 8]);
                const float4 v1 = *reinterpret_cast<const float4 *>(&cs[nl * CLD + c * 8 + 4]);
                store8<ACT>(e, v0, v1, b, r, mm, nn);
            });
            return;
        }
        /* otherwise pairs of outputs: half2 stores when the row stride allows */
        const bool v2 = (e.ldy % 2) == 0 && (((uintptr_t)e.y) & 3) == 0;
        for (int i = tid; i < BN * BM / 2; i += NT) {
            const int nl = i / (BM / 2), ml = (i % (BM / 2)) * 2;
            const int64_t mm = m0 + ml, nn = n0 + nl;
            if (nn >= e.n || mm >= e.m) continue;
            const __half h0 = epi_value<ACT>(e, cs[nl * CLD + ml], mm, nn);
            if (mm + 1 < e.m) {
                const __half h1 = epi_value<ACT>(e, cs[nl * CLD + ml + 1], mm + 1, nn);
                if (v2)
                    *reinterpret_cast<__half2 *>(&e.y[nn * e.ldy + mm]) = __halves2half2(h0, h1);
                else {
                    e.y[nn * e.ldy + mm] = h0;
                    e.y[nn * e.ldy + mm + 1] = h1;
                }
            } else {
                e.y[nn * e.ldy + mm] = h0;
            }
        }
        return;
    }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (e.m % 4 == 0) { /* 16-byte vector atomics (sm_90) */
        for (int i = tid; i < BN * BM / 4; i += NT) {
            const int nl = i / (BM / 4), ml = (i % (BM / 4)) * 4;
            const int64_t mm = m0 + ml, nn = n0 + nl;
            if (mm < e.m && nn < e.n)
                atomicAdd(reinterpret_cast<float4 *>(&e.ws[nn * e.m + mm]),
                          *reinterpret_cast<const float4 *>(&cs[nl * CLD + ml]));
        }
    } else
#endif
    {
        for (int i = tid; i < BN * BM; i += NT) {
            const int nl = i / BM, ml = i % BM;
            const int64_t mm = m0 + ml, nn = n0 + nl;
            if (mm < e.m && nn < e.n) atomicAdd(&e.ws[nn * e.m + mm], cs[nl * CLD + ml]);
        }
    }
    __threadfence();
    tile_sync<BAR, NT>();
    __shared__ unsigned int last;
    if (tid == 0) {
        unsigned int *cnt = &e.counters[blockIdx.y * gridDim.x + blockIdx.x];
        const unsigned int prev = atomicAdd(cnt, 1u);
        last = (prev == gridDim.z - 1);
        if (last) *cnt = 0; /* ready for the next launch */
    }
    tile_sync<BAR, NT>();
    if (!last) return;
    __threadfence();
    if (vec) { /* the sums, 8 features at a time, clearing the workspace behind */
        const int c = tid % CH;
        const int64_t mm = m0 + c * 8;
        if (mm >= e.m) return;
        float b[8];
        load_bias8(e, mm, b);
        float *__restrict__ ws = e.ws;
#pragma unroll 4
        for (int nl = tid / CH; nl < BN; nl += NT / CH) {
            const int64_t nn = n0 + nl;
            if (nn >= e.n) break;
            float4 *w = reinterpret_cast<float4 *>(ws + nn * e.m + mm);
            const float4 v0 = __ldcg(w), v1 = __ldcg(w + 1);
            __stcg(w, make_float4(0.f, 0.f, 0.f, 0.f));
            __stcg(w + 1, make_float4(0.f, 0.f, 0.f, 0.f));
            store8<ACT>(e, v0, v1, b, load_res8(e, mm, nn), mm, nn);
        }
        return;
    }
    for (int i = tid; i < BN * BM; i += NT) {
        const int nl = i / BM, ml = i % BM;
        const int64_t mm = m0 + ml, nn = n0 + nl;
        if (mm < e.m && nn < e.n) {
            float *w = &e.ws[nn * e.m + mm];
            const float v = __ldcg(w);
            __stcg(w, 0.0f);
            e.y[nn * e.ldy + mm] = epi_value<ACT>(e, v, mm, nn);
        }
    }
}

/* store_ctile_act for the launch's activation (uniform over the grid): its
 * own instance for the common ones, the rest share one that switches per
 * element (SP_CUDA_ACT_ANY; an instance each would cost compile time that
 * no model here needs). */
constexpr int SP_CUDA_ACT_ANY = -1;
template <int BM, int BN, int CLD, int NT, int BAR = 0>
__device__ void store_ctile(const float *cs, int64_t m0, int64_t n0, const Epi &e, int tid) {
    switch (e.act) {
    case SP_CUDA_ACT_NONE: store_ctile_act<BM, BN, CLD, NT, BAR, SP_CUDA_ACT_NONE>(cs, m0, n0, e, tid); break;
    case SP_CUDA_ACT_RELU: store_ctile_act<BM, BN, CLD, NT, BAR, SP_CUDA_ACT_RELU>(cs, m0, n0, e, tid); break;
    case SP_CUDA_ACT_CLIP: store_ctile_act<BM, BN, CLD, NT, BAR, SP_CUDA_ACT_CLIP>(cs, m0, n0, e, tid); break;
    case SP_CUDA_ACT_GELU: store_ctile_act<BM, BN, CLD, NT, BAR, SP_CUDA_ACT_GELU>(cs, m0, n0, e, tid); break;
    default: store_ctile_act<BM, BN, CLD, NT, BAR, SP_CUDA_ACT_ANY>(cs, m0, n0, e, tid); break;
    }
}

/* ---- the skeleton -------------------------------------------------------- */
/* metadata of a CTA's chunks in shared memory (ptr == nullptr: read it from
 * global memory); entry (row r, chunk c) at ptr[r * stride + c - cbeg] */
struct Meta {
    const int *ptr;
    int cbeg, stride;
};

template <template <int> class FT, int WM, int WN, int WARPS_M, int WARPS_N, int WARPS_K,
          int KSUB, int STAGES, bool VEC>
struct Kernel {
    using F = FT<WM>;
    using Params_t = typename F::Params;
    static constexpr int BM = 16 * WM * WARPS_M;
    static constexpr int BN = 8 * WN * WARPS_N;
    static constexpr int CW = F::CW;
    static constexpr int NT = 32 * WARPS_M * WARPS_N * WARPS_K;
    static constexpr int CPS = WARPS_K * KSUB; /* chunks per stage */
    static constexpr int WARPS_K_ = CPS;       /* for launch(): chunks per stage */
    static_assert(F::W_SMEM || KSUB == 1, "register-fed formats take one chunk per warp");
    /* X: [stage][chunk][BN rows][LD halves]; +16 B per row keeps ldmatrix
     * conflict-free */
    static constexpr int LD = CW + 8;
    static constexpr int XCHUNK = BN * LD;
    static constexpr int XSTAGE = CPS * XCHUNK;
    static constexpr int XBYTES = STAGES * XSTAGE * 2;
    /* W (when the format stages it): [stage][chunk][WCH bytes] */
    static constexpr int WCH = F::W_SMEM ? F::template wchunk<BM>() : 0;
    static constexpr int WBYTES = STAGES * CPS * WCH;
    static constexpr int CLD = BM + 4; /* fp32 C tile [BN][CLD] */
    static constexpr int CBYTES = BN * CLD * 4;
    static constexpr int MBYTES = F::META_CAP * 4;
    static constexpr int SMEM =
        (XBYTES + WBYTES + MBYTES) > CBYTES ? (XBYTES + WBYTES + MBYTES) : CBYTES;
    static constexpr int V = CW / 8; /* 16-byte pieces per row of a chunk */
    static constexpr int XPIECES = CPS * BN * V;
    static constexpr int XR = (XPIECES + NT - 1) / NT;

    /* k offsets of this thread's X pieces for the stage starting at chunk
     * c0 (-1: outside); computed one stage ahead so that formats whose
     * offsets come from memory (BSR block_col) never stall the copy */
    struct XPre {
        int kc[XR];
    };
    __device__ static void x_pre(const Params_t &p, XPre &q, int mb, int c0, int cend,
                                 const Meta &mt) {
#pragma unroll
        for (int r = 0; r < XR; r++) {
            const int i = threadIdx.x + r * NT;
            const int c = c0 + i / (BN * V);
            q.kc[r] = (i < XPIECES && c < cend) ? F::chunk_k0(p, mb, c, mt) : -1;
        }
    }
    __device__ static void load_x(const XPre &q, __half *xs, const __half *x, int64_t ldx,
                                  int64_t n, int64_t k, int64_t n0) {
#pragma unroll
        for (int r = 0; r < XR; r++) {
            const int i = threadIdx.x + r * NT;
            if (i >= XPIECES) break;
            const int cc = i / (BN * V);
            const int row = (i / V) % BN;
            const int v = i % V;
            __half *dst = xs + cc * XCHUNK + row * LD + v * 8;
            const int64_t kk = q.kc[r] < 0 ? k : (int64_t)q.kc[r] + v * 8;
            const int64_t nn = n0 + row;
            if (VEC) {
                const bool ok = q.kc[r] >= 0 && nn < n && kk < k;
                cp_async16(dst, ok ? (const void *)(x + nn * ldx + kk) : (const void *)x,
                           ok ? 16 : 0);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    const bool ok = q.kc[r] >= 0 && nn < n && kk + e < k;
                    dst[e] = ok ? x[nn * ldx + kk + e] : __float2half(0.0f);
                }
            }
        }
    }

    __device__ static void run(const Params_t &p, const __half *__restrict__ x, int64_t ldx,
                               int64_t k, const Epi &e) {
        extern __shared__ __align__(16) unsigned char smem_raw[];
        __half *xs = reinterpret_cast<__half *>(smem_raw);
        unsigned char *wsm = smem_raw + XBYTES;
        const int lane = threadIdx.x & 31;
        const int warp = threadIdx.x >> 5;
        const int wk = warp % WARPS_K;
        const int wn = (warp / WARPS_K) % WARPS_N;
        const int wm = warp / (WARPS_K * WARPS_N);

        const int mb = F::row_block(p, blockIdx.x);
        const int64_t n0 = (int64_t)blockIdx.y * BN;
        const int nch = F::nchunks(p, mb);
        /* split-K range of this CTA, in whole stages */
        const int nst_all = (nch + CPS - 1) / CPS;
        const int per = (nst_all + gridDim.z - 1) / gridDim.z;
        const int st_begin = blockIdx.z * per;
        const int st_end = min(nst_all, st_begin + per);
        const int nst = max(0, st_end - st_begin);
        const int cbeg = st_begin * CPS;
        const int cend = min(nch, st_end * CPS);
        const int mtile0 = mb * (BM / 16) + wm * WM;
        Meta mt = {nullptr, cbeg, 0};
        if constexpr (F::META_CAP > 0) {
            if (!e.no_meta) {
                int *ms = reinterpret_cast<int *>(smem_raw + XBYTES + WBYTES);
                mt.stride = F::template meta_load<BM>(p, ms, mb, cbeg, cend);
                if (mt.stride >= 0) mt.ptr = ms;
                __syncthreads();
            }
        }

        float acc[WM][WN][4];
#pragma unroll
        for (int i = 0; i < WM; i++)
#pragma unroll
            for (int j = 0; j < WN; j++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;

        XPre pre;
        typename F::template WPre<BM, CPS, NT> wpre;
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            if (s < nst) {
                x_pre(p, pre, mb, cbeg + s * CPS, cend, mt);
                load_x(pre, xs + s * XSTAGE, x, ldx, e.n, k, n0);
                if constexpr (F::W_SMEM) {
                    F::w_pre(p, wpre, mb, cbeg + s * CPS, cend, mt);
                    F::load_w(p, wpre, wsm + s * CPS * WCH, mb, cbeg + s * CPS, cend);
                }
            }
            cp_async_commit();
        }
        x_pre(p, pre, mb, cbeg + (STAGES - 1) * CPS, cend, mt);
        if constexpr (F::W_SMEM) F::w_pre(p, wpre, mb, cbeg + (STAGES - 1) * CPS, cend, mt);
        typename F::Frag cur, nxt;
        if constexpr (!F::W_SMEM) {
            const int c = cbeg + wk;
            if (c < cend) F::load(p, cur, mb, mtile0, c, lane);
        }
        for (int s = 0; s < nst; s++) {
            cp_async_wait<STAGES - 2>();
            __syncthreads();
            {
                const int sl = s + STAGES - 1;
                if (sl < nst) {
                    load_x(pre, xs + (sl % STAGES) * XSTAGE, x, ldx, e.n, k, n0);
                    if constexpr (F::W_SMEM) {
                        F::load_w(p, wpre, wsm + (sl % STAGES) * CPS * WCH, mb, cbeg + sl * CPS,
                                  cend);
                        F::w_pre(p, wpre, mb, cbeg + (sl + 1) * CPS, cend, mt);
                    }
                    x_pre(p, pre, mb, cbeg + (sl + 1) * CPS, cend, mt);
                }
                cp_async_commit();
            }
            const int buf = s % STAGES;
#pragma unroll
            for (int u = 0; u < KSUB; u++) {
                const int cc = wk * KSUB + u; /* chunk within the stage */
                const int c = cbeg + s * CPS + cc;
                if (c >= cend) break;
                const __half *xw = xs + buf * XSTAGE + cc * XCHUNK + (wn * WN * 8) * LD;
                if constexpr (F::W_SMEM) {
                    F::template mma_s<WN, LD>(p, wsm + (buf * CPS + cc) * WCH, acc, xw, wm,
                                              mtile0, lane);
                } else {
                    if (c + CPS < cend) F::load(p, nxt, mb, mtile0, c + CPS, lane);
                    F::template mma<WN, LD>(p, cur, acc, xw, mtile0, lane);
                    cur = nxt;
                }
            }
        }
        cp_async_wait<0>();
        __syncthreads(); /* the stages become the C tile */

        float *cs = reinterpret_cast<float *>(smem_raw);
        const int gid = lane >> 2, tig = lane & 3;
        if (WARPS_K > 1) {
            for (int i = threadIdx.x; i < BN * CLD; i += NT) cs[i] = 0.0f;
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < WM; i++)
#pragma unroll
            for (int j = 0; j < WN; j++)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int ml = (wm * WM + i) * 16 + gid + (q >> 1) * 8;
                    const int nl = (wn * WN + j) * 8 + tig * 2 + (q & 1);
                    if (WARPS_K > 1)
                        atomicAdd(&cs[nl * CLD + ml], acc[i][j][q]);
                    else
                        cs[nl * CLD + ml] = acc[i][j][q];
                }
        __syncthreads();

        store_ctile<BM, BN, CLD, NT>(cs, (int64_t)mb * BM, n0, e, threadIdx.x);
    }
};

template <class K>
__global__ void __launch_bounds__(K::NT) kernel_entry(typename K::Params_t p, const __half *x,
                                                      int64_t ldx, int64_t k, Epi e) {
    K::run(p, x, ldx, k, e);
}

/* ---- host side ----------------------------------------------------------- */
/* Launch setup (shared-memory limits, occupancy, SM counts) is cached per
 * device: the runtime may serve several GPUs from one process. Slot of the
 * current device in a cache of kDevSlots entries, or -1 (do not cache). */
constexpr int kDevSlots = 32;
inline int dev_slot() {
    int d = 0;
    return (cudaGetDevice(&d) == cudaSuccess && d >= 0 && d < kDevSlots) ? d : -1;
}
int sm_count();
/* split-K factor: as many CTAs as fit resident at once (`slots`), each
 * split keeping >= min_stages stages */
int pick_split(int64_t ctas_xy, int nstages, int slots, int min_stages);
/* sp_cuda_spmm_set_cluster_split: 1 (default) lets sm90_common.cuh's
 * plan_split (the sm_90 2:4 and BSR kernels' launchers) sum a split in the
 * CTA cluster */
extern int g_cluster_split;
int make_epi(const sp_cuda_spmm_args *a, int64_t m, int64_t k, Epi *e, sp_cuda_status *st);
/* spmm_24_sm90.cu: the device is sm_90 (Hopper), where the wgmma kernel runs */
bool sm90_ok();
int run24_sm90(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, const Epi &e, sp_cuda_status *st);
/* The 2:4 kernel with an unstructured overflow fused in (the CSR split
 * path's fused form, spmm_csr_split24.cu): segs, a1 and pairs as in
 * sp_cuda_csr_split24's fused, fused_a1 and fused_pairs. Needs sm90_ok(),
 * X's rows 16-byte aligned (x_vec_ok) and a->n >= 1; never splits K. */
int run24_sm90_fused(const sp_cuda_24 *w, const void *segs, const void *a1, int64_t pairs,
                     const sp_cuda_spmm_args *a, sp_cuda_status *st);
/* spmm_csr_sm90.cu: the tiled CSR weight w on wgmma, configuration cfg
 * (0..7, listed there), tiles in slots of
 * slot_bytes; needs sm90_ok() and X's rows 16-byte aligned (x_vec_ok) */
int run_csr_sm90(int cfg, const sp_cuda_csr *w, const sp_cuda_spmm_args *a, const Epi &e, int slot_bytes,
                 sp_cuda_status *st);

/* spmm_csr_split24.cu: sp_cuda_csr_spmm's SP_CUDA_CSR_SPLIT24 path (w's
 * split24 may be NULL: SP_CUDA_E_UNSUPPORTED), and the release of a split
 * (accepts NULL) */
int run_split24(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st);
void split24_free(sp_cuda_csr_split24 *s);

/* X can take the 16-byte cp.async path */
inline bool x_vec_ok(const sp_cuda_spmm_args *a, int64_t k) {
    return k % 8 == 0 && a->ldx % 8 == 0 && ((uintptr_t)a->x & 15) == 0;
}

/* *occ = CTAs of kernel fn (threads each, smem dynamic bytes) resident per
 * SM, at least 1; the first call per device raises fn's dynamic
 * shared-memory limit to smem when above 32 KB, and the answer is kept in
 * cache[kDevSlots] (one array per kernel; a race only repeats idempotent
 * steps). 0, or the cudaError_t of the attribute call. */
template <class Fn>
int occupancy_once(Fn *fn, int threads, int smem, int *cache, int *occ, sp_cuda_status *st) {
    const int slot = dev_slot();
    if (slot >= 0 && cache[slot]) {
        *occ = cache[slot];
        return 0;
    }
    if (smem > 32 * 1024) {
        cudaError_t err =
            SP_CUDA_CHECK(st, cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        if (err != cudaSuccess) return (int)err;
    }
    int o = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o, fn, threads, smem) != cudaSuccess || o < 1) o = 1;
    if (slot >= 0) cache[slot] = o;
    *occ = o;
    return 0;
}

template <class KT>
int launch(const typename KT::Params_t &p, int64_t gx, int nchunks_max, int per_sm,
           const sp_cuda_spmm_args *a, int64_t k, Epi e, sp_cuda_status *st) {
    const int64_t gy = (a->n + KT::BN - 1) / KT::BN;
    if (gx <= 0 || gy <= 0) return 0;
    if (gy > 65535) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "spmm: n too large");
    static int occ_cache[kDevSlots]; /* per instantiation */
    int occ = 0;
    const int rc = occupancy_once(kernel_entry<KT>, KT::NT, KT::SMEM, occ_cache, &occ, st);
    if (rc) return rc;
    const int nst = (nchunks_max + KT::WARPS_K_ - 1) / KT::WARPS_K_;
    /* per_sm caps the resident CTAs a split may count on (measured: at
     * N = 128 one CTA per SM beats two, the split-K traffic costs more) */
    const int z = e.ws ? pick_split(gx * gy, nst, (occ < per_sm ? occ : per_sm) * sm_count(), 2)
                       : 1;
    kernel_entry<KT><<<dim3((unsigned)gx, (unsigned)gy, (unsigned)z), KT::NT, KT::SMEM,
                       (cudaStream_t)a->stream>>>(p, (const __half *)a->x, a->ldx, k, e);
    return (int)SP_CUDA_CHECK(st, cudaGetLastError());
}

} // namespace spmm

#endif
