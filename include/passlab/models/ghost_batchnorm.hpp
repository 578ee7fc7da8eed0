#pragma once
// BatchNorm2d with ghost batches: in training, statistics are taken over groups of `group`
// consecutive samples of the batch, so a global batch split over any number of ranks (each rank
// holding whole groups, data/sampler.hpp) is normalised by the same set of groups.
//
// Parameters and buffers are those of torch::nn::BatchNorm2d under the same names (weight, bias,
// running_mean, running_var, num_batches_tracked), so run files, slicing, importance and the
// Python exporter see no difference; in eval mode the forward pass is BatchNorm2d's own call.
//
// Running statistics: each step moves them towards the mean over the groups of this rank's
// batch, scaled by `stat_weight` = (this rank's share of the global batch) x (ranks). The
// running statistics are linear in their updates, so the group mean of the per-rank buffers
// (the trainer averages floating buffers at epoch ends and before checkpoints) equals the update
// from the mean over all groups of the global batch: the same on 1, 2 or 3 ranks up to rounding,
// with no communication per step.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>

namespace passlab::models {

enum class BatchNormMode {
  standard,      // training: ghost-batch statistics, running statistics updated; eval: running statistics
  batch_frozen,  // ghost-batch statistics in train and eval mode, running statistics never touched
};

class GhostBatchNorm2dImpl : public torch::nn::Module {
 public:
  explicit GhostBatchNorm2dImpl(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  at::Tensor forward(const at::Tensor& x);
  // weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0 (BatchNorm2d's).
  void reset_parameters();
  // running_mean 0, running_var 1, num_batches_tracked 0; weight and bias kept.
  void reset_running_stats();

  int64_t channels() const { return channels_; }
  int64_t group = 0;         // samples per statistics group; 0: the whole batch (plain BatchNorm)
  double stat_weight = 1.0;  // factor of this rank's running-statistics update (see above)
  BatchNormMode mode = BatchNormMode::standard;
  // Factor of each running-statistics update; none: the cumulative average over the batches
  // since the last reset (1/k at the k-th), as BatchNorm2d's momentum = None (the probe's
  // recalibration).
  std::optional<double> momentum;

  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  int64_t channels_;
  double eps_;
};
TORCH_MODULE(GhostBatchNorm2d);

// Settings applied to every GhostBatchNorm2d inside `net`. The trainer sets the group and the
// weight for its stage; the PASS search sets BatchNormMode::batch_frozen on its frozen backbone
// (normalises with batch statistics without changing the dense model's running statistics).
void set_batchnorm_group(torch::nn::Module& net, int64_t group);
void set_batchnorm_stat_weight(torch::nn::Module& net, double weight);
void set_batchnorm_mode(torch::nn::Module& net, BatchNormMode mode);

}  // namespace passlab::models
