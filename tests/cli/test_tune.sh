#!/usr/bin/env bash
# test_tune.sh SPRUN SRCDIR - measured kernel choice (`--tune FILE`) end to end:
# the first load times candidates and writes decisions, a second load reuses
# them without timing (no new lines), and the tuned sparse plan agrees with
# the dense one (`--compare` exits 0 only when outputs match).
set -u
SPRUN=$1 SRC=$2
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }
if ! python3 -c "import onnx, numpy" 2>/dev/null; then
  echo "skip: python3 with onnx and numpy is needed to build the model"
  echo "tune: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
python3 "$SRC/models/resnet50.py" --tiny -o "$W/r.onnx" >/dev/null
python3 "$SRC/models/prune.py" "$W/r.onnx" -o "$W/r80.onnx" --unstructured 0.8 >/dev/null
python3 "$SRC/models/make_input.py" "$W/r80.onnx" -o "$W/in.bin" --shape batch=2 >/dev/null
"$SPRUN" --compare "$W/r80.onnx" "$W/in.bin" --tune "$W/tune.txt" --runs 3 > "$W/out1.txt" 2>&1
check "first tuned compare agrees with dense (exit 0)" "[ $? -eq 0 ]"
lines=$(wc -l < "$W/tune.txt" 2>/dev/null || echo 0)
check "decisions written ($lines lines)" "[ $lines -gt 0 ]"
check "each decision names a known kernel" "! cut -f2 '$W/tune.txt' | grep -qvE '^(dense|csr|bsr|2:4)$'"
"$SPRUN" --compare "$W/r80.onnx" "$W/in.bin" --tune "$W/tune.txt" --runs 3 --json "$W/c.json" > "$W/out2.txt" 2>&1
check "second tuned compare agrees with dense (exit 0)" "[ $? -eq 0 ]"
check "compare reports the compute advantage and how much of it the speedup realizes" \
    "grep -q 'compute advantage); realized' '$W/out2.txt' && python3 -c \"import json,sys; d=json.load(open('$W/c.json')); sys.exit(not (d['compute_advantage'] > 1 and d['realized_speedup'] > 0 and len(d['layers']) > 0))\""
lines2=$(wc -l < "$W/tune.txt")
check "second load reuses the cache (no new lines)" "[ $lines2 -eq $lines ]"
"$SPRUN" "$W/r80.onnx" "$W/in.bin" --tune /nonexistent-dir/x/tune.txt -q > /dev/null 2>&1
check "an unwritable cache path still runs (decisions kept in memory)" "[ $? -eq 0 ]"
echo "tune: $pass passed, $fail failed"
[ $fail -eq 0 ]
