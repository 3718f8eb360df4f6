#!/usr/bin/env bash
# The main job: builds sprun, builds ResNet-50 (seeded random weights, as
# torchvision defines it), prunes it to 80 % unstructured sparsity, and runs
# the pruned model through `sprun --compare`: the dense and the sparse plan in
# one process, their agreement, latency and a per-layer table of the kernel
# each weight got and why. GPU when one is present, CPU otherwise.
#   MODEL=bert     does the same for a BERT-base encoder (seq 128)
#   PRUNE="--2:4"  or "--block 16x16:0.7" picks another pruning
#   RUNS=20        timed runs per plan
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-resnet50}
PRUNE=${PRUNE:---unstructured 0.8}
RUNS=${RUNS:-20}
JOBS=${JOBS:-$(nproc)}

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS" --target sprun_cli

out=build/demo
mkdir -p "$out"
if [ "$MODEL" = bert ]; then
  [ -f "$out/bert.onnx" ] || python3 models/transformer.py -o "$out/bert.onnx"
  dense=$out/bert.onnx
  shape="batch=1 seq=128"
else
  [ -f "$out/resnet50.onnx" ] || python3 models/resnet50.py -o "$out/resnet50.onnx"
  dense=$out/resnet50.onnx
  shape="batch=1"
fi
tag=$(echo "$PRUNE" | tr -c 'A-Za-z0-9.' '_' | sed 's/^_*//; s/_*$//')
pruned=${dense%.onnx}-$tag.onnx
[ -f "$pruned" ] || python3 models/prune.py "$dense" -o "$pruned" $PRUNE
rm -rf "$out/inputs" && mkdir -p "$out/inputs"
python3 models/make_input.py "$pruned" -o "$out/inputs" $(for s in $shape; do echo --shape "$s"; done) >/dev/null
inputs=()
for f in "$out"/inputs/*.bin; do inputs+=("$(basename "${f%.bin}")=$f"); done

echo
build/bin/sprun "$pruned" --info | sed -n '1,12p'
echo "..."
echo
build/bin/sprun --compare "$pruned" "${inputs[@]}" --runs "$RUNS" --json "$out/compare.json"
