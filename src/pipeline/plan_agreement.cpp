#include "passlab/pipeline/plan_agreement.hpp"

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/dist/communicator.hpp"

namespace passlab::pipeline {

bool agree_on_plan(prune::Allocation& alloc, const models::Structure& dense, dist::Communicator& comm,
                   PlanPolicy policy, const std::string& what) {
  if (comm.size() <= 1) return false;
  prune::KeepPlan leader = alloc.keep;
  comm.broadcast_plan(leader, 0);
  if (leader == alloc.keep) return false;
  if (policy == PlanPolicy::must_match)
    throw DistError("prune task " + what + ": ranks of the run group allocated different channels");
  prune::validate_plan(dense, leader);
  alloc.keep = std::move(leader);
  alloc.kept = prune::kept_counts(alloc.keep);
  alloc.macs = dense.macs(alloc.kept);
  PL_DEBUG("prune {}: using the group leader's channels (its method is data-dependent)", what);
  return true;
}

}  // namespace passlab::pipeline
