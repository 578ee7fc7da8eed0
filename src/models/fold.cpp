#include "passlab/models/fold.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"

namespace passlab::models {

struct FoldedNetwork::Step {
  enum class Kind { conv, linear, act, max_pool, avg_pool, enter_block, to_shortcut, add };
  Kind kind = Kind::conv;
  at::Tensor weight, bias;               // conv (BatchNorm and mask folded in), linear
  int64_t kernel = 1, stride = 1, padding = 0, groups = 1;
  int64_t out_h = 1, out_w = 1;          // avg_pool
  double act_max = 0;                    // act: upper clamp, 0 for none
  bool in_place = false;                 // act: its input is a fresh tensor nothing else holds
};

namespace {

using Kind = FoldedNetwork::Step::Kind;

const std::string kAddSuffix = ".add";

FoldedNetwork::Step marker(Kind kind) {
  FoldedNetwork::Step s;
  s.kind = kind;
  return s;
}

// The residual block a layer belongs to: the longest add prefix p with name == p or name starting
// with p + "."; empty outside residual blocks.
std::string block_of(const std::string& name, const std::vector<std::string>& blocks) {
  std::string best;
  for (const auto& p : blocks)
    if (p.size() > best.size() && name.size() > p.size() && name.compare(0, p.size(), p) == 0 && name[p.size()] == '.')
      best = p;
  return best;
}

// A parameter name of the folded module for a layer path ("layer1.0.conv1" → "layer1_0_conv1_weight").
std::string param_name(const std::string& layer, const char* what) {
  std::string n = layer;
  std::replace(n.begin(), n.end(), '.', '_');
  return n + "_" + what;
}

}  // namespace

FoldedNetwork::FoldedNetwork(const PrunableNetwork& src, const FoldOptions& options) : channels_last_(options.channels_last) {
  c10::NoGradGuard no_grad;
  const Structure& s = src.structure();
  std::vector<std::string> blocks;
  for (const auto& l : s.layers)
    if (l.kind == LayerKind::add) {
      PASSLAB_CHECK(l.name.size() > kAddSuffix.size() && l.name.compare(l.name.size() - kAddSuffix.size(), kAddSuffix.size(), kAddSuffix) == 0,
                    InternalError, "fold: residual add '" + l.name + "' is not named <block>" + kAddSuffix);
      blocks.push_back(l.name.substr(0, l.name.size() - kAddSuffix.size()));
    }
  auto tensor = [&](int layer, const char* what) {
    at::Tensor t = src.layer_tensor(layer, what);
    PASSLAB_CHECK(t.defined(), InternalError, "fold: " + s.layers[layer].name + "." + what + " not found");
    return t.detach();
  };
  auto keep = [&](const std::string& layer, const char* what, const at::Tensor& t) {
    return register_parameter(param_name(layer, what), t, /*requires_grad=*/false);
  };

  int cur_group = -1, block_group = -1;  // group of the current tensor; of the current block's input
  std::string block;
  for (int i = 0; i < static_cast<int>(s.layers.size()); ++i) {
    const LayerSpec& l = s.layers[i];
    const std::string b = block_of(l.name, blocks);
    if (b != block) {
      block = b;
      if (!b.empty()) {
        steps_.push_back(marker(Kind::enter_block));
        block_group = cur_group;
      }
    }
    Step st;
    switch (l.kind) {
      case LayerKind::conv: {
        if (l.in_group != cur_group) {  // a shortcut conv: reads the block input, not the current tensor
          PASSLAB_CHECK(!block.empty() && l.in_group == block_group, InternalError,
                        "fold: conv " + l.name + " reads neither the current tensor nor its residual block's input");
          steps_.push_back(marker(Kind::to_shortcut));
        }
        at::Tensor w = tensor(i, "weight");
        const int64_t out = w.size(0);
        at::Tensor bias = l.bias ? tensor(i, "bias") : at::zeros({out}, w.options());
        if (i + 1 < static_cast<int>(s.layers.size()) && s.layers[i + 1].kind == LayerKind::bn) {
          PASSLAB_CHECK(s.layers[i + 1].out_group == l.out_group, InternalError,
                        "fold: BatchNorm " + s.layers[i + 1].name + " does not normalise the output of " + l.name);
          ++i;
          const at::Tensor scale = tensor(i, "weight") / at::sqrt(tensor(i, "running_var") + kBatchNormEps);
          bias = (bias - tensor(i, "running_mean")) * scale + tensor(i, "bias");
          w = w * scale.view({out, 1, 1, 1});
        }
        // The network gates a group right after its BatchNorm (prunable.hpp): a per-channel
        // factor, folded like the BatchNorm's.
        if (const at::Tensor& m = src.mask(l.out_group); m.defined()) {
          const at::Tensor mk = m.detach().to(w.options());
          w = w * mk.view({out, 1, 1, 1});
          bias = bias * mk;
        }
        st.kind = Kind::conv;
        st.weight = keep(l.name, "weight", w.contiguous(channels_last_ ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
        st.bias = keep(l.name, "bias", bias.contiguous());
        st.kernel = l.kernel_h;
        st.stride = l.stride;
        st.padding = l.padding;
        st.groups = l.depthwise ? l.in_channels : 1;
        cur_group = l.out_group;
        break;
      }
      case LayerKind::bn:
        PASSLAB_CHECK(false, InternalError, "fold: BatchNorm " + l.name + " does not follow a conv");
        break;
      case LayerKind::linear:
        st.kind = Kind::linear;
        st.weight = keep(l.name, "weight", tensor(i, "weight").clone());
        st.bias = keep(l.name, "bias", tensor(i, "bias").clone());
        cur_group = l.out_group;
        break;
      case LayerKind::act:
        st.kind = Kind::act;
        st.act_max = l.act_max;
        st.in_place = !steps_.empty() && steps_.back().kind != Kind::enter_block && steps_.back().kind != Kind::to_shortcut;
        break;
      case LayerKind::pool:
        st.kind = l.average ? Kind::avg_pool : Kind::max_pool;
        st.kernel = l.kernel_h;
        st.stride = l.stride;
        st.padding = l.padding;
        st.out_h = l.out_h;
        st.out_w = l.out_w;
        break;
      case LayerKind::add:
        PASSLAB_CHECK(!block.empty(), InternalError, "fold: add " + l.name + " outside a residual block");
        st.kind = Kind::add;
        break;
    }
    steps_.push_back(std::move(st));
  }
  PL_DEBUG("folded {} ({} layers) into {} steps{}", src.spec().arch, s.layers.size(), steps_.size(),
           channels_last_ ? ", channels-last" : "");
}

FoldedNetwork::~FoldedNetwork() = default;

at::Tensor FoldedNetwork::forward(const at::Tensor& input) {
  at::Tensor x = channels_last_ ? input.contiguous(at::MemoryFormat::ChannelsLast) : input;
  at::Tensor block_in, main;  // the current block's input; its main path while the shortcut runs
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Kind::conv:
        x = at::conv2d(x, st.weight, st.bias, {st.stride, st.stride}, {st.padding, st.padding}, {1, 1}, st.groups);
        break;
      case Kind::linear:
        x = at::linear(x.dim() > 2 ? x.flatten(1) : x, st.weight, st.bias);
        break;
      case Kind::act:
        if (st.act_max > 0)
          x = st.in_place ? at::hardtanh_(x, 0.0, st.act_max) : at::hardtanh(x, 0.0, st.act_max);
        else
          x = st.in_place ? at::relu_(x) : at::relu(x);
        break;
      case Kind::max_pool:
        x = at::max_pool2d(x, {st.kernel, st.kernel}, {st.stride, st.stride}, {st.padding, st.padding});
        break;
      case Kind::avg_pool:
        x = at::adaptive_avg_pool2d(x, {st.out_h, st.out_w});
        break;
      case Kind::enter_block:
        block_in = x;
        main = at::Tensor();
        break;
      case Kind::to_shortcut:
        main = x;
        x = block_in;
        break;
      case Kind::add:
        // Both operands are fresh conv outputs or the block input: the main path's tensor is
        // summed into in place (as torchvision's `out += identity`).
        x = main.defined() ? main.add_(x) : x.add_(block_in);
        main = at::Tensor();
        break;
    }
  }
  return x;
}

std::shared_ptr<FoldedNetwork> fold_batchnorm(const PrunableNetwork& net, const FoldOptions& options) {
  return std::make_shared<FoldedNetwork>(net, options);
}

}  // namespace passlab::models
