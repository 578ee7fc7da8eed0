#pragma once
// The dense network of a task: built fresh (and optionally from pretrained weights) by the
// dense task, loaded exactly as the dense task left it by a prune task.
#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/task_data.hpp"

namespace passlab::pipeline {

// Initialised from the kInit stream, pretrained weights imported with a new head when
// model.pretrained is set; on the runtime's device.
models::PrunableNetworkPtr build_dense(const TaskContext& ctx, const TaskData& d);

struct DenseModel {
  models::PrunableNetworkPtr net;  // on the runtime's device, eval mode
  double top1 = -1;                // test top-1 recorded by the dense task
  models::Counts counts;
};

// From the complete dense file of the task's (arch, dataset, seed).
DenseModel load_dense(const TaskContext& ctx, const TaskData& d);

}  // namespace passlab::pipeline
