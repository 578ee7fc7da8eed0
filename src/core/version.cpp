#include "passlab/core/version.hpp"

#include "git_sha.inc"
#include "passlab/core/mpi_check.hpp"

namespace passlab {
const char* version() { return PASSLAB_VERSION; }
const char* git_sha() { return PASSLAB_GIT_SHA; }

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_CHECK(MPI_Get_library_version(text, &len));
  std::string v(text, static_cast<size_t>(len));
  if (auto end = v.find_first_of(",\n"); end != std::string::npos) v.resize(end);
  return v;
}
}  // namespace passlab
