// Helper for tests/python/test_group_norm_reference.py, which checks passlab's group norms
// against Torch-Pruning on the same weights. Writes OUT.h5 holding:
//   attrs arch, num_classes, input_size, reg, alpha, lr, prune_residual
//   /weights/<name>            the random network (BN scales and statistics randomised too)
//   /importance/<group>        group_magnitude (criterion group_l2), per channel
//   /depgraph/<name>           every tensor after one SGD step (lr, no momentum) on group_norm_penalty
//   /growreg_coef/<group>      per-channel coefficients of channel_l2_penalty (random, 0 on half)
//   /growreg/<name>            every tensor after one SGD step on channel_l2_penalty
// Usage: group_norm_dump ARCH OUT.h5 [prune_residual: 0|1]
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "passlab/core/error.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/prune/group_norm.hpp"
#include "passlab/tensorio/tensor_h5.hpp"

using namespace passlab;

namespace {

constexpr int64_t kClasses = 10, kInputSize = 32;
constexpr double kReg = 0.05, kAlpha = 16.0, kLr = 1.0;

// One plain SGD step of `penalty` from the network's current weights, written under `group`;
// the weights are restored afterwards.
void step_and_write(models::PrunableNetwork& net, const at::Tensor& penalty, io::Group& group) {
  auto params = net.parameters();
  std::vector<at::Tensor> before;
  for (auto& p : params) {
    before.push_back(p.detach().clone());
    p.mutable_grad() = at::zeros_like(p);
  }
  penalty.backward();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : params) p.sub_(kLr * p.grad());
  }
  models::save_weights(net, group);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(before[i]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ARCH OUT.h5 [prune_residual 0|1]\n", argv[0]);
    return 2;
  }
  try {
    const std::string arch = argv[1];
    const bool prune_residual = argc > 3 && std::string(argv[3]) == "1";
    torch::manual_seed(5);
    auto net = models::make_model(arch, kClasses, 3, kInputSize);
    {
      torch::NoGradGuard no_grad;
      for (auto& kv : net->named_modules()) {
        if (auto* bn = kv.value()->as<torch::nn::BatchNorm2d>()) {
          bn->weight.uniform_(0.2, 1.5);
          bn->bias.uniform_(-0.3, 0.3);
          bn->running_mean.uniform_(-0.2, 0.2);
          bn->running_var.uniform_(0.5, 1.5);
        }
      }
    }
    auto file = io::File::create(argv[2]);
    auto& root = file.root();
    root.set_attr("arch", arch);
    root.set_attr("num_classes", kClasses);
    root.set_attr("input_size", kInputSize);
    root.set_attr("reg", kReg);
    root.set_attr("alpha", kAlpha);
    root.set_attr("lr", kLr);
    root.set_attr("prune_residual", static_cast<int64_t>(prune_residual));
    auto weights = root.create_group("weights");
    models::save_weights(*net, weights);

    const auto& s = net->structure();
    auto importance = root.create_group("importance");
    const prune::GroupScores scores = prune::group_magnitude(*net);
    for (size_t g = 0; g < s.groups.size(); ++g) io::write_tensor(importance, s.groups[g].name, scores[g]);

    const std::vector<bool> prunable = s.prunable(prune_residual);
    auto depgraph = root.create_group("depgraph");
    step_and_write(*net, prune::group_norm_penalty(*net, prunable, kReg, kAlpha), depgraph);

    auto coef_group = root.create_group("growreg_coef");
    std::vector<at::Tensor> coef(s.groups.size());
    for (size_t g = 0; g < s.groups.size(); ++g) {
      if (!prunable[g]) continue;
      const int64_t w = s.groups[g].width;
      coef[g] = at::rand({w}) * (at::rand({w}) < 0.5).to(at::kFloat);
      io::write_tensor(coef_group, s.groups[g].name, coef[g]);
    }
    auto growreg = root.create_group("growreg");
    step_and_write(*net, prune::channel_l2_penalty(*net, coef), growreg);
    file.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "group_norm_dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
