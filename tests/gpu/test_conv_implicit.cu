/*
 * test_conv_implicit.cu - the 2:4 implicit-GEMM convolution
 * (sp_cuda_24_conv_implicit: the wgmma kernel with its producer warps
 * gathering patches) against a float64 reference on random nonzero inputs:
 * the CPU gather of kernels/cuda/im2col_gather.h in (ky, kx, ci) order (the
 * order the weight's K runs in), then a dense product. Geometries: 3x3 with
 * pad 1 at stride 1 and 2, a 1x1 stride-2 conv, dilation 2, rectangular
 * images, a batch whose rows end inside a tile; M = 64 (its own tile
 * shapes), 128 and 256; with and without bias + residual + ReLU; each
 * through both gathers (the copy engine's im2col mode and the producer
 * warps' copies). The output is NaN-poisoned before each run.
 *
 * Pass: relative L2 <= 2e-3 (fp16 output rounding alone is <= 4.9e-4).
 * Exit codes: 0 all passed, 1 a failure, 77 no sm_90 GPU.
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/im2col_gather.h"
#include "kernels/cuda/spmm_cuda.h"
#include "tests/gpu/spmm_testlib.h"

static int passes = 0, failures = 0;

static void run_case(int64_t b, int64_t h, int64_t w, int64_t c, int64_t m, int64_t k, int64_t s, int64_t p,
                     int64_t d, int epi, int gather, int config = 0) {
    const int64_t oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1;
    const int64_t n = b * oh * ow, kk = c * k * k, nx = b * h * w * c;
    uint16_t *xh = (uint16_t *)malloc((size_t)nx * 2);
    float *wt = (float *)malloc((size_t)(m * kk) * 4);
    uint16_t *bias = (uint16_t *)malloc((size_t)m * 2), *res = (uint16_t *)malloc((size_t)(n * m) * 2);
    uint16_t *yh = (uint16_t *)malloc((size_t)(n * m) * 2), *row = (uint16_t *)malloc((size_t)kk * 2);
    double *ref = (double *)malloc((size_t)(n * m) * 8);
    for (int64_t i = 0; i < nx; i++) xh[i] = tl_h(tl_val());
    for (int64_t i = 0; i < m; i++) bias[i] = tl_h(tl_val());
    for (int64_t i = 0; i < n * m; i++) res[i] = tl_h(tl_val());
    tl_gen_24(wt, m, kk, TL_RANDOM); /* 2:4 along the GEMM's K = (ky, kx, ci) */
    const sp_im2col_geom g = {(int32_t)h, (int32_t)w, (int32_t)c, (int32_t)k, (int32_t)k, (int32_t)s, (int32_t)s,
                              (int32_t)p, (int32_t)p, (int32_t)d, (int32_t)d, (int32_t)oh, (int32_t)ow, 1};
    for (int64_t r = 0; r < n; r++) {
        sp_im2col_gather(xh, &g, r, 0, (int)kk, row);
        for (int64_t o = 0; o < m; o++) {
            double acc = 0;
            for (int64_t j = 0; j < kk; j++) acc += (double)wt[o * kk + j] * tl_f(row[j]);
            if (epi) {
                acc += tl_f(bias[o]) + tl_f(res[r * m + o]);
                acc = acc > 0 ? acc : 0;
            }
            ref[r * m + o] = acc;
        }
    }
    sp_24 hp;
    tl_pack_24(wt, m, kk, &hp);
    sp_cuda_24 dw;
    sp_cuda_status st;
    memset(&st, 0, sizeof st);
    if (sp_cuda_24_upload(&hp, &dw, NULL, &st)) {
        printf("FAIL upload: %s\n", st.msg);
        failures++;
        return;
    }
    void *dx, *dy, *db, *dr, *ws;
    CK(cudaMalloc(&dx, (size_t)nx * 2));
    CK(cudaMemcpy(dx, xh, (size_t)nx * 2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dy, (size_t)(n * m) * 2));
    CK(cudaMalloc(&db, (size_t)m * 2));
    CK(cudaMemcpy(db, bias, (size_t)m * 2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dr, (size_t)(n * m) * 2));
    CK(cudaMemcpy(dr, res, (size_t)(n * m) * 2, cudaMemcpyHostToDevice));
    const size_t wsb = sp_cuda_spmm_workspace_bytes(m, n);
    CK(cudaMalloc(&ws, wsb));
    CK(cudaMemset(ws, 0, wsb));
    CK(cudaMemset(dy, 0xff, (size_t)(n * m) * 2)); /* NaN poison */
    sp_cuda_spmm_args a;
    memset(&a, 0, sizeof a);
    a.n = n;
    a.x = dx;
    a.ldx = kk;
    a.y = dy;
    a.ldy = m;
    a.ldr = m;
    a.workspace = ws;
    a.workspace_bytes = wsb;
    if (epi) {
        a.bias = db;
        a.residual = dr;
        a.act = SP_CUDA_ACT_RELU;
    }
    a.config = config;
    const sp_cuda_conv_geom cg = {b, h, w, c, oh, ow, k, k, s, s, p, p, d, d, gather};
    const int rc = sp_cuda_24_conv_implicit(&dw, &cg, &a, &st);
    const cudaError_t se = cudaDeviceSynchronize();
    double num = 0, den = 0;
    if (rc == 0 && se == cudaSuccess) {
        CK(cudaMemcpy(yh, dy, (size_t)(n * m) * 2, cudaMemcpyDeviceToHost));
        for (int64_t i = 0; i < n * m; i++) {
            const double v = tl_f(yh[i]), e = v - ref[i];
            num += v == v ? e * e : 1e30;
            den += ref[i] * ref[i];
        }
    }
    const double rel = rc || se ? INFINITY : sqrt(num / (den + 1e-300));
    const int ok = rel <= 2e-3;
    if (config) printf("[config %d] ", config);
    printf("%s conv %s b=%lld %lldx%lldx%lld -> M=%lld k=%lld s=%lld p=%lld d=%lld epi=%d N=%lld: rel-L2 %.2e%s%s\n",
           ok ? "PASS" : "FAIL", gather ? "copies" : "im2col-TMA", (long long)b, (long long)h, (long long)w, (long long)c, (long long)m,
           (long long)k, (long long)s, (long long)p, (long long)d, epi, (long long)n, rel, rc ? " launch: " : "",
           rc ? st.msg : se ? cudaGetErrorString(se) : "");
    ok ? passes++ : failures++;
    if (se != cudaSuccess) exit(1);
    sp_cuda_24_free(&dw);
    tl_free_24(&hp);
    cudaFree(dx), cudaFree(dy), cudaFree(db), cudaFree(dr), cudaFree(ws);
    free(xh), free(wt), free(bias), free(res), free(yh), free(row), free(ref);
}

int main(void) {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess || major != 9) {
        printf("no sm_90 GPU: skipped\n");
        return 77;
    }
    tl_seed(11);
    for (int gather = 0; gather < 2; gather++) { /* the copy engine's im2col mode, then the producers' copies */
        run_case(2, 14, 14, 64, 64, 3, 1, 1, 1, 0, gather);  /* ResNet layer1-like 3x3, M = 64 */
        run_case(2, 14, 14, 64, 64, 3, 1, 1, 1, 1, gather);  /* with bias + residual + ReLU */
        run_case(3, 9, 11, 128, 128, 3, 2, 1, 1, 1, gather); /* stride 2, rectangular, ragged N */
        run_case(1, 12, 12, 64, 256, 3, 1, 2, 2, 0, gather); /* dilation 2 */
        run_case(2, 8, 8, 256, 128, 1, 2, 0, 1, 1, gather);  /* strided 1x1 (downsample) */
        run_case(1, 7, 7, 512, 256, 3, 1, 1, 1, 0, gather);  /* layer4-like, K = 4608 */
        run_case(4, 10, 6, 64, 128, 3, 1, 1, 1, 1, gather);  /* rows of one tile span several images */
        run_case(2, 13, 13, 64, 64, 5, 2, 2, 1, 0, gather);  /* 5x5, stride 2, odd extent */
    }
    /* every launch configuration plan-time tuning may pick, both gathers */
    for (int cfg = 1; cfg <= SP_CUDA_24_TILE_HINTS; cfg++) {
        run_case(3, 9, 11, 128, 128, 3, 2, 1, 1, 1, cfg % 2, cfg);
        run_case(2, 14, 14, 64, 64, 3, 1, 1, 1, 1, (cfg + 1) % 2, cfg);
    }
    printf("test_conv_implicit: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
