#pragma once
// Check macros for C-API boundaries (MPI, HDF5, CUDA, NCCL) and internal invariants.
// Each failure throws a typed passlab::Error whose message carries the call, the API's own
// error text, file:line and the process rank, e.g.
//   "MPI_Allreduce(...) failed: MPI_ERR_TRUNCATE: message truncated [src/dist/comm.cpp:88, rank 1/4]"
// The API-specific macros live next to their headers: core/mpi_check.hpp (MPI_CHECK),
// io/hdf5.hpp (H5_CHECK), cuda/cuda_check.hpp (CUDA_CHECK, NCCL_CHECK).
#include <string>

#include "passlab/core/error.hpp"

namespace passlab::detail {

// " [file:line, rank r/w]" — rank part omitted when the process rank is unknown.
std::string where(const char* file, int line);

[[noreturn]] void throw_check(ErrorKind kind, const char* api, const char* expr, const std::string& detail,
                              const char* file, int line);

}  // namespace passlab::detail

// Internal invariant or user-facing precondition; `kind_type` is an Error subclass.
#define PASSLAB_CHECK(cond, ErrorType, msg)                                                  \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      throw ErrorType(std::string(msg) + ::passlab::detail::where(__FILE__, __LINE__));      \
    }                                                                                        \
  } while (0)
