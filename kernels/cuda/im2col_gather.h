/*
 * im2col_gather.h - the index arithmetic of the sparse convolutions' patch
 * gather (kernels/cuda/im2col.cu), in plain C so that the CPU tests check it
 * (tests/unit/test_im2col_gather.c) exactly as the GPU runs it.
 *
 * Row `row` of the im2col matrix is output position (b, oy, ox) of an NHWC
 * activation. Its K = c * kh * kw columns come in one of two orders, the
 * order of the packed weight (geom.rsc):
 *  - 0: ONNX's weight order (ci, ky, kx), kx fastest: a weight pruned 2:4
 *    along ONNX's flattened K stays 2:4 in the GEMM;
 *  - 1: (ky, kx, ci), ci fastest (KRSC weights): a weight pruned 2:4 along
 *    its input channels (TensorRT's and NVIDIA ASP's convention for convs)
 *    is 2:4 in the GEMM, and a chunk of columns inside one kernel position is
 *    a run of consecutive channels of one input pixel.
 * Elements are copied as raw 16-bit patterns (fp16); padding reads as +0.
 */
#ifndef SPRUN_IM2COL_GATHER_H
#define SPRUN_IM2COL_GATHER_H

#include <stdint.h>

#ifdef __CUDACC__
#define SP_IM2COL_FN static inline __host__ __device__
#else
#define SP_IM2COL_FN static inline
#endif

typedef struct sp_im2col_geom {
    int32_t h, w, c;        /* input height, width, channels (NHWC) */
    int32_t kh, kw;         /* kernel */
    int32_t sh, sw, ph, pw; /* strides, leading pads */
    int32_t dh, dw;         /* dilations */
    int32_t oh, ow;         /* output height, width */
    int32_t rsc;            /* column order: 0 (ci, ky, kx), 1 (ky, kx, ci) */
} sp_im2col_geom;

/* dst[0..cnt) = columns [j0, j0 + cnt) of im2col row `row`; j0 + cnt <= K.
 * x points at the whole NHWC batch. */
SP_IM2COL_FN void sp_im2col_gather(const uint16_t *x, const sp_im2col_geom *g, int64_t row, int32_t j0, int cnt,
                                   uint16_t *dst)
{
    const int32_t khw = g->kh * g->kw;
    const int32_t ox = (int32_t)(row % g->ow);
    const int64_t r2 = row / g->ow;
    const int32_t oy = (int32_t)(r2 % g->oh);
    const int64_t b = r2 / g->oh;
    int32_t ci, ky, kx;
    if (g->rsc) {
        const int32_t q = j0 / g->c;
        ci = j0 - q * g->c;
        ky = q / g->kw;
        kx = q - ky * g->kw;
    } else {
        ci = j0 / khw;
        const int32_t r = j0 - ci * khw;
        ky = r / g->kw;
        kx = r - ky * g->kw;
    }
    const int32_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    const uint16_t *xb = x + b * (int64_t)g->h * g->w * g->c;
    for (int v = 0; v < cnt; v++) {
        const int32_t iy = y0 + ky * g->dh, ix = x0 + kx * g->dw;
        dst[v] = (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w) ? xb[((int64_t)iy * g->w + ix) * g->c + ci]
                                                                  : (uint16_t)0;
        if (g->rsc) {
            if (++ci == g->c) {
                ci = 0;
                if (++kx == g->kw) {
                    kx = 0;
                    ky++;
                }
            }
        } else if (++kx == g->kw) {
            kx = 0;
            if (++ky == g->kh) {
                ky = 0;
                ci++;
            }
        }
    }
}

/* (ky, kx, ci) order, 8 columns from j0 (j0 % 8 == 0, c % 8 == 0, so they
 * are 8 consecutive channels of one input pixel): the offset of the first
 * element in x, or -1 for padding (8 zeros). */
SP_IM2COL_FN int64_t sp_im2col_rsc_run8(const sp_im2col_geom *g, int64_t row, int32_t j0)
{
    const int32_t ox = (int32_t)(row % g->ow);
    const int64_t r2 = row / g->ow;
    const int32_t oy = (int32_t)(r2 % g->oh);
    const int64_t b = r2 / g->oh;
    const int32_t q = j0 / g->c, ci = j0 - q * g->c;
    const int32_t ky = q / g->kw, kx = q - ky * g->kw;
    const int32_t iy = oy * g->sh - g->ph + ky * g->dh, ix = ox * g->sw - g->pw + kx * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return ((b * g->h + iy) * (int64_t)g->w + ix) * g->c + ci;
}

#endif
