/*
 * test_spmm_cuda.cu - every sparse GPU kernel (2:4, BSR 16/32/64, tiled-CSR
 * on tensor cores, CSR on CUDA cores in fp16 and fp32), and the dense sm_90
 * GEMM that shares the 2:4 kernel's epilogue, against a float64
 * CPU reference, on random nonzero data, many shapes: ragged M, K, N, K not
 * a multiple of 8 (scalar X path), ldx > K, empty rows, a dense row, a
 * single nonzero; with and without bias / residual / an activation (each of
 * the epilogue's eight in turn: ReLU, Clip, Sigmoid, GELU, Tanh, HardSwish,
 * HardSigmoid, LeakyReLU) and with and without the split-K workspace (and
 * the 2:4 and BSR kernels' split-K summed in a CTA cluster or through the
 * workspace). Y is poisoned with NaN before each run and every launch runs
 * twice (the second run checks that split-K left its workspace clean).
 *
 * Pass criteria, fp16 outputs: relative L2 error <= 2e-3 AND every element
 * |y - ref| <= 1e-2 |ref| + 2e-3 rms(ref) (fp16 rounding of the output alone
 * is <= 4.9e-4 relative). fp32 outputs: 1e-5 and 1e-4 |ref| + 1e-5 rms.
 * NaN (an unwritten element) always fails.
 *
 * Exit codes: 0 all passed, 1 a failure, 77 no GPU ("no GPU: skipped").
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/spmm_cuda.h"
#include "loaders/sparse_pack.h"
#include "tests/gpu/spmm_testlib.h"

enum { K_24, K_BSR16, K_BSR32, K_BSR64, K_CSR_TC, K_CSR_SIMT, K_CSR_SIMT32, K_24_MMA, K_24_WG,
       K_DENSE, K_CSR_SPLIT, K_COUNT };
static const char *kname[K_COUNT] = {"2:4", "bsr16", "bsr32", "bsr64", "csr-tc", "csr-simt",
                                     "csr-simt-f32", "2:4-mma", "2:4-wgmma", "dense-sm90", "csr-split24"};
static int iscsr(int kind) { return kind == K_CSR_TC || kind == K_CSR_SIMT || kind == K_CSR_SIMT32 || kind == K_CSR_SPLIT; }
static int is24(int kind) { return kind == K_24 || kind == K_24_MMA || kind == K_24_WG; }
static const char *pname[5] = {"random", "empty-rows", "dense-row", "single-nz", "gaps"};

static int failures = 0, passes = 0, unfits = 0;
static int g_tc_cfg = -1; /* >= 0: K_CSR_TC runs this launch configuration */
static int g_bsr_cfg = -1; /* >= 0: the BSR kinds run this launch configuration */
static int g_cfg24 = 0;    /* sp_cuda_spmm_args.config of the 2:4 kinds and of K_DENSE */
static int g_expect_fused = 0; /* K_CSR_SPLIT cases fail unless 1: the fused form ran;
                                  2: the fused form was built but the two-pass one ran */

static void run_case(int kind, int64_t m, int64_t k, int64_t n, int pattern, double density,
                     int epi, int use_ws, int ldx_pad) {
    const bool f32 = kind == K_CSR_SIMT32;
    const size_t es = f32 ? 4 : 2;
    const int64_t ldx = k + ldx_pad;
    float *w = (float *)malloc((size_t)(m * k) * 4);
    int bs = kind == K_BSR16 ? 16 : kind == K_BSR32 ? 32 : 64;
    if (is24(kind)) tl_gen_24(w, m, k, pattern);
    else if (kind >= K_BSR16 && kind <= K_BSR64) tl_gen_blocks(w, m, k, bs, density, pattern);
    else if (kind == K_DENSE) tl_gen_unstructured(w, m, k, 1.0, TL_RANDOM);
    else tl_gen_unstructured(w, m, k, density, pattern);

    float *x = (float *)malloc((size_t)(n * ldx) * 4);
    for (int64_t i = 0; i < n * ldx; i++) x[i] = tl_round(tl_val());
    float *xc = (float *)malloc((size_t)(n * k) * 4); /* compact copy for the reference */
    for (int64_t i = 0; i < n; i++) memcpy(xc + i * k, x + i * ldx, (size_t)k * 4);
    float *bias = NULL, *res = NULL;
    /* epi bit 4: an activation, cycling through every one the epilogue has */
    static const struct { int act; float alpha, beta; } acts[] = {
        {1, 0, 0}, {2, -0.5f, 0.7f}, {3, 0, 0}, {4, 0, 0}, {5, 0, 0}, {6, 0, 0}, {7, 0.2f, 0.5f}, {8, 0.1f, 0}};
    static int act_turn = 0;
    const int ai = (epi & 4) ? (act_turn++ % 8) : -1;
    const int act = ai >= 0 ? acts[ai].act : 0;
    const float alpha = ai >= 0 ? acts[ai].alpha : 0.0f, beta = ai >= 0 ? acts[ai].beta : 0.0f;
    if (epi & 1) {
        bias = (float *)malloc((size_t)m * 4);
        for (int64_t i = 0; i < m; i++) bias[i] = tl_round(tl_val());
    }
    if (epi & 2) {
        res = (float *)malloc((size_t)(n * m) * 4);
        for (int64_t i = 0; i < n * m; i++) res[i] = tl_round(tl_val());
    }
    double *ref = (double *)malloc((size_t)(n * m) * 8);
    tl_reference(w, m, k, xc, n, bias, res, act, ref, alpha, beta);
    /* The split path rounds its intermediate Y = overflow * X + residual to
     * fp16 before the 2:4 part adds to it: each output may differ by that
     * rounding (2^-11 relative) times the activation's slope (at most 1.5),
     * on top of the tolerance below. pref = that intermediate, exactly. */
    double *pref = NULL;
    if (kind == K_CSR_SPLIT) {
        sp_csr hc;
        tl_pack_csr(w, m, k, SP_VT_F32, &hc);
        sp_sparse_matrix b, o;
        memset(&b, 0, sizeof b);
        memset(&o, 0, sizeof o);
        b.kind = SP_SPARSE_24;
        o.kind = SP_SPARSE_CSR;
        float *wo = (float *)malloc((size_t)(m * k) * 4);
        if (sp_csr_split24(&hc, &b.u.s24, &o.u.csr, NULL, 0) || sp_unpack_dense(&o, wo)) { printf("split failed\n"); exit(1); }
        pref = (double *)malloc((size_t)(n * m) * 8);
        tl_reference(wo, m, k, xc, n, NULL, res, 0, pref);
        free(wo);
        sp_sparse_free(&b);
        sp_sparse_free(&o);
        tl_free_csr(&hc);
    }

    /* device buffers in the kernel's element type */
    auto up = [&](const float *h, int64_t cnt) -> void * {
        void *d = NULL;
        if (!h) return NULL;
        CK(cudaMalloc(&d, (size_t)(cnt ? cnt : 1) * es));
        if (f32) {
            CK(cudaMemcpy(d, h, (size_t)cnt * 4, cudaMemcpyHostToDevice));
        } else {
            uint16_t *t = (uint16_t *)malloc((size_t)(cnt ? cnt : 1) * 2);
            for (int64_t i = 0; i < cnt; i++) t[i] = tl_h(h[i]);
            CK(cudaMemcpy(d, t, (size_t)cnt * 2, cudaMemcpyHostToDevice));
            free(t);
        }
        return d;
    };
    void *dx = up(x, n * ldx), *db = up(bias, m), *dr = up(res, n * m), *dy = NULL;
    CK(cudaMalloc(&dy, (size_t)(n * m) * es));
    void *ws = NULL;
    size_t wsb = 0;
    if (use_ws) {
        /* CSR: with room for X transposed, so the CUDA-core path takes its
         * XT kernel (without a workspace, its XS kernel) */
        wsb = iscsr(kind) ? sp_cuda_csr_workspace_bytes(m, k, n) : sp_cuda_spmm_workspace_bytes(m, n);
        CK(cudaMalloc(&ws, wsb));
        CK(cudaMemset(ws, 0, wsb));
    }
    sp_cuda_status st;
    memset(&st, 0, sizeof st);
    sp_cuda_24 w24;
    sp_cuda_bsr wb;
    sp_cuda_csr wc;
    memset(&w24, 0, sizeof w24);
    memset(&wb, 0, sizeof wb);
    memset(&wc, 0, sizeof wc);
    int rc = 0;
    void *dwd = NULL; /* K_DENSE: the weight, fp16 [m][k] */
    if (kind == K_DENSE) {
        dwd = up(w, m * k);
    } else if (is24(kind)) {
        sp_24 h;
        if (tl_pack_24(w, m, k, &h)) { printf("bad 2:4 pattern\n"); exit(1); }
        rc = sp_cuda_24_upload(&h, &w24, NULL, &st);
        tl_free_24(&h);
    } else if (kind >= K_BSR16 && kind <= K_BSR64) {
        sp_bsr h;
        tl_pack_bsr(w, m, k, bs, &h);
        rc = sp_cuda_bsr_upload(&h, &wb, NULL, &st);
        tl_free_bsr(&h);
    } else {
        sp_csr h;
        tl_pack_csr(w, m, k, f32 ? SP_VT_F32 : SP_VT_F16, &h);
        rc = sp_cuda_csr_upload(&h, kind == K_CSR_TC, &wc, NULL, &st);
        if (!rc && kind == K_CSR_SPLIT) rc = sp_cuda_csr_add_split24(&h, &wc, NULL, &st);
        tl_free_csr(&h);
    }
    float *yh = (float *)malloc((size_t)(n * m) * 4);
    uint16_t *yh16 = (uint16_t *)malloc((size_t)(n * m) * 2);
    double worst_l2 = 0;
    bool ran_fused = false; /* K_CSR_SPLIT: sp_cuda_csr_split24_fused_runs before the launch */
    bool ok = rc == 0, unfit = false;
    if (rc) printf("upload failed: %s\n", st.msg);
    for (int rep = 0; rep < 2 && ok; rep++) {
        CK(cudaMemset(dy, 0xff, (size_t)(n * m) * es)); /* NaN in fp16 and fp32 */
        sp_cuda_spmm_args a;
        memset(&a, 0, sizeof a);
        a.n = n; a.x = dx; a.ldx = ldx; a.y = dy; a.ldy = m;
        a.bias = db; a.residual = dr; a.ldr = m; a.act = act; a.alpha = alpha; a.beta = beta;
        a.config = is24(kind) || kind == K_DENSE ? g_cfg24 : 0;
        a.workspace = ws; a.workspace_bytes = wsb; a.stream = NULL;
        const sp_cuda_dense wd = {dwd, m, k, k};
        if (kind == K_CSR_SPLIT) ran_fused = sp_cuda_csr_split24_fused_runs(&wc, &a) != 0;
        if (kind == K_DENSE) rc = sp_cuda_dense_gemm(&wd, &a, &st);
        else if (kind == K_24) rc = sp_cuda_24_spmm(&w24, &a, &st);
        else if (kind == K_24_MMA) rc = sp_cuda_24_spmm_path(&w24, &a, SP_CUDA_24_MMA, &st);
        else if (kind == K_24_WG) rc = sp_cuda_24_spmm_path(&w24, &a, SP_CUDA_24_WGMMA, &st);
        else if (kind >= K_BSR16 && kind <= K_BSR64 && g_bsr_cfg >= 0)
            rc = sp_cuda_bsr_spmm_config(&wb, &a, g_bsr_cfg, &st);
        else if (kind >= K_BSR16 && kind <= K_BSR64) rc = sp_cuda_bsr_spmm(&wb, &a, &st);
        else if (kind == K_CSR_TC && g_tc_cfg >= 0) rc = sp_cuda_csr_spmm_tc_config(&wc, &a, g_tc_cfg, &st);
        else rc = sp_cuda_csr_spmm(&wc, &a,
                                   kind == K_CSR_TC      ? SP_CUDA_CSR_TC
                                   : kind == K_CSR_SPLIT ? SP_CUDA_CSR_SPLIT24
                                                         : SP_CUDA_CSR_SIMT,
                                   &st);
        cudaError_t se = cudaDeviceSynchronize();
        if (rc == SP_CUDA_E_UNSUPPORTED && se == cudaSuccess && g_bsr_cfg >= 0) {
            unfit = true; /* the configuration does not fit this block size, and says so */
            break;
        }
        if (rc || se != cudaSuccess) {
            printf("launch failed: rc=%d %s %s\n", rc, st.msg, cudaGetErrorString(se));
            ok = false;
            if (se != cudaSuccess) exit(1); /* sticky error: nothing else can run */
            break;
        }
        if (f32) {
            CK(cudaMemcpy(yh, dy, (size_t)(n * m) * 4, cudaMemcpyDeviceToHost));
        } else {
            CK(cudaMemcpy(yh16, dy, (size_t)(n * m) * 2, cudaMemcpyDeviceToHost));
            for (int64_t i = 0; i < n * m; i++) yh[i] = tl_f(yh16[i]);
        }
        double num = 0, den = 0;
        for (int64_t i = 0; i < n * m; i++) {
            const double d = (double)yh[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        const double rms = sqrt(den / (double)(n * m)) + 1e-30;
        const double l2 = sqrt(num) / (sqrt(den) + 1e-30);
        const double tol = f32 ? 1e-5 : 2e-3, rel = f32 ? 1e-4 : 1e-2, abs_ = f32 ? 1e-5 : 2e-3;
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n * m; i++) {
            const double d = fabs((double)yh[i] - ref[i]);
            const double extra = pref ? 1.5 * fabs(pref[i]) / 2048.0 : 0.0;
            if (!(d <= rel * fabs(ref[i]) + abs_ * rms + extra)) {
                if (first < 0) first = i;
                bad++;
            }
        }
        if (den == 0 && num == 0) { /* all-zero reference (e.g. relu of nothing) */ }
        if (!(l2 <= tol) && den > 0) ok = false;
        if (bad) ok = false;
        if (l2 > worst_l2 || l2 != l2) worst_l2 = l2;
        if (!ok && first >= 0)
            printf("   first bad element n=%lld m=%lld: got %g want %g (%lld bad)\n",
                   (long long)(first / m), (long long)(first % m), yh[first], ref[first],
                   (long long)bad);
    }
    if (kind == K_CSR_SPLIT) {
        /* whether the fused path (overflow inside the 2:4 kernel) was built
         * and whether it ran; g_expect_fused: what the case is meant to run */
        const bool fused = wc.split24 && wc.split24->fused;
        if (g_expect_fused == 1 && !ran_fused) ok = false;
        if (g_expect_fused == 2 && (!fused || ran_fused)) ok = false;
        printf("[%s] ", ran_fused ? "fused ran" : fused ? "fused built, two-pass ran" : "two-pass only");
    }
    if (kind == K_CSR_TC && g_tc_cfg >= 0) printf("[tc config %d] ", g_tc_cfg);
    if (kind >= K_BSR16 && kind <= K_BSR64 && g_bsr_cfg >= 0) printf("[bsr config %d] ", g_bsr_cfg);
    if ((is24(kind) || kind == K_DENSE) && g_cfg24) printf("[%s config %d] ", is24(kind) ? "2:4" : "dense", g_cfg24);
    printf("%-4s %-13s M=%5lld K=%5lld N=%5lld %-10s dens=%.2f epi=%d act=%d ws=%d ldx+%d  relL2=%.2e\n",
           unfit ? "UNFIT" : ok ? "PASS" : "FAIL", kname[kind], (long long)m, (long long)k, (long long)n,
           pname[pattern], density, epi, act, use_ws, ldx_pad, worst_l2);
    if (unfit) unfits++;
    else if (ok) passes++;
    else failures++;
    sp_cuda_24_free(&w24);
    sp_cuda_bsr_free(&wb);
    sp_cuda_csr_free(&wc);
    cudaFree(dwd);
    cudaFree(dx); cudaFree(db); cudaFree(dr); cudaFree(dy); cudaFree(ws);
    free(w); free(x); free(xc); free(bias); free(res); free(ref); free(pref); free(yh); free(yh16);
}

/* One workspace shared by two CSR weights, as the runtime shares it between
 * its sparse steps: a large layer whose split-K partial sums live in the
 * workspace (tiled path, N = 8) and a small very sparse one whose CUDA-core
 * path transposes X into the same workspace (N = 16), called alternately.
 * The transpose must stay out of the large layer's split-K area, which has
 * to stay zero: the large layer's output after the small call must equal
 * its output from a private workspace. */
static void shared_workspace_case(void) {
    const int64_t m1 = 2048, k1 = 1024, n1 = 8, m2 = 256, k2 = 4096, n2 = 16;
    float *w1 = (float *)malloc((size_t)(m1 * k1) * 4), *w2 = (float *)malloc((size_t)(m2 * k2) * 4);
    tl_gen_unstructured(w1, m1, k1, 0.5, TL_RANDOM);
    tl_gen_unstructured(w2, m2, k2, 0.02, TL_RANDOM);
    sp_csr h1, h2;
    tl_pack_csr(w1, m1, k1, SP_VT_F16, &h1);
    tl_pack_csr(w2, m2, k2, SP_VT_F16, &h2);
    sp_cuda_status st;
    memset(&st, 0, sizeof st);
    sp_cuda_csr d1, d2;
    bool ok = !sp_cuda_csr_upload(&h1, 1, &d1, NULL, &st) && !sp_cuda_csr_upload(&h2, 0, &d2, NULL, &st);
    auto devx = [](int64_t cnt) {
        uint16_t *t = (uint16_t *)malloc((size_t)cnt * 2);
        for (int64_t i = 0; i < cnt; i++) t[i] = tl_h(tl_val());
        void *d = NULL;
        CK(cudaMalloc(&d, (size_t)cnt * 2));
        CK(cudaMemcpy(d, t, (size_t)cnt * 2, cudaMemcpyHostToDevice));
        free(t);
        return d;
    };
    void *x1 = devx(n1 * k1), *x2 = devx(n2 * k2), *y1 = NULL, *y1ref = NULL, *y2 = NULL;
    CK(cudaMalloc(&y1, (size_t)(n1 * m1) * 2));
    CK(cudaMalloc(&y1ref, (size_t)(n1 * m1) * 2));
    CK(cudaMalloc(&y2, (size_t)(n2 * m2) * 2));
    /* shared: the larger split-K area, rounded to 256 bytes, + the X part */
    const size_t s1 = sp_cuda_spmm_workspace_bytes(m1, n1);
    const size_t x2b = sp_cuda_csr_workspace_bytes(m2, k2, n2) - sp_cuda_spmm_workspace_bytes(m2, n2);
    const size_t shb = (s1 + 255) / 256 * 256 + x2b, prb = sp_cuda_csr_workspace_bytes(m1, k1, n1);
    void *sh = NULL, *pr = NULL;
    CK(cudaMalloc(&sh, shb));
    CK(cudaMalloc(&pr, prb));
    CK(cudaMemset(sh, 0, shb));
    CK(cudaMemset(pr, 0, prb));
    sp_cuda_spmm_args a1, a2;
    memset(&a1, 0, sizeof a1);
    a1.n = n1; a1.x = x1; a1.ldx = k1; a1.y = y1ref; a1.ldy = m1; a1.workspace = pr; a1.workspace_bytes = prb;
    ok = ok && !sp_cuda_csr_spmm(&d1, &a1, SP_CUDA_CSR_TC, &st);
    memset(&a2, 0, sizeof a2);
    a2.n = n2; a2.x = x2; a2.ldx = k2; a2.y = y2; a2.ldy = m2; a2.workspace = sh; a2.workspace_bytes = shb;
    a1.y = y1; a1.workspace = sh; a1.workspace_bytes = shb;
    for (int r = 0; r < 3 && ok; r++)
        ok = !sp_cuda_csr_spmm(&d2, &a2, SP_CUDA_CSR_SIMT, &st) && !sp_cuda_csr_spmm(&d1, &a1, SP_CUDA_CSR_TC, &st);
    CK(cudaDeviceSynchronize());
    double num = 0, den = 0;
    if (ok) {
        uint16_t *ya = (uint16_t *)malloc((size_t)(n1 * m1) * 2), *yb = (uint16_t *)malloc((size_t)(n1 * m1) * 2);
        CK(cudaMemcpy(ya, y1, (size_t)(n1 * m1) * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(yb, y1ref, (size_t)(n1 * m1) * 2, cudaMemcpyDeviceToHost));
        for (int64_t i = 0; i < n1 * m1; i++) {
            const double d = (double)tl_f(ya[i]) - tl_f(yb[i]);
            num += d * d;
            den += (double)tl_f(yb[i]) * tl_f(yb[i]);
        }
        free(ya);
        free(yb);
    } else {
        printf("   %s\n", st.msg);
    }
    const double l2 = sqrt(num) / (sqrt(den) + 1e-30);
    ok = ok && l2 <= 1e-3;
    printf("%-4s shared workspace: split-K tiled CSR after the CUDA-core path's transpose, relL2 vs private = %.2e\n",
           ok ? "PASS" : "FAIL", l2);
    if (ok) passes++;
    else failures++;
    sp_cuda_csr_free(&d1);
    sp_cuda_csr_free(&d2);
    tl_free_csr(&h1);
    tl_free_csr(&h2);
    cudaFree(x1); cudaFree(x2); cudaFree(y1); cudaFree(y1ref); cudaFree(y2); cudaFree(sh); cudaFree(pr);
    free(w1);
    free(w2);
}

/* The upload's choice of tiled layout (spmm_csr.cu's tile_pairs_rule):
 * positions at 50 % density, pairs at 10 % and 30 % (below
 * SP_CSR_PAIR_TILES_BELOW). */
static void tile_layout_rule_case(void) {
    const int64_t m = 256, k = 4096;
    const struct { double density; int pairs; } want[] = {{0.5, 0}, {0.1, 1}, {0.3, 1}};
    float *w = (float *)malloc((size_t)(m * k) * 4);
    sp_cuda_status st;
    memset(&st, 0, sizeof st);
    for (const auto &c : want) {
        tl_gen_unstructured(w, m, k, c.density, TL_RANDOM);
        sp_csr h;
        tl_pack_csr(w, m, k, SP_VT_F16, &h);
        sp_cuda_csr d;
        const bool ok = !sp_cuda_csr_upload(&h, 1, &d, NULL, &st) && d.tile_pairs == c.pairs;
        printf("%-4s tiled layout rule: density %.2f -> %s (tile_max %d pieces)\n", ok ? "PASS" : "FAIL",
               c.density, d.tile_pairs ? "pairs" : "positions", (int)d.tile_max);
        if (ok) passes++;
        else failures++;
        sp_cuda_csr_free(&d);
        tl_free_csr(&h);
    }
    free(w);
}

/* the persistent sm_90 2:4 configurations (SP_CUDA_24_PT_FIRST..): every
 * CTA walks two or more tiles, the epilogue warps store each while the
 * consumers run the next; M a multiple of the tile and ragged (1000), fewer
 * 64-column stages per tile than in the ring (K = 128) and more (K = 768),
 * ragged N, X rows padded, every epilogue */
static void persistent_cases(void) {
    printf("[2:4 persistent tiles]\n");
    for (int h = SP_CUDA_24_PT_FIRST; h <= SP_CUDA_24_TILE_HINTS; h++) {
        g_cfg24 = h;
        run_case(K_24_WG, 1152, 128, 5700, 0, 0.5, 7, 0, 0);
        run_case(K_24_WG, 1000, 768, 4500, h % 4, 0.5, 5, 0, 8);
        run_case(K_24_WG, 768, 192, 8500, 1, 0.5, h & 1 ? 6 : 1, 0, 0);
        run_case(K_24_WG, 2304, 64, 4096, 3, 0.5, 0, 0, 0);
        g_cfg24 = 0;
    }
}

int main(int argc, char **argv) {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("no GPU: skipped\n");
        return 77;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount);
    const bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    /* --bsr: the BSR cases only (every configuration, then the rule's) */
    const bool bsr_only = argc > 1 && strcmp(argv[1], "--bsr") == 0;
    /* --split: the CSR split path's cases only (2:4 part + overflow, fused or not) */
    const bool split_only = argc > 1 && strcmp(argv[1], "--split") == 0;
    const bool wg_ok = prop.major == 9 && prop.minor == 0;
    /* --persistent: the persistent 2:4 configurations' cases only */
    if (argc > 1 && strcmp(argv[1], "--persistent") == 0) {
        if (wg_ok) persistent_cases();
        else printf("not an sm_90 GPU: the persistent 2:4 kernel does not run\n");
        printf("\n%d passed, %d failed\n", passes, failures);
        return failures ? 1 : 0;
    }
    tl_seed(12345);
    /* shapes: ragged everything; N spans every kernel configuration
     * (<=16, <=32, <=64/128, large); K % 8 != 0 takes the scalar X path */
    struct { int64_t m, k, n; } shapes[] = {
        {16, 32, 8},    {17, 33, 5},     {64, 128, 16},  {100, 200, 30},  {256, 512, 64},
        {130, 70, 129}, {96, 1000, 1},   {33, 4100, 17}, {300, 256, 300}, {512, 1024, 128},
        {1, 8, 1},      {257, 576, 700}, {200, 4096, 16},
        /* big enough for the wgmma kernel's 256 x 128, 128 x 128 and 64 x 128
         * tiles (2:4 kinds only) */
        {1500, 264, 5000}, {2048, 256, 4096}, {512, 256, 4096}, {64, 136, 12800}};
    const int nbig = 4;
    const int nshape = sizeof shapes / sizeof shapes[0];
    const double dens[] = {0.5, 0.2, 0.05};
    int c = 0;
    for (int kind = 0; kind < K_COUNT && !split_only; kind++)
        for (int s = 0; s < nshape; s++) {
            if (quick && s % 3) continue;
            if (bsr_only && !(kind >= K_BSR16 && kind <= K_BSR64)) continue;
            const int64_t m = shapes[s].m, k = shapes[s].k, n = shapes[s].n;
            if (s >= nshape - nbig && !is24(kind) && (kind != K_DENSE || m * k * n > 600000000LL)) continue;
            /* the wgmma kernels take 16-byte rows of X (and W) only (sm_90 only) */
            if ((kind == K_24_WG || kind == K_DENSE) && (k % 8 || !wg_ok)) continue;
            const int pattern = kind == K_DENSE ? TL_RANDOM : (s + kind) % 4;
            const double d = kind == K_DENSE ? 1.0 : dens[(s + kind) % 3];
            const int epi = (c * 5 + s) % 8;          /* bias | residual | relu */
            const int ws = (c % 3) != 0;              /* most with split-K */
            const int pad = (s % 4 == 1) ? 8 : 0;     /* ldx > K */
            run_case(kind, m, k, n, pattern, d, epi, ws, pad);
            /* every pattern at one mid shape */
            if (s == 4 && kind != K_DENSE)
                for (int p = 0; p < 4; p++) run_case(kind, m, k, n, p, d, 7, 1, 0);
            c++;
        }
    /* the CUDA-core path (X transposed into the workspace) at N <= 16: a
     * long-K weight in one wave, X rows padded past K, and a grid of more
     * than one wave (row_order, per-element stores) */
    if (!bsr_only) {
        if (!split_only) {
            printf("[CSR CUDA-core path at N <= 16]\n");
            run_case(K_CSR_SIMT, 200, 4096, 16, 0, 0.05, 7, 1, 0);
            run_case(K_CSR_SIMT, 17, 33, 5, 1, 0.5, 3, 1, 8); /* ldx = K + 8, K % 8 != 0 */
            run_case(K_CSR_SIMT, 6000, 300, 9, 2, 0.1, 5, 1, 0); /* 750 CTAs: more than one wave */
        }
        /* the split path (2:4 part + overflow) where it is meant to run:
         * sparse weights at large N, bias + residual + activation, with the
         * workspace (the overflow's XT kernel) and without (its XS kernel,
         * and the 2:4 part without split-K); a weight with no overflow at
         * all (2:4 already); ragged everything on the mma.sp route */
        printf("[CSR split into 2:4 + overflow]\n");
        run_case(K_CSR_SPLIT, 512, 1024, 4096, 0, 0.1, 7, 1, 0);
        run_case(K_CSR_SPLIT, 256, 2048, 1000, 0, 0.2, 6, 0, 0);
        run_case(K_CSR_SPLIT, 300, 512, 700, 1, 0.3, 3, 1, 8);
        run_case(K_CSR_SPLIT, 4096, 256, 128, 2, 0.1, 5, 1, 0);
        run_case(K_CSR_SPLIT, 130, 70, 129, 3, 0.5, 7, 1, 0);
        run_case(K_CSR_SPLIT, 64, 4096, 16, 0, 0.05, 4, 1, 0);
        run_case(K_CSR_SPLIT, 200, 12800, 40, 0, 0.2, 7, 1, 0); /* K past the overflow kernel's shared memory */
        /* the fused path (N >= 512, at most 32 overflow columns per 64 rows
         * and 128 columns): ragged M, an odd number of 64-column stages
         * (K = 904: a last pair of one stage), the 128 x 256 and 128 x 128
         * tiles, windows of more than 16 columns (density 0.12: a second
         * fragment set), every epilogue */
        if (wg_ok) {
            sp_cuda_csr_set_split24_overflow(4); /* the fused kernel wherever it was built, also on the small shapes */
            g_expect_fused = 1;
            run_case(K_CSR_SPLIT, 300, 904, 600, 0, 0.1, 3, 1, 8);
            run_case(K_CSR_SPLIT, 1024, 4096, 2048, 0, 0.08, 6, 1, 0);
            run_case(K_CSR_SPLIT, 512, 2048, 1024, 0, 0.12, 7, 0, 0);
            run_case(K_CSR_SPLIT, 130, 1024, 520, 0, 0.12, 5, 1, 0);
            run_case(K_CSR_SPLIT, 4096, 512, 4096, 0, 0.1, 1, 1, 0);
            g_expect_fused = 0;
            sp_cuda_csr_set_split24_overflow(0);
            run_case(K_CSR_SPLIT, 1024, 2048, 1024, 0, 0.02, 7, 1, 0); /* 98 %: whichever form the default builds */
            /* the default's fill rule (spmm_csr_split24.cu's fused_runs):
             * 10 tiles of 128 x 128 and K = 1024 run two-pass, K = 512 fused */
            g_expect_fused = 2;
            run_case(K_CSR_SPLIT, 130, 1024, 520, 0, 0.1, 5, 1, 0);
            g_expect_fused = 1;
            run_case(K_CSR_SPLIT, 130, 512, 520, 0, 0.1, 5, 1, 0);
            g_expect_fused = 0;
        }
        sp_cuda_csr_set_split24_overflow(3); /* the two-pass path where the fused one would run */
        run_case(K_CSR_SPLIT, 512, 1024, 4096, 0, 0.1, 7, 1, 0);
        run_case(K_CSR_SPLIT, 300, 904, 600, 0, 0.1, 3, 1, 8);
        /* the overflow kernel (ovf_kernel) on more shapes: K past 4096, ragged
         * M and N (a last CTA of 4 tokens); few tokens (its rows cut over
         * several CTAs); many CTAs of 8 tokens with the residual; long rows
         * (70 % sparsity) */
        run_case(K_CSR_SPLIT, 1000, 6000, 900, 0, 0.1, 7, 1, 0);
        run_case(K_CSR_SPLIT, 2048, 1024, 37, 0, 0.2, 6, 1, 0);
        run_case(K_CSR_SPLIT, 520, 768, 3000, 0, 0.1, 3, 0, 0);
        run_case(K_CSR_SPLIT, 256, 512, 1100, 0, 0.3, 2, 1, 8);
        sp_cuda_csr_set_split24_overflow(1); /* the overflow through the CUDA-core CSR path instead */
        run_case(K_CSR_SPLIT, 512, 1024, 4096, 0, 0.1, 7, 1, 0);
        run_case(K_CSR_SPLIT, 256, 2048, 1000, 0, 0.2, 6, 0, 0);
        sp_cuda_csr_set_split24_overflow(0);
    }
    if (split_only) {
        printf("\n%d passed, %d failed (the CSR split cases only)\n", passes, failures);
        return failures ? 1 : 0;
    }
    /* every launch configuration of the tiled CSR path, whatever N it
     * serves, in both tiled layouts (a bitmap bit per position, per pair) */
    for (int layout = SP_CUDA_CSR_TILES_POSITION; layout <= SP_CUDA_CSR_TILES_PAIR && !bsr_only; layout++) {
        sp_cuda_csr_set_tile_layout(layout);
        printf("[tiled layout: %s]\n", layout == SP_CUDA_CSR_TILES_PAIR ? "pairs" : "positions");
        for (int cfg = 0; cfg < sp_cuda_csr_tc_configs(); cfg++) {
            g_tc_cfg = cfg;
            run_case(K_CSR_TC, 130, 70, 129, 0, 0.5, 5, 1, 8);
            run_case(K_CSR_TC, 33, 4100, 17, 1, 0.2, 2, 0, 0);
            run_case(K_CSR_TC, 257, 576, 300, 2, 0.05, 7, 1, 0); /* 24-piece slots */
            run_case(K_CSR_TC, 256, 512, 64, 0, 0.2, 7, 1, 0);   /* 64-piece slots */
            run_case(K_CSR_TC, 256, 512, 40, 1, 0.5, 5, 0, 0);   /* full slots */
            run_case(K_CSR_TC, 17, 33, 5, 3, 0.5, 3, 1, 0);      /* ragged K: pairs cut by K */
            run_case(K_CSR_TC, 130, 1000, 129, 1, 0.3, 7, 1, 0); /* ragged M, N, K; aligned rows (wgmma) */
            run_case(K_CSR_TC, 192, 4160, 260, 2, 0.1, 4, 0, 0); /* long K, no split-K, N past 256 */
            g_tc_cfg = -1;
        }
        /* the rule's configuration over every pattern and N range */
        for (int s = 0; s < nshape - nbig; s++)
            run_case(K_CSR_TC, shapes[s].m, shapes[s].k, shapes[s].n, s % 4, dens[s % 3], (s * 3) % 8, s % 2, 0);
    }
    sp_cuda_csr_set_tile_layout(SP_CUDA_CSR_TILES_RULE);
    if (!bsr_only) tile_layout_rule_case();
    /* every BSR launch configuration that fits the block size (one that
     * does not must say so), whatever N it serves */
    for (int cfg = 0; cfg < sp_cuda_bsr_configs(); cfg++) {
        g_bsr_cfg = cfg;
        for (int kind = K_BSR16; kind <= K_BSR64; kind++) {
            run_case(kind, 130, 200, 129, cfg % 4, 0.5, 5, 1, 8);
            run_case(kind, 257, 576, 300, (cfg + 1) % 4, 0.2, 2, cfg % 2, 0);
            /* several 256-row groups (the last one short), ragged K, N over
             * several CTA tiles, with and without split-K */
            run_case(kind, 600, 1000, 300, cfg % 4, 0.3, 7, 1, 8);
            run_case(kind, 520, 1024, 200, (cfg + 2) % 4, 0.5, 5, 0, 0);
        }
        g_bsr_cfg = -1;
    }
    /* the sm_90 BSR configurations with split-K both ways, as for the 2:4
     * kernel below: in the CTA cluster (with and without a workspace) and
     * through the workspace:
     *  - K sized so the split is 4 or 8 (a quarter of the chunks per group),
     *    ragged M and N, each block size;
     *  - long K at low block density: chunk lists of hundreds per group,
     *    with runs of chunks longer than the pipeline's stages in which a
     *    block row has no block, at N = 16 and 40 (split) and N = 300 (no
     *    split);
     *  - TL_GAPS: the upper 64 rows of each 128 have a block in every block
     *    column, the lower ones only after gaps of 1, 2, ... 17 block
     *    columns, so one gap equals the stage count of each configuration
     *    (at most 16): the tall-unit kernel's warpgroup holding a stage must
     *    release it before waiting for the chunk that refills it */
    for (int cl = 1; wg_ok && cl >= 0; cl--) {
        sp_cuda_spmm_set_cluster_split(cl);
        printf("[BSR wgmma split-K %s]\n", cl ? "in the CTA cluster" : "through the workspace");
        /* the sm_90 configurations, numbered last */
        for (int wcfg = sp_cuda_bsr_configs() - sp_cuda_bsr_wg_configs(); wcfg < sp_cuda_bsr_configs(); wcfg++) {
            g_bsr_cfg = wcfg;
            run_case(K_BSR32, 520, 1024, 100, 0, 0.5, 7, 1, 0); /* 8 CTAs per tile */
            run_case(K_BSR32, 520, 512, 64, 1, 0.5, 5, 0, 0);   /* 4, no workspace */
            run_case(K_BSR16, 300, 512, 40, 2, 0.5, 3, 1, 8);   /* 8 */
            run_case(K_BSR64, 600, 1024, 129, 3, 0.5, 6, 1, 0); /* 4 */
            run_case(K_BSR32, 256, 8192, 16, 0, 0.3, 5, 1, 0);
            run_case(K_BSR32, 256, 8192, 300, 0, 0.1, 1, 0, 0);
            run_case(K_BSR16, 256, 8192, 16, 0, 0.1, 5, 1, 0);
            run_case(K_BSR64, 256, 8192, 40, 0, 0.3, 7, 1, 0);
            run_case(K_BSR16, 128, 2560, 300, TL_GAPS, 0, 1, 0, 0);
            run_case(K_BSR32, 256, 5120, 16, TL_GAPS, 0, 5, 1, 0);
            run_case(K_BSR32, 128, 5120, 260, TL_GAPS, 0, 0, 0, 0);
            run_case(K_BSR64, 128, 10240, 40, TL_GAPS, 0, 7, 1, 0);
            g_bsr_cfg = -1;
        }
    }
    if (wg_ok && !bsr_only && !split_only) persistent_cases();
    sp_cuda_spmm_set_cluster_split(1);
    if (bsr_only) {
        printf("\n%d passed, %d failed, %d BSR configurations refused as not fitting their block size\n",
               passes, failures, unfits);
        return failures ? 1 : 0;
    }
    /* every launch configuration of the sm_90 2:4 kernel (CTA tiles, CTAs
     * per SM), whatever M, N and K it serves */
    for (int h = 1; wg_ok && h <= SP_CUDA_24_TILE_HINTS; h++) {
        g_cfg24 = h;
        run_case(K_24_WG, 130, 264, 129, h % 4, 0.5, 7, h % 2, 8);
        run_case(K_24_WG, 300, 1024, 700, (h + 1) % 4, 0.5, 5, 0, 0);
        run_case(K_24_WG, 64, 64, 3001, (h + 2) % 4, 0.5, 7, 0, 0);
        /* M % 8 == 0 without split-K: the fp16 epilogue, with bias and an
         * activation (epi 5: ReLU in registers, the others on the copy-out),
         * then with a residual as well (epi 7) */
        run_case(K_24_WG, 256, 512, 333, h % 4, 0.5, 5, 0, 0);
        run_case(K_24_WG, 256, 512, 333, (h + 1) % 4, 0.5, 7, 0, 0);
        g_cfg24 = 0;
    }
    /* every tile configuration of the dense sm_90 GEMM (the dense twin of
     * the 2:4 kernel, for activations cuBLASLt cannot fuse), with and
     * without split-K, the fp16 epilogue and the fp32 one */
    for (int h = 1; wg_ok && h <= SP_CUDA_DENSE_CONFIGS; h++) {
        g_cfg24 = h;
        /* (kept small: the float64 reference of a dense weight costs every M K N) */
        run_case(K_DENSE, 130, 264, 129, 0, 1.0, 7, h % 2, 8);
        run_case(K_DENSE, 300, 1000, 300, 0, 1.0, 5, 0, 0);
        run_case(K_DENSE, 392, 768, 600, 0, 1.0, 5, 0, 0);   /* bias + an activation, fp16 epilogue */
        run_case(K_DENSE, 264, 3072, 300, 0, 1.0, 7, 0, 0);  /* + residual */
        run_case(K_DENSE, 64, 64, 3001, 0, 1.0, 6, 1, 0);
        g_cfg24 = 0;
    }
    /* the split-K of the sm_90 2:4 kernel both ways: partial tiles
     * summed in the CTA cluster (the default, with or without a workspace)
     * and through the workspace; 4 and 8 CTAs per tile, ragged M (the scalar
     * epilogue) and N, and a split too deep for a cluster (16 CTAs per
     * tile: with the cluster on, plan_split shrinks it to a cluster of 8;
     * off, 16 through the workspace) */
    for (int cl = 1; wg_ok && cl >= 0; cl--) {
        sp_cuda_spmm_set_cluster_split(cl);
        printf("[2:4 split-K %s]\n", cl ? "in the CTA cluster" : "through the workspace");
        run_case(K_24_WG, 520, 1024, 16, 0, 0.5, 7, 1, 0);
        run_case(K_24_WG, 520, 1024, 16, 1, 0.5, 3, 0, 0);
        run_case(K_24_WG, 130, 2048, 20, 2, 0.5, 5, 1, 8);
        run_case(K_24_WG, 1000, 512, 40, 3, 0.5, 6, 1, 0);
        run_case(K_24_WG, 64, 4096, 5, 0, 0.5, 7, 1, 0);
    }
    sp_cuda_spmm_set_cluster_split(1);
    shared_workspace_case();
    printf("\n%d passed, %d failed, %d BSR configurations refused as not fitting their block size\n",
           passes, failures, unfits);
    return failures ? 1 : 0;
}
