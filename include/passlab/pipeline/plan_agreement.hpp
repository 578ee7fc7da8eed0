#pragma once
// The ranks of a run group slice the same channels: the group leader's. For a method whose
// ranks compute the plan identically (PASS: its masks are checked identical during the search)
// a different plan on some rank is a DistError; a data-dependent baseline (Taylor on each rank's
// shard) follows the leader.
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

// Collective: every rank ends with `root`'s plan (the one place the plan's wire format lives).
void broadcast_plan(prune::KeepPlan& plan, dist::Communicator& comm, int root = 0);

}  // namespace passlab::pipeline
