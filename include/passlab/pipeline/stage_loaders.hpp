#pragma once
// Loaders of a task's stages over this rank's shard of a split, and the loaders and trainer
// options of a training stage ([dense] or [finetune]).
#include <cstdint>
#include <memory>
#include <string>

#include "passlab/config/config.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/train/trainer.hpp"

namespace passlab::pipeline {

// A loader of `view` for this rank: `global_batch` images per step over the whole run group,
// on the runtime's device; `seed` orders (and augments) a training split. A training loader
// gives each rank whole BatchNorm groups (model.ghost_batch) of every global batch, so the
// groups do not depend on the number of ranks.
std::unique_ptr<data::Loader> make_loader(const TaskContext& ctx, const TaskData& d, const data::SplitView& view,
                                          bool train, int64_t global_batch, uint64_t seed);

// One training stage: its loaders over train/val/test and its trainer options (checkpoint
// work/<id>/<name>.ckpt.h5, removed when the stage completes).
struct TrainingStage {
  std::unique_ptr<data::Loader> train, val, test;
  train::TrainerOptions options;
  data::BatchSource* eval() const;  // the validation loader, or null when the split is empty
};

TrainingStage make_training_stage(const TaskContext& ctx, const TaskData& d, const config::TrainConfig& tc,
                                  const std::string& name, uint64_t seed);

}  // namespace passlab::pipeline
