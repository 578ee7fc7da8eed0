#pragma once
// The inference form of a passlab network, as a deployment runs it: every BatchNorm folded into
// the convolution before it (W' = W * s, b' = (b - running_mean) * s + beta with
// s = gamma / sqrt(running_var + eps), per output channel), channel masks folded in the same way,
// no dropout, optionally channels-last weights. Dense and compact networks get the same
// transformation, so a speed-up measured between two folded networks compares what a user would
// deploy instead of the training form, where BatchNorm costs memory traffic that MACs do not count.
//
// The folded network is run from the declared structure (structure.hpp: layers in forward order,
// pooling and activation geometry), not from the architecture's forward, and reads the
// BatchNorms by their parameter and buffer names (weight, bias, running_mean, running_var), so it
// holds for any BatchNorm module that keeps those names. Residual blocks are found by their `add`
// layers: a block is the layers whose names begin with the add's prefix; a conv inside a block
// that does not read the current tensor's group reads the block input (the downsample shortcut).
// The folded weights are copies: later changes to the source network do not reach them.
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "passlab/models/network.hpp"
#include "passlab/models/prunable.hpp"

namespace passlab::models {

// BatchNorm's epsilon: torch's and torchvision's default, which every passlab BatchNorm uses.
inline constexpr double kBatchNormEps = 1e-5;

struct FoldOptions {
  bool channels_last = false;  // conv weights and activations in NHWC memory format
};

class FoldedNetwork final : public Network {
 public:
  FoldedNetwork(const PrunableNetwork& source, const FoldOptions& options);
  ~FoldedNetwork() override;
  at::Tensor forward(const at::Tensor& x) override;
  bool channels_last() const { return channels_last_; }

  struct Step;  // one operation of the folded forward (fold.cpp)

 private:
  std::vector<Step> steps_;
  bool channels_last_;
};

// Folds `net` (eval-mode semantics: running statistics, masks as set) on its device and dtype.
std::shared_ptr<FoldedNetwork> fold_batchnorm(const PrunableNetwork& net, const FoldOptions& options = {});

}  // namespace passlab::models
