/* broadcast.c - coalesced broadcasting iteration (see broadcast.h). */
#include "kernels/cpu/broadcast.h"

#include <string.h>

int sp_bcast_init(sp_bcast *b, const sp_shape *out, const sp_shape *const *ins, int n_in, sp_err *err)
{
    memset(b, 0, sizeof *b);
    b->n_in = n_in;
    /* bc[k][d]: input k broadcast along output dim d (after dropping 1s) */
    int64_t dims[SP_MAX_RANK];
    unsigned pat[SP_MAX_RANK]; /* bit k set: input k is broadcast along this dim */
    int r = 0;
    for (int d = 0; d < out->rank; d++) {
        if (out->d[d] == 1)
            continue;
        unsigned m = 0;
        for (int k = 0; k < n_in; k++) {
            int kd = d - (out->rank - ins[k]->rank);
            int64_t id = kd >= 0 ? ins[k]->d[kd] : 1;
            if (id == 1 && out->d[d] != 1)
                m |= 1u << k;
            else if (id != out->d[d]) {
                char s1[96], s2[96];
                return sp_err_set(err, SPRUN_ERR_SHAPE, "shape %s does not broadcast to %s",
                                  sp_shape_str(ins[k], s1, sizeof s1), sp_shape_str(out, s2, sizeof s2));
            }
        }
        if (r > 0 && pat[r - 1] == m) {
            dims[r - 1] *= out->d[d];
        } else {
            dims[r] = out->d[d];
            pat[r] = m;
            r++;
        }
    }
    if (r == 0) { /* scalar-like output */
        dims[0] = 1;
        pat[0] = 0;
        r = 1;
    }
    b->rank = r;
    memcpy(b->dims, dims, sizeof(int64_t) * (size_t)r);
    for (int k = 0; k < n_in; k++) {
        int64_t acc = 1;
        for (int d = r - 1; d >= 0; d--) {
            if (pat[d] & (1u << k)) {
                b->st[k][d] = 0;
            } else {
                b->st[k][d] = acc;
                acc *= dims[d];
            }
        }
    }
    b->inner = dims[r - 1];
    b->outer = 1;
    for (int d = 0; d < r - 1; d++)
        b->outer *= dims[d];
    b->total = b->inner * b->outer;
    return 0;
}

void sp_bcast_seek(const sp_bcast *b, int64_t row, sp_bcast_pos *p)
{
    memset(p, 0, sizeof *p);
    for (int d = b->rank - 2; d >= 0; d--) {
        int64_t i = row % b->dims[d];
        row /= b->dims[d];
        p->idx[d] = i;
        for (int k = 0; k < b->n_in; k++)
            p->off[k] += i * b->st[k][d];
    }
}

int sp_bcast_copy(const sp_shape *in, const void *src, const sp_shape *out, void *dst, size_t esize, sp_err *err)
{
    sp_bcast b;
    const sp_shape *ins[1] = {in};
    int rc = sp_bcast_init(&b, out, ins, 1, err);
    if (rc)
        return rc;
    if (b.total == 0)
        return 0;
    const int64_t s = sp_bcast_inner_stride(&b, 0);
    const int64_t inner = b.inner;
    char *y = dst;
    const char *x = src;
    sp_bcast_pos p;
    sp_bcast_seek(&b, 0, &p);
    for (int64_t row = 0; row < b.outer; row++) {
        const char *xs = x + (size_t)p.off[0] * esize;
        char *ys = y + (size_t)(row * inner) * esize;
        if (s == 1) {
            memcpy(ys, xs, (size_t)inner * esize);
        } else {
            switch (esize) {
            case 1: memset(ys, *xs, (size_t)inner); break;
            case 2: { uint16_t v; memcpy(&v, xs, 2); for (int64_t i = 0; i < inner; i++) ((uint16_t *)ys)[i] = v; break; }
            case 4: { uint32_t v; memcpy(&v, xs, 4); for (int64_t i = 0; i < inner; i++) ((uint32_t *)ys)[i] = v; break; }
            case 8: { uint64_t v; memcpy(&v, xs, 8); for (int64_t i = 0; i < inner; i++) ((uint64_t *)ys)[i] = v; break; }
            default:
                for (int64_t i = 0; i < inner; i++)
                    memcpy(ys + (size_t)i * esize, xs, esize);
            }
        }
        sp_bcast_next(&b, &p);
    }
    return 0;
}
