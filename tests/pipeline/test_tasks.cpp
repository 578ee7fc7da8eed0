// End-to-end tasks on a tiny synthetic store: dense training, PASS and baseline prune tasks,
// the run file's layout (DESIGN.md §4), transfer of a search, and resume by skipping.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/data/split.hpp"
#include "passlab/data/store.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pass/search.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using test::runtime;
using test::tiny_config;
using test::write_store;
namespace fs = std::filesystem;

namespace {

struct TaskFixture : ::testing::Test {
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    write_store(dir_->path() / "tiny.h5", 160, 40);
    auto comm = dist::make_communicator("mpi", runtime());
    pipeline::run_dense_task(tiny_config(dir_->path(), "pass"), runtime(), *comm);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static test::TempDir* dir_;
};
test::TempDir* TaskFixture::dir_ = nullptr;

}  // namespace

TEST_F(TaskFixture, DenseFileIsCompleteWithWeightsAndAccuracy) {
  auto cfg = tiny_config(dir_->path(), "pass");
  io::File f = io::open_complete(pipeline::dense_path(cfg));
  EXPECT_EQ(f.root().attr_string("dense_id"), config::dense_id(cfg));
  auto s = f.root().open_group("summary");
  EXPECT_GE(s.attr_double("top1"), 0.0);
  EXPECT_LE(s.attr_double("top1"), 1.0);
  auto net = models::make_model("resnet20", 4, 1, 16);
  EXPECT_NO_THROW(models::load_weights(*net, pipeline::dense_path(cfg)));
  EXPECT_EQ(f.root().read<double>("metrics/dense_train_loss").size(), 2u);
}

TEST_F(TaskFixture, PassRunFileHoldsEveryDatasetAndAttribute) {
  auto cfg = tiny_config(dir_->path(), "pass");
  auto comm = dist::make_communicator("mpi", runtime());
  pipeline::run_prune_task(cfg, runtime(), *comm);
  io::File f = io::open_complete(pipeline::run_path(cfg));
  auto& r = f.root();
  for (const char* a : {"status", "run_id", "dense_id", "method", "arch", "dataset", "budget", "seed", "version_passlab",
                        "version_git", "version_libtorch", "world_size", "group_size", "backend", "seconds",
                        "search_seconds", "finetune_seconds", "finished_at"})
    EXPECT_TRUE(r.has_attr(a)) << a;
  EXPECT_EQ(r.attr_string("run_id"), config::run_id(cfg));
  EXPECT_EQ(r.attr_string("method"), "pass");
  EXPECT_EQ(r.read_string("config"), config::to_toml(cfg));
  // Masks and keep indices agree, group by group.
  auto net = models::make_model("resnet20", 4, 1, 16);
  std::vector<int64_t> kept;
  for (auto& g : net->groups()) {
    auto mask = io::read_tensor(r.open_group("masks"), g.name);
    auto keep = r.read<int64_t>("keep/" + g.name);
    ASSERT_EQ(mask.numel(), g.width) << g.name;
    EXPECT_EQ(mask.sum().item<int64_t>(), static_cast<int64_t>(keep.size())) << g.name;
    for (auto i : keep) EXPECT_EQ(mask[i].item<int64_t>(), 1) << g.name;
    kept.push_back(static_cast<int64_t>(keep.size()));
  }
  // The summary's MACs are the exact count of those widths, within the budget tolerance.
  auto s = r.open_group("summary");
  EXPECT_EQ(s.attr_int("macs"), net->structure().count(kept).macs);
  EXPECT_EQ(s.attr_int("dense_macs"), net->count().macs);
  EXPECT_NEAR(s.attr_double("mac_ratio"), 0.5, 0.5 * cfg.prune.flops_tolerance + 1e-12);
  for (const char* a : {"top1", "top5", "val_top1", "dense_top1", "params", "ops_full", "latency_dense_ms",
                        "latency_pruned_ms", "speedup"})
    EXPECT_TRUE(s.has_attr(a)) << a;
  // Curves: one value per search step; fine-tune per epoch.
  EXPECT_EQ(r.read<double>("metrics/search_loss").size(), 8u);
  EXPECT_EQ(r.read<double>("metrics/search_mac_ratio").size(), 8u);
  EXPECT_EQ(r.read<double>("metrics/finetune_train_loss").size(), 1u);
  // The compact weights load into the compact architecture rebuilt from the keep sizes.
  models::ModelSpec spec{"resnet20", 4, 1, 16, "auto", kept};
  auto compact = models::make_model(spec);
  auto rep = models::load_weights(*compact, pipeline::run_path(cfg));
  EXPECT_GT(rep.loaded, 0);
  // Prompt and hypernetwork are stored.
  EXPECT_EQ(io::read_tensor(r.open_group("prompt"), "image").sizes(), (std::vector<int64_t>{1, 16, 16}));
  EXPECT_GT(r.open_group("hypernet").children().size(), 5u);
}

TEST_F(TaskFixture, BaselineRunFileHasNoHypernetwork) {
  auto cfg = tiny_config(dir_->path(), "l1_global");
  auto comm = dist::make_communicator("mpi", runtime());
  pipeline::run_prune_task(cfg, runtime(), *comm);
  io::File f = io::open_complete(pipeline::run_path(cfg));
  EXPECT_FALSE(f.root().has("hypernet"));
  EXPECT_FALSE(f.root().has("prompt"));
  EXPECT_FALSE(f.root().has("metrics/search_loss"));
  EXPECT_NEAR(f.root().open_group("summary").attr_double("mac_ratio"), 0.5, 0.5 * 0.005 + 1e-12);
  // The speed-up of the interleaved rounds and how far to trust it (values are timings: only
  // their consistency is checked, never their size).
  namespace rf = io::run_file;
  auto s = f.root().open_group(rf::kSummary);
  EXPECT_EQ(s.attr_int(rf::kSpeedupRounds), cfg.eval.latency_repeats);
  const double speedup = s.attr_double(rf::kSpeedup), spread = s.attr_double(rf::kSpeedupSpread);
  EXPECT_TRUE(std::isfinite(speedup) && speedup > 0);
  EXPECT_TRUE(std::isfinite(spread) && spread >= 0);
  EXPECT_EQ(s.attr_int(rf::kSpeedupUnreliable), spread > cfg.eval.speedup_max_spread ? 1 : 0);
  EXPECT_GE(s.attr_int(rf::kCores), 1);
  EXPECT_EQ(s.attr_string(rf::kSpeedupForm), cfg.eval.latency_form);
  for (const char* a : {rf::kLoad1minStart, rf::kLoad1minEnd})
    EXPECT_TRUE(s.attr_double(a) == -1 || s.attr_double(a) >= 0) << a;
  EXPECT_GT(s.attr_double(rf::kLatencyDenseMs), 0);
  EXPECT_GT(s.attr_double(rf::kLatencyPrunedMs), 0);
  EXPECT_TRUE(rf::validate(f).empty());
  // /keep holds the criterion's plan on the dense weights, group by group.
  auto dense = models::make_model("resnet20", 4, 1, 16);
  models::load_weights(*dense, pipeline::dense_path(cfg));
  auto truth = prune::allocate_baseline(*dense, "l1_global", prune::allocation_options(cfg.prune));
  const auto& groups = dense->groups();
  ASSERT_EQ(truth.keep.size(), groups.size());
  for (size_t g = 0; g < groups.size(); ++g)
    EXPECT_EQ(f.root().read<int64_t>("keep/" + groups[g].name), truth.keep[g]) << groups[g].name;
}

TEST_F(TaskFixture, TransferStartReproducesTheSourcePlanBeforeAnyStep) {
  // A real PASS run file (the budget from step 0, so that its search moves the masks away from a
  // fresh start's) starts the search of another seed: before any step, that search allocates
  // exactly the channels the file kept.
  auto cfg = tiny_config(dir_->path(), "pass");
  cfg.search.target_anneal = 0;
  auto comm = dist::make_communicator("mpi", runtime());
  pipeline::run_prune_task(cfg, runtime(), *comm);
  const fs::path source = pipeline::run_path(cfg);
  io::File f = io::open_complete(source);
  auto keep = f.root().open_group("keep");

  auto store = data::Store::open(dir_->path() / "tiny.h5");
  auto dense = models::make_model("resnet20", 4, 1, 16);
  models::load_weights(*dense, pipeline::dense_path(cfg));
  pass::InputGeometry geo{1, 16, store->info().mean, store->info().std};
  cfg.experiment.seed = 99;  // a different seed: B starts elsewhere unless transfer works
  pass::PassSearch fresh(*dense, cfg, geo), b(*dense, cfg, geo);
  b.init_from(source);
  const auto plan = b.allocate(), fresh_plan = fresh.allocate();
  const auto& groups = dense->groups();
  ASSERT_EQ(plan.keep.size(), groups.size());
  bool fresh_differs = false;
  for (size_t g = 0; g < groups.size(); ++g) {
    EXPECT_EQ(plan.keep[g], keep.read<int64_t>(groups[g].name)) << groups[g].name;
    fresh_differs |= fresh_plan.keep[g] != plan.keep[g];
  }
  EXPECT_TRUE(fresh_differs) << "a fresh search of seed 99 already allocates the file's plan: the test shows nothing";

  // A file that is not a usable result (here: search state written by hand, no digest or
  // schema) is refused, naming the file.
  const fs::path by_hand = dir_->path() / "by_hand.h5";
  {
    io::AtomicWriter w(by_hand);
    w.root().set_attr("arch", "resnet20");
    b.save(w.root());
    w.commit();
  }
  pass::PassSearch c(*dense, cfg, geo);
  try {
    c.init_from(by_hand);
    ADD_FAILURE() << "a file that is not a usable result started a search";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find(by_hand.string() + " is not a usable result"), std::string::npos) << e.what();
  }

  // Another architecture is refused, naming the file.
  cfg.model.arch = "resnet56";
  auto other = models::make_model("resnet56", 4, 1, 16);
  pass::PassSearch d(*other, cfg, geo);
  try {
    d.init_from(source);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("run of arch resnet20, this task is resnet56"), std::string::npos) << e.what();
  }
}

