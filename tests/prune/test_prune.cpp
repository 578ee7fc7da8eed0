// Pruning core: masked == compact for every architecture, keep plans as the saved result,
// importance criteria against hand/finite-difference values, budget allocation.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/importance.hpp"
#include "passlab/prune/latency.hpp"
#include "models/model_test_util.hpp"
#include "passlab/prune/slice.hpp"

using namespace passlab;
using namespace passlab::models;
using namespace passlab::prune;

namespace {

// Non-trivial BN statistics and affine parameters (a fresh BN in eval mode is the identity).
void randomize_bn(PrunableNetwork& net, uint64_t seed) {
  at::manual_seed(static_cast<int64_t>(seed));
  at::NoGradGuard g;
  for (int li = 0; li < static_cast<int>(net.structure().layers.size()); ++li) {
    if (net.structure().layers[li].kind != LayerKind::bn) continue;
    const int64_t n = net.structure().layers[li].out_channels;
    net.layer_tensor(li, "running_mean").copy_(0.1 * at::randn({n}));
    net.layer_tensor(li, "running_var").copy_(0.5 + at::rand({n}));
    net.layer_tensor(li, "weight").copy_(0.5 + 0.5 * at::rand({n}));
    net.layer_tensor(li, "bias").copy_(0.1 * at::randn({n}));
  }
}

// Random keep plan: each group keeps a random subset of random size (>= 1), residual groups too.
KeepPlan random_plan(const Structure& s, uint64_t seed) {
  Rng rng(seed);
  KeepPlan plan(s.groups.size());
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const int64_t w = s.groups[g].width;
    const int64_t n = 1 + static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(w)));
    auto perm = permutation(w, derive_seed(seed, g));
    plan[g].assign(perm.begin(), perm.begin() + n);
    std::sort(plan[g].begin(), plan[g].end());
  }
  return plan;
}

using passlab::test::numel_params;

struct ArchCase {
  const char* arch;
  const char* stem;
  int64_t size;
};

}  // namespace

TEST(Slicing, MaskedEqualsCompactForEveryArchitecture) {
  std::vector<ArchCase> cases;
  // Small inputs keep this fast; the structure (and so the property) does not depend on them.
  for (const auto& a : config::known_archs()) cases.push_back({a.c_str(), "cifar", a.rfind("vgg", 0) == 0 ? 32 : 16});
  for (const char* a : {"resnet18", "resnet50", "vgg11_bn", "mobilenet_v2"}) cases.push_back({a, "imagenet", 64});
  for (const auto& c : cases) {
    auto dense = make_model(c.arch, 10, 3, c.size, c.stem);
    randomize_bn(*dense, 11);
    dense->eval();
    at::manual_seed(1);
    const at::Tensor x = at::randn({2, 3, c.size, c.size});
    at::Tensor dense_out;
    {
      at::NoGradGuard g;
      dense_out = dense->forward(x);
    }
    for (uint64_t seed : {1u, 2u}) {
      const KeepPlan plan = random_plan(dense->structure(), seed * 977 + c.size);
      apply_plan_masks(*dense, plan);
      at::NoGradGuard g;
      const at::Tensor masked = dense->forward(x);
      auto compact = make_compact(*dense, plan);
      const at::Tensor out = compact->forward(x);
      const double diff = (masked - out).abs().max().item<double>();
      std::printf("%-13s %-8s seed %d: max |masked - compact| = %.3g (max |logit| %.3g), %.2f %% MACs kept\n", c.arch, c.stem,
                  static_cast<int>(seed), diff, masked.abs().max().item<double>(),
                  100.0 * compact->count().macs / static_cast<double>(dense->count().macs));
      const double scale = masked.abs().max().item<double>();
      EXPECT_LT(diff, 1e-4) << c.arch << " " << c.stem << " seed " << seed;
      EXPECT_LT(diff, 1e-5 * scale) << c.arch << " " << c.stem << " seed " << seed << " (relative to the logit scale)";
      // The plan really changes the function (so the comparison is not vacuous).
      EXPECT_GT((masked - dense_out).abs().max().item<double>(), 1e-3 * scale) << c.arch;
      const auto kept = kept_counts(plan);
      EXPECT_EQ(compact->count().macs, dense->count(kept).macs) << c.arch;
      EXPECT_EQ(compact->count().params, dense->count(kept).params) << c.arch;
      EXPECT_EQ(compact->count().ops_full, dense->count(kept).ops_full) << c.arch;
      EXPECT_EQ(compact->count().params, numel_params(*compact)) << c.arch;
      EXPECT_EQ(dense->masked_macs().item<double>(), static_cast<double>(compact->count().macs)) << c.arch;
      EXPECT_FALSE(compact->is_training());
      dense->clear_masks();
    }
  }
}

TEST(Slicing, PlanIsTheSavedResult) {
  auto dense = make_model("mobilenet_v2", 10, 3, 32);
  randomize_bn(*dense, 3);
  dense->eval();
  const KeepPlan plan = random_plan(dense->structure(), 42);
  auto a = make_compact(*dense, plan);
  auto b = make_compact(*dense, plan);
  auto sa = state_dict(*a), sb = state_dict(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(at::equal(sa[i].second, sb[i].second)) << sa[i].first;

  // By name (run files) and back.
  auto named = named_plan(dense->structure(), plan);
  EXPECT_EQ(plan_from_named(dense->structure(), named), plan);
  named.pop_back();
  EXPECT_THROW(plan_from_named(dense->structure(), named), IOError);

  // Arch + plan sizes rebuild the compact architecture; its weights load by name.
  auto shell = make_compact_shell(dense->spec(), plan);
  load_state(*shell, sa, LoadOptions{shell->head()});
  shell->eval();
  at::NoGradGuard g;
  at::Tensor x = at::randn({2, 3, 32, 32});
  EXPECT_TRUE(at::equal(shell->forward(x), a->forward(x)));

  KeepPlan bad = plan;
  bad[0] = {};
  EXPECT_THROW(make_compact(*dense, bad), InternalError);
  bad = plan;
  bad[1] = {3, 2};
  EXPECT_THROW(make_compact(*dense, bad), InternalError);
}

TEST(Importance, WeightCriteriaMatchHandComputation) {
  auto net = make_model("mobilenet_v2", 10, 3, 32);
  randomize_bn(*net, 5);
  const auto& s = net->structure();
  const int g = s.find_group("features.3.conv.0.0");  // expansion conv tied to its depthwise conv
  ASSERT_GE(g, 0);
  at::Tensor pw = net->named_parameters(true)["features.3.conv.0.0.weight"].detach().to(at::kDouble).flatten(1);
  at::Tensor dw = net->named_parameters(true)["features.3.conv.1.0.weight"].detach().to(at::kDouble).flatten(1);
  at::Tensor g1 = net->named_parameters(true)["features.3.conv.0.1.weight"].detach().to(at::kDouble);
  at::Tensor g2 = net->named_parameters(true)["features.3.conv.1.1.weight"].detach().to(at::kDouble);
  auto l1 = weight_importance(*net, Criterion::l1);
  auto l2 = weight_importance(*net, Criterion::l2);
  auto bn = weight_importance(*net, Criterion::bn_scale);
  EXPECT_TRUE(at::allclose(l1[g], pw.abs().sum(1) + dw.abs().sum(1)));
  EXPECT_TRUE(at::allclose(l2[g], (pw.pow(2).sum(1) + dw.pow(2).sum(1)).sqrt()));
  EXPECT_TRUE(at::allclose(bn[g], g1.abs() + g2.abs()));
  auto r1 = weight_importance(*net, Criterion::random, 7), r2 = weight_importance(*net, Criterion::random, 7);
  auto r3 = weight_importance(*net, Criterion::random, 8);
  EXPECT_TRUE(at::equal(r1[g], r2[g]));
  EXPECT_FALSE(at::equal(r1[g], r3[g]));
  EXPECT_EQ(parse_criterion("bn_scale"), Criterion::bn_scale);
  EXPECT_THROW(parse_criterion("l3"), ConfigError);
}

TEST(Importance, TaylorEqualsFiniteDifferenceOfTheLoss) {
  auto net = make_model("resnet20", 10, 3, 16);
  randomize_bn(*net, 9);
  net->to(at::kDouble);
  net->train();  // taylor_importance must switch to eval and restore this
  at::manual_seed(4);
  const at::Tensor x = at::randn({4, 3, 16, 16}, at::kDouble);
  const at::Tensor y = at::randint(0, 10, {4}, at::kLong);
  int calls = 0;
  BatchSource one = [&](at::Tensor& in, at::Tensor& t) {
    if (calls++ > 0) return false;
    in = x;
    t = y;
    return true;
  };
  auto taylor = taylor_importance(*net, one, 8);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(net->is_training());
  for (const auto& m : net->masks()) EXPECT_FALSE(m.defined());

  net->eval();
  auto loss_with = [&](int g, int64_t c, double v) {
    at::Tensor m = at::ones({net->groups()[g].width}, at::kDouble);
    m[c] = v;
    net->set_mask(g, m);
    at::NoGradGuard ng;
    double l = at::nll_loss(at::log_softmax(net->forward(x), 1), y).item<double>();
    net->set_mask(g, at::Tensor());
    return l;
  };
  const double eps = 1e-5;
  for (const char* name : {"conv1", "layer1.1.conv1", "layer3.2.conv1"}) {
    const int g = net->structure().find_group(name);
    ASSERT_GE(g, 0);
    for (int64_t c : {0, 5}) {
      const double fd = std::abs(loss_with(g, c, 1 + eps) - loss_with(g, c, 1 - eps)) / (2 * eps);
      EXPECT_NEAR(taylor[g][c].item<double>(), fd, 1e-6 + 1e-4 * fd) << name << " channel " << c;
    }
  }
}

namespace {

void expect_valid_allocation(const Structure& s, const Allocation& a, const AllocationOptions& opt, const std::string& what) {
  EXPECT_TRUE(a.met_budget) << what;
  EXPECT_LE(std::abs(static_cast<double>(a.macs) / static_cast<double>(a.target_macs) - 1.0), opt.tolerance) << what;
  EXPECT_NO_THROW(validate_plan(s, a.keep)) << what;
  EXPECT_EQ(kept_counts(a.keep), a.kept) << what;
  EXPECT_EQ(s.macs(a.kept), a.macs) << what;
  const auto prunable = s.prunable(opt.prune_residual);
  for (int g = 0; g < s.num_groups(); ++g) {
    if (!prunable[g]) {
      EXPECT_EQ(a.kept[g], s.groups[g].width) << what << " unprunable " << s.groups[g].name;
      continue;
    }
    EXPECT_GE(a.kept[g], group_floor(s.groups[g].width, opt)) << what << " floor of " << s.groups[g].name;
    if (opt.round_to > 1) {
      EXPECT_TRUE(a.kept[g] % opt.round_to == 0 || a.kept[g] == s.groups[g].width) << what << " " << a.kept[g];
    }
  }
}

}  // namespace

TEST(Allocation, EveryCriterionMeetsTheBudget) {
  std::vector<ArchCase> cases = {{"resnet56", "cifar", 32}, {"mobilenet_v2", "cifar", 32}, {"vgg16_bn", "cifar", 32},
                                 {"resnet50", "imagenet", 224}};
  for (const auto& c : cases) {
    auto net = make_model(c.arch, 10, 3, c.size, c.stem);
    randomize_bn(*net, 2);
    const auto& s = net->structure();
    for (Criterion crit : {Criterion::l1, Criterion::l2, Criterion::bn_scale, Criterion::random}) {
      const auto scores = weight_importance(*net, crit, 3);
      for (double budget : {0.7, 0.5, 0.3, 0.15}) {
        AllocationOptions opt;
        opt.budget = budget;
        // The inner groups only, where the uniform bound below was measured (worst 1.04 channels);
        // the default with residual groups: ResidualGroupsArePrunableByDefault.
        opt.prune_residual = false;
        const std::string what = std::string(c.arch) + " " + to_string(crit) + " budget " + std::to_string(budget);
        auto glob = allocate_global(s, scores, opt);
        expect_valid_allocation(s, glob, opt, what + " global");
        // Within a group the best-scored channels are kept.
        for (int g = 0; g < s.num_groups(); ++g) {
          if (glob.kept[g] == s.groups[g].width) continue;
          double worst_kept = 1e300, best_dropped = -1e300;
          std::vector<bool> in(s.groups[g].width, false);
          for (int64_t i : glob.keep[g]) in[i] = true;
          for (int64_t i = 0; i < s.groups[g].width; ++i) {
            const double v = scores[g][i].item<double>();
            if (in[i]) worst_kept = std::min(worst_kept, v);
            else best_dropped = std::max(best_dropped, v);
          }
          EXPECT_GE(worst_kept, best_dropped) << what << " " << s.groups[g].name;
        }
        if (crit == Criterion::l1 || crit == Criterion::random) {
          auto uni = allocate_uniform(s, scores, opt);
          expect_valid_allocation(s, uni, opt, what + " uniform");
          // Same ratio in every group: kept counts within ~one channel of r * width (r: total kept
          // over total width of the prunable groups; measured worst case 1.04 channels).
          const auto prunable = s.prunable(opt.prune_residual);
          double kw = 0, ww = 0;
          for (int g = 0; g < s.num_groups(); ++g)
            if (prunable[g]) kw += uni.kept[g], ww += s.groups[g].width;
          const double r = kw / ww;
          double dev = 0;
          for (int g = 0; g < s.num_groups(); ++g) {
            if (!prunable[g] || uni.kept[g] == group_floor(s.groups[g].width, opt)) continue;
            dev = std::max(dev, std::abs(uni.kept[g] - r * s.groups[g].width));
            EXPECT_LE(std::abs(uni.kept[g] - r * s.groups[g].width), 1.5)
                << what << " uniform " << s.groups[g].name << " keeps " << uni.kept[g] << "/" << s.groups[g].width
                << " (r = " << r << ")";
          }
          EXPECT_LE(dev, 1.5) << what;
        }
      }
    }
  }
}

TEST(Allocation, TaylorMeetsTheBudget) {
  auto net = make_model("resnet56", 10, 3, 32);
  randomize_bn(*net, 6);
  at::manual_seed(6);
  int n = 0;
  BatchSource src = [&](at::Tensor& x, at::Tensor& y) {
    if (n++ >= 2) return false;
    x = at::randn({4, 3, 16, 16});  // scores only; the budget is counted at the built 32 px
    y = at::randint(0, 10, {4}, at::kLong);
    return true;
  };
  auto scores = taylor_importance(*net, src, 2);
  for (double budget : {0.7, 0.5, 0.3, 0.15}) {
    AllocationOptions opt;
    opt.budget = budget;
    auto a = allocate_global(net->structure(), scores, opt);
    expect_valid_allocation(net->structure(), a, opt, "taylor " + std::to_string(budget));
  }
}

TEST(Allocation, FloorsRoundingAndResidualGroups) {
  auto net = make_model("resnet18", 10, 3, 32);
  randomize_bn(*net, 1);
  const auto& s = net->structure();
  const auto scores = weight_importance(*net, Criterion::l1);
  AllocationOptions opt;
  opt.budget = 0.3;
  opt.min_keep_fraction = 0.25;
  opt.min_keep_channels = 3;
  opt.round_to = 8;
  opt.tolerance = 0.02;  // rounding to 8 channels makes 0.5 % unreachable on some budgets
  expect_valid_allocation(s, allocate_global(s, scores, opt), opt, "round_to 8 global");
  expect_valid_allocation(s, allocate_uniform(s, scores, opt), opt, "round_to 8 uniform");
  EXPECT_EQ(group_floor(64, opt), 16);
  EXPECT_EQ(group_floor(8, opt), 3);

  // Residual groups are pruned by default; prune_residual = false keeps each of them whole.
  AllocationOptions res;
  res.budget = 0.4;
  auto a = allocate_global(s, scores, res);
  expect_valid_allocation(s, a, res, "prune_residual");
  bool residual_pruned = false;
  for (int g = 0; g < s.num_groups(); ++g)
    if (s.groups[g].residual && a.kept[g] < s.groups[g].width) residual_pruned = true;
  EXPECT_TRUE(residual_pruned);
  res.prune_residual = false;
  auto inner = allocate_global(s, scores, res);
  expect_valid_allocation(s, inner, res, "prune_residual = false");
  for (int g = 0; g < s.num_groups(); ++g)
    if (s.groups[g].residual) {
      EXPECT_EQ(inner.kept[g], s.groups[g].width) << s.groups[g].name;
    }

  // Floors above the budget: reported, not hidden (every group, residual ones too, at its floor).
  AllocationOptions tight;
  tight.budget = 0.05;
  tight.min_keep_fraction = 0.5;
  auto t = allocate_global(s, scores, tight);
  EXPECT_FALSE(t.met_budget);
  for (int g = 0; g < s.num_groups(); ++g) EXPECT_EQ(t.kept[g], s.groups[g].width / 2) << s.groups[g].name;

  AllocationOptions badopt;
  badopt.budget = 0;
  EXPECT_THROW(allocate_global(s, scores, badopt), ConfigError);
  auto short_scores = scores;
  short_scores.pop_back();
  EXPECT_THROW(allocate_global(s, short_scores, AllocationOptions{}), InternalError);
}

// The default configuration ([prune] prune_residual = true) puts every residual group of the
// architectures with residual ties in play: each is prunable, the allocators meet the budget with
// them pruned, and the compact network sliced from such a plan computes what the masked one does.
TEST(Allocation, ResidualGroupsArePrunableByDefault) {
  const AllocationOptions defaults = allocation_options(config::PruneConfig{});
  EXPECT_TRUE(defaults.prune_residual);
  EXPECT_TRUE(AllocationOptions{}.prune_residual);  // the library default agrees with the config's
  for (const char* arch : {"resnet20", "resnet18", "mobilenet_v2"}) {
    auto net = make_model(arch, 10, 3, 32);
    randomize_bn(*net, 8);
    const auto& s = net->structure();
    const auto prunable = s.prunable(defaults.prune_residual);
    int residual = 0;
    for (int g = 0; g < s.num_groups(); ++g) {
      EXPECT_TRUE(prunable[g]) << arch << " " << s.groups[g].name;
      residual += s.groups[g].residual;
    }
    EXPECT_GT(residual, 0) << arch << " has residual ties";
    const auto scores = weight_importance(*net, Criterion::l1);
    for (double budget : {0.5, 0.3, 0.15}) {
      AllocationOptions opt = defaults;
      opt.budget = budget;
      const std::string what = std::string(arch) + " budget " + std::to_string(budget);
      auto glob = allocate_global(s, scores, opt);
      expect_valid_allocation(s, glob, opt, what + " global");
      int pruned = 0;
      for (int g = 0; g < s.num_groups(); ++g) pruned += s.groups[g].residual && glob.kept[g] < s.groups[g].width;
      EXPECT_GT(pruned, 0) << what << " global: no residual group pruned";
      // Uniform allocation keeps the same fraction everywhere: every residual group loses channels.
      auto uni = allocate_uniform(s, scores, opt);
      expect_valid_allocation(s, uni, opt, what + " uniform");
      for (int g = 0; g < s.num_groups(); ++g)
        if (s.groups[g].residual) {
          EXPECT_LT(uni.kept[g], s.groups[g].width) << what << " uniform " << s.groups[g].name;
        }
    }
  }
  // Slicing a residual-pruned ResNet-20: masked == compact on the allocator's own plan.
  auto dense = make_model("resnet20", 10, 3, 16);
  randomize_bn(*dense, 12);
  dense->eval();
  AllocationOptions opt = defaults;
  opt.budget = 0.3;
  const auto a = allocate_uniform(dense->structure(), weight_importance(*dense, Criterion::l1), opt);
  at::manual_seed(2);
  const at::Tensor x = at::randn({2, 3, 16, 16});
  apply_plan_masks(*dense, a.keep);
  at::NoGradGuard g;
  const at::Tensor masked = dense->forward(x);
  const at::Tensor out = make_compact(*dense, a.keep)->forward(x);
  EXPECT_LT((masked - out).abs().max().item<double>(), 1e-5 * masked.abs().max().item<double>());
  dense->clear_masks();
}

TEST(Allocation, ArbitraryScoresRankAcrossGroups) {
  // VGG-11 (every group prunable, no ties): group 2's channels outrank all others, so under
  // any budget it is pruned last; without normalisation raw magnitudes decide.
  auto net = make_model("vgg11_bn", 10, 3, 32);
  const auto& s = net->structure();
  GroupScores scores(s.num_groups());
  for (int g = 0; g < s.num_groups(); ++g) scores[g] = at::rand({s.groups[g].width}, at::kDouble) + (g == 2 ? 100.0 : 0.0);
  AllocationOptions opt;
  opt.budget = 0.5;
  opt.normalization = Normalization::none;
  auto a = allocate_global(s, scores, opt);
  expect_valid_allocation(s, a, opt, "arbitrary scores");
  EXPECT_EQ(a.kept[2], s.groups[2].width);
  // With per-group mean normalisation the +100 offset no longer dominates.
  opt.normalization = Normalization::mean;
  scores[2] = scores[2] - 100.0 + 1.0;  // same shape of distribution as the others, shifted by 1
  auto b = allocate_global(s, scores, opt);
  expect_valid_allocation(s, b, opt, "normalised");
  EXPECT_LT(b.kept[2], s.groups[2].width);
}

TEST(Baselines, EveryMethodByName) {
  auto net = make_model("resnet20", 10, 3, 32);
  randomize_bn(*net, 4);
  int n = 0;
  BatchSource src = [&](at::Tensor& x, at::Tensor& y) {
    if (n++ >= 1) return false;
    x = at::randn({4, 3, 32, 32});
    y = at::randint(0, 10, {4}, at::kLong);
    return true;
  };
  AllocationOptions opt;
  opt.budget = 0.5;
  for (const char* m : {"l1_uniform", "l1_global", "l2_global", "bn_scale_global", "taylor_global", "random_uniform"}) {
    auto a = allocate_baseline(*net, m, opt, &src, 1, 0);
    expect_valid_allocation(net->structure(), a, opt, m);
  }
  EXPECT_THROW(allocate_baseline(*net, "pass", opt), ConfigError);
  EXPECT_THROW(allocate_baseline(*net, "taylor_global", opt), ConfigError);
  config::PruneConfig pc;
  pc.budget = 0.3;
  pc.round_to = 4;
  EXPECT_EQ(allocation_options(pc).budget, 0.3);
  EXPECT_EQ(allocation_options(pc).round_to, 4);
}

TEST(Latency, MeasuresMedianOfRepeats) {
  auto net = make_model("resnet20", 10, 3, 32);
  net->train();
  auto r = measure_latency(*net, 2, 3, 32, 1, 3);
  EXPECT_EQ(r.samples_ms.size(), 3u);
  EXPECT_GT(r.median_ms, 0.0);
  EXPECT_LE(r.min_ms, r.median_ms);
  EXPECT_LE(r.median_ms, r.max_ms);
  EXPECT_EQ(r.device, "cpu");
  EXPECT_TRUE(net->is_training());
  auto cl = measure_latency(*net, 2, 3, 32, 0, 1, /*channels_last=*/true);
  EXPECT_TRUE(cl.channels_last);
  EXPECT_EQ(cl.samples_ms.size(), 1u);
  // Masked networks compute the same in either layout.
  net->eval();
  apply_plan_masks(*net, random_plan(net->structure(), 5));
  at::NoGradGuard g;
  at::Tensor x = at::randn({2, 3, 32, 32});
  EXPECT_TRUE(at::allclose(net->forward(x), net->forward(x.contiguous(at::MemoryFormat::ChannelsLast)), 1e-5, 1e-6));
}
