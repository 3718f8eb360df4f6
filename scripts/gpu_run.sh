#!/usr/bin/env bash
# scripts/gpu_run.sh - the device side of scripts/gpu_pack.sh, in one call:
# unpack build-pack/b.tar.xz, run the GPU tests and the ONNX node tests on the
# GPU (tests/gpu/run.sh, quick mode: per-op cases and tiny models), the sparse
# vs dense model benchmark (bench/sparse/run.sh) and, when the pack has it
# (spmm/ in the archive), the SpMM benchmark (bench/spmm/run.sh). Each part writes under $OUT;
# STEPS selects parts (default "tests sparse spmm"; "pdl" adds
# bench/sparse/pdl_ab.sh after "sparse", programmatic dependent launch on/off;
# "profile" adds bench/sparse/profile.sh: per-op GPU time at batch 32 and 1,
# fused attention on/off).
#
# SPARSE_TIMEOUT (seconds, default 540) caps the model benchmark so that a
# call within the device's 10-minute limit still returns its table.
#
#   bash scripts/gpu_run.sh            (about 8-9 minutes for all three on an H100)
set -u
R=$(pwd)
O=${OUT:-/tmp/sprun-out}
mkdir -p "$O" /tmp/b
tar -C /tmp/b -xJf build-pack/b.tar.xz
export LD_LIBRARY_PATH=/tmp/b/lib:${LD_LIBRARY_PATH:-}
C=$(cat /tmp/b/COMMIT 2>/dev/null || echo unknown)
STEPS=${STEPS:-tests sparse spmm}
T0=$(date +%s)
for step in $STEPS; do
  case $step in
  tests)
    SPRUN_GPU_QUICK=1 NODE_DIR=/tmp/b/node bash tests/gpu/run.sh /tmp/b "$O/tests" > "$O/tests.log" 2>&1
    grep -hE "passed|exit|^FAIL" "$O/tests/report.md" "$O"/tests/*.log | sort -u | head -40
    (cd "$O" && tar czf tests.tgz tests && rm -rf tests) ;;
  sparse)
    # its ~50 files stay outside $OUT (the device tool returns at most 8), and a
    # run cut short by SPARSE_TIMEOUT still returns the rows it wrote
    rm -rf /tmp/sprun-sparse-out
    SPRUN_COMMIT=$C RUNS=${RUNS:-20} timeout "${SPARSE_TIMEOUT:-540}" bash bench/sparse/run.sh /tmp/b /tmp/sprun-sparse-out \
      > "$O/sparse.log" 2>&1 || echo "sparse: stopped early (rc $?)"
    tail -n 30 /tmp/sprun-sparse-out/sparse-models.md
    cp /tmp/sprun-sparse-out/sparse-models.md "$O/"
    (cd /tmp && tar czf "$O/sparse.tgz" sprun-sparse-out) ;;
  pdl)
    SPRUN_COMMIT=$C RUNS=${RUNS:-20} bash bench/sparse/pdl_ab.sh /tmp/b "$O/pdl" > "$O/pdl.log" 2>&1
    tail -n 12 "$O/pdl/pdl-ab.md"
    (cd "$O" && cp pdl/pdl-ab.md . && tar czf pdl.tgz pdl && rm -rf pdl) ;;
  profile)
    for b in 32 1; do
      bash bench/sparse/profile.sh /tmp/b "$O/profile-b$b" $b > "$O/profile-b$b.log" 2>&1
      tail -n 8 "$O/profile-b$b/profile.md"
    done
    (cd "$O" && tar czf profile.tgz profile-b32 profile-b1 && rm -rf profile-b32 profile-b1) ;;
  spmm)
    if [ -x /tmp/b/spmm/spmm_bench ]; then
      SPMM_BUILD=/tmp/b/spmm SPMM_COMMIT=$C OUT=$O/spmm bash bench/spmm/run.sh > "$O/spmm.log" 2>&1
      tail -n 5 "$O/spmm.log"
      (cd "$O" && tar czf spmm.tgz spmm && rm -rf spmm)
    fi ;;
  esac
  echo "== $step done at $(( $(date +%s) - T0 )) s"
done
