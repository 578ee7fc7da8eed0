// ShardedSampler: exact partition over 1-4 ranks, equal counts, determinism, resume.
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/data/sampler.hpp"

using namespace passlab;
using namespace passlab::data;

namespace {
ShardedSampler make(int64_t n, int64_t rank, int64_t world, uint64_t seed = 42, bool drop_last = false, bool shuffle = true) {
  SamplerOptions o;
  o.seed = seed;
  o.rank = rank;
  o.world = world;
  o.drop_last = drop_last;
  o.shuffle = shuffle;
  return ShardedSampler(n, o);
}
}  // namespace

TEST(Sampler, PartitionsEveryEpochExactly) {
  for (int64_t n : {1, 2, 7, 10, 97, 100}) {
    for (int64_t world = 1; world <= 4; ++world) {
      const int64_t per = (n + world - 1) / world;
      std::map<int64_t, int> seen;
      for (int64_t r = 0; r < world; ++r) {
        auto s = make(n, r, world);
        EXPECT_EQ(s.per_rank(), per);
        auto idx = s.indices(3);
        ASSERT_EQ(static_cast<int64_t>(idx.size()), per) << "n=" << n << " world=" << world;
        for (int64_t i : idx) {
          ASSERT_GE(i, 0);
          ASSERT_LT(i, n);
          ++seen[i];
        }
      }
      // Full coverage; only the wrap-around padding (world*per - n samples) repeats.
      EXPECT_EQ(static_cast<int64_t>(seen.size()), n) << "n=" << n << " world=" << world;
      int64_t extra = 0;
      for (auto& [i, c] : seen) extra += c - 1;
      EXPECT_EQ(extra, per * world - n);
      // The padding repeats the first samples of the epoch order (wrap-around).
      if (per * world <= 2 * n) {
        auto order = make(n, 0, world).epoch_order(3);
        for (int64_t k = n; k < per * world; ++k) EXPECT_EQ(seen[order[static_cast<size_t>(k - n)]], 2);
      }
    }
  }
}

TEST(Sampler, DropLastNeverRepeats) {
  for (int64_t world = 1; world <= 4; ++world) {
    std::map<int64_t, int> seen;
    for (int64_t r = 0; r < world; ++r) {
      auto s = make(10, r, world, 1, /*drop_last=*/true);
      EXPECT_EQ(s.per_rank(), 10 / world);
      for (int64_t i : s.indices(0)) ++seen[i];
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), 10 / world * world);
    for (auto& [i, c] : seen) EXPECT_EQ(c, 1);
  }
}

TEST(Sampler, SeedAndEpochDecideTheOrder) {
  auto a = make(1000, 1, 3, 5), b = make(1000, 1, 3, 5), c = make(1000, 1, 3, 6);
  EXPECT_EQ(a.indices(0), b.indices(0));
  EXPECT_NE(a.indices(0), a.indices(1));
  EXPECT_NE(a.indices(0), c.indices(0));
  // The epoch order is the portable permutation of derive_seed(seed, epoch).
  EXPECT_EQ(a.epoch_order(4), permutation(1000, derive_seed(5, 4)));
  // Rank r's shard is every world-th element of the epoch order.
  auto order = a.epoch_order(2);
  auto idx = a.indices(2);
  for (size_t k = 0; k < idx.size(); ++k) EXPECT_EQ(idx[k], order[(1 + 3 * k) % 1000]);
  // Without shuffle: store order.
  auto plain = make(10, 0, 1, 5, false, false).indices(9);
  std::vector<int64_t> iota(10);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(plain, iota);
}

TEST(Sampler, ResumeContinuesWhereItStopped) {
  auto s = make(103, 2, 4, 11);
  auto full = s.indices(7);
  for (int64_t pos : {0, 1, 13, 25, 26}) {
    auto rest = s.indices(7, pos);
    ASSERT_EQ(rest.size(), full.size() - static_cast<size_t>(pos));
    EXPECT_TRUE(std::equal(rest.begin(), rest.end(), full.begin() + pos));
  }
  EXPECT_ANY_THROW(s.indices(7, 27));
}

namespace {
ShardedSampler grouped(int64_t n, int64_t rank, int64_t world, int64_t batch, int64_t group) {
  SamplerOptions o = make(1, rank, world).options();
  o.global_batch = batch;
  o.group = group;
  return ShardedSampler(n, o);
}
}  // namespace

// Ghost-group sharding: for 1, 2 and 3 ranks, putting the ranks' batches side by side (rank 0
// first) gives the same global batches, cut from the epoch order, with the tail dropped.
TEST(Sampler, GhostGroupsGiveTheSameGlobalBatchesOnAnyRankCount) {
  const int64_t n = 101, batch = 24, group = 8;  // 4 full batches of 3 groups, 5 samples dropped
  const auto order = grouped(n, 0, 1, batch, group).epoch_order(2);
  for (int64_t world = 1; world <= 3; ++world) {
    std::vector<std::vector<int64_t>> per(static_cast<size_t>(world));
    std::vector<int64_t> share;
    for (int64_t r = 0; r < world; ++r) {
      auto s = grouped(n, r, world, batch, group);
      EXPECT_EQ(s.global_batch(), batch);
      EXPECT_EQ(s.rank_batch() % group, 0);
      EXPECT_GT(s.rank_batch(), 0);
      EXPECT_EQ(s.per_rank(), 4 * s.rank_batch());
      per[static_cast<size_t>(r)] = s.indices(2);
      share.push_back(s.rank_batch());
    }
    // 3 groups: 3 on one rank; 1 and 2 on two ranks (rank r takes groups [3r/2, 3(r+1)/2)); 1 each on three.
    if (world == 2) {
      EXPECT_EQ(share, (std::vector<int64_t>{8, 16}));
    } else if (world == 3) {
      EXPECT_EQ(share, (std::vector<int64_t>{8, 8, 8}));
    }
    for (int64_t b = 0; b < 4; ++b) {
      std::vector<int64_t> global;
      for (int64_t r = 0; r < world; ++r) {
        const auto& mine = per[static_cast<size_t>(r)];
        const int64_t k = share[static_cast<size_t>(r)];
        global.insert(global.end(), mine.begin() + b * k, mine.begin() + (b + 1) * k);
      }
      std::vector<int64_t> want(order.begin() + b * batch, order.begin() + (b + 1) * batch);
      EXPECT_EQ(global, want) << "world " << world << " batch " << b;
    }
  }
}

TEST(Sampler, GhostGroupsResumeAndShortEpochs) {
  auto s = grouped(101, 1, 2, 24, 8);
  auto all = s.indices(0);
  auto rest = s.indices(0, 20);
  EXPECT_EQ(std::vector<int64_t>(all.begin() + 20, all.end()), rest);
  // Fewer samples than a batch: one batch of the whole groups there are, on any rank count.
  auto short1 = grouped(20, 0, 1, 24, 8), short2 = grouped(20, 1, 2, 24, 8);
  EXPECT_EQ(short1.global_batch(), 16);
  EXPECT_EQ(short1.per_rank(), 16);
  EXPECT_EQ(short2.per_rank(), 8);
  auto o = short1.indices(0);
  EXPECT_EQ(short2.indices(0), std::vector<int64_t>(o.begin() + 8, o.end()));
}

TEST(Sampler, GhostGroupsFewerThanRanksIsAConfigError) {
  try {
    grouped(100, 0, 3, 16, 8);
    ADD_FAILURE() << "no error for 2 groups over 3 ranks";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 2 BatchNorm group(s) of 8 (model.ghost_batch), fewer than the 3 ranks"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(grouped(100, 0, 1, 20, 8), ConfigError);  // not whole groups
}
