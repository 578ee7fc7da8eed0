#pragma once
// Tiny passlab::models::Network implementations for the trainer's tests.
#include <torch/torch.h>

#include "passlab/models/network.hpp"

namespace passlab::test {

// BN-free MLP on flattened images.
struct Mlp : models::Network {
  Mlp(int64_t in, int64_t hidden, int64_t classes) {
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, classes));
  }
  at::Tensor forward(const at::Tensor& x) override { return fc2->forward(torch::tanh(fc1->forward(x.flatten(1)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// Small CNN with BatchNorm and dropout (buffers and RNG use to checkpoint).
struct SmallCnn : models::Network {
  SmallCnn(int64_t in_ch, int64_t classes, double dropout = 0.2) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_ch, 8, 3).padding(1).bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(8));
    drop = register_module("drop", torch::nn::Dropout(dropout));
    fc = register_module("fc", torch::nn::Linear(8, classes));
  }
  at::Tensor forward(const at::Tensor& x) override {
    auto h = torch::relu(bn->forward(conv->forward(x)));
    h = torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
    return fc->forward(drop->forward(h));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Dropout drop{nullptr};
  torch::nn::Linear fc{nullptr};
};

}  // namespace passlab::test
