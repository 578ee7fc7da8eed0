#include "passlab/prune/latency.hpp"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#ifdef PASSLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#endif

#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"

namespace passlab::prune {

LatencyResult measure_latency(models::Network& net, int64_t batch, int64_t in_channels, int64_t input_size, int64_t warmup,
                              int64_t repeats, bool channels_last) {
  PASSLAB_CHECK(batch >= 1 && repeats >= 1 && warmup >= 0, ConfigError, "latency: batch and repeats must be >= 1, warmup >= 0");
  at::Device dev = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  for (const auto& p : net.parameters(true)) {
    dev = p.device();
    dtype = p.scalar_type();
    break;
  }
  const bool was_training = net.is_training();
  net.eval();
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({batch, in_channels, input_size, input_size}, at::TensorOptions().device(dev).dtype(dtype));
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  LatencyResult r;
  r.batch = batch;
  r.device = dev.str();
  r.channels_last = channels_last;
  for (int64_t i = 0; i < warmup; ++i) (void)net.forward(x);
  r.samples_ms.reserve(repeats);
#ifdef PASSLAB_WITH_CUDA
  if (dev.is_cuda()) {
    auto stream = at::cuda::getCurrentCUDAStream(dev.index());
    stream.synchronize();
    for (int64_t i = 0; i < repeats; ++i) {
      at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
      start.record(stream);
      (void)net.forward(x);
      stop.record(stream);
      stop.synchronize();
      r.samples_ms.push_back(static_cast<double>(start.elapsed_time(stop)));
    }
  }
#endif
  if (!dev.is_cuda()) {
    for (int64_t i = 0; i < repeats; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      (void)net.forward(x);
      auto t1 = std::chrono::steady_clock::now();
      r.samples_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  }
  PASSLAB_CHECK(!r.samples_ms.empty(), NotImplementedError, "latency on " + r.device + " needs a CUDA-enabled build");
  net.train(was_training);
  std::vector<double> s = r.samples_ms;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  r.median_ms = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  r.mean_ms = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(n);
  r.min_ms = s.front();
  r.max_ms = s.back();
  PL_DEBUG("latency on {}: median {:.3f} ms over {} repeats (batch {})", r.device, r.median_ms, n, batch);
  return r;
}

}  // namespace passlab::prune
