#!/bin/sh
# Standalone build of the GPU SpMM test (no CMake needed; bench/spmm/build.sh
# builds it too, beside the benchmark):
#   tests/gpu/build.sh [outdir]   -> outdir/test_spmm_cuda (default .devbuild)
set -e
cd "$(dirname "$0")/../.."
OUT=${1:-.devbuild}
mkdir -p "$OUT"
GENCODE="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80"
gcc -std=c11 -O2 -I. -Iinclude -c loaders/sparse_pack.c -o "$OUT/sparse_pack.o"
nvcc -std=c++17 -I. -Iinclude $GENCODE -O3 -lineinfo -o "$OUT/test_spmm_cuda" \
    tests/gpu/test_spmm_cuda.cu kernels/cuda/spmm_24.cu kernels/cuda/spmm_24_sm90.cu kernels/cuda/gemm_sm90.cu \
    kernels/cuda/spmm_bsr.cu kernels/cuda/spmm_bsr_sm90.cu kernels/cuda/spmm_bsr_tall_sm90.cu kernels/cuda/spmm_csr.cu kernels/cuda/spmm_csr_sm90.cu \
    "$OUT/sparse_pack.o"
rm -f "$OUT/sparse_pack.o"
