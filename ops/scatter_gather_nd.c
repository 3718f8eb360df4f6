/*
 * scatter_gather_nd.c - GatherND (batch_dims), ScatterND and
 * ScatterElements (plus its opset 9-10 name Scatter), with reduction none,
 * add, mul, max or min. Indices are int32 or int64, negative ones count from
 * the end; an index out of range is SPRUN_ERR_INVALID_ARGUMENT naming the
 * node, never a wild access. Scatters copy data to the output and apply the
 * updates in index order (duplicates with reduction none: the last wins).
 */
#include "kernels/cpu/tensor_cpu.h"

#include <string.h>

static int idx_dt(int dt) { return dt == SPRUN_DTYPE_INT32 || dt == SPRUN_DTYPE_INT64; }

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static int red_kind(const sp_node *n)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *r = sp_attr_string(n, "reduction", "none");
    for (int i = 0; i < 5; i++)
        if (!strcmp(r, names[i]))
            return i;
    return -1;
}

/* y[yo] = red(y[yo], u[uo]) for one element of dtype dt. */
static void red_apply(int red, int dt, size_t es, void *y, int64_t yo, const void *u, int64_t uo)
{
    if (red == RED_NONE) {
        memcpy((char *)y + (size_t)yo * es, (const char *)u + (size_t)uo * es, es);
    } else if (sp_dt_is_float(dt)) {
        const double a = sp_ld_f64(dt, y, yo), b = sp_ld_f64(dt, u, uo);
        const double r = red == RED_ADD   ? a + b
                         : red == RED_MUL ? a * b
                         : red == RED_MAX ? (a > b ? a : b)
                                          : (a < b ? a : b);
        sp_st_f64(dt, y, yo, r);
    } else {
        const int64_t a = sp_ld_i64(dt, y, yo), b = sp_ld_i64(dt, u, uo);
        const int64_t r = red == RED_ADD   ? (int64_t)((uint64_t)a + (uint64_t)b)
                          : red == RED_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
                          : red == RED_MAX ? (a > b ? a : b)
                                           : (a < b ? a : b);
        sp_st_i64(dt, y, yo, r);
    }
}

static int bad_index(sp_err *err, const sp_node *n, int64_t v, int64_t dim)
{
    return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: index %lld out of range for a dim of size %lld",
                      SP_LABEL(n), (long long)v, (long long)dim);
}

/* ---- GatherND / ScatterND geometry ----------------------------------------- */

typedef struct nd_geom {
    int64_t b;      /* batch_dims */
    int64_t last;   /* indices.shape[-1] */
    int64_t nb;     /* batch count */
    int64_t ntup;   /* index tuples per batch */
    int64_t slice;  /* elements per gathered slice */
    int64_t dbatch; /* data elements per batch */
    int64_t st[SP_MAX_RANK]; /* data strides of the indexed dims (within a batch) */
    const int64_t *dims;     /* data dims of the indexed dims */
} nd_geom;

static int nd_geometry(const sp_node *n, const sp_shape *ds, const sp_shape *is, int64_t b, nd_geom *g, sp_err *err)
{
    char s1[128], s2[128];
    const int r = ds->rank, q = is->rank;
    if (q < 1 || b < 0 || b >= q || b >= r)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: indices %s / batch_dims %lld do not fit data %s", SP_LABEL(n),
                          sp_shape_str(is, s1, sizeof s1), (long long)b, sp_shape_str(ds, s2, sizeof s2));
    g->b = b;
    g->last = is->d[q - 1];
    if (g->last < 1 || g->last > r - b)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: indices %s: last dim must be in [1, %lld] for data %s",
                          SP_LABEL(n), sp_shape_str(is, s1, sizeof s1), (long long)(r - b),
                          sp_shape_str(ds, s2, sizeof s2));
    g->nb = 1;
    for (int64_t k = 0; k < b; k++) {
        if (ds->d[k] != is->d[k])
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: batch dims of indices %s and data %s differ", SP_LABEL(n),
                              sp_shape_str(is, s1, sizeof s1), sp_shape_str(ds, s2, sizeof s2));
        g->nb *= ds->d[k];
    }
    g->ntup = 1;
    for (int k = (int)b; k < q - 1; k++)
        g->ntup *= is->d[k];
    g->slice = 1;
    for (int k = (int)(b + g->last); k < r; k++)
        g->slice *= ds->d[k];
    g->dbatch = g->slice;
    for (int k = (int)(b + g->last) - 1; k >= (int)b; k--) {
        g->st[k - b] = g->dbatch;
        g->dbatch *= ds->d[k];
    }
    g->dims = ds->d + b;
    return 0;
}

/* Element offset (within a batch) of tuple t, or -1 (and *bad) when out of range. */
static int64_t nd_offset(const nd_geom *g, int idt, const void *idx, int64_t t, int64_t *bad, int64_t *bad_dim)
{
    int64_t off = 0;
    for (int64_t j = 0; j < g->last; j++) {
        int64_t v = sp_ld_i64(idt, idx, t * g->last + j);
        if (v < 0)
            v += g->dims[j];
        if (v < 0 || v >= g->dims[j]) {
            *bad = sp_ld_i64(idt, idx, t * g->last + j);
            *bad_dim = g->dims[j];
            return -1;
        }
        off += v * g->st[j];
    }
    return off;
}

static int gnd_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    return sp_check_io(n, 2, 2, 1, 1, err);
}

static int gnd_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, idx_dt, "int32 or int64", err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0), *ix = sp_node_in(g, n, 1);
    nd_geom ng;
    if ((rc = nd_geometry(n, &x->shape, &ix->shape, sp_attr_int(n, "batch_dims", 0), &ng, err)))
        return rc;
    sp_shape o = {.rank = 0};
    for (int k = 0; k < ix->shape.rank - 1; k++)
        o.d[o.rank++] = ix->shape.d[k];
    for (int k = (int)(ng.b + ng.last); k < x->shape.rank; k++) {
        if (o.rank >= SP_MAX_RANK)
            return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: output rank exceeds %d", SP_LABEL(n), SP_MAX_RANK);
        o.d[o.rank++] = x->shape.d[k];
    }
    sp_node_set_out(g, n, 0, x->dtype, &o);
    return 0;
}

static int gnd_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)n_in; (void)n_out; (void)ctx;
    nd_geom g;
    int rc = nd_geometry(n, &in[0].shape, &in[1].shape, sp_attr_int(n, "batch_dims", 0), &g, err);
    if (rc)
        return rc;
    const size_t es = sp_dtype_size(in[0].dtype), sb = (size_t)g.slice * es;
    const char *x = in[0].data;
    char *y = out[0].data;
    for (int64_t bi = 0; bi < g.nb; bi++)
        for (int64_t t = 0; t < g.ntup; t++) {
            int64_t bad = 0, bdim = 0;
            const int64_t off = nd_offset(&g, in[1].dtype, in[1].data, bi * g.ntup + t, &bad, &bdim);
            if (off < 0)
                return bad_index(err, n, bad, bdim);
            if (sb)
                memcpy(y + (size_t)(bi * g.ntup + t) * sb, x + (size_t)(bi * g.dbatch + off) * es, sb);
        }
    return 0;
}

static const sp_op_def op_gather_nd = {
    .op_type = "GatherND", .since_opset = 11, .flags = 0,
    .check = gnd_check, .infer = gnd_infer, .cpu_run = gnd_run,
};

/* ---- ScatterND / ScatterElements ------------------------------------------- */

static int sc_check(const sp_graph *g, const sp_node *n, sp_err *err)
{
    (void)g;
    int rc = sp_check_io(n, 3, 3, 1, 1, err);
    if (rc)
        return rc;
    if (red_kind(n) < 0)
        return sp_err_set(err, SPRUN_ERR_UNSUPPORTED, "%s: reduction='%s' (none, add, mul, max or min)", SP_LABEL(n),
                          sp_attr_string(n, "reduction", ""));
    return 0;
}

/* data, indices and updates dtypes of a scatter */
static int sc_dtypes(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    if ((rc = sp_check_dtype(g, n, 0, sp_dt_supported, "a numeric or bool tensor", err)) ||
        (rc = sp_check_dtype(g, n, 1, idx_dt, "int32 or int64", err)))
        return rc;
    return sp_check_dtype(g, n, 2, sp_dt_supported, "a numeric or bool tensor", err);
}

static int snd_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    char s1[128], s2[128];
    if ((rc = sc_dtypes(g, n, err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0), *ix = sp_node_in(g, n, 1), *u = sp_node_in(g, n, 2);
    nd_geom ng;
    if ((rc = nd_geometry(n, &x->shape, &ix->shape, 0, &ng, err)))
        return rc;
    /* updates: indices.shape[:-1] + data.shape[last:] */
    sp_shape us = {.rank = 0};
    for (int k = 0; k < ix->shape.rank - 1; k++)
        us.d[us.rank++] = ix->shape.d[k];
    for (int k = (int)ng.last; k < x->shape.rank && us.rank < SP_MAX_RANK; k++)
        us.d[us.rank++] = x->shape.d[k];
    if (u->dtype != x->dtype || !sp_shape_equal(&us, &u->shape))
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: updates %s (%s), expected %s (%s)", SP_LABEL(n),
                          sp_shape_str(&u->shape, s1, sizeof s1), sp_dtype_name(u->dtype),
                          sp_shape_str(&us, s2, sizeof s2), sp_dtype_name(x->dtype));
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

static int snd_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                   sp_err *err)
{
    (void)n_in; (void)n_out; (void)ctx;
    nd_geom g;
    int rc = nd_geometry(n, &in[0].shape, &in[1].shape, 0, &g, err);
    if (rc)
        return rc;
    const int dt = in[0].dtype, red = red_kind(n);
    const size_t es = sp_dtype_size(dt);
    sp_copy_bytes(out[0].data, in[0].data, (size_t)sp_shape_numel(&in[0].shape) * es);
    for (int64_t t = 0; t < g.ntup; t++) {
        int64_t bad = 0, bdim = 0;
        const int64_t off = nd_offset(&g, in[1].dtype, in[1].data, t, &bad, &bdim);
        if (off < 0)
            return bad_index(err, n, bad, bdim);
        if (red == RED_NONE) {
            memcpy((char *)out[0].data + (size_t)off * es, (const char *)in[2].data + (size_t)(t * g.slice) * es,
                   (size_t)g.slice * es);
            continue;
        }
        for (int64_t e = 0; e < g.slice; e++)
            red_apply(red, dt, es, out[0].data, off + e, in[2].data, t * g.slice + e);
    }
    return 0;
}

static const sp_op_def op_scatter_nd = {
    .op_type = "ScatterND", .since_opset = 11, .flags = 0,
    .check = sc_check, .infer = snd_infer, .cpu_run = snd_run,
};

static int se_infer(sp_graph *g, sp_node *n, sp_err *err)
{
    int rc;
    char s1[128], s2[128];
    if ((rc = sc_dtypes(g, n, err)))
        return rc;
    const sp_value *x = sp_node_in(g, n, 0), *ix = sp_node_in(g, n, 1), *u = sp_node_in(g, n, 2);
    const int r = x->shape.rank;
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), r);
    if (axis < 0 || r == 0)
        return sp_err_set(err, SPRUN_ERR_INVALID_ARGUMENT, "%s: attribute 'axis' = %lld out of range for rank %d",
                          SP_LABEL(n), (long long)sp_attr_int(n, "axis", 0), r);
    if (u->dtype != x->dtype || !sp_shape_equal(&ix->shape, &u->shape) || ix->shape.rank != r)
        return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: indices %s and updates %s must match, with data's rank %d",
                          SP_LABEL(n), sp_shape_str(&ix->shape, s1, sizeof s1),
                          sp_shape_str(&u->shape, s2, sizeof s2), r);
    for (int k = 0; k < r; k++)
        if (k != axis && ix->shape.d[k] > x->shape.d[k])
            return sp_err_set(err, SPRUN_ERR_SHAPE, "%s: indices %s exceed data %s along axis %d", SP_LABEL(n),
                              sp_shape_str(&ix->shape, s1, sizeof s1), sp_shape_str(&x->shape, s2, sizeof s2), k);
    sp_node_set_out(g, n, 0, x->dtype, &x->shape);
    return 0;
}

static int se_run(const sp_node *n, const sp_tensor *in, int n_in, sp_tensor *out, int n_out, const sp_cpu_ctx *ctx,
                  sp_err *err)
{
    (void)n_in; (void)n_out; (void)ctx;
    const sp_shape *xs = &in[0].shape, *is = &in[1].shape;
    const int r = xs->rank, dt = in[0].dtype, red = red_kind(n);
    const int axis = sp_axis(sp_attr_int(n, "axis", 0), r);
    const size_t es = sp_dtype_size(dt);
    sp_copy_bytes(out[0].data, in[0].data, (size_t)sp_shape_numel(xs) * es);
    const int64_t cnt = sp_shape_numel(is);
    int64_t xst[SP_MAX_RANK], idx[SP_MAX_RANK] = {0};
    sp_shape_strides(xs, xst);
    for (int64_t u = 0; u < cnt; u++) {
        int64_t i = sp_ld_i64(in[1].dtype, in[1].data, u);
        if (i < 0)
            i += xs->d[axis];
        if (i < 0 || i >= xs->d[axis])
            return bad_index(err, n, sp_ld_i64(in[1].dtype, in[1].data, u), xs->d[axis]);
        int64_t off = 0;
        for (int k = 0; k < r; k++)
            off += (k == axis ? i : idx[k]) * xst[k];
        red_apply(red, dt, es, out[0].data, off, in[2].data, u);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < is->d[k])
                break;
            idx[k] = 0;
        }
    }
    return 0;
}

static const sp_op_def op_scatter_elements = {
    .op_type = "ScatterElements", .since_opset = 11, .flags = 0,
    .check = sc_check, .infer = se_infer, .cpu_run = se_run,
};
static const sp_op_def op_scatter = {
    .op_type = "Scatter", .since_opset = 9, .flags = 0,
    .check = sc_check, .infer = se_infer, .cpu_run = se_run,
};

const sp_op_def *const sp_ops_scatter_gather_nd[] = {&op_gather_nd, &op_scatter_nd, &op_scatter_elements, &op_scatter,
                                                     NULL};
