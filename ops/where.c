/*
 * where.c - Where(condition, X, Y) with three-way NumPy broadcasting; any
 * element type for X and Y (selection moves bytes), condition is bool.
 */
#include "kernels/cpu/broadcast.h"
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int is_bool(int dt) { return dt == SPRUN_DTYPE_BOOL; }

static int where_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 3, 3, 1, 1, err);
}

static int where_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    const sp_value *c = sp_node_in(g, n, 0), *x = sp_node_in(g, n, 1), *y = sp_node_in(g, n, 2);
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, is_bool, "bool", err)) ||
        (rc = sp_check_dtype(g, n, 1, sp_dt_supported, "a numeric or bool tensor", err)))
        return rc;
    if (x->dtype != y->dtype)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: X is %s, Y is %s", SP_LABEL(n),
                          sp_dtype_name(x->dtype), sp_dtype_name(y->dtype));
    sp_shape t, out;
    if ((rc = sp_shape_broadcast(&c->shape, &x->shape, &t, err)) || (rc = sp_shape_broadcast(&t, &y->shape, &out, err)))
        return sp_err_prefix(err, "%s", SP_LABEL(n));
    sp_node_set_out(g, n, 0, x->dtype, &out);
    return 0;
}

typedef struct where_job {
    sp_bcast b;
    const uint8_t *c;
    const char *x, *y;
    char *o;
    size_t es;
} where_job;

#define SEL(T)                                                                           \
    do {                                                                                 \
        const T *xx = (const T *)j->x + p.off[1], *yy = (const T *)j->y + p.off[2];      \
        T *oo = (T *)j->o + row * inner;                                                 \
        for (int64_t i = 0; i < inner; i++)                                              \
            oo[i] = cc[i * sc] ? xx[i * sx] : yy[i * sy];                                \
    } while (0)

static void where_range(void *arg, int64_t b, int64_t e)
{
    const where_job *j = arg;
    const int64_t inner = j->b.inner;
    const int64_t sc = sp_bcast_inner_stride(&j->b, 0), sx = sp_bcast_inner_stride(&j->b, 1),
                  sy = sp_bcast_inner_stride(&j->b, 2);
    sp_bcast_pos p;
    sp_bcast_seek(&j->b, b, &p);
    for (int64_t row = b; row < e; row++) {
        const uint8_t *cc = j->c + p.off[0];
        switch (j->es) {
        case 1: SEL(uint8_t); break;
        case 2: SEL(uint16_t); break;
        case 4: SEL(uint32_t); break;
        default: SEL(uint64_t); break;
        }
        sp_bcast_next(&j->b, &p);
    }
}

static int where_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                     sp_err *err)
{
    (void)n; (void)n_in; (void)n_out;
    where_job j = {.c = in[0].data, .x = in[1].data, .y = in[2].data, .o = out[0].data,
                   .es = sp_dtype_size(out[0].dtype)};
    const sp_shape *ins[3] = {&in[0].shape, &in[1].shape, &in[2].shape};
    int rc = sp_bcast_init(&j.b, &out[0].shape, ins, 3, err);
    if (rc)
        return rc;
    if (j.b.total == 0)
        return 0;
    sp_par_for(ctx, j.b.outer, 1 + 32768 / (j.b.inner + 1), where_range, &j);
    return 0;
}

static const sp_op_def op_where = {
    .op_type = "Where", .since_opset = 9, .flags = 0,
    .check = where_check, .infer = where_infer, .cpu_run = where_run,
};

const sp_op_def *const sp_ops_where[] = {&op_where, NULL};
