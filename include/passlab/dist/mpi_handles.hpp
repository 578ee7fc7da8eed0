#pragma once
// RAII owners of MPI state (ggml-cpp.h style):
//  - MpiSession: MPI initialisation, finalised exactly when this process initialised it;
//  - MpiComm: a communicator passlab created is freed exactly once; the predefined ones (WORLD,
//    SELF, NULL) are never freed.
#include <mpi.h>

#include <utility>

namespace passlab::dist {

class MpiSession {
 public:
  // Initialises MPI with MPI_THREAD_MULTIPLE (errors returned on MPI_COMM_WORLD, so MPI_CHECK
  // sees them) unless it is already initialised; argc/argv may be null.
  MpiSession(int* argc, char*** argv);
  // Calls MPI_Finalize when this session initialised MPI (and it is not finalised yet). An owner
  // constructed first (the Runtime's first member) thus finalises MPI even when a later part of
  // its owner's constructor throws, after the communicators declared after it are freed.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  bool owns() const { return owns_; }  // whether this session initialised MPI

 private:
  bool owns_ = false;
};

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
