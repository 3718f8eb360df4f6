/*
 * cuda_status.h - CUDA, cuBLAS, cuDNN and kernel-launch failures as sp_err.
 *
 * kernels/cuda/cuda_check.h records CUDA runtime errors into an
 * sp_cuda_status for the sparse kernels; the backend needs the failure as
 * the sp_err that travels up to sprun_last_error(), naming the call, the
 * file and line and the node being lowered or run. Each macro returns from
 * the enclosing function with the sprun_code; it expects `err` (sp_err *)
 * and `node` (const sp_node *, may be NULL) in scope.
 *
 * Device out-of-memory becomes SPRUN_ERR_OUT_OF_MEMORY, everything else
 * SPRUN_ERR_BACKEND. Non-sticky runtime errors are cleared
 * (cudaGetLastError) so the session stays usable after the report.
 */
#ifndef SPRUN_CUDA_STATUS_H
#define SPRUN_CUDA_STATUS_H

#include "runtime/error.h"
#include "runtime/graph.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

int sp_cu_fail_rt(sp_err *err, cudaError_t e, const char *call, const char *file, int line, const sp_node *node);
int sp_cu_fail_blas(sp_err *err, cublasStatus_t e, const char *call, const char *file, int line,
                    const sp_node *node);
int sp_cu_fail_dnn(sp_err *err, cudnnStatus_t e, const char *call, const char *file, int line, const sp_node *node);
/* e: an spk_* launcher's return (a cudaError_t or SPK_E_UNSUPPORTED). */
int sp_cu_fail_kernel(sp_err *err, int e, const char *call, const char *file, int line, const sp_node *node);

#define CU_RT(call)                                                                                 \
    do {                                                                                            \
        cudaError_t cu_e_ = (call);                                                                 \
        if (cu_e_ != cudaSuccess)                                                                   \
            return sp_cu_fail_rt(err, cu_e_, #call, __FILE__, __LINE__, node);                      \
    } while (0)
#define CU_BLAS(call)                                                                               \
    do {                                                                                            \
        cublasStatus_t cu_e_ = (call);                                                              \
        if (cu_e_ != CUBLAS_STATUS_SUCCESS)                                                         \
            return sp_cu_fail_blas(err, cu_e_, #call, __FILE__, __LINE__, node);                    \
    } while (0)
#define CU_DNN(call)                                                                                \
    do {                                                                                            \
        cudnnStatus_t cu_e_ = (call);                                                               \
        if (cu_e_ != CUDNN_STATUS_SUCCESS)                                                          \
            return sp_cu_fail_dnn(err, cu_e_, #call, __FILE__, __LINE__, node);                     \
    } while (0)
#define CU_K(call)                                                                                  \
    do {                                                                                            \
        int cu_e_ = (call);                                                                         \
        if (cu_e_ != 0)                                                                             \
            return sp_cu_fail_kernel(err, cu_e_, #call, __FILE__, __LINE__, node);                  \
    } while (0)

#endif
