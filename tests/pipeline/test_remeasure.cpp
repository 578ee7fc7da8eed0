// `passlab remeasure`: the measurements file beside a tiny results directory (two complete
// prune runs over one dense model, one failed run file), one entry per usable run, skipping on
// a second call, resuming after an interruption, and the run files left as they were.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/io/digest.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/pipeline/measurements.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/remeasure.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/prune/latency.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using test::runtime;
using test::tiny_config;
namespace fs = std::filesystem;
namespace rf = io::run_file;

namespace {

struct RemeasureFixture : ::testing::Test {
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::write_store(dir_->path() / "tiny.h5", 160, 40);
    auto comm = dist::make_communicator("mpi", runtime());
    pipeline::run_dense_task(tiny_config(dir_->path(), "random_uniform"), runtime(), *comm);
    for (const char* method : {"random_uniform", "l1_global"}) {
      const auto cfg = tiny_config(dir_->path(), method);
      pipeline::run_prune_task(cfg, runtime(), *comm);
      ids_.push_back(config::run_id(cfg));
    }
    std::sort(ids_.begin(), ids_.end());
    // A run file of a failed task: listed as not usable, never timed.
    io::AtomicWriter w(results() / "runs" / "0failed00000.h5");
    w.root().set_attr(rf::kKind, rf::kPruneKind);
    w.root().set_attr(rf::kError, "injected");
    w.commit(rf::kFailed);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { fs::remove(pipeline::measurements_path(results())); }
  static fs::path results() { return dir_->path() / "results"; }
  static pipeline::RemeasureOptions options() {
    pipeline::RemeasureOptions o;
    o.overrides = {"eval.latency_repeats=3", "eval.latency_warmup_max=2"};  // quick: timings are not judged here
    o.progress = "none";
    return o;
  }
  static std::string key() { return pipeline::this_machine(runtime()).key(); }
  static test::TempDir* dir_;
  static std::vector<std::string> ids_;
};
test::TempDir* RemeasureFixture::dir_ = nullptr;
std::vector<std::string> RemeasureFixture::ids_;

std::vector<std::string> ids_in(const pipeline::Measurements& m, const std::string& key) {
  std::vector<std::string> out;
  auto it = m.by_machine().find(key);
  if (it != m.by_machine().end())
    for (const auto& [id, e] : it->second) out.push_back(id);
  return out;
}

}  // namespace

TEST(Measurements, EveryFieldSurvivesTheFile) {
  test::TempDir dir;
  pipeline::Measurement m;
  m.run_id = "abc";
  m.run_file = "runs/abc.h5";
  m.run_finished_at = "2026-11-30T01:00:00Z";
  m.measured_at = "2026-11-30T02:00:00Z";
  m.passlab_version = "0.1";
  m.git_sha = "1234567";
  m.machine = {"node/7", "cuda:1", "Some GPU"};
  m.threads = 4;
  m.latency_dense_ms = 2.5;
  m.latency_pruned_ms = 1.25;
  m.speedup = 2.0;
  m.speedup_spread = 0.125;
  m.speedup_max_spread = 0.1;
  m.speedup_rounds = 2;
  m.speedup_unreliable = true;
  m.load_1min_start = 0.5;
  m.load_1min_end = 0.75;
  m.cores = 16;
  m.speedup_form = "folded";
  m.latency_batch = 32;
  m.warmup_passes = 5;
  m.warmup_stable = true;
  m.dense_ms = {2.5, 2.0};
  m.compact_ms = {1.25, 1.5};
  pipeline::Measurements all;
  all.put(m);
  pipeline::Measurement other = m;
  other.machine.host = "node8";
  other.speedup = 3.0;
  all.put(other);
  all.put(other);  // replaces, does not add
  EXPECT_EQ(all.size(), 2u);
  all.write(dir.path());
  EXPECT_FALSE(fs::exists(io::tmp_path_for(pipeline::measurements_path(dir.path()))));
  const auto back = pipeline::Measurements::read(dir.path());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(m.machine.key(), "node_7@cuda:1");  // no '/' inside an HDF5 name
  const auto* r = back.find(m.machine.key(), "abc");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->run_file, m.run_file);
  EXPECT_EQ(r->run_finished_at, m.run_finished_at);
  EXPECT_EQ(r->measured_at, m.measured_at);
  EXPECT_EQ(r->passlab_version, m.passlab_version);
  EXPECT_EQ(r->git_sha, m.git_sha);
  EXPECT_EQ(r->machine.host, "node/7");
  EXPECT_EQ(r->machine.device, "cuda:1");
  EXPECT_EQ(r->machine.device_name, "Some GPU");
  EXPECT_EQ(r->threads, 4);
  EXPECT_EQ(r->latency_dense_ms, 2.5);
  EXPECT_EQ(r->latency_pruned_ms, 1.25);
  EXPECT_EQ(r->speedup, 2.0);
  EXPECT_EQ(r->speedup_spread, 0.125);
  EXPECT_EQ(r->speedup_max_spread, 0.1);
  EXPECT_EQ(r->speedup_rounds, 2);
  EXPECT_TRUE(r->speedup_unreliable);
  EXPECT_EQ(r->load_1min_start, 0.5);
  EXPECT_EQ(r->load_1min_end, 0.75);
  EXPECT_EQ(r->cores, 16);
  EXPECT_EQ(r->speedup_form, "folded");
  EXPECT_EQ(r->latency_batch, 32);
  EXPECT_EQ(r->warmup_passes, 5);
  EXPECT_TRUE(r->warmup_stable);
  EXPECT_EQ(r->dense_ms, m.dense_ms);
  EXPECT_EQ(r->compact_ms, m.compact_ms);
  EXPECT_EQ(back.find("node8@cuda:1", "abc")->speedup, 3.0);
  // The inspect table marks the flagged entry and explains the mark.
  const std::string table = pipeline::format_measurements(back);
  EXPECT_NE(table.find("2.00x?"), std::string::npos) << table;
  EXPECT_NE(table.find("?: unreliable"), std::string::npos) << table;
  EXPECT_EQ(pipeline::measurements_count_line(back), "2 entries on 2 machine(s), 2 flagged unreliable");
}

TEST(Measurements, DocsDescribeEveryAttributeAndDataset) {
  test::TempDir dir;
  pipeline::Measurement m;
  m.run_id = "abc";
  m.machine = {"host", "cpu", ""};
  m.dense_ms = m.compact_ms = {1.0};
  pipeline::Measurements all;
  all.put(m);
  io::File f = io::File::open(all.write(dir.path()));
  const std::string doc = test::read_text(test::source_dir() / "docs" / "measurements.md");
  auto documented = [&](const std::string& name) { return doc.find("`" + name + "`") != std::string::npos; };
  auto machine = f.root().open_group(m.machine.key());
  auto entry = machine.open_group("abc");
  std::vector<std::string> names = machine.attr_names();
  for (const auto& a : entry.attr_names()) names.push_back(a);
  for (const auto& name : names) EXPECT_TRUE(documented(name)) << name << " is missing from docs/measurements.md";
  for (const auto& name : entry.children()) EXPECT_NE(doc.find("    " + name + " "), std::string::npos) << name;
}

TEST(Measurements, AFileOfAnotherKindIsRefused) {
  test::TempDir dir;
  io::AtomicWriter w(pipeline::measurements_path(dir.path()));
  w.root().set_attr(rf::kKind, rf::kPruneKind);
  w.commit();
  EXPECT_THROW(pipeline::Measurements::read(dir.path()), IOError);
}

TEST_F(RemeasureFixture, OneEntryPerUsableRunFromItsOwnRounds) {
  // The run files are only read.
  std::vector<std::string> before;
  for (const auto& id : ids_) before.push_back(test::read_text(results() / "runs" / (id + ".h5")));
  const auto report = pipeline::remeasure_results(results(), runtime(), options());
  EXPECT_EQ(report.measured, 2);
  EXPECT_EQ(report.skipped, 0);
  ASSERT_EQ(report.unusable.size(), 1u);
  EXPECT_NE(report.unusable[0].find("0failed00000.h5"), std::string::npos) << report.unusable[0];
  for (size_t i = 0; i < ids_.size(); ++i)
    EXPECT_EQ(test::read_text(results() / "runs" / (ids_[i] + ".h5")), before[i]) << ids_[i];

  const auto all = pipeline::Measurements::read(results());
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(ids_in(all, key()), ids_);
  for (const auto& id : ids_) {
    const auto* m = all.find(key(), id);
    ASSERT_NE(m, nullptr) << id;
    io::File run = io::open_complete(results() / "runs" / (id + ".h5"));
    EXPECT_EQ(m->run_finished_at, run.root().attr_string(rf::kFinishedAt));
    EXPECT_EQ(m->run_file, "runs/" + id + ".h5");
    // The --set override reached the measurement; the rest is the run's own eval config.
    EXPECT_EQ(m->speedup_rounds, 3);
    ASSERT_EQ(m->dense_ms.size(), 3u);
    ASSERT_EQ(m->compact_ms.size(), 3u);
    EXPECT_EQ(m->latency_batch, 4);
    EXPECT_EQ(m->speedup_form, "folded");
    EXPECT_EQ(m->machine.device, "cpu");
    EXPECT_EQ(m->threads, runtime().threads());
    // The summary numbers are the statistics of the stored rounds (an independent recomputation).
    std::vector<double> ratios;
    for (size_t r = 0; r < 3; ++r) ratios.push_back(m->dense_ms[r] / m->compact_ms[r]);
    EXPECT_DOUBLE_EQ(m->speedup, prune::quantile(ratios, 0.5));
    EXPECT_DOUBLE_EQ(m->speedup_spread, (prune::quantile(ratios, 0.75) - prune::quantile(ratios, 0.25)) / m->speedup);
    EXPECT_DOUBLE_EQ(m->latency_dense_ms, prune::quantile(m->dense_ms, 0.5));
    EXPECT_DOUBLE_EQ(m->latency_pruned_ms, prune::quantile(m->compact_ms, 0.5));
    EXPECT_EQ(m->speedup_unreliable, m->speedup_spread > m->speedup_max_spread);
    EXPECT_EQ(m->speedup_max_spread, 0.10);  // eval.speedup_max_spread's default
    EXPECT_FALSE(m->measured_at.empty());
  }
}

TEST_F(RemeasureFixture, ASecondCallSkipsEveryRunAndForceTimesThemAgain) {
  pipeline::remeasure_results(results(), runtime(), options());
  const auto first = pipeline::Measurements::read(results());
  const auto again = pipeline::remeasure_results(results(), runtime(), options());
  EXPECT_EQ(again.measured, 0);
  EXPECT_EQ(again.skipped, 2);
  const auto second = pipeline::Measurements::read(results());
  for (const auto& id : ids_) EXPECT_EQ(second.find(key(), id)->dense_ms, first.find(key(), id)->dense_ms) << id;
  auto o = options();
  o.force = true;
  EXPECT_EQ(pipeline::remeasure_results(results(), runtime(), o).measured, 2);
  EXPECT_EQ(pipeline::Measurements::read(results()).size(), 2u);
}

TEST_F(RemeasureFixture, AnInterruptedCallLosesNothingAndTheNextOneFinishes) {
  auto o = options();
  int written = 0;
  o.on_written = [&](const pipeline::Measurement&) {
    if (++written == 1) throw std::runtime_error("interrupted after the first entry");
  };
  EXPECT_THROW(pipeline::remeasure_results(results(), runtime(), o), std::runtime_error);
  const auto partial = pipeline::Measurements::read(results());
  ASSERT_EQ(partial.size(), 1u);
  const std::string first = ids_in(partial, key()).at(0);
  const auto resumed = pipeline::remeasure_results(results(), runtime(), options());
  EXPECT_EQ(resumed.measured, 1);
  EXPECT_EQ(resumed.skipped, 1);
  const auto all = pipeline::Measurements::read(results());
  EXPECT_EQ(ids_in(all, key()), ids_);
  EXPECT_EQ(all.find(key(), first)->dense_ms, partial.find(key(), first)->dense_ms);  // kept, not retimed
}

TEST_F(RemeasureFixture, MaxRunsStopsEarlyAndARewrittenRunIsTimedAgain) {
  auto o = options();
  o.max_runs = 1;
  const auto part = pipeline::remeasure_results(results(), runtime(), o);
  EXPECT_EQ(part.measured, 1);
  EXPECT_EQ(part.left, 1);
  EXPECT_EQ(pipeline::remeasure_results(results(), runtime(), options()).measured, 1);
  // A rerun of the task rewrote one run file (a new @finished_at): its old entry is stale.
  const fs::path file = results() / "runs" / (ids_[0] + ".h5");
  std::string finished;
  {  // rewritten as a writer would: the new digest with it, so the file stays usable
    io::File f = io::File::open(file, io::Mode::read_write);
    finished = f.root().attr_string(rf::kFinishedAt);
    f.root().set_attr(rf::kFinishedAt, std::string("2099-01-01T00:00:00Z"));
    io::write_digest(f);
  }
  const auto after = pipeline::remeasure_results(results(), runtime(), options());
  {
    io::File f = io::File::open(file, io::Mode::read_write);
    f.root().set_attr(rf::kFinishedAt, finished);
    io::write_digest(f);
  }
  EXPECT_EQ(after.measured, 1);
  EXPECT_EQ(after.skipped, 1);
  EXPECT_EQ(pipeline::Measurements::read(results()).find(key(), ids_[0])->run_finished_at, "2099-01-01T00:00:00Z");
}

TEST_F(RemeasureFixture, OverridesThatChangeTheDenseModelAreRefused) {
  EXPECT_THROW(pipeline::measure_run_file(results() / "runs" / (ids_[0] + ".h5"), results(), {"model.arch=resnet56"},
                                          runtime()),
               ConfigError);
}
