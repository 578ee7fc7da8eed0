#pragma once
// The contract between data loaders and the trainer: a source of batches per epoch.
// Implemented by the HDF5 loader (data module) and by in-memory sources in tests.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace passlab::data {

struct Batch {
  at::Tensor images;  // float32 [B, C, H, W], normalised (and augmented for training)
  at::Tensor labels;  // int64 [B]
  at::Tensor indices; // int64 [B], dataset indices of the samples (for exactly-once checks)
  // Samples of the global batch (all ranks) this batch is this rank's part of; 0: not known
  // (the trainer then takes every rank's part as an equal share).
  int64_t global_size = 0;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Prepares epoch `epoch` (seed + epoch decide order and augmentation) for this rank.
  virtual void start_epoch(int64_t epoch) = 0;
  // Resume inside epoch `epoch` after its first `batches_done` batches: next() then returns the
  // batches an uninterrupted epoch returns from there (checkpoints taken mid-epoch). The default
  // draws and drops them; the HDF5 loader skips them without reading.
  virtual void resume_epoch(int64_t epoch, int64_t batches_done) {
    start_epoch(epoch);
    for (int64_t i = 0; i < batches_done; ++i)
      if (!next()) break;
  }
  // Next batch of this rank's shard, or nullopt when the epoch is done.
  virtual std::optional<Batch> next() = 0;
  // Batches and samples this rank gets per epoch (equal on every rank of a group).
  virtual int64_t batches_per_epoch() const = 0;
  virtual int64_t samples_per_epoch() const = 0;
  // Samples of the whole underlying split (before sharding/padding).
  virtual int64_t dataset_size() const = 0;
};

}  // namespace passlab::data
