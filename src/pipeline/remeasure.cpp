#include "passlab/pipeline/remeasure.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <optional>

#ifdef PASSLAB_WITH_CUDA
#include "passlab/cuda/device.hpp"
#endif

#include "passlab/config/config.hpp"
#include "passlab/core/check.hpp"
#include "passlab/core/clock.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/version.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/dense_model.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/prune/speedup.hpp"
#include "passlab/train/progress.hpp"

namespace passlab::pipeline {
namespace rf = io::run_file;
namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// "model name" of /proc/cpuinfo's first processor ("" where there is none, e.g. on ARM).
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    return line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return "";
}

// What a run file says about itself before anything is built from it.
struct RunHeader {
  std::string run_id, dense_id, finished_at, config_text;
  std::vector<std::pair<std::string, std::vector<int64_t>>> keep;
  bool has_weights = false;
};

// IOError naming the file and the reason when it is not a usable result.
RunHeader read_header(const fs::path& file, const fs::path& results_dir) {
  RunHeader h;
  io::File f = io::run_file::open_usable(file);  // the sweep's notion: complete, schema, digest, finite
  const auto& root = f.root();
  if (!root.has_attr(rf::kKind) || root.attr_string(rf::kKind) != rf::kPruneKind)
    throw IOError(file.string() + ": not a prune run file (kind is not \"prune\")");
  h.run_id = root.attr_string(rf::kRunId);
  h.dense_id = root.attr_string(rf::kDenseId);
  h.finished_at = root.attr_string(rf::kFinishedAt);
  h.config_text = root.read_string(rf::kConfig);
  const auto keep = root.open_group(rf::kKeep);
  for (const auto& name : keep.children()) h.keep.emplace_back(name, keep.read<int64_t>(name));
  h.has_weights = root.has(rf::kWeights);
  const fs::path dense = results_dir / "dense" / (h.dense_id + ".h5");
  try {
    io::run_file::open_usable(dense);
  } catch (const IOError& e) {
    throw IOError(file.string() + ": its dense model is not usable (" + e.what() + ")");
  }
  return h;
}

}  // namespace

Machine this_machine(const dist::Runtime& rt) {
  Machine m{host_name(), rt.device().str(), cpu_model()};
#ifdef PASSLAB_WITH_CUDA
  if (rt.device().is_cuda())
    for (const auto& d : cuda::devices())
      if (d.index == rt.device().index()) m.device_name = d.name;
#endif
  return m;
}

Measurement measure_run_file(const fs::path& run_file, const fs::path& results_dir, const std::vector<std::string>& overrides,
                             const dist::Runtime& rt) {
  const RunHeader h = read_header(run_file, results_dir);
  config::Config cfg = config::load_string(h.config_text, run_file.string() + ":/config", overrides);
  PASSLAB_CHECK(config::dense_id(cfg) == h.dense_id, ConfigError,
                run_file.string() + ": the overrides change the dense model's id (" + h.dense_id + " in the file, " +
                    config::dense_id(cfg) + " with them); override only keys outside it (e.g. data.root, eval.*)");
  cfg.output.dir = results_dir.string();  // wherever the results directory lies now
  // load_dense reads through a task context; nothing is communicated (one process), so MPI's
  // backend, which needs no set-up on a GPU either.
  auto comm = dist::make_communicator("mpi", rt);
  const TaskContext ctx{cfg, rt, *comm, h.run_id};
  const TaskData d = open_data(cfg);
  DenseModel dense = load_dense(ctx, d);
  const prune::KeepPlan plan = prune::plan_from_named(dense.net->structure(), h.keep);
  models::PrunableNetworkPtr compact;
  if (h.has_weights) {  // the fine-tuned network itself
    compact = prune::make_compact_shell(dense.net->spec(), plan);
    models::load_weights(*compact, run_file);
  } else {
    compact = prune::make_compact(*dense.net, plan);
  }
  compact->to(rt.device());

  const auto options = prune::speedup_options(cfg.eval);
  const prune::SpeedupResult sp =
      prune::measure_speedup(*dense.net, *compact, cfg.eval.latency_batch, d.channels, d.size, options);
  return Measurement{.run_id = h.run_id,
                     .run_file = fs::relative(run_file, results_dir).string(),
                     .run_finished_at = h.finished_at,
                     .measured_at = utc_now(),
                     .passlab_version = version(),
                     .git_sha = git_sha(),
                     .machine = this_machine(rt),
                     .threads = rt.threads(),
                     .latency_dense_ms = sp.dense_median_ms,
                     .latency_pruned_ms = sp.compact_median_ms,
                     .speedup = sp.speedup,
                     .speedup_spread = sp.spread,
                     .speedup_max_spread = options.max_spread,
                     .speedup_rounds = sp.rounds,
                     .speedup_unreliable = sp.unreliable,
                     .load_1min_start = sp.load_start.load_1min,
                     .load_1min_end = sp.load_end.load_1min,
                     .cores = sp.load_end.cores,
                     .speedup_form = prune::to_string(sp.form),
                     .latency_batch = sp.batch,
                     .warmup_passes = sp.warmup_passes,
                     .warmup_stable = sp.warmup_stable,
                     .dense_ms = sp.dense_ms,
                     .compact_ms = sp.compact_ms};
}

std::string RemeasureReport::summary() const {
  std::string s = std::to_string(measured) + " run(s) measured, " + std::to_string(skipped) +
                  " measured before on this machine (skipped), " + std::to_string(unusable.size()) + " not usable";
  if (left > 0) s += ", " + std::to_string(left) + " left for a later call (--max-runs)";
  return s + "; " + file.string();
}

RemeasureReport remeasure_results(const fs::path& results_dir, const dist::Runtime& rt, const RemeasureOptions& o) {
  PASSLAB_CHECK(rt.world_size() == 1, ConfigError,
                "passlab remeasure times on one process (" + std::to_string(rt.world_size()) +
                    " were launched): processes timing side by side on one machine would measure their contention; "
                    "run it without mpirun, once per machine");
  const fs::path runs_dir = results_dir / "runs";
  PASSLAB_CHECK(fs::is_directory(runs_dir), ConfigError,
                results_dir.string() + ": not a results directory (no runs/ folder)");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(runs_dir))
    if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path());
  std::sort(files.begin(), files.end());

  RemeasureReport report;
  report.file = measurements_path(results_dir);
  const Machine machine = this_machine(rt);
  const auto mode = train::Progress::resolve(o.progress, true);
  // Which runs need timing, before timing any: the count makes the progress honest.
  std::vector<fs::path> todo;
  {
    const Measurements before = Measurements::read(results_dir);
    for (const auto& f : files) {
      RunHeader h;
      try {
        h = read_header(f, results_dir);
      } catch (const IOError& e) {
        report.unusable.push_back(e.what());
        continue;
      }
      const Measurement* done = before.find(machine.key(), h.run_id);
      if (!o.force && done && done->run_finished_at == h.finished_at) {
        ++report.skipped;
        continue;
      }
      todo.push_back(f);
    }
  }
  for (const auto& why : report.unusable) PL_WARN("remeasure: not usable, skipped: {}", why);
  if (o.max_runs >= 0 && static_cast<int64_t>(todo.size()) > o.max_runs) {
    report.left = static_cast<int64_t>(todo.size()) - o.max_runs;
    todo.resize(static_cast<size_t>(o.max_runs));
  }
  PL_INFO("remeasure {} on {} ({}, {} thread(s)): {} run(s) to time, {} measured before, {} not usable", results_dir.string(),
          machine.key(), machine.device_name, rt.threads(), todo.size(), report.skipped, report.unusable.size());

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t total = static_cast<int64_t>(todo.size());
  for (int64_t i = 0; i < total; ++i) {
    const Measurement m = measure_run_file(todo[static_cast<size_t>(i)], results_dir, o.overrides, rt);
    // Read again before adding: another machine may have added its entries meanwhile.
    Measurements now = Measurements::read(results_dir);
    now.put(m);
    now.write(results_dir);
    ++report.measured;
    if (m.speedup_unreliable)
      PL_WARN("remeasure {}: speed-up spread {:.2f} exceeds eval.speedup_max_spread = {:.2f}; flagged unreliable", m.run_id,
              m.speedup_spread, m.speedup_max_spread);
    const double elapsed = seconds_since(t0);
    const std::string eta = train::format_duration(elapsed / static_cast<double>(i + 1) * static_cast<double>(total - i - 1));
    if (mode == train::Progress::Mode::bar) {
      std::fprintf(stderr, "\rremeasure %s %lld/%lld runs, ETA %s, last %s %.2fx\x1b[K", train::text_bar(total > 0 ? double(i + 1) / double(total) : 1.0).c_str(),
                   static_cast<long long>(i + 1), static_cast<long long>(total), eta.c_str(), m.run_id.c_str(), m.speedup);
      if (i + 1 == total) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    } else if (mode == train::Progress::Mode::lines) {
      PL_INFO("remeasure {}/{}: {} {:.2f}x (spread {:.2f}{}), {:.3f} → {:.3f} ms ({}, batch {}), load {:.2f} → {:.2f}; ETA {}",
              i + 1, total, m.run_id, m.speedup, m.speedup_spread, m.speedup_unreliable ? ", UNRELIABLE" : "",
              m.latency_dense_ms, m.latency_pruned_ms, m.speedup_form, m.latency_batch, m.load_1min_start, m.load_1min_end,
              eta);
    }
    if (o.on_written) o.on_written(m);
  }
  return report;
}

}  // namespace passlab::pipeline
