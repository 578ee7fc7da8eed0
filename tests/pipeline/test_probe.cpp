// The structure probe (pipeline/probe.hpp): BatchNorm recalibration against statistics computed
// by hand, the probe of the dense plan against the dense network recalibrated alike, the
// probe's summary attributes in run files (and that it leaves the fine-tune unchanged), and the
// `passlab probe` command on a finished run file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>

#include "passlab/config/config.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/pipeline/probe.hpp"
#include "passlab/pipeline/stage_loaders.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/prune/slice.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"
#include "train/memory_source.hpp"

using namespace passlab;
namespace rf = passlab::io::run_file;

namespace {

at::Tensor param(models::Network& net, const std::string& name) { return net.named_parameters(true)[name].detach(); }
at::Tensor buffer(models::Network& net, const std::string& name) { return net.named_buffers(true)[name].detach(); }

// Per-channel mean and unbiased variance over batch and space, as BatchNorm's running update uses.
std::pair<at::Tensor, at::Tensor> channel_stats(const at::Tensor& a) {
  return {a.mean({0, 2, 3}), a.var({0, 2, 3}, /*unbiased=*/true)};
}

config::Config probe_config(const std::filesystem::path& dir, const std::string& method) {
  auto c = test::tiny_config(dir, method);
  c.dense.epochs = 1;
  c.eval.probe_batches = 3;
  return c;
}

// The folder of the store and of one trained dense model, made on first use.
const std::filesystem::path& trained() {
  static test::TempDir dir;
  static const bool ready = [] {
    test::write_store(dir.path() / "tiny.h5", 160, 40);
    auto comm = dist::make_communicator("mpi", test::runtime());
    pipeline::run_dense_task(probe_config(dir.path(), "l1_global"), test::runtime(), *comm);
    return true;
  }();
  (void)ready;
  return dir.path();
}

}  // namespace

TEST(Probe, RecalibratedStatisticsAreTheAveragesOfTheBatchStatistics) {
  torch::manual_seed(3);
  auto net = models::make_model("resnet20", 4, 1, 16);
  // Dense statistics far from the data's: a recalibration that kept any of them would show.
  {
    at::NoGradGuard g;
    for (auto& kv : net->named_buffers(true))
      if (kv.key().find("running_mean") != std::string::npos) kv.value().fill_(5.0);
  }
  auto [images, labels] = test::synthetic_set(24, 1, 16, 16, 4, 7);
  test::MemorySource src(images, labels, 8, 0, 1, 11, /*shuffle=*/false);
  auto comm = dist::make_communicator("mpi", test::runtime());
  std::map<std::string, at::Tensor> weights_before;
  for (auto& kv : net->named_parameters(true)) weights_before[kv.key()] = kv.value().detach().clone();

  EXPECT_EQ(pipeline::recalibrate_batchnorm(*net, src, 2, *comm, at::kCPU), 2);  // the first 2 of 3 batches

  // By hand over the same two batches (unshuffled: images 0-7, then 8-15). bn1 sees conv1's
  // output; layer1.0.bn1 sees layer1.0.conv1 of relu(bn1) normalised with the batch's own
  // (biased) statistics, as BatchNorm does in train mode.
  const double eps = 1e-5;
  at::Tensor m1 = at::zeros({16}), v1 = at::zeros({16}), m2 = at::zeros({16}), v2 = at::zeros({16});
  for (int64_t k = 0; k < 2; ++k) {
    const at::Tensor x = images.slice(0, 8 * k, 8 * k + 8);
    const at::Tensor c1 = at::conv2d(x, param(*net, "conv1.weight"), {}, 1, 1);
    auto [mean1, var1] = channel_stats(c1);
    m1 += mean1 / 2;
    v1 += var1 / 2;
    const at::Tensor biased1 = c1.var({0, 2, 3}, /*unbiased=*/false);
    const at::Tensor h = at::relu((c1 - mean1.view({1, -1, 1, 1})) / (biased1.view({1, -1, 1, 1}) + eps).sqrt() *
                                      param(*net, "bn1.weight").view({1, -1, 1, 1}) +
                                  param(*net, "bn1.bias").view({1, -1, 1, 1}));
    auto [mean2, var2] = channel_stats(at::conv2d(h, param(*net, "layer1.0.conv1.weight"), {}, 1, 1));
    m2 += mean2 / 2;
    v2 += var2 / 2;
  }
  EXPECT_TRUE(at::allclose(buffer(*net, "bn1.running_mean"), m1, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(buffer(*net, "bn1.running_var"), v1, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(buffer(*net, "layer1.0.bn1.running_mean"), m2, 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(buffer(*net, "layer1.0.bn1.running_var"), v2, 1e-4, 1e-5));
  // No weight moved; eval mode; the momentum restored.
  for (auto& kv : net->named_parameters(true)) EXPECT_TRUE(at::equal(kv.value(), weights_before[kv.key()])) << kv.key();
  EXPECT_FALSE(net->is_training());
  int bns = 0;
  for (auto& m : net->modules(false))
    if (auto* bn = dynamic_cast<models::GhostBatchNorm2dImpl*>(m.get())) {
      ++bns;
      EXPECT_FALSE(bn->is_training());
      ASSERT_TRUE(bn->momentum.has_value());
      EXPECT_DOUBLE_EQ(*bn->momentum, 0.1);
    }
  EXPECT_GT(bns, 10);  // ResNet-20's BatchNorms were all checked
  // A source shorter than asked: every batch it has; an empty budget is refused.
  EXPECT_EQ(pipeline::recalibrate_batchnorm(*net, src, 10, *comm, at::kCPU), 3);
  EXPECT_THROW(pipeline::recalibrate_batchnorm(*net, src, 0, *comm, at::kCPU), ConfigError);
}

TEST(Probe, DensePlanScoresAsTheDenseNetworkRecalibratedAlike) {
  auto cfg = probe_config(trained(), "l1_global");
  auto comm = dist::make_communicator("mpi", test::runtime());
  const pipeline::TaskContext ctx{cfg, test::runtime(), *comm, "probe-test"};
  const auto d = pipeline::open_data(cfg);
  auto dense = models::make_model(pipeline::dense_spec(cfg, d));
  models::load_weights(*dense, pipeline::dense_path(cfg));
  dense->eval();
  const auto stats_before = buffer(*dense, "layer2.0.bn2.running_var").clone();
  auto loader = [&](bool train) {
    return pipeline::make_loader(ctx, d, train ? d.splits.train : d.splits.val, train, 32, 99);
  };

  auto train = loader(true), val = loader(false);
  const auto r = pipeline::probe_plan(*dense, prune::full_plan(dense->structure()), *train, *val, 3, *comm, at::kCPU);
  EXPECT_EQ(r.batches, 3);
  EXPECT_EQ(r.val.samples, static_cast<int64_t>(d.splits.val.size()));
  // The dense network is left as it was.
  EXPECT_TRUE(at::equal(buffer(*dense, "layer2.0.bn2.running_var"), stats_before));

  // The same recalibration applied to the dense network itself, evaluated on its own.
  auto copy = models::make_model(pipeline::dense_spec(cfg, d));
  models::load_weights(*copy, pipeline::dense_path(cfg));
  auto train2 = loader(true), val2 = loader(false);
  EXPECT_EQ(pipeline::recalibrate_batchnorm(*copy, *train2, 3, *comm, at::kCPU), 3);
  train::TrainerOptions o;
  o.progress = "none";
  train::Trainer t(*copy, *comm, o);
  const auto expected = t.evaluate(*val2);
  EXPECT_EQ(r.val.top1_correct, expected.top1_correct);
  EXPECT_EQ(r.val.top5_correct, expected.top5_correct);
  EXPECT_NEAR(r.val.loss(), expected.loss(), 1e-5 * (1 + expected.loss()));
  // The recalibration did change the statistics the dense model was trained with.
  EXPECT_FALSE(at::allclose(buffer(*copy, "layer2.0.bn2.running_var"), stats_before));
}

TEST(Probe, RunFileRecordsTheProbeAndTheFineTuneIgnoresIt) {
  auto comm = dist::make_communicator("mpi", test::runtime());
  auto without = probe_config(trained(), "l1_global");
  without.eval.probe_batches = 0;
  auto with = probe_config(trained(), "l1_global");
  EXPECT_EQ(config::run_id(with), config::run_id(without));  // outside the run id

  auto read = [&](const config::Config& cfg) {
    pipeline::run_prune_task(cfg, test::runtime(), *comm);
    io::File f = io::open_complete(pipeline::run_path(cfg));
    EXPECT_TRUE(rf::validate(f).empty());
    return f;
  };
  double top1 = 0, loss = 0;
  std::vector<double> curve;
  {
    io::File f = read(without);
    const auto s = f.root().open_group(rf::kSummary);
    EXPECT_FALSE(s.has_attr(rf::kProbeValTop1));
    EXPECT_FALSE(s.has_attr(rf::kProbeBatches));
    top1 = s.attr_double(rf::kTop1);
    loss = s.attr_double(rf::kTestLoss);
    curve = f.root().read<double>("metrics/finetune_train_loss");
  }
  io::File f = read(with);
  const auto s = f.root().open_group(rf::kSummary);
  ASSERT_TRUE(s.has_attr(rf::kProbeValTop1));
  const double probe = s.attr_double(rf::kProbeValTop1);
  EXPECT_GE(probe, 0.0);
  EXPECT_LE(probe, 1.0);
  EXPECT_EQ(s.attr_int(rf::kProbeBatches), 3);
  // The same fine-tune and test results to the bit.
  EXPECT_EQ(s.attr_double(rf::kTop1), top1);
  EXPECT_EQ(s.attr_double(rf::kTestLoss), loss);
  EXPECT_EQ(f.root().read<double>("metrics/finetune_train_loss"), curve);
}

TEST(Probe, CommandScoresAFinishedRunFileAsTheTaskDid) {
  auto cfg = probe_config(trained(), "l1_uniform");
  auto comm = dist::make_communicator("mpi", test::runtime());
  pipeline::run_prune_task(cfg, test::runtime(), *comm);
  const auto file = pipeline::run_path(cfg);
  double recorded = -1;
  {
    io::File f = io::open_complete(file);
    recorded = f.root().open_group(rf::kSummary).attr_double(rf::kProbeValTop1);
  }
  const std::string bin = test::env_or("PASSLAB_BINARY", "passlab");
  auto r = test::run_command(bin + " probe --json " + file.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"run_id\": \"" + config::run_id(cfg) + "\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"method\": \"l1_uniform\""), std::string::npos) << r.output;
  const auto pos = r.output.find("\"probe_val_top1\": ");
  ASSERT_NE(pos, std::string::npos) << r.output;
  EXPECT_EQ(std::strtod(r.output.c_str() + pos + 18, nullptr), recorded) << r.output;  // same batches, same score
  EXPECT_NE(r.output.find("\"probe_batches\": 3}"), std::string::npos) << r.output;

  // More batches through --set; the table form names the file.
  auto t = test::run_command(bin + " probe --set eval.probe_batches=2 " + file.string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_NE(t.output.find("probe_val_top1"), std::string::npos) << t.output;
  EXPECT_NE(t.output.find(file.string()), std::string::npos) << t.output;
  // A dense file is not a run file; zero batches is refused.
  auto dense = test::run_command(bin + " probe " + pipeline::dense_path(cfg).string());
  EXPECT_EQ(dense.exit_code, 1) << dense.output;
  EXPECT_NE(dense.output.find("not a prune run file"), std::string::npos) << dense.output;
  auto zero = test::run_command(bin + " probe --set eval.probe_batches=0 " + file.string());
  EXPECT_EQ(zero.exit_code, 2) << zero.output;
}
