#!/bin/sh
# Standalone build of the SpMM benchmark (nvcc directly, no CMake):
#   bench/spmm/build.sh [outdir]            -> outdir/spmm_bench (default .devbuild)
# cuSPARSELt: header and library from the PyPI wheel nvidia-cusparselt-cu13
# (0.8.1, the version on the device), unpacked under $CUSPARSELT_DIR
# (default /tmp/csl/nvidia/cusparselt):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 -d /tmp/csl nvidia-cusparselt-cu13==0.8.1
#   (cd /tmp/csl && unzip -o -q *.whl)
# The library (~230 MB) is not carried: run.sh finds the device's copy in the
# python site-packages and puts it on LD_LIBRARY_PATH.
set -e
cd "$(dirname "$0")/../.."
OUT=${1:-.devbuild}
CSL=${CUSPARSELT_DIR:-/tmp/csl/nvidia/cusparselt}
mkdir -p "$OUT"
GENCODE="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80"
nvcc -std=c++17 -I. -I"$CSL/include" $GENCODE -O3 -lineinfo -o "$OUT/spmm_bench" \
    bench/spmm/spmm_bench.cu kernels/cuda/spmm_24.cu kernels/cuda/spmm_bsr.cu \
    kernels/cuda/spmm_csr.cu -lcublas -lcusparse -L"$CSL/lib" -l:libcusparseLt.so.0
