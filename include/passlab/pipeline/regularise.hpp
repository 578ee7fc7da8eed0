#pragma once
// The regularisation phase of depgraph and growreg (config/methods.hpp MethodRegularisation):
// a copy of the dense model trained on [regularise] with the cross-entropy plus a sparsity
// penalty (prune/group_norm.hpp), data parallel through the Trainer, checkpointed under
// work/<id>/regularise.ckpt.h5 and resumed from there. The copy, not the dense model, is then
// ranked and sliced: the dense file is shared by every prune task of its arch, dataset and seed.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/train/trainer.hpp"

namespace passlab::pipeline {

// The penalty added to the loss of a step; `step` is the trainer's global step (restored with
// the checkpoint, so a schedule continues where an interrupted phase stopped). An undefined
// tensor adds nothing.
using Penalty = std::function<at::Tensor(const models::PrunableNetwork& net, int64_t step)>;

struct RegularisedModel {
  models::PrunableNetworkPtr net;  // the trained copy, on the runtime's device, eval mode
  train::FitResult fit;
  double seconds = 0;  // of fit() alone
};

RegularisedModel regularise(const TaskContext& ctx, const TaskData& d, const models::PrunableNetwork& dense,
                            const Penalty& penalty);

// depgraph: the group-norm regulariser (regularise.depgraph_reg, depgraph_alpha) on the groups
// the allocator may prune (prune.prune_residual).
Penalty depgraph_penalty(const config::Config& cfg, const models::Structure& s);
// growreg: the growing L2 coefficient (regularise.growreg_*) on the channels `removal` drops.
Penalty growreg_penalty(const config::Config& cfg, const prune::Allocation& removal, const models::Structure& s);

}  // namespace passlab::pipeline
