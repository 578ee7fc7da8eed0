#include "passlab/sweep/eta.hpp"

#include <algorithm>
#include <cstdio>

namespace passlab::sweep {

std::vector<std::string> EtaModel::classes(const Task& task) const {
  const std::string kind = task.kind_name();
  if (task.kind == Task::Kind::dense) return {kind, ""};
  char budget[32];
  std::snprintf(budget, sizeof budget, "%.6g", task.cfg.prune.budget);
  return {kind + "|" + task.cfg.prune.method + "|" + budget, kind + "|" + budget, kind, ""};
}

void EtaModel::observe(const Task& task, double seconds) {
  for (const auto& c : classes(task)) {
    Rate& r = rates_[c];
    r.seconds += std::max(0.0, seconds);
    r.cost += task.cost;
  }
}

std::optional<double> EtaModel::seconds_left(const std::vector<const Task*>& left, int groups) const {
  if (rates_.empty()) return std::nullopt;
  double total = 0;
  for (const Task* t : left) {
    for (const auto& c : classes(*t)) {
      auto it = rates_.find(c);
      if (it == rates_.end() || it->second.cost <= 0) continue;
      total += t->cost * it->second.seconds / it->second.cost;
      break;
    }
  }
  return total / std::max(1, groups);
}

}  // namespace passlab::sweep
