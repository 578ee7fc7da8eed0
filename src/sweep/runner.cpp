#include "passlab/sweep/runner.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/pass/task.hpp"

namespace fs = std::filesystem;

namespace passlab::sweep {
namespace {
bool complete(const fs::path& p) {
  if (!fs::exists(p)) return false;
  try {
    io::open_complete(p);
    return true;
  } catch (const IOError& e) {
    PL_WARN("{} exists but is not complete ({}); it will be redone", p.string(), e.what());
    return false;
  }
}
}  // namespace

std::vector<TaskOutcome> run_static(const config::Config& cfg, const dist::Runtime& rt) {
  auto comm = dist::make_communicator(cfg.dist.backend, rt);
  auto tasks = config::expand_tasks(cfg);
  std::vector<config::Config> dense;
  std::set<std::string> seen;
  for (auto& t : tasks)
    if (seen.insert(config::dense_id(t)).second) dense.push_back(t);
  PL_INFO("sweep {}: {} dense models and {} prune tasks over {} run group(s) of {} rank(s); results in {}",
          cfg.experiment.name, dense.size(), tasks.size(), rt.group_count(), rt.group_size(), cfg.output.dir);
  std::vector<TaskOutcome> out;
  auto deal = [&](const std::vector<config::Config>& list, bool is_dense) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (static_cast<int>(i % static_cast<size_t>(rt.group_count())) != rt.group_index()) continue;
      const auto& t = list[i];
      TaskOutcome o;
      o.kind = is_dense ? "dense" : "prune";
      o.id = is_dense ? config::dense_id(t) : config::run_id(t);
      o.path = (is_dense ? pass::dense_path(t) : pass::run_path(t)).string();
      o.skipped = complete(o.path);
      // Every rank of the group must agree (a file may appear while ranks look).
      auto votes = comm->allgather(static_cast<int64_t>(o.skipped));
      o.skipped = std::all_of(votes.begin(), votes.end(), [](int64_t v) { return v == 1; });
      if (o.skipped) {
        PL_INFO("{} {} already complete: {}", o.kind, o.id, o.path);
      } else if (is_dense) {
        PL_INFO("dense {} ({} {} seed {}) starts", o.id, t.model.arch, t.data.dataset, t.experiment.seed);
        pass::run_dense_task(t, rt, *comm);
      } else {
        PL_INFO("prune {} ({} at {:.0f}% MACs, {} {} seed {}) starts", o.id, t.prune.method, 100 * t.prune.budget,
                t.model.arch, t.data.dataset, t.experiment.seed);
        pass::run_prune_task(t, rt, *comm);
      }
      out.push_back(o);
    }
  };
  deal(dense, true);
  MPI_CHECK(MPI_Barrier(rt.world()));  // every dense model exists before any prune task
  deal(tasks, false);
  MPI_CHECK(MPI_Barrier(rt.world()));
  return out;
}

std::string summary_table(const std::string& results_dir) {
  struct Row {
    std::string method, arch, dataset;
    double budget, top1, dense_top1, mac_ratio, speedup;
    int64_t seed, macs;
  };
  std::vector<Row> rows;
  fs::path runs = fs::path(results_dir) / "runs";
  if (fs::exists(runs)) {
    for (auto& e : fs::directory_iterator(runs)) {
      if (e.path().extension() != ".h5") continue;
      try {
        io::File f = io::open_complete(e.path());
        auto& r = f.root();
        auto s = r.open_group("summary");
        rows.push_back({r.attr_string("method"), r.attr_string("arch"), r.attr_string("dataset"), r.attr_double("budget"),
                        s.attr_double("top1"), s.attr_double("dense_top1"), s.attr_double("mac_ratio"),
                        s.attr_double("speedup"), r.attr_int("seed"), s.attr_int("macs")});
      } catch (const IOError&) {
        continue;
      }
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.dataset, a.arch, b.budget, a.method, a.seed) < std::tie(b.dataset, b.arch, a.budget, b.method, b.seed);
  });
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-14s %-10s %-7s %-19s %-5s %8s %8s %10s %8s %8s\n", "dataset", "arch", "budget",
                "method", "seed", "top1%", "dense%", "MACs", "MACs%", "speedup");
  out += line;
  for (auto& r : rows) {
    std::snprintf(line, sizeof line, "%-14s %-10s %-7.2f %-19s %-5lld %8.2f %8.2f %10lld %8.1f %8.2f\n", r.dataset.c_str(),
                  r.arch.c_str(), r.budget, r.method.c_str(), static_cast<long long>(r.seed), 100 * r.top1,
                  100 * r.dense_top1, static_cast<long long>(r.macs), 100 * r.mac_ratio, r.speedup);
    out += line;
  }
  return out;
}

}  // namespace passlab::sweep
