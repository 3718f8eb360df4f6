/*
 * memplan.c - static arena layout from buffer lifetimes.
 *
 * Greedy by decreasing size (the "greedy by size" strategy TFLite uses):
 * each buffer takes the lowest offset at which it overlaps no already-placed
 * buffer whose lifetime intersects its own. Near-optimal on CNN/Transformer
 * graphs and O(n^2) on a few thousand buffers, computed once per shape.
 */
#include "runtime/model.h"

#include <stdlib.h>

typedef struct {
    int idx;
    size_t size;
} by_size;

static int cmp_size_desc(const void *a, const void *b)
{
    const by_size *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->idx - y->idx;
}

typedef struct {
    size_t off, end;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : (x->off > y->off ? 1 : 0);
}

int sp_memplan_assign(const sp_buf_req *bufs, int n, size_t align, int64_t *offsets, size_t *total, sp_err *err)
{
    *total = 0;
    if (n <= 0)
        return SPRUN_OK;
    by_size *order = malloc((size_t)n * sizeof *order);
    span *busy = malloc((size_t)n * sizeof *busy);
    int *placed = malloc((size_t)n * sizeof *placed);
    if (!order || !busy || !placed) {
        free(order);
        free(busy);
        free(placed);
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory planning %d buffers", n);
    }
    for (int i = 0; i < n; i++) {
        order[i].idx = i;
        order[i].size = (bufs[i].size + align - 1) / align * align;
        offsets[i] = -1;
    }
    qsort(order, (size_t)n, sizeof *order, cmp_size_desc);
    int n_placed = 0;
    size_t top = 0;
    for (int o = 0; o < n; o++) {
        int i = order[o].idx;
        size_t sz = order[o].size;
        if (sz == 0) {
            offsets[i] = 0;
            continue;
        }
        int nb = 0;
        for (int p = 0; p < n_placed; p++) {
            int j = placed[p];
            if (bufs[j].first <= bufs[i].last && bufs[i].first <= bufs[j].last) {
                busy[nb].off = (size_t)offsets[j];
                busy[nb].end = (size_t)offsets[j] + (bufs[j].size + align - 1) / align * align;
                nb++;
            }
        }
        qsort(busy, (size_t)nb, sizeof *busy, cmp_span);
        size_t cand = 0;
        for (int b = 0; b < nb; b++) {
            if (busy[b].off >= cand + sz)
                break; /* fits in the gap before this span */
            if (busy[b].end > cand)
                cand = busy[b].end;
        }
        offsets[i] = (int64_t)cand;
        placed[n_placed++] = i;
        if (cand + sz > top)
            top = cand + sz;
    }
    *total = top;
    free(order);
    free(busy);
    free(placed);
    return SPRUN_OK;
}

int sp_memplan_classes(const sp_graph *g, int *parent, const int *first, const int *last,
                       size_t (*bytes_of)(const void *ctx, const sp_value *v), const void *ctx, size_t align,
                       int64_t *off, size_t *total, sp_err *err)
{
    const int nv = g->n_values;
    for (int v = 0; v < nv; v++)
        off[v] = -1;
    const size_t cnt = (size_t)(nv > 0 ? nv : 1);
    int *buf_of = malloc(cnt * sizeof *buf_of);
    sp_buf_req *req = calloc(cnt, sizeof *req);
    int64_t *boff = malloc(cnt * sizeof *boff);
    if (!buf_of || !req || !boff) {
        free(buf_of);
        free(req);
        free(boff);
        return sp_err_set(err, SPRUN_ERR_OUT_OF_MEMORY, "out of memory planning memory for %d values", nv);
    }
    int nb = 0;
    for (int v = 0; v < nv; v++)
        buf_of[v] = -1;
    for (int v = 0; v < nv; v++) {
        const sp_value *val = &g->values[v];
        if (val->kind == SP_VAL_CONST || first[v] < 0)
            continue;
        int r = sp_union_root(parent, v);
        if (buf_of[r] < 0) {
            buf_of[r] = nb;
            req[nb].size = 0;
            req[nb].first = first[v];
            req[nb].last = last[v] > first[v] ? last[v] : first[v];
            nb++;
        }
        sp_buf_req *b = &req[buf_of[r]];
        size_t bytes = bytes_of(ctx, val);
        if (bytes > b->size)
            b->size = bytes;
        if (first[v] < b->first)
            b->first = first[v];
        if (last[v] > b->last)
            b->last = last[v];
    }
    int rc = sp_memplan_assign(req, nb, align, boff, total, err);
    if (rc == SPRUN_OK)
        for (int v = 0; v < nv; v++)
            if (g->values[v].kind != SP_VAL_CONST && first[v] >= 0)
                off[v] = boff[buf_of[sp_union_root(parent, v)]];
    free(buf_of);
    free(req);
    free(boff);
    return rc;
}
