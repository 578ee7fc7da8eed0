#pragma once
// Time left in a sweep, learned from the tasks this group has finished.
//
// The plan's cost estimates (multiply-accumulates, sweep/plan.hpp) order tasks well but do not
// convert to seconds at one rate: on a CPU a fine-tune at 15 % of the MACs is far less than 3×
// faster than one at 50 % (small convolutions, data loading and evaluation do not shrink with the
// MACs), and a dense task's epochs cost more seconds per estimated MAC than a search. One global
// rate measured on dense tasks promised a Fashion-MNIST table in 3 h that needed 10. So seconds
// per estimated MAC are learned per class of task, the most specific class that has been seen:
// (kind, method, budget), then (kind, budget), then kind, then every finished task.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "passlab/sweep/plan.hpp"

namespace passlab::sweep {

class EtaModel {
 public:
  // A task of this group finished after `seconds` of work.
  void observe(const Task& task, double seconds);
  // Seconds until `left` is done by `groups` run groups working at this group's rates; nothing
  // before the first task has finished.
  std::optional<double> seconds_left(const std::vector<const Task*>& left, int groups) const;

 private:
  struct Rate {
    double seconds = 0, cost = 0;
  };
  std::vector<std::string> classes(const Task& task) const;  // most specific first, "" last
  std::map<std::string, Rate> rates_;
};

}  // namespace passlab::sweep
