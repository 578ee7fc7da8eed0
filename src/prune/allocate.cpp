#include "passlab/prune/allocate.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "passlab/config/config.hpp"
#include "passlab/config/methods.hpp"
#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"

namespace passlab::prune {

using models::Structure;

const char* to_string(Normalization n) {
  switch (n) {
    case Normalization::none: return "none";
    case Normalization::mean: return "mean";
    case Normalization::max: return "max";
    case Normalization::l2: return "l2";
  }
  return "?";
}

AllocationOptions allocation_options(const config::PruneConfig& cfg) {
  AllocationOptions o;
  o.budget = cfg.budget;
  o.tolerance = cfg.flops_tolerance;
  o.min_keep_channels = cfg.min_keep_channels;
  o.min_keep_fraction = cfg.min_keep_fraction;
  o.round_to = cfg.round_to;
  o.prune_residual = cfg.prune_residual;
  return o;
}

int64_t group_floor(int64_t width, const AllocationOptions& opt) {
  const auto frac = static_cast<int64_t>(std::ceil(opt.min_keep_fraction * static_cast<double>(width) - 1e-9));
  return std::min(width, std::max<int64_t>({1, opt.min_keep_channels, frac}));
}

namespace {

void check_options(const AllocationOptions& o) {
  PASSLAB_CHECK(o.budget > 0 && o.budget <= 1, ConfigError, "MAC budget " + std::to_string(o.budget) + " outside (0, 1]");
  PASSLAB_CHECK(o.tolerance >= 0 && o.tolerance < 0.5, ConfigError, "flops tolerance outside [0, 0.5)");
  PASSLAB_CHECK(o.min_keep_channels >= 1, ConfigError, "min_keep_channels must be >= 1");
  PASSLAB_CHECK(o.min_keep_fraction >= 0 && o.min_keep_fraction <= 1, ConfigError, "min_keep_fraction outside [0, 1]");
  PASSLAB_CHECK(o.round_to >= 1, ConfigError, "round_to must be >= 1");
}

// Sorted channel order (descending score, ties by index) of each group.
std::vector<std::vector<int64_t>> rank_channels(const Structure& s, const GroupScores& scores, const std::vector<bool>& prunable,
                                                std::vector<std::vector<double>>* sorted_scores, Normalization norm) {
  std::vector<std::vector<int64_t>> order(s.groups.size());
  sorted_scores->assign(s.groups.size(), {});
  PASSLAB_CHECK(scores.size() == s.groups.size(), InternalError,
                "allocation: " + std::to_string(scores.size()) + " score vectors for " + std::to_string(s.groups.size()) + " groups");
  for (size_t g = 0; g < s.groups.size(); ++g) {
    if (!prunable[g]) continue;
    const int64_t w = s.groups[g].width;
    PASSLAB_CHECK(scores[g].defined() && scores[g].numel() == w, InternalError,
                  "allocation: scores of group " + s.groups[g].name + " must have " + std::to_string(w) + " entries");
    at::Tensor t = scores[g].detach().to(at::kCPU, at::kDouble).contiguous().flatten();
    std::vector<double> v(t.data_ptr<double>(), t.data_ptr<double>() + w);
    for (double x : v)
      PASSLAB_CHECK(std::isfinite(x), InternalError, "allocation: non-finite score in group " + s.groups[g].name);
    double scale = 1.0;
    if (norm == Normalization::mean) {
      double m = 0;
      for (double x : v) m += std::abs(x);
      scale = m / static_cast<double>(w);
    } else if (norm == Normalization::max) {
      scale = 0;
      for (double x : v) scale = std::max(scale, std::abs(x));
    } else if (norm == Normalization::l2) {
      double q = 0;
      for (double x : v) q += x * x;
      scale = std::sqrt(q);
    }
    if (scale > 0)
      for (double& x : v) x /= scale;
    std::vector<int64_t> idx(w);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
    std::vector<double> sv(w);
    for (int64_t j = 0; j < w; ++j) sv[j] = v[idx[j]];
    order[g] = std::move(idx);
    (*sorted_scores)[g] = std::move(sv);
  }
  return order;
}

// The ranked allocation shared by global and uniform: `key[g][j]` is the rank key of the j-th
// best channel of group g (non-increasing in j).
Allocation allocate_ranked(const Structure& s, const std::vector<std::vector<int64_t>>& order,
                           const std::vector<std::vector<double>>& key, const std::vector<bool>& prunable,
                           const AllocationOptions& opt) {
  const size_t G = s.groups.size();
  const std::vector<int64_t> widths = s.widths();
  Allocation a;
  a.dense_macs = s.macs(widths);
  a.target_macs = static_cast<int64_t>(std::llround(opt.budget * static_cast<double>(a.dense_macs)));
  const double hi = static_cast<double>(a.target_macs) * (1.0 + opt.tolerance);
  const double lo = static_cast<double>(a.target_macs) * (1.0 - opt.tolerance);

  std::vector<int64_t> floor(G);
  for (size_t g = 0; g < G; ++g) floor[g] = prunable[g] ? group_floor(widths[g], opt) : widths[g];
  auto rounded = [&](size_t g, int64_t n) {
    if (opt.round_to > 1) n = (n + opt.round_to - 1) / opt.round_to * opt.round_to;
    return std::min(n, widths[g]);
  };

  // Candidates beyond the floors, best first (ties: forward order of groups, then rank).
  struct Cand {
    double key;
    int g;
    int64_t j;
  };
  std::vector<Cand> cands;
  for (size_t g = 0; g < G; ++g)
    if (prunable[g])
      for (int64_t j = floor[g]; j < widths[g]; ++j) cands.push_back({key[g][j], static_cast<int>(g), j});
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& x, const Cand& y) {
    if (x.key != y.key) return x.key > y.key;
    if (x.g != y.g) return x.g < y.g;
    return x.j < y.j;
  });

  auto counts_for = [&](size_t k) {
    std::vector<int64_t> c = floor;
    for (size_t i = 0; i < k; ++i) ++c[cands[i].g];
    for (size_t g = 0; g < G; ++g)
      if (prunable[g]) c[g] = rounded(g, c[g]);
    return c;
  };
  // Bisection: largest prefix k with MACs(k) <= hi (MACs is non-decreasing in k).
  size_t lo_k = 0, hi_k = cands.size();
  std::vector<int64_t> counts = counts_for(0);
  if (static_cast<double>(s.macs(counts)) > hi) {
    PL_WARN("allocation: the per-group floors alone exceed the budget ({} of {} MACs); keeping only the floors",
            s.macs(counts), a.target_macs);
  } else {
    while (lo_k < hi_k) {
      const size_t mid = lo_k + (hi_k - lo_k + 1) / 2;
      if (static_cast<double>(s.macs(counts_for(mid))) <= hi)
        lo_k = mid;
      else
        hi_k = mid - 1;
    }
    counts = counts_for(lo_k);
    // Greedy fill when one more ranked channel overshoots but we are still short of the budget.
    if (opt.round_to == 1) {
      int64_t m = s.macs(counts);
      while (static_cast<double>(m) < lo) {
        int best = -1;
        int64_t best_m = 0;
        for (size_t g = 0; g < G; ++g) {
          if (!prunable[g] || counts[g] >= widths[g]) continue;
          ++counts[g];
          const int64_t mg = s.macs(counts);
          --counts[g];
          if (static_cast<double>(mg) > hi) continue;
          if (best < 0 || key[g][counts[g]] > key[best][counts[best]]) {
            best = static_cast<int>(g);
            best_m = mg;
          }
        }
        if (best < 0) break;
        ++counts[best];
        m = best_m;
      }
    }
  }
  a.kept = counts;
  a.macs = s.macs(counts);
  a.met_budget = std::abs(static_cast<double>(a.macs) / static_cast<double>(a.target_macs) - 1.0) <= opt.tolerance + 1e-12;
  a.keep.resize(G);
  for (size_t g = 0; g < G; ++g) {
    if (!prunable[g]) {
      a.keep[g].resize(widths[g]);
      std::iota(a.keep[g].begin(), a.keep[g].end(), 0);
      continue;
    }
    a.keep[g].assign(order[g].begin(), order[g].begin() + counts[g]);
    std::sort(a.keep[g].begin(), a.keep[g].end());
  }
  if (!a.met_budget)
    PL_WARN("allocation: {} MACs kept for a target of {} ({:+.3f} %, tolerance {:.3f} %)", a.macs, a.target_macs,
            100.0 * (static_cast<double>(a.macs) / static_cast<double>(a.target_macs) - 1.0), 100.0 * opt.tolerance);
  return a;
}

}  // namespace

Allocation allocate_global(const Structure& s, const GroupScores& scores, const AllocationOptions& opt) {
  check_options(opt);
  const auto prunable = s.prunable(opt.prune_residual);
  std::vector<std::vector<double>> sorted;
  auto order = rank_channels(s, scores, prunable, &sorted, opt.normalization);
  return allocate_ranked(s, order, sorted, prunable, opt);
}

Allocation allocate_uniform(const Structure& s, const GroupScores& scores, const AllocationOptions& opt) {
  check_options(opt);
  const auto prunable = s.prunable(opt.prune_residual);
  std::vector<std::vector<double>> sorted;
  auto order = rank_channels(s, scores, prunable, &sorted, Normalization::none);
  std::vector<std::vector<double>> key(s.groups.size());
  for (size_t g = 0; g < s.groups.size(); ++g) {
    if (!prunable[g]) continue;
    const int64_t w = s.groups[g].width;
    key[g].resize(w);
    for (int64_t j = 0; j < w; ++j) key[g][j] = 1.0 - static_cast<double>(j) / static_cast<double>(w);
  }
  return allocate_ranked(s, order, key, prunable, opt);
}

Allocation allocate_baseline(models::PrunableNetwork& net, const std::string& method, const AllocationOptions& opt,
                             const BatchSource* batches, int64_t taylor_batches, uint64_t seed) {
  const config::MethodSpec& m = config::method_spec(method);
  PASSLAB_CHECK(m.family == config::MethodFamily::baseline, ConfigError,
                "'" + method + "' is a PASS method, not a baseline: it is found by the PASS search");
  const Criterion c = parse_criterion(m.criterion);
  GroupScores scores;
  if (m.needs_data()) {
    PASSLAB_CHECK(batches != nullptr, ConfigError, "method " + method + " needs data batches");
    PASSLAB_CHECK(c == Criterion::taylor, InternalError, "method " + method + ": only the taylor criterion reads data");
    scores = taylor_importance(net, *batches, taylor_batches);
  } else {
    scores = weight_importance(net, c, seed);
  }
  Allocation a = m.allocation == config::MethodAllocation::global ? allocate_global(net.structure(), scores, opt)
                                                                  : allocate_uniform(net.structure(), scores, opt);
  PL_INFO("{}: {:.2f} % of {} dense MACs kept (target {:.2f} %)", method, 100.0 * a.ratio(), a.dense_macs, 100.0 * opt.budget);
  return a;
}

}  // namespace passlab::prune
