// Results do not depend on the rank count: one tiny sweep (dense model + an l1_global prune task
// with fine-tuning) run by `passlab run` as one run group of 1, 2 and 3 ranks gives the same run
// ids, dense weights, keep indices and accuracies, up to the order of float reductions.
// BatchNorm groups of 8 in batches of 32 (4 groups): 3 ranks hold 1, 1 and 2 groups, so uneven
// shares are covered too. Training is short and slow (3 steps per stage at lr 0.01) because
// rounding differences of the reductions grow with every step; measured: dense weights and
// running statistics within 8e-5 of the 1-rank run (one step: 1e-6). The per-rank BatchNorm
// of before (the same sweep on main c36fd46, 1 against 2 ranks) differed by 3.5e-2 there, and its
// dense training loss by 4e-4 relative (now 3e-7).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "sweep/sweep_fixture.hpp"

using namespace passlab;
namespace fs = std::filesystem;
namespace rf = passlab::io::run_file;

namespace {

std::string binary() { return test::env_or("PASSLAB_BINARY", "build/passlab"); }

// The one .h5 file in `dir`.
fs::path only_file(const fs::path& dir) {
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".h5") files.push_back(e.path());
  EXPECT_EQ(files.size(), 1u) << dir;
  return files.empty() ? fs::path() : files.front();
}

struct Results {
  fs::path dense, run;
};

// `passlab run` of the sweep as one run group of `ranks` ranks; `extra`: further options.
Results run_group(const fs::path& toml, const fs::path& out, int ranks, const std::string& extra = "") {
  const std::string cmd = "mpirun -np " + std::to_string(ranks) + " --oversubscribe --bind-to none " + binary() + " run " +
                          toml.string() + " --set dist.ranks_per_run=" + std::to_string(ranks) +
                          " --set output.dir=" + out.string() + " --set model.ghost_batch=8 --set dense.lr=0.01" + extra;
  auto r = test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return {only_file(out / "dense"), only_file(out / "runs")};
}

double max_abs_diff(const io::NamedTensors& a, const io::NamedTensors& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    if (!a[i].second.is_floating_point()) {
      EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
      continue;
    }
    worst = std::max(worst, (a[i].second.to(at::kDouble) - b[i].second.to(at::kDouble)).abs().max().item<double>());
  }
  return worst;
}

}  // namespace

TEST(RankCount, OneTwoAndThreeRanksGiveTheSameResults) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  const fs::path toml = dir.path() / "sweep.toml";
  test::write_text(toml, test::tiny_sweep_toml(dir.path(), "methods = [\"l1_global\"]\n"));
  const double one_test_image = 1.0 / 40;

  const Results base = run_group(toml, dir.path() / "r1", 1);
  ASSERT_FALSE(base.dense.empty() || base.run.empty());
  io::File bd = io::open_complete(base.dense), br = io::open_complete(base.run);
  const io::NamedTensors base_weights = io::read_tensors(bd.root().open_group(rf::kWeights));
  const auto base_loss = bd.root().open_group(rf::kMetrics).read<double>(std::string("dense") + rf::kTrainLossSuffix);
  auto base_keep = br.root().open_group(rf::kKeep);

  for (int ranks : {2, 3}) {
    SCOPED_TRACE("ranks " + std::to_string(ranks));
    const Results res = run_group(toml, dir.path() / ("r" + std::to_string(ranks)), ranks);
    ASSERT_FALSE(res.dense.empty() || res.run.empty());
    // Same ids: the rank count is not part of them, and now it does not change the numbers.
    EXPECT_EQ(res.dense.filename(), base.dense.filename());
    EXPECT_EQ(res.run.filename(), base.run.filename());
    io::File d = io::open_complete(res.dense), r = io::open_complete(res.run);
    EXPECT_EQ(r.root().attr_int(rf::kGroupSize), ranks);

    // Dense model: weights and running statistics (averaged over the group) after 3 steps.
    EXPECT_LT(max_abs_diff(io::read_tensors(d.root().open_group(rf::kWeights)), base_weights), 1e-3);
    const auto loss = d.root().open_group(rf::kMetrics).read<double>(std::string("dense") + rf::kTrainLossSuffix);
    ASSERT_EQ(loss.size(), base_loss.size());
    for (size_t e = 0; e < loss.size(); ++e) EXPECT_NEAR(loss[e], base_loss[e], 1e-5 * std::abs(base_loss[e]));
    EXPECT_NEAR(d.root().open_group(rf::kSummary).attr_double(rf::kTop1),
                bd.root().open_group(rf::kSummary).attr_double(rf::kTop1), one_test_image + 1e-12);

    // Prune task: the same channels kept, then the same fine-tuned accuracy.
    auto keep = r.root().open_group(rf::kKeep);
    ASSERT_EQ(keep.children(), base_keep.children());
    for (const auto& g : keep.children()) EXPECT_EQ(keep.read<int64_t>(g), base_keep.read<int64_t>(g)) << g;
    auto s = r.root().open_group(rf::kSummary), bs = br.root().open_group(rf::kSummary);
    EXPECT_NEAR(s.attr_double(rf::kTop1), bs.attr_double(rf::kTop1), one_test_image + 1e-12);
    EXPECT_NEAR(s.attr_double(rf::kTestLoss), bs.attr_double(rf::kTestLoss), 1e-3 * std::abs(bs.attr_double(rf::kTestLoss)));
  }
}

// The head stage (dense.mode = "head") on a run group of 2 ranks: the classifier trains on both
// ranks' shares of each batch, and every backbone parameter and BatchNorm buffer of the dense
// file is still bit for bit the source model's (no average over the ranks may touch them).
TEST(RankCount, HeadStageOnTwoRanksLeavesEveryBackboneTensorBitIdentical) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  const fs::path toml = dir.path() / "sweep.toml";
  test::write_text(toml, test::tiny_sweep_toml(dir.path(), "methods = [\"random_uniform\"]\n"));
  const Results source = run_group(toml, dir.path() / "source", 1);
  ASSERT_FALSE(source.dense.empty());

  const fs::path head = run_group(toml, dir.path() / "head", 2,
                                  " --set model.pretrained=" + source.dense.string() +
                                      " --set 'dense.mode=\"head\"' --set dense.epochs=2")
                            .dense;
  ASSERT_FALSE(head.empty());
  io::File s = io::open_complete(source.dense), h = io::open_complete(head);
  const io::NamedTensors before = io::read_tensors(s.root().open_group(rf::kWeights));
  const io::NamedTensors after = io::read_tensors(h.root().open_group(rf::kWeights));
  ASSERT_EQ(before.size(), after.size());
  int backbone = 0, head_changed = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    ASSERT_EQ(before[i].first, after[i].first);
    if (before[i].first.rfind("fc.", 0) == 0) {
      head_changed += !before[i].second.equal(after[i].second);
      continue;
    }
    EXPECT_TRUE(before[i].second.equal(after[i].second)) << before[i].first << " changed in the head stage";
    ++backbone;
  }
  EXPECT_GT(backbone, 60);           // every conv, BatchNorm weight, bias and buffer of resnet20
  EXPECT_EQ(head_changed, 2);  // fc.weight and fc.bias trained
  EXPECT_EQ(h.root().attr_int(rf::kGroupSize), 2);
}
