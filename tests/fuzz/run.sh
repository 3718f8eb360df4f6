#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS - build the libFuzzer targets and run each for
# SECONDS (default 60), seeded with real models.
#
#   build:   build-fuzz/ (clang, SPRUN_FUZZ=ON, ASan + UBSan, CPU only)
#   seeds:   the ONNX node test models (every third one: a few hundred) and
#            their .pb tensors, a micro BERT and a small residual CNN built
#            with python3 onnx when it is importable, a few .npy files, and
#            every file of tests/fuzz/regressions/
#   corpus:  build-fuzz/corpus/<target>/ (kept between runs: it only grows)
#   crashes: build-fuzz/crashes/<target>-crash-*, -leak-*, -timeout-*, -oom-*
#
# The two targets run side by side (one process each: CI has 2 cores).
# Exits 1 when either target found a crash, leak, timeout or sanitizer
# report; prints what it found, and how to minimise it and add it to
# tests/fuzz/regressions/ (every file there is replayed by the unit test
# test_fuzz_regressions in the normal build).
#
# Environment: SPRUN_FUZZ_BUILD (build dir), SPRUN_FUZZ_JOBS (build jobs),
# SPRUN_NODE_TEST_DIR, CC (default clang).
set -euo pipefail

SECS=${1:-60}
case $SECS in '' | *[!0-9]*) echo "usage: tests/fuzz/run.sh SECONDS" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SPRUN_FUZZ_BUILD:-$ROOT/build-fuzz}
NODE=${SPRUN_NODE_TEST_DIR:-/usr/share/libonnx-testdata/data/node}
CC=${CC:-clang}
JOBS=${SPRUN_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
PY=${PYTHON:-python3}
TARGETS=(fuzz_load fuzz_inputs)

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found (bash scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2
    exit 2
fi

echo "fuzz: building in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPRUN_FUZZ=ON \
    -DSPRUN_WITH_CUDA=OFF -DSPRUN_BUILD_TESTS=OFF -DSPRUN_SANITIZE=OFF >"$BUILD.configure.log" 2>&1 ||
    { cat "$BUILD.configure.log" >&2; exit 2; }
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" >"$BUILD.build.log" 2>&1 ||
    { tail -50 "$BUILD.build.log" >&2; exit 2; }

# --- seeds (rebuilt every run; cheap) ---------------------------------------
SEEDS=$BUILD/seeds
rm -rf "$SEEDS"
mkdir -p "$SEEDS/fuzz_load" "$SEEDS/fuzz_inputs" "$BUILD/crashes"
i=0
for dir in "$NODE"/test_*/; do
    i=$((i + 1))
    [ $((i % 3)) -eq 0 ] || continue
    name=$(basename "$dir")
    [ -f "$dir/model.onnx" ] && cp "$dir/model.onnx" "$SEEDS/fuzz_load/$name.onnx"
    for pb in "$dir"/test_data_set_0/input_0.pb "$dir"/test_data_set_0/output_0.pb; do
        [ -f "$pb" ] && cp "$pb" "$SEEDS/fuzz_inputs/$name.$(basename "$pb")"
    done
done
# .npy seeds: version 1 and 2 headers, several dtypes and ranks.
npy() { # npy FILE VERSION DICT DATA-BYTES
    local hdr=$3 pre=10
    [ "$2" -eq 2 ] && pre=12
    local pad=$(( (64 - (pre + ${#hdr} + 1) % 64) % 64 ))
    hdr="$hdr$(printf '%*s' "$pad" '')"
    local hl=$(( ${#hdr} + 1 ))
    {
        if [ "$2" -eq 2 ]; then printf '\x93NUMPY\x02\x00'; else printf '\x93NUMPY\x01\x00'; fi
        printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))"
        [ "$2" -eq 2 ] && printf '\x00\x00'
        printf '%s\n' "$hdr"
        head -c "$4" /dev/zero
    } >"$1"
}
npy "$SEEDS/fuzz_inputs/f4.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" 24
npy "$SEEDS/fuzz_inputs/i8.npy" 1 "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }" 32
npy "$SEEDS/fuzz_inputs/b1.npy" 1 "{'descr': '|b1', 'fortran_order': False, 'shape': (), }" 1
npy "$SEEDS/fuzz_inputs/f2v2.npy" 2 "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 2), }" 8
npy "$SEEDS/fuzz_inputs/empty.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }" 0
if "$PY" -c 'import onnx, numpy' >/dev/null 2>&1; then
    "$PY" "$ROOT/models/transformer.py" -o "$SEEDS/fuzz_load/micro_bert.onnx" --layers 1 --hidden 8 --heads 2 \
        --ffn 16 --vocab 16 --max-pos 16 >/dev/null 2>&1 || echo "fuzz: (micro BERT seed not built)"
    "$PY" - "$SEEDS/fuzz_load/micro_cnn.onnx" <<'EOF' || echo "fuzz: (micro CNN seed not built)"
# A ResNet-style block at toy size: Conv-BN-Relu, MaxPool, Conv-BN + residual
# Add, Relu, GlobalAveragePool, Flatten, Gemm (BN folding and fusion paths).
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
r = np.random.default_rng(0)
def w(name, *shape):
    return nh.from_array(r.standard_normal(shape).astype(np.float32), name)
def bn(p, c):
    return [w(p + "s", c), w(p + "b", c), w(p + "m", c), nh.from_array(np.ones(c, np.float32), p + "v")]
inits = [w("W1", 4, 3, 3, 3), w("W2", 4, 4, 3, 3), w("Wfc", 5, 4), w("bfc", 5)] + bn("bn1", 4) + bn("bn2", 4)
nodes = [
    h.make_node("Conv", ["x", "W1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
    h.make_node("BatchNormalization", ["c1", "bn1s", "bn1b", "bn1m", "bn1v"], ["b1"], name="bn1"),
    h.make_node("Relu", ["b1"], ["r1"], name="relu1"),
    h.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    h.make_node("Conv", ["p1", "W2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
    h.make_node("BatchNormalization", ["c2", "bn2s", "bn2b", "bn2m", "bn2v"], ["b2"], name="bn2"),
    h.make_node("Add", ["b2", "p1"], ["a"], name="add"),
    h.make_node("Relu", ["a"], ["r2"], name="relu2"),
    h.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
    h.make_node("Flatten", ["g"], ["f"], name="flatten"),
    h.make_node("Gemm", ["f", "Wfc", "bfc"], ["y"], name="fc", transB=1),
]
g = h.make_graph(nodes, "micro_cnn", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 3, 8, 8])],
                 [h.make_tensor_value_info("y", T.FLOAT, ["batch", 5])], inits)
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), sys.argv[1])
EOF
fi
SEED_DIRS=("$SEEDS")
[ -d "$ROOT/tests/fuzz/regressions" ] && SEED_DIRS+=("$ROOT/tests/fuzz/regressions")
echo "fuzz: seeds: $(ls "$SEEDS/fuzz_load" | wc -l) models, $(ls "$SEEDS/fuzz_inputs" | wc -l) tensors"

# --- run -----------------------------------------------------------------------
# Huge allocations return NULL (the library must cope) instead of aborting;
# above 1 GiB a single allocation fails, so a model asking for terabytes is
# an error status, not an OOM report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:allocator_may_return_null=1:max_allocation_size_mb=1024"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1"
touch "$BUILD/fuzz-start.stamp"
pids=()
for t in "${TARGETS[@]}"; do
    corpus=$BUILD/corpus/$t
    mkdir -p "$corpus"
    seeds=("$SEEDS/$t")
    [ "$t" = fuzz_load ] || seeds+=("$SEEDS/fuzz_load") # models are TensorProto-ish bytes too
    [ -d "$ROOT/tests/fuzz/regressions" ] && seeds+=("$ROOT/tests/fuzz/regressions")
    dict=()
    [ -f "$ROOT/tests/fuzz/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$t.dict")
    echo "fuzz: $t for ${SECS}s"
    # Fork mode keeps fuzzing after a crash (one child at a time), so one run
    # reports every distinct crash it finds, not just the first.
    "$BUILD/fuzz/$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t-" "${dict[@]}" "$corpus" "${seeds[@]}" \
        >"$BUILD/$t.log" 2>&1 &
    pids+=($!)
done
status=0
for k in "${!TARGETS[@]}"; do
    t=${TARGETS[$k]}
    rc=0
    wait "${pids[$k]}" || rc=$?
    found=$(find "$BUILD/crashes" -maxdepth 1 -name "$t-*" -newer "$BUILD/fuzz-start.stamp" | sort)
    execs=$(grep -Eo '^#[0-9]+' "$BUILD/$t.log" | tail -1 | tr -d '#' || true)
    cov=$(grep -Eo 'cov: [0-9]+' "$BUILD/$t.log" | tail -1 || true)
    if [ $rc -eq 0 ] && [ -z "$found" ]; then
        echo "fuzz: $t: nothing found (${execs:-?} executions, ${cov:-cov ?}, corpus $(ls "$BUILD/corpus/$t" | wc -l) files)"
        continue
    fi
    status=1
    echo "fuzz: $t FOUND PROBLEMS (exit $rc; log $BUILD/$t.log):"
    # Fork mode keeps the children's reports out of the log: replay each input.
    for f in $found; do
        what=$({ timeout 60 "$BUILD/fuzz/$t" "$f" 2>&1 || true; } |
            grep -m1 -E 'runtime error:|==ERROR:|^fuzz_(load|inputs): |ERROR: libFuzzer' || true)
        echo "    $f ($(wc -c <"$f") bytes): ${what:-no report on replay}"
    done
done
if [ $status -ne 0 ]; then
    cat <<EOF
fuzz: to reproduce:  $BUILD/fuzz/TARGET FILE
      to minimise:   $BUILD/fuzz/TARGET -minimize_crash=1 -runs=20000 -exact_artifact_path=min.bin FILE
      then add min.bin to tests/fuzz/regressions/ (replayed by test_fuzz_regressions in the normal build).
EOF
fi
exit $status
