#!/usr/bin/env bash
# bench/sparse/profile.sh - where a whole model's time goes on the GPU: per-node
# times (sprun --profile: one CUDA-graph replay with an event pair around every
# node) of BERT-base and ResNet-50 at one batch, dense and sparse plans,
# summed by op type and fused kind; then BERT 2:4 through --compare with the
# fused attention on and off (SPRUN_CUDA_ATTN), twice, alternating. Builds the
# models like run.sh (reuses /tmp/sprun-sparse-bench when run.sh ran first).
#
#   bench/sparse/profile.sh BUILD_DIR OUT_DIR [BATCH=32]
set -u
B=$(cd "${1:?build dir}" && pwd)
O=${2:?out dir}
BATCH=${3:-32}
R="$(cd "$(dirname "$0")/../.." && pwd)"
W=/tmp/sprun-sparse-bench
mkdir -p "$O" "$W"
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
SPRUN="$B/bin/sprun"
[ -f "$W/bert.onnx" ] || python3 "$R/models/transformer.py" -o "$W/bert.onnx" >/dev/null
[ -f "$W/bert-24.onnx" ] || python3 "$R/models/prune.py" "$W/bert.onnx" -o "$W/bert-24.onnx" --2:4 >/dev/null
[ -f "$W/resnet50.onnx" ] || python3 "$R/models/resnet50.py" -o "$W/resnet50.onnx" >/dev/null
[ -f "$W/resnet50-24.onnx" ] || python3 "$R/models/prune.py" "$W/resnet50.onnx" -o "$W/resnet50-24.onnx" --2:4 >/dev/null
mkdir -p "$W/bert-in-$BATCH"
python3 "$R/models/make_input.py" "$W/bert.onnx" -o "$W/bert-in-$BATCH" --shape batch=$BATCH --shape seq=128 >/dev/null
python3 "$R/models/make_input.py" "$W/resnet50.onnx" -o "$W/r50-in-$BATCH.bin" --shape batch=$BATCH >/dev/null
bi="input_ids=$W/bert-in-$BATCH/input_ids.bin attention_mask=$W/bert-in-$BATCH/attention_mask.bin --shape input_ids=${BATCH}x128 --shape attention_mask=${BATCH}x128"
for v in "bert:dense" "bert-24:auto" "resnet50-24:auto"; do
  m=${v%%:*} f=${v#*:}
  if [ "${m%%-*}" = bert ]; then in=$bi; else in="input=$W/r50-in-$BATCH.bin"; fi
  # shellcheck disable=SC2086
  "$SPRUN" "$W/$m.onnx" $in --format "$f" --runs 5 --profile -q > "$O/profile-$m-$f-b$BATCH.txt" 2>&1
done
python3 - "$O" "$BATCH" > "$O/profile.md" <<'PY'
import glob, os, re, sys
o, b = sys.argv[1], sys.argv[2]
print(f"# Per-node GPU time by op (sprun --profile, batch {b})\n")
for f in sorted(glob.glob(os.path.join(o, "profile-*.txt"))):
    agg, tot = {}, 0.0
    for line in open(f):
        m = re.match(r"\s+([\d.]+) us\s+(\S+)\s+(\S+)\s+->.*?(\(fused\))?\s*(\[[^\]]*\])?\s*$", line)
        if not m:
            continue
        us, op = float(m.group(1)), m.group(2) + (" " + m.group(5) if m.group(5) else "")
        c, s = agg.get(op, (0, 0.0))
        agg[op] = (c + 1, s + us)
        tot += us
    print(f"## {os.path.basename(f)}: {tot:.1f} us over the profiled nodes\n")
    print("| op [kernel] | nodes | us | share |\n|---|---|---|---|")
    for op, (c, s) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"| {op} | {c} | {s:.1f} | {100 * s / tot if tot else 0:.1f}% |")
    print()
PY
{
  echo "## BERT 2:4, batch $BATCH: --compare with the fused attention on (SPRUN_CUDA_ATTN=1) and off (0)"
  echo
  echo "| round | attention | dense device-I/O us | sparse device-I/O us | speedup |"
  echo "|---|---|---|---|---|"
  for round in 1 2; do
    for at in 1 0; do
      # shellcheck disable=SC2086
      SPRUN_CUDA_ATTN=$at "$SPRUN" --compare "$W/bert-24.onnx" $bi --runs 20 > "$O/attn-ab-$at-$round.txt" 2>&1
      awk -v r=$round -v a=$at '/device-resident/{d=1} d&&$1=="dense"{dn=$2} d&&$1=="sparse"{sp=$2}
        END{printf "| %s | %s | %s | %s | %.2fx |\n", r, a ? "fused" : "unfused", dn, sp, (sp > 0 ? dn / sp : 0)}' "$O/attn-ab-$at-$round.txt"
    done
  done
} >> "$O/profile.md"
cat "$O/profile.md"
