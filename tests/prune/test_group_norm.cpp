// Group norms (prune/group_norm.hpp): the group L2 importance against hand-counted sums, the
// gradients of the two sparsity penalties on the coupled slices, and the growing schedule.
// tests/python/test_group_norm_reference.py compares the same functions with Torch-Pruning.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/prune/group_norm.hpp"

using namespace passlab;
using namespace passlab::prune;

namespace {

int layer_index(const models::PrunableNetwork& net, const std::string& name) {
  const auto& layers = net.structure().layers;
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == name) return static_cast<int>(i);
  ADD_FAILURE() << "no layer " << name;
  return -1;
}

at::Tensor weight(const models::PrunableNetwork& net, const std::string& layer) {
  return net.layer_tensor(layer_index(net, layer), "weight");
}

}  // namespace

TEST(GroupNorm, GroupMagnitudeIsTheMeanOverCoupledLayersOfTheSquaredWeights) {
  auto net = models::make_model("resnet20", 10, 3, 8);
  {
    at::NoGradGuard g;
    for (auto& p : net->parameters()) p.fill_(1.0);
    for (const auto& l : net->structure().layers)
      if (l.kind == models::LayerKind::bn) weight(*net, l.name).fill_(2.0);
  }
  const auto scores = group_magnitude(*net);
  const int g = net->structure().find_group("layer1.0.conv1");
  ASSERT_GE(g, 0);
  // layer1.0.conv1's filter (16 inputs x 3x3 ones) + bn1's scale 2^2 + conv2's input slice
  // (16 outputs x 3x3 ones), over 3 layers.
  const double expected = (16 * 9 + 4 + 16 * 9) / 3.0;
  ASSERT_EQ(scores[g].size(0), 16);
  for (int64_t c = 0; c < 16; ++c) EXPECT_NEAR(scores[g][c].item<double>(), expected, 1e-9);
  int64_t members = 0;
  coupled_sq_norms(*net, g, &members);
  EXPECT_EQ(members, 3);
  EXPECT_EQ(parse_criterion("group_l2"), Criterion::group_l2);
  EXPECT_TRUE(at::equal(weight_importance(*net, Criterion::group_l2)[g], scores[g]));
}

TEST(GroupNorm, GrowingPenaltyGradientIsTheCoefficientTimesEveryCoupledWeightOfARemovedChannel) {
  at::manual_seed(3);
  auto net = models::make_model("resnet20", 10, 3, 8);
  const auto& s = net->structure();
  const int g = s.find_group("layer2.1.conv1");
  ASSERT_GE(g, 0);
  std::vector<at::Tensor> coef(s.groups.size());
  coef[g] = at::zeros({s.groups[g].width});
  coef[g][3] = 0.7;  // channel 3 removed, the others kept
  for (auto& p : net->parameters()) p.mutable_grad() = at::zeros_like(p);
  channel_l2_penalty(*net, coef).backward();
  const at::Tensor w1 = weight(*net, "layer2.1.conv1"), b1 = weight(*net, "layer2.1.bn1"),
                   w2 = weight(*net, "layer2.1.conv2");
  EXPECT_TRUE(at::allclose(w1.grad()[3], 0.7 * w1.detach()[3]));
  EXPECT_NEAR(b1.grad()[3].item<double>(), 0.7 * b1[3].item<double>(), 1e-7);
  EXPECT_TRUE(at::allclose(w2.grad().select(1, 3), 0.7 * w2.detach().select(1, 3)));
  // Nothing else: the kept channels' slices and every other layer.
  EXPECT_EQ(at::cat({w1.grad().slice(0, 0, 3), w1.grad().slice(0, 4)}).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(weight(*net, "layer2.0.conv1").grad().abs().sum().item<double>(), 0.0);
}

TEST(GroupNorm, GroupNormPenaltyWeighsTheWeakestChannelAlphaTimesTheStrongest) {
  at::manual_seed(4);
  auto net = models::make_model("vgg11_bn", 10, 3, 32);
  const auto& s = net->structure();
  const int g = 1;  // an inner conv group
  std::vector<bool> on(s.groups.size(), false);
  on[g] = true;
  const double reg = 0.1, alpha = 16.0;
  const at::Tensor n = group_magnitude(*net)[g].sqrt();
  const int64_t hi = n.argmax().item<int64_t>(), lo = n.argmin().item<int64_t>();
  for (auto& p : net->parameters()) p.mutable_grad() = at::zeros_like(p);
  group_norm_penalty(*net, on, reg, alpha).backward();
  const at::Tensor w = net->layer_tensor(s.groups[g].conv, "weight");
  EXPECT_TRUE(at::allclose(w.grad()[hi], reg * w.detach()[hi]));
  EXPECT_TRUE(at::allclose(w.grad()[lo], reg * alpha * w.detach()[lo]));
  // A channel in between: alpha^((max - n) / (max - min)).
  int64_t mid = 0;
  while (mid == hi || mid == lo) ++mid;
  const double e = ((n[hi] - n[mid]) / (n[hi] - n[lo])).item<double>();
  EXPECT_TRUE(at::allclose(w.grad()[mid], reg * std::pow(alpha, e) * w.detach()[mid], 1e-4, 1e-7));
  // Groups that are off get nothing.
  EXPECT_EQ(net->layer_tensor(s.groups[0].conv, "weight").grad().abs().sum().item<double>(), 0.0);
}

TEST(GroupNorm, GrowingScheduleStepsByDeltaEveryIntervalUpToTheCap) {
  config::RegulariseConfig rc;
  rc.growreg_reg = 0.1;
  rc.growreg_delta = 0.05;
  rc.growreg_interval = 4;
  rc.growreg_cap = 0.3;
  const GrowingSchedule s = GrowingSchedule::from(rc);
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(3), 0.1);
  EXPECT_DOUBLE_EQ(s.at(4), 0.15);
  EXPECT_DOUBLE_EQ(s.at(11), 0.2);
  EXPECT_DOUBLE_EQ(s.at(15), 0.25);
  EXPECT_DOUBLE_EQ(s.at(16), 0.3);
  EXPECT_DOUBLE_EQ(s.at(1000), 0.3);
  // The defaults: Wang et al.'s 1e-4 every 10 steps, up to 1.
  const GrowingSchedule d = GrowingSchedule::from(config::RegulariseConfig{});
  EXPECT_DOUBLE_EQ(d.at(9), 0.0);
  EXPECT_DOUBLE_EQ(d.at(10), 1e-4);
  EXPECT_DOUBLE_EQ(d.at(100000000), 1.0);
  EXPECT_THROW(s.at(-1), InternalError);
}
