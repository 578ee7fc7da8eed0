#include "passlab/prune/latency.hpp"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#ifdef PASSLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#endif

#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"

namespace passlab::prune {

double quantile(std::vector<double> v, double p) {
  PASSLAB_CHECK(!v.empty() && p >= 0 && p <= 1, ConfigError, "quantile: needs values and p in [0, 1]");
  std::sort(v.begin(), v.end());
  const double h = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

at::Tensor latency_input(models::Network& net, int64_t batch, int64_t in_channels, int64_t input_size, bool channels_last) {
  at::Device dev = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  for (const auto& p : net.parameters(true)) {
    dev = p.device();
    dtype = p.scalar_type();
    break;
  }
  at::Tensor x = at::randn({batch, in_channels, input_size, input_size}, at::TensorOptions().device(dev).dtype(dtype));
  return channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

double time_forward_ms(models::Network& net, const at::Tensor& x) {
  if (x.device().is_cuda()) {
#ifdef PASSLAB_WITH_CUDA
    // Events on the current stream time the GPU work of this pass only, not queued earlier work.
    auto stream = at::cuda::getCurrentCUDAStream(x.device().index());
    at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
    start.record(stream);
    (void)net.forward(x);
    stop.record(stream);
    stop.synchronize();
    return static_cast<double>(start.elapsed_time(stop));
#else
    PASSLAB_CHECK(false, NotImplementedError, "latency on " + x.device().str() + " needs a CUDA-enabled build");
#endif
  }
  auto t0 = std::chrono::steady_clock::now();
  (void)net.forward(x);
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

LatencyResult measure_latency(models::Network& net, int64_t batch, int64_t in_channels, int64_t input_size, int64_t warmup,
                              int64_t repeats, bool channels_last) {
  PASSLAB_CHECK(batch >= 1 && repeats >= 1 && warmup >= 0, ConfigError, "latency: batch and repeats must be >= 1, warmup >= 0");
  InferenceScope scope(net);
  const at::Tensor x = latency_input(net, batch, in_channels, input_size, channels_last);
  LatencyResult r;
  r.batch = batch;
  r.device = x.device().str();
  r.channels_last = channels_last;
  for (int64_t i = 0; i < warmup; ++i) (void)net.forward(x);
  r.samples_ms.reserve(repeats);
  for (int64_t i = 0; i < repeats; ++i) r.samples_ms.push_back(time_forward_ms(net, x));
  const auto& s = r.samples_ms;
  const size_t n = s.size();
  r.median_ms = quantile(s, 0.5);
  r.mean_ms = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(n);
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  r.min_ms = *lo;
  r.max_ms = *hi;
  PL_DEBUG("latency on {}: median {:.3f} ms over {} repeats (batch {})", r.device, r.median_ms, n, batch);
  return r;
}

}  // namespace passlab::prune
