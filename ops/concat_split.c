/* concat_split.c - op family (being written). */
#include "ops/op.h"

const sp_op_def *const sp_ops_concat_split[] = {NULL};
