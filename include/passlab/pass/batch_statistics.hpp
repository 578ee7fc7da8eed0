#pragma once
// BatchNorm in batch-statistics mode for the masked forward of the search (search.bn_mode =
// "batch"): a masked network normalised with the dense running statistics is a broken network
// (at 15 % MACs its CE sat at chance for the whole search); with the batch's statistics it is
// the network a BatchNorm recalibration would give, so the search ranks structures by what they
// can still compute. restore() puts the dense running statistics back (a train-mode forward
// updates them), so neither a dense forward nor the stored dense model ever sees them change;
// call it once the backward of a batch-statistics forward is done (autograd checks their
// version). The destructor restores them and returns every BatchNorm to eval mode.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <memory>
#include <utility>
#include <vector>

namespace passlab::pass {

class BatchStatisticsMode {
 public:
  // Every module of `net` that holds a running_mean buffer counts as a BatchNorm.
  explicit BatchStatisticsMode(torch::nn::Module& net);
  ~BatchStatisticsMode();
  BatchStatisticsMode(const BatchStatisticsMode&) = delete;
  BatchStatisticsMode& operator=(const BatchStatisticsMode&) = delete;
  // Batch statistics (true) or the dense running statistics (false) in the next forwards.
  void set(bool batch);
  // The running statistics (and every other BatchNorm buffer) as they were at construction.
  void restore();
  size_t size() const { return bns_.size(); }

 private:
  std::vector<std::shared_ptr<torch::nn::Module>> bns_;
  std::vector<std::pair<at::Tensor, at::Tensor>> saved_;  // live buffer, its saved copy
};

}  // namespace passlab::pass
