#include "passlab/data/sampler.hpp"

#include <numeric>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"

namespace passlab::data {

ShardedSampler::ShardedSampler(int64_t dataset_size, SamplerOptions opt) : n_(dataset_size), opt_(opt) {
  PASSLAB_CHECK(n_ >= 0, InternalError, "negative dataset size");
  PASSLAB_CHECK(opt_.world >= 1 && opt_.rank >= 0 && opt_.rank < opt_.world, InternalError,
                "sampler rank " + std::to_string(opt_.rank) + " of world " + std::to_string(opt_.world));
  if (opt_.group <= 0 || n_ == 0) return;
  const int64_t g = opt_.group;
  PASSLAB_CHECK(opt_.global_batch >= g && opt_.global_batch % g == 0, ConfigError,
                "batch size " + std::to_string(opt_.global_batch) + " is not a multiple of the BatchNorm group size " +
                    std::to_string(g) + " (model.ghost_batch)");
  if (n_ >= opt_.global_batch) {
    batch_ = opt_.global_batch;
    batches_ = n_ / batch_;
  } else {  // one batch of the whole groups there are (a rule that does not depend on world)
    batch_ = n_ / g * g;
    batches_ = batch_ > 0 ? 1 : 0;
  }
  const int64_t k = batch_ / g;
  PASSLAB_CHECK(k >= opt_.world, ConfigError,
                "a global batch of " + std::to_string(batch_) + " samples holds " + std::to_string(k) +
                    " BatchNorm group(s) of " + std::to_string(g) + " (model.ghost_batch), fewer than the " +
                    std::to_string(opt_.world) + " ranks of the run group (" + std::to_string(n_) +
                    " samples in the split); every rank needs a whole group: raise the batch size or lower model.ghost_batch");
  group_begin_ = opt_.rank * k / opt_.world;
  group_end_ = (opt_.rank + 1) * k / opt_.world;
}

int64_t ShardedSampler::per_rank() const {
  if (n_ == 0) return 0;
  if (opt_.group > 0) return batches_ * rank_batch();
  return opt_.drop_last ? n_ / opt_.world : (n_ + opt_.world - 1) / opt_.world;
}

std::vector<int64_t> ShardedSampler::epoch_order(int64_t epoch) const {
  if (opt_.shuffle) return permutation(n_, derive_seed(opt_.seed, static_cast<uint64_t>(epoch)));
  std::vector<int64_t> order(static_cast<size_t>(n_));
  std::iota(order.begin(), order.end(), int64_t{0});
  return order;
}

std::vector<int64_t> ShardedSampler::indices(int64_t epoch, int64_t position) const {
  const int64_t count = per_rank();
  PASSLAB_CHECK(position >= 0 && position <= count, InternalError,
                "sampler resume position " + std::to_string(position) + " outside [0, " + std::to_string(count) + "]");
  std::vector<int64_t> out;
  if (count == 0) return out;
  const auto order = epoch_order(epoch);
  out.reserve(static_cast<size_t>(count - position));
  if (opt_.group > 0) {
    const int64_t share = rank_batch(), first = group_begin_ * opt_.group;
    for (int64_t k = position; k < count; ++k)
      out.push_back(order[static_cast<size_t>(k / share * batch_ + first + k % share)]);
    return out;
  }
  for (int64_t k = position; k < count; ++k) {
    const int64_t global = opt_.rank + k * opt_.world;  // position in the padded epoch
    out.push_back(order[static_cast<size_t>(global % n_)]);
  }
  return out;
}

}  // namespace passlab::data
