#!/bin/bash
# Runs on the device machine from the repository root, binaries prebuilt here
# by tests/gpu/build.sh and bench/spmm/build.sh into .devbuild (carried):
#   bench/spmm/run.sh [bench args...]
# Writes test.log, bench.log, spmm.md, sass.txt under $OUT (or /tmp/spmm-out).
set -o pipefail
OUT=${OUT:-/tmp/spmm-out}
mkdir -p "$OUT"
B=${SPMM_BUILD:-.devbuild}
# cuSPARSELt from the device's python wheel (not carried: ~230 MB)
CSL=$(python3 -c "import nvidia.cusparselt as m; print(list(m.__path__)[0])" 2>/dev/null)/lib
[ -f "$CSL/libcusparseLt.so.0" ] || CSL=$(dirname "$(find / -name libcusparseLt.so.0 2>/dev/null | head -1)")
export LD_LIBRARY_PATH=$CSL:$LD_LIBRARY_PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$B/spmm_bench" > /tmp/sass.full 2>&1
  { echo "tensor-core instructions:"; grep -oE "HG?MMA[.A-Z0-9]*" /tmp/sass.full | sort | uniq -c
    echo "local memory instructions: $(grep -cE '\b(LDL|STL)\b' /tmp/sass.full)"; } > "$OUT/sass.txt"
  cat "$OUT/sass.txt"
fi
timeout ${TEST_TIMEOUT:-150} "$B/test_spmm_cuda" 2>&1 | tee "$OUT/test.log" | grep -v "^PASS"
echo "test exit: $?"
if [ -n "$PROFILE" ] && command -v ncu >/dev/null; then
  timeout 150 ncu --kernel-name regex:kernel_entry --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
      --section LaunchStats "$B/spmm_bench" --profile > "$OUT/ncu.txt" 2>&1
  echo "ncu exit: $?"
fi
timeout ${BENCH_TIMEOUT:-400} "$B/spmm_bench" --md "$OUT/spmm.md" \
    --date "$(date -u +%Y-%m-%d)" --commit "${SPMM_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)}" \
    "$@" > "$OUT/bench.log" 2>&1
echo "bench exit: $?"
tail -n 40 "$OUT/bench.log"
