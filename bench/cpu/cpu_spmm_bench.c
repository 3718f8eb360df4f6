/*
 * cpu_spmm_bench.c - calibrates the CPU rows of the cost model: OpenBLAS
 * sgemm vs sprun's CSR / BSR / 2:4 CPU kernels on the GEMM shapes of
 * ResNet-50 and BERT, at several densities, in the CPU backend's layout
 * (X [K, N], Y [M, N]). Median of repeated runs, wall clock.
 *
 *   cpu_spmm_bench [threads]
 */
#include "kernels/cpu/spmm_cpu.h"
#include "loaders/sparse_pack.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

#define REPS 7

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    openblas_set_num_threads(threads);
    static const struct {
        const char *name;
        int64_t m, k, n;
    } shapes[] = {
        {"r50 3x3 64 (56x56)", 64, 576, 3136},     {"r50 1x1 256->64", 64, 256, 3136},
        {"r50 3x3 256 (14x14)", 256, 2304, 196},   {"r50 1x1 1024->256", 256, 1024, 196},
        {"bert ffn1 (seq128)", 3072, 768, 128},    {"bert qkv (seq128)", 768, 768, 128},
    };
    static const double dens[] = {0.5, 0.2, 0.1};
    printf("%-22s %6s %6s %6s | %9s %7s | %7s %9s %7s %6s\n", "shape", "M", "K", "N", "dense ms", "GF/s", "density",
           "csr ms", "GF/s*", "R3");
    unsigned seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t m = shapes[s].m, k = shapes[s].k, n = shapes[s].n;
        float *w = malloc(sizeof(float) * m * k), *x = malloc(sizeof(float) * k * n), *y = malloc(sizeof(float) * m * n);
        for (int64_t i = 0; i < k * n; i++)
            x[i] = frand(&seed);
        for (int64_t i = 0; i < m * k; i++)
            w[i] = frand(&seed);
        double t[REPS];
        for (int r = 0; r < REPS; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.f, w, (int)k, x, (int)n,
                        0.f, y, (int)n);
            t[r] = now() - t0;
        }
        qsort(t, REPS, sizeof *t, cmpd);
        double td = t[REPS / 2];
        for (size_t d = 0; d < sizeof dens / sizeof dens[0]; d++) {
            float *ws = malloc(sizeof(float) * m * k);
            for (int64_t i = 0; i < m * k; i++)
                ws[i] = (frand(&seed) + 0.5f) < dens[d] ? w[i] : 0.f;
            sp_sparse_matrix sm = {.kind = SP_SPARSE_CSR};
            char err[256];
            if (sp_pack_csr(ws, m, k, SP_VT_F32, &sm.u.csr, err, sizeof err) != 0) {
                printf("pack failed: %s\n", err);
                return 1;
            }
            sp_spmm_args a = {.n = n, .x = x, .x_sk = n, .x_sn = 1, .y = y, .y_sm = n, .y_sn = 1, .nthreads = threads};
            for (int r = 0; r < REPS; r++) {
                double t0 = now();
                if (sp_spmm_cpu(&sm, &a, err, sizeof err) != 0) {
                    printf("spmm failed: %s\n", err);
                    return 1;
                }
                t[r] = now() - t0;
            }
            qsort(t, REPS, sizeof *t, cmpd);
            double tc = t[REPS / 2];
            double nnz = (double)sm.u.csr.nnz;
            printf("%-22s %6lld %6lld %6lld | %9.3f %7.1f | %7.2f %9.3f %7.1f %6.2f\n", d ? "" : shapes[s].name,
                   (long long)m, (long long)k, (long long)n, td * 1e3, 2.0 * m * k * n / td * 1e-9, dens[d], tc * 1e3,
                   2.0 * nnz * n / tc * 1e-9, td / tc);
            sp_sparse_free(&sm);
            free(ws);
        }
        free(w);
        free(x);
        free(y);
    }
    printf("GF/s* = useful (nonzero) flops per second; R3 = dense time / CSR time\n");
    return 0;
}
