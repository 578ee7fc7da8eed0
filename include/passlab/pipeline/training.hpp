#pragma once
// The training stages of the tasks: the dense task trains its network on [dense]; a prune task
// fine-tunes the compact network on [finetune] (with PASS's visual prompt in front when
// finetune.keep_prompt). Both resume from their checkpoint under work/<id>/.
#include <memory>
#include <string>

#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/stage_loaders.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/train/trainer.hpp"

namespace passlab::pass {
class VisualPrompt;
}

namespace passlab::pipeline {

// A finished training stage: its loaders and trainer (kept for the test evaluation) and its
// curves. The trainer refers to the trained network, which must outlive it.
struct TrainedStage {
  TrainingStage stage;
  std::unique_ptr<train::Trainer> trainer;
  train::FitResult fit;
  double seconds = 0;  // of fit() alone
  // Exact test top-1/top-5/loss of the trained network over the group, through the stage's forward.
  train::EvalResult test();
};

// The dense stage as dense.mode says: every parameter (full), only the classifier on the frozen
// backbone in eval mode (head: its parameters and BatchNorm statistics stay bit for bit), or
// dense.head_epochs of the head followed by dense.epochs of everything (head_then_full).
TrainedStage train_dense(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& net);
// Whether parameter `name` of `net` belongs to its classifier (PrunableNetwork::head()).
bool is_head_parameter(const models::PrunableNetwork& net, const std::string& name);
// `prompt` may be null (no prompt kept, or a baseline); it then trains with the network.
TrainedStage finetune(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& compact,
                      pass::VisualPrompt* prompt);

}  // namespace passlab::pipeline
