#!/usr/bin/env python3
"""Seeded inputs for an ONNX model, as raw little-endian bytes (or .npy) that sprun reads.

    python3 models/make_input.py resnet50.onnx -o input.bin                  # [1,3,224,224]
    python3 models/make_input.py bert.onnx -o inputs/ --shape batch=1 --shape seq=128
    python3 models/make_input.py bert.onnx -o inputs/ --npy --seed 3

Float inputs: standard normal.  Integer inputs feeding a Gather: uniform in [0, rows of
the table).  Inputs named like *mask*: ones with 1..seq/4 trailing zeros per row.
Other integer inputs: zeros.  One input and -o FILE: that file; otherwise -o DIR gets
DIR/<name>.bin (or .npy).  Prints `name=path` per input, ready for sprun's command line.
"""
import os

import numpy as np
import onnx

from common import cli_parser, graph_inputs, initializer_map, np_dtype, parse_shape_args, resolve_shape, sanitize


def gather_table_rows(model, input_name):
    """Rows of the constant table a Gather indexes with `input_name` (the vocab size), or None."""
    inits = initializer_map(model)
    for n in model.graph.node:
        if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] == input_name and n.input[0] in inits:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            return inits[n.input[0]].dims[axis]
    return None


def make_inputs(model, shapes=None, seed=0):
    """{name: np.ndarray} for every real graph input, in graph order."""
    rng = np.random.default_rng(seed)
    shapes = shapes or {}
    out, known = {}, {}
    for vi in graph_inputs(model):
        shape = resolve_shape(vi, shapes, known)
        for d, v in zip(vi.type.tensor_type.shape.dim, shape):
            if d.HasField("dim_param"):
                known[d.dim_param] = v
        dtype = np_dtype(vi)
        if np.issubdtype(dtype, np.floating):
            a = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            a = rng.integers(0, 2, shape).astype(np.bool_)
        elif "mask" in vi.name.lower() and len(shape) >= 1:
            a = np.ones(shape, dtype)
            rows = a.reshape(-1, shape[-1]) if shape[-1] else a.reshape(0, 0)
            for r in range(rows.shape[0]):  # 1 .. seq/4 padding tokens, never the whole row
                n_pad = min(int(rng.integers(1, shape[-1] // 4 + 2)), shape[-1] - 1)
                rows[r, shape[-1] - n_pad:] = 0
        else:
            rows = gather_table_rows(model, vi.name)
            a = rng.integers(0, rows, shape).astype(dtype) if rows else np.zeros(shape, dtype)
        out[vi.name] = a
    return out


def write_inputs(arrays, target, npy=False):
    """Write arrays to `target` (file when one input and not a dir); returns {name: path}."""
    as_dir = len(arrays) > 1 or target.endswith(os.sep) or os.path.isdir(target)
    paths = {}
    if as_dir:
        os.makedirs(target, exist_ok=True)
    for name, a in arrays.items():
        if as_dir:
            path = os.path.join(target, sanitize(name) + (".npy" if npy else ".bin"))
        else:
            path = target
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if npy or path.endswith(".npy"):
            np.save(path, a)
        else:
            a.astype(a.dtype.newbyteorder("<"), copy=False).tofile(path)
        paths[name] = path
    return paths


def main(argv=None):
    ap = cli_parser(__doc__)
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True, help="FILE (one input) or DIR")
    ap.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                    help="input shape, or a symbolic dim (batch=2, seq=64); default batch 1, seq 128")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--npy", action="store_true", help="write .npy instead of raw .bin")
    a = ap.parse_args(argv)
    model = onnx.load(a.model, load_external_data=False)
    arrays = make_inputs(model, parse_shape_args(a.shape), a.seed)
    for name, path in write_inputs(arrays, a.output, a.npy).items():
        arr = arrays[name]
        print(f"{name}={path}\t{arr.dtype} {'x'.join(map(str, arr.shape))}")


if __name__ == "__main__":
    main()
