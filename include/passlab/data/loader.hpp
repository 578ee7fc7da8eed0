#pragma once
// The HDF5 image loader: a data::BatchSource over one split view for one rank.
// Worker threads build whole batches (read the batch's rows in sorted runs for locality,
// transform each sample with its own Rng(derive_seed(seed, epoch, index))) into a bounded
// queue; next() returns batches in order. Output is identical for any number of threads.
// On CUDA (options.device), images and labels are built in pinned host memory and copied
// non-blocking to the device; indices stay on the CPU.
// Batch::indices are positions in the split view (0 .. dataset_size()-1). Wrap-around padding
// repeats up to world-1 samples per epoch: an exact evaluation over several ranks counts each
// index once (or uses drop_last with world 1).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "passlab/data/augment.hpp"
#include "passlab/data/batch.hpp"
#include "passlab/data/sampler.hpp"
#include "passlab/data/split.hpp"

namespace passlab::config {
struct DataConfig;
}

namespace passlab::data {

struct LoaderOptions {
  int64_t batch_size = 128;       // this rank's batch; with ghost_group > 0 the global batch
  // > 0: ghost-group sharding (sampler.hpp): each rank's batches are its whole groups of this
  // many samples of every global batch (training with BatchNorm statistics per group).
  int64_t ghost_group = 0;
  bool shuffle = true;           // per-epoch permutation (train); false: store order (eval)
  bool drop_last_batch = false;  // drop this rank's incomplete last batch (kept when it is the only one)
  bool drop_last = false;        // sampler: drop the epoch tail instead of wrap-around padding
  Augment augment = Augment::none;
  int64_t crop_padding = 4;
  int64_t out_size = 0;      // 0: store resolution
  int64_t out_channels = 0;  // 0: store channels; 3 turns gray stores into 3 channels
  // Empty: the store's train mean/std. Else per store channel, or per output channel when a gray
  // store is replicated to 3 channels (out_channels = 3).
  std::vector<double> mean, std;
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
  int64_t threads = 2;
  int64_t prefetch_batches = 4;
  c10::Device device = c10::Device(c10::kCPU);  // CUDA: pinned host buffers + non-blocking copy
};

// Options for a train (shuffle, augmentation, drop_last_batch) or an eval loader from [data].
// `model_channels`: the architecture's input channels (3 replicates gray stores), 0: the store's.
LoaderOptions loader_options(const config::DataConfig& cfg, const StoreInfo& info, bool train, int64_t batch_size,
                             uint64_t seed, int64_t rank, int64_t world, int64_t model_channels = 0);

class Loader : public BatchSource {
 public:
  Loader(SplitView view, LoaderOptions opt);
  ~Loader() override;  // stops workers mid-epoch without waiting for the epoch to finish
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  void start_epoch(int64_t epoch) override { start_epoch(epoch, 0); }
  // Resume: skips the first `start_batch` batches of this rank's epoch (same batches as an
  // uninterrupted epoch from there on).
  void start_epoch(int64_t epoch, int64_t start_batch);
  void resume_epoch(int64_t epoch, int64_t batches_done) override { start_epoch(epoch, batches_done); }
  std::optional<Batch> next() override;
  int64_t batches_per_epoch() const override;
  int64_t samples_per_epoch() const override;
  int64_t dataset_size() const override { return view_.size(); }

  const LoaderOptions& options() const { return opt_; }
  const TransformSpec& transform() const { return spec_; }
  const SplitView& view() const { return view_; }
  // Batches consumed in the current epoch (for checkpoints: resume with start_epoch(e, position)).
  int64_t position() const { return next_batch_; }

 private:
  void stop_workers();
  void worker_loop();
  Batch build_batch(int64_t b) const;

  SplitView view_;
  LoaderOptions opt_;
  TransformSpec spec_;
  ShardedSampler sampler_;
  bool use_cuda_ = false;

  // Current epoch.
  int64_t epoch_ = -1;
  std::vector<int64_t> indices_;  // this rank's view positions for the epoch
  int64_t first_batch_ = 0, end_batch_ = 0, next_batch_ = 0;

  // Worker pool state (guarded by mu_).
  std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  int64_t claim_ = 0;  // next batch number a worker takes
  bool stop_ = false;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> failed_;
  std::vector<std::thread> workers_;
};

}  // namespace passlab::data
