#pragma once
// The channels a prune task keeps: the method dispatch. A PASS method runs the mask search
// (pass::PassSearch) and allocates its scores to the budget; a baseline ranks the dense
// network's channels by its criterion (prune::allocate_baseline). Either way the result meets
// the MAC budget through the global or uniform allocator.
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
};

// Leaves `dense` without masks. Random streams: kSearchData (PASS), kTaylor and kBaseline.
MethodPlan find_keep_plan(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& dense);

}  // namespace passlab::pipeline
