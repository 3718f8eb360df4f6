/*
 * onnx_loader.h - ONNX ModelProto -> sp_graph.
 *
 * What ends up in the graph:
 *   - g->opset: the opset of the default domain ("" / "ai.onnx"). One outside
 *     [SP_ONNX_MIN_OPSET, SP_ONNX_MAX_OPSET], or none at all, is
 *     SPRUN_ERR_UNSUPPORTED.
 *   - initializers: SP_VAL_CONST values owning their payload (see
 *     onnx_tensor.h for the accepted encodings and external data rules).
 *   - graph inputs that are not initializers: SP_VAL_INPUT values listed in
 *     g->inputs, with dtype and shape; a symbolic dim is -1 in shape.d and
 *     named in dim_param ("batch"); a dim with neither value nor name is -1
 *     and unnamed; an input without a shape has rank -1. An input that is
 *     also an initializer is a constant (ONNX's "overridable default"; we do
 *     not let callers override weights).
 *   - nodes, in topological order (the file's order when it is already
 *     sorted, which the ONNX spec requires but not every exporter honours),
 *     with op = sp_op_find(domain, op_type) - NULL for unsupported ops, which
 *     is not an error here: the model loader lists every unsupported op at
 *     once afterwards. Nodes of other domains are kept the same way. Unnamed
 *     nodes are named "<op_type>_<index>". An empty input/output name (an
 *     absent optional) is -1.
 *   - attributes of every kind: FLOAT, INT, STRING, TENSOR (a standalone
 *     SP_VAL_CONST value, e.g. Constant's `value`), FLOATS, INTS, STRINGS.
 *     TENSORS, GRAPH, GRAPHS, SPARSE_TENSOR(S), TYPE_PROTO(S) keep their type
 *     but no payload: the ops that need them (If, Loop, Scan...) are not
 *     supported anyway. Constant nodes stay nodes (the Constant op folds).
 *   - graph outputs: g->outputs, is_output = 1, with the declared dtype and
 *     shape (symbolic dims named) unless the value already has its own
 *     (a constant or an input passed straight through).
 *   - value_info: ignored (shapes are inferred at plan time).
 *   - g->base_dir: the directory external data was resolved against.
 *
 * Errors (never a crash, whatever the bytes - a fuzzer runs on this): an
 * empty buffer, not a protobuf / not an ONNX model, truncated, no graph,
 * missing or escaping external data file, negative dims, rank > 8
 * (UNSUPPORTED), unsupported dtype (UNSUPPORTED), payload size mismatch, a
 * value produced twice (by two nodes, or by a node and an input/initializer),
 * a node input that nothing produces, a cycle. Messages name the tensor,
 * node or file.
 *
 * Memory: a model is never held twice. sp_onnx_load_file maps the file,
 * protobuf-c unpacks it (copying every bytes field), and the mapping is
 * released at once; then each initializer's payload is taken over from the
 * unpacked message instead of being copied (onnx_tensor.h), so peak memory
 * is about one copy of the weights plus the mapped file's pages, which the
 * kernel can drop as they are clean.
 *
 * Thread-safe: no shared state (distinct graphs may load concurrently).
 */
#ifndef SPRUN_ONNX_LOADER_H
#define SPRUN_ONNX_LOADER_H

#include "runtime/error.h"
#include "runtime/graph.h"

#include <stddef.h>

/* Default-domain opsets whose semantics the ops implement. */
#define SP_ONNX_MIN_OPSET 1
#define SP_ONNX_MAX_OPSET 23

/* Fill g (initialised by the caller with sp_graph_init) from an ONNX file.
   base_dir for external data = the file's directory.
   On failure g is left empty (freed and re-initialised), so the caller may
   sp_graph_free it either way; err names the file and what is wrong. */
int sp_onnx_load_file(const char *path, sp_graph *g, sp_err *err);

/* Same from a serialized ModelProto in memory; the buffer is only read during
   the call. base_dir resolves external data (NULL = current directory). */
int sp_onnx_load_buffer(const void *data, size_t size, const char *base_dir, sp_graph *g, sp_err *err);

#endif
