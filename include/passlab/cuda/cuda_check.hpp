#pragma once
// CUDA_CHECK and NCCL_CHECK: include only from sources compiled with CUDA available.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "passlab/core/check.hpp"

#define CUDA_CHECK(call)                                                                         \
  do {                                                                                           \
    cudaError_t passlab_cuda_rc_ = (call);                                                       \
    if (passlab_cuda_rc_ != cudaSuccess)                                                         \
      ::passlab::detail::throw_check(::passlab::ErrorKind::Distributed, "CUDA", #call,           \
                                     std::string(cudaGetErrorName(passlab_cuda_rc_)) + ": " +    \
                                         cudaGetErrorString(passlab_cuda_rc_),                   \
                                     __FILE__, __LINE__);                                        \
  } while (0)

#define NCCL_CHECK(call)                                                                          \
  do {                                                                                            \
    ncclResult_t passlab_nccl_rc_ = (call);                                                       \
    if (passlab_nccl_rc_ != ncclSuccess && passlab_nccl_rc_ != ncclInProgress)                    \
      ::passlab::detail::throw_check(::passlab::ErrorKind::Distributed, "NCCL", #call,            \
                                     std::string(ncclGetErrorString(passlab_nccl_rc_)), __FILE__, \
                                     __LINE__);                                                   \
  } while (0)
