#!/usr/bin/env bash
# tests/gpu/run.sh - everything GPU in one device call: the CUDA backend tests
# (per-op graphs and whole models, GPU vs CPU backend), the spmm tests of
# tests/gpu, and the dense benchmark against PyTorch. Writes a short report.
#
#   tests/gpu/run.sh BUILD_DIR [OUT_DIR]        (OUT_DIR defaults to $OUT or /tmp/sprun-gpu)
#
# BUILD_DIR is a build made on the CPU machine (cmake -DSPRUN_BUILD_TESTS=ON)
# carried to the device; shared libraries the device lacks (cmocka, OpenBLAS,
# gfortran) are copied into BUILD_DIR/lib beforehand, see bench/models/README.md.
# SPRUN_GPU_QUICK=1 skips the full-size models and the benchmark.
set -u
B=$(cd "${1:?build dir}" && pwd)
O=${2:-${OUT:-/tmp/sprun-gpu}}
mkdir -p "$O"
W=/tmp/sprun-gpu-work
mkdir -p "$W"
R="$(cd "$(dirname "$0")/../.." && pwd)"
export PYTHONUNBUFFERED=1
# cuDNN / cuBLAS from the system or from PyTorch's wheels
PYLIBS=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
d = []
for sp in site.getsitepackages():
    d += glob.glob(os.path.join(sp, "nvidia", "*", "lib"))
print(":".join(d))
EOF
)
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64:${PYLIBS}:${LD_LIBRARY_PATH:-}"
report="$O/report.md"
{ echo "# GPU run $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } > "$report"
ldd "$B/bin/sprun" | grep "not found" >> "$report"

echo "== cases"
python3 - "$W" <<'EOF'
import sys, os
import numpy as np
from onnx import helper, TensorProto, numpy_helper, save
w = sys.argv[1]; cases = []
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
model("gemm_trans", [N("Gemm", ["a", "w", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)],
      [("a", F, [16, 6])], [("y", F)], [("w", r(16, 12)), ("c", r(6, 12))])
model("attention_core", [N("MatMul", ["q", "k"], ["s"]), N("Div", ["s", "sc"], ["d"]), N("Add", ["d", "m"], ["a"]),
      N("Softmax", ["a"], ["p"], axis=-1), N("MatMul", ["p", "v"], ["y"])],
      [("q", F, [2, 3, 8, 16]), ("k", F, [2, 3, 16, 8]), ("v", F, [2, 3, 8, 16]), ("m", F, [2, 1, 1, 8])], [("y", F)],
      [("sc", np.array(4.0, np.float32))])
model("softmax_long", [N("Softmax", ["x"], ["y"], axis=-1)], [("x", F, [3, 3000])], [("y", F)])
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
      N("Unsqueeze", ["f", "ax"], ["fu"]), N("Mul", ["e", "fu"], ["m"]), N("Greater", ["m", "zero"], ["c"]) if False else N("Identity", ["m"], ["mi"]),
      N("Expand", ["row", "shp"], ["ex"]), N("Add", ["mi", "ex"], ["a"]), N("ReduceMean", ["a"], ["y"], axes=[-1], keepdims=1)],
      [("ids", TensorProto.INT64, [3, 5])], [("y", F)],
      [("tab", r(16, 24)), ("ax", np.array([2], np.int64)), ("row", r(1, 24)), ("shp", np.array([3, 5, 24], np.int64)),
       ("rax", np.array([-1], np.int64)), ("zero", np.array(0.0, np.float32))], shapes="")
model("where_op", [N("Where", ["c", "x", "z"], ["y"])], [("c", TensorProto.BOOL, [4, 1]), ("x", F, [4, 6]), ("z", F, [6])], [("y", F)])
open(os.path.join(w, "ops.txt"), "w").write("\n".join(cases) + "\n")
print(len(cases), "op cases")
EOF
python3 "$R/models/resnet50.py" --tiny -o "$W/r50-tiny.onnx" > /dev/null
python3 "$R/models/transformer.py" --tiny -o "$W/bert-tiny.onnx" > /dev/null
{ cat "$W/ops.txt"
  echo "$W/r50-tiny.onnx input=2x3x32x32"
  echo "$W/bert-tiny.onnx input_ids=2x32 attention_mask=2x32"; } > "$W/cases.txt"
if [ "${SPRUN_GPU_QUICK:-0}" != 1 ]; then
  python3 "$R/models/resnet50.py" -o "$W/r50.onnx" > /dev/null
  python3 "$R/models/transformer.py" -o "$W/bert.onnx" > /dev/null
  { echo "$W/r50.onnx input=1x3x224x224"; echo "$W/bert.onnx input_ids=1x128 attention_mask=1x128"; } >> "$W/cases.txt"
fi

if [ "${SPRUN_GPU_BENCH_ONLY:-0}" != 1 ]; then
echo "== tests"
timeout 300 "$B/tests/test_cuda_backend" "$W/cases.txt" 2>&1 | tee "$O/test_cuda_backend.log"
echo "test_cuda_backend exit ${PIPESTATUS[0]}" >> "$O/test_cuda_backend.log"
{ echo; echo "## test_cuda_backend"; echo '```'; grep -E "FAIL|passed" "$O/test_cuda_backend.log"; tail -1 "$O/test_cuda_backend.log"; echo '```'; } >> "$report"
for t in "$B"/tests/test_spmm*; do
  [ -x "$t" ] || continue
  timeout 120 "$t" > "$O/$(basename "$t").log" 2>&1; echo "$(basename "$t") exit $?" >> "$report"
done
# ONNX node conformance on the GPU (carry tests/node_tests in the build folder;
# /usr/share/libonnx-testdata is not on the device: copy its data/node (27 MB) into a
# carried folder and point NODE_DIR at it)
if [ -x "$B/tests/node_tests" ] && [ -d "${NODE_DIR:-/usr/share/libonnx-testdata/data/node}" ]; then
  for prec in fp32 fp16; do
    tol=""; [ $prec = fp16 ] && tol="--rtol 1e-2 --atol 1e-3"
    timeout 300 "$B/tests/node_tests" --dir "${NODE_DIR:-/usr/share/libonnx-testdata/data/node}" --backend cuda \
      --precision $prec $tol --xfail "$R/tests/conformance/expected_failures_gpu.txt" > "$O/node_tests_$prec.log" 2>&1
    { echo; echo "## ONNX node tests, CUDA $prec"; echo '```'; grep -E "^FAIL|passed" "$O/node_tests_$prec.log" | tail -40; echo '```'; } >> "$report"
  done
fi
fi

[ "${SPRUN_GPU_QUICK:-0}" = 1 ] && exit 0
echo "== bench"
python3 "$R/models/make_input.py" "$W/r50.onnx" -o "$W/r50_b1.bin" --shape batch=1 > /dev/null
python3 "$R/models/make_input.py" "$W/r50.onnx" -o "$W/r50_b32.bin" --shape batch=32 > /dev/null
python3 "$R/models/make_input.py" "$W/r50.onnx" -o "$W/r50_b128.bin" --shape batch=128 > /dev/null
python3 "$R/models/make_input.py" "$W/bert.onnx" -o "$W/bert1/" --shape batch=1 --shape seq=128 > /dev/null
python3 "$R/models/make_input.py" "$W/bert.onnx" -o "$W/bert32/" --shape batch=32 --shape seq=128 > /dev/null
bl="$O/bench.log"; : > "$bl"
sp() { echo "### $1" >> "$bl"; shift; SPRUN_CUDA_DEBUG=1 SPRUN_CUDA_TIMING=1 timeout 120 "$B/bin/sprun" "$@" --backend cuda -q >> "$bl" 2>&1; }
sp "resnet50 b1" "$W/r50.onnx" input="$W/r50_b1.bin" --shape input=1x3x224x224 --runs 300 --warmup 30
sp "resnet50 b32" "$W/r50.onnx" input="$W/r50_b32.bin" --shape input=32x3x224x224 --runs 100 --warmup 10
sp "resnet50 b128" "$W/r50.onnx" input="$W/r50_b128.bin" --shape input=128x3x224x224 --runs 30 --warmup 5
sp "bert-base b1s128" "$W/bert.onnx" input_ids="$W/bert1/input_ids.bin" attention_mask="$W/bert1/attention_mask.bin" --shape input_ids=1x128 --shape attention_mask=1x128 --runs 300 --warmup 30
sp "bert-base b32s128" "$W/bert.onnx" input_ids="$W/bert32/input_ids.bin" attention_mask="$W/bert32/attention_mask.bin" --shape input_ids=32x128 --shape attention_mask=32x128 --runs 100 --warmup 10
SPRUN_CUDA_DEBUG=1 "$B/bin/sprun" "$W/r50.onnx" input="$W/r50_b1.bin" --shape input=1x3x224x224 --backend cuda --runs 20 --profile > "$O/profile_r50_b1.txt" 2>&1
SPRUN_CUDA_DEBUG=1 "$B/bin/sprun" "$W/bert.onnx" input_ids="$W/bert1/input_ids.bin" attention_mask="$W/bert1/attention_mask.bin" --shape input_ids=1x128 --shape attention_mask=1x128 --backend cuda --runs 20 --profile > "$O/profile_bert_b1.txt" 2>&1
SPRUN_CUDA_DEBUG=1 "$B/bin/sprun" "$W/r50.onnx" input="$W/r50_b32.bin" --shape input=32x3x224x224 --backend cuda --runs 10 --profile > "$O/profile_r50_b32.txt" 2>&1
SPRUN_CUDA_CONV=cudnn sp "resnet50 b1, every conv through cuDNN" "$W/r50.onnx" input="$W/r50_b1.bin" --shape input=1x3x224x224 --runs 100 --warmup 10
SPRUN_CUDA_TUNE=0 sp "resnet50 b32, untuned" "$W/r50.onnx" input="$W/r50_b32.bin" --shape input=32x3x224x224 --runs 50 --warmup 5
cat "$bl"
{ echo; echo "## sprun (wall clock around sprun_session_run, H2D+D2H included)"; echo '```'; grep -E "###|latency|error|sprun:|sprun cuda: graph" "$bl"; echo '```'; } >> "$report"
[ "${SPRUN_GPU_BENCH_ONLY:-0}" = 1 ] && { cat "$report"; exit 0; }
timeout 240 python3 "$R/bench/models/torch_peer.py" --runs 100 --json "$O/torch_peer.json" > "$O/torch_peer.log" 2>&1
{ echo; echo "## PyTorch"; echo '```'; cat "$O/torch_peer.log" | tail -8; echo '```'; } >> "$report"
cat "$report"
