#!/usr/bin/env python3
"""Cases for tests/gpu/test_cuda_backend.c: small ONNX graphs (one op family each) and whole models.

    python3 tests/gpu/make_cases.py WORKDIR [--full]

Writes WORKDIR/*.onnx, WORKDIR/ops.txt (the per-op graphs) and WORKDIR/cases.txt (ops.txt, then the
tiny ResNet-50 and BERT of models/; with --full also the full-size ones, r50.onnx and bert.onnx, which
tests/gpu/run.sh benchmarks afterwards). A case line is `path/to/model.onnx [name=DxDx..] ...`.
Exit 77 when numpy or onnx cannot be imported (test_cuda_backend reports that as a skip).
"""
import os
import subprocess
import sys

try:
    import numpy as np
    from onnx import helper, TensorProto, numpy_helper, save
except ImportError as e:
    print(f"make_cases.py: {e} (pip install onnx numpy)", file=sys.stderr)
    sys.exit(77)

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models")


def op_cases(w):
    """Writes the per-op graphs into w; returns their case lines."""
    cases = []
    rng = np.random.default_rng(0)
    F = TensorProto.FLOAT
    def model(name, nodes, inputs, outputs, inits=(), shapes=""):
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
                              [numpy_helper.from_array(a, n) for n, a in inits])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]); m.ir_version = 8
        p = os.path.join(w, name + ".onnx"); save(m, p); cases.append(p + " " + shapes)
    r = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)
    N = helper.make_node
    # conv families (NHWC inside), pooling, head
    model("conv_bias_relu", [N("Conv", ["x", "w", "b"], ["c"], pads=[1,1,1,1]), N("Relu", ["c"], ["y"])],
          [("x", F, [2, 16, 12, 12])], [("y", F)], [("w", r(32, 16, 3, 3)), ("b", r(32))])
    model("conv_residual", [N("Conv", ["x", "w", "b"], ["c"], strides=[2,2], pads=[1,1,1,1]),
          N("Conv", ["x", "w2", "b2"], ["d"], strides=[2,2]), N("Add", ["c", "d"], ["s"]), N("Relu", ["s"], ["y"])],
          [("x", F, [2, 8, 15, 15])], [("y", F)], [("w", r(24, 8, 3, 3)), ("b", r(24)), ("w2", r(24, 8, 1, 1)), ("b2", r(24))])
    model("conv_group_nobias", [N("Conv", ["x", "w"], ["y"], group=4, pads=[1,1,1,1])],
          [("x", F, [1, 16, 9, 9])], [("y", F)], [("w", r(16, 4, 3, 3))])
    model("pools_gemm", [N("Conv", ["x", "w", "b"], ["c"], pads=[3,3,3,3], strides=[2,2]),
          N("MaxPool", ["c"], ["p"], kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]),
          N("AveragePool", ["p"], ["q"], kernel_shape=[2,2], strides=[1,1]),
          N("GlobalAveragePool", ["q"], ["g"]), N("Flatten", ["g"], ["f"]),
          N("Gemm", ["f", "fw", "fb"], ["y"], transB=1)],
          [("x", F, [3, 3, 32, 32])], [("y", F)], [("w", r(16, 3, 7, 7)), ("b", r(16)), ("fw", r(10, 16)), ("fb", r(10))])
    # NHWC pooling through 16-byte channel vectors (fp16: c % 8, fp32: c % 4) and the scalar kernel (c = 12 in fp16)
    for c in (24, 12):
        model(f"pools_nhwc_c{c}", [N("Conv", ["x", "w", "b"], ["c"], pads=[1,1,1,1]),
              N("MaxPool", ["c"], ["p"], kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]),
              N("AveragePool", ["p"], ["q"], kernel_shape=[3,3], strides=[1,1], pads=[1,1,1,1], count_include_pad=1),
              N("AveragePool", ["q"], ["y"], kernel_shape=[2,3], strides=[2,1], pads=[0,1,1,0])],
              [("x", F, [2, 8, 13, 11])], [("y", F)], [("w", r(c, 8, 3, 3)), ("b", r(c))])
    # Split: one strided copy per output, from NHWC (channels) and along the last dim, uneven sizes
    model("split_nhwc", [N("Conv", ["x", "w", "b"], ["c"], pads=[1,1,1,1]), N("Split", ["c", "sp"], ["s1", "s2"], axis=1),
          N("Relu", ["s1"], ["y1"]), N("Sigmoid", ["s2"], ["y2"])],
          [("x", F, [2, 3, 7, 5])], [("y1", F), ("y2", F)],
          [("w", r(16, 3, 3, 3)), ("b", r(16)), ("sp", np.array([4, 12], np.int64))])
    model("split_last", [N("Split", ["x", "sp"], ["s1", "s2", "s3"], axis=-1), N("Mul", ["s1", "s3"], ["y1"]),
          N("Neg", ["s2"], ["y2"])], [("x", F, [3, 4, 10])], [("y1", F), ("y2", F)], [("sp", np.array([3, 4, 3], np.int64))])
    # binary ops through 16-byte vectors (fastest dim contiguous everywhere, other dims broadcast) and
    # Gather rows as 16-, 8- and 2/4-byte elements
    model("eltwise_vec", [N("Add", ["x", "c"], ["a"]), N("Mul", ["a", "d"], ["m"]), N("Sub", ["m", "x"], ["s"]),
          N("Div", ["s", "e"], ["q"]), N("Max", ["q", "x"], ["y"])],
          [("x", F, [4, 6, 32]), ("d", F, [4, 1, 32])], [("y", F)],
          [("c", r(6, 32)), ("e", (np.abs(r(1, 6, 32)) + 0.5).astype(np.float32))])
    for inner in (64, 12, 3):
        model(f"gather_rows_{inner}", [N("Gather", ["t", "i"], ["g"], axis=0), N("Relu", ["g"], ["y"])],
              [("t", F, [10, inner])], [("y", F)], [("i", np.array([[3, 0, 9], [-1, 5, 5]], np.int64))])
    model("nhwc_reshape", [N("Conv", ["x", "w", "b"], ["c"]), N("Reshape", ["c", "sh"], ["y"])],
          [("x", F, [2, 4, 5, 5])], [("y", F)], [("w", r(6, 4, 1, 1)), ("b", r(6)), ("sh", np.array([2, -1], np.int64))])
    model("nhwc_out_mul", [N("Conv", ["x", "w", "b"], ["c"]), N("Mul", ["c", "k"], ["y"])],
          [("x", F, [2, 4, 5, 5])], [("y", F)], [("w", r(6, 4, 1, 1)), ("b", r(6)), ("k", r(1, 6, 1, 1))])
    # matmuls
    model("matmul_bias_gelu", [N("MatMul", ["x", "w"], ["m"]), N("Add", ["bb", "m"], ["h"]),
          N("Div", ["h", "s2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]), N("Mul", ["h", "a"], ["p"]),
          N("Mul", ["p", "half"], ["y"])], [("x", F, [2, 7, 32])], [("y", F)],
          [("w", r(32, 48)), ("bb", r(48)), ("s2", np.array(1.4142135381698608, np.float32)),
           ("one", np.array(1.0, np.float32)), ("half", np.array(0.5, np.float32))])
    model("matmul_relu_residual", [N("MatMul", ["x", "w"], ["m"]), N("Add", ["m", "x"], ["s"]), N("Relu", ["s"], ["y"])],
          [("x", F, [5, 32])], [("y", F)], [("w", r(32, 32))])
    # a Gemm with a [M, K] weight (transB) and an activation cuBLASLt cannot fuse: the dense sm_90 GEMM's
    # FORM_PLAIN weight; ragged rows, K and M multiples of 8
    model("gemm_transb_bias_tanh", [N("Gemm", ["x", "w", "b"], ["g"], transB=1), N("Tanh", ["g"], ["y"])],
          [("x", F, [37, 72])], [("y", F)], [("w", r(40, 72)), ("b", r(40))])
    model("gemm_trans", [N("Gemm", ["a", "w", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)],
          [("a", F, [16, 6])], [("y", F)], [("w", r(16, 12)), ("c", r(6, 12))])
    model("attention_core", [N("MatMul", ["q", "k"], ["s"]), N("Div", ["s", "sc"], ["d"]), N("Add", ["d", "m"], ["a"]),
          N("Softmax", ["a"], ["p"], axis=-1), N("MatMul", ["p", "v"], ["y"])],
          [("q", F, [2, 3, 8, 16]), ("k", F, [2, 3, 16, 8]), ("v", F, [2, 3, 8, 16]), ("m", F, [2, 1, 1, 8])], [("y", F)],
          [("sc", np.array(4.0, np.float32))])
    # fused attention (kernels/cuda/attention.cu): BERT's head split / merge around it, ragged sequence
    # lengths (one and several 64-key tiles), head dims 32 / 64 / 128, with and without mask. The weights
    # give q, k of unit variance and the scale is 1/sqrt(d), so the softmax is not one-hot: a one-hot
    # softmax turns fp16 rounding of the scores into O(1) output differences (ill-conditioned, not a bug)
    for name, b, sq, h, d, masked in (("attention_bert_d64", 2, 77, 3, 64, True), ("attention_bert_d32", 3, 130, 2, 32, True),
                                      ("attention_bert_d128", 1, 64, 2, 128, False), ("attention_bert_s1", 2, 1, 4, 64, True)):
        hd = h * d
        nodes = [N("MatMul", ["x", "wq"], ["q"]), N("MatMul", ["x", "wk"], ["k"]), N("MatMul", ["x", "wv"], ["v"]),
                 N("Reshape", ["q", "sh"], ["q4"]), N("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
                 N("Reshape", ["k", "sh"], ["k4"]), N("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
                 N("Reshape", ["v", "sh"], ["v4"]), N("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
                 N("MatMul", ["qt", "kt"], ["s"])]
        nodes += [N("Div", ["s", "sc"], ["sd"])]
        if masked:
            nodes += [N("Add", ["sd", "m"], ["sa"]), N("Softmax", ["sa"], ["p"], axis=-1)]
        else:
            nodes += [N("Softmax", ["sd"], ["p"], axis=-1)]
        nodes += [N("MatMul", ["p", "vt"], ["o"]), N("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
                  N("Reshape", ["ot", "sh2"], ["y"])]
        ins = [("x", F, [b, sq, hd])] + ([("m", F, [b, 1, 1, sq])] if masked else [])
        ws = np.float32(2.0 / np.sqrt(hd))  # r() draws with std 0.5
        inits = [("wq", r(hd, hd) * ws), ("wk", r(hd, hd) * ws), ("wv", r(hd, hd)),
                 ("sh", np.array([b, sq, h, d], np.int64)), ("sh2", np.array([b, sq, hd], np.int64)),
                 ("sc", np.array(np.sqrt(d), np.float32))]
        model(name, nodes, ins, [("y", F)], inits)
    # plain [b, h, s, d] operands, K transposed in the graph, more keys than queries, Mul scale, per-row mask
    model("attention_plain_d64", [N("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), N("MatMul", ["q", "kt"], ["s"]),
          N("Mul", ["s", "sc"], ["sd"]), N("Add", ["sd", "m"], ["sa"]), N("Softmax", ["sa"], ["p"], axis=-1),
          N("MatMul", ["p", "v"], ["y"])],
          [("q", F, [2, 2, 70, 64]), ("k", F, [2, 2, 100, 64]), ("v", F, [2, 2, 100, 64]), ("m", F, [2, 2, 70, 100])],
          [("y", F)], [("sc", np.array(0.125, np.float32))])
    model("softmax_long", [N("Softmax", ["x"], ["y"], axis=-1)], [("x", F, [3, 3000])], [("y", F)])
    # warp-per-row softmax / LayerNorm: every vector width (16, 8, 4, 2 bytes) and 1-4 vectors per lane
    for cols, rows in ((128, 64), (768, 9), (1000, 5), (130, 6), (33, 7), (1024, 3), (1030, 2)):
        model(f"softmax_masked_{cols}", [N("Div", ["x", "sc"], ["d"]), N("Add", ["d", "m"], ["a"]),
              N("Softmax", ["a"], ["y"], axis=-1)], [("x", F, [2, rows, 2, cols]), ("m", F, [2, 1, 1, cols])],
              [("y", F)], [("sc", np.array(8.0, np.float32))])
        model(f"layernorm_res_{cols}", [N("Add", ["x", "r"], ["s"]),
              N("LayerNormalization", ["s", "g", "b"], ["y"], axis=-1, epsilon=1e-5)],
              [("x", F, [rows, 2, cols]), ("r", F, [rows, 2, cols])], [("y", F)], [("g", r(cols)), ("b", r(cols))])
    model("layernorm_res", [N("Add", ["x", "r"], ["s"]), N("LayerNormalization", ["s", "g", "b"], ["y"], axis=-1, epsilon=1e-5)],
          [("x", F, [4, 7, 96]), ("r", F, [4, 7, 96])], [("y", F)], [("g", r(96)), ("b", r(96))])
    model("layernorm_long", [N("LayerNormalization", ["x", "g"], ["y"], axis=-1)], [("x", F, [3, 5000])], [("y", F)], [("g", r(5000))])
    # elementwise, shape ops
    model("eltwise_bcast", [N("Sub", ["x", "c"], ["a"]), N("Pow", ["a", "two"], ["b"]), N("Sqrt", ["b"], ["q"]),
          N("Max", ["q", "x"], ["m"]), N("Sigmoid", ["m"], ["t"]), N("Tanh", ["t"], ["u"]), N("Clip", ["u", "lo", "hi"], ["y"])],
          [("x", F, [2, 3, 4, 5]), ("c", F, [3, 1, 5])], [("y", F)],
          [("two", np.array(2.0, np.float32)), ("lo", np.array(-0.2, np.float32)), ("hi", np.array(0.4, np.float32))])
    model("transpose_slice_concat", [N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
          N("Slice", ["t", "st", "en", "ax", "sp"], ["s"]), N("Concat", ["s", "z"], ["y"], axis=1)],
          [("x", F, [2, 3, 10, 6]), ("z", F, [2, 2, 3, 3])], [("y", F)],
          [("st", np.array([1, 0], np.int64)), ("en", np.array([8, 100], np.int64)), ("ax", np.array([1, 2], np.int64)),
           ("sp", np.array([3, 2], np.int64))])
    model("gather_cast_where", [N("Gather", ["tab", "ids"], ["e"], axis=0), N("Cast", ["ids"], ["f"], to=F),
          N("Unsqueeze", ["f", "ax"], ["fu"]), N("Mul", ["e", "fu"], ["m"]), N("Identity", ["m"], ["mi"]),
          N("Expand", ["row", "shp"], ["ex"]), N("Add", ["mi", "ex"], ["a"]), N("ReduceMean", ["a"], ["y"], axes=[-1], keepdims=1)],
          [("ids", TensorProto.INT64, [3, 5])], [("y", F)],
          [("tab", r(16, 24)), ("ax", np.array([2], np.int64)), ("row", r(1, 24)), ("shp", np.array([3, 5, 24], np.int64)),
           ("rax", np.array([-1], np.int64)), ("zero", np.array(0.0, np.float32))], shapes="")
    model("where_op", [N("Where", ["c", "x", "z"], ["y"])], [("c", TensorProto.BOOL, [4, 1]), ("x", F, [4, 6]), ("z", F, [6])], [("y", F)])
    return cases


def build(script, out, tiny):
    """Runs models/SCRIPT (-o OUT [--tiny]) quietly; its errors go to stderr."""
    subprocess.run([sys.executable, os.path.join(MODELS, script), "-o", out] + (["--tiny"] if tiny else []),
                   check=True, stdout=subprocess.DEVNULL)


def main():
    args = [a for a in sys.argv[1:] if a != "--full"]
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit(__doc__)
    w, full = args[0], "--full" in sys.argv[1:]
    os.makedirs(w, exist_ok=True)
    for stale in ("ops.txt", "cases.txt"):  # a failed run must not leave an old list behind
        if os.path.exists(os.path.join(w, stale)):
            os.remove(os.path.join(w, stale))
    ops = op_cases(w)
    with open(os.path.join(w, "ops.txt"), "w") as f:
        f.write("\n".join(ops) + "\n")
    print(len(ops), "op cases")
    build("resnet50.py", os.path.join(w, "r50-tiny.onnx"), tiny=True)
    build("transformer.py", os.path.join(w, "bert-tiny.onnx"), tiny=True)
    lines = ops + [os.path.join(w, "r50-tiny.onnx") + " input=2x3x32x32",
                   os.path.join(w, "bert-tiny.onnx") + " input_ids=2x32 attention_mask=2x32"]
    if full:
        build("resnet50.py", os.path.join(w, "r50.onnx"), tiny=False)
        build("transformer.py", os.path.join(w, "bert.onnx"), tiny=False)
        lines += [os.path.join(w, "r50.onnx") + " input=1x3x224x224",
                  os.path.join(w, "bert.onnx") + " input_ids=1x128 attention_mask=1x128"]
    with open(os.path.join(w, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(len(lines), "cases in", os.path.join(w, "cases.txt"))


if __name__ == "__main__":
    main()
