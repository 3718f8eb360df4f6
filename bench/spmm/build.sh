#!/bin/sh
# Standalone build of the SpMM benchmark and the GPU test (nvcc directly, no
# CMake), objects compiled two at a time:
#   bench/spmm/build.sh [outdir]   -> outdir/spmm_bench, outdir/test_spmm_cuda
#                                     (default outdir: .devbuild)
#   SPRUN_LIB=build-dev/libsprun.a bench/spmm/build.sh outdir
#                                  -> outdir/spmm_bench only, linked against
#                                     that library's kernels (scripts/gpu_pack.sh)
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
mkdir -p "$OUT/obj"
GENCODE="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80"
FLAGS="-std=c++17 -I. -Iinclude -I$CSL/include $GENCODE -O3 -lineinfo"
cc() { nvcc $FLAGS -c "$1" -o "$OUT/obj/$(basename "$1" .cu).o"; }
LIBS="-lcublas -lcusparse -L$CSL/lib -l:libcusparseLt.so.0"
if [ -n "${SPRUN_LIB:-}" ]; then
  cc bench/spmm/spmm_bench.cu
  nvcc $GENCODE -o "$OUT/spmm_bench" "$OUT/obj/spmm_bench.o" "$SPRUN_LIB" $LIBS
  rm -rf "$OUT/obj"
  exit 0
fi
cc kernels/cuda/spmm_24.cu & cc kernels/cuda/spmm_bsr.cu & wait
cc kernels/cuda/spmm_csr.cu & cc tests/gpu/test_spmm_cuda.cu & wait
cc kernels/cuda/spmm_24_sm90.cu & cc kernels/cuda/gemm_sm90.cu & wait
cc kernels/cuda/spmm_bsr_sm90.cu & cc kernels/cuda/spmm_csr_sm90.cu & wait
cc kernels/cuda/spmm_bsr_tall_sm90.cu
cc bench/spmm/spmm_bench.cu
gcc -std=c11 -O2 -I. -Iinclude -c loaders/sparse_pack.c -o "$OUT/obj/sparse_pack.o"
K="$OUT/obj/spmm_24.o $OUT/obj/spmm_24_sm90.o $OUT/obj/gemm_sm90.o $OUT/obj/spmm_bsr.o $OUT/obj/spmm_bsr_sm90.o"
K="$K $OUT/obj/spmm_bsr_tall_sm90.o $OUT/obj/spmm_csr.o $OUT/obj/spmm_csr_sm90.o $OUT/obj/sparse_pack.o"
nvcc $GENCODE -o "$OUT/test_spmm_cuda" "$OUT/obj/test_spmm_cuda.o" $K
nvcc $GENCODE -o "$OUT/spmm_bench" "$OUT/obj/spmm_bench.o" $K $LIBS
rm -rf "$OUT/obj"
