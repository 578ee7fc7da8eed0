// GoogleTest under mpirun: every rank runs every test; only rank 0 prints the report, and the
// exit status is non-zero on every rank if any rank failed (so mpirun fails).
#include <gtest/gtest.h>
#include <mpi.h>

#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/core/process.hpp"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided));
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world));
  passlab::set_process_identity(rank, world);
  passlab::log::init();
  ::testing::InitGoogleTest(&argc, argv);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0, any_failed = 0;
  MPI_CHECK(MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (rank == 0 && any_failed && !failed) std::fprintf(stderr, "[mpi] a test failed on another rank\n");
  MPI_CHECK(MPI_Finalize());
  return any_failed;
}
