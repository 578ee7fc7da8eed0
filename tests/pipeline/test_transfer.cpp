// The transfer regime (docs/transfer.md): a source dense model trained on one store starts the
// dense model of another store with fewer classes through model.pretrained; the head stage
// (dense.mode = "head") trains only the new classifier on the frozen backbone.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/pretrained.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using test::runtime;
using test::tiny_config;
namespace fs = std::filesystem;

namespace {

std::map<std::string, at::Tensor> weights_of(const fs::path& file) {
  io::File f = io::open_complete(file);
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : io::read_tensors(f.root().open_group("weights"))) out.emplace(name, t);
  return out;
}

// Source: resnet20 trained on the 4-class store "tiny". Target: the 3-class store "tiny3"
// whose dense model starts from the source's dense file.
struct TransferFixture : ::testing::Test {
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::write_store(dir_->path() / "tiny.h5", 160, 40);
    test::write_store(dir_->path() / "tiny3.h5", 150, 60, 3);
    auto comm = dist::make_communicator("mpi", runtime());
    pipeline::run_dense_task(source_config(), runtime(), *comm);
    pipeline::run_dense_task(head_config(), runtime(), *comm);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static config::Config source_config() {
    auto c = tiny_config(dir_->path(), "pass");
    c.dense.epochs = 10;  // features that tell the quadrants apart
    return c;
  }
  static fs::path source_file() { return pipeline::dense_path(source_config()); }
  static config::Config target_config(const std::string& mode) {
    auto c = tiny_config(dir_->path(), "pass");
    c.data.dataset = "tiny3";
    c.model.pretrained = source_file().string();
    c.dense.mode = mode;
    return c;
  }
  static config::Config head_config() {
    auto c = target_config("head");
    c.dense.epochs = 6;
    c.data.normalize = "source";
    return c;
  }
  static test::TempDir* dir_;
};
test::TempDir* TransferFixture::dir_ = nullptr;

// The penultimate activations of `file`'s resnet20: its backbone in a copy whose classifier is
// the identity (64 classes, weight I, bias 0), so the logits are the features themselves.
at::Tensor features(const fs::path& file, const at::Tensor& x) {
  auto probe = models::make_model("resnet20", 64, 1, 16);
  models::LoadOptions lo;
  lo.head = probe->head();
  EXPECT_TRUE(models::load_weights(*probe, file, lo).head_replaced);
  {
    torch::NoGradGuard g;
    for (auto& kv : probe->named_parameters()) {
      if (kv.key() == probe->head() + ".weight") kv.value().copy_(torch::eye(64));
      if (kv.key() == probe->head() + ".bias") kv.value().zero_();
    }
  }
  probe->eval();
  torch::NoGradGuard g;
  return probe->forward(x);
}

}  // namespace

TEST_F(TransferFixture, HeadStageLeavesEveryBackboneTensorBitIdentical) {
  const auto source = weights_of(source_file());
  const auto target = weights_of(pipeline::dense_path(head_config()));
  ASSERT_EQ(source.size(), target.size());
  auto probe = models::make_model("resnet20", 3, 1, 16);
  const std::string head = probe->head() + ".";
  int64_t backbone = 0, batchnorm_buffers = 0;
  for (auto& [name, t] : source) {
    ASSERT_TRUE(target.count(name)) << name;
    if (name.rfind(head, 0) == 0) {
      EXPECT_EQ(target.at(name).size(0), 3) << name;  // the new head: 3 classes
      continue;
    }
    EXPECT_TRUE(torch::equal(t, target.at(name))) << name;
    ++backbone;
    if (name.find("running_") != std::string::npos || name.find("num_batches_tracked") != std::string::npos)
      ++batchnorm_buffers;
  }
  EXPECT_GT(backbone, 60);
  EXPECT_GT(batchnorm_buffers, 20);
}

TEST_F(TransferFixture, HeadStageLearnsTheNewClasses) {
  io::File f = io::open_complete(pipeline::dense_path(head_config()));
  const auto loss = f.root().read<double>("metrics/dense_train_loss");
  ASSERT_EQ(loss.size(), 6u);
  EXPECT_LT(loss.back(), loss.front());
  // Three classes: chance is 1/3.
  EXPECT_GT(f.root().open_group("summary").attr_double("top1"), 0.6);
}

TEST_F(TransferFixture, ImportThenHeadStageReproducesTheSourceFeatures) {
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({8, 1, 16, 16});
  const at::Tensor src = features(source_file(), x), tgt = features(pipeline::dense_path(head_config()), x);
  EXPECT_TRUE(torch::equal(src, tgt));
  // The probe's outputs are the features: the target's logits are its head applied to them.
  auto target = models::make_model("resnet20", 3, 1, 16);
  models::load_weights(*target, pipeline::dense_path(head_config()));
  target->eval();
  torch::NoGradGuard g;
  const auto w = weights_of(pipeline::dense_path(head_config()));
  const at::Tensor logits = torch::addmm(w.at(target->head() + ".bias"), tgt, w.at(target->head() + ".weight").t());
  EXPECT_TRUE(torch::allclose(target->forward(x), logits, 1e-5, 1e-5));
}

TEST_F(TransferFixture, NormalisationIsRecordedAndFollowedFromTheSource) {
  io::File src = io::open_complete(source_file());
  io::File tgt = io::open_complete(pipeline::dense_path(head_config()));
  const auto in_src = src.root().open_group("normalization"), in_tgt = tgt.root().open_group("normalization");
  EXPECT_EQ(in_src.read_string("normalize"), "dataset");
  EXPECT_EQ(in_tgt.read_string("normalize"), "source");
  // The source's are its store's train statistics; the target follows them, not its own store's.
  const auto store = data::Store::open(dir_->path() / "tiny.h5");
  EXPECT_EQ(in_src.read<double>("mean"), store->info().mean);
  EXPECT_EQ(in_src.read<double>("std"), store->info().std);
  EXPECT_EQ(in_tgt.read<double>("mean"), in_src.read<double>("mean"));
  EXPECT_EQ(in_tgt.read<double>("std"), in_src.read<double>("std"));
  EXPECT_NE(data::Store::open(dir_->path() / "tiny3.h5")->info().mean, store->info().mean);
  // Both files follow the declared layout.
  EXPECT_TRUE(io::run_file::validate(src).empty());
  EXPECT_TRUE(io::run_file::validate(tgt).empty());
  // ImageNet statistics need three input channels; this gray source has one.
  auto c = target_config("full");
  c.data.normalize = "imagenet";
  EXPECT_THROW(pipeline::open_data(c), ConfigError);
}

TEST_F(TransferFixture, HeadThenFullRecordsBothPhasesAndTrainsTheBackbone) {
  auto c = target_config("head_then_full");
  c.dense.head_epochs = 1;
  c.dense.epochs = 1;
  auto comm = dist::make_communicator("mpi", runtime());
  pipeline::run_dense_task(c, runtime(), *comm);
  io::File f = io::open_complete(pipeline::dense_path(c));
  EXPECT_EQ(f.root().read<double>("metrics/dense_train_loss").size(), 2u);
  const auto source = weights_of(source_file()), target = weights_of(pipeline::dense_path(c));
  EXPECT_FALSE(torch::equal(source.at("conv1.weight"), target.at("conv1.weight")));
}

TEST_F(TransferFixture, RunFileStandsForItsDenseFile) {
  const fs::path results = dir_->path() / "results";
  const std::string dense_id = io::open_complete(source_file()).root().attr_string("dense_id");
  auto write_run = [&](const fs::path& p, const std::string& id) {
    fs::create_directories(p.parent_path());
    io::File f = io::File::create(p);
    f.root().set_attr(io::run_file::kKind, io::run_file::kPruneKind);
    f.root().set_attr(io::run_file::kDenseId, id);
  };
  write_run(results / "runs" / "r.h5", dense_id);
  const auto s = pipeline::open_pretrained(results / "runs" / "r.h5", "resnet20");
  EXPECT_EQ(s.weights_file, source_file());
  EXPECT_EQ(s.kind, "dense");
  EXPECT_EQ(s.channels, 1);
  write_run(results / "runs" / "gone.h5", "000000000000");
  try {
    pipeline::open_pretrained(results / "runs" / "gone.h5", "resnet20");
    ADD_FAILURE() << "no IOError";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("dense/000000000000.h5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pipeline::open_pretrained(source_file(), "resnet56"), IOError);
}

TEST_F(TransferFixture, ChangedSourceFileIsRefusedByItsDigest) {
  // One weight changed after the commit, as silent corruption would: the digest no longer
  // matches, and the file may not start another model.
  const fs::path copy = dir_->path() / "changed_source.h5";
  fs::copy_file(source_file(), copy, fs::copy_options::overwrite_existing);
  {
    io::File f = io::File::open(copy, io::Mode::read_write);
    io::Dataset fc = f.root().open_group("weights").open_dataset("fc.bias");
    std::vector<float> bias(static_cast<size_t>(fc.shape()[0]));
    fc.read_rows<float>(0, bias.size(), bias.data());
    bias[0] += 1.0f;
    fc.write_rows<float>(0, bias.size(), bias.data());
  }
  try {
    pipeline::open_pretrained(copy, "resnet20");
    ADD_FAILURE() << "a changed dense file was accepted";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("content digest mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(copy.string()), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(pipeline::open_pretrained(source_file(), "resnet20"));
}
