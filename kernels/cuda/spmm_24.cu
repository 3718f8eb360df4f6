/*
 * spmm_24.cu - 2:4 structured SpMM on the sparse tensor cores
 * (mma.sp::ordered_metadata m16n8k32, fp16 in, fp32 accumulate), plus the
 * host helpers shared by the tensor-core kernels (split-K choice, epilogue
 * arguments, workspace size).
 *
 * Upload re-packs sp_24 (values [m][kp/2], one meta byte per group) into
 * 576-byte tiles of 16 rows x 32 columns in register-fragment order:
 *   bytes 0..511:  lane l holds a0..a3 of the A fragment (8 halves, 16 B):
 *                  gid = l/4, tig = l%4; a0 = row gid, groups tig (2 kept
 *                  values), a1 = row gid+8, a2/a3 = groups tig+4;
 *   bytes 512..575: 16 metadata words; word 2*gid + t covers groups 4t..4t+3
 *                  of row gid (low 16 bits) and row gid+8 (high 16 bits),
 *                  one nibble a group (first index in bits 0-1, second 2-3).
 * So a warp reads a tile with one 16-byte load per lane plus one 4-byte load.
 */
#include "kernels/cuda/spmm_common.cuh"

#include <stdlib.h>
#include <string.h>

namespace spmm {

int sm_count() {
    static int cached[kDevSlots];
    const int slot = dev_slot();
    if (slot >= 0 && cached[slot]) return cached[slot];
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1)
        n = 100;
    if (slot >= 0) cached[slot] = n;
    return n;
}

static int g_split_hint = 0; /* sp_cuda_spmm_set_split_hint */
static int g_no_meta = 0;    /* sp_cuda_spmm_set_meta_preload */
int g_cluster_split = 1;     /* sp_cuda_spmm_set_cluster_split */

int pick_split(int64_t ctas_xy, int nstages, int slots, int min_stages) {
    if (g_split_hint > 0) slots = sm_count() * g_split_hint;
    /* whole waves only: a second, partial wave of CTAs doubles the time of a
     * memory-bound launch, so the split never exceeds the resident slots */
    if (ctas_xy >= slots || nstages < 2 * min_stages) return 1;
    int64_t z = slots / ctas_xy;
    const int64_t zmax = nstages / min_stages;
    if (z > zmax) z = zmax;
    if (z > 64) z = 64;
    return z < 1 ? 1 : (int)z;
}

int make_epi(const sp_cuda_spmm_args *a, int64_t m, int64_t k, Epi *e, sp_cuda_status *st) {
    if (!a || !a->x || !a->y || a->n < 0)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "spmm: NULL x/y or negative n");
    if (a->ldx < k || a->ldy < m || (a->residual && a->ldr < m))
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "spmm: leading dimension too small");
    if (a->act < SP_CUDA_ACT_NONE || a->act > SP_CUDA_ACT_LEAKYRELU)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "spmm: unknown activation");
    e->bias = (const __half *)a->bias;
    e->residual = (const __half *)a->residual;
    e->ldr = a->ldr;
    e->y = (__half *)a->y;
    e->ldy = a->ldy;
    e->m = m;
    e->n = a->n;
    e->act = a->act;
    e->alpha = a->alpha;
    e->beta = a->beta;
    e->ws = nullptr;
    e->counters = nullptr;
    e->no_meta = g_no_meta;
    e->h_stage = 0;
    e->csplit = 0;
    if (a->workspace && a->workspace_bytes >= sp_cuda_spmm_workspace_bytes(m, a->n)) {
        e->ws = (float *)a->workspace;
        e->counters = (unsigned int *)((char *)a->workspace + (size_t)(m * a->n) * 4);
    }
    return 0;
}

/* ---- the 2:4 format for the skeleton ------------------------------------- */
template <int WM_> struct F24 {
    static constexpr int WM = WM_;
    static constexpr int CW = 32;
    static constexpr bool W_SMEM = true;
    struct Params {
        const uint4 *tiles;
        int mt, kt;
    };
    struct Frag {};
    template <int BM> __host__ __device__ static constexpr int wchunk() { return (BM / 16) * 576; }
    __device__ static int row_block(const Params &, int bx) { return bx; }
    __device__ static int nchunks(const Params &p, int) { return p.kt; }
    static constexpr int META_CAP = 0;
    __device__ static int chunk_k0(const Params &, int, int c, const Meta &) { return c * 32; }
    /* the CTA's BM/16 tiles of chunks [c0, c0 + CPS) into shared memory */
    template <int BM, int CPS, int NT> struct WPre {};
    template <class Q> __device__ static void w_pre(const Params &, Q &, int, int, int, const Meta &) {}
    template <int BM, int CPS, int NT>
    __device__ static void load_w(const Params &p, const WPre<BM, CPS, NT> &, unsigned char *dst,
                                  int mb, int c0, int cend) {
        constexpr int PPC = (BM / 16) * 36; /* 16-byte pieces per chunk */
        for (int i = threadIdx.x; i < CPS * PPC; i += NT) {
            const int cc = i / PPC, t = (i % PPC) / 36, q = i % 36;
            const int c = c0 + cc, mt = mb * (BM / 16) + t;
            const bool ok = c < cend && mt < p.mt;
            cp_async16(dst + cc * wchunk<BM>() + t * 576 + q * 16,
                       ok ? (const void *)(p.tiles + ((int64_t)mt * p.kt + c) * 36 + q)
                          : (const void *)p.tiles,
                       ok ? 16 : 0);
        }
    }
    template <int WN, int LD>
    __device__ static void mma_s(const Params &p, const unsigned char *w, float (&acc)[WM][WN][4],
                                 const __half *xw, int wm, int mtile0, int lane) {
        uint4 v[WM];
        uint32_t e[WM];
#pragma unroll
        for (int i = 0; i < WM; i++) {
            const unsigned char *t = w + (wm * WM + i) * 576;
            v[i] = *reinterpret_cast<const uint4 *>(t + lane * 16);
            e[i] = *reinterpret_cast<const uint32_t *>(t + 512 + ((lane >> 2) * 2 + (lane & 1)) * 4);
        }
#pragma unroll
        for (int j = 0; j < WN; j++) {
            uint32_t b[4];
            ldmatrix_x4(b, xw + (j * 8 + (lane & 7)) * LD + (lane >> 3) * 8);
#pragma unroll
            for (int i = 0; i < WM; i++)
                if (mtile0 + i < p.mt) mma_sp_16832(acc[i][j], v[i], b, e[i]);
        }
    }
};

template <int WM, int WN, int WARPS_M, int WARPS_N, int WARPS_K, int KSUB, int STAGES>
static int run24(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, const Epi &e, int per_sm,
                 sp_cuda_status *st) {
    typename F24<WM>::Params p;
    p.tiles = (const uint4 *)w->tiles;
    p.mt = (int)w->mt;
    p.kt = (int)w->kt;
    constexpr int BM = 16 * WM * WARPS_M;
    const int64_t gx = (w->m + BM - 1) / BM;
    if (x_vec_ok(a, w->k))
        return launch<Kernel<F24, WM, WN, WARPS_M, WARPS_N, WARPS_K, KSUB, STAGES, true>>(
            p, gx, (int)w->kt, per_sm, a, w->k, e, st);
    return launch<Kernel<F24, WM, WN, WARPS_M, WARPS_N, WARPS_K, KSUB, STAGES, false>>(
        p, gx, (int)w->kt, per_sm, a, w->k, e, st);
}

} // namespace spmm

using namespace spmm;

extern "C" void sp_cuda_spmm_set_meta_preload(int on) { spmm::g_no_meta = on ? 0 : 1; }

extern "C" void sp_cuda_spmm_set_cluster_split(int on) { spmm::g_cluster_split = on ? 1 : 0; }

extern "C" void sp_cuda_spmm_set_split_hint(int ctas_per_sm) {
    spmm::g_split_hint = ctas_per_sm > 0 ? ctas_per_sm : 0;
}

extern "C" size_t sp_cuda_spmm_workspace_bytes(int64_t m, int64_t n) {
    if (m <= 0 || n <= 0) return 0;
    const size_t tiles = (size_t)((m + 15) / 16) * (size_t)((n + 7) / 8);
    return (size_t)m * (size_t)n * 4 + tiles * 4 + 256;
}

/* fp16 bits of 0.0 */
static const uint16_t H0 = 0;

extern "C" int sp_cuda_24_upload(const sp_24 *w, sp_cuda_24 *out, void *stream,
                                 sp_cuda_status *st) {
    if (!out) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "2:4 upload: NULL out");
    memset(out, 0, sizeof *out);
    if (!w || w->m <= 0 || w->k <= 0 || !w->values || !w->meta || w->kp < w->k || w->kp % 4)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "2:4 upload: bad sp_24");
    if (w->vtype != SP_VT_F16)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 upload: fp16 values only");
    /* an even number of 32-column tiles: the wgmma kernel takes them in pairs */
    const int64_t mt = (w->m + 15) / 16, kt = (((w->kp + 31) / 32) + 1) & ~(int64_t)1;
    if (mt > INT32_MAX || kt > INT32_MAX || mt * kt > INT32_MAX / 36)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "2:4 upload: matrix too large");
    const size_t bytes = (size_t)(mt * kt) * 576;
    unsigned char *h = (unsigned char *)malloc(bytes);
    if (!h) return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "2:4 upload: host malloc");
    const uint16_t *vals = (const uint16_t *)w->values;
    const int64_t gpr = w->kp / 4; /* groups per row */
    /* group (r, g) -> sanitized nibble and its two values */
    auto group = [&](int64_t r, int64_t g, uint16_t *v0, uint16_t *v1) -> uint32_t {
        if (r >= w->m || g >= gpr) {
            *v0 = *v1 = H0;
            return 0x4; /* positions 0 and 1 */
        }
        const uint8_t mb = w->meta[r * gpr + g];
        int p0 = mb & 3, p1 = (mb >> 2) & 3;
        uint16_t a = vals[r * (w->kp / 2) + 2 * g], b = vals[r * (w->kp / 2) + 2 * g + 1];
        const bool az = (a & 0x7fff) == 0, bz = (b & 0x7fff) == 0;
        if (p0 > p1) {
            int t = p0; p0 = p1; p1 = t;
            uint16_t u = a; a = b; b = u;
        } else if (p0 == p1) {
            /* at most one real value: put it at p0, the zero at another slot */
            const uint16_t keep = az ? b : a;
            const int q = p0 == 0 ? 1 : 0;
            if (q < p0) { p1 = p0; p0 = q; a = H0; b = keep; }
            else { p1 = q; a = keep; b = H0; }
            (void)bz;
        }
        *v0 = a;
        *v1 = b;
        return (uint32_t)(p0 | (p1 << 2));
    };
    for (int64_t tm = 0; tm < mt; tm++)
        for (int64_t tk = 0; tk < kt; tk++) {
            unsigned char *t = h + (size_t)(tm * kt + tk) * 576;
            uint16_t *tv = (uint16_t *)t;
            uint32_t *tm32 = (uint32_t *)(t + 512);
            for (int lane = 0; lane < 32; lane++) {
                const int gid = lane >> 2, tig = lane & 3;
                for (int reg = 0; reg < 4; reg++) {
                    const int64_t r = tm * 16 + gid + (reg & 1) * 8;
                    const int64_t g = tk * 8 + tig + (reg >> 1) * 4;
                    uint16_t v0, v1;
                    group(r, g, &v0, &v1);
                    tv[lane * 8 + reg * 2] = v0;
                    tv[lane * 8 + reg * 2 + 1] = v1;
                }
            }
            for (int word = 0; word < 16; word++) {
                const int gid = word >> 1, t = word & 1;
                uint32_t x = 0;
                for (int half = 0; half < 2; half++)
                    for (int j = 0; j < 4; j++) {
                        uint16_t v0, v1;
                        const uint32_t nib = group(tm * 16 + gid + half * 8, tk * 8 + t * 4 + j,
                                                   &v0, &v1);
                        x |= nib << (half * 16 + j * 4);
                    }
                tm32[word] = x;
            }
        }
    cudaStream_t s = (cudaStream_t)stream;
    cudaError_t e = SP_CUDA_CHECK(st, cudaMalloc(&out->tiles, bytes));
    if (e == cudaSuccess) e = SP_CUDA_CHECK(st, cudaMemcpyAsync(out->tiles, h, bytes,
                                                                cudaMemcpyHostToDevice, s));
    if (e == cudaSuccess) e = SP_CUDA_CHECK(st, cudaStreamSynchronize(s));
    free(h);
    if (e != cudaSuccess) {
        sp_cuda_24_free(out);
        return (int)e;
    }
    out->m = w->m;
    out->k = w->k;
    out->mt = mt;
    out->kt = kt;
    out->bytes = bytes;
    return 0;
}

extern "C" void sp_cuda_24_free(sp_cuda_24 *w) {
    if (!w) return;
    if (w->tiles) cudaFree(w->tiles);
    memset(w, 0, sizeof *w);
}

extern "C" int sp_cuda_24_spmm_path(const sp_cuda_24 *w, const sp_cuda_spmm_args *a, int path,
                                    sp_cuda_status *st) {
    if (!w || !w->tiles) return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "2:4 spmm: no weight");
    Epi e;
    int rc = make_epi(a, w->m, w->k, &e, st);
    if (rc) return rc;
    if (a->n == 0) return 0;
    const bool wg_ok = sm90_ok() && x_vec_ok(a, w->k);
    if (path == SP_CUDA_24_WGMMA && !wg_ok)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "2:4 spmm: the wgmma kernel needs an sm_90 GPU and K, ldx multiples "
                            "of 8 with X 16-byte aligned");
    if (path == SP_CUDA_24_WGMMA || (path == SP_CUDA_24_AUTO && wg_ok))
        return run24_sm90(w, a, e, st);
    /* Small N is bound by reading W: few columns per CTA, K split over 4 warps
     * (and over CTAs) so every SM streams W. Large N: 128 x 128 CTA tiles. */
    if (a->n <= 16) return run24<2, 2, 2, 1, 4, 2, 3>(w, a, e, 2, st);
    if (a->n <= 32) return run24<2, 4, 2, 1, 4, 2, 3>(w, a, e, 2, st);
    if (a->n <= 128) return run24<2, 4, 2, 2, 2, 2, 3>(w, a, e, 1, st);
    /* 256 x 128 tiles: L2 traffic W*N/128 + X*M/256 */
    return run24<4, 8, 4, 2, 1, 2, 3>(w, a, e, 1, st);
}

extern "C" int sp_cuda_24_spmm(const sp_cuda_24 *w, const sp_cuda_spmm_args *a,
                               sp_cuda_status *st) {
    return sp_cuda_24_spmm_path(w, a, SP_CUDA_24_AUTO, st);
}
