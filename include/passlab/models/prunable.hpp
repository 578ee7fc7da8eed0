#pragma once
// A Network that declares its channel groups and layer geometry (models/structure.hpp) and
// applies per-group channel masks in its forward pass, right after each group's BatchNorm:
// Ŵ⁽ⁱ⁾ = M⁽ⁱ⁻¹⁾ ⊗ W⁽ⁱ⁾ ⊗ M⁽ⁱ⁾. Masks are plain tensors held by the network (not parameters or
// buffers, so state_dict names stay torchvision's); a mask that requires grad receives
// gradients (PASS's soft/straight-through masks, Taylor importance).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "passlab/models/network.hpp"
#include "passlab/models/structure.hpp"

namespace passlab::models {

// What make_model() needs to rebuild a network: a dense one (widths empty) or a compact one
// (widths[g] = kept channels of group g, e.g. the sizes of a run file's keep indices).
struct ModelSpec {
  std::string arch = "resnet20";  // one of config::known_archs()
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t input_size = 32;  // square input side; geometry and MACs are per image at this size
  std::string stem = "auto";  // cifar | imagenet | auto (cifar below 64 px)
  std::vector<int64_t> widths;  // empty: dense
};

class PrunableNetwork : public Network {
 public:
  explicit PrunableNetwork(ModelSpec spec);

  const ModelSpec& spec() const { return spec_; }
  const Structure& structure() const { return structure_; }
  const std::vector<ChannelGroup>& groups() const { return structure_.groups; }
  int num_groups() const { return structure_.num_groups(); }
  std::vector<int64_t> widths() const { return structure_.widths(); }
  // Module path of the classifier (its .weight/.bias are replaced when class counts differ).
  const std::string& head() const { return head_; }

  // Exact counts of this network as built, or with kept[g] channels per group.
  Counts count() const { return structure_.count(); }
  Counts count(const std::vector<int64_t>& kept) const { return structure_.count(kept); }

  // --- masks ----------------------------------------------------------------------------------
  // mask: [width_g] tensor (0/1 hard or soft values), broadcast over N,H,W; undefined clears it.
  void set_mask(int group, const at::Tensor& mask);
  void set_masks(const std::vector<at::Tensor>& masks);  // one per group (undefined entries: none)
  void clear_masks();
  const at::Tensor& mask(int group) const;
  const std::vector<at::Tensor>& masks() const { return masks_; }
  // Currently set masks' differentiable MAC count (Structure::soft_macs).
  at::Tensor masked_macs() const { return structure_.soft_macs(masks_); }

  // --- per-group weights (views of the live parameters) -----------------------------------
  at::Tensor group_conv_weight(int group) const;  // producing conv weight [width, in/groups, k, k]
  at::Tensor group_bn_weight(int group) const;    // gamma of the BN after it [width]
  at::Tensor group_bn_bias(int group) const;      // beta [width]
  // Parameter (or buffer) of a layer by suffix, e.g. layer_tensor(i, "weight"); undefined if absent.
  at::Tensor layer_tensor(int layer, const std::string& what) const;

 protected:
  // Multiplies x [N,C,H,W] (or [N,C]) by the group's mask when one is set.
  at::Tensor gate(int group, const at::Tensor& x) const;
  // Called by the architecture constructors once their modules and structure are complete.
  void finish_build(Structure s, std::string head);
  // Dense width of group g, or the compact width from spec().widths.
  int64_t width_of(int group, int64_t dense) const;

 private:
  ModelSpec spec_;
  Structure structure_;
  std::string head_;
  std::vector<at::Tensor> masks_;
};

using PrunableNetworkPtr = std::shared_ptr<PrunableNetwork>;

}  // namespace passlab::models
