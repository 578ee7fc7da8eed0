#pragma once
// Shared by the models and prune tests.
#include <ATen/Parallel.h>
#include <torch/nn/module.h>

#include <cstdint>

namespace passlab::test {

// One intra-op thread: on a shared 2-core machine, OpenMP teams of 2 slow down badly under load.
inline const bool kOneThread = [] {
  at::set_num_threads(1);
  return true;
}();

// sum(p.numel() for p in module.parameters()), as PyTorch counts parameters.
inline int64_t numel_params(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters(true)) n += p.numel();
  return n;
}

}  // namespace passlab::test
