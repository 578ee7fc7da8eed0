// RAII owners of MPI state: the session (initialisation) and communicators.
#include "passlab/dist/mpi_handles.hpp"

#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"

namespace passlab::dist {

// ---------------------------------------------------------------------------------------------
// MpiSession

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) return;  // adopted (a test main, or an embedding program): not ours to finalise
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  owns_ = true;
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  if (provided < MPI_THREAD_SERIALIZED)
    PL_WARN("MPI provides thread level {} (< SERIALIZED); passlab calls MPI from one thread at a time", provided);
}

MpiSession::~MpiSession() {
  if (!owns_) return;
  // A destructor cannot report a failure; an MPI already finalised is left alone.
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
}


int MpiComm::rank() const {
  int r = 0;
  MPI_CHECK(MPI_Comm_rank(comm_, &r));
  return r;
}

int MpiComm::size() const {
  int s = 1;
  MPI_CHECK(MPI_Comm_size(comm_, &s));
  return s;
}

void MpiComm::reset() {
  if (comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  comm_ = MPI_COMM_NULL;
}

MpiComm MpiComm::dup(MPI_Comm comm) {
  MPI_Comm out = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_dup(comm, &out));
  MpiComm owned(out);
  MPI_CHECK(MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN));
  return owned;
}


}  // namespace passlab::dist
