#!/usr/bin/env bash
# bench/sparse/pdl_ab.sh - what programmatic dependent launch buys a whole
# model: `sprun --compare` of ResNet-50 and BERT-base pruned 2:4 (--format
# auto), batch 1 and 32, once with PDL (the default) and once with
# SPRUN_CUDA_PDL=0, alternating. Uses the models and inputs
# bench/sparse/run.sh built under /tmp/sprun-sparse-bench (exits 2 if absent).
#
#   bench/sparse/pdl_ab.sh BUILD_DIR OUT_DIR
set -u
B=$(cd "${1:?build dir}" && pwd)
O=${2:?out dir}
R="$(cd "$(dirname "$0")/../.." && pwd)"
W=/tmp/sprun-sparse-bench
mkdir -p "$O"
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
RUNS=${RUNS:-30}
for f in resnet50-24.onnx bert-24.onnx r50-in-1.bin r50-in-32.bin bert-in-1 bert-in-32; do
  [ -e "$W/$f" ] || { echo "pdl_ab: $W/$f missing: run bench/sparse/run.sh first" >&2; exit 2; }
done
md="$O/pdl-ab.md"
{
  echo "# Programmatic dependent launch on and off: sprun --compare, 2:4 models"
  echo
  echo "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(date -u +%F), commit ${SPRUN_COMMIT:-unknown}; device-I/O median of $RUNS runs (us), --format auto; 'off' = SPRUN_CUDA_PDL=0. Two rounds, alternating."
  echo
  echo "| model | batch | round | dense on | dense off | sparse on | sparse off | sparse/dense on | sparse/dense off |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$md"
one() { # pdl(1/0) model batch args... -> prints "dense sparse" device-I/O medians
  local p=$1 m=$2 b=$3; shift 3
  local j="$O/$m-b$b-pdl$p.json"
  SPRUN_CUDA_PDL=$p "$B/bin/sprun" --compare "$W/$m.onnx" "$@" --format auto --runs "$RUNS" --json "$j" \
    > "$O/$m-b$b-pdl$p.txt" 2>&1 || { echo "- -"; return; }
  python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['device_io']; print(d['dense_median_us'], d['sparse_median_us'])" "$j"
}
for b in 1 32; do
  for m in resnet50-24 bert-24; do
    if [ "$m" = resnet50-24 ]; then set -- "input=$W/r50-in-$b.bin"; else
      set -- "input_ids=$W/bert-in-$b/input_ids.bin" "attention_mask=$W/bert-in-$b/attention_mask.bin" \
        --shape input_ids=${b}x128 --shape attention_mask=${b}x128; fi
    for r in 1 2; do
      read -r d1 s1 <<< "$(one 1 $m $b "$@")"
      read -r d0 s0 <<< "$(one 0 $m $b "$@")"
      python3 -c "
import sys
d1,s1,d0,s0=(float(x) if x!='-' else float('nan') for x in sys.argv[4:8])
print(f'| {sys.argv[1]} | {sys.argv[2]} | {sys.argv[3]} | {d1:.1f} | {d0:.1f} | {s1:.1f} | {s0:.1f} | {d1/s1:.3f}x | {d0/s0:.3f}x |')" \
        "${m%%-*}" "$b" "$r" "$d1" "$s1" "$d0" "$s0" >> "$md"
    done
  done
done
cat "$md"
