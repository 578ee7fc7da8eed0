// Runs under mpirun -np 2 (MPI initialised by tests/support/mpi_gtest_main.cpp).
#include <gtest/gtest.h>

#include "passlab/core/error.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/core/process.hpp"

using namespace passlab;

TEST(MpiCheck, ReportsMpiErrorStringAndRank) {
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  try {
    MPI_CHECK(MPI_ERR_TRUNCATE);
    FAIL() << "no throw";
  } catch (const DistError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("MPI_ERR_TRUNCATE failed"), std::string::npos) << m;
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
    EXPECT_NE(m.find("rank " + std::to_string(rank) + "/2"), std::string::npos) << m;
  }
}

TEST(MpiCheck, RealFailingCallIsCaught) {
  // With MPI_ERRORS_RETURN a bad call returns an error instead of aborting; MPI_CHECK turns it
  // into a DistError. A negative count is invalid for MPI_Bcast.
  MPI_Comm dup;
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
  MPI_CHECK(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
  int x = 0;
  EXPECT_THROW(MPI_CHECK(MPI_Bcast(&x, -1, MPI_INT, 0, dup)), DistError);
  MPI_CHECK(MPI_Comm_free(&dup));
}
