// Models: declared structure, MAC/parameter counts against published values and against the
// modules actually built, soft (differentiable) MACs, masks, weight import errors.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>

#include <cmath>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "models/model_test_util.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using namespace passlab::models;

namespace {

using passlab::test::numel_params;

}  // namespace

// Published numbers (torchvision model docs / original papers). Convention: MACs of conv and
// linear layers, bias excluded ("GFLOPS" in torchvision's tables are these MACs); params are all
// trainable parameters including BN affine.
TEST(ModelCounts, PublishedImageNetValues) {
  struct Case {
    const char* arch;
    double gmacs;      // published, rounded as published
    double tol;        // half a unit of the last published digit
    int64_t params;    // torchvision sum(p.numel())
  };
  const Case cases[] = {{"resnet18", 1.814, 0.0005, 11689512},
                        {"resnet50", 4.09, 0.005, 25557032},
                        {"vgg16_bn", 15.47, 0.005, 138365992},
                        {"mobilenet_v2", 0.30, 0.005, 3504872}};
  for (const auto& c : cases) {
    auto net = make_model(c.arch, 1000, 3, 224, "imagenet");
    Counts k = net->count();
    EXPECT_NEAR(static_cast<double>(k.macs) / 1e9, c.gmacs, c.tol) << c.arch << " macs " << k.macs;
    EXPECT_EQ(k.params, c.params) << c.arch;
    EXPECT_EQ(k.params, numel_params(*net)) << c.arch;  // the declared structure matches the modules
    EXPECT_GT(k.ops_full, k.macs) << c.arch;
    std::printf("%-13s 224px: %.4f G MACs, %.4f G ops incl. BN/act, %.3f M params\n", c.arch, k.macs / 1e9, k.ops_full / 1e9,
                k.params / 1e6);
  }
}

TEST(ModelCounts, CifarResNets) {
  // ResNet-56 (He et al. 2016) on 32x32: 125 M MACs with option-A (parameter-free) shortcuts;
  // passlab uses option B (1x1 conv + BN) whose two projections add 2 * 131072 MACs.
  auto r56 = make_model("resnet56", 10, 3, 32);
  Counts c56 = r56->count();
  EXPECT_NEAR(c56.macs / 1e6, 125.0, 1.0) << c56.macs;
  EXPECT_EQ(c56.params, numel_params(*r56));
  // Option-A parameter count 853,018 (+ projections 16*32 + 32*64 weights and 2*(32+64) BN).
  EXPECT_EQ(c56.params, 853018 + 512 + 2048 + 192);
  auto r20 = make_model("resnet20", 10, 3, 32);
  EXPECT_NEAR(r20->count().macs / 1e6, 40.8 + 0.26, 0.3);  // 40.8 M with option A
  EXPECT_EQ(r20->count().params, 269722 + 512 + 2048 + 192);
  std::printf("resnet56 32px: %.3f M MACs, %.4f M params; resnet20: %.3f M MACs\n", c56.macs / 1e6, c56.params / 1e6,
              r20->count().macs / 1e6);
}

TEST(ModelCounts, HandComputedSmallCase) {
  // ResNet-20 stem at 32x32: conv 3->16 3x3 = 3*16*9*1024 MACs; first block conv1 16->16 3x3.
  auto net = make_model("resnet20", 10, 3, 32);
  const auto& s = net->structure();
  std::vector<int64_t> kept = s.widths();
  const int64_t dense = s.macs(kept);
  // Removing one channel of layer1.0.conv1's group removes 16*9*1024 MACs from conv1 (its
  // output) and 16*9*1024 from conv2 (its input), and 2 params from its BN.
  const int g = s.find_group("layer1.0.conv1");
  ASSERT_GE(g, 0);
  kept[g] -= 1;
  EXPECT_EQ(dense - s.macs(kept), 2 * 16 * 9 * 1024);
  EXPECT_EQ(net->count().params - s.count(kept).params, 2 * 16 * 9 + 2);
  // Stem group is the residual group of stage 1 (identity shortcuts).
  const int stem = s.find_group("conv1");
  ASSERT_GE(stem, 0);
  EXPECT_TRUE(s.groups[stem].residual);
  EXPECT_FALSE(s.groups[g].residual);
}

TEST(ModelStructure, EveryArchBuildsAndIsConsistent) {
  for (const auto& arch : config::known_archs()) {
    for (const char* stem : {"cifar", "imagenet"}) {
      // The imagenet VGG head (25088x4096 FC) is slow to build: one of them is enough here.
      if (std::string(stem) == "imagenet" && arch.rfind("vgg", 0) == 0 && arch != "vgg11_bn") continue;
      const int64_t size = std::string(stem) == "cifar" ? (arch.rfind("vgg", 0) == 0 ? 32 : 16) : 64;
      auto net = make_model(arch, 7, 3, size, stem);
      const auto& s = net->structure();
      ASSERT_GT(s.num_groups(), 0) << arch;
      EXPECT_EQ(net->count().params, numel_params(*net)) << arch << " " << stem;
      for (int g = 0; g < s.num_groups(); ++g) {
        EXPECT_TRUE(net->group_conv_weight(g).defined()) << arch << " " << s.groups[g].name;
        EXPECT_EQ(net->group_conv_weight(g).size(0), s.groups[g].width);
        EXPECT_EQ(net->group_bn_weight(g).size(0), s.groups[g].width);
        EXPECT_FALSE(s.groups[g].gated_by.empty());
      }
      double share = 0;
      for (double x : s.mac_share()) share += x;
      EXPECT_LE(share, 1.0 + 1e-9);
      EXPECT_GT(share, arch.rfind("vgg", 0) == 0 ? 0.5 : 0.9) << arch;  // VGG: the FC head is not a group's
      at::Tensor y = net->forward(at::randn({2, 3, size, size}));
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7})) << arch;
      EXPECT_EQ(net->head().empty(), false);
    }
  }
}

TEST(ModelStructure, TorchvisionNamesAndGroups) {
  auto r50 = make_model("resnet50", 1000, 3, 224, "imagenet");
  auto names = r50->named_parameters(true);
  for (const char* k : {"conv1.weight", "bn1.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                        "layer4.2.conv3.weight", "layer4.2.bn3.weight", "fc.weight", "fc.bias"})
    EXPECT_NE(names.find(k), nullptr) << k;
  EXPECT_NE(r50->named_buffers(true).find("layer3.5.bn2.running_var"), nullptr);
  // ResNet-50: 16 blocks x 2 inner groups + 4 stage groups + stem (not tied: layer1.0 projects).
  EXPECT_EQ(r50->num_groups(), 16 * 2 + 4 + 1);
  EXPECT_FALSE(r50->groups()[r50->structure().find_group("conv1")].residual);

  auto mb = make_model("mobilenet_v2", 1000, 3, 224, "imagenet");
  auto mn = mb->named_parameters(true);
  for (const char* k : {"features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                        "features.1.conv.2.weight", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
                        "features.2.conv.2.weight", "features.2.conv.3.bias", "features.18.0.weight", "features.18.1.weight",
                        "classifier.1.weight"})
    EXPECT_NE(mn.find(k), nullptr) << k;
  // The stem group is tied to features.1's depthwise conv: both gate it.
  const auto& st = mb->groups()[0];
  EXPECT_EQ(st.name, "features.0.0");
  EXPECT_EQ(st.gated_by.size(), 2u);
  const int hidden = mb->structure().find_group("features.2.conv.0.0");
  ASSERT_GE(hidden, 0);
  EXPECT_EQ(mb->groups()[hidden].width, 96);
  EXPECT_EQ(mb->groups()[hidden].producers.size(), 4u);  // expand conv+BN, depthwise conv+BN

  auto vgg = make_model("vgg16_bn", 1000, 3, 224, "imagenet");
  auto vn = vgg->named_parameters(true);
  for (const char* k : {"features.0.weight", "features.0.bias", "features.1.weight", "features.40.weight", "features.41.running_var",
                        "classifier.0.weight", "classifier.3.weight", "classifier.6.bias"})
    EXPECT_TRUE(vn.find(k) != nullptr || vgg->named_buffers(true).find(k) != nullptr) << k;
  EXPECT_EQ(vgg->num_groups(), 13);
}

TEST(ModelStructure, CompactWidths) {
  auto dense = make_model("resnet20", 10, 3, 32);
  ModelSpec spec = dense->spec();
  spec.widths = dense->widths();
  for (auto& w : spec.widths) w = std::max<int64_t>(1, w / 2);
  auto compact = make_model(spec);
  EXPECT_EQ(compact->widths(), spec.widths);
  EXPECT_EQ(compact->count().params, numel_params(*compact));
  EXPECT_EQ(compact->count().macs, dense->count(spec.widths).macs);
  EXPECT_EQ(compact->forward(at::randn({1, 3, 32, 32})).size(1), 10);
  spec.widths.pop_back();
  EXPECT_THROW(make_model(spec), ConfigError);
  spec.widths = dense->widths();
  spec.widths[0] = 17;  // wider than dense
  EXPECT_THROW(make_model(spec), ConfigError);
  EXPECT_THROW(make_model("resnet99", 10, 3, 32), ConfigError);
  EXPECT_THROW(make_model("vgg16_bn", 10, 1, 28), ConfigError);  // 5 max-pools need >= 32 px
  EXPECT_THROW(make_model("resnet20", 10, 3, 32, "tiny"), ConfigError);
}

TEST(SoftMacs, EqualsExactCountForHardMasksAndHasAnalyticGradient) {
  for (const char* arch : {"resnet20", "mobilenet_v2", "vgg11_bn", "resnet50"}) {
    auto net = make_model(arch, 10, 3, 32);
    const auto& s = net->structure();
    std::vector<at::Tensor> masks(s.num_groups());
    std::vector<int64_t> kept(s.num_groups());
    at::manual_seed(3);
    for (int g = 0; g < s.num_groups(); ++g) {
      at::Tensor m = (at::rand({s.groups[g].width}) > 0.4).to(at::kFloat);
      m[0] = 1;
      masks[g] = m;
      kept[g] = m.sum().item<int64_t>();
    }
    EXPECT_EQ(s.soft_macs(masks).item<double>(), static_cast<double>(s.macs(kept))) << arch;
    // No masks at all: dense count.
    EXPECT_EQ(s.soft_macs(std::vector<at::Tensor>(s.num_groups())).item<double>(), static_cast<double>(s.count().macs));
  }
  // Gradient: d MACs / d m_c of group g equals (MACs with one channel more) - (MACs) at hard
  // masks, because MACs are bilinear in per-group kept counts (no conv reads and writes one
  // non-depthwise group).
  auto net = make_model("resnet20", 10, 3, 32);
  const auto& s = net->structure();
  const int g = s.find_group("layer2.1.conv1");
  std::vector<at::Tensor> masks(s.num_groups());
  for (int i = 0; i < s.num_groups(); ++i) masks[i] = at::ones({s.groups[i].width}, at::kFloat);
  masks[g] = at::ones({s.groups[g].width}, at::kFloat).requires_grad_(true);
  at::Tensor f = s.soft_macs(masks);
  auto grad = torch::autograd::grad({f}, {masks[g]})[0];
  std::vector<int64_t> kept = s.widths();
  const int64_t full = s.macs(kept);
  kept[g] -= 1;
  EXPECT_DOUBLE_EQ(grad[5].item<double>(), static_cast<double>(full - s.macs(kept)));
}

TEST(Masks, HardMaskZeroesChannelsAfterBN) {
  auto net = make_model("vgg11_bn", 10, 3, 32);
  net->eval();
  at::Tensor x = at::randn({2, 3, 32, 32});
  at::Tensor y0 = net->forward(x);
  std::vector<at::Tensor> masks(net->num_groups());
  for (int g = 0; g < net->num_groups(); ++g) masks[g] = at::ones({net->groups()[g].width});
  net->set_masks(masks);
  EXPECT_TRUE(at::allclose(net->forward(x), y0));  // all-ones masks change nothing
  EXPECT_EQ(net->masked_macs().item<double>(), static_cast<double>(net->count().macs));
  masks.back() = at::zeros({net->groups().back().width});
  net->set_mask(net->num_groups() - 1, masks.back());
  // Last conv group fully masked: logits are the classifier bias.
  auto b = net->named_parameters(true).find("classifier.0.bias");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(at::allclose(net->forward(x), b->unsqueeze(0).expand({2, 10}), 1e-6, 1e-6));
  EXPECT_THROW(net->set_mask(0, at::ones({3})), InternalError);
  net->clear_masks();
  EXPECT_TRUE(at::allclose(net->forward(x), y0));
}

TEST(Weights, RoundTripAndClearErrors) {
  test::TempDir tmp;
  auto a = make_model("resnet20", 10, 3, 32);
  {
    auto f = io::File::create(tmp / "w.h5");
    auto g = f.root().create_group("weights");
    save_weights(*a, g);
  }
  auto b = make_model("resnet20", 10, 3, 32);
  auto rep = load_weights(*b, tmp / "w.h5", LoadOptions{b->head()});
  EXPECT_EQ(rep.loaded, static_cast<int64_t>(state_dict(*a).size()));
  a->eval();
  b->eval();
  at::Tensor x = at::randn({2, 3, 32, 32});
  EXPECT_TRUE(at::equal(a->forward(x), b->forward(x)));

  // Another class count: the head keeps its initialisation, everything else is loaded.
  auto c = make_model("resnet20", 100, 3, 32);
  auto rep2 = load_weights(*c, tmp / "w.h5", LoadOptions{c->head()});
  EXPECT_TRUE(rep2.head_replaced);
  EXPECT_EQ(rep2.loaded, rep.loaded - 2);
  LoadOptions strict_head{c->head()};
  strict_head.replace_head = false;
  EXPECT_THROW(load_weights(*c, tmp / "w.h5", strict_head), IOError);

  // Missing / extra / mis-shaped tensors are named in the error.
  auto sd = state_dict(*a);
  io::NamedTensors missing(sd.begin() + 1, sd.end());
  try {
    load_state(*b, missing, LoadOptions{b->head()}, "test");
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find(sd[0].first), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  io::NamedTensors extra = sd;
  extra.emplace_back("layer9.0.conv1.weight", at::zeros({1}));
  EXPECT_THROW(load_state(*b, extra, LoadOptions{b->head()}), IOError);
  LoadOptions lenient{b->head()};
  lenient.allow_extra = true;
  EXPECT_EQ(load_state(*b, extra, lenient).extra.size(), 1u);
  io::NamedTensors bad = sd;
  bad[0].second = at::zeros({3, 3});
  try {
    load_state(*b, bad, LoadOptions{b->head()}, "test");
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("mis-shaped"), std::string::npos) << e.what();
  }
  // A stem mismatch (imagenet weights into a cifar-stem net) is an error, not a head swap.
  auto d = make_model("resnet20", 10, 3, 64, "imagenet");
  EXPECT_THROW(load_weights(*d, tmp / "w.h5", LoadOptions{d->head()}), IOError);
  EXPECT_THROW(load_weights(*d, tmp / "missing.h5"), IOError);
}
