#pragma once
// The structure probe: a keep plan's validation top-1 without fine-tuning, in seconds, for
// comparing plans while tuning. The compact network sliced from the dense one keeps the dense
// weights, but its BatchNorm statistics describe the dense network's activations; re-estimating
// them on a few training batches makes the score reflect the structure rather than the mismatch
// of statistics (the same observation that EagleEye's adaptive BN evaluation rests on).
//
//   auto r = pipeline::probe_plan(*dense.net, plan, train_loader, val_loader, 20, comm, device);
//
// The score is read on the validation split only, never on test: it is a tuning signal.
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "passlab/data/batch.hpp"
#include "passlab/models/network.hpp"
#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/train/trainer.hpp"

namespace passlab::dist {
class Communicator;
class Runtime;
}  // namespace passlab::dist

namespace passlab::pipeline {

// Resets the running statistics of every BatchNorm of `net` and re-estimates them over the
// first `batches` batches of `source` (epoch 0), with torch's momentum = None semantics: the
// running mean and variance become the plain averages of the per-batch means and unbiased
// variances. Only the BatchNorm layers run in train mode (dropout stays off, no random number is
// drawn); no gradient, no weight changes. The statistics are then averaged over the group's
// ranks (each rank's batches weigh alike). Leaves `net` in eval mode and each BatchNorm's
// momentum as it was; returns the batches used on this rank (fewer when the source has fewer).
// InternalError for a module with running statistics that is not a BatchNorm2d (its update rule
// is unknown here).
int64_t recalibrate_batchnorm(models::Network& net, data::BatchSource& source, int64_t batches, dist::Communicator& comm,
                              c10::Device device);

struct ProbeResult {
  train::EvalResult val;  // exact over the group, of the recalibrated compact network
  int64_t batches = 0;    // recalibration batches per rank
};

// The compact network of `plan` sliced from `dense` (which is left untouched, statistics
// included), recalibrated on `train` and evaluated on `val` in fp32. The plan alone is scored:
// no prompt in front.
ProbeResult probe_plan(const models::PrunableNetwork& dense, const prune::KeepPlan& plan, data::BatchSource& train,
                       data::BatchSource& val, int64_t batches, dist::Communicator& comm, c10::Device device);

// The probe of a task: eval.probe_batches training batches of finetune.batch_size images (over
// the group), augmented as the fine-tune's, from their own stream (kProbeData), so the task's
// other stages draw the same numbers with or without it. nullopt when eval.probe_batches = 0 or
// the task has no validation split.
std::optional<ProbeResult> probe_task_plan(const TaskContext& ctx, const TaskData& d, const models::PrunableNetwork& dense,
                                           const prune::KeepPlan& plan);

// A finished prune run file probed again (`passlab probe`): its config with `overrides` applied
// (e.g. data.root, eval.probe_batches), its data, the dense model beside it (<results>/dense/
// next to the file's <results>/runs/) and its keep plan (/keep).
struct RunFileProbe {
  std::string run_id, method;
  double budget = 0;
  double val_top1 = -1;  // of the fine-tuned network, from the file's summary (-1: none)
  std::optional<ProbeResult> probe;  // nullopt: the task has no validation split
};
// IOError for a file that is not a complete prune run file or whose dense model is missing;
// ConfigError when eval.probe_batches is 0.
RunFileProbe probe_run_file(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                            const dist::Runtime& rt, dist::Communicator& comm);

}  // namespace passlab::pipeline
