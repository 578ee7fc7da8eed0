#include "passlab/models/prunable.hpp"

#include <ATen/ATen.h>

#include "passlab/core/check.hpp"

namespace passlab::models {

PrunableNetwork::PrunableNetwork(ModelSpec spec) : spec_(std::move(spec)) {}

int64_t PrunableNetwork::width_of(int group, int64_t dense) const {
  if (spec_.widths.empty()) return dense;
  PASSLAB_CHECK(group < static_cast<int>(spec_.widths.size()), ConfigError,
                spec_.arch + ": compact widths list has " + std::to_string(spec_.widths.size()) +
                    " entries but the architecture has more channel groups");
  const int64_t w = spec_.widths[group];
  PASSLAB_CHECK(w >= 1 && w <= dense, ConfigError,
                spec_.arch + ": group " + std::to_string(group) + " keeps " + std::to_string(w) + " channels (allowed 1.." +
                    std::to_string(dense) + ")");
  return w;
}

void PrunableNetwork::finish_build(Structure s, std::string head) {
  s.validate();
  PASSLAB_CHECK(spec_.widths.empty() || spec_.widths.size() == s.groups.size(), ConfigError,
                spec_.arch + ": compact widths list has " + std::to_string(spec_.widths.size()) + " entries, the architecture has " +
                    std::to_string(s.groups.size()) + " channel groups");
  structure_ = std::move(s);
  head_ = std::move(head);
  masks_.assign(structure_.groups.size(), at::Tensor());
}

void PrunableNetwork::set_mask(int group, const at::Tensor& mask) {
  PASSLAB_CHECK(group >= 0 && group < num_groups(), InternalError, "set_mask: no group " + std::to_string(group));
  if (mask.defined())
    PASSLAB_CHECK(mask.dim() == 1 && mask.size(0) == structure_.groups[group].width, InternalError,
                  "set_mask: group " + structure_.groups[group].name + " has width " +
                      std::to_string(structure_.groups[group].width) + ", mask has shape " + std::to_string(mask.numel()));
  masks_[group] = mask;
}

void PrunableNetwork::set_masks(const std::vector<at::Tensor>& masks) {
  PASSLAB_CHECK(masks.size() == masks_.size(), InternalError,
                "set_masks: " + std::to_string(masks.size()) + " masks for " + std::to_string(masks_.size()) + " groups");
  for (size_t g = 0; g < masks.size(); ++g) set_mask(static_cast<int>(g), masks[g]);
}

void PrunableNetwork::clear_masks() {
  for (auto& m : masks_) m = at::Tensor();
}

const at::Tensor& PrunableNetwork::mask(int group) const { return masks_.at(group); }

at::Tensor PrunableNetwork::gate(int group, const at::Tensor& x) const {
  const at::Tensor& m = masks_[group];
  if (!m.defined()) return x;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = m.size(0);
  return x * m.to(x.device(), x.scalar_type()).view(shape);  // no-op when already matching
}

at::Tensor PrunableNetwork::layer_tensor(int layer, const std::string& what) const {
  const std::string key = structure_.layers.at(layer).name + "." + what;
  if (auto* p = named_parameters(true).find(key)) return *p;
  if (auto* b = named_buffers(true).find(key)) return *b;
  return at::Tensor();
}

at::Tensor PrunableNetwork::group_conv_weight(int group) const {
  return layer_tensor(structure_.groups.at(group).conv, "weight");
}
at::Tensor PrunableNetwork::group_bn_weight(int group) const { return layer_tensor(structure_.groups.at(group).bn, "weight"); }
at::Tensor PrunableNetwork::group_bn_bias(int group) const { return layer_tensor(structure_.groups.at(group).bn, "bias"); }

}  // namespace passlab::models
