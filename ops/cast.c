/*
 * cast.c - Cast and CastLike between float, float16, double, int8..int64,
 * uint8..uint32 and bool. Float -> int truncates toward zero (NaN and
 * out-of-range values give INT64_MIN before narrowing, never UB); anything
 * -> bool is "!= 0" (NaN is true); fp16 rounds to nearest even.
 * STRING, BFLOAT16, UINT64 and the float8 types are rejected.
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

/* x86 hosts with F16C convert float -> fp16 8 values per instruction; the
 * hardware rounds to nearest even and quiets NaNs exactly like
 * sp_f32_to_f16, so results are bit-identical to the portable path (chosen
 * at run time). fp16 -> float stays portable: the hardware would quiet
 * signalling NaNs that sp_f16_to_f32 keeps. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
#define HAVE_F16C_PATH 1

/* CPUID.1:ECX F16C (29), AVX (28), OSXSAVE (27), and the OS saving YMM
 * state (XCR0 bits 1-2). Cached: CPUID can trap to the hypervisor. */
static int have_f16c(void)
{
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0)
        return v;
    unsigned a, b, c, d;
    v = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) && (c & (1u << 28)) && (c & (1u << 27))) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        v = (lo & 6u) == 6u;
    }
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return v;
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_hw(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = sp_f32_to_f16(x[i]);
}

#endif

static int cast_to(const sp_node *n, const sp_graph *g)
{
    if (strcmp(n->op_type, "CastLike") == 0) {
        const sp_value *t = sp_node_in(g, n, 1);
        return t ? t->dtype : 0;
    }
    return (int)sp_attr_int(n, "to", 0);
}

static int cast_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    int like = strcmp(n->op_type, "CastLike") == 0;
    int rc = sp_check_io(n, like ? 2 : 1, like ? 2 : 1, 1, 1, err);
    if (rc)
        return rc;
    if (!like) {
        const sp_attr *a = sp_attr_find(n, "to");
        if (!a)
            return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'to' is required", SP_LABEL(n));
        if (a->type == SP_ATTR_STRING)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute 'to' as a string (opset 1) is not supported",
                              SP_LABEL(n));
        if (!sp_dt_supported((int)a->i))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: attribute 'to' = %lld (%s) is not supported",
                              SP_LABEL(n), (long long)a->i, sp_dtype_name((int)a->i));
    }
    /* Reject unsupported element types at load when they are already known
     * (a bfloat16 or string input must not get as far as a run). */
    for (int i = 0; i < (like ? 2 : 1); i++) {
        const sp_value *v = sp_node_in(g, n, i);
        if (v && v->dtype && !sp_dt_supported(v->dtype))
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: input '%s' has unsupported dtype %s", SP_LABEL(n),
                              v->name, sp_dtype_name(v->dtype));
    }
    return 0;
}

static int cast_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *x = sp_node_in(g, n, 0);
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    const int to = cast_to(n, g);
    if (!sp_dt_supported(to))
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: target dtype %s is not supported", SP_LABEL(n),
                          sp_dtype_name(to));
    sp_node_set_out(g, n, 0, to, &x->shape);
    return 0;
}

typedef struct cast_job {
    int from, to;
    int hw; /* F16C available */
    const void *x;
    void *y;
} cast_job;

#define CHUNK 1024

static void cast_range(void *arg, int64_t b, int64_t e)
{
    const cast_job *j = arg;
    const int from = j->from, to = j->to;
    if (from == SPRUN_DTYPE_FLOAT && to == SPRUN_DTYPE_FLOAT16) {
        const float *x = j->x;
        uint16_t *y = j->y;
#ifdef HAVE_F16C_PATH
        if (j->hw) {
            f32_to_f16_hw(x + b, y + b, e - b);
            return;
        }
#endif
        for (int64_t i = b; i < e; i++)
            y[i] = sp_f32_to_f16(x[i]);
        return;
    }
    if (from == SPRUN_DTYPE_FLOAT16 && to == SPRUN_DTYPE_FLOAT) {
        const uint16_t *x = j->x;
        float *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = sp_f16_to_f32(x[i]);
        return;
    }
    if (from == SPRUN_DTYPE_INT64 && to == SPRUN_DTYPE_INT32) {
        const int64_t *x = j->x;
        int32_t *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = (int32_t)(uint32_t)(uint64_t)x[i];
        return;
    }
    if (from == SPRUN_DTYPE_INT32 && to == SPRUN_DTYPE_INT64) {
        const int32_t *x = j->x;
        int64_t *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = x[i];
        return;
    }
    if (to == SPRUN_DTYPE_FLOAT16 || (from == SPRUN_DTYPE_FLOAT16 && sp_dt_is_float(to)) ||
        (from == SPRUN_DTYPE_FLOAT && sp_dt_is_float(to))) {
        /* via float: exact for these sources, one rounding to fp16 */
        float buf[CHUNK];
        for (int64_t i = b; i < e; i += CHUNK) {
            int64_t c = e - i < CHUNK ? e - i : CHUNK;
            sp_ld_f32_run(from, j->x, i, 1, buf, c);
            sp_st_f32_run(to, j->y, i, buf, c);
        }
        return;
    }
    if (sp_dt_is_float(from) && to != SPRUN_DTYPE_BOOL && !sp_dt_is_float(to)) {
        for (int64_t i = b; i < e; i++)
            sp_st_i64(to, j->y, i, sp_ld_i64(from, j->x, i)); /* truncates */
        return;
    }
    if (sp_dt_is_float(from) || sp_dt_is_float(to)) {
        for (int64_t i = b; i < e; i++)
            sp_st_f64(to, j->y, i, sp_ld_f64(from, j->x, i));
        return;
    }
    int64_t buf[CHUNK];
    for (int64_t i = b; i < e; i += CHUNK) {
        int64_t c = e - i < CHUNK ? e - i : CHUNK;
        sp_ld_i64_run(from, j->x, i, 1, buf, c);
        sp_st_i64_run(to, j->y, i, buf, c);
    }
}

static int cast_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                    sp_err *err)
{
    (void)n; (void)n_in; (void)n_out; (void)err;
    const int64_t cnt = sp_shape_numel(&out[0].shape);
    if (cnt <= 0)
        return 0;
    if (in[0].dtype == out[0].dtype) {
        sp_copy_bytes(out[0].data, in[0].data, (size_t)cnt * sp_dtype_size(in[0].dtype));
        return 0;
    }
    cast_job j = {.from = in[0].dtype, .to = out[0].dtype, .x = in[0].data, .y = out[0].data};
#ifdef HAVE_F16C_PATH
    j.hw = have_f16c();
#endif
    sp_par_for(ctx, cnt, 1 << 15, cast_range, &j);
    return 0;
}

static const sp_op_def op_cast = {
    .op_type = "Cast", .since_opset = 1, .flags = 0,
    .check = cast_check, .infer = cast_infer, .cpu_run = cast_run,
};

static const sp_op_def op_cast_like = {
    .op_type = "CastLike", .since_opset = 15, .flags = 0,
    .check = cast_check, .infer = cast_infer, .cpu_run = cast_run,
};

const sp_op_def *const sp_ops_cast[] = {&op_cast, &op_cast_like, NULL};
