#pragma once
// RAII owner of an MPI communicator (ggml-cpp.h style): a communicator passlab created is
// freed exactly once; the predefined ones (WORLD, SELF, NULL) are never freed.
#include <mpi.h>

#include <utility>

namespace passlab::dist {

class MpiComm {
 public:
  MpiComm() = default;
  // Takes ownership of `comm` (freed on destruction unless it is predefined).
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {}
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  MpiComm(MpiComm&& o) noexcept : comm_(std::exchange(o.comm_, MPI_COMM_NULL)) {}
  MpiComm& operator=(MpiComm&& o) noexcept {
    if (this != &o) {
      reset();
      comm_ = std::exchange(o.comm_, MPI_COMM_NULL);
    }
    return *this;
  }
  ~MpiComm() { reset(); }
  MPI_Comm get() const { return comm_; }
  bool valid() const { return comm_ != MPI_COMM_NULL; }
  int rank() const;
  int size() const;
  // Frees an owned communicator. Never called after MPI_Finalize (the Runtime frees its
  // communicators before finalizing); a failure in a destructor cannot be reported.
  void reset();
  // MPI_Comm_dup with MPI_ERRORS_RETURN set, so MPI_CHECK sees errors instead of MPI aborting
  // with its own message.
  static MpiComm dup(MPI_Comm comm);

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace passlab::dist
