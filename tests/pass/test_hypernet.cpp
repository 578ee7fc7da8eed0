// PASS components on tiny networks: gradients against finite differences, exact binary masks,
// the MAC term reaching its target (trained through train::Trainer, as the search is), and the
// prompt's pixel-space semantics.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "passlab/core/error.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/pass/hypernet.hpp"
#include "passlab/pass/search.hpp"
#include "passlab/train/trainer.hpp"
#include "pass/fixture.hpp"

using namespace passlab;
using namespace passlab::pass;

namespace {
struct Setup {
  models::PrunableNetworkPtr net;
  std::shared_ptr<VisualPrompt> prompt;
  std::shared_ptr<HyperNetwork> hyper;
};

Setup make_setup(const std::string& arch, int64_t size, HyperNetOptions opt, torch::Dtype dtype = torch::kFloat) {
  torch::manual_seed(1);
  Setup s;
  s.net = models::make_model(arch, 5, 3, size, "cifar");
  s.net->to(dtype);
  s.net->eval();
  for (auto& p : s.net->parameters()) p.set_requires_grad(false);
  s.prompt = std::make_shared<VisualPrompt>(3, size, default_prompt_pad(size), std::vector<double>{0.5, 0.4, 0.3},
                                            std::vector<double>{0.25, 0.2, 0.3});
  {
    torch::NoGradGuard ng;  // a non-zero prompt so every path carries gradient
    for (auto& p : s.prompt->parameters()) p.uniform_(-0.2, 0.2);
  }
  s.prompt->to(dtype);
  opt.prompt_channels = 3;
  opt.hidden = 16;
  opt.embed = 8;
  s.hyper = std::make_shared<HyperNetwork>(group_inputs(*s.net, s.net->structure().prunable(false)), opt);
  s.hyper->to(dtype);
  return s;
}

// One batch per epoch, for steps that do not read their batch.
class OneBatch : public data::BatchSource {
 public:
  void start_epoch(int64_t) override { given_ = false; }
  std::optional<data::Batch> next() override {
    if (given_) return std::nullopt;
    given_ = true;
    return data::Batch{torch::zeros({1, 3, 16, 16}), torch::zeros({1}, torch::kLong), torch::zeros({1}, torch::kLong)};
  }
  int64_t batches_per_epoch() const override { return 1; }
  int64_t samples_per_epoch() const override { return 1; }
  int64_t dataset_size() const override { return 1; }

 private:
  bool given_ = false;
};

// CE of the prompted, soft-masked network + budget term: a smooth function of θ, ω, V.
torch::Tensor soft_loss(Setup& s, const torch::Tensor& x, const torch::Tensor& y, double target) {
  auto out = s.hyper->forward(s.hyper->options().use_prompt ? s.prompt->image() : torch::Tensor(), /*soft_path=*/true);
  s.net->set_masks(s.hyper->full_masks(out.soft, s.net->num_groups()));
  auto logits = s.net->forward(s.prompt->forward(x));
  auto macs = s.net->masked_macs().to(logits.scalar_type());
  return torch::cross_entropy_loss(logits, y) + 2.0 * budget_loss(macs, target, "squared");
}
}  // namespace

TEST(PassPrompt, ZeroPromptIsIdentityAndBorderOnly) {
  VisualPrompt p(3, 16, 2, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
  EXPECT_EQ(default_prompt_pad(224), 16);
  EXPECT_EQ(default_prompt_pad(28), 2);
  EXPECT_EQ(default_prompt_pad(32), 2);
  auto x = (torch::rand({2, 3, 16, 16}) - 0.5) / 0.25;  // pixels in [0, 1)
  EXPECT_TRUE(torch::allclose(p.forward(x), x, 1e-6, 1e-6));
  {
    torch::NoGradGuard ng;
    for (auto& t : p.parameters()) t.fill_(10.0);  // saturates the border
  }
  auto img = p.image();
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_EQ(img.slice(1, 2, 14).slice(2, 2, 14).abs().sum().item<float>(), 0.0f);  // inside untouched
  auto y = p.forward(x);
  // Border pixels clamp to 1.0 in pixel space → (1 - 0.5) / 0.25 = 2 after normalisation.
  EXPECT_TRUE(torch::allclose(y.slice(2, 0, 2), torch::full_like(y.slice(2, 0, 2), 2.0)));
  EXPECT_TRUE(torch::allclose(y.slice(2, 2, 14).slice(3, 2, 14), x.slice(2, 2, 14).slice(3, 2, 14), 1e-6, 1e-6));
  EXPECT_THROW(VisualPrompt(3, 4, 2, {0, 0, 0}, {1, 1, 1}), ConfigError);
}

TEST(PassMasks, StraightThroughIsExactlyBinaryWithSigmoidGradient) {
  auto s = torch::randn({1000}, torch::requires_grad());
  auto m = straight_through_mask(s, 0.7);
  EXPECT_TRUE(torch::all((m == 0) | (m == 1)).item<bool>());
  EXPECT_TRUE(torch::equal(m, (s > 0).to(torch::kFloat)));
  m.sum().backward();
  auto sig = torch::sigmoid(s.detach() / 0.7);
  EXPECT_TRUE(torch::allclose(s.grad(), sig * (1 - sig) / 0.7, 1e-6, 1e-6));
}

TEST(PassMasks, HypernetMasksAreBinaryForEveryVariant) {
  for (bool rec : {true, false})
    for (bool prompt : {true, false})
      for (bool stats : {true, false}) {
        HyperNetOptions o;
        o.recurrent = rec;
        o.use_prompt = prompt;
        o.use_stats = stats;
        auto s = make_setup("resnet20", 16, o);
        auto out = s.hyper->forward(prompt ? s.prompt->image() : torch::Tensor());
        ASSERT_EQ(out.masks.size(), s.hyper->groups().size());
        for (size_t i = 0; i < out.masks.size(); ++i) {
          EXPECT_EQ(out.masks[i].numel(), s.hyper->groups()[i].width);
          EXPECT_TRUE(torch::all((out.masks[i] == 0) | (out.masks[i] == 1)).item<bool>());
        }
      }
}

TEST(PassRatioHead, MaskAllocationAndGradientsByHand) {
  // Scores rank the channels 1 (2.0), 3 (0.5), 0 (0.3), 2 (-1.0); ρ = 0.5 of 4 keeps ranks 0, 1.
  auto s = torch::tensor({0.3, 2.0, -1.0, 0.5}, torch::dtype(torch::kDouble).requires_grad(true));
  auto rho = torch::tensor(0.5, torch::dtype(torch::kDouble).requires_grad(true));
  const double tau = 1.0;
  auto rm = ratio_head_mask(s, rho, tau);
  EXPECT_TRUE(torch::equal(rm.mask.detach(), torch::tensor({0.0, 1.0, 0.0, 1.0}, torch::kDouble)));
  // logit(ρ) − logit((k + ½)/n): ln 7 and ln(5/3) for the kept ranks, their negatives after.
  const double l7 = std::log(7.0), l53 = std::log(5.0 / 3.0);
  EXPECT_TRUE(torch::allclose(rm.allocation, torch::tensor({-l53, l7, -l7, l53}, torch::kDouble), 1e-12, 1e-12));
  // d Σ w_j m_j / dρ = Σ w_j · n · σ'(ρn − k − ½); d/ds_j = w_j σ'(s_j − t), t = (0.5 + 0.3)/2.
  const std::vector<double> w = {1.0, 2.0, 3.0, 4.0}, rank = {2, 0, 3, 1}, sv = {0.3, 2.0, -1.0, 0.5};
  auto dsig = [](double x) {
    const double q = 1.0 / (1.0 + std::exp(-x));
    return q * (1 - q);
  };
  (rm.mask * torch::tensor(w, torch::kDouble)).sum().backward();
  double d_rho = 0;
  for (size_t j = 0; j < 4; ++j) {
    d_rho += w[j] * 4 * dsig(0.5 * 4 - rank[j] - 0.5);
    EXPECT_NEAR(s.grad()[static_cast<int64_t>(j)].item<double>(), w[j] * dsig(sv[j] - 0.4), 1e-12) << j;
  }
  EXPECT_NEAR(rho.grad().item<double>(), d_rho, 1e-12);
}

TEST(PassRatioHead, RefusedWithTheProjection) {
  config::SearchConfig sc;
  sc.ratio_head = true;
  EXPECT_TRUE(hyper_options(sc, "pass", 1).ratio_head);
  sc.budget_mode = "projection";
  EXPECT_THROW(hyper_options(sc, "pass", 1), ConfigError);
}

TEST(PassRatioHead, HypernetKeepsRoundedRatioPerGroupAndLearnsIt) {
  HyperNetOptions o;
  o.ratio_head = true;
  auto s = make_setup("resnet20", 16, o);
  auto out = s.hyper->forward(s.prompt->image());
  for (size_t i = 0; i < out.masks.size(); ++i) {
    EXPECT_TRUE(torch::all((out.masks[i] == 0) | (out.masks[i] == 1)).item<bool>());
    EXPECT_TRUE(torch::equal(out.masks[i].detach() > 0.5, out.scores[i] > 0)) << "group " << i;
    EXPECT_GE(out.masks[i].sum().item<double>(), 0.9 * static_cast<double>(out.masks[i].numel()) - 1) << "starts near ρ = 0.95";
  }
  // Rewarding fewer channels in the first group and more everywhere else moves the ratios apart.
  torch::optim::Adam adam(s.hyper->parameters(), torch::optim::AdamOptions(0.05));
  auto loss_of = [&](const HyperOutput& h) {
    auto l = h.masks[0].mean();
    for (size_t i = 1; i < h.masks.size(); ++i) l = l - h.masks[i].mean() / static_cast<double>(h.masks.size());
    return l;
  };
  for (int step = 0; step < 60; ++step) {
    adam.zero_grad();
    loss_of(s.hyper->forward(s.prompt->image())).backward();
    adam.step();
  }
  auto after = s.hyper->forward(s.prompt->image());
  EXPECT_LT(after.masks[0].mean().item<double>(), 0.5) << "group 0 keeps " << after.masks[0].mean().item<double>();
  EXPECT_GT(after.masks[1].mean().item<double>(), 0.9);
}

TEST(PassGradients, MatchFiniteDifferencesOfTheSoftPath) {
  HyperNetOptions o;
  auto s = make_setup("resnet20", 12, o, torch::kDouble);
  auto x = torch::randn({4, 3, 12, 12}, torch::kDouble);
  auto y = torch::tensor({0, 1, 2, 3}, torch::kLong);
  const double target = 0.5 * static_cast<double>(s.net->count().macs);
  auto loss = soft_loss(s, x, y, target);
  loss.backward();
  // One entry each of V (prompt), ω (encoder), θ (embedding, LSTM, mapper, skip α).
  std::vector<std::pair<std::string, torch::Tensor>> checks;
  for (auto& kv : s.prompt->named_parameters()) checks.emplace_back("prompt." + kv.key(), kv.value());
  for (auto& kv : s.hyper->named_parameters()) checks.emplace_back(kv.key(), kv.value());
  int checked = 0;
  for (auto& [name, p] : checks) {
    ASSERT_TRUE(p.grad().defined()) << name << " received no gradient";
    auto flat = p.view({-1});
    auto gflat = p.grad().view({-1});
    int64_t idx = std::min<int64_t>(flat.numel() - 1, 3);
    const double eps = 1e-6;
    double orig;
    {
      torch::NoGradGuard ng;
      orig = flat[idx].item<double>();
      flat[idx].fill_(orig + eps);
    }
    double up = soft_loss(s, x, y, target).item<double>();
    {
      torch::NoGradGuard ng;
      flat[idx].fill_(orig - eps);
    }
    double down = soft_loss(s, x, y, target).item<double>();
    {
      torch::NoGradGuard ng;
      flat[idx].fill_(orig);
    }
    double fd = (up - down) / (2 * eps), ad = gflat[idx].item<double>();
    EXPECT_NEAR(ad, fd, 1e-5 + 1e-4 * std::abs(fd)) << name << "[" << idx << "]";
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST(PassBudget, MacTermReachesTargetWithinFivePercent) {
  HyperNetOptions o;
  auto s = make_setup("resnet20", 16, o);
  const double dense = static_cast<double>(s.net->count().macs);
  auto comm = dist::make_communicator("mpi", test::runtime());
  // The budget term alone, trained as the search trains (the trainer, Adam, frozen backbone);
  // the batches are not used.
  OneBatch batches;
  for (double budget : {0.5, 0.3}) {
    auto hyper = std::make_shared<HyperNetwork>(s.hyper->groups(), s.hyper->options());
    train::NamedTensors params;
    for (auto& kv : hyper->named_parameters()) params.emplace_back("hypernet." + kv.key(), kv.value());
    for (auto& kv : s.prompt->named_parameters()) params.emplace_back("prompt." + kv.key(), kv.value());
    train::TrainerOptions opt;
    opt.train.optimizer = "adam";
    opt.train.lr = 0.02;
    opt.train.weight_decay = 0;
    opt.train.schedule = "constant";
    opt.max_steps = 60;
    opt.frozen_model = true;
    opt.set_train_mode = false;
    opt.progress = "none";
    opt.label = "budget";
    train::Trainer trainer(*s.net, *comm, opt);
    trainer.set_trainable(params);
    trainer.set_step([&](const data::Batch&) {
      auto out = hyper->forward(s.prompt->image());
      s.net->set_masks(hyper->full_masks(out.masks, s.net->num_groups()));
      return train::StepOutput{budget_loss(s.net->masked_macs().to(torch::kFloat), budget * dense, "squared"), {}, {}};
    });
    EXPECT_EQ(trainer.fit(batches).steps, 60);
    torch::NoGradGuard ng;
    auto out = hyper->forward(s.prompt->image());
    s.net->set_masks(hyper->full_masks(out.masks, s.net->num_groups()));
    const double ratio = s.net->masked_macs().item<double>() / dense;
    EXPECT_NEAR(ratio / budget, 1.0, 0.05) << "budget " << budget;
  }
  s.net->clear_masks();
}

TEST(PassBudget, LossForms) {
  auto m = torch::tensor({150.0});
  EXPECT_NEAR(budget_loss(m, 100, "squared").item<double>(), 0.25, 1e-9);
  EXPECT_NEAR(budget_loss(m, 100, "abs").item<double>(), 0.5, 1e-9);
  EXPECT_NEAR(budget_loss(torch::tensor({50.0}), 100, "hinge").item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(budget_loss(m, 100, "hinge").item<double>(), 0.25, 1e-9);
  EXPECT_THROW(budget_loss(m, 100, "cubic"), ConfigError);
}

TEST(PassInputs, StatisticsAreStandardisedPerLayer) {
  HyperNetOptions o;
  auto s = make_setup("vgg11_bn", 32, o);
  auto inputs = group_inputs(*s.net, s.net->structure().prunable(false));
  EXPECT_EQ(static_cast<int>(inputs.size()), s.net->num_groups());
  double share = 0;
  for (auto& in : inputs) {
    EXPECT_EQ(in.stats.sizes(), (std::vector<int64_t>{in.width, 4}));
    auto mean = in.stats.mean(0);
    EXPECT_LT(mean.abs().max().item<float>(), 1e-4);
    // L1 and L2 norms vary across channels of a random init: unit variance.
    EXPECT_NEAR(in.stats.select(1, 0).std(false).item<float>(), 1.0, 1e-3);
    share += in.mac_share;
  }
  EXPECT_GT(share, 0.9);
  EXPECT_LE(share, 1.0 + 1e-9);
}

TEST(PassInputs, ChannelCostIsProducerPlusConsumers) {
  HyperNetOptions o;
  auto s = make_setup("vgg11_bn", 32, o);
  auto inputs = group_inputs(*s.net, s.net->structure().prunable(false));
  ASSERT_GE(inputs.size(), 3u);
  // VGG-11-BN, CIFAR stem, 32 px, 3x3 convs: 64 channels at 32x32 (from 3), pool, 128 at 16x16,
  // pool, 256 at 8x8. One channel of a group costs its producer's MACs for that output channel
  // plus the next conv's MACs for that input channel.
  const double c0 = 32.0 * 32 * 9 * 3 + 16.0 * 16 * 9 * 128;
  const double c1 = 16.0 * 16 * 9 * 64 + 8.0 * 8 * 9 * 256;
  const double c2 = 8.0 * 8 * 9 * 128 + 8.0 * 8 * 9 * 256;
  EXPECT_NEAR(inputs[0].log_cost - inputs[1].log_cost, std::log(c0 / c1), 1e-9);
  EXPECT_NEAR(inputs[1].log_cost - inputs[2].log_cost, std::log(c1 / c2), 1e-9);
  double mean = 0;
  for (auto& in : inputs) mean += in.log_cost / static_cast<double>(inputs.size());
  EXPECT_NEAR(mean, 0.0, 1e-9);  // relative to the mean group
}

TEST(PassInputs, GlobalStatisticsKeepCrossLayerScale) {
  HyperNetOptions o;
  auto s = make_setup("vgg11_bn", 32, o);
  auto inputs = group_inputs(*s.net, s.net->structure().prunable(false), /*global_stats=*/true);
  std::vector<at::Tensor> all;
  double largest_group_mean = 0;
  for (auto& in : inputs) {
    all.push_back(in.stats);
    largest_group_mean = std::max(largest_group_mean, std::abs(in.stats.select(1, 0).mean().item<double>()));
    EXPECT_TRUE(torch::equal(in.magnitude, in.stats.select(1, 0)));
  }
  auto cat = torch::cat(all, 0);
  EXPECT_LT(cat.mean(0).abs().max().item<float>(), 1e-4);
  EXPECT_NEAR(cat.select(1, 0).std(false).item<float>(), 1.0, 1e-3);
  // The per-weight L1 norm of a default-initialised conv scales with 1/sqrt(fan_in): layers of
  // other fan-in sit at other levels, which per-layer standardisation would erase.
  EXPECT_GT(largest_group_mean, 0.5);
}

TEST(PassSchedule, TargetAndTemperatureByHand) {
  SearchSchedule s;
  s.steps = 100;
  s.anneal_steps = 50;
  s.budget = 0.2;
  s.temperature_start = 1.0;
  s.temperature_end = 0.1;
  EXPECT_DOUBLE_EQ(s.target_ratio(0), 1.0);
  EXPECT_NEAR(s.target_ratio(25), 0.6, 1e-12);
  EXPECT_NEAR(s.target_ratio(49), 1.0 - 0.8 * 49 / 50, 1e-12);
  EXPECT_DOUBLE_EQ(s.target_ratio(50), 0.2);
  EXPECT_DOUBLE_EQ(s.target_ratio(99), 0.2);
  EXPECT_DOUBLE_EQ(s.temperature(0), 1.0);
  EXPECT_NEAR(s.temperature(33), std::pow(0.1, 33.0 / 99.0), 1e-12);
  EXPECT_NEAR(s.temperature(99), 0.1, 1e-12);
  s.anneal_steps = 0;  // no annealing: the budget from step 0
  s.temperature_end = 0;  // constant tau
  EXPECT_DOUBLE_EQ(s.target_ratio(0), 0.2);
  EXPECT_DOUBLE_EQ(s.temperature(99), 1.0);
  config::Config cfg;
  cfg.search.steps = 200;
  cfg.search.target_anneal = 0.25;
  cfg.prune.budget = 0.3;
  auto from = SearchSchedule::from(cfg);
  EXPECT_EQ(from.anneal_steps, 50);
  EXPECT_DOUBLE_EQ(from.budget, 0.3);
}

TEST(PassDistill, KlDivergenceByHand) {
  auto student = torch::tensor({{1.0, 0.0, -1.0}, {0.5, 0.5, 0.0}});
  auto teacher = torch::tensor({{2.0, 0.0, 0.0}, {0.0, 0.0, 0.0}});
  double expected = 0;
  for (int i = 0; i < 2; ++i) {
    double zs = 0, zt = 0;
    for (int k = 0; k < 3; ++k) {
      zs += std::exp(student[i][k].item<double>());
      zt += std::exp(teacher[i][k].item<double>());
    }
    for (int k = 0; k < 3; ++k) {
      const double pt = std::exp(teacher[i][k].item<double>()) / zt, ps = std::exp(student[i][k].item<double>()) / zs;
      expected += pt * std::log(pt / ps) / 2.0;
    }
  }
  EXPECT_NEAR(distillation_loss(student, teacher).item<double>(), expected, 1e-6);
  EXPECT_NEAR(distillation_loss(teacher, teacher).item<double>(), 0.0, 1e-7);
}

TEST(PassBudget, ProjectionMeetsTargetAndCutsCostlyChannelsFirst) {
  HyperNetOptions o;
  auto s = make_setup("vgg11_bn", 32, o);
  auto inputs = group_inputs(*s.net, s.net->structure().prunable(false));
  const auto& st = s.net->structure();
  const double dense = static_cast<double>(st.count().macs);
  // Every channel equally important (score 1, the same spread of ties in every group): only the
  // cost decides. Channels j get 1 + j/width·1e-3 so that groups are cut channel by channel.
  std::vector<at::Tensor> scores;
  for (auto& in : inputs) scores.push_back(1.0 + torch::arange(in.width, torch::kDouble) / double(in.width) * 1e-3);
  for (double budget : {0.6, 0.3}) {
    const double shift = budget_shift(st, inputs, scores, budget * dense);
    auto kept = st.widths();
    for (size_t i = 0; i < inputs.size(); ++i)
      kept[static_cast<size_t>(inputs[i].group)] =
          std::max<int64_t>(1, (scores[i] > shift * std::exp(inputs[i].log_cost)).sum().item<int64_t>());
    const double macs = static_cast<double>(st.macs(kept));
    EXPECT_LE(macs, budget * dense) << budget;
    EXPECT_GT(macs, 0.95 * budget * dense) << budget;  // not far below: the smallest such shift
    // The costliest group keeps the smallest fraction, the cheapest the largest.
    size_t costly = 0, cheap = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].log_cost > inputs[costly].log_cost) costly = i;
      if (inputs[i].log_cost < inputs[cheap].log_cost) cheap = i;
    }
    auto frac = [&](size_t i) { return double(kept[size_t(inputs[i].group)]) / double(inputs[i].width); };
    EXPECT_LT(frac(costly), frac(cheap)) << budget;
  }
  // A target above the dense MACs keeps everything.
  const double all = budget_shift(st, inputs, scores, 2 * dense);
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_TRUE((scores[i] > all * std::exp(inputs[i].log_cost)).all().item<bool>());
}
