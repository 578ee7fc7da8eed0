#include "passlab/models/structure.hpp"

#include <ATen/ATen.h>

#include "passlab/core/check.hpp"

namespace passlab::models {

const char* to_string(LayerKind k) {
  switch (k) {
    case LayerKind::conv: return "conv";
    case LayerKind::bn: return "bn";
    case LayerKind::linear: return "linear";
    case LayerKind::act: return "act";
    case LayerKind::add: return "add";
    case LayerKind::pool: return "pool";
  }
  return "?";
}

std::vector<int64_t> Structure::widths() const {
  std::vector<int64_t> w;
  w.reserve(groups.size());
  for (auto& g : groups) w.push_back(g.width);
  return w;
}

int Structure::find_group(const std::string& name) const {
  for (size_t i = 0; i < groups.size(); ++i)
    if (groups[i].name == name) return static_cast<int>(i);
  return -1;
}

namespace {

// Channels of a layer's input/output under `kept`.
int64_t in_ch(const LayerSpec& l, const std::vector<int64_t>& kept) {
  return l.in_group >= 0 ? kept[l.in_group] : l.in_channels;
}
int64_t out_ch(const LayerSpec& l, const std::vector<int64_t>& kept) {
  return l.out_group >= 0 ? kept[l.out_group] : l.out_channels;
}

}  // namespace

Counts Structure::count(const std::vector<int64_t>& kept) const {
  PASSLAB_CHECK(kept.size() == groups.size(), InternalError,
                "count(): " + std::to_string(kept.size()) + " kept counts for " + std::to_string(groups.size()) + " groups");
  Counts c;
  for (auto& l : layers) {
    const int64_t in = in_ch(l, kept), out = out_ch(l, kept), hw = l.out_h * l.out_w;
    switch (l.kind) {
      case LayerKind::conv: {
        const int64_t kk = l.kernel_h * l.kernel_w;
        const int64_t w = l.depthwise ? out * kk : out * in * kk;
        c.params += w + (l.bias ? out : 0);
        c.macs += w * hw;
        c.ops_full += w * hw + (l.bias ? out * hw : 0);
        break;
      }
      case LayerKind::linear: {
        const int64_t w = in * l.in_spatial * out;
        c.params += w + (l.bias ? out : 0);
        c.macs += w;
        c.ops_full += w + (l.bias ? out : 0);
        break;
      }
      case LayerKind::bn:
        c.params += 2 * out;
        c.ops_full += out * hw;
        break;
      case LayerKind::act:
      case LayerKind::add:
      case LayerKind::pool: c.ops_full += out * hw * l.ops_per_element; break;
    }
  }
  return c;
}

at::Tensor Structure::soft_macs_from_kept(const std::vector<at::Tensor>& kept) const {
  PASSLAB_CHECK(kept.size() == groups.size(), InternalError,
                "soft_macs(): " + std::to_string(kept.size()) + " entries for " + std::to_string(groups.size()) + " groups");
  at::TensorOptions opt = at::TensorOptions().dtype(at::kDouble);
  for (auto& k : kept)
    if (k.defined()) {
      opt = opt.device(k.device());
      break;
    }
  auto amount = [&](int g, int64_t fixed) -> at::Tensor {
    if (g >= 0 && kept[g].defined()) return kept[g].to(at::kDouble);
    return at::scalar_tensor(static_cast<double>(g >= 0 ? groups[g].width : fixed), opt);
  };
  // Constant part accumulated as an integer; only terms touching a defined mask become tensor ops.
  int64_t constant = 0;
  at::Tensor total = at::zeros({}, opt);
  for (auto& l : layers) {
    if (l.kind != LayerKind::conv && l.kind != LayerKind::linear) continue;
    const bool din = l.in_group >= 0 && kept[l.in_group].defined();
    const bool dout = l.out_group >= 0 && kept[l.out_group].defined();
    const int64_t in_fixed = l.in_group >= 0 ? groups[l.in_group].width : l.in_channels;
    const int64_t out_fixed = l.out_group >= 0 ? groups[l.out_group].width : l.out_channels;
    int64_t factor;
    if (l.kind == LayerKind::conv) {
      factor = l.kernel_h * l.kernel_w * l.out_h * l.out_w;
      if (l.depthwise) {
        if (dout)
          total = total + amount(l.out_group, l.out_channels) * static_cast<double>(factor);
        else
          constant += factor * out_fixed;
        continue;
      }
    } else {
      factor = l.in_spatial;
    }
    if (!din && !dout) {
      constant += factor * in_fixed * out_fixed;
    } else {
      total = total + amount(l.in_group, l.in_channels) * amount(l.out_group, l.out_channels) * static_cast<double>(factor);
    }
  }
  return total + static_cast<double>(constant);
}

at::Tensor Structure::soft_macs(const std::vector<at::Tensor>& masks) const {
  PASSLAB_CHECK(masks.size() == groups.size(), InternalError,
                "soft_macs(): " + std::to_string(masks.size()) + " masks for " + std::to_string(groups.size()) + " groups");
  std::vector<at::Tensor> kept(masks.size());
  for (size_t g = 0; g < masks.size(); ++g) {
    if (!masks[g].defined()) continue;
    PASSLAB_CHECK(masks[g].numel() == groups[g].width, InternalError,
                  "mask of group " + groups[g].name + " has " + std::to_string(masks[g].numel()) + " entries, width is " +
                      std::to_string(groups[g].width));
    kept[g] = masks[g].sum();
  }
  return soft_macs_from_kept(kept);
}

std::vector<double> Structure::mac_share() const {
  std::vector<double> share(groups.size(), 0.0);
  const std::vector<int64_t> w = widths();
  const double total = static_cast<double>(count(w).macs);
  for (auto& l : layers) {
    if (l.kind != LayerKind::conv || l.out_group < 0) continue;
    const int64_t kk = l.kernel_h * l.kernel_w * l.out_h * l.out_w;
    const int64_t m = l.depthwise ? out_ch(l, w) * kk : out_ch(l, w) * in_ch(l, w) * kk;
    share[l.out_group] += static_cast<double>(m) / total;
  }
  return share;
}

std::vector<bool> Structure::prunable(bool prune_residual) const {
  std::vector<bool> p(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) p[g] = prune_residual || !groups[g].residual;
  return p;
}

void Structure::validate() const {
  auto bad = [](const std::string& what) { throw InternalError("model structure: " + what); };
  const int n = num_groups();
  for (auto& l : layers) {
    if (l.in_group < -1 || l.in_group >= n || l.out_group < -1 || l.out_group >= n) bad("layer " + l.name + " names a missing group");
    if (l.in_group >= 0 && l.kind != LayerKind::linear && groups[l.in_group].width != l.in_channels)
      bad("layer " + l.name + " reads " + std::to_string(l.in_channels) + " channels of group " + groups[l.in_group].name +
          " (width " + std::to_string(groups[l.in_group].width) + ")");
    if (l.in_group >= 0 && l.kind == LayerKind::linear && groups[l.in_group].width * l.in_spatial != l.in_channels)
      bad("linear " + l.name + " in_features do not match its group");
    if (l.out_group >= 0 && groups[l.out_group].width != l.out_channels)
      bad("layer " + l.name + " writes " + std::to_string(l.out_channels) + " channels of group " + groups[l.out_group].name);
    if (l.depthwise && l.in_group != l.out_group) bad("depthwise conv " + l.name + " must read and write one group");
  }
  for (auto& g : groups) {
    if (g.conv < 0 || g.bn < 0) bad("group " + g.name + " has no producing conv/BN");
    if (g.width <= 0) bad("group " + g.name + " has no channels");
  }
}

}  // namespace passlab::models
