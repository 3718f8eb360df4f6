/*
 * test_conv_24_order.c - 2:4 of k x k conv weights in both K orders.
 *
 * A 3x3 Conv weight [M, C, 3, 3] pruned 2:4 along its input channels (every
 * 4 channels at each kernel position keep 2: TensorRT's and NVIDIA ASP's
 * convention) is not 2:4 along ONNX's flattened K (c, kh, kw); one pruned
 * along ONNX's K is not 2:4 along the channels. The analysis reports each
 * (sprun_weight_info.is_2_4 / is_2_4_c), and sp_weight_gemm_view_order lays
 * a weight out in (kh, kw, c) order, the order the CUDA backend packs and
 * gathers channel-wise 2:4 convs in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "runtime/model.h"
#include "sprun.h"
#include "tests/unit/test_device_io_model.h"

#include <stdlib.h>
#include <string.h>

enum { CO = 8, CI = 16, KH = 3, KW = 3 };

/* keeps channels (q + pos) % 4 and (q + pos + 1) % 4 of every group of 4
 * channels at kernel position pos: 2:4 along C, not along ONNX's K */
static void prune_along_c(float *w)
{
    for (int m = 0; m < CO; m++)
        for (int c = 0; c < CI; c++)
            for (int pos = 0; pos < KH * KW; pos++) {
                const int q = (c % 4 + 4 - (m + pos) % 4) % 4;
                if (q >= 2)
                    w[(m * CI + c) * KH * KW + pos] = 0.0f;
            }
}

/* 2 of every 4 consecutive elements of ONNX's flattened K kept, which 2
 * varying with the group (a fixed rotation would be 2:4 along C too, as
 * kh * kw = 9 = 1 mod 4) */
static void prune_along_onnx_k(float *w)
{
    const int k = CI * KH * KW;
    for (int m = 0; m < CO; m++)
        for (int j = 0; j < k; j++) {
            const int g = j / 4, p = (g * 7 + m * 3 + (g * g) % 5) % 4, q = (j % 4 - p + 4) % 4;
            if (q >= 2)
                w[m * k + j] = 0.0f;
        }
}

static dio_pb conv_model(const float *w)
{
    dio_pb g = {0}, attrs = {0};
    const int64_t xd[] = {1, CI, 6, 6}, wd[] = {CO, CI, KH, KW}, pads[] = {1, 1, 1, 1};
    dio_value(&g, 11, "x", DIO_F32, 4, xd);
    dio_init(&g, "W", DIO_F32, 4, wd, w, sizeof(float) * CO * CI * KH * KW);
    dio_attr_ints(&attrs, "pads", 4, pads);
    dio_node(&g, "Conv", "conv", DIO_NAMES("x", "W"), DIO_NAMES("y"), &attrs);
    dio_value(&g, 12, "y", DIO_F32, -1, NULL);
    return dio_finish(&g);
}

static void analyse(const float *w, int *is24, int *is24c)
{
    dio_pb pb = conv_model(w);
    sprun_options *opt = NULL;
    sprun_model *m = NULL;
    assert_int_equal(sprun_options_create(&opt), SPRUN_OK);
    assert_int_equal(sprun_options_set_backend(opt, SPRUN_BACKEND_CPU), SPRUN_OK);
    assert_int_equal(sprun_model_load_buffer(pb.b, pb.n, opt, &m), SPRUN_OK);
    assert_int_equal(sprun_model_weight_count(m), 1);
    sprun_weight_info info;
    assert_int_equal(sprun_model_weight_info(m, 0, &info), SPRUN_OK);
    *is24 = info.is_2_4;
    *is24c = info.is_2_4_c;
    assert_true(info.density > 0.49 && info.density < 0.51);
    sprun_model_destroy(m);
    sprun_options_destroy(opt);
    free(pb.b);
}

static void test_analysis_reports_each_order(void **state)
{
    (void)state;
    static float w[CO * CI * KH * KW];
    int a, c;
    dio_weights(w, sizeof w / sizeof w[0], 3);
    prune_along_c(w);
    analyse(w, &a, &c);
    assert_int_equal(a, 0);
    assert_int_equal(c, 1);
    dio_weights(w, sizeof w / sizeof w[0], 4);
    prune_along_onnx_k(w);
    analyse(w, &a, &c);
    assert_int_equal(a, 1);
    assert_int_equal(c, 0);
}

static void test_gemm_view_in_rsc_order(void **state)
{
    (void)state;
    static float w[CO * CI * KH * KW];
    dio_weights(w, sizeof w / sizeof w[0], 5);
    sp_graph g;
    sp_graph_init(&g);
    sp_err err = {0};
    const int64_t dims[] = {CO, CI, KH, KW};
    const int x = sp_graph_value(&g, "x", &err), wv = sp_graph_value(&g, "W", &err), y = sp_graph_value(&g, "y", &err);
    sp_shape s = sp_shape_make(4, dims);
    float *copy = malloc(sizeof w);
    assert_non_null(copy);
    memcpy(copy, w, sizeof w);
    sp_value_set_const(&g.values[wv], SPRUN_DTYPE_FLOAT, &s, copy, sizeof w, 1);
    const int ni = sp_graph_add_node(&g, "conv", "Conv", "", (const int[]){x, wv}, 2, &y, 1, &err);
    assert_true(ni >= 0);
    int64_t m = 0, k = 0;
    float *v = sp_weight_gemm_view_order(&g, &g.nodes[ni], 1, NULL, &m, &k);
    assert_non_null(v);
    assert_int_equal(m, CO);
    assert_int_equal(k, CI * KH * KW);
    for (int r = 0; r < CO; r++)
        for (int ky = 0; ky < KH; ky++)
            for (int kx = 0; kx < KW; kx++)
                for (int c = 0; c < CI; c++)
                    assert_true(v[r * k + (ky * KW + kx) * CI + c] == w[((r * CI + c) * KH + ky) * KW + kx]);
    free(v);
    v = sp_weight_gemm_view_order(&g, &g.nodes[ni], 0, NULL, &m, &k); /* ONNX order: the weight as stored */
    assert_non_null(v);
    assert_memory_equal(v, w, sizeof w);
    free(v);
    sp_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analysis_reports_each_order),
        cmocka_unit_test(test_gemm_view_in_rsc_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
