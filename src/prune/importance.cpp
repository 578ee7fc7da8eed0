#include "passlab/prune/importance.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>

#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/prune/group_norm.hpp"

namespace passlab::prune {

using models::LayerKind;

Criterion parse_criterion(const std::string& name) {
  if (name == "l1") return Criterion::l1;
  if (name == "l2") return Criterion::l2;
  if (name == "bn_scale") return Criterion::bn_scale;
  if (name == "taylor") return Criterion::taylor;
  if (name == "random") return Criterion::random;
  if (name == "group_l2") return Criterion::group_l2;
  throw ConfigError("unknown importance criterion '" + name + "' (allowed: l1, l2, bn_scale, taylor, random, group_l2)");
}

const char* to_string(Criterion c) {
  switch (c) {
    case Criterion::l1: return "l1";
    case Criterion::l2: return "l2";
    case Criterion::bn_scale: return "bn_scale";
    case Criterion::taylor: return "taylor";
    case Criterion::random: return "random";
    case Criterion::group_l2: return "group_l2";
  }
  return "?";
}

GroupScores weight_importance(const models::PrunableNetwork& net, Criterion c, uint64_t seed) {
  PASSLAB_CHECK(c != Criterion::taylor, InternalError, "taylor importance needs data: call taylor_importance()");
  if (c == Criterion::group_l2) return group_magnitude(net);
  const auto& s = net.structure();
  GroupScores out(s.groups.size());
  at::NoGradGuard no_grad;
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const auto& grp = s.groups[g];
    const int64_t w = grp.width;
    if (c == Criterion::random) {
      Rng rng(derive_seed(seed, g));
      at::Tensor r = at::empty({w}, at::kDouble);
      auto acc = r.accessor<double, 1>();
      for (int64_t i = 0; i < w; ++i) acc[i] = rng.uniform01();
      out[g] = r;
      continue;
    }
    at::Tensor acc = at::zeros({w}, at::kDouble);
    for (int li : grp.producers) {
      const auto& l = s.layers[li];
      if (c == Criterion::bn_scale) {
        if (l.kind != LayerKind::bn) continue;
        acc += net.layer_tensor(li, "weight").detach().to(at::kCPU, at::kDouble).abs();
      } else {
        if (l.kind != LayerKind::conv) continue;
        at::Tensor wt = net.layer_tensor(li, "weight").detach().to(at::kCPU, at::kDouble).flatten(1);
        acc += c == Criterion::l1 ? wt.abs().sum(1) : wt.pow(2).sum(1);
      }
    }
    out[g] = c == Criterion::l2 ? acc.sqrt() : acc;
  }
  return out;
}

GroupScores taylor_importance(models::PrunableNetwork& net, const BatchSource& batches, int64_t max_batches) {
  PASSLAB_CHECK(max_batches >= 1, ConfigError, "taylor importance needs at least one batch");
  const auto& s = net.structure();
  const bool was_training = net.is_training();
  const std::vector<at::Tensor> saved = net.masks();
  at::Device dev = at::kCPU;
  for (const auto& p : net.parameters(true)) {
    dev = p.device();
    break;
  }
  std::vector<at::Tensor> gates(s.groups.size());
  for (size_t g = 0; g < gates.size(); ++g)
    gates[g] = at::ones({s.groups[g].width}, at::TensorOptions().dtype(at::kFloat).device(dev)).requires_grad_(true);
  GroupScores out(s.groups.size());
  for (size_t g = 0; g < out.size(); ++g) out[g] = at::zeros({s.groups[g].width}, at::kDouble);

  net.eval();
  int64_t used = 0;
  try {
    net.set_masks(gates);
    at::Tensor x, y;
    while (used < max_batches && batches(x, y)) {
      at::Tensor logits = net.forward(x.to(dev));
      at::Tensor loss = at::nll_loss(at::log_softmax(logits, 1), y.to(dev));
      // Gradients with respect to the gates only: parameter .grad fields stay untouched.
      auto grads = torch::autograd::grad({loss}, gates, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
      for (size_t g = 0; g < grads.size(); ++g)
        if (grads[g].defined()) out[g] += grads[g].detach().to(at::kCPU, at::kDouble).abs();
      ++used;
    }
  } catch (...) {
    net.set_masks(saved);
    net.train(was_training);
    throw;
  }
  net.set_masks(saved);
  net.train(was_training);
  PASSLAB_CHECK(used > 0, DataError, "taylor importance: the batch source gave no batch");
  PL_DEBUG("taylor importance over {} batches", used);
  return out;
}

}  // namespace passlab::prune
