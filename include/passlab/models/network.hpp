#pragma once
// Base class of every passlab model: a torch::nn::Module with a virtual forward, so that the
// trainer, the pruning core and PASS can drive any architecture through one type.
#include <torch/nn/module.h>

namespace passlab::models {

class Network : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;
  virtual at::Tensor forward(const at::Tensor& x) = 0;
};

}  // namespace passlab::models
