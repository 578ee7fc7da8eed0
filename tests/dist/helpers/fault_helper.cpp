// Helper for tests/dist/test_dist.cpp: a 2-rank job in which rank 1 fails in a chosen way while
// rank 0 waits in a collective. The job must end (non-zero) promptly, never hang.
//   fault_helper ok     both ranks all-reduce and exit 0
//   fault_helper throw  rank 1 throws before the collective (run_or_abort → MPI_Abort)
//   fault_helper hang   rank 1 never joins; rank 0's collective watchdog (timeout 2 s) aborts
//   fault_helper segv   rank 1 dies of SIGSEGV (mpirun must end the job)
//   fault_helper config-error  a Runtime with a bad option throws after initialising MPI; the
//                       helper prints whether MPI is finalised afterwards (it must be) and exits 0
#include <ATen/ATen.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <mpi.h>
#include <string>
#include <thread>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "ok";
  passlab::log::init();
  passlab::dist::install_abort_on_terminate();
  passlab::dist::RuntimeOptions opt;
  opt.ranks_per_run = 0;
  opt.device = "cpu";
  opt.threads_per_rank = 1;
  opt.timeout_s = mode == "hang" ? 2.0 : 600.0;
  if (mode == "config-error") {
    passlab::dist::RuntimeOptions bad = opt;
    bad.device = "tpu";  // rejected after MPI_Init and the communicator splits
    try {
      passlab::dist::Runtime rt(bad, &argc, &argv);
      std::printf("fault_helper config-error: no ConfigError\n");
      return 1;
    } catch (const passlab::ConfigError& e) {
      int initialized = 0, finalized = 0;
      MPI_Initialized(&initialized);
      MPI_Finalized(&finalized);
      std::printf("fault_helper config-error: initialized %d, finalized %d (%s)\n", initialized, finalized, e.what());
      return 0;
    }
  }
  passlab::dist::Runtime rt(opt, &argc, &argv);
  return passlab::dist::run_or_abort(rt, [&] {
    auto comm = passlab::dist::make_communicator("mpi", rt);
    if (rt.world_rank() == 1 && mode == "throw") {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      throw passlab::DataError("injected failure on rank 1");
    }
    if (rt.world_rank() == 1 && mode == "segv") std::raise(SIGSEGV);
    if (rt.world_rank() == 1 && mode == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
    at::Tensor t = at::ones({1000});
    comm->allreduce(t, passlab::dist::ReduceOp::sum);
    comm->barrier();
    if (rt.world_rank() == 0) std::printf("fault_helper ok: sum %.0f\n", t.sum().item<double>());
    return 0;
  });
}
