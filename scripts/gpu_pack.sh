#!/usr/bin/env bash
# scripts/gpu_pack.sh - build here (no GPU needed) and pack what a device call
# needs into build-pack/ (git-ignored; pass it to the device tool as `carry`):
# the CLI, the GPU tests, the libraries the device lacks (OpenBLAS, gfortran,
# quadmath), the ONNX node-test data, and the SpMM benchmark (spmm/, linked
# against the same library; skipped when the cuSPARSELt wheel is not
# unpacked, see bench/spmm/build.sh's header), all in one archive.
#
#   bash scripts/gpu_pack.sh            # -> build-pack/b.tar.xz (~40 MB)
#
# On the device, from the repository root, one call runs everything:
#   bash scripts/gpu_run.sh [COMMIT]     # results under $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-dev -DSPRUN_BUILD_TESTS=ON > /dev/null
cmake --build build-dev -j"$(nproc)"
rm -rf build-gpu && mkdir -p build-gpu/bin build-gpu/tests build-gpu/lib build-pack
cp build-dev/bin/sprun build-gpu/bin/
for t in test_cuda_backend test_spmm_cuda test_sddmm_cuda test_conv_implicit test_device_io test_cuda_tune node_tests; do
  cp "build-dev/tests/$t" build-gpu/tests/
done
strip build-gpu/bin/* build-gpu/tests/*
for l in $(ldd build-gpu/bin/sprun | awk '/openblas|gfortran|quadmath/{print $3}'); do cp -L "$l" build-gpu/lib/; done
[ -d /usr/share/libonnx-testdata/data/node ] && cp -r /usr/share/libonnx-testdata/data/node build-gpu/node
git describe --always --dirty > build-gpu/COMMIT 2>/dev/null || echo unknown > build-gpu/COMMIT
# the SpMM benchmark, linked against the library just built (its kernels are
# the ones sprun runs), and its test beside it: in the same archive, where
# the large xz window shares their kernels with the binaries above
CSL=${CUSPARSELT_DIR:-/tmp/csl/nvidia/cusparselt}
if [ -d "$CSL" ]; then
  SPRUN_LIB=build-dev/libsprun.a sh bench/spmm/build.sh build-gpu/spmm
  cp build-gpu/tests/test_spmm_cuda build-gpu/spmm/
  strip build-gpu/spmm/spmm_bench
else
  echo "gpu_pack: no cuSPARSELt wheel unpacked ($CSL): no SpMM benchmark in the pack" >&2
fi
# every binary links the whole library (~33 MB each): a large xz window shares it across them
tar -C build-gpu -c . | xz -T"$(nproc)" --lzma2=preset=6,dict=192MiB > build-pack/b.tar.xz
rm -f build-pack/spmm.tar.xz
ls -la build-pack/
echo "carry: [\"build-pack\"] (the limit is 64 MiB)"
