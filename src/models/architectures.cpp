// All architectures in one translation unit (each one including the LibTorch module headers
// costs tens of seconds to compile). Every constructor builds its modules and declares its
// structure in forward order through Builder; widths come from ModelSpec::widths when the
// network is a compact one.
#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <functional>

#include "passlab/config/config.hpp"
#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/ghost_batchnorm.hpp"

namespace passlab::models {
namespace {

using torch::nn::Conv2d;
using torch::nn::Linear;
using torch::nn::Module;

struct Geo {
  int64_t h, w;
};

// Output size of a conv/pool window (0 when the window does not fit; floor division).
Geo out_geo(Geo g, int64_t k, int64_t s, int64_t p) {
  auto one = [&](int64_t n) { return n + 2 * p < k ? 0 : (n + 2 * p - k) / s + 1; };
  return {one(g.h), one(g.w)};
}
Geo max_pool_geo(Geo g, int64_t k, int64_t s, int64_t p) { return out_geo(g, k, s, p); }

// Records the structure while creating modules, so that a layer's geometry and groups cannot
// drift from the module that is actually built.
class Builder {
 public:
  using WidthFn = std::function<int64_t(int, int64_t)>;
  Builder(std::string arch, WidthFn width) : arch_(std::move(arch)), width_(std::move(width)) {}

  Structure s;

  int group(int64_t dense_width) {
    const int id = static_cast<int>(s.groups.size());
    ChannelGroup g;
    g.width = width_(id, dense_width);
    s.groups.push_back(std::move(g));
    return id;
  }
  int64_t ch(int g) const { return s.groups[g].width; }
  void mark_residual(int g) { s.groups[g].residual = true; }

  static std::shared_ptr<Module> sub(Module& parent, const std::string& name) {
    return parent.register_module(name, std::make_shared<Module>());
  }

  Conv2d conv(Module& parent, const std::string& local, const std::string& path, int in_g, int64_t in_fixed, int out_g,
              int64_t k, int64_t stride, int64_t pad, Geo& geo, bool depthwise = false, bool bias = false) {
    const int64_t in = in_g >= 0 ? ch(in_g) : in_fixed, out = ch(out_g);
    auto opt = torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias);
    if (depthwise) opt.groups(in);
    auto m = parent.register_module(local, Conv2d(opt));
    torch::nn::init::kaiming_normal_(m->weight, 0.0, torch::kFanOut, torch::kReLU);
    if (bias) torch::nn::init::zeros_(m->bias);
    geo = out_geo(geo, k, stride, pad);
    check_geo(path, geo);
    LayerSpec l;
    l.name = path;
    l.kind = LayerKind::conv;
    l.in_group = in_g;
    l.out_group = out_g;
    l.in_channels = in;
    l.out_channels = out;
    l.kernel_h = l.kernel_w = k;
    l.stride = stride;
    l.padding = pad;
    l.depthwise = depthwise;
    l.bias = bias;
    l.out_h = geo.h;
    l.out_w = geo.w;
    const int idx = add(std::move(l));
    auto& g = s.groups[out_g];
    g.producers.push_back(idx);
    if (g.conv < 0) {
      g.conv = idx;
      g.name = path;
    }
    if (in_g >= 0) s.groups[in_g].consumers.push_back(idx);
    return m;
  }

  GhostBatchNorm2d bn(Module& parent, const std::string& local, const std::string& path, int g, const Geo& geo) {
    auto m = parent.register_module(local, GhostBatchNorm2d(ch(g)));
    LayerSpec l;
    l.name = path;
    l.kind = LayerKind::bn;
    l.in_group = l.out_group = g;
    l.in_channels = l.out_channels = ch(g);
    l.out_h = geo.h;
    l.out_w = geo.w;
    const int idx = add(std::move(l));
    auto& grp = s.groups[g];
    grp.producers.push_back(idx);
    grp.gated_by.push_back(idx);
    if (grp.bn < 0) grp.bn = idx;
    return m;
  }

  Linear linear(Module& parent, const std::string& local, const std::string& path, int in_g, int64_t in_spatial,
                int64_t in_fixed, int64_t out) {
    const int64_t in = in_g >= 0 ? ch(in_g) * in_spatial : in_fixed;
    auto m = parent.register_module(local, Linear(in, out));
    LayerSpec l;
    l.name = path;
    l.kind = LayerKind::linear;
    l.in_group = in_g;
    l.in_channels = in;
    l.out_channels = out;
    l.in_spatial = in_g >= 0 ? in_spatial : 1;
    l.bias = true;
    const int idx = add(std::move(l));
    if (in_g >= 0) s.groups[in_g].consumers.push_back(idx);
    return m;
  }

  // Elementwise records (ops_full only): activation, residual add, pooling.
  LayerSpec& op(LayerKind kind, const std::string& path, int g, int64_t fixed_channels, const Geo& geo,
                int64_t ops_per_element = 1) {
    LayerSpec l;
    l.name = path;
    l.kind = kind;
    l.in_group = l.out_group = g;
    l.in_channels = l.out_channels = g >= 0 ? ch(g) : fixed_channels;
    l.out_h = geo.h;
    l.out_w = geo.w;
    l.ops_per_element = ops_per_element;
    if (kind == LayerKind::act) l.act_max = act_max;
    return s.layers[add(std::move(l))];
  }
  // Max-pooling k x k, stride s, padding p: advances geo.
  void max_pool(const std::string& path, int g, Geo& geo, int64_t k, int64_t stride, int64_t pad) {
    geo = max_pool_geo(geo, k, stride, pad);
    check_geo(path, geo);
    LayerSpec& l = op(LayerKind::pool, path, g, 0, geo, k * k);
    l.kernel_h = l.kernel_w = k;
    l.stride = stride;
    l.padding = pad;
  }
  // Adaptive average pooling to `out`, ops_per_element input elements averaged per output.
  void avg_pool(const std::string& path, int g, const Geo& out, int64_t ops_per_element) {
    op(LayerKind::pool, path, g, 0, out, ops_per_element).average = true;
  }
  double act_max = 0;  // upper clamp of the activations recorded from now on (0: plain ReLU)

  void check_geo(const std::string& path, const Geo& geo) const {
    PASSLAB_CHECK(geo.h >= 1 && geo.w >= 1, ConfigError,
                  arch_ + ": the input is too small (feature map vanishes at " + path + "); use a larger input_size");
  }

 private:
  int add(LayerSpec l) {
    s.layers.push_back(std::move(l));
    return static_cast<int>(s.layers.size()) - 1;
  }
  std::string arch_;
  WidthFn width_;
};


// ------------------------------------------------------------------------------------------
// ResNet (torchvision names: conv1 bn1 layerN.B.{conv1,bn1,conv2,bn2[,conv3,bn3],downsample.{0,1}} fc)
class ResNet final : public PrunableNetwork {
 public:
  ResNet(const ModelSpec& spec, bool bottleneck, std::vector<int64_t> blocks, std::vector<int64_t> planes, bool imagenet_stem)
      : PrunableNetwork(spec), imagenet_stem_(imagenet_stem) {
    Builder b(spec.arch, [this](int g, int64_t d) { return width_of(g, d); });
    Geo geo{spec.input_size, spec.input_size};
    const int64_t stem_width = planes[0];
    g_stem_ = b.group(stem_width);
    if (imagenet_stem)
      conv1_ = b.conv(*this, "conv1", "conv1", -1, spec.in_channels, g_stem_, 7, 2, 3, geo);
    else
      conv1_ = b.conv(*this, "conv1", "conv1", -1, spec.in_channels, g_stem_, 3, 1, 1, geo);
    bn1_ = b.bn(*this, "bn1", "bn1", g_stem_, geo);
    b.op(LayerKind::act, "relu", g_stem_, 0, geo);
    if (imagenet_stem) b.max_pool("maxpool", g_stem_, geo, 3, 2, 1);
    const int64_t expansion = bottleneck ? 4 : 1;
    int in_g = g_stem_;
    int64_t in_dense = stem_width;
    for (size_t st = 0; st < blocks.size(); ++st) {
      const std::string lname = "layer" + std::to_string(st + 1);
      auto layer = Builder::sub(*this, lname);
      for (int64_t i = 0; i < blocks[st]; ++i) {
        const int64_t stride = (st > 0 && i == 0) ? 2 : 1;
        const std::string path = lname + "." + std::to_string(i);
        auto mod = Builder::sub(*layer, std::to_string(i));
        Block blk;
        blk.bottleneck = bottleneck;
        const int64_t p = planes[st], out_dense = p * expansion;
        const bool down = stride != 1 || in_dense != out_dense;
        Geo g_in = geo;
        if (bottleneck) {
          blk.g1 = b.group(p);
          blk.c1 = b.conv(*mod, "conv1", path + ".conv1", in_g, 0, blk.g1, 1, 1, 0, geo);
          blk.b1 = b.bn(*mod, "bn1", path + ".bn1", blk.g1, geo);
          b.op(LayerKind::act, path + ".relu1", blk.g1, 0, geo);
          blk.g2 = b.group(p);
          blk.c2 = b.conv(*mod, "conv2", path + ".conv2", blk.g1, 0, blk.g2, 3, stride, 1, geo);
          blk.b2 = b.bn(*mod, "bn2", path + ".bn2", blk.g2, geo);
          b.op(LayerKind::act, path + ".relu2", blk.g2, 0, geo);
          blk.gout = down ? b.group(out_dense) : in_g;
          blk.c3 = b.conv(*mod, "conv3", path + ".conv3", blk.g2, 0, blk.gout, 1, 1, 0, geo);
          blk.b3 = b.bn(*mod, "bn3", path + ".bn3", blk.gout, geo);
        } else {
          blk.g1 = b.group(p);
          blk.c1 = b.conv(*mod, "conv1", path + ".conv1", in_g, 0, blk.g1, 3, stride, 1, geo);
          blk.b1 = b.bn(*mod, "bn1", path + ".bn1", blk.g1, geo);
          b.op(LayerKind::act, path + ".relu1", blk.g1, 0, geo);
          blk.gout = down ? b.group(out_dense) : in_g;
          blk.c2 = b.conv(*mod, "conv2", path + ".conv2", blk.g1, 0, blk.gout, 3, 1, 1, geo);
          blk.b2 = b.bn(*mod, "bn2", path + ".bn2", blk.gout, geo);
        }
        if (down) {
          auto ds = Builder::sub(*mod, "downsample");
          Geo gd = g_in;
          blk.dc = b.conv(*ds, "0", path + ".downsample.0", in_g, 0, blk.gout, 1, stride, 0, gd);
          blk.db = b.bn(*ds, "1", path + ".downsample.1", blk.gout, gd);
        }
        // Block outputs are summed with the shortcut: the output group is tied across the stage.
        b.mark_residual(blk.gout);
        b.op(LayerKind::add, path + ".add", blk.gout, 0, geo);
        b.op(LayerKind::act, path + ".relu", blk.gout, 0, geo);
        in_g = blk.gout;
        in_dense = out_dense;
        blocks_.push_back(blk);
      }
    }
    b.avg_pool("avgpool", in_g, Geo{1, 1}, geo.h * geo.w);
    fc_ = b.linear(*this, "fc", "fc", in_g, 1, 0, spec.num_classes);
    finish_build(std::move(b.s), "fc");
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = at::relu(gate(g_stem_, bn1_->forward(conv1_->forward(input))));
    if (imagenet_stem_) x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
    for (auto& blk : blocks_) {
      at::Tensor out = at::relu(gate(blk.g1, blk.b1->forward(blk.c1->forward(x))));
      if (blk.bottleneck) {
        out = at::relu(gate(blk.g2, blk.b2->forward(blk.c2->forward(out))));
        out = gate(blk.gout, blk.b3->forward(blk.c3->forward(out)));
      } else {
        out = gate(blk.gout, blk.b2->forward(blk.c2->forward(out)));
      }
      at::Tensor shortcut = blk.dc ? gate(blk.gout, blk.db->forward(blk.dc->forward(x))) : x;
      x = at::relu(out + shortcut);
    }
    x = at::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc_->forward(x);
  }

 private:
  struct Block {
    Conv2d c1{nullptr}, c2{nullptr}, c3{nullptr}, dc{nullptr};
    GhostBatchNorm2d b1{nullptr}, b2{nullptr}, b3{nullptr}, db{nullptr};
    int g1 = -1, g2 = -1, gout = -1;
    bool bottleneck = false;
  };
  bool imagenet_stem_;
  int g_stem_ = -1;
  Conv2d conv1_{nullptr};
  GhostBatchNorm2d bn1_{nullptr};
  std::vector<Block> blocks_;
  Linear fc_{nullptr};
};

// ------------------------------------------------------------------------------------------
// VGG-BN (torchvision names: features.<i> conv/bn, classifier.{0,3,6}); cifar head: classifier.0
class VGG final : public PrunableNetwork {
 public:
  VGG(const ModelSpec& spec, const std::vector<int64_t>& cfg, bool imagenet_head) : PrunableNetwork(spec), imagenet_head_(imagenet_head) {
    Builder b(spec.arch, [this](int g, int64_t d) { return width_of(g, d); });
    Geo geo{spec.input_size, spec.input_size};
    auto features = Builder::sub(*this, "features");
    int in_g = -1;
    int64_t idx = 0;
    for (int64_t v : cfg) {
      const std::string i = std::to_string(idx);
      if (v == 0) {  // max-pool
        b.max_pool("features." + i, in_g, geo, 2, 2, 0);
        steps_.push_back({});
        idx += 1;
        continue;
      }
      Step st;
      st.g = b.group(v);
      st.conv = b.conv(*features, i, "features." + i, in_g, spec.in_channels, st.g, 3, 1, 1, geo, false, /*bias=*/true);
      const std::string j = std::to_string(idx + 1);
      st.bn = b.bn(*features, j, "features." + j, st.g, geo);
      b.op(LayerKind::act, "features." + std::to_string(idx + 2), st.g, 0, geo);
      steps_.push_back(st);
      in_g = st.g;
      idx += 3;
    }
    last_g_ = in_g;
    auto classifier = Builder::sub(*this, "classifier");
    if (imagenet_head) {
      b.avg_pool("avgpool", in_g, Geo{7, 7}, std::max<int64_t>(1, (geo.h + 6) / 7) * std::max<int64_t>(1, (geo.w + 6) / 7));
      fc0_ = b.linear(*classifier, "0", "classifier.0", in_g, 49, 0, 4096);
      b.op(LayerKind::act, "classifier.1", -1, 4096, Geo{1, 1});
      fc3_ = b.linear(*classifier, "3", "classifier.3", -1, 1, 4096, 4096);
      b.op(LayerKind::act, "classifier.4", -1, 4096, Geo{1, 1});
      fc6_ = b.linear(*classifier, "6", "classifier.6", -1, 1, 4096, spec.num_classes);
      finish_build(std::move(b.s), "classifier.6");
    } else {
      b.avg_pool("avgpool", in_g, Geo{1, 1}, geo.h * geo.w);
      fc0_ = b.linear(*classifier, "0", "classifier.0", in_g, 1, 0, spec.num_classes);
      finish_build(std::move(b.s), "classifier.0");
    }
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = input;
    for (auto& st : steps_) {
      if (!st.conv)
        x = at::max_pool2d(x, {2, 2}, {2, 2});
      else
        x = at::relu(gate(st.g, st.bn->forward(st.conv->forward(x))));
    }
    if (!imagenet_head_) return fc0_->forward(at::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    x = at::adaptive_avg_pool2d(x, {7, 7}).flatten(1);
    x = at::dropout(at::relu(fc0_->forward(x)), 0.5, is_training());
    x = at::dropout(at::relu(fc3_->forward(x)), 0.5, is_training());
    return fc6_->forward(x);
  }

 private:
  struct Step {
    Conv2d conv{nullptr};
    GhostBatchNorm2d bn{nullptr};
    int g = -1;
  };
  bool imagenet_head_;
  std::vector<Step> steps_;
  int last_g_ = -1;
  Linear fc0_{nullptr}, fc3_{nullptr}, fc6_{nullptr};
};

// ------------------------------------------------------------------------------------------
// MobileNetV2 (torchvision names: features.0.{0,1}, features.N.conv.*, features.18.{0,1}, classifier.1)
class MobileNetV2 final : public PrunableNetwork {
 public:
  MobileNetV2(const ModelSpec& spec, bool imagenet_stem) : PrunableNetwork(spec) {
    Builder b(spec.arch, [this](int g, int64_t d) { return width_of(g, d); });
    b.act_max = 6;  // ReLU6 throughout
    Geo geo{spec.input_size, spec.input_size};
    auto features = Builder::sub(*this, "features");
    {
      auto f0 = Builder::sub(*features, "0");
      g_stem_ = b.group(32);
      stem_conv_ = b.conv(*f0, "0", "features.0.0", -1, spec.in_channels, g_stem_, 3, imagenet_stem ? 2 : 1, 1, geo);
      stem_bn_ = b.bn(*f0, "1", "features.0.1", g_stem_, geo);
      b.op(LayerKind::act, "features.0.2", g_stem_, 0, geo);
    }
    struct Setting {
      int64_t t, c, n, s;
    };
    const Setting settings[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int in_g = g_stem_;
    int64_t in_dense = 32;
    int64_t idx = 1;
    for (const auto& st : settings) {
      for (int64_t i = 0; i < st.n; ++i) {
        int64_t stride = i == 0 ? st.s : 1;
        if (!imagenet_stem && st.c == 24 && i == 0) stride = 1;  // CIFAR variant: 8x total downsampling
        const std::string path = "features." + std::to_string(idx);
        auto blockmod = Builder::sub(*features, std::to_string(idx));
        auto conv = Builder::sub(*blockmod, "conv");
        const std::string cp = path + ".conv.";
        IR blk;
        blk.expand = st.t != 1;
        blk.use_res = stride == 1 && in_dense == st.c;
        int k = 0;  // running index inside .conv
        if (blk.expand) {
          blk.g_hidden = b.group(in_dense * st.t);
          auto c0 = Builder::sub(*conv, "0");
          blk.pw = b.conv(*c0, "0", cp + "0.0", in_g, 0, blk.g_hidden, 1, 1, 0, geo);
          blk.pw_bn = b.bn(*c0, "1", cp + "0.1", blk.g_hidden, geo);
          b.op(LayerKind::act, cp + "0.2", blk.g_hidden, 0, geo);
          k = 1;
        } else {
          blk.g_hidden = in_g;  // the depthwise conv filters the input group directly (tied)
        }
        auto cdw = Builder::sub(*conv, std::to_string(k));
        blk.dw = b.conv(*cdw, "0", cp + std::to_string(k) + ".0", blk.g_hidden, 0, blk.g_hidden, 3, stride, 1, geo, true);
        blk.dw_bn = b.bn(*cdw, "1", cp + std::to_string(k) + ".1", blk.g_hidden, geo);
        b.op(LayerKind::act, cp + std::to_string(k) + ".2", blk.g_hidden, 0, geo);
        blk.g_out = blk.use_res ? in_g : b.group(st.c);
        blk.proj = b.conv(*conv, std::to_string(k + 1), cp + std::to_string(k + 1), blk.g_hidden, 0, blk.g_out, 1, 1, 0, geo);
        blk.proj_bn = b.bn(*conv, std::to_string(k + 2), cp + std::to_string(k + 2), blk.g_out, geo);
        if (blk.use_res) {
          b.mark_residual(blk.g_out);
          b.op(LayerKind::add, path + ".add", blk.g_out, 0, geo);
        }
        blocks_.push_back(blk);
        in_g = blk.g_out;
        in_dense = st.c;
        ++idx;
      }
    }
    {
      auto f = Builder::sub(*features, std::to_string(idx));
      const std::string p = "features." + std::to_string(idx);
      g_last_ = b.group(1280);
      last_conv_ = b.conv(*f, "0", p + ".0", in_g, 0, g_last_, 1, 1, 0, geo);
      last_bn_ = b.bn(*f, "1", p + ".1", g_last_, geo);
      b.op(LayerKind::act, p + ".2", g_last_, 0, geo);
    }
    b.avg_pool("avgpool", g_last_, Geo{1, 1}, geo.h * geo.w);
    auto classifier = Builder::sub(*this, "classifier");
    fc_ = b.linear(*classifier, "1", "classifier.1", g_last_, 1, 0, spec.num_classes);
    finish_build(std::move(b.s), "classifier.1");
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = relu6(gate(g_stem_, stem_bn_->forward(stem_conv_->forward(input))));
    for (auto& blk : blocks_) {
      at::Tensor h = x;
      if (blk.expand) h = relu6(gate(blk.g_hidden, blk.pw_bn->forward(blk.pw->forward(h))));
      h = relu6(gate(blk.g_hidden, blk.dw_bn->forward(blk.dw->forward(h))));
      h = gate(blk.g_out, blk.proj_bn->forward(blk.proj->forward(h)));
      x = blk.use_res ? x + h : h;
    }
    x = relu6(gate(g_last_, last_bn_->forward(last_conv_->forward(x))));
    x = at::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    x = at::dropout(x, 0.2, is_training());
    return fc_->forward(x);
  }

 private:
  static at::Tensor relu6(const at::Tensor& x) { return at::hardtanh(x, 0.0, 6.0); }
  struct IR {
    Conv2d pw{nullptr}, dw{nullptr}, proj{nullptr};
    GhostBatchNorm2d pw_bn{nullptr}, dw_bn{nullptr}, proj_bn{nullptr};
    int g_hidden = -1, g_out = -1;
    bool expand = false, use_res = false;
  };
  int g_stem_ = -1, g_last_ = -1;
  Conv2d stem_conv_{nullptr}, last_conv_{nullptr};
  GhostBatchNorm2d stem_bn_{nullptr}, last_bn_{nullptr};
  std::vector<IR> blocks_;
  Linear fc_{nullptr};
};

std::vector<int64_t> vgg_cfg(const std::string& arch) {
  // 0 = max-pool
  if (arch == "vgg11_bn") return {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
  if (arch == "vgg16_bn") return {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  return {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0};  // vgg19_bn
}

}  // namespace

std::string resolve_stem(const std::string& arch, const std::string& stem, int64_t input_size) {
  if (stem == "cifar" || stem == "imagenet") return stem;
  PASSLAB_CHECK(stem == "auto", ConfigError, "model.stem = '" + stem + "' (allowed: cifar, imagenet, auto)");
  return input_size < 64 ? "cifar" : "imagenet";
}

PrunableNetworkPtr make_model(const ModelSpec& spec) {
  const auto& archs = config::known_archs();
  PASSLAB_CHECK(std::find(archs.begin(), archs.end(), spec.arch) != archs.end(), ConfigError,
                "unknown architecture '" + spec.arch + "'");
  PASSLAB_CHECK(spec.num_classes >= 1 && spec.in_channels >= 1 && spec.input_size >= 1, ConfigError,
                spec.arch + ": num_classes, in_channels and input_size must be positive");
  const bool imagenet = resolve_stem(spec.arch, spec.stem, spec.input_size) == "imagenet";
  PrunableNetworkPtr net;
  const std::string& a = spec.arch;
  if (a == "resnet18") net = std::make_shared<ResNet>(spec, false, std::vector<int64_t>{2, 2, 2, 2}, std::vector<int64_t>{64, 128, 256, 512}, imagenet);
  else if (a == "resnet34") net = std::make_shared<ResNet>(spec, false, std::vector<int64_t>{3, 4, 6, 3}, std::vector<int64_t>{64, 128, 256, 512}, imagenet);
  else if (a == "resnet50") net = std::make_shared<ResNet>(spec, true, std::vector<int64_t>{3, 4, 6, 3}, std::vector<int64_t>{64, 128, 256, 512}, imagenet);
  else if (a == "resnet20") net = std::make_shared<ResNet>(spec, false, std::vector<int64_t>{3, 3, 3}, std::vector<int64_t>{16, 32, 64}, imagenet);
  else if (a == "resnet56") net = std::make_shared<ResNet>(spec, false, std::vector<int64_t>{9, 9, 9}, std::vector<int64_t>{16, 32, 64}, imagenet);
  else if (a.rfind("vgg", 0) == 0) net = std::make_shared<VGG>(spec, vgg_cfg(a), imagenet);
  else if (a == "mobilenet_v2") net = std::make_shared<MobileNetV2>(spec, imagenet);
  else throw NotImplementedError("architecture '" + a + "' is listed in the config but not built by passlab::models");
  PL_DEBUG("built {} ({} stem, {} px, {} classes): {} channel groups, {} layers", a, imagenet ? "imagenet" : "cifar",
           spec.input_size, spec.num_classes, net->num_groups(), net->structure().layers.size());
  return net;
}

PrunableNetworkPtr make_model(const std::string& arch, int64_t num_classes, int64_t in_channels, int64_t input_size,
                              const std::string& stem) {
  ModelSpec s;
  s.arch = arch;
  s.num_classes = num_classes;
  s.in_channels = in_channels;
  s.input_size = input_size;
  s.stem = stem;
  return make_model(s);
}

}  // namespace passlab::models
