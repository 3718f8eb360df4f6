#!/usr/bin/env bash
# Installs everything sprun needs to build, test and benchmark, idempotently:
# Debian packages (protobuf-c, ONNX's proto and node tests, cmocka, OpenBLAS,
# clang's libFuzzer runtime) and the Python packages used by models/ and the
# reference checks (onnx, onnxruntime, numpy). Safe to run repeatedly.
set -euo pipefail

APT_PACKAGES=(cmake protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata libcmocka-dev
              libopenblas-dev clang libclang-rt-14-dev python3-pip)
PY_PACKAGES=(onnx onnxruntime numpy)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  echo "setup: installing ${PY_PACKAGES[*]} with pip"
  $PY -m pip install -q "${PY_PACKAGES[@]}" 2>/dev/null ||
    $PY -m pip install -q --break-system-packages "${PY_PACKAGES[@]}"
fi
echo "setup: all dependencies present"
