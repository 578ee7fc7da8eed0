#pragma once
// Everything written into dense and run files (DESIGN.md §4): provenance, weights, curves,
// summary, and for a prune task its masks and keep indices (and PASS's hypernetwork and
// prompt). The group leader writes through io::AtomicWriter and commits with
// io::run_file::commit_result: the digest is written and the file re-read from disk before the
// rename, and a non-finite value refuses it (TrainingDiverged), so no unusable file is ever
// recorded complete. Every rank returns once the file is complete on disk.
#include <optional>

#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/dense_model.hpp"
#include "passlab/pipeline/evaluation.hpp"
#include "passlab/pipeline/keep_plan.hpp"
#include "passlab/pipeline/probe.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/train/trainer.hpp"

namespace passlab::pipeline {

// <output>/dense/<dense_id>.h5.
void write_dense_file(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& net, const train::FitResult& fit,
                      const train::EvalResult& test);

// What a prune task produced, for its run file.
struct PruneOutcome {
  DenseModel& dense;
  const MethodPlan& plan;
  double search_seconds = 0;  // finding and agreeing on the plan
  models::PrunableNetwork& compact;
  const TrainedStage& finetuned;
  const PrunedEvaluation& evaluation;
  const std::optional<ProbeResult>& probe;  // the structure probe, when it ran
  const TaskData& data;                     // its input normalisation is recorded
};

// <output>/runs/<run_id>.h5.
void write_run_file(const TaskContext& ctx, const PruneOutcome& out);

}  // namespace passlab::pipeline
