// The ranks of a run group agree on the leader's keep plan (2 ranks).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "passlab/core/error.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/pipeline/plan_agreement.hpp"
#include "passlab/prune/allocate.hpp"

using namespace passlab;

namespace {

// The same resnet20 on every rank, and an l1_global plan at `budget`.
struct Plans {
  models::PrunableNetworkPtr net;
  prune::Allocation at(double budget) const {
    prune::AllocationOptions opt;
    opt.budget = budget;
    return prune::allocate_baseline(*net, "l1_global", opt);
  }
};
Plans plans() {
  torch::manual_seed(4);
  return Plans{models::make_model("resnet20", 10, 3, 32)};
}

}  // namespace

TEST(PlanAgreementMpi, DataDependentMethodFollowsTheLeaderAndRecountsMacs) {
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  const auto p = plans();
  const auto leaders = p.at(0.5);
  auto alloc = comm->rank() == 0 ? leaders : p.at(0.3);  // rank 1 computed another plan
  ASSERT_NE(leaders.keep, p.at(0.3).keep);
  const bool adopted = pipeline::agree_on_plan(alloc, p.net->structure(), *comm, pipeline::PlanPolicy::follow_leader, "t");
  EXPECT_EQ(adopted, comm->rank() != 0);
  EXPECT_EQ(alloc.keep, leaders.keep);
  EXPECT_EQ(alloc.kept, leaders.kept);
  EXPECT_EQ(alloc.macs, leaders.macs);
}

TEST(PlanAgreementMpi, PassPlanThatDiffersIsADistErrorOnTheDifferingRank) {
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  const auto p = plans();
  auto alloc = p.at(comm->rank() == 0 ? 0.5 : 0.3);
  if (comm->rank() == 0) {
    EXPECT_FALSE(pipeline::agree_on_plan(alloc, p.net->structure(), *comm, pipeline::PlanPolicy::must_match, "t"));
  } else {
    try {
      pipeline::agree_on_plan(alloc, p.net->structure(), *comm, pipeline::PlanPolicy::must_match, "run-x");
      FAIL() << "no error";
    } catch (const DistError& e) {
      EXPECT_NE(std::string(e.what()).find("run-x: ranks of the run group allocated different channels"), std::string::npos)
          << e.what();
    }
  }
  // Identical plans pass on every rank, unchanged.
  auto same = p.at(0.5);
  EXPECT_FALSE(pipeline::agree_on_plan(same, p.net->structure(), *comm, pipeline::PlanPolicy::must_match, "t"));
  EXPECT_EQ(same.keep, p.at(0.5).keep);
}
