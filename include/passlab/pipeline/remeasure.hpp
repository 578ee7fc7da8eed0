#pragma once
// `passlab remeasure DIR`: the dense and compact network of every usable run file of a results
// directory timed again on the machine running the command (a quiet node, a GPU node), with the
// measurement the prune task itself uses (prune::measure_speedup: interleaved rounds, median
// ratio and spread, the run's own eval.* options and inference form), written to
// <dir>/measurements.h5 (measurements.hpp). The run files are only read.
//
// Usable: a complete prune run file whose dense model (dense/<dense_id>.h5) is complete. The
// networks are rebuilt from the files: the dense one from its dense file, the compact one from
// the run's keep plan, with its fine-tuned weights when the run file holds them (else the dense
// weights sliced by the plan: the same shapes, so the same time). Building them needs the input
// geometry, read from the run's data store (give --set data.root=... where it moved).
//
// Resumable: an entry already in the file for this machine and this run file (same @finished_at)
// is skipped; each new entry is written before the next run is timed.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "passlab/pipeline/measurements.hpp"

namespace passlab::dist {
class Runtime;
}

namespace passlab::pipeline {

// This process's machine: host name, the runtime's device and that device's model name.
Machine this_machine(const dist::Runtime& rt);

// Times one run file's networks on the runtime's device. `overrides` apply to the run's config
// (eval.* changes the measurement, data.root finds the store); they must not change the dense
// model's id. IOError for a file that is not a complete prune run file or a missing dense file.
Measurement measure_run_file(const std::filesystem::path& run_file, const std::filesystem::path& results_dir,
                             const std::vector<std::string>& overrides, const dist::Runtime& rt);

struct RemeasureOptions {
  std::vector<std::string> overrides;  // --set, applied to every run's config
  bool force = false;                  // time runs already measured on this machine again
  int64_t max_runs = -1;               // stop after timing this many (-1: all)
  std::string progress = "auto";       // auto | bar | lines | none (train::Progress::resolve)
  // Called after each new entry is on disk (tests interrupt the command with it).
  std::function<void(const Measurement&)> on_written;
};

struct RemeasureReport {
  int64_t measured = 0, skipped = 0;  // skipped: measured before on this machine
  int64_t left = 0;                   // not timed because of max_runs
  std::vector<std::string> unusable;  // "<file>: why", files that are not usable results
  std::filesystem::path file;         // the measurements file
  std::string summary() const;        // one line
};

// Every usable run file of <results_dir>/runs in file-name order. Runs on one process only
// (ConfigError when the runtime's world has more): timing several processes on one machine at
// once would measure their contention.
RemeasureReport remeasure_results(const std::filesystem::path& results_dir, const dist::Runtime& rt,
                                  const RemeasureOptions& options = {});

}  // namespace passlab::pipeline
