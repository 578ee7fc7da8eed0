#pragma once
// Per-epoch order of a split for one rank of a run group (DESIGN.md §3).
//   order(epoch) = permutation(n, derive_seed(seed, epoch))   (identity when !shuffle)
//   padded to a multiple of world by wrap-around (order[k mod n]), or, with drop_last, cut to
//   floor(n / world) * world; rank r takes positions r, r + world, r + 2 world, ...
// Every rank gets the same number of samples; together they cover the epoch exactly (padding
// repeats at most world - 1 samples). Portable: the same seed gives the same order everywhere.
//
// Ghost-group sharding (training; group > 0): the epoch order is cut into global batches of
// global_batch samples (the tail that does not fill one is dropped; an epoch shorter than one
// batch is one batch of its whole groups), each batch into groups of `group` consecutive samples,
// and rank r takes groups [r k / world, (r + 1) k / world) of every batch (k groups per batch).
// The global batches and their groups are the same for any world; a rank's batch is its groups
// in order (uneven when world does not divide k: 3 groups over 2 ranks give 1 and 2).
#include <cstdint>
#include <vector>

namespace passlab::data {

struct SamplerOptions {
  bool shuffle = true;
  bool drop_last = false;  // drop the tail instead of padding (never repeats a sample)
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
  int64_t global_batch = 0, group = 0;  // ghost-group sharding when group > 0
};

class ShardedSampler {
 public:
  ShardedSampler(int64_t dataset_size, SamplerOptions opt);
  int64_t dataset_size() const { return n_; }
  // Samples of each rank per epoch.
  int64_t per_rank() const;
  // Ghost-group sharding: samples of each global batch (all ranks) and this rank's part of it.
  int64_t global_batch() const { return batch_; }
  int64_t rank_batch() const { return (group_end_ - group_begin_) * opt_.group; }
  // This rank's indices for `epoch`, starting at `position` (resume: positions already consumed).
  std::vector<int64_t> indices(int64_t epoch, int64_t position = 0) const;
  // The whole epoch order (before sharding), for tests and diagnostics.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  const SamplerOptions& options() const { return opt_; }

 private:
  int64_t n_;
  SamplerOptions opt_;
  int64_t batch_ = 0, batches_ = 0;              // ghost-group sharding: global batch size and count
  int64_t group_begin_ = 0, group_end_ = 0;      // this rank's groups of each global batch
};

}  // namespace passlab::data
