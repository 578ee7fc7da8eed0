// PASS's search must learn (issue 17): on a small learnable task with a trained dense model,
//  1. the masked network's task loss falls while the search holds the MAC budget, and
//  2. the searched keep plan beats random plans of the same MAC budget on held-out images.
// Both are properties of the search as it ships (the [search] defaults, shortened and sized for
// the tiny model). A sign error in the task loss, or a search that ignores the data, fails them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "passlab/config/config.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/pass/search.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/train/trainer.hpp"
#include "pass/fixture.hpp"

using namespace passlab;

namespace {
constexpr int64_t kSize = 16, kClasses = 8, kBatch = 32;

// 8 classes: a bright 4x4 square at one of 8 positions of a 16x16 gray image, over noise, plus a
// dimmer distractor square at a random position, so that a useful feature needs several channels.
std::pair<at::Tensor, at::Tensor> make_images(int64_t n, uint64_t seed) {
  Rng rng(seed);
  auto x = torch::zeros({n, 1, kSize, kSize});
  auto y = torch::zeros({n}, torch::kLong);
  auto acc = x.accessor<float, 4>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = static_cast<int64_t>(rng.uniform_below(kClasses));
    y[i] = label;
    for (int64_t r = 0; r < kSize; ++r)
      for (int64_t c = 0; c < kSize; ++c) acc[i][0][r][c] = static_cast<float>(rng.uniform_below(100)) / 250.0f;
    auto square = [&](int64_t r0, int64_t c0, float v) {
      for (int64_t r = r0; r < r0 + 4; ++r)
        for (int64_t c = c0; c < c0 + 4; ++c) acc[i][0][r][c] = v;
    };
    const int64_t dr = static_cast<int64_t>(rng.uniform_below(13)), dc = static_cast<int64_t>(rng.uniform_below(13));
    square(dr, dc, 0.6f);
    square(label < 4 ? 1 : 11, 1 + (label % 4) * 4 - (label % 4 == 3 ? 1 : 0), 1.0f);
  }
  return {(x - 0.3) / 0.3, y};
}

// Fixed tensors in batches of kBatch, in a seeded order per epoch.
class TensorSource : public data::BatchSource {
 public:
  TensorSource(at::Tensor x, at::Tensor y) : x_(std::move(x)), y_(std::move(y)) {}
  void start_epoch(int64_t epoch) override {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + epoch);
    order_ = at::randperm(x_.size(0), gen);
    i_ = 0;
  }
  std::optional<data::Batch> next() override {
    if (i_ + kBatch > x_.size(0)) return std::nullopt;
    auto idx = order_.narrow(0, i_, kBatch);
    i_ += kBatch;
    return data::Batch{x_.index_select(0, idx), y_.index_select(0, idx), idx};
  }
  int64_t batches_per_epoch() const override { return x_.size(0) / kBatch; }
  int64_t samples_per_epoch() const override { return batches_per_epoch() * kBatch; }
  int64_t dataset_size() const override { return x_.size(0); }

 private:
  at::Tensor x_, y_, order_;
  int64_t i_ = 0;
};

std::vector<at::Tensor> masks_of(const models::PrunableNetwork& net, const prune::KeepPlan& keep) {
  std::vector<at::Tensor> masks;
  for (int g = 0; g < net.num_groups(); ++g) {
    auto m = torch::zeros({net.groups()[static_cast<size_t>(g)].width});
    m.index_fill_(0, torch::tensor(keep[static_cast<size_t>(g)], torch::kLong), 1.0);
    masks.push_back(m);
  }
  return masks;
}

// Held-out cross-entropy of the network under `masks` (none: the dense network), normalised with
// the held-out batch's statistics (the same for every plan compared; running statistics untouched).
double heldout_ce(models::PrunableNetwork& net, const std::vector<at::Tensor>& masks, const at::Tensor& x,
                  const at::Tensor& y) {
  torch::NoGradGuard ng;
  models::set_batchnorm_mode(net, models::BatchNormMode::batch_frozen);
  if (masks.empty())
    net.clear_masks();
  else
    net.set_masks(masks);
  auto ce = torch::cross_entropy_loss(net.forward(x), y).item<double>();
  net.clear_masks();
  models::set_batchnorm_mode(net, models::BatchNormMode::standard);
  return ce;
}

struct Trained {
  models::PrunableNetworkPtr net;
  at::Tensor train_x, train_y, test_x, test_y;
};

Trained trained_dense() {
  torch::manual_seed(7);
  Trained t;
  std::tie(t.train_x, t.train_y) = make_images(640, 1);
  std::tie(t.test_x, t.test_y) = make_images(256, 2);
  t.net = models::make_model("resnet20", kClasses, 1, kSize, "cifar");
  auto comm = dist::make_communicator("mpi", test::runtime());
  train::TrainerOptions opt;
  opt.train.optimizer = "sgd";
  opt.train.lr = 0.05;
  opt.train.epochs = 4;
  opt.train.schedule = "cosine";
  opt.progress = "none";
  opt.label = "dense";
  train::Trainer trainer(*t.net, *comm, opt);
  TensorSource src(t.train_x, t.train_y);
  trainer.fit(src);
  t.net->eval();
  return t;
}

config::Config search_config(double budget) {
  config::Config cfg;  // the shipped [search] and [prune] defaults, sized for the tiny model
  cfg.search.steps = 80;
  cfg.search.batch_size = kBatch;
  cfg.search.hidden = 16;
  cfg.search.embed = 8;
  cfg.search.lr = 0.01;  // a short search
  cfg.search.log_every = 1000;
  cfg.search.checkpoint_every_steps = 0;
  cfg.prune.budget = budget;
  return cfg;
}
}  // namespace

namespace {
void expect_search_learns(bool ratio_head) {
  auto t = trained_dense();
  const double dense_ce = heldout_ce(*t.net, {}, t.test_x, t.test_y);
  ASSERT_LT(dense_ce, 0.7) << "the dense fixture model did not learn the task";
  const double budget = 0.2;
  auto cfg = search_config(budget);
  cfg.search.ratio_head = ratio_head;
  auto comm = dist::make_communicator("mpi", test::runtime());
  pass::InputGeometry geo{1, kSize, {0.3}, {0.3}};
  pass::PassSearch search(*t.net, cfg, geo);
  TensorSource src(t.train_x, t.train_y);
  std::vector<at::Tensor> before;  // every parameter and buffer of the dense model
  for (auto& b : t.net->buffers()) before.push_back(b.clone());
  for (auto& p : t.net->parameters()) before.push_back(p.detach().clone());
  at::Tensor dense_logits;
  {
    torch::NoGradGuard ng;
    dense_logits = t.net->forward(t.test_x);
  }
  auto curves = search.run(src, *comm, pass::PassSearch::trainer_options(cfg, c10::Device(c10::kCPU), "search", {}));
  ASSERT_EQ(curves.ce.size(), static_cast<size_t>(cfg.search.steps));

  // 0. The search used batch statistics but left the dense model as it was: running statistics,
  //    weights, and an eval forward (BatchNorm back in its standard mode) bit for bit.
  std::vector<at::Tensor> after;
  for (auto& b : t.net->buffers()) after.push_back(b);
  for (auto& p : t.net->parameters()) after.push_back(p.detach());
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i])) << "tensor " << i;
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(t.net->forward(t.test_x), dense_logits));
  }

  // 1. Once the MAC target has reached the budget, the masked network's CE falls: its mean over
  //    the last quarter of the search is below its mean over the first steps at the budget.
  const auto at_budget = static_cast<size_t>(std::find_if(curves.target_ratio.begin(), curves.target_ratio.end(),
                                                          [&](double r) { return r <= budget + 1e-9; }) -
                                             curves.target_ratio.begin());
  const size_t n = curves.ce.size(), quarter = n / 4;
  ASSERT_LE(at_budget + 2 * quarter, n) << "the schedule leaves too few steps at the budget";
  auto mean = [&](size_t a, size_t b) {
    return std::accumulate(curves.ce.begin() + static_cast<long>(a), curves.ce.begin() + static_cast<long>(b), 0.0) /
           static_cast<double>(b - a);
  };
  const double early = mean(at_budget, at_budget + quarter), late = mean(n - quarter, n);
  EXPECT_LT(late, early) << "search CE at the budget: first quarter " << early << ", last quarter " << late;

  // 2. The searched plan (the global allocation of the search's scores) against random plans of
  //    the same budget (random scores through the same allocator), on held-out images.
  auto alloc = search.allocate();
  ASSERT_TRUE(alloc.met_budget);
  const double searched = heldout_ce(*t.net, masks_of(*t.net, alloc.keep), t.test_x, t.test_y);
  auto opt = prune::allocation_options(cfg.prune);
  opt.normalization = prune::Normalization::none;
  std::vector<double> random;
  for (int r = 0; r < 8; ++r) {
    torch::manual_seed(1000 + r);
    prune::GroupScores scores;
    for (const auto& g : t.net->groups()) scores.push_back(torch::rand({g.width}, torch::kDouble));
    auto a = prune::allocate_global(t.net->structure(), scores, opt);
    ASSERT_TRUE(a.met_budget);
    random.push_back(heldout_ce(*t.net, masks_of(*t.net, a.keep), t.test_x, t.test_y));
  }
  std::sort(random.begin(), random.end());
  std::printf("held-out CE: dense %.4f, searched %.4f, random %.4f .. %.4f; search CE at budget %.4f -> %.4f\n", dense_ce,
              searched, random.front(), random.back(), early, late);
  EXPECT_LT(searched, random.front()) << "searched plan CE " << searched << ", random plans " << random.front()
                                      << " .. " << random.back() << " (dense " << dense_ce << ")";
}
}  // namespace

TEST(PassSearchLearns, TaskLossFallsAndSearchedPlanBeatsRandomPlans) { expect_search_learns(false); }

// The same with the hypernetwork emitting each group's keep ratio (search.ratio_head).
TEST(PassSearchLearns, RatioHeadTaskLossFallsAndSearchedPlanBeatsRandomPlans) { expect_search_learns(true); }
