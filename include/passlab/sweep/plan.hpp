#pragma once
// The task graph of a sweep: one dense task per (arch, dataset, seed) and one prune task per
// (arch, dataset, budget, method, seed), each prune task depending on its dense task.
// Tasks are ordered longest critical path first: a task's priority is its own cost estimate plus
// the largest priority among the tasks that depend on it, so every dense task comes before its
// prune tasks and long chains start first.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "passlab/config/config.hpp"

namespace passlab::sweep {

struct Task {
  enum class Kind { dense, prune };
  Kind kind = Kind::dense;
  std::string id;        // dense_id or run_id
  std::string dense_id;  // the dense model it needs (its own id for a dense task)
  config::Config cfg;
  std::filesystem::path path;  // the result file
  double cost = 0;             // estimate: multiply-accumulates of the whole task
  double priority = 0;         // cost + the largest priority of its dependents
  int dep = -1;                // index of the dense task (prune tasks)
  std::vector<int> dependents;
  const char* kind_name() const { return kind == Kind::dense ? "dense" : "prune"; }
  std::string describe() const;  // "pass 50% resnet20 fashion_mnist seed 0"
};

struct Plan {
  std::vector<Task> tasks;  // highest priority first; a task never precedes its dependency
  int dense_count() const;
  int index_of(const std::string& id) const;  // -1 if absent
};

// MACs of one forward pass of `arch` on one image (the model is built once per distinct shape).
double forward_macs(const config::Config& task);
// Images per epoch of the task's training split (data.limit_train or the store's count;
// kAssumedTrainImages when the store is not readable here).
inline constexpr double kAssumedTrainImages = 50000;
double train_images(const config::Config& task);
// Whether the task's store is readable here (else its estimates assume kAssumedTrainImages).
bool store_readable(const config::Config& task);
// cost = 3 × forward MACs (forward + backward) × images seen, for every stage of the task.
double estimate_cost(const config::Config& task, Task::Kind kind);

// The tasks of the sweep (config::expand_tasks). A selection that leaves none is a ConfigError
// naming sweep.include and sweep.exclude: a sweep that plans nothing is a mistake, not a success.
std::vector<config::Config> planned_tasks(const config::Config& cfg);

Plan make_plan(const config::Config& cfg);  // over planned_tasks(cfg)

}  // namespace passlab::sweep
