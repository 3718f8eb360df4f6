#!/usr/bin/env python3
"""Reference outputs from onnxruntime: CPU, fp32, graph optimisations off (ORT_DISABLE_ALL).

    python3 models/reference.py resnet50.onnx input.bin -o ref.npy
    python3 models/reference.py bert.onnx input_ids=in/input_ids.bin attention_mask=in/attention_mask.bin \\
        --shape batch=1 --shape seq=128 -o refs/          # refs/last_hidden_state.npy

Inputs are `[NAME=]FILE`; without a name they bind to the model's inputs in order.  FILE is
.npy, or raw little-endian bytes in the input's dtype whose shape comes from the model,
--shape (input name or symbolic dim), dims learnt from other inputs, and lastly one open
dim worked out from the file size.  -o FILE.npy takes a single output; -o DIR writes
DIR/<output>.npy per output (names sanitised as sprun does).
"""
import os
import sys
import time

import numpy as np
import onnx

from common import cli_parser, graph_inputs, np_dtype, parse_shape_args, resolve_shape, sanitize


def bind_args(model, args):
    """['a=x.bin', 'y.npy'] -> [(input ValueInfo, path)] in model input order."""
    inputs = graph_inputs(model)
    by_name = {vi.name: vi for vi in inputs}
    bound, positional = {}, []
    for arg in args:
        name, sep, path = arg.partition("=")
        if sep and name in by_name:
            bound[name] = path
        else:
            positional.append(arg)
    free = [vi.name for vi in inputs if vi.name not in bound]
    if len(positional) > len(free):
        raise SystemExit(f"{len(positional)} unnamed input file(s) for {len(free)} unbound input(s): {free}")
    bound.update(zip(free, positional))
    missing = [vi.name for vi in inputs if vi.name not in bound]
    if missing:
        raise SystemExit(f"no file for input(s) {missing}")
    return [(vi, bound[vi.name]) for vi in inputs]


def load_input(vi, path, shapes, known):
    """Array for input `vi` from .npy or raw .bin; records the symbolic dims it fixes in `known`."""
    dtype = np_dtype(vi)
    if path.endswith(".npy"):
        a = np.load(path)
        if a.dtype != dtype:
            print(f"note: {path} is {a.dtype}, input {vi.name} wants {dtype}: cast", file=sys.stderr)
            a = a.astype(dtype)
    else:
        raw = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        shape = resolve_shape(vi, shapes, known, allow_open=True)
        open_dims = [i for i, d in enumerate(shape) if d is None]
        fixed = int(np.prod([d for d in shape if d is not None]))
        if len(open_dims) > 1:  # prefer the usual defaults for all but the last open dim
            shape = resolve_shape(vi, shapes, known)
        elif open_dims:
            shape[open_dims[0]] = raw.size // max(fixed, 1)
        if int(np.prod(shape)) != raw.size:
            raise SystemExit(f"{path}: {raw.size} values of {np.dtype(dtype)}, input {vi.name} "
                             f"has shape {shape}; give --shape")
        a = raw.reshape(shape)
    for d, v in zip(vi.type.tensor_type.shape.dim, a.shape):
        if d.HasField("dim_param"):
            known[d.dim_param] = v
    return a


def load_inputs(model, args, shapes=None):
    """{input name: array} from `[NAME=]FILE` arguments."""
    known, feeds = {}, {}
    for vi, path in bind_args(model, args):
        feeds[vi.name] = load_input(vi, path, shapes or {}, known)
    return feeds


def session(model_or_path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def write_outputs(names, values, target):
    """-o FILE.npy (one output) or DIR (DIR/<name>.npy each); returns the paths written."""
    as_dir = target.endswith(os.sep) or os.path.isdir(target) or not target.endswith(".npy")
    if not as_dir and len(names) != 1:
        raise SystemExit(f"{len(names)} outputs {names}: give -o DIR/")
    if as_dir:
        os.makedirs(target, exist_ok=True)
    paths = []
    for name, v in zip(names, values):
        path = os.path.join(target, sanitize(name) + ".npy") if as_dir else target
        np.save(path, v)
        paths.append(path)
    return paths


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("model")
    ap.add_argument("inputs", nargs="+", metavar="[NAME=]FILE")
    ap.add_argument("-o", "--output", required=True, help="FILE.npy or DIR")
    ap.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS")
    ap.add_argument("--runs", type=int, default=1, help="time this many runs (first one reported apart)")
    a = ap.parse_args(argv)
    model = onnx.load(a.model)
    feeds = load_inputs(model, a.inputs, parse_shape_args(a.shape))
    t0 = time.perf_counter()
    sess = session(a.model)
    t1 = time.perf_counter()
    names = [o.name for o in sess.get_outputs()]
    times = []
    for _ in range(max(a.runs, 1)):
        t = time.perf_counter()
        values = sess.run(names, feeds)
        times.append(time.perf_counter() - t)
    for name, path, v in zip(names, write_outputs(names, values, a.output), values):
        print(f"{name} -> {path}\t{v.dtype} {'x'.join(map(str, v.shape))}  "
              f"finite={bool(np.isfinite(v).all())} rms={float(np.sqrt(np.mean(np.square(v, dtype=np.float64)))):.4g}")
    extra = f", best of {len(times)} {min(times) * 1e3:.1f} ms" if len(times) > 1 else ""
    print(f"onnxruntime {__import__('onnxruntime').__version__} CPU, ORT_DISABLE_ALL: "
          f"session {(t1 - t0) * 1e3:.0f} ms, first run {times[0] * 1e3:.1f} ms{extra}")


if __name__ == "__main__":
    main()
