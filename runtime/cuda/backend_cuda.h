/*
 * backend_cuda.h - the dense CUDA backend (runtime/cuda/backend_cuda.c).
 *
 * sp_backend_cuda implements sp_backend_i (runtime/model.h) on one GPU:
 * fp16 storage with fp32 accumulation by default (SPRUN_PRECISION_FP32 for
 * fp32 throughout, TF32 off), NHWC activations for convolutions (cuDNN),
 * cuBLASLt / cuBLAS for Gemm and MatMul, the kernels/cuda .cu files for the rest,
 * one device arena per plan and a CUDA graph per plan replayed on the
 * session's stream. Ops it cannot run make model load fail, every such node
 * named at once; there is no silent CPU fallback.
 */
#ifndef SPRUN_BACKEND_CUDA_H
#define SPRUN_BACKEND_CUDA_H

#include "runtime/model.h"

#ifdef SPRUN_HAVE_CUDA
extern const sp_backend_i sp_backend_cuda;
int sp_cuda_available(int device_id);
#endif

#endif
