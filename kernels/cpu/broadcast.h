/*
 * broadcast.h - NumPy-style broadcasting iteration for up to 4 operands.
 *
 * sp_bcast_init() right-aligns every input shape against the output shape,
 * drops size-1 output dims and merges neighbouring dims whose broadcast
 * pattern is the same for every input, so that
 *     [B,S,H] + [H]      -> 2 dims: [B*S (a only), H (both)]
 *     [N,C,H,W] + [C,1,1] -> 3 dims: [N, C, H*W]
 *     same shapes        -> 1 dim
 * The innermost (coalesced) dim is the contiguous run a kernel loops over:
 * per input its stride is 1 (varies) or 0 (broadcast). The outer dims are
 * walked with an odometer (sp_bcast_seek / sp_bcast_next) giving each
 * input's element offset at the start of each run.
 *
 * Used by the binary elementwise ops, the variadic ones (Max/Min/Sum/Mean),
 * Expand and Where.
 */
#ifndef SPRUN_BROADCAST_H
#define SPRUN_BROADCAST_H

#include "runtime/graph.h"

#include <stdint.h>

#define SP_BCAST_MAX_IN 4

typedef struct sp_bcast {
    int rank;                 /* coalesced rank, >= 1 */
    int n_in;
    int64_t dims[SP_MAX_RANK];
    int64_t st[SP_BCAST_MAX_IN][SP_MAX_RANK]; /* element strides, 0 where broadcast */
    int64_t inner;            /* dims[rank - 1] */
    int64_t outer;            /* product of dims[0 .. rank - 2] (1 if rank == 1) */
    int64_t total;            /* inner * outer */
} sp_bcast;

/* Odometer position over the outer dims. */
typedef struct sp_bcast_pos {
    int64_t idx[SP_MAX_RANK];
    int64_t off[SP_BCAST_MAX_IN];
} sp_bcast_pos;

/* ins[k] must broadcast to out (the caller inferred out with
 * sp_shape_broadcast); returns 0 or SPRUN_ERR_SHAPE. */
int sp_bcast_init(sp_bcast *b, const sp_shape *out, const sp_shape *const *ins, int n_in, sp_err *err);
/* Positions p at outer run `row` (0 <= row < outer). */
void sp_bcast_seek(const sp_bcast *b, int64_t row, sp_bcast_pos *p);
/* Advances p to the next outer run. */
static inline void sp_bcast_next(const sp_bcast *b, sp_bcast_pos *p)
{
    for (int d = b->rank - 2; d >= 0; d--) {
        for (int k = 0; k < b->n_in; k++)
            p->off[k] += b->st[k][d];
        if (++p->idx[d] < b->dims[d])
            return;
        for (int k = 0; k < b->n_in; k++)
            p->off[k] -= b->st[k][d] * b->dims[d];
        p->idx[d] = 0;
    }
}
/* Inner stride (0 or 1) of input k. */
static inline int64_t sp_bcast_inner_stride(const sp_bcast *b, int k) { return b->st[k][b->rank - 1]; }

/* Broadcast-copies src (shape in, elements of esize bytes) into dst (shape
 * out): Expand, and the first step of the variadic ops. */
int sp_bcast_copy(const sp_shape *in, const void *src, const sp_shape *out, void *dst, size_t esize, sp_err *err);

#endif
