#pragma once
// Per-epoch order of a split for one rank of a run group (DESIGN.md §3).
//   order(epoch) = permutation(n, derive_seed(seed, epoch))   (identity when !shuffle)
//   padded to a multiple of world by wrap-around (order[k mod n]), or, with drop_last, cut to
//   floor(n / world) * world; rank r takes positions r, r + world, r + 2 world, ...
// Every rank gets the same number of samples; together they cover the epoch exactly (padding
// repeats at most world - 1 samples). Portable: the same seed gives the same order everywhere.
#include <cstdint>
#include <vector>

namespace passlab::data {

struct SamplerOptions {
  bool shuffle = true;
  bool drop_last = false;  // drop the tail instead of padding (never repeats a sample)
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
};

class ShardedSampler {
 public:
  ShardedSampler(int64_t dataset_size, SamplerOptions opt);
  int64_t dataset_size() const { return n_; }
  // Samples of each rank per epoch.
  int64_t per_rank() const;
  // This rank's indices for `epoch`, starting at `position` (resume: positions already consumed).
  std::vector<int64_t> indices(int64_t epoch, int64_t position = 0) const;
  // The whole epoch order (before sharding), for tests and diagnostics.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  const SamplerOptions& options() const { return opt_; }

 private:
  int64_t n_;
  SamplerOptions opt_;
};

}  // namespace passlab::data
