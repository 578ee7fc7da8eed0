#pragma once
// The declared structure of a prunable network (DESIGN.md §2): its channel groups in forward
// order and the geometry of every layer, written by the model definition itself (nothing is
// traced). Everything that counts, masks, scores or slices channels works on this description.
//
// A *channel group* is a set of channels that must be removed together: the output channels
// of one conv (plain), the block outputs of a residual stage tied by additions (residual), or
// an expansion conv tied to the depthwise conv that filters it (MobileNetV2). Each group has
// producers (convs and BNs whose output channels are the group) and consumers (convs and
// linears whose input channels are the group).
//
// Conventions of the counts (DESIGN.md §2):
//  * macs     : multiply-accumulates of conv and linear layers, bias excluded, per image.
//  * ops_full : macs + one op per output element for each bias add, BatchNorm (folded affine),
//               activation and residual add, + kernel-area ops per output element of pooling.
//  * params   : trainable parameters (conv/linear weights and biases, BN gamma and beta), i.e.
//               sum(p.numel() for p in model.parameters()) in PyTorch; BN running stats excluded.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace passlab::models {

enum class LayerKind { conv, bn, linear, act, add, pool };
const char* to_string(LayerKind k);

struct LayerSpec {
  std::string name;  // module path; parameters are name + ".weight" / ".bias" (torchvision names)
  LayerKind kind = LayerKind::conv;
  int in_group = -1;   // channel group read (-1: fixed channels, e.g. the image)
  int out_group = -1;  // channel group written (-1: fixed, e.g. logits); bn/act/add/pool: in == out
  int64_t in_channels = 0;   // as built (a compact network has the kept counts)
  int64_t out_channels = 0;  // as built
  int64_t kernel_h = 1, kernel_w = 1, stride = 1, padding = 0;
  bool depthwise = false;  // conv with groups == in == out channels (in_group == out_group)
  bool bias = false;
  int64_t out_h = 1, out_w = 1;  // output spatial size at the network's input size
  int64_t in_spatial = 1;        // linear: input features per channel of in_group (VGG: 7*7)
  int64_t ops_per_element = 1;   // act/add/pool: ops per output element (pool: kernel area)
  // pool: max-pooling with kernel/stride/padding, or (average) adaptive average pooling to
  // out_h x out_w. act: ReLU clamped above at act_max (MobileNetV2's ReLU6: 6), 0 for none.
  // Together with the layer order they let the folded inference form (fold.hpp) run the network.
  bool average = false;
  double act_max = 0;
};

struct ChannelGroup {
  std::string name;  // stable id used in run files (/keep/<name>): the first producing conv's path
  int64_t width = 0;
  bool residual = false;       // tied by residual additions: prunable only with prune_residual
  std::vector<int> producers;  // layer indices (conv, bn) whose output channels are this group
  std::vector<int> consumers;  // layer indices (conv, linear) whose input channels are this group
  std::vector<int> gated_by;   // layer indices of the BNs after which the group's mask is applied
  int conv = -1;               // the first producing conv (weight statistics)
  int bn = -1;                 // the BN right after that conv
};

struct Counts {
  int64_t macs = 0;
  int64_t params = 0;
  int64_t ops_full = 0;
};

class Structure {
 public:
  std::vector<ChannelGroup> groups;  // forward order (order of first production)
  std::vector<LayerSpec> layers;     // forward order

  int num_groups() const { return static_cast<int>(groups.size()); }
  std::vector<int64_t> widths() const;
  int find_group(const std::string& name) const;  // -1 when absent

  // Exact counts when group g keeps kept[g] channels (kept.size() == num_groups()).
  Counts count(const std::vector<int64_t>& kept) const;
  Counts count() const { return count(widths()); }  // as built
  int64_t macs(const std::vector<int64_t>& kept) const { return count(kept).macs; }

  // Differentiable MACs under soft per-group masks (mask[g]: [width_g] in [0,1], or undefined
  // = all kept). A conv contributes k*k*H*W * sum(m_in) * sum(m_out), a depthwise conv
  // k*k*H*W * sum(m_g), a linear in_spatial * sum(m_in) * out. With 0/1 masks this equals
  // count(kept).macs. Returns a float64 scalar on the masks' device.
  at::Tensor soft_macs(const std::vector<at::Tensor>& masks) const;
  // Same, with a per-group kept amount given directly as scalar tensors (undefined: full width).
  at::Tensor soft_macs_from_kept(const std::vector<at::Tensor>& kept) const;

  // Share of the dense MACs attributed to each group: MACs of the layers whose output channels
  // are the group (PASS step input "the layer's share of dense FLOPs"). Sums to <= 1.
  std::vector<double> mac_share() const;

  // Groups that may be pruned: all but residual ones unless prune_residual.
  std::vector<bool> prunable(bool prune_residual) const;

  // Internal consistency (every layer's groups exist, widths agree with channels).
  void validate() const;
};

}  // namespace passlab::models
