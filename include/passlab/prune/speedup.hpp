#pragma once
// Speed-up of a compact network over its dense one that survives a noisy machine: both networks
// are timed in interleaved rounds within one call (round i times dense then compact when i is
// even, compact then dense when odd, so a slow phase of the machine hits both and neither always
// runs first), each round gives one ratio dense_ms / compact_ms, and the reported speed-up is the
// median ratio with its spread. A ratio of two separate medians taken minutes apart compares two
// machine states; a per-round ratio compares two passes a few ms apart.
// The statistics (round_statistics, warmup_stable) are pure functions of the times, testable
// without timing; time_speedup does the timing through latency.hpp's single-pass timer, and
// measure_speedup times the form a deployment runs (BatchNorm folded, models/fold.hpp) unless
// told to time the training form.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "passlab/models/network.hpp"
#include "passlab/models/prunable.hpp"

namespace passlab::config {
struct EvalConfig;
}

namespace passlab::prune {

// /proc/loadavg's 1-minute value (-1 where unreadable) and the online cores.
struct MachineLoad {
  double load_1min = -1;
  int64_t cores = 0;
};
MachineLoad read_machine_load();

struct RoundStatistics {
  double speedup = 0;  // median of the per-round ratios dense_ms / compact_ms
  double spread = 0;   // (q75 - q25) / median of the per-round ratios; 0 for one round
  double dense_median_ms = 0, compact_median_ms = 0;
  bool unreliable = false;  // spread > max_spread
};

// Statistics of rounds: dense_ms[i] and compact_ms[i] are round i's times (equal, non-zero sizes).
RoundStatistics round_statistics(const std::vector<double>& dense_ms, const std::vector<double>& compact_ms,
                                 double max_spread);

// True when the last `window` times vary by less than `tolerance` relative to their minimum:
// (max - min) / min < tolerance. False with fewer than `window` times.
bool warmup_stable(const std::vector<double>& times_ms, int64_t window, double tolerance);

// The form of both networks that measure_speedup times: as built (training form: BatchNorm
// layers, masks applied after them), or folded (models/fold.hpp) with contiguous (NCHW) or
// channels-last (NHWC) weights and input, or (folded_auto, named "auto") folded in whichever
// memory format times faster on the dense network here (NHWC wins on this CPU at 224 px and loses
// at 32 px). Names as in eval.latency_form and the run file, which records the format chosen.
enum class InferenceForm { training, folded, folded_channels_last, folded_auto };
const char* to_string(InferenceForm f);
InferenceForm parse_inference_form(const std::string& name);  // ConfigError for an unknown name

struct SpeedupOptions {
  int64_t rounds = 10;
  int64_t min_warmup = 3;          // warm-up passes per network at least ...
  int64_t max_warmup = 30;         // ... and at most, when the times do not settle
  int64_t warmup_window = 3;       // the last this many warm-up times of each network ...
  double warmup_tolerance = 0.10;  // ... must vary by less than this for the warm-up to end
  double max_spread = 0.10;        // spread above it flags the result unreliable
  double min_round_ms = 0;         // each network's share of a round: passes filling this long (0: one)
  InferenceForm form = InferenceForm::folded;
  // Called before each timed pass (true: dense); tests record the order with it.
  std::function<void(bool dense)> on_timed_pass;
};

// The options of [eval]: latency_repeats rounds, latency_warmup..latency_warmup_max warm-up
// passes, latency_warmup_tolerance, speedup_max_spread, latency_form.
SpeedupOptions speedup_options(const config::EvalConfig& eval);

struct SpeedupResult : RoundStatistics {
  std::vector<double> dense_ms, compact_ms;  // per round
  std::vector<uint8_t> dense_first;          // per round: 1 when dense ran first
  int64_t rounds = 0, warmup_passes = 0;     // warm-up passes per network
  int64_t dense_passes = 1, compact_passes = 1;  // timed back-to-back per round (the round's time: their mean)
  bool warmup_stable = false;                // false: the warm-up hit max_warmup
  MachineLoad load_start, load_end;
  std::string device;
  int64_t batch = 0;
  InferenceForm form = InferenceForm::training;  // the form that was timed (never folded_auto)
};

// The interleaved rounds on `dense` and `compact` as given (options.form only sets the input's
// memory format): both get the same random input [batch, in_channels, size, size] on the dense
// network's device; both run in eval mode under no-grad (modes restored).
SpeedupResult time_speedup(models::Network& dense, models::Network& compact, int64_t batch, int64_t in_channels,
                           int64_t input_size, const SpeedupOptions& options = {});

// time_speedup on options.form of both networks: the networks themselves for the training form,
// else folded copies of them (the networks are not changed). folded_auto first times the dense
// network's two folded formats against each other in min(rounds, 5) interleaved rounds.
SpeedupResult measure_speedup(models::PrunableNetwork& dense, models::PrunableNetwork& compact, int64_t batch,
                              int64_t in_channels, int64_t input_size, const SpeedupOptions& options = {});

}  // namespace passlab::prune
