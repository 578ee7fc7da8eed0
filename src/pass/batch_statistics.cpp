#include "passlab/pass/batch_statistics.hpp"

#include <torch/torch.h>

namespace passlab::pass {

BatchStatisticsMode::BatchStatisticsMode(torch::nn::Module& net) {
  for (auto& m : net.modules(/*include_self=*/true)) {
    auto buffers = m->named_buffers(/*recurse=*/false);
    if (!buffers.contains("running_mean")) continue;
    bns_.push_back(m);
    for (auto& kv : buffers) saved_.emplace_back(kv.value(), kv.value().clone());
  }
}

BatchStatisticsMode::~BatchStatisticsMode() {
  restore();
  set(false);
}

void BatchStatisticsMode::set(bool batch) {
  for (auto& m : bns_) m->train(batch);
}

void BatchStatisticsMode::restore() {
  torch::NoGradGuard ng;
  for (auto& [live, copy] : saved_) live.copy_(copy);
}

}  // namespace passlab::pass
