#pragma once
// Optimizers of the data-parallel trainer, with PyTorch's exact update rules (torch.optim.SGD
// with momentum/dampening 0/nesterov and L2 weight decay; torch.optim.Adam with L2 weight decay
// and bias correction), and with their state exposed as named tensors so a checkpoint can save
// and restore it bit for bit. Gradients are zeroed in place (the reducer's bucket views stay).
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "passlab/config/config.hpp"

namespace passlab::train {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual const char* name() const = 0;
  // One update of every parameter with a defined gradient, at learning rate `lr`.
  virtual void step(double lr) = 0;
  // State as named tensors ("<kind>:<param name>", flat: usable as HDF5 dataset names), and restoring it (same parameters).
  virtual NamedTensors state() const = 0;
  virtual void load_state(const NamedTensors& state) = 0;
  void zero_grad();  // in place; keeps gradient tensors (and views) alive
  const NamedTensors& params() const { return params_; }

 protected:
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  NamedTensors params_;
};

struct SgdOptions {
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
};
struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

std::unique_ptr<Optimizer> make_sgd(NamedTensors params, const SgdOptions& opt);
std::unique_ptr<Optimizer> make_adam(NamedTensors params, const AdamOptions& opt);
// From [dense]/[finetune]: optimizer sgd|adam, momentum, nesterov, weight_decay.
std::unique_ptr<Optimizer> make_optimizer(const config::TrainConfig& cfg, NamedTensors params);

// Learning rate per global step: linear warm-up over warmup_epochs (from lr/warmup_steps up to
// lr), then cosine to 0 over the remaining steps, or step decay by gamma at each milestone
// epoch, or constant.
class LrSchedule {
 public:
  LrSchedule(const config::TrainConfig& cfg, int64_t steps_per_epoch, int64_t total_steps = 0);
  double at(int64_t step) const;
  int64_t warmup_steps() const { return warmup_; }
  int64_t total_steps() const { return total_; }

 private:
  std::string kind_;
  double lr_ = 0.1, gamma_ = 0.1;
  std::vector<int64_t> milestones_;
  int64_t spe_ = 1, warmup_ = 0, total_ = 1;
};

}  // namespace passlab::train
