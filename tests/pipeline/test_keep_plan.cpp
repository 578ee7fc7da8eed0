// The keep-plan stage: every method reaches the allocator it names with its own random stream,
// a PASS method runs the search, and an unknown method is refused before any work.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/pipeline/keep_plan.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using test::runtime;
using test::tiny_config;

namespace {

struct KeepPlanTest : ::testing::Test {
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::write_store(dir_->path() / "tiny.h5", 96, 16);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  // The same dense weights every call (no dense training needed to rank channels).
  static models::PrunableNetworkPtr dense(const pipeline::TaskData& d, const config::Config& cfg) {
    torch::manual_seed(11);
    auto net = models::make_model(pipeline::dense_spec(cfg, d));
    net->eval();
    return net;
  }
  // The keep-plan stage of a one-rank task of `cfg`, on dense().
  struct Found {
    pipeline::TaskData d;
    models::PrunableNetworkPtr net;
    pipeline::MethodPlan plan;
  };
  static Found find(const config::Config& cfg) {
    auto comm = dist::make_communicator("mpi", runtime());
    const pipeline::TaskContext ctx{cfg, runtime(), *comm, config::run_id(cfg)};
    Found f{pipeline::open_data(cfg), nullptr, {}};
    f.net = dense(f.d, cfg);
    f.plan = pipeline::find_keep_plan(ctx, f.d, *f.net);
    return f;
  }
  static test::TempDir* dir_;
};
test::TempDir* KeepPlanTest::dir_ = nullptr;

}  // namespace

TEST_F(KeepPlanTest, WeightBaselinesAreTheAllocatorsPlanWithTheBaselineStream) {
  for (const char* method : {"l1_uniform", "l1_global", "l2_global", "bn_scale_global", "random_uniform"}) {
    auto cfg = tiny_config(dir_->path(), method);
    cfg.experiment.seed = 7;
    auto [d, net, plan] = find(cfg);
    EXPECT_EQ(plan.search, nullptr) << method;
    EXPECT_TRUE(plan.curves.loss.empty()) << method;
    // Stream 5 (kBaseline) of seed 7: a changed stream would change random_uniform's channels.
    auto truth = prune::allocate_baseline(*dense(d, cfg), method, prune::allocation_options(cfg.prune), nullptr,
                                          cfg.search.taylor_batches, derive_seed(7, 5));
    EXPECT_EQ(plan.alloc.keep, truth.keep) << method;
    EXPECT_EQ(plan.alloc.macs, net->count(prune::kept_counts(plan.alloc.keep)).macs) << method;
    EXPECT_TRUE(plan.alloc.met_budget) << method;
  }
}

TEST_F(KeepPlanTest, TaylorReadsTrainingBatchesOfItsOwnStream) {
  auto cfg = tiny_config(dir_->path(), "taylor_global");
  cfg.experiment.seed = 3;
  auto [d, net, plan] = find(cfg);

  // The same batches by hand: the training split in the order of stream 6 (kTaylor) of seed 3.
  auto lo = data::loader_options(cfg.data, d.info, true, cfg.search.batch_size, derive_seed(3, 6), 0, 1, d.channels);
  data::Loader loader(d.splits.train, lo);
  loader.start_epoch(0);
  prune::BatchSource batches = [&loader](at::Tensor& x, at::Tensor& y) {
    auto b = loader.next();
    if (!b) return false;
    x = b->images;
    y = b->labels;
    return true;
  };
  auto truth = prune::allocate_baseline(*dense(d, cfg), "taylor_global", prune::allocation_options(cfg.prune), &batches,
                                        cfg.search.taylor_batches, derive_seed(3, 5));
  EXPECT_EQ(plan.alloc.keep, truth.keep);
}

TEST_F(KeepPlanTest, PassRunsTheSearchAndLeavesTheDenseNetworkUnmasked) {
  auto cfg = tiny_config(dir_->path(), "pass");
  cfg.search.steps = 3;
  auto [d, net, plan] = find(cfg);
  ASSERT_NE(plan.search, nullptr);
  EXPECT_EQ(plan.curves.loss.size(), 3u);
  EXPECT_EQ(plan.curves.mac_ratio.size(), 3u);
  for (auto& m : net->masks()) EXPECT_FALSE(m.defined());
  // The plan is the allocation of the search's final scores.
  EXPECT_EQ(plan.alloc.keep, plan.search->allocate().keep);
  EXPECT_NEAR(static_cast<double>(plan.alloc.macs) / static_cast<double>(net->count().macs), 0.5,
              0.5 * cfg.prune.flops_tolerance + 1e-12);
}

TEST_F(KeepPlanTest, UnknownMethodIsAConfigError) {
  auto cfg = tiny_config(dir_->path(), "l1_global");
  cfg.prune.method = "l3_sideways";
  try {
    find(cfg);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'l3_sideways'"), std::string::npos) << e.what();  // names the method
  }
}

TEST(PipelinePaths, FilesLiveUnderTheOutputDirectoryByTaskId) {
  auto cfg = tiny_config("/data", "l1_global");
  cfg.output.dir = "/res";
  EXPECT_EQ(pipeline::dense_path(cfg), std::filesystem::path("/res/dense/" + config::dense_id(cfg) + ".h5"));
  EXPECT_EQ(pipeline::run_path(cfg), std::filesystem::path("/res/runs/" + config::run_id(cfg) + ".h5"));
  EXPECT_EQ(pipeline::work_dir(cfg, "abc"), std::filesystem::path("/res/work/abc"));
}
