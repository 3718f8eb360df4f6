/*
 * spmm_csr_split24.cu - an unstructured weight on the sparse tensor cores:
 * W = B + O with B 2:4 (two nonzeros of each group of four columns) and O
 * the rest (loaders' sp_csr_split24), run as two launches on the stream:
 *
 *     Y = O * X + residual          CUDA-core CSR (spmm_csr.cu's XT path)
 *     Y = act(B * X + bias + Y)     2:4 wgmma.sp / mma.sp (spmm_24*.cu)
 *
 * Why: the tiled CSR kernel on the dense tensor cores expands every 16 x 64
 * tile of W into a dense fragment, so its arithmetic is the dense
 * product's, and at N >= 1024 it stays under cuBLAS at any sparsity (0.84x
 * at 90 %, N = 4096, H200). The 2:4 kernel does half the dense work on
 * the sparse units (1.37x cuBLAS there); what 2:4 cannot hold is few
 * nonzeros once the weight is sparse: for a random pattern of density d a
 * group of four holds more than two with probability 4 d^3 (1 - d) + d^4,
 * i.e. 0.1 % of the positions overflow at 90 % sparsity, 0.7 % at 80 %,
 * 2.3 % at 70 %. That remainder costs the CUDA-core pass, whose time
 * follows its nonzeros, plus reading X and writing Y once more; at N =
 * 4096 the sum beats cuBLAS from about 85-90 % sparsity on
 * (bench/results/spmm-*.md, "split"). The runtime's plan-time tuning
 * times this path beside the others per layer (runtime/cuda/cuda_sparse.c),
 * and the cost model counts it (runtime/cost_model.c, sp_cost_split24).
 *
 * The overflow pass (ovf_kernel) is its own kernel where X's rows are
 * 16-byte aligned and K is at most 11,000 or so: a CTA per 8 tokens (and
 * rows of W, cut when the tokens alone leave SMs idle) stages those
 * tokens' X rows in shared memory transposed (the 8 tokens of column k in
 * one 16-byte slot), then a thread per row of W, two rows at a time, walks
 * their few overflow nonzeros, each a 16-byte shared load and 8 FMAs, and
 * writes the rows' 8 outputs (plus the residual). Traffic: X once (again
 * from L2 per cut) and Y once.
 * Elsewhere it is the CUDA-core CSR path (spmm_csr.cu's XT kernel: X
 * transposed into the workspace, written and read back, then gathered per
 * nonzero from L2); sp_cuda_csr_set_split24_overflow picks that one for
 * comparison.
 *
 * Fused form (N >= 512 on sm_90, where every 64-row slab of W has at most
 * 32 distinct overflow columns in each 128-column window: about 88 %
 * sparsity and up for a random pattern): no overflow pass. The 2:4 kernel itself
 * (spmm_24_sm90.cu, K24t with FU) gathers each window's overflow columns
 * of X from the tiles it already holds in shared memory and adds O's slab
 * times them with one or two dense m64nNk16 wgmmas per pair of stages, into
 * the same fp32 accumulators (no fp16 intermediate). The segments it reads
 * are built at upload (build_fused); where some window has more columns,
 * the weight keeps the two-pass form only.
 *
 * The two-pass form's second launch reads Y as its residual: the 2:4 epilogue reads each
 * element's residual before it stores that element, in the thread that
 * stores it (spmm_common.cuh's rows_with_res, store_ctile_act), so the
 * aliasing is safe; with programmatic dependent launch it still waits for
 * the first launch to finish (griddepcontrol.wait) before it reads Y.
 */
#include "kernels/cuda/spmm_common.cuh"
#include "loaders/sparse_pack.h"
#include "sprun.h" /* SPRUN_ERR_OUT_OF_MEMORY */

#include <stdlib.h>
#include <string.h>

namespace spmm {
static int g_overflow_mode = 0; /* sp_cuda_csr_set_split24_overflow */

/* The fused form is built wherever it fits: every (slab, window) segment at
 * most 32 overflow columns. With the gather laid out for shared memory's
 * banks it beats the two-pass form at every sparsity measured (H200,
 * M = K = 4096, N = 4096: fused 185.6 / 161.9 / 140.8 us at 90 / 95 / 98 %
 * against the two-pass 190.1 / 166.8 / 159.3 and the 2:4 part alone
 * 126.1 / 124.7 / 125.5; N = 1024: 50.1 / 43.8 / 37.2 against 52.5 / 46.9 /
 * 44.8; bench/results/csr-split24-gather-h200-2026-11-29.md). The first
 * layout (a row per lane, ~4 wavefronts a load) lost at 90 and 95 % and was
 * built only where at most a fifth of the segments held overflow. */

void split24_free(sp_cuda_csr_split24 *s) {
    if (!s) return;
    sp_cuda_24_free(&s->base);
    sp_cuda_csr_free(&s->overflow);
    if (s->overflow_cv) cudaFree(s->overflow_cv);
    if (s->fused) cudaFree(s->fused);
    if (s->fused_a1) cudaFree(s->fused_a1);
    free(s);
}

constexpr size_t FSEG_BYTES = 2096, FA1_BYTES = 2048;

/* Orders a segment's cnt slots (the window's columns, bytes 0-31) for the
 * kernel's gather (spmm_24_sm90.cu): each of its loads reads the even or
 * the odd slots of an octet, four slots, in 8 rows of X's 128-byte-swizzled
 * tile, and is free of bank conflicts when the four columns fall in
 * distinct classes c / 2 % 4. Fills those groups of four in slot order,
 * each from the classes it does not hold yet, the fullest first (a class
 * again only when no other is left). */
static void order_slots(unsigned char *slots, int cnt) {
    unsigned char byc[4][32];
    int nc[4] = {0, 0, 0, 0}, taken[4] = {0, 0, 0, 0};
    for (int i = 0; i < cnt; i++) {
        const int c = (slots[i] >> 1) & 3;
        byc[c][nc[c]++] = slots[i];
    }
    for (int grp = 0; grp < 8; grp++) { /* octet grp / 2, parity grp % 2 */
        int used = 0;                   /* classes already in this group */
        for (int q = 0; q < 4; q++) {
            const int i = 8 * (grp / 2) + 2 * q + grp % 2;
            if (i >= cnt) break;
            int best = -1;
            for (int pass = 0; pass < 2 && best < 0; pass++)
                for (int c = 0; c < 4; c++) {
                    const int left = nc[c] - taken[c];
                    if (left > 0 && (pass || !(used & (1 << c))) && (best < 0 || left > nc[best] - taken[best]))
                        best = c;
                }
            used |= 1 << best;
            slots[i] = byc[best][taken[best]++];
        }
    }
}

/* The fused path's segments of overflow o (layout: spmm_24_sm90.cu, Fz):
 * per 64-row slab (their count rounded up to 4, so a CTA tile of up to 256
 * rows always has its four) and 128-column window, the window's distinct
 * columns as slots (order_slots), and o's slab on them as wgmma A
 * fragments (slots 0-15 in the segment, 16-31 in a second set in *a1).
 * Returns 0; 1 where a window holds more than 32 columns (no fused path;
 * the fragments are not built then); or -1 when out of host memory. */
static int build_fused(const sp_csr *o, unsigned char **segs_out, size_t *segs_bytes,
                       unsigned char **a1_out, size_t *a1_bytes, int64_t *pairs_out) {
    const int64_t slabs = ((o->m + 63) / 64 + 3) / 4 * 4, pairs = (o->k + 127) / 128;
    const size_t nseg = (size_t)slabs * (size_t)pairs;
    unsigned char *segs = (unsigned char *)calloc(nseg ? nseg : 1, FSEG_BYTES);
    unsigned char *a1 = NULL;
    size_t na1 = 0, cap1 = 0;
    if (!segs) return -1;
    const uint16_t *val = (const uint16_t *)o->values;
    int rc = 0;
    for (int64_t sl = 0; sl < slabs && !rc; sl++) {
        const int64_t r0 = sl * 64, r1 = r0 + 64 < o->m ? r0 + 64 : o->m;
        unsigned char *seg0 = segs + (size_t)sl * (size_t)pairs * FSEG_BYTES;
        /* slots: a window's columns, in order of first use */
        for (int64_t r = r0; r < r1 && !rc; r++)
            for (int32_t p = o->row_ptr[r]; p < o->row_ptr[r + 1]; p++) {
                const int c = o->col_idx16[p];
                unsigned char *seg = seg0 + (size_t)(c / 128) * FSEG_BYTES;
                int32_t cnt;
                memcpy(&cnt, seg + 32, 4);
                int i = 0;
                while (i < cnt && seg[i] != (unsigned char)(c % 128)) i++;
                if (i < cnt) continue;
                if (cnt == 32) {
                    rc = 1;
                    break;
                }
                seg[cnt++] = (unsigned char)(c % 128);
                memcpy(seg + 32, &cnt, 4);
                if (cnt == 17) { /* a second fragment set */
                    if (na1 == cap1) {
                        cap1 = cap1 ? 2 * cap1 : 16;
                        unsigned char *t = (unsigned char *)realloc(a1, cap1 * FA1_BYTES);
                        if (!t) {
                            rc = -1;
                            break;
                        }
                        a1 = t;
                    }
                    memset(a1 + na1 * FA1_BYTES, 0, FA1_BYTES);
                    const int32_t idx = (int32_t)na1++;
                    memcpy(seg + 36, &idx, 4);
                }
            }
    }
    for (size_t i = 0; i < nseg && !rc; i++) {
        int32_t cnt;
        memcpy(&cnt, segs + i * FSEG_BYTES + 32, 4);
        if (cnt > 1) order_slots(segs + i * FSEG_BYTES, cnt);
    }
    for (int64_t sl = 0; sl < slabs && !rc; sl++) {
        const int64_t r0 = sl * 64, r1 = r0 + 64 < o->m ? r0 + 64 : o->m;
        unsigned char *seg0 = segs + (size_t)sl * (size_t)pairs * FSEG_BYTES;
        /* the fragments: row rl = 16 w + 8 hi + g, slot i = 16 set + 8 part + 2 t + h
         * is lane 4 g + t's register hi + 2 part, half h (m16n8k16 A) */
        for (int64_t r = r0; r < r1; r++)
            for (int32_t p = o->row_ptr[r]; p < o->row_ptr[r + 1]; p++) {
                const int c = o->col_idx16[p];
                unsigned char *seg = seg0 + (size_t)(c / 128) * FSEG_BYTES;
                int i = 0;
                while (seg[i] != (unsigned char)(c % 128)) i++;
                const int rl = (int)(r - r0), w = rl / 16, hi = (rl % 16) / 8, gq = rl % 8;
                const int kk = i % 16, part = kk / 8, t = (kk % 8) / 2, h = kk % 2;
                const size_t off = (((size_t)(w * 32 + gq * 4 + t) * 4 + (size_t)(hi + 2 * part)) * 4) + (size_t)h * 2;
                unsigned char *dst;
                if (i < 16) {
                    dst = seg + 48;
                } else {
                    int32_t idx;
                    memcpy(&idx, seg + 36, 4);
                    dst = a1 + (size_t)idx * FA1_BYTES;
                }
                memcpy(dst + off, &val[p], 2);
            }
    }
    if (rc) {
        free(segs);
        free(a1);
        return rc;
    }
    *segs_out = segs;
    *segs_bytes = nseg * FSEG_BYTES;
    *a1_out = a1;
    *a1_bytes = na1 * FA1_BYTES;
    *pairs_out = pairs;
    return 0;
}

/* uploads the fused path's segments of s's overflow o, where they fit */
static int upload_fused(sp_cuda_csr_split24 *s, const sp_csr *o, void *stream, sp_cuda_status *st) {
    unsigned char *segs = NULL, *a1 = NULL;
    size_t sb = 0, ab = 0;
    int64_t pairs = 0;
    const int b = build_fused(o, &segs, &sb, &a1, &ab, &pairs);
    if (b < 0) return SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "csr split upload: out of host memory");
    if (b > 0) return 0; /* too many columns in a window: the two-pass path only */
    int rc = (int)SP_CUDA_CHECK(st, cudaMalloc(&s->fused, sb));
    if (!rc) rc = (int)SP_CUDA_CHECK(st, cudaMalloc(&s->fused_a1, ab ? ab : 16));
    if (!rc) rc = (int)SP_CUDA_CHECK(st, cudaMemcpyAsync(s->fused, segs, sb, cudaMemcpyHostToDevice, (cudaStream_t)stream));
    if (!rc && ab)
        rc = (int)SP_CUDA_CHECK(st, cudaMemcpyAsync(s->fused_a1, a1, ab, cudaMemcpyHostToDevice, (cudaStream_t)stream));
    if (!rc) rc = (int)SP_CUDA_CHECK(st, cudaStreamSynchronize((cudaStream_t)stream));
    free(segs);
    free(a1);
    if (rc) return rc;
    s->fused_pairs = pairs;
    s->fused_bytes = sb + (ab ? ab : 16);
    return 0;
}
} // namespace spmm

extern "C" int sp_cuda_csr_add_split24(const sp_csr *w, sp_cuda_csr *out, void *stream, sp_cuda_status *st) {
    if (!w || !out || !out->row_ptr)
        return SP_CUDA_FAIL(st, SP_CUDA_E_INVALID, "csr split upload: no uploaded weight");
    if (w->vtype != SP_VT_F16 || !w->col_idx16)
        return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED,
                            "csr split upload: needs fp16 values and 16-bit columns (K <= 65536)");
    if (out->split24) return 0;
    sp_24 b;
    sp_csr o;
    char msg[200] = "csr split upload: ";
    const size_t used = strlen(msg);
    int rc = sp_csr_split24(w, &b, &o, msg + used, sizeof msg - used);
    if (rc != 0)
        return SP_CUDA_FAIL(st, rc == SPRUN_ERR_OUT_OF_MEMORY ? (int)cudaErrorMemoryAllocation : SP_CUDA_E_INVALID,
                            msg);
    sp_cuda_csr_split24 *s = (sp_cuda_csr_split24 *)calloc(1, sizeof *s);
    if (!s) rc = SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "csr split upload: out of host memory");
    if (!rc) rc = sp_cuda_24_upload(&b, &s->base, stream, st);
    if (!rc) rc = sp_cuda_csr_upload(&o, 0, &s->overflow, stream, st);
    if (!rc) { /* the overflow kernel's entries: column and value in one word */
        uint32_t *cv = (uint32_t *)malloc((size_t)(o.nnz ? o.nnz : 1) * 4);
        if (!cv) rc = SP_CUDA_FAIL(st, cudaErrorMemoryAllocation, "csr split upload: out of host memory");
        for (int64_t p = 0; cv && p < o.nnz; p++)
            cv[p] = (uint32_t)o.col_idx16[p] | ((uint32_t)((const uint16_t *)o.values)[p] << 16);
        if (!rc) rc = (int)SP_CUDA_CHECK(st, cudaMalloc(&s->overflow_cv, (size_t)(o.nnz ? o.nnz : 1) * 4));
        if (!rc && o.nnz)
            rc = (int)SP_CUDA_CHECK(st, cudaMemcpyAsync(s->overflow_cv, cv, (size_t)o.nnz * 4, cudaMemcpyHostToDevice,
                                                        (cudaStream_t)stream));
        if (!rc) rc = (int)SP_CUDA_CHECK(st, cudaStreamSynchronize((cudaStream_t)stream));
        free(cv);
    }
    if (!rc && o.nnz) rc = spmm::upload_fused(s, &o, stream, st);
    sp_sparse_matrix mb, mo;
    mb.kind = SP_SPARSE_24;
    mb.u.s24 = b;
    mo.kind = SP_SPARSE_CSR;
    mo.u.csr = o;
    sp_sparse_free(&mb);
    sp_sparse_free(&mo);
    if (rc) {
        spmm::split24_free(s);
        return rc;
    }
    out->split24 = s;
    out->bytes += s->base.bytes + s->overflow.bytes + (size_t)s->overflow.nnz * 4 + s->fused_bytes;
    return 0;
}

namespace spmm {

constexpr int OVF_TN = 8;        /* tokens per CTA: one 16-byte slot per column of X */
constexpr int OVF_THREADS = 512; /* a thread per row of W, two rows 512 apart at a time */
constexpr int OVF_MAX_SMEM = 200 * 1024;

/* shared slot of column k: a padding slot after every 8 columns, so that
 * the four 8-column groups a warp stores at once lie on different banks */
__device__ __forceinline__ int ovf_slot(int k) { return k + (k >> 3); }
static size_t ovf_smem(int64_t k) { return (size_t)(k + k / 8 + 1) * 16; }

/* the value of an overflow entry (column | fp16 value << 16) */
__device__ __forceinline__ float ovf_w(uint32_t e) { return __half2float(__ushort_as_half((unsigned short)(e >> 16))); }

/* one overflow nonzero (value w, X's column in slot xv) into a row's 8 sums */
__device__ __forceinline__ void ovf_fma(float (&acc)[OVF_TN], float w, const uint4 &xv) {
    const __half2 *h2 = reinterpret_cast<const __half2 *>(&xv);
#pragma unroll
    for (int q = 0; q < OVF_TN / 2; q++) {
        const float2 f = __half22float2(h2[q]);
        acc[2 * q] = fmaf(w, f.x, acc[2 * q]);
        acc[2 * q + 1] = fmaf(w, f.y, acc[2 * q + 1]);
    }
}

/* a pair of rows ra, rb (rb valid when hb): their overflow ranges and their
 * sums, started at the residual */
struct OvfPair {
    int pa, pae, pb, pbe;
    float a[OVF_TN], b[OVF_TN];
};
__device__ __forceinline__ void ovf_pair_load(OvfPair &q, const int32_t *__restrict__ rp, const __half *res,
                                              int64_t ldr, int64_t n0, int nt, int ra, int rb, bool hb) {
    q.pa = __ldg(rp + ra);
    q.pae = __ldg(rp + ra + 1);
    q.pb = hb ? __ldg(rp + rb) : 0;
    q.pbe = hb ? __ldg(rp + rb + 1) : 0;
#pragma unroll
    for (int t = 0; t < OVF_TN; t++) {
        q.a[t] = res && t < nt ? __half2float(res[(n0 + t) * ldr + ra]) : 0.f;
        q.b[t] = res && hb && t < nt ? __half2float(res[(n0 + t) * ldr + rb]) : 0.f;
    }
}

/* Y[n0 + t, r] = sum over the overflow nonzeros (r, c) of w * X[n0 + t, c]
 * (+ residual[n0 + t, r]) for the CTA's 8 tokens t (blockIdx.x) and its
 * rows [blockIdx.y * rows, + rows). A thread takes two rows at a time, and
 * loads the next two rows' pointers and residuals before it stores these
 * (the first two before X is staged), so its loads overlap. */
__global__ void __launch_bounds__(OVF_THREADS, 2)
    ovf_kernel(const int32_t *__restrict__ rp, const uint32_t *__restrict__ cv, int m, int k, int rows,
               const __half *__restrict__ x, int64_t ldx, int64_t n, const __half *res, int64_t ldr, __half *y,
               int64_t ldy) {
    extern __shared__ uint4 xs[];
    const int64_t n0 = (int64_t)blockIdx.x * OVF_TN;
    const int nt = n - n0 < OVF_TN ? (int)(n - n0) : OVF_TN;
    const int r0 = blockIdx.y * rows, r1 = m - r0 < rows ? m : r0 + rows;
    int ra = r0 + threadIdx.x;
    OvfPair q;
    if (ra < r1) ovf_pair_load(q, rp, res, ldr, n0, nt, ra, ra + OVF_THREADS, ra + OVF_THREADS < r1);
    /* X's 8 rows, transposed: a thread takes 8 columns, loads them for each
     * of the 8 tokens (16 bytes each, a warp's loads 512 contiguous bytes),
     * transposes the 8 x 8 halves in registers and stores each column's 8
     * tokens as one 16-byte slot (lanes 9 slots apart: no bank conflict) */
    const int k8 = k >> 3;
    for (int c8 = threadIdx.x; c8 < k8; c8 += OVF_THREADS) {
        uint4 v[OVF_TN];
#pragma unroll
        for (int t = 0; t < OVF_TN; t++)
            v[t] = t < nt ? __ldg(reinterpret_cast<const uint4 *>(x + (n0 + t) * ldx) + c8) : make_uint4(0, 0, 0, 0);
        const uint32_t *w = reinterpret_cast<const uint32_t *>(v); /* w[4 t + q]: columns 2q (low), 2q + 1 */
#pragma unroll
        for (int q = 0; q < 4; q++) {
            uint4 lo, hi;
            lo.x = __byte_perm(w[0 + q], w[4 + q], 0x5410);
            lo.y = __byte_perm(w[8 + q], w[12 + q], 0x5410);
            lo.z = __byte_perm(w[16 + q], w[20 + q], 0x5410);
            lo.w = __byte_perm(w[24 + q], w[28 + q], 0x5410);
            hi.x = __byte_perm(w[0 + q], w[4 + q], 0x7632);
            hi.y = __byte_perm(w[8 + q], w[12 + q], 0x7632);
            hi.z = __byte_perm(w[16 + q], w[20 + q], 0x7632);
            hi.w = __byte_perm(w[24 + q], w[28 + q], 0x7632);
            xs[ovf_slot(c8 * 8 + 2 * q)] = lo;
            xs[ovf_slot(c8 * 8 + 2 * q + 1)] = hi;
        }
    }
    __syncthreads();
    for (; ra < r1; ra += 2 * OVF_THREADS) {
        const int rb = ra + OVF_THREADS;
        const bool hb = rb < r1;
        int pa = q.pa, pb = q.pb;
        for (; pa < q.pae && pb < q.pbe; pa++, pb++) {
            const uint32_t ea = __ldg(cv + pa), eb = __ldg(cv + pb);
            ovf_fma(q.a, ovf_w(ea), xs[ovf_slot(ea & 0xffff)]);
            ovf_fma(q.b, ovf_w(eb), xs[ovf_slot(eb & 0xffff)]);
        }
        for (; pa < q.pae; pa++) {
            const uint32_t e = __ldg(cv + pa);
            ovf_fma(q.a, ovf_w(e), xs[ovf_slot(e & 0xffff)]);
        }
        for (; pb < q.pbe; pb++) {
            const uint32_t e = __ldg(cv + pb);
            ovf_fma(q.b, ovf_w(e), xs[ovf_slot(e & 0xffff)]);
        }
        __half2 oa[OVF_TN / 2], ob[OVF_TN / 2];
#pragma unroll
        for (int t = 0; t < OVF_TN / 2; t++) {
            oa[t] = __floats2half2_rn(q.a[2 * t], q.a[2 * t + 1]);
            ob[t] = __floats2half2_rn(q.b[2 * t], q.b[2 * t + 1]);
        }
        const int ra2 = ra + 2 * OVF_THREADS;
        if (ra2 < r1) ovf_pair_load(q, rp, res, ldr, n0, nt, ra2, ra2 + OVF_THREADS, ra2 + OVF_THREADS < r1);
#pragma unroll
        for (int t = 0; t < OVF_TN; t++)
            if (t < nt) {
                y[(n0 + t) * ldy + ra] = t & 1 ? __high2half(oa[t / 2]) : __low2half(oa[t / 2]);
                if (hb) y[(n0 + t) * ldy + rb] = t & 1 ? __high2half(ob[t / 2]) : __low2half(ob[t / 2]);
            }
    }
}

/* The overflow pass through ovf_kernel; SP_CUDA_E_UNSUPPORTED (nothing
 * launched) where it does not apply. Grid: a column of CTAs per 8 tokens,
 * cut over M when that alone would not fill the resident slots (each cut
 * reads the CTA's X rows again, from L2), at least a row per thread. */
static int run_overflow(const sp_cuda_csr *o, const uint32_t *cv, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    const size_t smem = ovf_smem(o->k);
    if (g_overflow_mode == 1 || !cv || !o->col16 || o->vtype != SP_VT_F16 || o->k % 8 || a->ldx % 8 ||
        ((uintptr_t)a->x & 15) || smem > (size_t)OVF_MAX_SMEM || o->m > INT32_MAX)
        return SP_CUDA_E_UNSUPPORTED;
    static int cache[kDevSlots];
    int occ = 0;
    int rc = occupancy_once(ovf_kernel, OVF_THREADS, OVF_MAX_SMEM, cache, &occ, st);
    if (rc) return rc;
    const int64_t gx = (a->n + OVF_TN - 1) / OVF_TN;
    if (gx > INT32_MAX) return SP_CUDA_E_UNSUPPORTED;
    /* resident CTAs: 2 by threads, fewer by shared memory (228 KB per SM) */
    const int64_t per_sm = (228 * 1024) / (int64_t)(smem + 1024), slots = (per_sm < 2 ? (per_sm < 1 ? 1 : per_sm) : 2) *
                                                                      (int64_t)sm_count();
    int64_t cuts = gx >= slots ? 1 : slots / gx;
    const int64_t max_cuts = (o->m + OVF_THREADS - 1) / OVF_THREADS;
    if (cuts > max_cuts) cuts = max_cuts;
    if (cuts > 65535) cuts = 65535;
    if (cuts < 1) cuts = 1;
    const int rows = (int)((o->m + cuts - 1) / cuts);
    cuts = (o->m + rows - 1) / rows;
    ovf_kernel<<<dim3((unsigned)gx, (unsigned)cuts), OVF_THREADS, smem, (cudaStream_t)a->stream>>>(
        o->row_ptr, cv, (int)o->m, (int)o->k, rows, (const __half *)a->x, a->ldx, a->n, (const __half *)a->residual,
        a->ldr, (__half *)a->y, a->ldy);
    return (int)SP_CUDA_CHECK(st, cudaGetLastError());
}

/* Whether the fused form runs where it was built: on sm_90 from N = 512 (below,
 * the 2:4 kernel's small tiles and split-K, which the fused one lacks,
 * win), and where its 128 x 128 tiles fill at least half the GPU or K is
 * at most 768: with no split-K, a few fused CTAs walk a long K alone while
 * the two-pass form's 2:4 part splits it (H200, 90 % sparsity, fused /
 * two-pass us: 128 x 1152, N = 784: 15.2 / 12.9; 256 x 2304, N = 1568:
 * 22.7 / 16.0; but 128 x 512, N = 784: 10.4 / 12.1; 64 x 576, N = 3136:
 * 11.2 / 14.8; 1024 x 1024, N = 4096: 19.5 / 33.5;
 * bench/results/csr-split24-underfill-h200-2026-11-29.md). Mode 4 skips
 * the fill rule. */
static bool fused_runs(const sp_cuda_csr_split24 *s, const sp_cuda_spmm_args *a) {
    if (!s->fused || (g_overflow_mode != 0 && g_overflow_mode != 4) || a->n < 512 || !sm90_ok() ||
        !x_vec_ok(a, s->base.k))
        return false;
    const int64_t tiles = ((s->base.m + 127) / 128) * ((a->n + 127) / 128);
    return g_overflow_mode == 4 || 2 * tiles >= sm_count() || s->base.k <= 768;
}

/* the SP_CUDA_CSR_SPLIT24 path of sp_cuda_csr_spmm (arguments checked there) */
int run_split24(const sp_cuda_csr *w, const sp_cuda_spmm_args *a, sp_cuda_status *st) {
    const sp_cuda_csr_split24 *s = w->split24;
    if (!s) return SP_CUDA_FAIL(st, SP_CUDA_E_UNSUPPORTED, "csr spmm: the 2:4 split of this weight was not built");
    sp_cuda_spmm_args b = *a;
    b.config = 0;
    /* fused: the overflow inside the 2:4 kernel */
    if (fused_runs(s, a)) return run24_sm90_fused(&s->base, s->fused, s->fused_a1, s->fused_pairs, &b, st);
    if (s->overflow.nnz > 0) {
        sp_cuda_spmm_args o = *a;
        o.bias = nullptr;
        o.act = SP_CUDA_ACT_NONE;
        o.config = 0;
        int rc = run_overflow(&s->overflow, s->overflow_cv, &o, st);
        if (rc == SP_CUDA_E_UNSUPPORTED) rc = sp_cuda_csr_spmm(&s->overflow, &o, SP_CUDA_CSR_SIMT, st);
        if (rc || g_overflow_mode == 2) return rc;
        b.residual = a->y;
        b.ldr = a->ldy;
    }
    return sp_cuda_24_spmm(&s->base, &b, st);
}
} // namespace spmm


extern "C" int sp_cuda_csr_split24_fused_runs(const sp_cuda_csr *w, const sp_cuda_spmm_args *a) {
    return w && a && w->split24 && spmm::fused_runs(w->split24, a) ? 1 : 0;
}

extern "C" void sp_cuda_csr_set_split24_overflow(int mode) {
    spmm::g_overflow_mode = mode >= 1 && mode <= 4 ? mode : 0;
}
