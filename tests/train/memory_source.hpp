#pragma once
// An in-memory BatchSource for the trainer's tests (independent of the data module): the
// epoch's order is passlab::permutation(n, derive_seed(seed, epoch)); rank r of w takes
// positions r, r+w, r+2w, ... of it, padded by wrap-around to ceil(n/w) samples per rank.
#include <ATen/ATen.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "passlab/core/rng.hpp"
#include "passlab/data/batch.hpp"

namespace passlab::test {

class MemorySource : public data::BatchSource {
 public:
  MemorySource(at::Tensor images, at::Tensor labels, int64_t batch, int rank, int world, uint64_t seed, bool shuffle = true)
      : images_(std::move(images)), labels_(std::move(labels)), batch_(batch), rank_(rank), world_(world), seed_(seed),
        shuffle_(shuffle) {}
  void start_epoch(int64_t epoch) override {
    int64_t n = dataset_size();
    std::vector<int64_t> order;
    if (shuffle_) order = permutation(n, derive_seed(seed_, uint64_t(epoch)));
    else for (int64_t i = 0; i < n; ++i) order.push_back(i);
    mine_.clear();
    for (int64_t k = 0; k < samples_per_epoch(); ++k) mine_.push_back(order[size_t((rank_ + k * world_) % n)]);
    pos_ = 0;
  }
  std::optional<data::Batch> next() override {
    if (pos_ >= int64_t(mine_.size())) return std::nullopt;
    int64_t end = std::min<int64_t>(pos_ + batch_, int64_t(mine_.size()));
    at::Tensor idx = at::tensor(std::vector<int64_t>(mine_.begin() + pos_, mine_.begin() + end), at::kLong);
    pos_ = end;
    return data::Batch{images_.index_select(0, idx), labels_.index_select(0, idx), idx};
  }
  int64_t batches_per_epoch() const override { return (samples_per_epoch() + batch_ - 1) / batch_; }
  int64_t samples_per_epoch() const override { return (dataset_size() + world_ - 1) / world_; }
  int64_t dataset_size() const override { return images_.size(0); }

 private:
  at::Tensor images_, labels_;
  int64_t batch_;
  int rank_, world_;
  uint64_t seed_;
  bool shuffle_;
  std::vector<int64_t> mine_;
  int64_t pos_ = 0;
};

// A deterministic synthetic classification set: images of shape [n, c, h, w] whose class is
// (mostly) readable from the mean of a few pixels, so a small network learns something.
inline std::pair<at::Tensor, at::Tensor> synthetic_set(int64_t n, int64_t c, int64_t h, int64_t w, int64_t classes,
                                                       uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n * c * h * w));
  for (auto& v : x) v = float(rng.normal());
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (auto& v : y) v = int64_t(rng.uniform_below(uint64_t(classes)));
  at::Tensor images = at::tensor(x).view({n, c, h, w});
  at::Tensor labels = at::tensor(y, at::kLong);
  // Make the label visible: add a class-dependent offset to channel 0.
  images.select(1, 0).add_((labels.to(at::kFloat) / double(classes) - 0.5).view({n, 1, 1}) * 2.0);
  return {images, labels};
}

}  // namespace passlab::test
