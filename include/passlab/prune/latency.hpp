#pragma once
// Forward latency of a network: untimed warm-up passes, then timed repeats; the median is the
// reported number. On CUDA devices each pass is timed with CUDA events (when passlab is built
// with CUDA), on the CPU with a steady clock. Runs under no-grad in eval mode (mode restored).
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

// Input: random normal [batch, in_channels, size, size] on the network's device.
LatencyResult measure_latency(models::Network& net, int64_t batch, int64_t in_channels, int64_t input_size,
                              int64_t warmup = 3, int64_t repeats = 10, bool channels_last = false);

}  // namespace passlab::prune
