#pragma once
// Forward latency of a network: untimed warm-up passes, then timed repeats; the median is the
// reported number. On CUDA devices each pass is timed with CUDA events (when passlab is built
// with CUDA), on the CPU with a steady clock. Runs under no-grad in eval mode (mode restored).
// The single-pass timer (time_forward_ms) and the inference scope are the one home of the timing
// code: measure_latency and measure_speedup (speedup.hpp) both time through them.
#include <ATen/core/Tensor.h>
#include <c10/core/GradMode.h>

#include <cstdint>
#include <string>
#include <vector>

#include "passlab/models/network.hpp"

namespace passlab::prune {

struct LatencyResult {
  double median_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
  std::vector<double> samples_ms;
  std::string device;
  int64_t batch = 0;
  bool channels_last = false;
};

// Quantile p in [0, 1] of `v` by linear interpolation between order statistics (numpy's default);
// p = 0.5 is the median of measure_latency and of the speed-up rounds.
double quantile(std::vector<double> v, double p);

// Eval mode and no-grad for the lifetime of the scope; the network's mode is restored after.
class InferenceScope {
 public:
  explicit InferenceScope(models::Network& net) : net_(net), was_training_(net.is_training()) { net_.eval(); }
  ~InferenceScope() { net_.train(was_training_); }
  InferenceScope(const InferenceScope&) = delete;
  InferenceScope& operator=(const InferenceScope&) = delete;

 private:
  models::Network& net_;
  bool was_training_;
  c10::NoGradGuard no_grad_;
};

// Random normal input [batch, in_channels, size, size] on the network's device and dtype.
at::Tensor latency_input(models::Network& net, int64_t batch, int64_t in_channels, int64_t input_size,
                         bool channels_last = false);

// Wall time of one forward pass of `net` on `x`, in ms: CUDA events on a CUDA device (throws
// NotImplementedError without a CUDA build), a steady clock on the CPU.
double time_forward_ms(models::Network& net, const at::Tensor& x);

// Input: latency_input(...).
LatencyResult measure_latency(models::Network& net, int64_t batch, int64_t in_channels, int64_t input_size,
                              int64_t warmup = 3, int64_t repeats = 10, bool channels_last = false);

}  // namespace passlab::prune
