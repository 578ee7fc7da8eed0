#pragma once
// MPI_CHECK: every MPI call is checked; the error string comes from MPI_Error_string.
// Communicators must use MPI_ERRORS_RETURN for this to see errors (the dist runtime sets it).
#include <mpi.h>

#include "passlab/core/check.hpp"

namespace passlab::detail {
[[noreturn]] void throw_mpi(int code, const char* expr, const char* file, int line);
}

#define MPI_CHECK(call)                                                   \
  do {                                                                    \
    int passlab_mpi_rc_ = (call);                                         \
    if (passlab_mpi_rc_ != MPI_SUCCESS)                                   \
      ::passlab::detail::throw_mpi(passlab_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)
