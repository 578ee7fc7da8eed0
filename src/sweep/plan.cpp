#include "passlab/sweep/plan.hpp"

#include <algorithm>
#include <map>
#include <numeric>

#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"
#include "passlab/pipeline/paths.hpp"

namespace passlab::sweep {

std::string Task::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100 * cfg.prune.budget);
  std::string where = cfg.model.arch + " " + cfg.data.dataset + " seed " + std::to_string(cfg.experiment.seed);
  return kind == Kind::dense ? "dense " + where : cfg.prune.method + " " + buf + " " + where;
}

int Plan::dense_count() const {
  return static_cast<int>(std::count_if(tasks.begin(), tasks.end(), [](const Task& t) { return t.kind == Task::Kind::dense; }));
}

int Plan::index_of(const std::string& id) const {
  for (size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].id == id) return static_cast<int>(i);
  return -1;
}

std::vector<config::Config> planned_tasks(const config::Config& cfg) {
  auto tasks = config::expand_tasks(cfg);
  if (!tasks.empty()) return tasks;
  config::Config unfiltered = cfg;
  unfiltered.sweep.include.clear();
  unfiltered.sweep.exclude.clear();
  throw ConfigError(cfg.source + ": the sweep plans no task: sweep.include = " + config::format_value(cfg.sweep.include) +
                    " and sweep.exclude = " + config::format_value(cfg.sweep.exclude) + " leave none of its " +
                    std::to_string(config::expand_tasks(unfiltered).size()) +
                    " combinations of sweep.datasets, archs, seeds, budgets and methods");
}

Plan make_plan(const config::Config& cfg) {
  std::vector<Task> all;
  std::map<std::string, int> dense_at;
  for (auto& t : planned_tasks(cfg)) {
    const std::string did = config::dense_id(t);
    if (!dense_at.count(did)) {
      Task d;
      d.kind = Task::Kind::dense;
      d.id = d.dense_id = did;
      d.cfg = t;
      d.path = pipeline::dense_path(t);
      d.cost = estimate_cost(t, d.kind);
      dense_at[did] = static_cast<int>(all.size());
      all.push_back(std::move(d));
    }
    Task p;
    p.kind = Task::Kind::prune;
    p.id = config::run_id(t);
    p.dense_id = did;
    p.cfg = t;
    p.path = pipeline::run_path(t);
    p.cost = estimate_cost(t, p.kind);
    p.dep = dense_at[did];
    if (std::any_of(all.begin(), all.end(), [&](const Task& o) { return o.id == p.id; }))
      throw ConfigError("sweep: two tasks have the same run id " + p.id + " (" + p.describe() + ")");
    all.push_back(std::move(p));
  }
  // Priorities: prune tasks are leaves; a dense task adds its longest dependent.
  for (auto& t : all) t.priority = t.cost;
  for (auto& t : all)
    if (t.kind == Task::Kind::prune) all[t.dep].priority = std::max(all[t.dep].priority, all[t.dep].cost + t.priority);
  // Order: priority descending, ties by expansion order (stable). A dense task's priority
  // exceeds each of its dependents', so it always comes first.
  std::vector<int> order(all.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (all[a].priority != all[b].priority) return all[a].priority > all[b].priority;
    return all[a].kind == Task::Kind::dense && all[b].kind != Task::Kind::dense;
  });
  std::vector<int> new_index(all.size());
  for (size_t i = 0; i < order.size(); ++i) new_index[order[i]] = static_cast<int>(i);
  Plan plan;
  for (int i : order) {
    Task t = all[i];
    if (t.dep >= 0) t.dep = new_index[t.dep];
    plan.tasks.push_back(std::move(t));
  }
  for (size_t i = 0; i < plan.tasks.size(); ++i)
    if (plan.tasks[i].dep >= 0) plan.tasks[plan.tasks[i].dep].dependents.push_back(static_cast<int>(i));
  return plan;
}

}  // namespace passlab::sweep
