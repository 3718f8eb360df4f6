#!/bin/sh
# Standalone build of the GPU SpMM test (no CMake needed):
#   tests/gpu/build.sh [outdir]   -> outdir/test_spmm_cuda (default .devbuild)
set -e
cd "$(dirname "$0")/../.."
OUT=${1:-.devbuild}
mkdir -p "$OUT"
GENCODE="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80"
nvcc -std=c++17 -I. $GENCODE -O3 -lineinfo -o "$OUT/test_spmm_cuda" \
    tests/gpu/test_spmm_cuda.cu kernels/cuda/spmm_24.cu kernels/cuda/spmm_bsr.cu \
    kernels/cuda/spmm_csr.cu
