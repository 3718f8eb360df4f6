"""Helpers shared by the scripts in models/ (onnx + numpy only).

Shapes on the command line are written NAME=D0xD1x... (`--shape input=1x3x224x224`).
Symbolic dimensions left open fall back to DEFAULT_DIMS (batch 1, seq 128).
"""
import argparse
import os
import re

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
DEFAULT_DIMS = {"batch": 1, "batch_size": 1, "n": 1, "seq": 128, "sequence": 128,
                "seq_len": 128, "sequence_length": 128}


def cli_parser(doc):
    """ArgumentParser whose description is the module docstring's first paragraph and whose
    epilog is the rest (usage examples and details), formatting kept."""
    paragraphs = doc.strip().split("\n\n")
    return argparse.ArgumentParser(description=paragraphs[0], epilog="\n\n".join(paragraphs[1:]),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def sanitize(name):
    """File name for a tensor name, the rule sprun uses for `-o DIR/`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def parse_shape_args(items):
    """['input=1x3x224x224', 'batch=2'] -> {'input': [1,3,224,224], 'batch': [2]}."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--shape wants NAME=D0xD1..., got {item!r}")
        name, dims = item.rsplit("=", 1)
        try:
            out[name] = [int(d) for d in dims.lower().split("x") if d != ""]
        except ValueError:
            raise SystemExit(f"--shape {item!r}: dimensions must be integers")
    return out


def graph_inputs(model):
    """Real inputs: graph inputs that are not also initializers (old exporters list both)."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def np_dtype(value_info):
    return helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type)


def symbolic_dims(value_info):
    """[int or str or None] for each dimension of a graph input/output."""
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def resolve_shape(value_info, shapes, known_dims=None, allow_open=False):
    """Concrete shape of a graph input.

    `shapes` maps an input name to a full shape, or a dimension name (e.g. `batch`)
    to a one-element list.  `known_dims` carries values of symbolic dims learned from
    other inputs.  Unknown dims take DEFAULT_DIMS; left open (None) if allow_open.
    """
    if value_info.name in shapes:
        return list(shapes[value_info.name])
    known_dims = known_dims if known_dims is not None else {}
    shape = []
    for d in symbolic_dims(value_info):
        if isinstance(d, int):
            shape.append(d)
        elif d is not None and d in shapes and len(shapes[d]) == 1:
            shape.append(shapes[d][0])
        elif d is not None and d in known_dims:
            shape.append(known_dims[d])
        elif d is not None and d.lower() in DEFAULT_DIMS and not allow_open:
            shape.append(DEFAULT_DIMS[d.lower()])
        elif allow_open:
            shape.append(None)
        else:
            raise SystemExit(f"input {value_info.name!r}: dimension {d!r} is not fixed; "
                             f"give --shape {value_info.name}=D0xD1...")
    return shape


def with_concrete_inputs(model, shapes):
    """Copy of `model` whose graph inputs have fixed shapes (for shape inference)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in graph_inputs(m):
        shape = resolve_shape(vi, shapes)
        dims = vi.type.tensor_type.shape.dim
        for d, v in zip(dims, shape):
            d.Clear()
            d.dim_value = v
    return m


def initializer_map(model):
    return {t.name: t for t in model.graph.initializer}


def to_array(tensor):
    return numpy_helper.to_array(tensor)


def make_model(graph, opset=OPSET, producer="sprun-models"):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name=producer)
    model.ir_version = 8  # what torch.onnx emits for opset 17; onnxruntime 1.14+ reads it
    return model


def save(model, path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    onnx.save(model, path)


class GraphBuilder:
    """Tiny node/initializer accumulator with unique names, used by the model builders."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.counts = {}
        self.n_params = 0

    def unique(self, base):
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def init(self, name, array, param=True):
        """Add an initializer. `param` counts it as a trainable parameter."""
        array = np.ascontiguousarray(array)
        self.inits.append(numpy_helper.from_array(array, name))
        if param:
            self.n_params += array.size
        return name

    def const(self, array, base="const"):
        """Non-parameter constant (shape pieces, scalars): a Constant node, as torch emits."""
        name = self.unique(f"/{base}/Constant_output_0")
        self.nodes.append(helper.make_node("Constant", [], [name], name=self.unique(f"/{base}/Constant"),
                                           value=numpy_helper.from_array(np.asarray(array))))
        return name

    def node(self, op, inputs, name, n_out=1, **attrs):
        name = self.unique(name)
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def graph(self, name, inputs, outputs):
        return helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
