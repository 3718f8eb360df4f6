/*
 * test_im2col_gather.c - the index arithmetic of the GPU's sparse-conv patch
 * gather (kernels/cuda/im2col_gather.h, the code the CUDA kernel runs) against
 * the direct formula, in both column orders (ONNX's and (ky, kx, ci)), on
 * random NHWC inputs (never zero, so a wrong source
 * element shows) over strides, pads, dilations, ragged channel counts and
 * every chunk width the kernel uses (8 when K % 8 == 0, else 1), plus odd
 * widths that cross channel boundaries. Exact (bit patterns) comparison.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/cuda/im2col_gather.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rng = 12345;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* element (row, j) by the definition: ONNX order (ci, ky, kx), or
 * (ky, kx, ci) when g->rsc */
static uint16_t direct(const uint16_t *x, const sp_im2col_geom *g, int64_t row, int32_t j)
{
    int32_t kx = j % g->kw, ky = (j / g->kw) % g->kh, ci = j / (g->kw * g->kh);
    if (g->rsc) {
        ci = j % g->c;
        kx = (j / g->c) % g->kw;
        ky = j / (g->c * g->kw);
    }
    const int64_t ox = row % g->ow, oy = (row / g->ow) % g->oh, b = row / ((int64_t)g->ow * g->oh);
    const int64_t iy = oy * g->sh - g->ph + (int64_t)ky * g->dh, ix = ox * g->sw - g->pw + (int64_t)kx * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return 0;
    return x[((b * g->h + iy) * g->w + ix) * g->c + ci];
}

static void check_order(int batch, sp_im2col_geom g)
{
    const int64_t nx = (int64_t)batch * g.h * g.w * g.c, rows = (int64_t)batch * g.oh * g.ow;
    const int32_t K = g.c * g.kh * g.kw;
    uint16_t *x = malloc((size_t)nx * 2);
    assert_non_null(x);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (uint16_t)(1 + next() % 65535); /* never 0: padding must read as 0 */
    const int widths[] = {8, 1, 3, 5};
    for (int wi = 0; wi < 4; wi++) {
        const int v = widths[wi];
        if (v == 8 && K % 8)
            continue;
        uint16_t buf[8];
        for (int64_t row = 0; row < rows; row++)
            for (int32_t j0 = 0; j0 < K; j0 += v) {
                const int cnt = j0 + v <= K ? v : K - j0;
                memset(buf, 0xAB, sizeof buf);
                sp_im2col_gather(x, &g, row, j0, cnt, buf);
                for (int q = 0; q < cnt; q++)
                    if (buf[q] != direct(x, &g, row, j0 + q))
                        fail_msg("row %lld col %d (chunk %d, rsc %d): got %u, want %u (c %d k %dx%d s %d,%d p %d,%d "
                                 "d %d,%d)",
                                 (long long)row, j0 + q, v, g.rsc, buf[q], direct(x, &g, row, j0 + q), g.c, g.kh,
                                 g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw);
                /* the kernel's 16-byte path: 8 channels of one pixel */
                if (g.rsc && v == 8 && g.c % 8 == 0) {
                    const int64_t off = sp_im2col_rsc_run8(&g, row, j0);
                    for (int q = 0; q < 8; q++)
                        if ((off < 0 ? 0 : x[off + q]) != direct(x, &g, row, j0 + q))
                            fail_msg("run8: row %lld col %d", (long long)row, j0 + q);
                }
            }
    }
    free(x);
}

static void check_geometry(int batch, sp_im2col_geom g)
{
    for (int rsc = 0; rsc < 2; rsc++) {
        g.rsc = rsc;
        check_order(batch, g);
    }
}

static sp_im2col_geom geom(int h, int w, int c, int kh, int kw, int s, int p, int d)
{
    sp_im2col_geom g = {h, w, c, kh, kw, s, s, p, p, d, d, 0, 0, 0};
    g.oh = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
    g.ow = (w + 2 * p - d * (kw - 1) - 1) / s + 1;
    return g;
}

static void test_resnet_shapes(void **state)
{
    (void)state;
    check_geometry(2, geom(8, 8, 64, 3, 3, 1, 1, 1));  /* layer1 3x3, K = 576 */
    check_geometry(1, geom(9, 9, 16, 3, 3, 2, 1, 1));  /* stride 2 */
    check_geometry(1, geom(14, 14, 3, 7, 7, 2, 3, 1)); /* conv1: K = 147, not a multiple of 8 */
}

static void test_odd_geometries(void **state)
{
    (void)state;
    check_geometry(3, geom(5, 7, 5, 3, 2, 1, 0, 1));  /* rectangular kernel, no pad */
    check_geometry(2, geom(10, 6, 8, 3, 3, 1, 2, 2)); /* dilation 2, pad 2 */
    check_geometry(1, geom(4, 4, 1, 4, 4, 1, 3, 1));  /* one channel, pad larger than the image */
    check_geometry(2, geom(6, 6, 24, 1, 1, 2, 0, 1)); /* strided 1x1 */
    sp_im2col_geom g = geom(7, 9, 8, 3, 3, 1, 1, 1);
    g.sh = 2;
    g.ph = 0;
    g.oh = (7 - 3) / 2 + 1; /* different strides and pads per axis */
    check_geometry(2, g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_shapes),
        cmocka_unit_test(test_odd_geometries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
