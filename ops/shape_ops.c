/* shape_ops.c - op family (being written). */
#include "ops/op.h"

const sp_op_def *const sp_ops_shape_ops[] = {NULL};
