// The sweep in one process (a singleton run group): plan and dependency order, resume of
// complete files, failure isolation with retries, blocked prune tasks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "passlab/core/error.hpp"
#include "passlab/io/digest.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/results.hpp"
#include "passlab/sweep/runner.hpp"
#include "sweep/sweep_fixture.hpp"

using namespace passlab;
using test::runtime;
namespace fs = std::filesystem;
namespace rf = passlab::io::run_file;

namespace {
// Sets an environment variable for the scope of a test.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const std::string& v) : name(n) { setenv(n, v.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

config::Config with(config::Config c, double budget, const std::string& method, int64_t seed) {
  c.sweep = {};
  c.prune.budget = budget;
  c.prune.method = method;
  c.experiment.seed = seed;
  return c;
}
}  // namespace

TEST(SweepPlan, OneDenseTaskPerModelAndDependencyOrder) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "seeds = [0, 1]\nbudgets = [0.5, 0.3]\nmethods = [\"random_uniform\", \"pass\"]\n");
  auto plan = sweep::make_plan(cfg);
  ASSERT_EQ(plan.tasks.size(), 10u);  // 2 dense models + 2 seeds x 2 budgets x 2 methods
  EXPECT_EQ(plan.dense_count(), 2);
  std::set<std::string> ids;
  for (size_t i = 0; i < plan.tasks.size(); ++i) {
    const auto& t = plan.tasks[i];
    EXPECT_TRUE(ids.insert(t.id).second) << "duplicate id " << t.id;
    if (i > 0) {
      EXPECT_GE(plan.tasks[i - 1].priority, t.priority);
    }
    if (t.kind == sweep::Task::Kind::dense) {
      EXPECT_EQ(t.id, config::dense_id(t.cfg));
      EXPECT_EQ(t.path, pipeline::dense_path(t.cfg));
      EXPECT_EQ(t.dependents.size(), 4u);
      continue;
    }
    EXPECT_EQ(t.id, config::run_id(t.cfg));
    ASSERT_GE(t.dep, 0);
    EXPECT_LT(t.dep, static_cast<int>(i)) << "a prune task precedes its dense model";
    EXPECT_EQ(plan.tasks[t.dep].id, config::dense_id(t.cfg));
    EXPECT_EQ(plan.tasks[t.dep].cfg.experiment.seed, t.cfg.experiment.seed);
  }
  // Longest first: the estimate grows with the kept budget and with a search.
  auto base = plan.tasks[0].cfg;
  auto at = [&](double b, const char* m) { return plan.index_of(config::run_id(with(base, b, m, 0))); };
  using K = sweep::Task::Kind;
  EXPECT_GT(sweep::estimate_cost(with(base, 0.5, "pass", 0), K::prune), sweep::estimate_cost(with(base, 0.5, "random_uniform", 0), K::prune));
  EXPECT_GT(sweep::estimate_cost(with(base, 0.5, "random_uniform", 0), K::prune), sweep::estimate_cost(with(base, 0.3, "random_uniform", 0), K::prune));
  EXPECT_LT(at(0.5, "pass"), at(0.5, "random_uniform"));
  EXPECT_LT(at(0.5, "random_uniform"), at(0.3, "random_uniform"));
  EXPECT_LT(at(0.3, "pass"), at(0.3, "random_uniform"));
  // A head stage runs the backbone forward only: a third of a training epoch per epoch.
  auto head = plan.tasks[0].cfg;
  const double full = sweep::estimate_cost(head, K::dense);
  head.dense.mode = "head";
  EXPECT_DOUBLE_EQ(sweep::estimate_cost(head, K::dense), full / 3);
  head.dense.mode = "head_then_full";
  head.dense.head_epochs = 3;
  EXPECT_DOUBLE_EQ(sweep::estimate_cost(head, K::dense), full * (1 + 1.0 / double(head.dense.epochs)));
  // MACs of the estimate are the model's own count: resnet20 at 16 px, 1 channel.
  EXPECT_GT(sweep::forward_macs(base), 1e6);
  EXPECT_DOUBLE_EQ(sweep::train_images(base), 108.0);  // 120 train images, 10 % held out
}

TEST(SweepPlan, PretrainedWeightsPerArchitecture) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "archs = [\"resnet18\", \"vgg16_bn\"]\n");
  cfg.model.pretrained = "weights/{arch}_imagenet.h5";
  cfg.model.stem = "imagenet";
  cfg.data.input_size = 64;
  auto plan = sweep::make_plan(cfg);
  ASSERT_EQ(plan.tasks.size(), 4u);
  for (auto& t : plan.tasks) EXPECT_EQ(t.cfg.model.pretrained, "weights/" + t.cfg.model.arch + "_imagenet.h5");
  // VGG-16 costs more than ResNet-18 at the same input (about 8x): its dense task comes first.
  EXPECT_EQ(plan.tasks[0].cfg.model.arch, "vgg16_bn");
  EXPECT_EQ(plan.tasks[0].kind, sweep::Task::Kind::dense);
}

TEST(SweepPlan, SelectionThatPlansNothingNamesTheFilters) {
  test::TempDir dir;
  // Two seeds times one budget and method: the include matches neither seed.
  auto cfg = test::tiny_sweep(dir.path(), "seeds = [0, 1]\ninclude = [{ seed = 7 }]\nexclude = [{ seed = 0 }]\n");
  try {
    sweep::make_plan(cfg);
    FAIL() << "a sweep planning no task was accepted";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("the sweep plans no task: sweep.include = [{ seed = 7 }] and sweep.exclude = [{ seed = 0 }] leave none of its 2 "),
              std::string::npos)
        << m;
  }
  // A filter that keeps one of them plans that one (with its dense model).
  cfg.sweep.include = {};
  EXPECT_EQ(sweep::planned_tasks(cfg).size(), 1u);
  EXPECT_EQ(sweep::make_plan(cfg).tasks.size(), 2u);
}

TEST(SweepRunner, UnusableResultsFolderIsFoundBeforeAnyTraining) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "");
  const fs::path results = cfg.output.dir;
  // A plain file where dense/ goes, created before runs/: one shared error_code let the next
  // folder's success clear this failure, and the dense model trained before the write failed.
  fs::create_directories(results);
  test::write_text(results / "dense", "not a folder");
  try {
    sweep::run_sweep(cfg, runtime());
    FAIL() << "a sweep ran with a file at " << (results / "dense");
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot use " + (results / "dense").string() + " as a results folder"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(results / "journal.tsv"));  // no task started
  // output.dir itself a file: named, and prepare_results_dir (called by `passlab run` before
  // MPI starts) refuses it the same way.
  fs::remove_all(results);
  test::write_text(results, "x");
  try {
    sweep::prepare_results_dir(cfg);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot use " + results.string() + " as a results folder"), std::string::npos) << e.what();
  }
  fs::remove(results);
  sweep::prepare_results_dir(cfg);
  for (const char* sub : {"dense", "runs", "work", "claims"}) EXPECT_TRUE(fs::is_directory(results / sub)) << sub;
}

TEST(SweepRunner, RelaunchSkipsCompleteFilesAndRedoesDamagedOnes) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "budgets = [0.5, 0.3]\n");
  auto first = sweep::run_sweep(cfg, runtime());
  ASSERT_EQ(first.ran.size(), 3u);  // one dense model, two prune tasks
  EXPECT_EQ(first.ran[0].kind, "dense");
  EXPECT_EQ(first.complete, 3);
  EXPECT_EQ(first.exit_code(), 0);
  std::map<std::string, fs::file_time_type> mtimes;
  for (auto& o : first.ran) {
    EXPECT_EQ(o.status, "complete") << o.error;
    mtimes[o.path] = fs::last_write_time(o.path);
  }
  auto second = sweep::run_sweep(cfg, runtime());
  EXPECT_TRUE(second.ran.empty());
  EXPECT_EQ(second.complete, 3);
  for (auto& [p, t] : mtimes) EXPECT_EQ(fs::last_write_time(p), t) << p;
  // A damaged run file is redone on the next launch; the others are untouched.
  const std::string victim = first.ran[2].path;
  fs::resize_file(victim, fs::file_size(victim) / 3);
  EXPECT_FALSE(sweep::check_file(victim).empty());
  auto third = sweep::run_sweep(cfg, runtime());
  ASSERT_EQ(third.ran.size(), 1u);
  EXPECT_EQ(third.ran[0].path, victim);
  EXPECT_TRUE(sweep::check_file(victim).empty());
  for (auto& [p, t] : mtimes)
    if (p != victim) {
      EXPECT_EQ(fs::last_write_time(p), t) << p;
    }
  auto table = sweep::summary_table(cfg.output.dir);
  EXPECT_NE(table.find("random_uniform"), std::string::npos) << table;
  EXPECT_NE(table.find("0.30"), std::string::npos) << table;
  // The index links every result file.
  io::File idx = io::open_complete(fs::path(cfg.output.dir) / "sweep.h5");
  EXPECT_EQ(idx.root().attr_int("complete"), 3);
  EXPECT_EQ(idx.root().open_group("runs").children().size(), 3u);
  EXPECT_EQ(idx.root().open_group("table").read<double>("top1").size(), 3u);
}

TEST(SweepRunner, InjectedFailureIsIsolatedRetriedAndReported) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "budgets = [0.5, 0.3]\nmax_retries = 1\n");
  auto plan = sweep::make_plan(cfg);
  std::string bad_id, good_id;
  for (auto& t : plan.tasks)
    if (t.kind == sweep::Task::Kind::prune) (t.cfg.prune.budget == 0.3 ? bad_id : good_id) = t.id;
  const fs::path bad_path = plan.tasks[plan.index_of(bad_id)].path;
  {
    ScopedEnv fail("PASSLAB_TEST_FAIL_TASK", bad_id);
    auto r = sweep::run_sweep(cfg, runtime());
    EXPECT_EQ(r.complete, 2);
    EXPECT_EQ(r.failed, 1);
    EXPECT_EQ(r.exit_code(), 1);
    ASSERT_EQ(r.failed_ids.size(), 1u);
    EXPECT_EQ(r.failed_ids[0].rfind(bad_id, 0), 0u) << r.failed_ids[0];
    EXPECT_NE(r.summary().find(bad_id), std::string::npos);
    int attempts = 0;
    for (auto& o : r.ran)
      if (o.id == bad_id) {
        ++attempts;
        EXPECT_EQ(o.status, "failed");
        EXPECT_NE(o.error.find("injected failure"), std::string::npos) << o.error;
      } else {
        EXPECT_EQ(o.status, "complete") << o.id << ": " << o.error;
      }
    EXPECT_EQ(attempts, 2);  // the first attempt and max_retries = 1 retry
    auto state = sweep::read_state(bad_path);
    EXPECT_EQ(state.kind, sweep::ResultState::Kind::failed);
    EXPECT_EQ(state.attempts, 2);
    EXPECT_NE(state.error.find("injected failure"), std::string::npos);
    EXPECT_TRUE(sweep::check_file(bad_path).empty());  // a failure record is a valid file
    auto j = test::read_journal(cfg.output.dir);
    EXPECT_EQ(test::count_events(j, "fail", bad_id), 2);
    EXPECT_EQ(test::count_events(j, "end", good_id), 1);
    // A relaunch leaves a task that failed for good alone and still says so.
    auto again = sweep::run_sweep(cfg, runtime());
    EXPECT_TRUE(again.ran.empty());
    EXPECT_EQ(again.exit_code(), 1);
  }
  {
    // --retry-failed gives it fresh attempts; this time only its first attempt fails.
    ScopedEnv fail("PASSLAB_TEST_FAIL_TASK", bad_id + "@1");
    sweep::SweepOptions opt;
    opt.retry_failed = true;
    auto r = sweep::run_sweep(cfg, runtime(), opt);
    ASSERT_EQ(r.ran.size(), 2u);
    EXPECT_EQ(r.ran[0].status, "failed");
    EXPECT_EQ(r.ran[1].status, "complete");
    EXPECT_EQ(r.complete, 3);
    EXPECT_EQ(r.exit_code(), 0);
    EXPECT_EQ(sweep::read_state(bad_path).kind, sweep::ResultState::Kind::complete);
  }
}

TEST(SweepRunner, FailedDenseModelBlocksItsPruneTasks) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "budgets = [0.5, 0.3]\nmax_retries = 0\n");
  auto plan = sweep::make_plan(cfg);
  ScopedEnv fail("PASSLAB_TEST_FAIL_TASK", plan.tasks[0].id);
  auto r = sweep::run_sweep(cfg, runtime());
  ASSERT_EQ(r.ran.size(), 1u);  // the dense task, once; nothing depends on a missing model
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.blocked, 2);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_EQ(r.blocked_ids.size(), 2u);
  for (auto& t : plan.tasks)
    if (t.kind == sweep::Task::Kind::prune) {
      EXPECT_FALSE(fs::exists(t.path)) << t.path;
    }
}

TEST(SweepRunner, DivergedTrainingIsRecordedAsFailed) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "max_retries = 0\n");
  cfg.dense.lr = 1e30;  // SGD at this rate overflows the weights: the loss turns inf/NaN
  cfg.dense.epochs = 2;
  auto r = sweep::run_sweep(cfg, runtime());
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.blocked, 1);
  ASSERT_FALSE(r.ran.empty());
  EXPECT_EQ(r.ran[0].kind, "dense");
  EXPECT_NE(r.ran[0].error.find("training diverged: loss is"), std::string::npos) << r.ran[0].error;
  auto state = sweep::read_state(r.ran[0].path);
  EXPECT_EQ(state.kind, sweep::ResultState::Kind::failed);
  EXPECT_NE(state.error.find("diverged"), std::string::npos);
}

TEST(SweepRunner, DivergedFinetuneRecordsThePruneTaskAsFailedAndKeepsItsDenseModel) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "max_retries = 0\n");
  cfg.finetune.lr = 1e30;  // the fine-tune of the pruned network overflows; the dense model is sound
  auto r = sweep::run_sweep(cfg, runtime());
  EXPECT_EQ(r.complete, 1);
  EXPECT_EQ(r.failed, 1);
  ASSERT_EQ(r.ran.size(), 2u);
  EXPECT_EQ(r.ran[0].kind, "dense");
  EXPECT_EQ(sweep::read_state(r.ran[0].path).kind, sweep::ResultState::Kind::complete);
  EXPECT_EQ(r.ran[1].kind, "prune");
  EXPECT_NE(r.ran[1].error.find("training diverged: loss is"), std::string::npos) << r.ran[1].error;
  auto state = sweep::read_state(r.ran[1].path);
  EXPECT_EQ(state.kind, sweep::ResultState::Kind::failed) << state.error;
}

TEST(SweepRunner, RelaunchRedoesADeletedSummaryAndANonFiniteDenseFile) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = test::tiny_sweep(dir.path(), "budgets = [0.5]\n");
  auto first = sweep::run_sweep(cfg, runtime());
  ASSERT_EQ(first.complete, 2);
  const fs::path dense = first.ran[0].path, run = first.ran[1].path;

  // /summary deleted: damaged for the sweep, named by --check, redone by the relaunch.
  {
    io::File f = io::File::open(run, io::Mode::read_write);
    H5_CHECK(H5Ldelete(f.root().id(), "summary", H5P_DEFAULT));
    f.close();
  }
  auto state = sweep::read_state(run);
  EXPECT_EQ(state.kind, sweep::ResultState::Kind::damaged);
  EXPECT_NE(state.error.find("/summary: missing"), std::string::npos) << state.error;
  auto problems = sweep::check_file(run);
  ASSERT_FALSE(problems.empty());
  const auto dense_time = fs::last_write_time(dense);
  auto second = sweep::run_sweep(cfg, runtime());
  ASSERT_EQ(second.ran.size(), 1u);
  EXPECT_EQ(second.ran[0].path, run.string());
  EXPECT_TRUE(rf::check(run).usable()) << rf::check(run).reason();
  EXPECT_EQ(fs::last_write_time(dense), dense_time);

  // A dense file holding NaN under a digest that matches (the old kill-on-rename damage): no
  // prune task loads it, the relaunch trains it again.
  {
    io::File f = io::File::open(dense, io::Mode::read_write);
    auto w = f.root().open_group("weights");
    auto d = w.open_dataset(w.children().front());
    float nan = NAN;
    d.write_rows<float>(0, 1, &nan);
    io::write_digest(f);
    f.close();
  }
  state = sweep::read_state(dense);
  EXPECT_EQ(state.kind, sweep::ResultState::Kind::damaged);
  EXPECT_NE(state.error.find("non-finite values in /weights/"), std::string::npos) << state.error;
  EXPECT_THROW(rf::open_usable(dense), IOError);
  auto third = sweep::run_sweep(cfg, runtime());
  ASSERT_EQ(third.ran.size(), 1u);
  EXPECT_EQ(third.ran[0].path, dense.string());
  EXPECT_TRUE(rf::check(dense).usable()) << rf::check(dense).reason();
  EXPECT_TRUE(sweep::check_results(cfg.output.dir).empty());
}
