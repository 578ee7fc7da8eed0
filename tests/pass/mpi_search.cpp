// PASS search on 2 ranks: each rank trains on its own shard, only θ, ω, V gradients are
// all-reduced, and both ranks end with identical masks (and identical parameters).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "passlab/config/config.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/pass/search.hpp"

using namespace passlab;

namespace {
// Random batches that differ per rank (seeded by rank).
class ShardSource : public data::BatchSource {
 public:
  explicit ShardSource(int rank) : rank_(rank) {}
  void start_epoch(int64_t epoch) override {
    epoch_ = epoch;
    i_ = 0;
  }
  std::optional<data::Batch> next() override {
    if (i_ == 4) return std::nullopt;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 * rank_ + 10 * epoch_ + i_++);
    data::Batch b;
    b.images = at::randn({8, 3, 16, 16}, gen);
    b.labels = at::randint(0, 5, {8}, gen);
    b.indices = at::arange(8);
    return b;
  }
  int64_t batches_per_epoch() const override { return 4; }
  int64_t samples_per_epoch() const override { return 32; }
  int64_t dataset_size() const override { return 64; }

 private:
  int rank_;
  int64_t epoch_ = 0, i_ = 0;
};
}  // namespace

TEST(PassSearchMpi, TwoRanksEndWithIdenticalMasks) {
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  torch::manual_seed(3);  // same dense weights on both ranks
  auto net = models::make_model("resnet20", 5, 3, 16, "cifar");
  config::Config cfg;
  cfg.search.steps = 6;
  cfg.search.batch_size = 16;  // the global batch of ShardSource: 8 samples on each of 2 ranks,
  cfg.model.ghost_batch = 8;   // one BatchNorm group each
  cfg.search.hidden = 16;
  cfg.search.embed = 8;
  cfg.search.log_every = 100;
  cfg.prune.budget = 0.4;
  cfg.experiment.seed = static_cast<int64_t>(rank);  // different initial θ: the leader's is broadcast
  pass::InputGeometry geo{3, 16, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
  pass::PassSearch search(*net, cfg, geo);
  ShardSource src(rank);
  auto curves = search.run(src, *comm, pass::PassSearch::trainer_options(cfg, c10::Device(c10::kCPU), "search", {}));
  EXPECT_EQ(curves.loss.size(), 6u);
  auto hashes = comm->allgather(pass::masks_hash(search.masks()));
  EXPECT_EQ(hashes[0], hashes[1]);
  // The learned parameters are identical too (same mean gradient, same Adam state).
  double sum = 0;
  for (auto& p : search.hyper().parameters()) sum += p.detach().sum().item<double>();
  auto sums = comm->allgather(sum);
  EXPECT_EQ(sums[0], sums[1]);
  // The shards really differed (otherwise the check above would be trivial).
  src.start_epoch(0);
  auto first = src.next()->images.sum().item<double>();
  auto firsts = comm->allgather(first);
  EXPECT_NE(firsts[0], firsts[1]);
  // The allocation of identical scores is identical.
  auto alloc = search.allocate();
  std::string flat;
  for (auto& k : alloc.keep)
    for (auto i : k) flat += std::to_string(i) + ",";
  auto plan_hash = comm->allgather(static_cast<int64_t>(std::hash<std::string>{}(flat) >> 1));
  EXPECT_EQ(plan_hash[0], plan_hash[1]);
  EXPECT_TRUE(alloc.met_budget);
}
