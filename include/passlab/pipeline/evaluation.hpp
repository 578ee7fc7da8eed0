#pragma once
// What a prune task reports about its compact network: test accuracy, exact cost counts and
// its speed-up over the dense network, timed in interleaved rounds (prune/speedup.hpp).
#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/dense_model.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/pipeline/training.hpp"
#include "passlab/prune/speedup.hpp"

namespace passlab::pipeline {

struct PrunedEvaluation {
  train::EvalResult test;
  models::Counts counts;  // of the compact network
  prune::SpeedupResult speed;
};

// Evaluates the fine-tuned network on the test split, then measures the speed-up ([eval]).
PrunedEvaluation evaluate_and_measure(const TaskContext& ctx, const TaskData& d, TrainedStage& finetuned,
                                      DenseModel& dense, models::PrunableNetwork& compact);

}  // namespace passlab::pipeline
