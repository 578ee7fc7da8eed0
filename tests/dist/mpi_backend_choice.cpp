// Under `mpirun -np 2` (ctest dist_mpi2): the ranks of a group agree on whether a backend is
// available, also when only some of them could use it (say, one node without a visible GPU), so
// that no rank waits in an NCCL set-up that another rank skipped.
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "passlab/dist/communicator.hpp"

using namespace passlab;

namespace {
int rank_of(MPI_Comm c) {
  int r = 0;
  MPI_Comm_rank(c, &r);
  return r;
}
int size_of(MPI_Comm c) {
  int n = 1;
  MPI_Comm_size(c, &n);
  return n;
}
// The cases below name ranks 0 and 1 (the binary is also run as one rank, on a one-GPU machine).
#define NEEDS_TWO_RANKS() \
  if (size_of(MPI_COMM_WORLD) != 2) GTEST_SKIP() << "needs exactly 2 ranks (mpirun -np 2)"
const std::string kWhy = "the runtime's device is cpu, not a CUDA GPU";
}  // namespace

TEST(BackendChoice, AvailableEverywhereIsAvailable) {
  EXPECT_EQ(dist::unavailable_in_group(true, "", MPI_COMM_WORLD), "");
}

TEST(BackendChoice, UnavailableOnOneRankIsUnavailableOnAll) {
  NEEDS_TWO_RANKS();
  const int r = rank_of(MPI_COMM_WORLD);
  const bool available = r == 0;  // rank 1 cannot
  const std::string why = dist::unavailable_in_group(available, available ? "" : kWhy, MPI_COMM_WORLD);
  ASSERT_FALSE(why.empty()) << "rank " << r;
  EXPECT_NE(why.find("rank(s) 1 of the run group cannot use it"), std::string::npos) << why;
  if (r == 1) {
    EXPECT_EQ(why.rfind(kWhy, 0), 0u) << why;  // its own reason first
  } else {
    EXPECT_EQ(why.find(kWhy), std::string::npos) << why;
  }
}

TEST(BackendChoice, UnavailableEverywhereNamesEveryRank) {
  NEEDS_TWO_RANKS();
  const std::string why = dist::unavailable_in_group(false, kWhy, MPI_COMM_WORLD);
  EXPECT_EQ(why, kWhy + "; rank(s) 0, 1 of the run group cannot use it");
}

TEST(BackendChoice, OneRankGroupGivesItsOwnReason) {
  EXPECT_EQ(dist::unavailable_in_group(false, kWhy, MPI_COMM_SELF), kWhy);
  EXPECT_EQ(dist::unavailable_in_group(true, "", MPI_COMM_SELF), "");
}
