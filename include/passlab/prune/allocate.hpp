#pragma once
// Allocation of a MAC budget to channel groups (DESIGN.md §2 "Global pruning").
//
// Global: per-channel scores (any criterion, or PASS's hypernetwork scores) are normalised per
// group, ranked across all prunable groups, and a bisection over the rank threshold keeps the
// longest prefix whose MACs stay <= target*(1+tolerance); if that lands below
// target*(1-tolerance) (a single channel can cost more than the tolerance in small networks),
// channels are added greedily — the best-ranked next channel of any group that still fits —
// until the budget is met. Each group keeps at least max(min_keep_channels,
// ceil(min_keep_fraction*width)) channels; kept counts are rounded up to a multiple of
// round_to (capped at the width). Within a group the highest-scored channels are kept.
//
// Uniform: the same, with channel j (0-based rank) of a group of width w keyed 1 - j/w, so every
// group keeps the same fraction of its channels (to within the channel or two needed to hit the
// budget exactly); the criterion only chooses which channels.
#include <cstdint>
#include <string>
#include <vector>

#include "passlab/prune/importance.hpp"
#include "passlab/prune/slice.hpp"

namespace passlab::config {
struct PruneConfig;
}

namespace passlab::prune {

enum class Normalization { none, mean, max, l2 };  // per group: s, s/mean|s|, s/max|s|, s/||s||_2
const char* to_string(Normalization n);

struct AllocationOptions {
  double budget = 0.5;  // fraction of the dense MACs kept
  double tolerance = 0.005;
  int64_t min_keep_channels = 1;
  double min_keep_fraction = 0.05;
  int64_t round_to = 1;
  bool prune_residual = true;  // as config::PruneConfig
  Normalization normalization = Normalization::mean;
};
AllocationOptions allocation_options(const config::PruneConfig& cfg);

struct Allocation {
  KeepPlan keep;              // per group, sorted kept indices (full for unprunable groups)
  std::vector<int64_t> kept;  // per group counts
  int64_t dense_macs = 0, target_macs = 0, macs = 0;
  bool met_budget = false;  // |macs/target - 1| <= tolerance
  double ratio() const { return dense_macs ? static_cast<double>(macs) / static_cast<double>(dense_macs) : 0.0; }
};

// Per-group floor of kept channels under the options (before rounding), at most width.
int64_t group_floor(int64_t width, const AllocationOptions& opt);

// `scores`: one [width_g] tensor per group (entries of unprunable groups may be undefined).
// MACs are counted on `s` as built (pass the dense network's structure). Throws ConfigError for
// bad options, InternalError for scores of the wrong shape or non-finite scores.
Allocation allocate_global(const models::Structure& s, const GroupScores& scores, const AllocationOptions& opt);
Allocation allocate_uniform(const models::Structure& s, const GroupScores& scores, const AllocationOptions& opt);

// A baseline of the method registry (config/methods.hpp): its criterion scores the channels
// (taylor reads `batches`, random is seeded), its allocation spreads the budget. ConfigError for
// a name that is not a registered baseline.
Allocation allocate_baseline(models::PrunableNetwork& net, const std::string& method, const AllocationOptions& opt,
                             const BatchSource* batches = nullptr, int64_t taylor_batches = 8, uint64_t seed = 0);

}  // namespace passlab::prune
