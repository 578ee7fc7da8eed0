#include "passlab/data/loader.hpp"

#include <ATen/ATen.h>

#ifndef PASSLAB_WITHOUT_OPENCV
#include <opencv2/core.hpp>
#endif

#include <algorithm>
#include <numeric>

#include "passlab/config/config.hpp"
#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"

namespace passlab::data {

LoaderOptions loader_options(const config::DataConfig& cfg, const StoreInfo& info, bool train, int64_t batch_size,
                             uint64_t seed, int64_t rank, int64_t world, int64_t model_channels) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = train;
  o.drop_last_batch = train;
  o.out_size = cfg.input_size;
  const int64_t size = cfg.input_size > 0 ? cfg.input_size : info.height;
  o.augment = train ? parse_augment(cfg.augment, size) : Augment::none;
  o.crop_padding = cfg.crop_padding;
  o.out_channels = model_channels;
  o.seed = seed;
  o.rank = rank;
  o.world = world;
  o.threads = cfg.loader_threads;
  o.prefetch_batches = cfg.prefetch_batches;
  return o;
}

namespace {
SamplerOptions sampler_options(const LoaderOptions& o) {
  SamplerOptions s;
  s.shuffle = o.shuffle;
  s.drop_last = o.drop_last;
  s.seed = o.seed;
  s.rank = o.rank;
  s.world = o.world;
  if (o.ghost_group > 0) {
    s.global_batch = o.batch_size;
    s.group = o.ghost_group;
  }
  return s;
}
}  // namespace

Loader::Loader(SplitView view, LoaderOptions opt)
    : view_(std::move(view)), opt_(std::move(opt)), sampler_(view_.size(), sampler_options(opt_)) {
  PASSLAB_CHECK(view_.store() != nullptr, InternalError, "Loader over an empty SplitView");
  PASSLAB_CHECK(opt_.batch_size > 0, ConfigError, "loader batch size must be positive");
  PASSLAB_CHECK(opt_.threads >= 1 && opt_.prefetch_batches >= 1, ConfigError, "loader threads and prefetch must be >= 1");
  const StoreInfo& info = view_.store()->info();
  spec_.augment = opt_.augment;
  spec_.in_h = info.height;
  spec_.in_w = info.width;
  spec_.in_c = info.channels;
  spec_.out_size = opt_.out_size;
  spec_.out_c = opt_.out_channels;
  spec_.crop_padding = opt_.crop_padding;
  spec_.mean = opt_.mean.empty() ? info.mean : opt_.mean;
  spec_.std = opt_.std.empty() ? info.std : opt_.std;
  finalize(spec_);
#ifndef PASSLAB_WITHOUT_OPENCV
  // The worker threads are the parallelism; OpenCV's own pool would oversubscribe the cores.
  cv::setNumThreads(1);
#endif
  if (opt_.ghost_group > 0) {
    // The sampler already cut the epoch into whole global batches: a batch is this rank's part.
    opt_.batch_size = std::max<int64_t>(1, sampler_.rank_batch());
    opt_.drop_last_batch = false;
  }
  if (opt_.drop_last_batch && sampler_.per_rank() > 0 && sampler_.per_rank() < opt_.batch_size) {
    // Dropping the only (partial) batch would leave an empty epoch: keep it.
    PL_WARN("loader over {} ({} samples per rank) keeps its one partial batch of the requested {}", view_.name(),
            sampler_.per_rank(), opt_.batch_size);
    opt_.drop_last_batch = false;
  }
  if (opt_.device.is_cuda()) {
    PASSLAB_CHECK(at::hasCUDA(), ConfigError, "loader asked for device " + opt_.device.str() + " but CUDA is not available");
    use_cuda_ = true;
  }
}

Loader::~Loader() { stop_workers(); }

int64_t Loader::samples_per_epoch() const {
  const int64_t n = sampler_.per_rank();
  return opt_.drop_last_batch ? n / opt_.batch_size * opt_.batch_size : n;
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = sampler_.per_rank();
  return opt_.drop_last_batch ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  cv_ready_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  ready_.clear();
  failed_.clear();
  stop_ = false;
}

void Loader::start_epoch(int64_t epoch, int64_t start_batch) {
  stop_workers();
  const int64_t nb = batches_per_epoch();
  PASSLAB_CHECK(start_batch >= 0 && start_batch <= nb, InternalError,
                "resume batch " + std::to_string(start_batch) + " outside [0, " + std::to_string(nb) + "]");
  epoch_ = epoch;
  indices_ = sampler_.indices(epoch);
  indices_.resize(static_cast<size_t>(samples_per_epoch()));
  first_batch_ = start_batch;
  end_batch_ = nb;
  next_batch_ = start_batch;
  claim_ = start_batch;
  const int64_t nthreads = std::min<int64_t>(opt_.threads, std::max<int64_t>(1, nb - start_batch));
  if (nb - start_batch <= 0) return;
  for (int64_t t = 0; t < nthreads; ++t) workers_.emplace_back([this] { worker_loop(); });
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // A batch may be built once the consumer is within prefetch_batches of it.
    cv_work_.wait(lock, [&] { return stop_ || claim_ >= end_batch_ || claim_ < next_batch_ + opt_.prefetch_batches; });
    if (stop_ || claim_ >= end_batch_) return;
    const int64_t b = claim_++;
    lock.unlock();
    Batch batch;
    std::exception_ptr err;
    try {
      batch = build_batch(b);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    if (err)
      failed_[b] = err;
    else
      ready_[b] = std::move(batch);
    cv_ready_.notify_all();
  }
}

Batch Loader::build_batch(int64_t b) const {
  const int64_t begin = b * opt_.batch_size;
  const int64_t count = std::min<int64_t>(opt_.batch_size, static_cast<int64_t>(indices_.size()) - begin);
  const int64_t S = spec_.out_size, OC = spec_.out_c;
  auto opts = at::TensorOptions().dtype(at::kFloat);
  if (use_cuda_) opts = opts.pinned_memory(true);
  Batch out;
  out.global_size = sampler_.global_batch();
  out.images = at::empty({count, OC, S, S}, opts);
  out.labels = at::empty({count}, at::TensorOptions().dtype(at::kLong).pinned_memory(use_cuda_));
  out.indices = at::empty({count}, at::TensorOptions().dtype(at::kLong));
  float* img = out.images.data_ptr<float>();
  int64_t* lab = out.labels.data_ptr<int64_t>();
  int64_t* idx = out.indices.data_ptr<int64_t>();

  // Read the batch's store rows in ascending order, one read per run of consecutive rows.
  const Store& store = *view_.store();
  const auto& labels = store.labels(view_.raw_split());
  const int64_t rb = store.info().image_bytes();
  std::vector<std::pair<int64_t, int64_t>> order;  // (store row, slot in batch)
  order.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order.emplace_back(view_.row(indices_[static_cast<size_t>(begin + i)]), i);
  std::sort(order.begin(), order.end());
  std::vector<uint8_t> pixels(static_cast<size_t>(count * rb));
  std::vector<int64_t> slot_offset(static_cast<size_t>(count));  // byte offset in `pixels` of each slot
  int64_t filled = 0;
  for (size_t k = 0; k < order.size();) {
    size_t e = k + 1;
    while (e < order.size() && order[e].first <= order[e - 1].first + 1) ++e;
    // Rows order[k..e) are consecutive (a repeated row, from padding, is read twice).
    const int64_t first = order[k].first, last = order[e - 1].first;
    const int64_t n = last - first + 1;
    store.read_images(view_.raw_split(), first, n, pixels.data() + filled * rb);
    for (size_t j = k; j < e; ++j) slot_offset[static_cast<size_t>(order[j].second)] = (filled + order[j].first - first) * rb;
    filled += n;
    k = e;
  }
  const int64_t sample_floats = OC * S * S;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t vi = indices_[static_cast<size_t>(begin + i)];
    Rng rng(derive_seed(opt_.seed, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(vi)));
    transform_sample(spec_, pixels.data() + slot_offset[static_cast<size_t>(i)], rng, img + i * sample_floats);
    lab[i] = labels[static_cast<size_t>(view_.row(vi))];
    idx[i] = vi;
  }
  return out;
}

std::optional<Batch> Loader::next() {
  PASSLAB_CHECK(epoch_ >= 0, InternalError, "Loader::next before start_epoch");
  if (next_batch_ >= end_batch_) return std::nullopt;
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t b = next_batch_;
  cv_ready_.wait(lock, [&] { return ready_.count(b) || failed_.count(b); });
  if (auto f = failed_.find(b); f != failed_.end()) {
    auto err = f->second;
    failed_.erase(f);
    lock.unlock();
    stop_workers();
    end_batch_ = next_batch_;  // this epoch cannot continue
    std::rethrow_exception(err);
  }
  Batch batch = std::move(ready_[b]);
  ready_.erase(b);
  ++next_batch_;
  lock.unlock();
  cv_work_.notify_all();
  if (use_cuda_) {
    batch.images = batch.images.to(opt_.device, /*non_blocking=*/true);
    batch.labels = batch.labels.to(opt_.device, /*non_blocking=*/true);
  }
  return batch;
}

}  // namespace passlab::data
