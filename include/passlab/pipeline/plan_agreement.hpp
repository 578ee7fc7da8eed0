#pragma once
// The ranks of a run group slice the same channels: the group leader's. For a method whose
// ranks compute the plan identically (PASS: its masks are checked identical during the search)
// a different plan on some rank is a DistError; a data-dependent baseline (Taylor on each rank's
// shard) follows the leader. The plan travels by Communicator::broadcast_plan.
#include <string>

#include "passlab/models/structure.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/slice.hpp"

namespace passlab::dist {
class Communicator;
}

namespace passlab::pipeline {

enum class PlanPolicy { must_match, follow_leader };

// Collective over `comm`. Where this rank adopts the leader's plan it recounts `alloc.kept` and
// `alloc.macs` on `dense`; returns whether it did. `what` names the task in errors.
bool agree_on_plan(prune::Allocation& alloc, const models::Structure& dense, dist::Communicator& comm,
                   PlanPolicy policy, const std::string& what);

}  // namespace passlab::pipeline
