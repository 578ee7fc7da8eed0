#pragma once
#include <string>

namespace passlab {
// passlab's own version and the git sha it was built from ("<sha>[-dirty]" or "unknown").
const char* version();
const char* git_sha();
// The MPI library passlab runs on: the first line of MPI_Get_library_version (callable before
// MPI_Init). Here in core because MPI is called only in core and dist (scripts/check_layering.py)
// and build_info, which reports it, sits below dist.
std::string mpi_library_version();
}  // namespace passlab
