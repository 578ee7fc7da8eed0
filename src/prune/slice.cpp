#include "passlab/prune/slice.hpp"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>

#include "passlab/core/check.hpp"
#include "passlab/models/factory.hpp"

namespace passlab::prune {

using models::LayerKind;
using models::Structure;

KeepPlan full_plan(const Structure& s) {
  KeepPlan p(s.groups.size());
  for (size_t g = 0; g < s.groups.size(); ++g) {
    p[g].resize(s.groups[g].width);
    for (int64_t i = 0; i < s.groups[g].width; ++i) p[g][i] = i;
  }
  return p;
}

std::vector<int64_t> kept_counts(const KeepPlan& plan) {
  std::vector<int64_t> c;
  c.reserve(plan.size());
  for (auto& k : plan) c.push_back(static_cast<int64_t>(k.size()));
  return c;
}

void validate_plan(const Structure& s, const KeepPlan& plan) {
  PASSLAB_CHECK(plan.size() == s.groups.size(), InternalError,
                "keep plan has " + std::to_string(plan.size()) + " groups, the network has " + std::to_string(s.groups.size()));
  for (size_t g = 0; g < plan.size(); ++g) {
    const auto& k = plan[g];
    const std::string where = "keep plan of group " + s.groups[g].name;
    PASSLAB_CHECK(!k.empty(), InternalError, where + " keeps no channel");
    for (size_t i = 0; i < k.size(); ++i) {
      PASSLAB_CHECK(k[i] >= 0 && k[i] < s.groups[g].width, InternalError,
                    where + ": index " + std::to_string(k[i]) + " outside 0.." + std::to_string(s.groups[g].width - 1));
      PASSLAB_CHECK(i == 0 || k[i] > k[i - 1], InternalError, where + ": indices must be sorted and unique");
    }
  }
}

std::vector<at::Tensor> plan_masks(const Structure& s, const KeepPlan& plan, const at::Device& device) {
  validate_plan(s, plan);
  std::vector<at::Tensor> masks(plan.size());
  for (size_t g = 0; g < plan.size(); ++g) {
    at::Tensor m = at::zeros({s.groups[g].width}, at::kFloat);
    auto acc = m.accessor<float, 1>();
    for (int64_t i : plan[g]) acc[i] = 1.0f;
    masks[g] = m.to(device);
  }
  return masks;
}

namespace {
at::Device device_of(const torch::nn::Module& m) {
  for (const auto& p : m.parameters(true)) return p.device();
  return at::kCPU;
}
}  // namespace

void apply_plan_masks(models::PrunableNetwork& net, const KeepPlan& plan) {
  net.set_masks(plan_masks(net.structure(), plan, device_of(net)));
}

models::ModelSpec compact_spec(const models::ModelSpec& dense_spec, const KeepPlan& plan) {
  models::ModelSpec s = dense_spec;
  s.widths = kept_counts(plan);
  return s;
}

models::PrunableNetworkPtr make_compact_shell(const models::ModelSpec& dense_spec, const KeepPlan& plan) {
  auto dense_like = dense_spec;
  dense_like.widths.clear();
  auto net = models::make_model(compact_spec(dense_like, plan));
  PASSLAB_CHECK(net->num_groups() == static_cast<int>(plan.size()), ConfigError,
                dense_spec.arch + ": keep plan has " + std::to_string(plan.size()) + " groups, the architecture " +
                    std::to_string(net->num_groups()));
  return net;
}

models::PrunableNetworkPtr make_compact(const models::PrunableNetwork& dense, const KeepPlan& plan) {
  const Structure& s = dense.structure();
  validate_plan(s, plan);
  PASSLAB_CHECK(dense.spec().widths.empty(), InternalError,
                "make_compact: slice the dense network (this one is already compact; compose plans instead)");
  auto compact = make_compact_shell(dense.spec(), plan);
  const at::Device dev = device_of(dense);

  auto src = dense.named_parameters(true);
  auto src_buf = dense.named_buffers(true);
  auto find_src = [&](const std::string& key) -> at::Tensor {
    if (auto* p = src.find(key)) return *p;
    if (auto* b = src_buf.find(key)) return *b;
    return at::Tensor();
  };
  std::map<std::string, at::Tensor> dst;
  for (const auto& p : compact->named_parameters(true)) dst[p.key()] = p.value();
  for (const auto& b : compact->named_buffers(true)) dst[b.key()] = b.value();
  std::map<std::string, bool> done;

  auto idx = [&](int g) { return at::tensor(plan[g], at::kLong).to(dev); };
  auto put = [&](const std::string& key, at::Tensor t) {
    auto it = dst.find(key);
    PASSLAB_CHECK(it != dst.end(), InternalError, "make_compact: compact network has no tensor " + key);
    PASSLAB_CHECK(it->second.sizes() == t.sizes(), InternalError,
                  "make_compact: sliced " + key + " does not fit the compact network's tensor");
    it->second.copy_(t);
    done[key] = true;
  };

  at::NoGradGuard no_grad;
  for (const auto& l : s.layers) {
    if (l.kind == LayerKind::conv) {
      at::Tensor w = find_src(l.name + ".weight");
      if (l.out_group >= 0) w = w.index_select(0, idx(l.out_group));
      if (!l.depthwise && l.in_group >= 0) w = w.index_select(1, idx(l.in_group));
      put(l.name + ".weight", w);
      if (l.bias) {
        at::Tensor b = find_src(l.name + ".bias");
        put(l.name + ".bias", l.out_group >= 0 ? b.index_select(0, idx(l.out_group)) : b);
      }
    } else if (l.kind == LayerKind::bn) {
      at::Tensor i = idx(l.out_group);
      for (const char* what : {"weight", "bias", "running_mean", "running_var"})
        put(l.name + "." + what, find_src(l.name + "." + what).index_select(0, i));
      put(l.name + ".num_batches_tracked", find_src(l.name + ".num_batches_tracked"));
    } else if (l.kind == LayerKind::linear) {
      at::Tensor w = find_src(l.name + ".weight");
      if (l.in_group >= 0) {
        // Input feature f = channel * in_spatial + position (flatten of [C, H, W]).
        at::Tensor ch = idx(l.in_group).unsqueeze(1) * l.in_spatial + at::arange(l.in_spatial, at::TensorOptions().dtype(at::kLong).device(dev));
        w = w.index_select(1, ch.flatten());
      }
      put(l.name + ".weight", w);
      if (l.bias) put(l.name + ".bias", find_src(l.name + ".bias"));
    }
  }
  for (auto& [key, t] : dst)
    PASSLAB_CHECK(done.count(key), InternalError, "make_compact: tensor " + key + " is not covered by the declared structure");
  compact->to(dev);
  compact->train(dense.is_training());
  return compact;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> named_plan(const Structure& s, const KeepPlan& plan) {
  validate_plan(s, plan);
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (size_t g = 0; g < plan.size(); ++g) out.emplace_back(s.groups[g].name, plan[g]);
  return out;
}

KeepPlan plan_from_named(const Structure& s, const std::vector<std::pair<std::string, std::vector<int64_t>>>& named) {
  KeepPlan plan = full_plan(s);
  std::vector<bool> seen(s.groups.size(), false);
  for (auto& [name, keep] : named) {
    const int g = s.find_group(name);
    PASSLAB_CHECK(g >= 0, IOError, "keep plan names group '" + name + "', which this architecture does not have");
    plan[g] = keep;
    seen[g] = true;
  }
  for (size_t g = 0; g < seen.size(); ++g)
    PASSLAB_CHECK(seen[g], IOError, "keep plan lacks group '" + s.groups[g].name + "'");
  validate_plan(s, plan);
  return plan;
}

}  // namespace passlab::prune
