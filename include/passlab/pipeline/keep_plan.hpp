#pragma once
// The channels a prune task keeps: the method dispatch. A PASS method runs the mask search
// (pass::PassSearch) and allocates its scores to the budget; a baseline ranks the dense
// network's channels by its criterion (prune::allocate_baseline). Either way the result meets
// the MAC budget through the global or uniform allocator. A method with a regularisation phase
// (depgraph, growreg: pipeline/regularise.hpp) first trains a sparsified copy of the dense
// network; the copy is what the plan keeps channels of and what the task slices.
#include <memory>

#include "passlab/models/prunable.hpp"
#include "passlab/pass/search.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/prune/allocate.hpp"

namespace passlab::pipeline {

struct MethodPlan {
  prune::Allocation alloc;
  pass::SearchCurves curves;                 // empty for a baseline
  std::unique_ptr<pass::PassSearch> search;  // null for a baseline
  // The network to slice: the regularised copy (depgraph, growreg), null for the dense one.
  models::PrunableNetworkPtr source;
  double regularise_seconds = 0;  // of the regularisation phase (0 without one)
};

// Leaves `dense` without masks and unchanged. Random streams: kSearchData (PASS), kTaylor,
// kBaseline and kRegulariseData.
MethodPlan find_keep_plan(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& dense);

}  // namespace passlab::pipeline
