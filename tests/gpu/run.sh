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
full=--full; [ "${SPRUN_GPU_QUICK:-0}" = 1 ] && full=
python3 "$R/tests/gpu/make_cases.py" "$W" $full || echo "make_cases.py exit $? (no cases.txt: test_cuda_backend skips)" >> "$report"

if [ "${SPRUN_GPU_BENCH_ONLY:-0}" != 1 ]; then
echo "== tests"
timeout 300 "$B/tests/test_cuda_backend" "$W/cases.txt" 2>&1 | tee "$O/test_cuda_backend.log"
echo "test_cuda_backend exit ${PIPESTATUS[0]}" >> "$O/test_cuda_backend.log"
{ echo; echo "## test_cuda_backend"; echo '```'; grep -E "FAIL|passed" "$O/test_cuda_backend.log"; tail -1 "$O/test_cuda_backend.log"; echo '```'; } >> "$report"
# again with every MatMul / Gemm whose activation cuBLASLt cannot fuse forced through the dense sm_90 GEMM
# (tuning keeps it only where it is faster, so the run above may not have run it at all)
SPRUN_CUDA_GEMM90=force timeout 300 "$B/tests/test_cuda_backend" "$W/cases.txt" > "$O/test_cuda_backend_gemm90.log" 2>&1
echo "test_cuda_backend (SPRUN_CUDA_GEMM90=force) exit $?" >> "$O/test_cuda_backend_gemm90.log"
{ echo; echo "## test_cuda_backend, SPRUN_CUDA_GEMM90=force"; echo '```'; grep -E "FAIL|passed" "$O/test_cuda_backend_gemm90.log"; tail -1 "$O/test_cuda_backend_gemm90.log"; echo '```'; } >> "$report"
for t in "$B"/tests/test_spmm* "$B"/tests/test_sddmm* "$B"/tests/test_conv_implicit "$B"/tests/test_device_io "$B"/tests/test_cuda_tune; do
  [ -x "$t" ] || continue
  lim=240; [ "$(basename "$t")" = test_spmm_cuda ] && lim=420  # its full run: ~250 s on an H200
  timeout $lim "$t" > "$O/$(basename "$t").log" 2>&1; rc=$?  # before $(basename) resets $?
  echo "$(basename "$t") exit $rc" >> "$report"
done
# ONNX node conformance on the GPU (carry tests/node_tests in the build folder;
# /usr/share/libonnx-testdata is not on the device: copy its data/node (27 MB) into a
# carried folder and point NODE_DIR at it)
if [ -x "$B/tests/node_tests" ] && [ -d "${NODE_DIR:-/usr/share/libonnx-testdata/data/node}" ]; then
  for prec in fp32 fp16; do
    tol=""; xf="$R/tests/conformance/expected_failures_gpu.txt"
    [ $prec = fp16 ] && { tol="--rtol 1e-2 --atol 1e-3"; xf="$R/tests/conformance/expected_failures_gpu_fp16.txt"; }
    timeout 300 "$B/tests/node_tests" --dir "${NODE_DIR:-/usr/share/libonnx-testdata/data/node}" --backend cuda \
      --precision $prec $tol --xfail "$xf" > "$O/node_tests_$prec.log" 2>&1
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
