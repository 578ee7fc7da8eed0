#include "passlab/prune/group_norm.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "passlab/config/config.hpp"
#include "passlab/core/check.hpp"

namespace passlab::prune {

using models::LayerKind;

at::Tensor coupled_sq_norms(const models::PrunableNetwork& net, int g, int64_t* members) {
  const auto& s = net.structure();
  const auto& grp = s.groups.at(static_cast<size_t>(g));
  at::Tensor acc;
  int64_t n = 0;
  auto add = [&](const at::Tensor& t) {
    acc = acc.defined() ? acc + t : t;
    ++n;
  };
  for (int li : grp.producers) {
    const auto& l = s.layers[li];
    at::Tensor w = net.layer_tensor(li, "weight");
    if (!w.defined()) continue;  // a BatchNorm without affine parameters
    if (l.kind == LayerKind::conv) add(w.flatten(1).pow(2).sum(1));
    else if (l.kind == LayerKind::bn) add(w.pow(2));
  }
  for (int li : grp.consumers) {
    const auto& l = s.layers[li];
    at::Tensor w = net.layer_tensor(li, "weight");
    // A depthwise conv filters each channel once: it counted as a producer.
    if (l.kind == LayerKind::conv && !l.depthwise) add(w.transpose(0, 1).flatten(1).pow(2).sum(1));
    else if (l.kind == LayerKind::linear) add(w.reshape({w.size(0), grp.width, l.in_spatial}).pow(2).sum({0, 2}));
  }
  PASSLAB_CHECK(acc.defined() && acc.size(0) == grp.width, InternalError,
                "group " + grp.name + " has no weighted layer coupled to its channels");
  if (members) *members = n;
  return acc;
}

GroupScores group_magnitude(const models::PrunableNetwork& net) {
  at::NoGradGuard no_grad;
  GroupScores out(static_cast<size_t>(net.num_groups()));
  for (int g = 0; g < net.num_groups(); ++g) {
    int64_t n = 0;
    at::Tensor sq = coupled_sq_norms(net, g, &n).detach().to(at::kCPU, at::kDouble);
    out[static_cast<size_t>(g)] = sq / static_cast<double>(n);
  }
  return out;
}

at::Tensor group_norm_penalty(const models::PrunableNetwork& net, const std::vector<bool>& groups, double reg,
                              double alpha) {
  PASSLAB_CHECK(static_cast<int>(groups.size()) == net.num_groups(), InternalError, "one flag per group expected");
  at::Tensor total;
  for (int g = 0; g < net.num_groups(); ++g) {
    if (!groups[static_cast<size_t>(g)]) continue;
    int64_t n = 0;
    at::Tensor sq = coupled_sq_norms(net, g, &n);
    at::Tensor gamma;
    {
      at::NoGradGuard no_grad;
      at::Tensor norm = (sq.detach() / static_cast<double>(n)).sqrt();
      at::Tensor hi = norm.max(), range = hi - norm.min();
      // All channels alike: (max - n) / (max - min) is 0/0; every channel gets alpha^0.
      gamma = range.item<double>() > 0 ? at::pow(alpha, (hi - norm) / range) : at::ones_like(norm);
    }
    at::Tensor term = (gamma * sq).sum();
    total = total.defined() ? total + term : term;
  }
  if (!total.defined()) return {};
  return 0.5 * reg * total;
}

at::Tensor channel_l2_penalty(const models::PrunableNetwork& net, const std::vector<at::Tensor>& coefficients) {
  PASSLAB_CHECK(static_cast<int>(coefficients.size()) == net.num_groups(), InternalError,
                "one coefficient vector per group expected");
  at::Tensor total;
  for (int g = 0; g < net.num_groups(); ++g) {
    const at::Tensor& c = coefficients[static_cast<size_t>(g)];
    if (!c.defined()) continue;
    at::Tensor sq = coupled_sq_norms(net, g);
    at::Tensor term = (c.to(sq.device(), sq.scalar_type()) * sq).sum();
    total = total.defined() ? total + term : term;
  }
  if (!total.defined()) return {};
  return 0.5 * total;
}

GrowingSchedule GrowingSchedule::from(const config::RegulariseConfig& cfg) {
  return GrowingSchedule{cfg.growreg_reg, cfg.growreg_delta, cfg.growreg_interval, cfg.growreg_cap};
}

double GrowingSchedule::at(int64_t step) const {
  PASSLAB_CHECK(interval >= 1 && step >= 0, InternalError, "growing schedule: interval >= 1 and step >= 0 expected");
  if (start >= cap) return start;
  return std::min(cap, start + delta * static_cast<double>(step / interval));
}

}  // namespace passlab::prune
