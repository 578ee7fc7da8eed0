// The trainer's step-count mode (the PASS search runs through it): per-step curves, checkpoints
// every N steps resumed mid-epoch, and divergence stopped before anything is written.
// Shares test_train.cpp's binary (its global runtime initialises MPI).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "passlab/core/error.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/train/trainer.hpp"
#include "support/test_util.hpp"
#include "train/memory_source.hpp"
#include "train/nets.hpp"

using namespace passlab;

namespace {

train::TrainerOptions step_options(int64_t max_steps, int64_t batch) {
  train::TrainerOptions o;
  o.train.batch_size = batch;
  o.train.optimizer = "adam";
  o.train.lr = 1e-2;
  o.train.schedule = "constant";
  o.progress = "none";
  o.label = "steps test";
  o.max_steps = max_steps;
  o.step_curves = true;
  return o;
}

// The step of the tests: cross-entropy, plus two recorded values whose truth is known: twice the
// loss, and the dataset index of the batch's first sample (which batch the step saw).
train::StepOutput step_with_values(test::SmallCnn& net, const data::Batch& b) {
  auto logits = net.forward(b.images);
  auto loss = train::cross_entropy(logits, b.labels);
  train::StepOutput out{loss, logits, {}};
  out.values = {{"twice", 2 * loss.detach()}, {"first_index", b.indices[0].to(at::kDouble)}};
  return out;
}

}  // namespace

TEST(TrainerSteps, CurvesAndCheckpointEveryNStepsResumeMidEpochBitForBit) {
  test::TempDir dir;
  auto comm = dist::make_mpi_communicator(MPI_COMM_SELF);
  auto [x, y] = test::synthetic_set(96, 3, 4, 4, 3, 11);
  // 96 samples in batches of 16: 6 steps per epoch; 15 steps end inside the third epoch.
  // `crash_after` > 0 throws from the step after that many steps (a killed job).
  auto run = [&](const std::filesystem::path& ckpt, int64_t crash_after, uint64_t init_seed) {
    torch::manual_seed(init_seed);
    auto net = std::make_shared<test::SmallCnn>(3, 3);
    auto o = step_options(15, 16);
    o.checkpoint = ckpt;
    o.checkpoint_every = 0;
    o.checkpoint_every_steps = 4;
    o.log_every_steps = 5;
    train::Trainer t(*net, *comm, o);
    int64_t calls = 0;
    t.set_step([&, crash_after](const data::Batch& b) {
      if (crash_after > 0 && t.global_step() == crash_after) throw std::runtime_error("simulated kill");
      ++calls;
      return step_with_values(*net, b);
    });
    test::MemorySource src(x, y, 16, 0, 1, 21);
    auto res = t.fit(src);
    return std::make_tuple(net, res, calls);
  };
  auto [full, full_res, full_calls] = run(dir / "full.ckpt.h5", 0, 3);
  EXPECT_EQ(full_calls, 15);
  EXPECT_EQ(full_res.steps, 15);
  ASSERT_EQ(full_res.curves.names, (std::vector<std::string>{"loss", "twice", "first_index"}));
  const auto loss = full_res.curves.get("loss"), twice = full_res.curves.get("twice");
  ASSERT_EQ(loss.size(), 15u);
  for (size_t s = 0; s < loss.size(); ++s) EXPECT_EQ(twice[s], 2 * loss[s]) << "step " << s + 1;
  // The first index of each step's batch is the source's own epoch order (epochs restart at 6, 12).
  const auto first = full_res.curves.get("first_index");
  test::MemorySource order(x, y, 16, 0, 1, 21);
  for (int64_t s = 0; s < 15; ++s) {
    if (s % 6 == 0) order.start_epoch(s / 6);
    EXPECT_EQ(first[size_t(s)], order.next()->indices[0].item<double>()) << "step " << s + 1;
  }
  ASSERT_EQ(full_res.epochs.size(), 3u);  // the third epoch is cut at step 15

  // Killed during step 11: the checkpoint of step 8 (epoch 2, after 2 of its 6 batches) is the last.
  auto ckpt = dir / "crash.ckpt.h5";
  EXPECT_THROW(run(ckpt, 10, 3), std::runtime_error);
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  {
    io::File f = io::open_complete(ckpt);
    EXPECT_EQ(f.root().attr_int("global_step"), 8);
    EXPECT_EQ(f.root().attr_int("next_epoch"), 1);
    EXPECT_EQ(f.root().attr_int("next_batch"), 2);
  }
  // Relaunch in a fresh model (another init, its RNG advanced differently): steps 9..15 only.
  torch::randn({1000});
  auto [net, res, calls] = run(ckpt, 0, 99);
  EXPECT_EQ(res.resumed_from_step, 8);
  EXPECT_EQ(res.resumed_from_epoch, 1);
  EXPECT_EQ(calls, 7);
  // Same curves (restored ones and new ones), same epoch statistics, same parameters.
  ASSERT_EQ(res.curves.names, full_res.curves.names);
  for (size_t k = 0; k < res.curves.names.size(); ++k)
    EXPECT_EQ(res.curves.values[k], full_res.curves.values[k]) << res.curves.names[k];
  ASSERT_EQ(res.epochs.size(), 3u);
  for (size_t e = 0; e < 3; ++e) EXPECT_EQ(res.epochs[e].train_loss, full_res.epochs[e].train_loss) << "epoch " << e;
  auto pa = full->named_parameters(true);
  auto pb = net->named_parameters(true);
  for (const auto& it : pa) EXPECT_TRUE(torch::equal(it.value(), pb[it.key()])) << it.key();
}

TEST(TrainerSteps, NonFiniteLossFailsBeforeTheNextCheckpoint) {
  test::TempDir dir;
  auto comm = dist::make_mpi_communicator(MPI_COMM_SELF);
  auto [x, y] = test::synthetic_set(96, 3, 4, 4, 3, 11);
  torch::manual_seed(4);
  auto net = std::make_shared<test::SmallCnn>(3, 3);
  auto o = step_options(12, 16);
  o.checkpoint = dir / "nan.ckpt.h5";
  o.checkpoint_every = 0;
  o.checkpoint_every_steps = 2;
  train::Trainer t(*net, *comm, o);
  // Step 3's loss is NaN (and so, through its gradient, every later state).
  t.set_step([&](const data::Batch& b) {
    auto out = step_with_values(*net, b);
    if (t.global_step() == 2) out.loss = out.loss * std::numeric_limits<double>::quiet_NaN();
    return out;
  });
  test::MemorySource src(x, y, 16, 0, 1, 21);
  try {
    t.fit(src);
    FAIL() << "a NaN loss went unnoticed";
  } catch (const TrainingDiverged& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("steps test: training diverged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step 3"), std::string::npos) << msg;  // the first non-finite step, from the curve
  }
  // The checkpoint of step 2 is the last one: none was written from the diverged state.
  io::File f = io::open_complete(o.checkpoint);
  EXPECT_EQ(f.root().attr_int("global_step"), 2);
}

TEST(TrainerSteps, DivergingEpochTrainingThrowsAndWritesNoCheckpoint) {
  test::TempDir dir;
  auto comm = dist::make_mpi_communicator(MPI_COMM_SELF);
  auto [x, y] = test::synthetic_set(64, 3, 4, 4, 3, 7);
  torch::manual_seed(6);
  test::SmallCnn net(3, 3);
  train::TrainerOptions o;
  o.train.epochs = 3;
  o.train.batch_size = 16;
  o.train.lr = 1e30;  // overflows the weights within the first epoch
  o.progress = "none";
  o.label = "dense test";
  o.checkpoint = dir / "dense.ckpt.h5";
  train::Trainer t(net, *comm, o);
  test::MemorySource src(x, y, 16, 0, 1, 3);
  try {
    t.fit(src);
    FAIL() << "lr 1e6 did not diverge";
  } catch (const TrainingDiverged& e) {
    EXPECT_NE(std::string(e.what()).find("dense test: training diverged"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("epoch 1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(o.checkpoint));
}
