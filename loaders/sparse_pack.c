/*
 * sparse_pack.c - dense [M, K] float -> CSR / BSR / 2:4 packers (see
 * sparse_pack.h for the contract, sparse_format.h for the layouts).
 */
#include "loaders/sparse_pack.h"

#include "sprun.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sp_errbuf_set(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

size_t sp_vtype_size(sp_sparse_vtype vt)
{
    return vt == SP_VT_F16 ? 2 : 4;
}

/* malloc of n elements of size bytes, NULL on overflow or exhaustion. Never
 * asks for 0 bytes so that NULL always means failure. */
static void *alloc_n(int64_t n, size_t size)
{
    if (n < 0 || (size && (uint64_t)n > SIZE_MAX / size))
        return NULL;
    size_t bytes = (size_t)n * size;
    return malloc(bytes ? bytes : 1);
}

static void *calloc_n(int64_t n, size_t size)
{
    if (n < 0)
        return NULL;
    return calloc(n ? (size_t)n : 1, size); /* calloc checks n*size overflow */
}

static inline void store_value(void *values, int64_t i, float v, sp_sparse_vtype vt)
{
    if (vt == SP_VT_F16)
        ((uint16_t *)values)[i] = sp_f32_to_f16(v);
    else
        ((float *)values)[i] = v;
}

/* Shared argument checks; `what` names the packer in the message. */
static int check_args(const char *what, const float *w, int64_t m, int64_t k,
                      sp_sparse_vtype vt, const void *out, char *err, size_t errlen)
{
    if (!out)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "%s: out is NULL", what);
    if (m < 0 || k < 0 || m > INT32_MAX || k > INT32_MAX)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT,
                    "%s: shape [%lld, %lld] outside [0, INT32_MAX]", what, (long long)m,
                    (long long)k);
    if (!w && m > 0 && k > 0)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "%s: w is NULL", what);
    if (vt != SP_VT_F32 && vt != SP_VT_F16)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "%s: unknown value type %d",
                    what, (int)vt);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CSR                                                                       */
/* ------------------------------------------------------------------------ */

typedef struct row_len {
    int64_t len;
    int32_t row;
} row_len;

static int cmp_row_len(const void *pa, const void *pb)
{
    const row_len *a = pa, *b = pb;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1; /* longer rows first */
    return (a->row > b->row) - (a->row < b->row);
}

static void free_csr(sp_csr *c)
{
    free(c->row_ptr);
    free(c->col_idx16);
    free(c->col_idx32);
    free(c->row_order);
    free(c->values);
    memset(c, 0, sizeof *c);
}

/* c->row_order from c->row_ptr: rows by decreasing length, ties by row
 * index, using lens (c->m entries of scratch). The comparator is a total
 * order, so qsort's instability cannot make the result depend on the C
 * library: packing stays deterministic. */
static void set_row_order(sp_csr *c, row_len *lens)
{
    for (int64_t i = 0; i < c->m; i++) {
        lens[i].len = c->row_ptr[i + 1] - c->row_ptr[i];
        lens[i].row = (int32_t)i;
    }
    if (c->m > 1)
        qsort(lens, (size_t)c->m, sizeof *lens, cmp_row_len);
    for (int64_t i = 0; i < c->m; i++)
        c->row_order[i] = lens[i].row;
}

int sp_pack_csr(const float *w, int64_t m, int64_t k, sp_sparse_vtype vt, sp_csr *out,
                char *err, size_t errlen)
{
    int rc = check_args("CSR packing", w, m, k, vt, out, err, errlen);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);

    int64_t nnz = 0;
    for (int64_t i = 0; i < m * k; i++)
        nnz += w[i] != 0.0f;
    if (nnz > INT32_MAX)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_UNSUPPORTED,
                    "CSR packing: %lld nonzeros exceed the int32 row_ptr", (long long)nnz);

    sp_csr c = {.m = m, .k = k, .nnz = nnz, .vtype = vt};
    const int narrow = k <= 65536; /* column k-1 <= 65535 fits uint16 */
    row_len *lens = alloc_n(m, sizeof *lens);
    c.row_ptr = alloc_n(m + 1, sizeof *c.row_ptr);
    c.row_order = alloc_n(m, sizeof *c.row_order);
    c.values = alloc_n(nnz, sp_vtype_size(vt));
    if (narrow)
        c.col_idx16 = alloc_n(nnz, sizeof *c.col_idx16);
    else
        c.col_idx32 = alloc_n(nnz, sizeof *c.col_idx32);
    if (!lens || !c.row_ptr || !c.row_order || !c.values || (!c.col_idx16 && !c.col_idx32)) {
        free(lens);
        free_csr(&c);
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY,
                    "CSR packing: out of memory for [%lld, %lld] with %lld nonzeros",
                    (long long)m, (long long)k, (long long)nnz);
    }

    int64_t p = 0;
    c.row_ptr[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < k; j++) {
            const float v = w[i * k + j]; /* indexed, not w + i*k: w may be NULL when k == 0 */
            if (v == 0.0f)
                continue;
            if (narrow)
                c.col_idx16[p] = (uint16_t)j;
            else
                c.col_idx32[p] = (int32_t)j;
            store_value(c.values, p, v, vt);
            p++;
        }
        c.row_ptr[i + 1] = (int32_t)p;
    }
    set_row_order(&c, lens);
    free(lens);
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* BSR                                                                       */
/* ------------------------------------------------------------------------ */

static void free_bsr(sp_bsr *b)
{
    free(b->block_ptr);
    free(b->block_col);
    free(b->values);
    memset(b, 0, sizeof *b);
}

int sp_pack_bsr(const float *w, int64_t m, int64_t k, int br, int bc, sp_sparse_vtype vt,
                sp_bsr *out, char *err, size_t errlen)
{
    int rc = check_args("BSR packing", w, m, k, vt, out, err, errlen);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    if (br < 1 || bc < 1)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT,
                    "BSR packing: block %dx%d must be at least 1x1", br, bc);

    sp_bsr b = {.m = m, .k = k, .br = br, .bc = bc, .vtype = vt};
    b.mb = (m + br - 1) / br;
    b.kb = (k + bc - 1) / bc;

    /* Pass 1: one byte per block (mb*kb <= m*k, so never more than the
     * weight itself) marks the blocks to store. */
    uint8_t *used = calloc_n(b.mb * b.kb, 1);
    b.block_ptr = alloc_n(b.mb + 1, sizeof *b.block_ptr);
    if (!used || !b.block_ptr) {
        free(used);
        free_bsr(&b);
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY,
                    "BSR packing: out of memory for the %lldx%lld block map",
                    (long long)b.mb, (long long)b.kb);
    }
    for (int64_t i = 0; i < m; i++) {
        uint8_t *u = used + (i / br) * b.kb;
        for (int64_t j = 0; j < k; j++)
            u[j / bc] |= w[i * k + j] != 0.0f;
    }
    int64_t nblocks = 0;
    b.block_ptr[0] = 0;
    for (int64_t bi = 0; bi < b.mb; bi++) {
        for (int64_t bj = 0; bj < b.kb; bj++)
            nblocks += used[bi * b.kb + bj];
        if (nblocks > INT32_MAX) {
            free(used);
            free_bsr(&b);
            return sp_errbuf_set(err, errlen, SPRUN_ERR_UNSUPPORTED,
                        "BSR packing: more than INT32_MAX %dx%d blocks", br, bc);
        }
        b.block_ptr[bi + 1] = (int32_t)nblocks;
    }
    b.nblocks = nblocks;

    /* Pass 2: calloc zero-fills the padding and the zeros inside blocks. */
    const int64_t bsz = (int64_t)br * bc;
    b.block_col = alloc_n(nblocks, sizeof *b.block_col);
    b.values = (nblocks <= INT64_MAX / bsz) ? calloc_n(nblocks * bsz, sp_vtype_size(vt)) : NULL;
    if (!b.block_col || !b.values) {
        free(used);
        free_bsr(&b);
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY,
                    "BSR packing: out of memory for %lld blocks of %dx%d",
                    (long long)nblocks, br, bc);
    }
    for (int64_t bi = 0; bi < b.mb; bi++) {
        int64_t p = b.block_ptr[bi];
        for (int64_t bj = 0; bj < b.kb; bj++) {
            if (!used[bi * b.kb + bj])
                continue;
            b.block_col[p] = (int32_t)bj;
            for (int64_t r = 0; r < br && bi * br + r < m; r++) {
                const float *src = w + (bi * br + r) * k + bj * bc;
                const int64_t cols = (bj * bc + bc <= k) ? bc : k - bj * bc;
                for (int64_t c = 0; c < cols; c++)
                    if (src[c] != 0.0f)
                        store_value(b.values, p * bsz + r * bc + c, src[c], vt);
            }
            p++;
        }
    }
    free(used);
    *out = b;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* 2:4                                                                       */
/* ------------------------------------------------------------------------ */

int sp_pack_24(const float *w, int64_t m, int64_t k, sp_sparse_vtype vt, sp_24 *out,
               char *err, size_t errlen)
{
    int rc = check_args("2:4 packing", w, m, k, vt, out, err, errlen);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);

    sp_24 s = {.m = m, .k = k, .kp = (k + 3) / 4 * 4, .vtype = vt};
    const int64_t groups = s.kp / 4;

    /* Validate the whole matrix before allocating: the common rejection
     * (a weight that is not 2:4) then costs no memory. */
    for (int64_t i = 0; i < m; i++) {
        for (int64_t g = 0; g < groups; g++) {
            int n = 0;
            for (int64_t j = 4 * g; j < 4 * g + 4 && j < k; j++)
                n += w[i * k + j] != 0.0f;
            if (n > 2)
                return sp_errbuf_set(err, errlen, SPRUN_ERR_UNSUPPORTED,
                            "2:4 packing: row %lld group %lld has %d nonzeros",
                            (long long)i, (long long)g, n);
        }
    }

    s.values = alloc_n(m * groups * 2, sp_vtype_size(vt));
    s.meta = alloc_n(m * groups, 1);
    if (!s.values || !s.meta) {
        free(s.values);
        free(s.meta);
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY,
                    "2:4 packing: out of memory for [%lld, %lld]", (long long)m, (long long)k);
    }
    for (int64_t i = 0; i < m; i++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *grp = w + i * k + 4 * g;
            int keep = 0; /* bit q set: position q kept */
            int n = 0;
            for (int q = 0; q < 4 && 4 * g + q < k; q++)
                if (grp[q] != 0.0f) {
                    keep |= 1 << q;
                    n++;
                }
            /* Complete with the lowest free positions (see sparse_pack.h). */
            for (int q = 0; q < 4 && n < 2; q++)
                if (!(keep & (1 << q))) {
                    keep |= 1 << q;
                    n++;
                }
            int pos[2], t = 0;
            for (int q = 0; q < 4; q++)
                if (keep & (1 << q))
                    pos[t++] = q;
            const int64_t o = i * groups + g;
            s.meta[o] = (uint8_t)(pos[0] | (pos[1] << 2));
            for (int e = 0; e < 2; e++) {
                const float v = (4 * g + pos[e] < k) ? grp[pos[e]] : 0.0f;
                store_value(s.values, 2 * o + e, v, vt);
            }
        }
    }
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Unstructured = 2:4 part + overflow                                        */
/* ------------------------------------------------------------------------ */

/* Writes group g of base row i from the (at most two) kept positions pos[]
 * with values val[] (raw bits of vsz bytes), completing as sp_pack_24 does */
static void put_group24(sp_24 *b, int64_t i, int64_t g, int n, const int *pos, const unsigned char *val, size_t vsz)
{
    const int64_t groups = b->kp / 4, o = i * groups + g;
    int keep = 0, kept = n;
    for (int e = 0; e < n; e++)
        keep |= 1 << pos[e];
    for (int q = 0; q < 4 && kept < 2; q++) /* the lowest free positions, value 0 */
        if (!(keep & (1 << q))) {
            keep |= 1 << q;
            kept++;
        }
    int t = 0;
    b->meta[o] = 0;
    for (int q = 0; q < 4; q++) {
        if (!(keep & (1 << q)))
            continue;
        unsigned char *dst = (unsigned char *)b->values + (size_t)(2 * o + t) * vsz;
        memset(dst, 0, vsz);
        for (int e = 0; e < n; e++)
            if (pos[e] == q)
                memcpy(dst, val + (size_t)e * vsz, vsz);
        b->meta[o] |= (uint8_t)(q << (2 * t));
        t++;
    }
}

int64_t sp_csr_overflow24(const sp_csr *w)
{
    if (!w || !w->row_ptr)
        return 0;
    int64_t over = 0;
    for (int64_t i = 0; i < w->m; i++) {
        int64_t g = -1;
        int n = 0;
        for (int64_t p = w->row_ptr[i]; p < w->row_ptr[i + 1]; p++) {
            const int64_t c = w->col_idx16 ? w->col_idx16[p] : w->col_idx32[p];
            if (c / 4 != g) {
                g = c / 4;
                n = 0;
            }
            over += ++n > 2;
        }
    }
    return over;
}

int sp_csr_split24(const sp_csr *w, sp_24 *base, sp_csr *overflow, char *err, size_t errlen)
{
    if (!w || !base || !overflow || !w->row_ptr || (!w->col_idx16 && !w->col_idx32) || (w->nnz > 0 && !w->values))
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "2:4 split: NULL or incomplete CSR weight");
    memset(base, 0, sizeof *base);
    memset(overflow, 0, sizeof *overflow);
    const int64_t m = w->m, k = w->k, nover = sp_csr_overflow24(w);
    const size_t vsz = sp_vtype_size(w->vtype);
    sp_24 b = {.m = m, .k = k, .kp = (k + 3) / 4 * 4, .vtype = w->vtype};
    const int64_t groups = b.kp / 4;
    sp_csr o = {.m = m, .k = k, .nnz = nover, .vtype = w->vtype};
    row_len *lens = alloc_n(m, sizeof *lens);
    b.values = alloc_n(m * groups * 2, vsz);
    b.meta = alloc_n(m * groups, 1);
    o.row_ptr = alloc_n(m + 1, sizeof *o.row_ptr);
    o.row_order = alloc_n(m, sizeof *o.row_order);
    o.values = alloc_n(nover, vsz);
    if (w->col_idx16)
        o.col_idx16 = alloc_n(nover, sizeof *o.col_idx16);
    else
        o.col_idx32 = alloc_n(nover, sizeof *o.col_idx32);
    if (!lens || !b.values || !b.meta || !o.row_ptr || !o.row_order || !o.values || (!o.col_idx16 && !o.col_idx32)) {
        free(lens);
        free(b.values);
        free(b.meta);
        free_csr(&o);
        return sp_errbuf_set(err, errlen, SPRUN_ERR_OUT_OF_MEMORY, "2:4 split: out of memory for [%lld, %lld]",
                             (long long)m, (long long)k);
    }
    const unsigned char *vals = w->values;
    int64_t q = 0;
    o.row_ptr[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        int64_t g = -1, next = 0; /* the group being collected; the first not yet written */
        int n = 0, pos[2] = {0, 0};
        unsigned char val[2 * sizeof(float)];
        for (int64_t p = w->row_ptr[i]; p < w->row_ptr[i + 1]; p++) {
            const int64_t c = w->col_idx16 ? w->col_idx16[p] : w->col_idx32[p];
            if (c / 4 != g) {
                if (g >= 0)
                    put_group24(&b, i, g, n, pos, val, vsz);
                for (; next < c / 4; next++)
                    put_group24(&b, i, next, 0, pos, val, vsz);
                g = c / 4;
                next = g + 1;
                n = 0;
            }
            if (n < 2) {
                pos[n] = (int)(c % 4);
                memcpy(val + (size_t)n * vsz, vals + (size_t)p * vsz, vsz);
                n++;
            } else { /* a third or fourth nonzero of the group */
                if (o.col_idx16)
                    o.col_idx16[q] = (uint16_t)c;
                else
                    o.col_idx32[q] = (int32_t)c;
                memcpy((unsigned char *)o.values + (size_t)q * vsz, vals + (size_t)p * vsz, vsz);
                q++;
            }
        }
        if (g >= 0)
            put_group24(&b, i, g, n, pos, val, vsz);
        for (; next < groups; next++)
            put_group24(&b, i, next, 0, pos, val, vsz);
        o.row_ptr[i + 1] = (int32_t)q;
    }
    set_row_order(&o, lens);
    free(lens);
    *base = b;
    *overflow = o;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch, unpack, size, free                                              */
/* ------------------------------------------------------------------------ */

int sp_pack(const float *w, int64_t m, int64_t k, sp_sparse_kind kind, int br, int bc,
            sp_sparse_vtype vt, sp_sparse_matrix *out, char *err, size_t errlen)
{
    if (!out)
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT, "sparse packing: out is NULL");
    memset(out, 0, sizeof *out);
    int rc;
    switch (kind) {
    case SP_SPARSE_CSR:
        rc = sp_pack_csr(w, m, k, vt, &out->u.csr, err, errlen);
        break;
    case SP_SPARSE_BSR:
        rc = sp_pack_bsr(w, m, k, br, bc, vt, &out->u.bsr, err, errlen);
        break;
    case SP_SPARSE_24:
        rc = sp_pack_24(w, m, k, vt, &out->u.s24, err, errlen);
        break;
    default:
        return sp_errbuf_set(err, errlen, SPRUN_ERR_INVALID_ARGUMENT,
                    "sparse packing: kind %d is not a packed layout", (int)kind);
    }
    if (rc == 0)
        out->kind = kind;
    return rc;
}

int sp_unpack_dense(const sp_sparse_matrix *s, float *w_out)
{
    if (!s || !w_out)
        return SPRUN_ERR_INVALID_ARGUMENT;
    switch (s->kind) {
    case SP_SPARSE_CSR: {
        const sp_csr *c = &s->u.csr;
        memset(w_out, 0, (size_t)(c->m * c->k) * sizeof *w_out);
        for (int64_t i = 0; i < c->m; i++)
            for (int64_t p = c->row_ptr[i]; p < c->row_ptr[i + 1]; p++) {
                const int64_t j = c->col_idx16 ? c->col_idx16[p] : c->col_idx32[p];
                w_out[i * c->k + j] = sp_sparse_value(c->values, p, c->vtype);
            }
        return 0;
    }
    case SP_SPARSE_BSR: {
        const sp_bsr *b = &s->u.bsr;
        memset(w_out, 0, (size_t)(b->m * b->k) * sizeof *w_out);
        for (int64_t bi = 0; bi < b->mb; bi++)
            for (int64_t p = b->block_ptr[bi]; p < b->block_ptr[bi + 1]; p++)
                for (int64_t r = 0; r < b->br; r++)
                    for (int64_t c = 0; c < b->bc; c++) {
                        const int64_t i = bi * b->br + r, j = (int64_t)b->block_col[p] * b->bc + c;
                        if (i < b->m && j < b->k)
                            w_out[i * b->k + j] = sp_sparse_value(
                                b->values, (p * b->br + r) * b->bc + c, b->vtype);
                    }
        return 0;
    }
    case SP_SPARSE_24: {
        const sp_24 *t = &s->u.s24;
        const int64_t groups = t->kp / 4;
        memset(w_out, 0, (size_t)(t->m * t->k) * sizeof *w_out);
        for (int64_t i = 0; i < t->m; i++)
            for (int64_t g = 0; g < groups; g++) {
                const int64_t o = i * groups + g;
                const int pos[2] = {t->meta[o] & 3, (t->meta[o] >> 2) & 3};
                for (int e = 0; e < 2; e++)
                    if (4 * g + pos[e] < t->k)
                        w_out[i * t->k + 4 * g + pos[e]] = sp_sparse_value(t->values, 2 * o + e, t->vtype);
            }
        return 0;
    }
    default:
        return SPRUN_ERR_INVALID_ARGUMENT;
    }
}

size_t sp_sparse_bytes(const sp_sparse_matrix *s)
{
    if (!s)
        return 0;
    switch (s->kind) {
    case SP_SPARSE_CSR: {
        const sp_csr *c = &s->u.csr;
        const size_t idx = c->col_idx16 ? 2 : 4;
        return (size_t)(c->m + 1) * 4 + (size_t)c->m * 4 +
               (size_t)c->nnz * (idx + sp_vtype_size(c->vtype));
    }
    case SP_SPARSE_BSR: {
        const sp_bsr *b = &s->u.bsr;
        return (size_t)(b->mb + 1) * 4 + (size_t)b->nblocks * 4 +
               (size_t)b->nblocks * (size_t)b->br * (size_t)b->bc * sp_vtype_size(b->vtype);
    }
    case SP_SPARSE_24: {
        const sp_24 *t = &s->u.s24;
        return (size_t)t->m * (size_t)(t->kp / 2) * sp_vtype_size(t->vtype) +
               (size_t)t->m * (size_t)(t->kp / 4);
    }
    default:
        return 0;
    }
}

void sp_sparse_free(sp_sparse_matrix *s)
{
    if (!s)
        return;
    switch (s->kind) {
    case SP_SPARSE_CSR:
        free_csr(&s->u.csr);
        break;
    case SP_SPARSE_BSR:
        free_bsr(&s->u.bsr);
        break;
    case SP_SPARSE_24:
        free(s->u.s24.values);
        free(s->u.s24.meta);
        break;
    default:
        break;
    }
    memset(s, 0, sizeof *s);
}
