#!/usr/bin/env python3
"""Magnitude-prune the constant weights of Conv / Gemm / MatMul in any ONNX model.

    python3 models/prune.py model.onnx -o out.onnx --unstructured 0.8
    python3 models/prune.py model.onnx -o out.onnx --block 16x16:0.7
    python3 models/prune.py model.onnx -o out.onnx --2:4
    python3 models/prune.py model.onnx                      # report only: sparsity as found

Every weight is seen as a GEMM operand: rows = output features (M), columns = the
reduction dim (K).  Conv [M, C/g, kh, kw] -> [M, C/g*kh*kw] (c, kh, kw order); Gemm B
as [N, K] (transposed when transB=0); MatMul's constant [K, N] transposed to [N, K].
  --unstructured S   zero the S fraction of smallest |w|, threshold per layer
  --block RxC:S      zero the S fraction of RxC blocks (R rows x C along K) with the
                     smallest L2 norm; ragged edge blocks take part as they are
  --2:4 / --nm N:M   keep the N largest |w| of every M consecutive weights along K; for a
                     Conv, along its input channels at each kernel position (the K order
                     (kh, kw, c) of KRSC weights: TensorRT's and NVIDIA ASP's convention,
                     the same as K for 1x1 convs)
By default the first Conv and the classifier (the Gemm/MatMul whose output reaches a
graph output through bias/reshape-like ops only) stay dense; --exclude REGEX (on node or
weight name) adds more, --prune-all drops the defaults.  FLOPs are 2*M*K*rows of every
Conv/Gemm/MatMul (activation x activation MatMuls included, never pruned), from onnx shape
inference with concrete input shapes (--shape NAME=DIMS; default batch 1, seq 128); the
sparse count assumes every zero weight is skipped.
"""
import re
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from common import cli_parser, graph_inputs, initializer_map, parse_shape_args, save, with_concrete_inputs

FLOAT_TYPES = (np.float16, np.float32, np.float64)
# Ops that may sit between a classifier and the graph output without being a layer.
PASS_THROUGH = {"Add", "Sub", "Mul", "Div", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
                "Cast", "Softmax", "LogSoftmax", "Sigmoid", "Transpose", "Dropout"}


class Layer:
    """One prunable weight and how to see it as [M, K]."""

    def __init__(self, node, weight, op, transpose):
        self.node, self.weight, self.op, self.transpose = node, weight, op, transpose
        self.name = node.name or weight
        self.excluded = None  # reason string when kept dense
        self.flops = None  # dense FLOPs at the inference shape, None if unknown

    def view(self, w):
        """Weight array -> [M, K] (a view or a copy; from_view undoes it)."""
        if self.op == "Conv":
            return w.reshape(w.shape[0], -1)
        return w.T if self.transpose else w

    def from_view(self, v, shape):
        if self.op == "Conv":
            return v.reshape(shape)
        return np.ascontiguousarray(v.T if self.transpose else v)

    def channel_view(self, w):
        """[M, K] with a 4-D Conv weight's K in (kh, kw, c) order (N:M pruning runs along C)."""
        if self.op == "Conv" and w.ndim == 4:
            return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)
        return self.view(w)

    def from_channel_view(self, v, shape):
        if self.op == "Conv" and len(shape) == 4:
            m, c, kh, kw = shape
            return np.ascontiguousarray(v.reshape(m, kh, kw, c).transpose(0, 3, 1, 2))
        return self.from_view(v, shape)


def find_layers(model):
    """Prunable layers in graph order; a weight shared by several nodes is listed once."""
    inits = initializer_map(model)
    layers, seen = [], set()
    for node in model.graph.node:
        layer = None
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits:
            layer = Layer(node, node.input[1], "Conv", False)
        elif node.op_type == "Gemm" and len(node.input) > 1 and node.input[1] in inits:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            layer = Layer(node, node.input[1], "Gemm", not trans_b)
        elif node.op_type == "MatMul" and len(node.input) > 1:
            if node.input[1] in inits and len(inits[node.input[1]].dims) == 2:
                layer = Layer(node, node.input[1], "MatMul", True)  # [K, N] -> [N, K]
            elif node.input[0] in inits and len(inits[node.input[0]].dims) == 2:
                layer = Layer(node, node.input[0], "MatMul", False)  # [M, K] already
        if layer is None or layer.weight in seen:
            continue
        if helper.tensor_dtype_to_np_dtype(inits[layer.weight].data_type) not in FLOAT_TYPES:
            continue
        seen.add(layer.weight)
        layers.append(layer)
    return layers


def classifier_nodes(model):
    """Gemm/MatMul nodes whose output reaches a graph output through PASS_THROUGH ops only."""
    producer = {o: n for n in model.graph.node for o in n.output}
    found, stack, visited = set(), [o.name for o in model.graph.output], set()
    while stack:
        t = stack.pop()
        n = producer.get(t)
        if n is None or id(n) in visited:
            continue
        visited.add(id(n))
        if n.op_type in ("Gemm", "MatMul"):
            found.add(id(n))
        elif n.op_type in PASS_THROUGH:
            stack.extend(n.input)
    return found


def mark_excluded(model, layers, patterns, defaults=True):
    if defaults:
        convs = [l for l in layers if l.op == "Conv"]
        if convs:
            convs[0].excluded = "first conv"
        heads = classifier_nodes(model)
        for l in layers:
            if id(l.node) in heads:
                l.excluded = "classifier"
    for pat in patterns:
        rx = re.compile(pat)
        for l in layers:
            if rx.search(l.node.name) or rx.search(l.weight):
                l.excluded = f"--exclude {pat}"


# ---- pruning masks on the [M, K] view ----------------------------------------------------

def prune_unstructured(v, sparsity):
    n_zero = int(round(sparsity * v.size))
    if n_zero <= 0:
        return v
    flat = v.reshape(-1).copy()
    idx = np.argpartition(np.abs(flat), n_zero - 1)[:n_zero]
    flat[idx] = 0
    return flat.reshape(v.shape)


def prune_blocks(v, rows, cols, sparsity):
    m, k = v.shape
    bm, bk = -(-m // rows), -(-k // cols)
    padded = np.zeros((bm * rows, bk * cols), dtype=np.float64)
    padded[:m, :k] = v
    norms = np.sqrt((padded.reshape(bm, rows, bk, cols) ** 2).sum(axis=(1, 3)))
    n_zero = int(round(sparsity * norms.size))
    keep = np.ones(norms.size, dtype=bool)
    if n_zero > 0:
        keep[np.argsort(norms, axis=None, kind="stable")[:n_zero]] = False
    mask = np.repeat(np.repeat(keep.reshape(bm, bk), rows, axis=0), cols, axis=1)[:m, :k]
    return np.where(mask, v, 0).astype(v.dtype)


def prune_n_m(v, n, m_group):
    m, k = v.shape
    g = -(-k // m_group)
    mag = np.full((m, g * m_group), -1.0)  # padding never wins a slot
    mag[:, :k] = np.abs(v)
    order = np.argsort(-mag.reshape(m, g, m_group), axis=2, kind="stable")
    keep = np.zeros((m, g, m_group), dtype=bool)
    np.put_along_axis(keep, order[:, :, :n], True, axis=2)
    return np.where(keep.reshape(m, -1)[:, :k], v, 0).astype(v.dtype)


def apply_method(v, method):
    kind, args = method
    if kind == "unstructured":
        return prune_unstructured(v, args)
    if kind == "block":
        return prune_blocks(v, *args)
    if kind == "nm":
        return prune_n_m(v, *args)
    raise ValueError(kind)


def check_pattern(model, method, excludes=(), defaults=True):
    """Problems (strings) where a pruned model's weights do not follow `method`."""
    inits = initializer_map(model)
    layers = find_layers(model)
    mark_excluded(model, layers, excludes, defaults)
    kind, args = method
    problems = []
    for l in (l for l in layers if l.excluded is None):
        w = numpy_helper.to_array(inits[l.weight])
        v = l.channel_view(w) if kind == "nm" else l.view(w)
        m, k = v.shape
        if kind == "unstructured":
            sp = 1 - np.count_nonzero(v) / v.size
            ok = sp >= args - 0.5 / v.size
            what = f"sparsity {sp:.4f} < {args}"
        elif kind == "nm":
            n, g = args
            pad = np.zeros((m, -(-k // g) * g), dtype=bool)
            pad[:, :k] = v != 0
            worst = pad.reshape(m, -1, g).sum(axis=2).max()
            ok, what = worst <= n, f"a group of {g} holds {worst} nonzeros"
        else:
            r, c, target = args
            bm, bk = -(-m // r), -(-k // c)
            pad = np.zeros((bm * r, bk * c), dtype=bool)
            pad[:m, :k] = v != 0
            zero_blocks = int((~pad.reshape(bm, r, bk, c).any(axis=(1, 3))).sum())
            ok = zero_blocks >= int(round(target * bm * bk))
            what = f"{zero_blocks} of {bm * bk} blocks zero"
        if not ok:
            problems.append(f"{l.name}: {what}")
    return problems


def parse_method(a):
    chosen = [m for m in (a.unstructured is not None, a.block, a.two_four, a.nm) if m]
    if len(chosen) > 1:
        raise SystemExit("choose one of --unstructured, --block, --2:4, --nm")
    if a.unstructured is not None:
        if not 0 <= a.unstructured < 1:
            raise SystemExit("--unstructured wants a fraction in [0, 1)")
        return ("unstructured", a.unstructured)
    if a.block:
        mt = re.fullmatch(r"(\d+)x(\d+):([0-9.]+)", a.block)
        if not mt:
            raise SystemExit("--block wants RxC:S, e.g. 16x16:0.7")
        return ("block", (int(mt[1]), int(mt[2]), float(mt[3])))
    if a.two_four or a.nm:
        n, m = (2, 4) if a.two_four else map(int, a.nm.split(":"))
        if not 0 < n <= m:
            raise SystemExit("--nm wants N:M with 0 < N <= M")
        return ("nm", (n, m))
    return None


def method_name(method):
    if method is None:
        return "report only"
    kind, args = method
    if kind == "unstructured":
        return f"unstructured {args:g}"
    if kind == "block":
        return f"block {args[0]}x{args[1]}:{args[2]:g}"
    return f"{args[0]}:{args[1]}"


# ---- FLOPs -------------------------------------------------------------------------------

def inferred_shapes(model, shapes):
    """name -> concrete shape (list of ints) for every tensor onnx shape inference resolves."""
    m = with_concrete_inputs(model, shapes)
    # Large initializers become typed graph inputs: inference needs their shapes, not their bytes.
    keep, moved = [], []
    for t in m.graph.initializer:
        if np.prod(t.dims, dtype=np.int64) > 4096:
            moved.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            keep.append(t)
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    names = {i.name for i in m.graph.input}
    m.graph.input.extend(v for v in moved if v.name not in names)
    m = shape_inference.infer_shapes(m, data_prop=True)
    out = {}
    for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            out[vi.name] = [d.dim_value for d in dims]
    for t in keep:
        out[t.name] = list(t.dims)
    return out


def ort_shapes(model, shapes, names):
    """Shapes of `names` by running the model once in onnxruntime on seeded inputs: the
    fallback when onnx shape inference cannot follow a shape computation (Shape -> Slice...)."""
    import onnxruntime as ort
    from make_input import make_inputs

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]
    return {n: list(v.shape) for n, v in zip(outs, sess.run(outs, make_inputs(model, shapes)))}


def layer_flops(layer, m, size, shapes):
    """2*M*K*rows of a weight layer; rows = output size / M holds for Conv ([N, M, H, W]),
    Gemm/MatMul with a constant B ([..., M]) and MatMul with a constant A ([..., M, cols])."""
    y = shapes.get(layer.node.output[0])
    return None if y is None else 2 * size * int(np.prod(y)) // m


def activation_flops(node, shapes):
    """2*K*output size of a MatMul/Gemm between two activations, None if a shape is unknown."""
    y, a = shapes.get(node.output[0]), shapes.get(node.input[0])
    if y is None or not a:
        return None
    trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
    k = a[0] if (node.op_type == "Gemm" and trans_a) else a[-1]
    return 2 * k * int(np.prod(y))


# ---- driver ------------------------------------------------------------------------------

def prune_model(model, method, excludes=(), defaults=True, shapes=None):
    """Prune `model` in place.  Returns a report dict (see print_report)."""
    inits = initializer_map(model)
    layers = find_layers(model)
    mark_excluded(model, layers, excludes, defaults)
    try:
        tensor_shapes = inferred_shapes(model, shapes or {})
        shape_error = None
    except Exception as e:  # report without FLOPs rather than fail on an odd model
        tensor_shapes, shape_error = {}, str(e).splitlines()[0] if str(e) else type(e).__name__
    needed = {n.output[0] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    needed |= {n.input[0] for n in model.graph.node if n.op_type in ("Gemm", "MatMul")}
    missing = sorted(needed - set(tensor_shapes) - set(initializer_map(model)))
    if missing:
        try:
            tensor_shapes.update(ort_shapes(model, shapes or {}, missing))
        except Exception as e:  # no onnxruntime, or a model it cannot run
            shape_error = shape_error or f"onnxruntime fallback: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    rows = []
    for l in layers:
        t = inits[l.weight]
        w = numpy_helper.to_array(t)
        v = l.view(w)
        if method is not None and l.excluded is None:
            if method[0] == "nm":
                pruned = l.from_channel_view(apply_method(l.channel_view(w), method), w.shape)
            else:
                pruned = l.from_view(apply_method(v, method), w.shape)
            t.CopyFrom(numpy_helper.from_array(pruned, t.name))
            v = l.view(pruned)
        l.flops = layer_flops(l, v.shape[0], v.size, tensor_shapes)
        rows.append(dict(name=l.name, op=l.op, m=v.shape[0], k=v.shape[1], size=v.size,
                         zeros=int(v.size - np.count_nonzero(v)), flops=l.flops, excluded=l.excluded))
    layer_nodes = {id(l.node) for l in layers}
    other_flops, unknown = 0, 0
    for n in model.graph.node:
        if n.op_type in ("MatMul", "Gemm") and id(n) not in layer_nodes:
            f = activation_flops(n, tensor_shapes)
            if f is None:
                unknown += 1
            else:
                other_flops += f
    # Parameters: float initializers, less BatchNorm running statistics (buffers, not weights).
    buffers = {i for n in model.graph.node if n.op_type == "BatchNormalization" for i in n.input[3:5]}
    all_size, all_zeros = 0, 0
    for t in model.graph.initializer:
        if t.name not in buffers and helper.tensor_dtype_to_np_dtype(t.data_type) in FLOAT_TYPES:
            a = numpy_helper.to_array(t)
            all_size += a.size
            all_zeros += int(a.size - np.count_nonzero(a))
    return dict(method=method_name(method), layers=rows, other_flops=other_flops,
                unknown_flops=unknown + sum(r["flops"] is None for r in rows),
                all_size=all_size, all_zeros=all_zeros, shape_error=shape_error)


def fmt_flops(f):
    if f is None:
        return "?"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if f >= scale:
            return f"{f / scale:.2f} {unit}"
    return f"{f:.0f} "


def summary_lines(rep):
    """The totals part of the report (also used by e2e_check)."""
    rows = rep["layers"]
    pruned = [r for r in rows if r["excluded"] is None]
    ps, pz = sum(r["size"] for r in pruned), sum(r["zeros"] for r in pruned)
    ws, wz = sum(r["size"] for r in rows), sum(r["zeros"] for r in rows)
    known = [r for r in rows if r["flops"] is not None]
    dense = sum(r["flops"] for r in known) + rep["other_flops"]
    sparse = sum(r["flops"] * (1 - r["zeros"] / r["size"]) for r in known) + rep["other_flops"]
    lines = [
        f"pruned layers : {len(pruned)} of {len(rows)}, {ps:,} weights, sparsity {pz / max(ps, 1):.2%}",
        f"all GEMM weights: {ws:,} weights, sparsity {wz / max(ws, 1):.2%}",
        f"all params    : {rep['all_size']:,} (float initializers, BN statistics not counted), sparsity "
        f"{rep['all_zeros'] / max(rep['all_size'], 1):.2%}",
        f"FLOPs (Conv/Gemm/MatMul, zeros skipped): dense {fmt_flops(dense)} -> sparse {fmt_flops(sparse)}, "
        f"reduction {1 - sparse / dense if dense else 0:.2%} ({dense / sparse if sparse else 0:.2f}x)",
    ]
    if rep["other_flops"]:
        lines.append(f"  of which activation x activation MatMul/Gemm (never pruned): {fmt_flops(rep['other_flops'])}")
    if rep["unknown_flops"]:
        lines.append(f"  {rep['unknown_flops']} node(s) without inferred shapes are left out of the FLOPs"
                     + (f" (shape inference: {rep['shape_error']})" if rep["shape_error"] else ""))
    return lines


def print_report(rep, out=sys.stdout, per_layer=True):
    print(f"method: {rep['method']}", file=out)
    if per_layer:
        w = max([len(r["name"]) for r in rep["layers"]] + [5])
        print(f"{'layer':<{w}}  {'op':<6} {'M x K':>13} {'weights':>10} {'sparsity':>8}  {'FLOPs':>9}  note", file=out)
        for r in rep["layers"]:
            mk = f"{r['m']}x{r['k']}"
            print(f"{r['name']:<{w}}  {r['op']:<6} {mk:>13} {r['size']:>10,} {r['zeros'] / r['size']:>8.2%}  "
                  f"{fmt_flops(r['flops']):>9}  {('dense: ' + r['excluded']) if r['excluded'] else ''}", file=out)
    for line in summary_lines(rep):
        print(line, file=out)


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("model")
    ap.add_argument("-o", "--output", help="pruned model to write (omit: report only)")
    ap.add_argument("--unstructured", type=float, metavar="S")
    ap.add_argument("--block", metavar="RxC:S")
    ap.add_argument("--2:4", dest="two_four", action="store_true")
    ap.add_argument("--nm", metavar="N:M")
    ap.add_argument("--exclude", action="append", default=[], metavar="REGEX")
    ap.add_argument("--prune-all", action="store_true", help="also prune the first conv and the classifier")
    ap.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                    help="input shape for FLOP counting (NAME may be an input or a dim name)")
    ap.add_argument("-q", "--quiet", action="store_true", help="totals only, no per-layer table")
    a = ap.parse_args(argv)
    method = parse_method(a)
    if method is not None and not a.output:
        raise SystemExit("a pruning method needs -o OUT.onnx")
    model = onnx.load(a.model)
    if not graph_inputs(model):
        raise SystemExit(f"{a.model}: no graph inputs")
    rep = prune_model(model, method, a.exclude, not a.prune_all, parse_shape_args(a.shape))
    print_report(rep, per_layer=not a.quiet)
    if a.output:
        save(model, a.output)
        print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
