#pragma once
// The distributed runtime (DESIGN.md §3): one per process. It initialises MPI (or adopts an
// MPI that is already initialised), finds the local rank on this node, picks the device (one GPU
// per local rank), sets the intra-op thread count, splits the world into run groups of
// `ranks_per_run` ranks and sets the process identity used in log prefixes and errors.
//
//   passlab::dist::Runtime rt(cfg.dist, &argc, &argv);
//   auto comm = passlab::dist::make_communicator(cfg.dist.backend, rt);   // the run group
//   return passlab::dist::run_or_abort(rt, [&] { ...; return 0; });
//
// Works under mpirun, srun (PMIx) and as a singleton without a launcher.
#include <mpi.h>

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>

#include "passlab/config/config.hpp"
#include "passlab/dist/mpi_handles.hpp"

namespace passlab::dist {

struct RuntimeOptions {
  int64_t ranks_per_run = 1;    // <= 0: the whole world is one group
  std::string device = "auto";  // auto | cpu | cuda
  int64_t threads_per_rank = 0; // 0: min(cores bound to this rank, cores on this node / local ranks), at least 1
  double timeout_s = 600.0;     // a collective that takes longer aborts the job (0: never)
  static RuntimeOptions from(const config::DistConfig& c);
};

class Runtime {
 public:
  // argc/argv may be null. Initialises MPI with MPI_THREAD_MULTIPLE when it is not yet
  // initialised (and then finalises it in the destructor, or when the constructor throws).
  explicit Runtime(const RuntimeOptions& opt = {}, int* argc = nullptr, char*** argv = nullptr);
  explicit Runtime(const config::DistConfig& c, int* argc = nullptr, char*** argv = nullptr)
      : Runtime(RuntimeOptions::from(c), argc, argv) {}
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes on this node
  int local_size() const { return local_size_; }
  int group_index() const { return group_index_; }  // which run group this rank belongs to
  int group_count() const { return group_count_; }
  int group_rank() const { return group_rank_; }
  int group_size() const { return group_size_; }
  bool is_group_leader() const { return group_rank_ == 0; }
  bool is_world_leader() const { return world_rank_ == 0; }

  MPI_Comm world() const { return world_.get(); }  // dup of MPI_COMM_WORLD, errors return
  MPI_Comm local() const { return local_.get(); }  // ranks on this node
  MPI_Comm group() const { return group_.get(); }  // this rank's run group
  c10::Device device() const { return device_; }
  int threads() const { return threads_; }
  double timeout_s() const { return timeout_s_; }
  // "mpirun", "srun", or "singleton" (no launcher).
  const std::string& launcher() const { return launcher_; }
  bool owns_mpi() const { return mpi_.owns(); }

  // Logs `message` as an error and ends the whole job (MPI_Abort on the world) with `code`.
  [[noreturn]] void abort(const std::string& message, int code = 1) const;

 private:
  // Declared first: the launcher is read before MPI_Init; the session is constructed before and
  // destroyed after everything that uses MPI (an exception from the constructor finalises it).
  std::string launcher_;
  MpiSession mpi_;
  bool owns_watchdog_ = false;
  int world_rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
  int group_index_ = 0, group_count_ = 1, group_rank_ = 0, group_size_ = 1;
  int threads_ = 1;
  double timeout_s_ = 600.0;
  c10::Device device_{c10::kCPU};
  MpiComm world_, local_, group_;
};

// Runs `body` and returns its result. An exception (or any failure reaching here) on any rank
// logs the message and MPI_Aborts the whole job (world size > 1) so no rank waits forever on a
// dead peer; in a single process it is rethrown for the caller (the CLI) to report.
int run_or_abort(const Runtime& rt, const std::function<int()>& body);

// Installs a std::terminate handler that MPI_Aborts the job (for exceptions escaping threads).
void install_abort_on_terminate();

// The launcher seen in the environment: "srun" (SLURM_STEP_ID or PMIX without OMPI_*),
// "mpirun" (OMPI_COMM_WORLD_SIZE), else "singleton".
std::string detect_launcher();

}  // namespace passlab::dist
