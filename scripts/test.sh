#!/usr/bin/env bash
# Builds sprun and runs every test that this machine can run:
#   1. release build (CUDA sources compiled when nvcc exists): unit tests,
#      ONNX node conformance, CLI bad-input tests, end-to-end models (tiny and
#      full-size ResNet-50 / BERT-base) against onnxruntime; GPU tests report
#      themselves skipped when there is no GPU;
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build (CPU only): unit,
#      conformance and CLI tests;
#   3. a bounded libFuzzer run over model and input parsing.
# Environment: JOBS (default: cores), FUZZ_SECONDS (default 60, 0 = skip).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

bash scripts/setup.sh

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 2400

echo "== sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPRUN_SANITIZE=ON -DSPRUN_WITH_CUDA=OFF >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" -LE "e2e|gpu"

if [ "$FUZZ_SECONDS" -gt 0 ] && [ -f tests/fuzz/run.sh ]; then
  echo "== fuzzing (${FUZZ_SECONDS}s per target)"
  bash tests/fuzz/run.sh "$FUZZ_SECONDS"
fi
echo "== all tests passed"
