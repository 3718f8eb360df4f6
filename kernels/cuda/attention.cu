/*
 * attention.cu - fused scaled-dot-product attention (spk_attention,
 * runtime/cuda/cuda_kernels.h): QK^T, scale, additive mask, softmax and the
 * product with V in one kernel, so the [sq, sk] scores never reach memory.
 *
 * The backend finds MatMul(Q, K^T) -> [Div|Mul] -> Add(mask) -> Softmax ->
 * MatMul(., V) with the head-split Transposes around it and runs it here.
 * Unfused, BERT-base at batch 32 spent per layer 16 us on the QK^T batched
 * GEMM, 11 us on the PV one and the softmax's pass over 12.6 MB of scores in
 * between (H200).
 *
 * Shape of the work (FlashAttention-2's order): a CTA of 4 warps takes 64
 * query rows of one (batch, head); each warp owns 16 rows. Q is loaded once
 * into registers as mma.sync A fragments; K and V tiles of 64 keys stream
 * through shared memory with cp.async (double-buffered). Per tile each
 * warp computes its 16 x 64 scores with m16n8k16 tensor-core MMAs (fp32
 * accumulators), applies scale and mask, updates its rows' running max and
 * sum, rescales its output accumulators and multiplies the probabilities,
 * repacked to fp16 straight from the score accumulators, by the V tile.
 */
#include "runtime/cuda/kernel_common.cuh"

#include <float.h>

namespace {

constexpr int ATT_BM = 64; /* query rows per CTA */
constexpr int ATT_BN = 64; /* keys per tile */
constexpr int ATT_THREADS = 128;

__device__ __forceinline__ unsigned smem_u32(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared; src_bytes 0 writes zeros (rows past the end). */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

/* c += a (16x16, row) * b (16x8, col); fp16 in, fp32 accumulators. */
__device__ __forceinline__ void mma16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned pack_half2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&h);
}

/* Rows of D halves padded by 8 so that ldmatrix's 8 row addresses fall in
 * distinct banks. */
template <int D> struct att_smem {
    static constexpr int P = D + 8;
    __half q[ATT_BM * P];
    __half k[2][ATT_BN * P];
    __half v[2][ATT_BN * P];
    __half mk[2][ATT_BN]; /* the mask row's keys of the tile, when the CTA's rows share one */
};

/* Tiles of 64 rows of [n, D] strided views into shared memory (pitch
 * D + 8), 16 bytes per cp.async; rows past n are zero. Each thread copies
 * one 16-byte column of rows tid / CH, + RPI, ...; it keeps its source
 * pointers and the rows left as it walks the tiles, so the loop does no
 * 64-bit index arithmetic. NV views of the same length walk together (K
 * and V). fallback is any valid global address for the zero-filling
 * copies, which read nothing. */
template <int D, int NV> struct tile_loader {
    static constexpr int CH = D / 8;             /* 16-byte chunks per row */
    static constexpr int RPI = ATT_THREADS / CH; /* rows per pass */
    static constexpr int PASSES = ATT_BN / RPI;
    const __half *src[NV]; /* row tid / CH of the current tile, column chunk tid % CH */
    int64_t step[NV];      /* RPI rows, in elements */
    int left;              /* rows of the views from this thread's first row of the current tile */
    __device__ __forceinline__ tile_loader(const __half *const (&g)[NV], const int64_t (&stride)[NV], int n)
    {
        const int r = threadIdx.x / CH;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            src[v] = g[v] + r * stride[v] + (threadIdx.x % CH) * 8;
            step[v] = RPI * stride[v];
        }
        left = n - r;
    }
    __device__ __forceinline__ void load(__half *const (&s)[NV], const __half *fallback)
    {
        const int off = (threadIdx.x / CH) * (D + 8) + (threadIdx.x % CH) * 8;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const __half *p = src[v];
#pragma unroll
            for (int i = 0; i < PASSES; i++) {
                const bool in = i * RPI < left;
                cp_async16(s[v] + off + i * RPI * (D + 8), in ? p : fallback, in ? 16 : 0);
                p += step[v];
            }
            src[v] = p;
        }
        left -= ATT_BN;
    }
};

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

template <int D>
__global__ void __launch_bounds__(ATT_THREADS, D <= 64 ? 4 : 2) k_attention(__half *__restrict__ out, const __half *__restrict__ q,
                                                           const __half *__restrict__ k, const __half *__restrict__ v,
                                                           const __half *__restrict__ mask, spk_attn a)
{
    spk::pdl_begin();
    extern __shared__ __align__(16) unsigned char att_raw[];
    att_smem<D> &sm = *reinterpret_cast<att_smem<D> *>(att_raw);
    constexpr int P = D + 8;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t qtiles = (a.sq + ATT_BM - 1) / ATT_BM;
    const int64_t bh = blockIdx.x / qtiles, q0 = (blockIdx.x % qtiles) * ATT_BM;
    const int64_t b = bh / a.heads, h = bh % a.heads;
    const __half *qb = q + b * a.q_s[0] + h * a.q_s[1];
    const __half *kb = k + b * a.k_s[0] + h * a.k_s[1];
    const __half *vb = v + b * a.v_s[0] + h * a.v_s[1];
    const int64_t ntiles = (a.sk + ATT_BN - 1) / ATT_BN;
    const float L2E = 1.4426950408889634f;

    {
        const __half *const g[1] = {qb + q0 * a.q_s[2]};
        const int64_t st[1] = {a.q_s[2]};
        __half *const d[1] = {sm.q};
        tile_loader<D, 1>(g, st, (int)(a.sq - q0)).load(d, q);
    }
    /* The mask: when every row of this CTA reads the same mask row (BERT's
     * [b, 1, 1, s] mask), its 64 keys of each tile ride with the K/V tile
     * through shared memory (8 threads, 16 bytes each); otherwise each
     * thread reads its two rows' values from global memory, all of a tile's
     * before any is used. */
    const __half *mrow = nullptr;
    bool mask_smem = false;
    if (mask) {
        const int64_t rf = bh * a.sq + q0, rl = bh * a.sq + (q0 + ATT_BM < a.sq ? q0 + ATT_BM : a.sq) - 1;
        mrow = mask + ((rf / a.mask_div) % a.mask_mod) * a.sk;
        mask_smem = rf / a.mask_div == rl / a.mask_div && a.sk % 8 == 0 && ((uintptr_t)mask & 15) == 0;
    }
    const __half *mk_src = mask_smem ? mrow + threadIdx.x * 8 : nullptr;
    int mk_left = (int)a.sk - (int)threadIdx.x * 8;
    if (mask_smem && threadIdx.x < ATT_BN / 8)
        cp_async16(sm.mk[0] + threadIdx.x * 8, mk_left > 0 ? mk_src : mrow, mk_left > 0 ? 16 : 0);
    const __half *const gkv[2] = {kb, vb};
    const int64_t skv[2] = {a.k_s[2], a.v_s[2]};
    tile_loader<D, 2> lkv(gkv, skv, (int)a.sk);
    {
        __half *const d[2] = {sm.k[0], sm.v[0]};
        lkv.load(d, q);
    }
    cp_async_commit();

    /* this thread's two rows within the warp's 16: g and g + 8 */
    const int g = lane >> 2, tq = lane & 3;
    const int64_t row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const __half *m0 = nullptr, *m1 = nullptr; /* the two rows' mask rows, read from global memory */
    if (mask && !mask_smem) {
        const int64_t r0 = bh * a.sq + (row0 < a.sq ? row0 : a.sq - 1);
        const int64_t r1 = bh * a.sq + (row1 < a.sq ? row1 : a.sq - 1);
        m0 = mask + ((r0 / a.mask_div) % a.mask_mod) * a.sk;
        m1 = mask + ((r1 / a.mask_div) % a.mask_mod) * a.sk;
    }
    const float sl2 = a.scale * L2E; /* scores go to the exp2 domain in one FMA */

    unsigned qa[D / 16][4];
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float mx0 = -INFINITY, mx1 = -INFINITY, l0 = 0.f, l1 = 0.f;

    for (int64_t t = 0; t < ntiles; t++) {
        const int buf = (int)(t & 1);
        if (t + 1 < ntiles) {
            __half *const d[2] = {sm.k[buf ^ 1], sm.v[buf ^ 1]};
            lkv.load(d, q);
            if (mask_smem && threadIdx.x < ATT_BN / 8) {
                mk_src += ATT_BN;
                mk_left -= ATT_BN;
                cp_async16(sm.mk[buf ^ 1] + threadIdx.x * 8, mk_left > 0 ? mk_src : mrow, mk_left > 0 ? 16 : 0);
            }
            cp_async_commit();
            cp_async_wait<1>();
        } else
            cp_async_wait<0>();
        __syncthreads();
        if (t == 0) {
#pragma unroll
            for (int kc = 0; kc < D / 16; kc++)
                ldsm_x4(qa[kc], sm.q + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * P + kc * 16 + (lane >> 4) * 8);
        }
        /* scores: 16 rows x 64 keys as 8 n8 tiles */
        float s[ATT_BN / 8][4];
#pragma unroll
        for (int j = 0; j < ATT_BN / 8; j++)
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
        const __half *ks = sm.k[buf];
#pragma unroll
        for (int kc = 0; kc < D / 16; kc++)
#pragma unroll
            for (int j = 0; j < ATT_BN / 8; j += 2) {
                unsigned bf[4];
                ldsm_x4(bf, ks + (j * 8 + (lane & 7) + (lane >> 4) * 8) * P + kc * 16 + ((lane >> 3) & 1) * 8);
                mma16816(s[j], qa[kc], bf[0], bf[1]);
                mma16816(s[j + 1], qa[kc], bf[2], bf[3]);
            }
        /* (scale * s + mask) * log2(e), clamped at -FLT_MAX */
        const int64_t key0 = t * ATT_BN;
        const int lim = a.sk - key0 < ATT_BN ? (int)(a.sk - key0) : ATT_BN;
        if (mask_smem) {
#pragma unroll
            for (int j = 0; j < ATT_BN / 8; j++) {
                const float2 f = __half22float2(*reinterpret_cast<const __half2 *>(sm.mk[buf] + j * 8 + tq * 2));
                const float mx = f.x * L2E, my = f.y * L2E;
                s[j][0] = fmaxf(fmaf(s[j][0], sl2, mx), -FLT_MAX);
                s[j][1] = fmaxf(fmaf(s[j][1], sl2, my), -FLT_MAX);
                s[j][2] = fmaxf(fmaf(s[j][2], sl2, mx), -FLT_MAX);
                s[j][3] = fmaxf(fmaf(s[j][3], sl2, my), -FLT_MAX);
            }
        } else if (mask) {
            /* half a tile's values at a time: loads issued together, fewer registers */
#pragma unroll
            for (int j0 = 0; j0 < ATT_BN / 8; j0 += ATT_BN / 16) {
                float mv[ATT_BN / 16][4];
#pragma unroll
                for (int j = 0; j < ATT_BN / 16; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int kk = (j0 + j) * 8 + tq * 2 + (e & 1);
                        mv[j][e] = kk < lim ? __half2float((e < 2 ? m0 : m1)[key0 + kk]) : 0.f;
                    }
#pragma unroll
                for (int j = 0; j < ATT_BN / 16; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        s[j0 + j][e] = fmaxf(fmaf(s[j0 + j][e], sl2, mv[j][e] * L2E), -FLT_MAX);
            }
        } else {
#pragma unroll
            for (int j = 0; j < ATT_BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    s[j][e] = fmaxf(s[j][e] * sl2, -FLT_MAX);
        }
        if (lim < ATT_BN) { /* the last tile: keys past the end take no part */
#pragma unroll
            for (int j = 0; j < ATT_BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (j * 8 + tq * 2 + (e & 1) >= lim)
                        s[j][e] = -INFINITY;
        }
        float tm0 = -INFINITY, tm1 = -INFINITY;
#pragma unroll
        for (int j = 0; j < ATT_BN / 8; j++) {
            tm0 = fmaxf(tm0, fmaxf(s[j][0], s[j][1]));
            tm1 = fmaxf(tm1, fmaxf(s[j][2], s[j][3]));
        }
#pragma unroll
        for (int o_ = 1; o_ <= 2; o_ <<= 1) {
            tm0 = fmaxf(tm0, __shfl_xor_sync(0xffffffffu, tm0, o_));
            tm1 = fmaxf(tm1, __shfl_xor_sync(0xffffffffu, tm1, o_));
        }
        const float nm0 = fmaxf(mx0, tm0), nm1 = fmaxf(mx1, tm1); /* finite: key0 < sk */
        const float c0 = fast_exp2(mx0 - nm0), c1 = fast_exp2(mx1 - nm1);
        mx0 = nm0;
        mx1 = nm1;
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[i][0] *= c0;
            o[i][1] *= c0;
            o[i][2] *= c1;
            o[i][3] *= c1;
        }
#pragma unroll
        for (int j = 0; j < ATT_BN / 8; j++) {
            s[j][0] = fast_exp2(s[j][0] - nm0);
            s[j][1] = fast_exp2(s[j][1] - nm0);
            s[j][2] = fast_exp2(s[j][2] - nm1);
            s[j][3] = fast_exp2(s[j][3] - nm1);
            l0 += s[j][0] + s[j][1];
            l1 += s[j][2] + s[j][3];
        }
        /* o += p v: p's accumulators are the A fragments of k16 chunks */
        const __half *vs = sm.v[buf];
#pragma unroll
        for (int kc = 0; kc < ATT_BN / 16; kc++) {
            unsigned pa[4];
            pa[0] = pack_half2(s[2 * kc][0], s[2 * kc][1]);
            pa[1] = pack_half2(s[2 * kc][2], s[2 * kc][3]);
            pa[2] = pack_half2(s[2 * kc + 1][0], s[2 * kc + 1][1]);
            pa[3] = pack_half2(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
            for (int i = 0; i < D / 8; i += 2) {
                unsigned bf[4];
                ldsm_x4_t(bf, vs + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * P + i * 8 + (lane >> 4) * 8);
                mma16816(o[i], pa, bf[0], bf[1]);
                mma16816(o[i + 1], pa, bf[2], bf[3]);
            }
        }
        __syncthreads(); /* the next iteration's loads overwrite this buffer */
    }
#pragma unroll
    for (int o_ = 1; o_ <= 2; o_ <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, o_);
        l1 += __shfl_xor_sync(0xffffffffu, l1, o_);
    }
    const float i0 = 1.f / l0, i1 = 1.f / l1;
    __half *ob = out + b * a.o_s[0] + h * a.o_s[1];
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
        const int col = i * 8 + tq * 2;
        if (row0 < a.sq)
            *reinterpret_cast<__half2 *>(ob + row0 * a.o_s[2] + col) = __floats2half2_rn(o[i][0] * i0, o[i][1] * i0);
        if (row1 < a.sq)
            *reinterpret_cast<__half2 *>(ob + row1 * a.o_s[2] + col) = __floats2half2_rn(o[i][2] * i1, o[i][3] * i1);
    }
}

template <int D>
int launch_attention(__half *out, const __half *q, const __half *k, const __half *v, const __half *mask,
                     const spk_attn *a, cudaStream_t st)
{
    const size_t smem = sizeof(att_smem<D>);
    static int attr_set[64]; /* per device: the dynamic shared memory opt-in, once */
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess)
        return spk::ret();
    if (dev < 0 || dev >= 64 || !attr_set[dev]) {
        cudaError_t e = cudaFuncSetAttribute(k_attention<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess)
            return (int)e;
        if (dev >= 0 && dev < 64)
            attr_set[dev] = 1;
    }
    const int64_t blocks = a->batch * a->heads * ((a->sq + ATT_BM - 1) / ATT_BM);
    if (blocks > 2147483647LL)
        return SPK_E_UNSUPPORTED;
    spk::launch(k_attention<D>, (unsigned)blocks, ATT_THREADS, smem, st, out, q, k, v, mask, *a);
    return spk::ret();
}

bool aligned8(const int64_t *s) { return s[0] % 8 == 0 && s[1] % 8 == 0 && s[2] % 8 == 0; }

} // namespace

extern "C" int spk_attention(spk_stream s, void *out, const void *q, const void *k, const void *v, const void *mask,
                             const spk_attn *a)
{
    cudaStream_t st = (cudaStream_t)s;
    if (a->batch * a->heads * a->sq == 0)
        return 0;
    if (a->sk <= 0 || a->sk > 2147483647LL || a->sq > 2147483647LL || a->mask_div <= 0 || a->mask_mod <= 0 || !aligned8(a->q_s) || !aligned8(a->k_s) ||
        !aligned8(a->v_s) || !aligned8(a->o_s) || ((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)out) % 16)
        return SPK_E_UNSUPPORTED;
    __half *o = (__half *)out;
    const __half *qq = (const __half *)q, *kk = (const __half *)k, *vv = (const __half *)v, *m = (const __half *)mask;
    switch (a->d) {
    case 32: return launch_attention<32>(o, qq, kk, vv, m, a, st);
    case 64: return launch_attention<64>(o, qq, kk, vv, m, a, st);
    case 128: return launch_attention<128>(o, qq, kk, vv, m, a, st);
    default: return SPK_E_UNSUPPORTED;
    }
}
