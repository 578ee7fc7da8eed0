// GhostBatchNorm2d against independent references: torch::batch_norm over each group by hand
// (forward, gradients, running statistics), torch::nn::BatchNorm2d in eval mode and for one
// group, the linearity the trainer relies on (per-rank updates averaged = one update over all
// groups), and the batch_frozen mode the PASS search uses.
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <set>
#include <string>

#include "passlab/core/error.hpp"
#include "passlab/models/ghost_batchnorm.hpp"

using namespace passlab;
using models::GhostBatchNorm2d;

namespace {

// A module with non-trivial affine parameters and running statistics.
GhostBatchNorm2d make_bn(int64_t channels, uint64_t seed) {
  GhostBatchNorm2d bn(channels);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::NoGradGuard ng;
  bn->weight.copy_(0.5 + at::rand({channels}, gen));
  bn->bias.copy_(0.2 * at::randn({channels}, gen));
  bn->running_mean.copy_(0.1 * at::randn({channels}, gen));
  bn->running_var.copy_(0.5 + at::rand({channels}, gen));
  return bn;
}

// torch::nn::BatchNorm2d holding `bn`'s parameters and running statistics.
torch::nn::BatchNorm2d reference_of(const GhostBatchNorm2d& bn) {
  torch::nn::BatchNorm2d ref(bn->channels());
  at::NoGradGuard ng;
  ref->weight.copy_(bn->weight);
  ref->bias.copy_(bn->bias);
  ref->running_mean.copy_(bn->running_mean);
  ref->running_var.copy_(bn->running_var);
  return ref;
}

at::Tensor input(int64_t n, int64_t c, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return 1.5 + 2.0 * at::randn({n, c, 5, 4}, gen);
}

}  // namespace

TEST(GhostBatchNorm, KeepsBatchNorm2dNames) {
  GhostBatchNorm2d bn(3);
  std::set<std::string> params, buffers;
  for (auto& p : bn->named_parameters()) params.insert(p.key());
  for (auto& b : bn->named_buffers()) buffers.insert(b.key());
  EXPECT_EQ(params, (std::set<std::string>{"weight", "bias"}));
  EXPECT_EQ(buffers, (std::set<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  torch::nn::BatchNorm2d ref(3);
  EXPECT_TRUE(at::equal(bn->weight, ref->weight) && at::equal(bn->bias, ref->bias));
  EXPECT_TRUE(at::equal(bn->running_mean, ref->running_mean) && at::equal(bn->running_var, ref->running_var));
  EXPECT_EQ(bn->num_batches_tracked.scalar_type(), ref->num_batches_tracked.scalar_type());
}

TEST(GhostBatchNorm, TrainingEqualsBatchNormPerGroupByHand) {
  const int64_t g = 4, k = 3, c = 5;
  auto bn = make_bn(c, 1);
  bn->group = g;
  bn->train();
  const at::Tensor mean0 = bn->running_mean.clone(), var0 = bn->running_var.clone();
  at::Tensor x = input(g * k, c, 2).requires_grad_(true);
  at::Tensor r = at::randn({g * k, c, 5, 4}, at::make_generator<at::CPUGeneratorImpl>(3));
  at::Tensor y = bn->forward(x);
  (y * r).sum().backward();

  // Reference: each group through torch::batch_norm with its own batch statistics.
  at::Tensor xr = x.detach().clone().requires_grad_(true);
  at::Tensor w = bn->weight.detach().clone().requires_grad_(true), b = bn->bias.detach().clone().requires_grad_(true);
  std::vector<at::Tensor> parts;
  for (int64_t j = 0; j < k; ++j)
    parts.push_back(at::batch_norm(xr.narrow(0, j * g, g), w, b, {}, {}, true, 0.1, 1e-5, false));
  at::Tensor yr = at::cat(parts);
  (yr * r).sum().backward();
  EXPECT_TRUE(at::allclose(y, yr, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(x.grad(), xr.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(bn->weight.grad(), w.grad(), 1e-4, 1e-4));
  EXPECT_TRUE(at::allclose(bn->bias.grad(), b.grad(), 1e-4, 1e-4));

  // Running statistics: one momentum step towards the mean over groups of each group's mean
  // and unbiased variance.
  at::Tensor groups = x.detach().reshape({k, g, c, 20}).transpose(1, 2).reshape({k, c, g * 20});
  at::Tensor gm = groups.mean(2).mean(0), gv = groups.var(2, /*unbiased=*/true).mean(0);
  EXPECT_TRUE(at::allclose(bn->running_mean, 0.9 * mean0 + 0.1 * gm, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(bn->running_var, 0.9 * var0 + 0.1 * gv, 1e-5, 1e-6));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
}

TEST(GhostBatchNorm, OneGroupIsBatchNorm2d) {
  for (int64_t group : {0, 12}) {  // 0: the whole batch; 12: the batch is one group
    auto bn = make_bn(4, 4);
    auto ref = reference_of(bn);
    bn->group = group;
    bn->train();
    ref->train();
    at::Tensor x = input(12, 4, 5);
    EXPECT_TRUE(at::equal(bn->forward(x), ref->forward(x)));
    EXPECT_TRUE(at::allclose(bn->running_mean, ref->running_mean, 1e-6, 1e-7));
    EXPECT_TRUE(at::allclose(bn->running_var, ref->running_var, 1e-6, 1e-7));
  }
}

TEST(GhostBatchNorm, EvalIsBatchNorm2dBitForBit) {
  auto bn = make_bn(6, 6);
  auto ref = reference_of(bn);
  bn->group = 2;  // irrelevant in eval mode
  bn->eval();
  ref->eval();
  at::Tensor x = input(7, 6, 7);  // not whole groups: eval mode does not group
  EXPECT_TRUE(at::equal(bn->forward(x), ref->forward(x)));
}

// The trainer's scheme: ranks update their running statistics from their own groups, weighted
// by share x ranks, and average them at the epoch end. That equals one module over all groups.
TEST(GhostBatchNorm, WeightedPerRankUpdatesAverageToTheGlobalUpdate) {
  const int64_t g = 4, c = 3;
  auto whole = make_bn(c, 8), rank0 = make_bn(c, 8), rank1 = make_bn(c, 8);
  for (auto* m : {&whole, &rank0, &rank1}) {
    (*m)->group = g;
    (*m)->train();
  }
  // 3 groups over 2 ranks: rank 0 holds 1 (share 1/3), rank 1 holds 2 (share 2/3).
  rank0->stat_weight = 2.0 / 3.0;
  rank1->stat_weight = 4.0 / 3.0;
  for (uint64_t step = 0; step < 3; ++step) {
    at::Tensor x = input(3 * g, c, 10 + step);
    whole->forward(x);
    rank0->forward(x.narrow(0, 0, g));
    rank1->forward(x.narrow(0, g, 2 * g));
  }
  EXPECT_TRUE(at::allclose((rank0->running_mean + rank1->running_mean) / 2, whole->running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose((rank0->running_var + rank1->running_var) / 2, whole->running_var, 1e-5, 1e-6));
}

TEST(GhostBatchNorm, BatchFrozenUsesBatchStatisticsAndKeepsRunningOnes) {
  auto bn = make_bn(3, 11), ref = make_bn(3, 11);
  bn->group = ref->group = 4;
  const at::Tensor mean0 = bn->running_mean.clone(), var0 = bn->running_var.clone();
  models::set_batchnorm_mode(*bn, models::BatchNormMode::batch_frozen);
  at::Tensor x = input(8, 3, 12);
  ref->train();
  at::Tensor want = ref->forward(x);
  for (bool training : {true, false}) {
    bn->train(training);
    EXPECT_TRUE(at::equal(bn->forward(x), want));
  }
  EXPECT_TRUE(at::equal(bn->running_mean, mean0));
  EXPECT_TRUE(at::equal(bn->running_var, var0));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 0);
  models::set_batchnorm_mode(*bn, models::BatchNormMode::standard);
  bn->eval();
  EXPECT_FALSE(at::equal(bn->forward(x), want));  // back on running statistics
}

TEST(GhostBatchNorm, SettersReachEveryBatchNormOfANetwork) {
  torch::nn::Module net;
  auto a = net.register_module("a", GhostBatchNorm2d(2));
  auto inner = net.register_module("inner", std::make_shared<torch::nn::Module>());
  auto b = inner->register_module("b", GhostBatchNorm2d(2));
  models::set_batchnorm_group(net, 8);
  models::set_batchnorm_stat_weight(net, 0.5);
  for (auto* m : {&a, &b}) {
    EXPECT_EQ((*m)->group, 8);
    EXPECT_EQ((*m)->stat_weight, 0.5);
  }
}

TEST(GhostBatchNorm, BatchOfPartialGroupsIsRefused) {
  auto bn = make_bn(3, 13);
  bn->group = 4;
  bn->train();
  EXPECT_THROW(bn->forward(input(6, 3, 14)), InternalError);
}
