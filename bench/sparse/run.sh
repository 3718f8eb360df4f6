#!/usr/bin/env bash
# bench/sparse/run.sh - issue 6's benchmark in one device call: sparse vs
# dense plans of ResNet-50 and BERT-base through `sprun --compare`, batch 1
# and 32 (BERT: seq 128), every pruning the issue names. Models are built on
# the device (models/*.py need only onnx + numpy). Writes a Markdown table.
#
#   bench/sparse/run.sh BUILD_DIR OUT_DIR [QUICK=1 for batch 1 only]
# SPRUN_COMMIT names the commit the binaries were built from (the device's copy of
# the tree may carry no current .git).
set -u
B=$(cd "${1:?build dir}" && pwd)
O=${2:?out dir}
R="$(cd "$(dirname "$0")/../.." && pwd)"
W=/tmp/sprun-sparse-bench
mkdir -p "$O" "$W"
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
SPRUN="$B/bin/sprun"
RUNS=${RUNS:-30}
md="$O/sparse-models.md"
{
  echo "# Sparse vs dense plans: sprun --compare"
  echo
  echo "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(date -u +%F), commit ${SPRUN_COMMIT:-$(git -C "$R" rev-parse --short HEAD 2>/dev/null || echo unknown)}; fp16, CUDA-graph replay, median / p90 of $RUNS runs after warm-up, wall clock around sprun_session_run (includes H2D/D2H of inputs/outputs)."
  echo
  echo "End to end: host inputs and outputs (pageable copies included). Device I/O: inputs already on the GPU, outputs left there (sprun_session_set_output_memory), run + synchronize: what a serving process that keeps tensors on the GPU sees."
  echo
  echo "Compute advantage: the weight layers' work if every zero weight were skipped (dense / sparse flops, the seed's Table 2 figure); in parentheses the share of it the device-I/O speedup realizes."
  echo
  echo "| model | pruning | --format | batch | dense e2e us | sparse e2e us | e2e speedup | dense device-I/O us | sparse device-I/O us | device-I/O speedup | compute advantage (realized) | max rel-L2 | layers sparse |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$md"

build() { # name script args...
  local f="$W/$1.onnx"; shift
  [ -f "$f" ] || python3 "$@" -o "$f" >/dev/null
}
prune() { # src dst args...
  local s="$W/$1.onnx" d="$W/$2.onnx"; shift 2
  [ -f "$d" ] || python3 "$R/models/prune.py" "$s" -o "$d" "$@" >/dev/null
}
compare() { # model pruning batch format inputs... (format "24x": 2:4 with convs through a patch matrix, not the implicit GEMM)
  local m=$1 label=$2 b=$3 f=$4; shift 4
  local j="$O/cmp-$m-$f-b$b.json" mode="" fa=$f
  [ "$f" = 24x ] && { mode=explicit; fa=24; }
  if SPRUN_SPARSE_CONV=$mode "$SPRUN" --compare "$W/$m.onnx" "$@" --format "$fa" --runs "$RUNS" --json "$j" > "$O/cmp-$m-$f-b$b.txt" 2>&1; then
    python3 - "$j" "$m" "$label" "$b" "$f" >> "$md" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n_sp = sum(1 for l in d["layers"] if l["kernel"] not in ("", "dense", "cudnn", "cublas", "gemm", "gemm90"))
dv = d.get("device_io")
dev = (f"{dv['dense_median_us']:.1f} | {dv['sparse_median_us']:.1f} | "
       f"**{dv['dense_median_us']/dv['sparse_median_us']:.2f}x**") if dv else "- | - | -"
adv = d.get("compute_advantage", 0)
sp = dv['dense_median_us'] / dv['sparse_median_us'] if dv else d['dense_median_us'] / d['sparse_median_us']
advs = f"{adv:.2f}x ({100 * sp / adv:.0f}%)" if adv and adv > 0 else "-"
print(f"| {sys.argv[2].split('-')[0]} | {sys.argv[3]} | {sys.argv[5]} | {sys.argv[4]} | {d['dense_median_us']:.1f} | "
      f"{d['sparse_median_us']:.1f} | {d['dense_median_us']/d['sparse_median_us']:.2f}x | {dev} | {advs} | "
      f"{d['max_rel_l2']:.2g} | {n_sp}/{len(d['layers'])} |")
PY
  else
    echo "| $m | $label | $f | $b | failed: $(tail -1 "$O/cmp-$m-$f-b$b.txt" | cut -c1-120) | | | | | | | | |" >> "$md"
  fi
}

build resnet50 "$R/models/resnet50.py"
prune resnet50 resnet50-u80 --unstructured 0.8
prune resnet50 resnet50-u90 --unstructured 0.9
prune resnet50 resnet50-24 --2:4
prune resnet50 resnet50-b16 --block 16x16:0.7
build bert "$R/models/transformer.py"
prune bert bert-24 --2:4
prune bert bert-u90 --unstructured 0.9
batches="1 32"
[ "${QUICK:-0}" = 1 ] && batches=1
for b in $batches; do
  python3 "$R/models/make_input.py" "$W/resnet50.onnx" -o "$W/r50-in-$b.bin" --shape batch=$b >/dev/null
  mkdir -p "$W/bert-in-$b"
  python3 "$R/models/make_input.py" "$W/bert.onnx" -o "$W/bert-in-$b" --shape batch=$b --shape seq=128 >/dev/null
  for v in "resnet50-u80:80% unstructured:auto" "resnet50-u90:90% unstructured:auto" "resnet50-24:2:4:auto" \
           "resnet50-b16:16x16 blocks 70%:auto" "resnet50-u90:90% unstructured:csr" "resnet50-24:2:4:24" \
           "resnet50-b16:16x16 blocks 70%:bsr" "resnet50-24:2:4:24x"; do
    IFS=: read -r m l1 l2 f <<< "$v"
    [ "$f" ] || { f=$l2; l2=""; }
    compare "$m" "$l1${l2:+:$l2}" "$b" "$f" "input=$W/r50-in-$b.bin"
  done
  for v in "bert-24:2:4:auto" "bert-u90:90% unstructured:auto" "bert-24:2:4:24" "bert-u90:90% unstructured:csr"; do
    IFS=: read -r m l1 l2 f <<< "$v"
    [ "$f" ] || { f=$l2; l2=""; }
    compare "$m" "$l1${l2:+:$l2}" "$b" "$f" "input_ids=$W/bert-in-$b/input_ids.bin" \
      "attention_mask=$W/bert-in-$b/attention_mask.bin" --shape input_ids=${b}x128 --shape attention_mask=${b}x128
  done
done
# PyTorch dense peer, same call: the same architectures, fp16, CUDA-graph replay, inputs on the GPU
if python3 "$R/bench/models/torch_peer.py" --runs 100 --resnet-batches "${batches// /,}" \
     --bert-shapes "$(for b in $batches; do printf '%sx128,' "$b"; done)" --json "$O/torch.json" > "$O/torch.log" 2>&1; then
  python3 - "$O" >> "$md" <<'PY'
import glob, json, os, sys
o = sys.argv[1]
t = json.load(open(os.path.join(o, "torch.json")))
peer = {(r["model"].split("-")[0], r["shape"].split("s")[0].lstrip("b")): r for r in t["rows"]}
print()
print(f"PyTorch {t['torch']} dense peer ({t['device']}), same call: fp16, CUDA-graph replay, CUDA events, "
      "inputs on the GPU (bench/models/torch_peer.py, 100 runs). Speedups below divide PyTorch's graph "
      "median by sprun's device-I/O median (wall clock around run + synchronize, so launch and sync "
      "overhead count against sprun only).")
print()
print("| model | pruning file | --format | batch | PyTorch graph us | sprun dense us | sprun sparse us | dense vs PyTorch | sparse vs PyTorch |")
print("|---|---|---|---|---|---|---|---|---|")
for f in sorted(glob.glob(os.path.join(o, "cmp-*.json"))):
    parts = os.path.basename(f)[:-5].split("-")
    if len(parts) != 5:
        continue
    _, m, pr, fmt, b = parts
    d = json.load(open(f))
    dv = d.get("device_io")
    r = peer.get((m, b.lstrip("b")))
    if not dv or not r:
        continue
    g = r["graph_med"]
    print(f"| {m} | {pr} | {fmt} | {b.lstrip('b')} | {g:.1f} | {dv['dense_median_us']:.1f} | {dv['sparse_median_us']:.1f} | "
          f"{g / dv['dense_median_us']:.2f}x | {g / dv['sparse_median_us']:.2f}x |")
PY
else
  echo; echo "PyTorch peer failed: $(tail -1 "$O/torch.log")"
fi >> "$md"
cat "$md"
