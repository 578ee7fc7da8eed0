#include "passlab/prune/speedup.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <utility>

#include "passlab/config/config.hpp"
#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"
#include "passlab/models/fold.hpp"
#include "passlab/prune/latency.hpp"

namespace passlab::prune {

MachineLoad read_machine_load() {
  MachineLoad m;
  std::ifstream in("/proc/loadavg");
  double v = 0;
  if (in >> v) m.load_1min = v;
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  m.cores = n > 0 ? static_cast<int64_t>(n) : 0;
  return m;
}

RoundStatistics round_statistics(const std::vector<double>& dense_ms, const std::vector<double>& compact_ms,
                                 double max_spread) {
  PASSLAB_CHECK(!dense_ms.empty() && dense_ms.size() == compact_ms.size(), ConfigError,
                "speed-up: needs one dense and one compact time per round, at least one round");
  std::vector<double> ratios(dense_ms.size());
  for (size_t i = 0; i < ratios.size(); ++i) {
    PASSLAB_CHECK(compact_ms[i] > 0, ConfigError, "speed-up: compact time of round " + std::to_string(i) + " is not > 0");
    ratios[i] = dense_ms[i] / compact_ms[i];
  }
  RoundStatistics s;
  s.speedup = quantile(ratios, 0.5);
  s.spread = (quantile(ratios, 0.75) - quantile(ratios, 0.25)) / s.speedup;
  s.dense_median_ms = quantile(dense_ms, 0.5);
  s.compact_median_ms = quantile(compact_ms, 0.5);
  s.unreliable = !(s.spread <= max_spread);  // NaN spread counts as unreliable
  return s;
}

bool warmup_stable(const std::vector<double>& times_ms, int64_t window, double tolerance) {
  if (window < 1 || static_cast<int64_t>(times_ms.size()) < window) return false;
  auto [lo, hi] = std::minmax_element(times_ms.end() - window, times_ms.end());
  return *lo > 0 && (*hi - *lo) / *lo < tolerance;
}

SpeedupOptions speedup_options(const config::EvalConfig& e) {
  return {.rounds = e.latency_repeats,
          .min_warmup = e.latency_warmup,
          .max_warmup = e.latency_warmup_max,
          .warmup_tolerance = e.latency_warmup_tolerance,
          .max_spread = e.speedup_max_spread,
          .min_round_ms = e.latency_round_ms,
          .form = parse_inference_form(e.latency_form),
          .on_timed_pass = nullptr};
}

namespace {
constexpr std::pair<InferenceForm, const char*> kFormNames[] = {
    {InferenceForm::training, "training"},
    {InferenceForm::folded, "folded"},
    {InferenceForm::folded_channels_last, "folded_channels_last"},
    {InferenceForm::folded_auto, "auto"}};
}  // namespace

const char* to_string(InferenceForm f) {
  for (const auto& [form, name] : kFormNames)
    if (form == f) return name;
  return "?";
}

InferenceForm parse_inference_form(const std::string& name) {
  for (const auto& [form, n] : kFormNames)
    if (name == n) return form;
  throw ConfigError("unknown latency form '" + name + "' (allowed: training, folded, folded_channels_last, auto)");
}

SpeedupResult measure_speedup(models::PrunableNetwork& dense, models::PrunableNetwork& compact, int64_t batch,
                              int64_t in_channels, int64_t input_size, const SpeedupOptions& o) {
  SpeedupResult r;
  if (o.form == InferenceForm::training) {
    r = time_speedup(dense, compact, batch, in_channels, input_size, o);
    r.form = o.form;
    return r;
  }
  bool channels_last = o.form == InferenceForm::folded_channels_last;
  if (o.form == InferenceForm::folded_auto) {
    // "Speed-up" of NHWC over NCHW on the same dense network: above 1, channels-last is faster.
    SpeedupOptions probe = o;
    probe.rounds = std::min<int64_t>(o.rounds, 5);
    probe.form = InferenceForm::folded;
    probe.on_timed_pass = nullptr;
    const auto layouts = time_speedup(*models::fold_batchnorm(dense), *models::fold_batchnorm(dense, {.channels_last = true}),
                                      batch, in_channels, input_size, probe);
    channels_last = layouts.speedup > 1;
    PL_DEBUG("latency form auto: channels-last times {:.2f}x the speed of NCHW on the dense network; using {}",
             layouts.speedup, channels_last ? "channels-last" : "NCHW");
  }
  SpeedupOptions timed = o;
  timed.form = channels_last ? InferenceForm::folded_channels_last : InferenceForm::folded;  // the input's format
  const models::FoldOptions fold{.channels_last = channels_last};
  r = time_speedup(*models::fold_batchnorm(dense, fold), *models::fold_batchnorm(compact, fold), batch, in_channels,
                   input_size, timed);
  r.form = timed.form;
  return r;
}

SpeedupResult time_speedup(models::Network& dense, models::Network& compact, int64_t batch, int64_t in_channels,
                           int64_t input_size, const SpeedupOptions& o) {
  PASSLAB_CHECK(batch >= 1 && o.rounds >= 1 && o.min_warmup >= 0 && o.max_warmup >= o.min_warmup && o.warmup_window >= 1,
                ConfigError, "speed-up: batch and rounds must be >= 1, 0 <= min_warmup <= max_warmup, warmup_window >= 1");
  SpeedupResult r;
  r.load_start = read_machine_load();
  InferenceScope dense_scope(dense), compact_scope(compact);
  const at::Tensor x = latency_input(dense, batch, in_channels, input_size, o.form == InferenceForm::folded_channels_last);
  r.device = x.device().str();
  r.batch = batch;
  // Warm-up: alternating passes until both networks' recent times settle (caches, allocator,
  // thread pool spin-up), at least min_warmup and at most max_warmup passes each.
  std::vector<double> warm_dense, warm_compact;
  while (r.warmup_passes < o.max_warmup) {
    warm_dense.push_back(time_forward_ms(dense, x));
    warm_compact.push_back(time_forward_ms(compact, x));
    ++r.warmup_passes;
    r.warmup_stable = warmup_stable(warm_dense, o.warmup_window, o.warmup_tolerance) &&
                      warmup_stable(warm_compact, o.warmup_window, o.warmup_tolerance);
    if (r.warmup_passes >= o.min_warmup && r.warmup_stable) break;
  }
  // Passes per round: enough back-to-back passes to fill min_round_ms, from the median of the
  // last warm-up times (a network of a few ms is timed over several passes, one of 100 ms once).
  auto passes_for = [&](std::vector<double> warm) {
    if (!(o.min_round_ms > 0) || warm.empty()) return int64_t{1};
    warm.erase(warm.begin(), warm.end() - std::min<std::ptrdiff_t>(std::ssize(warm), o.warmup_window));
    const double t = quantile(warm, 0.5);
    return t > 0 ? std::clamp<int64_t>(static_cast<int64_t>(std::ceil(o.min_round_ms / t)), 1, 1000) : int64_t{1000};
  };
  r.dense_passes = passes_for(warm_dense);
  r.compact_passes = passes_for(warm_compact);
  r.rounds = o.rounds;
  r.dense_ms.resize(o.rounds);
  r.compact_ms.resize(o.rounds);
  r.dense_first.resize(o.rounds);
  auto time_one = [&](bool is_dense, int64_t i) {
    if (o.on_timed_pass) o.on_timed_pass(is_dense);
    const int64_t k = is_dense ? r.dense_passes : r.compact_passes;
    double total = 0;
    for (int64_t p = 0; p < k; ++p) total += time_forward_ms(is_dense ? dense : compact, x);
    (is_dense ? r.dense_ms : r.compact_ms)[i] = total / static_cast<double>(k);
  };
  for (int64_t i = 0; i < o.rounds; ++i) {
    const bool dense_first = i % 2 == 0;
    r.dense_first[i] = dense_first;
    time_one(dense_first, i);
    time_one(!dense_first, i);
  }
  static_cast<RoundStatistics&>(r) = round_statistics(r.dense_ms, r.compact_ms, o.max_spread);
  r.load_end = read_machine_load();
  PL_DEBUG("speed-up on {} ({}): {:.3f}x (spread {:.3f}{}) over {} rounds of {} dense and {} compact passes after {} warm-up "
           "passes{}; load {:.2f} → {:.2f} on {} cores",
           r.device, to_string(o.form), r.speedup, r.spread, r.unreliable ? ", unreliable" : "", r.rounds, r.dense_passes,
           r.compact_passes, r.warmup_passes,
           r.warmup_stable ? "" : " (not settled)", r.load_start.load_1min, r.load_end.load_1min, r.load_end.cores);
  return r;
}

}  // namespace passlab::prune
