#include "passlab/core/mpi_check.hpp"

#include <string>

namespace passlab::detail {

void throw_mpi(int code, const char* expr, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  std::string detail = "MPI error " + std::to_string(code);
  // MPI_Error_string is only legal between MPI_Init and MPI_Finalize (Open MPI aborts otherwise).
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized && MPI_Error_string(code, text, &len) == MPI_SUCCESS && len > 0)
    detail += ": " + std::string(text, len);
  throw_check(ErrorKind::Distributed, "MPI", expr, detail, file, line);
}

}  // namespace passlab::detail
