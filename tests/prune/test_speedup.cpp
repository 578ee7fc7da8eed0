// The speed-up measurement (prune/speedup.hpp): the round statistics on hand-made times, and one
// real measurement of a dense network and its half-width compact network. Timings are noisy, so
// no test asserts how fast anything is; they check the bookkeeping (rounds, order, finiteness).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/prune/latency.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/prune/speedup.hpp"

using namespace passlab;
using namespace passlab::prune;

TEST(SpeedupStatistics, QuantileInterpolatesBetweenOrderStatistics) {
  // numpy.quantile([1, 2, 3, 4], [0, 0.25, 0.5, 0.75, 1]) = [1, 1.75, 2.5, 3.25, 4]
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(quantile(v, 0), 1);
  EXPECT_DOUBLE_EQ(quantile(v, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile(v, 0.75), 3.25);
  EXPECT_DOUBLE_EQ(quantile(v, 1), 4);
  EXPECT_DOUBLE_EQ(quantile({7}, 0.25), 7);
  EXPECT_THROW(quantile({}, 0.5), ConfigError);
}

TEST(SpeedupStatistics, MachineSlowdownThatHitsBothNetworksCancelsInTheRatio) {
  // Every other round the machine is 3x slower for both passes: the per-round ratio stays 2,
  // while the per-network times swing.
  const auto s = round_statistics({10, 30, 10, 30}, {5, 15, 5, 15}, 0.1);
  EXPECT_DOUBLE_EQ(s.speedup, 2.0);
  EXPECT_DOUBLE_EQ(s.spread, 0.0);
  EXPECT_FALSE(s.unreliable);
  EXPECT_DOUBLE_EQ(s.dense_median_ms, 20.0);
  EXPECT_DOUBLE_EQ(s.compact_median_ms, 10.0);
}

TEST(SpeedupStatistics, MedianRatioSpreadAndFlag) {
  // Ratios 2, 2, 1, 1 (sorted 1, 1, 2, 2): median 1.5, q25 = 1, q75 = 2, spread = 1 / 1.5.
  // The ratio of the medians would be 20 / 12.5 = 1.6: the reported number is the median ratio.
  const std::vector<double> dense = {10, 30, 10, 30}, compact = {5, 15, 10, 30};
  const auto s = round_statistics(dense, compact, 0.5);
  EXPECT_DOUBLE_EQ(s.speedup, 1.5);
  EXPECT_DOUBLE_EQ(s.spread, 1.0 / 1.5);
  EXPECT_DOUBLE_EQ(s.dense_median_ms, 20.0);
  EXPECT_DOUBLE_EQ(s.compact_median_ms, 12.5);
  EXPECT_TRUE(s.unreliable);
  // The flag is spread > max_spread.
  EXPECT_FALSE(round_statistics(dense, compact, 0.7).unreliable);
  // Ratios 2, 2.5, 2, 4, 2 (sorted 2, 2, 2, 2.5, 4): median 2, q25 = 2, q75 = 2.5, spread 0.25.
  const auto t = round_statistics({10, 10, 10, 10, 10}, {5, 4, 5, 2.5, 5}, 0.2);
  EXPECT_DOUBLE_EQ(t.speedup, 2.0);
  EXPECT_DOUBLE_EQ(t.spread, 0.25);
  EXPECT_TRUE(t.unreliable);
  EXPECT_DOUBLE_EQ(t.compact_median_ms, 5.0);
}

TEST(SpeedupStatistics, RejectsMismatchedOrEmptyRounds) {
  EXPECT_THROW(round_statistics({}, {}, 0.1), ConfigError);
  EXPECT_THROW(round_statistics({1, 2}, {1}, 0.1), ConfigError);
  EXPECT_THROW(round_statistics({1}, {0}, 0.1), ConfigError);
}

TEST(SpeedupStatistics, WarmupStableOnTheLastWindowOnly) {
  const std::vector<double> t = {100, 50, 10, 10.5, 10.2};  // last three: (10.5 - 10) / 10 = 0.05
  EXPECT_TRUE(warmup_stable(t, 3, 0.1));
  EXPECT_FALSE(warmup_stable(t, 3, 0.04));
  EXPECT_FALSE(warmup_stable(t, 4, 0.1));  // the window reaches the 50 ms pass
  EXPECT_FALSE(warmup_stable({10, 10.1}, 3, 0.1));  // too few times
}

// The first half of every group's channels.
KeepPlan half_width(const models::PrunableNetwork& net) {
  KeepPlan half;
  for (const auto& g : net.structure().groups) {
    std::vector<int64_t> keep(static_cast<size_t>(std::max<int64_t>(1, g.width / 2)));
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = static_cast<int64_t>(i);
    half.push_back(keep);
  }
  return half;
}

TEST(MeasureSpeedup, InterleavesRoundsOfARealDenseAndHalfWidthNetwork) {
  auto dense = models::make_model("resnet20", 10, 3, 16);
  auto compact = make_compact(*dense, half_width(*dense));
  dense->train();
  compact->train();
  SpeedupOptions o;
  o.rounds = 5;
  o.min_warmup = 1;
  o.max_warmup = 4;
  std::vector<bool> order;
  o.on_timed_pass = [&](bool is_dense) { order.push_back(is_dense); };
  const auto r = measure_speedup(*dense, *compact, 2, 3, 16, o);
  EXPECT_EQ(r.rounds, 5);
  ASSERT_EQ(r.dense_ms.size(), 5u);
  ASSERT_EQ(r.compact_ms.size(), 5u);
  // A B, B A, A B, ...: round i starts with dense when i is even.
  EXPECT_EQ(order, (std::vector<bool>{true, false, false, true, true, false, false, true, true, false}));
  EXPECT_EQ(r.dense_first, (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_TRUE(std::isfinite(r.dense_ms[i]) && r.dense_ms[i] > 0) << i;
    EXPECT_TRUE(std::isfinite(r.compact_ms[i]) && r.compact_ms[i] > 0) << i;
  }
  // The summary is the statistics of exactly the recorded rounds.
  const auto s = round_statistics(r.dense_ms, r.compact_ms, o.max_spread);
  EXPECT_EQ(r.speedup, s.speedup);
  EXPECT_EQ(r.spread, s.spread);
  EXPECT_EQ(r.unreliable, s.unreliable);
  EXPECT_EQ(r.dense_median_ms, s.dense_median_ms);
  EXPECT_TRUE(std::isfinite(r.speedup) && r.speedup > 0);
  EXPECT_TRUE(std::isfinite(r.spread) && r.spread >= 0);
  EXPECT_GE(r.warmup_passes, 1);
  EXPECT_LE(r.warmup_passes, 4);
  EXPECT_EQ(r.dense_passes, 1);  // min_round_ms = 0: one pass per network and round
  EXPECT_EQ(r.compact_passes, 1);
  EXPECT_EQ(r.device, "cpu");
  EXPECT_EQ(r.batch, 2);
  EXPECT_GE(r.load_start.cores, 1);
  EXPECT_EQ(r.load_start.cores, r.load_end.cores);
  EXPECT_TRUE(r.load_start.load_1min == -1 || r.load_start.load_1min >= 0);
  // Both networks are back in their training mode.
  EXPECT_TRUE(dense->is_training());
  EXPECT_TRUE(compact->is_training());
  o.max_warmup = 0;  // below min_warmup
  EXPECT_THROW(measure_speedup(*dense, *compact, 2, 3, 16, o), ConfigError);
}

// eval.latency_round_ms: a round times each network over back-to-back passes filling that long
// (their mean is the round's time), so a network of well under 100 ms gets at least 2 passes for
// 200 ms; the order of the networks within rounds is unchanged.
TEST(MeasureSpeedup, RoundsOfAFewMillisecondsAverageBackToBackPasses) {
  auto dense = models::make_model("resnet20", 10, 3, 16);
  auto compact = make_compact(*dense, half_width(*dense));
  SpeedupOptions o;
  o.rounds = 2;
  o.min_warmup = 1;
  o.max_warmup = 3;
  o.min_round_ms = 200;
  std::vector<bool> order;
  o.on_timed_pass = [&](bool is_dense) { order.push_back(is_dense); };
  const auto r = measure_speedup(*dense, *compact, 2, 3, 16, o);
  EXPECT_GE(r.dense_passes, 2);
  EXPECT_GE(r.compact_passes, 2);
  EXPECT_LE(r.compact_passes, 1000);
  EXPECT_EQ(order, (std::vector<bool>{true, false, false, true}));
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(std::isfinite(r.compact_ms[i]) && r.compact_ms[i] > 0) << i;
  EXPECT_EQ(speedup_options(config::EvalConfig{}).min_round_ms, 20.0);  // the [eval] default reaches the options
}

TEST(MeasureSpeedup, TimesTheChosenFormAndRecordsIt) {
  for (auto f : {InferenceForm::training, InferenceForm::folded, InferenceForm::folded_channels_last, InferenceForm::folded_auto})
    EXPECT_EQ(parse_inference_form(to_string(f)), f);
  EXPECT_THROW(parse_inference_form("fused"), ConfigError);
  auto dense = models::make_model("resnet20", 10, 3, 16);
  auto compact = make_compact(*dense, full_plan(dense->structure()));
  SpeedupOptions o;
  o.rounds = 2;
  o.min_warmup = o.max_warmup = 1;
  EXPECT_EQ(speedup_options(config::EvalConfig{}).form, InferenceForm::folded);  // the default form
  for (auto f : {InferenceForm::training, InferenceForm::folded_channels_last}) {
    o.form = f;
    const auto r = measure_speedup(*dense, *compact, 1, 3, 16, o);
    EXPECT_EQ(r.form, f);
    EXPECT_EQ(r.rounds, 2);
  }
  // auto settles on one of the two folded formats, records it, and times only the rounds asked
  // for with the two networks (the format probe runs without the callback).
  o.form = InferenceForm::folded_auto;
  int timed = 0;
  o.on_timed_pass = [&](bool) { ++timed; };
  const auto r = measure_speedup(*dense, *compact, 1, 3, 16, o);
  EXPECT_TRUE(r.form == InferenceForm::folded || r.form == InferenceForm::folded_channels_last);
  EXPECT_EQ(timed, 2 * o.rounds);
}
