#pragma once
// The measurements file of a results directory, <dir>/measurements.h5 (docs/measurements.md):
// speed-ups of its run files timed again after the sweep (`passlab remeasure`), on whatever
// machine ran the command, beside the run files, which stay as the sweep wrote them. One entry
// per (machine, run id); a machine is a host and a device ("node7", "cuda:0"). The analysis
// prefers these numbers to the run files' own (analysis/measurements.py).
//
// The file is always rewritten whole through io::AtomicWriter (a .tmp, then a rename), so a
// reader never sees half an entry and a writer killed at any moment loses at most the entry it
// was adding. Entries are few and small (a few dozen numbers each): rewriting costs milliseconds.
// No LibTorch here.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace passlab::pipeline {

inline constexpr char kMeasurementsFile[] = "measurements.h5";  // in the results directory
inline constexpr char kMeasurementsKind[] = "measurements";     // root @kind
inline constexpr int64_t kMeasurementsFormatVersion = 1;

// Where a measurement was taken: the host name and the device the networks ran on.
struct Machine {
  std::string host;         // gethostname()
  std::string device;       // "cpu", "cuda:0"
  std::string device_name;  // CPU model (/proc/cpuinfo) or GPU name
  // The group name of the machine in the file: "<host>@<device>" ('/' replaced by '_').
  std::string key() const;
};

// One run file's dense and compact networks timed in interleaved rounds (prune/speedup.hpp).
struct Measurement {
  std::string run_id;
  std::string run_file;         // relative to the results directory (runs/<run_id>.h5)
  std::string run_finished_at;  // the run file's @finished_at: a rewritten run file is measured anew
  std::string measured_at;      // UTC, ISO 8601
  std::string passlab_version, git_sha;
  Machine machine;
  int64_t threads = 0;          // intra-op threads of the timing process
  // As in the run file's /summary (same attribute names).
  double latency_dense_ms = 0, latency_pruned_ms = 0;  // medians over the rounds
  double speedup = 0, speedup_spread = 0, speedup_max_spread = 0;
  int64_t speedup_rounds = 0;
  bool speedup_unreliable = false;
  double load_1min_start = -1, load_1min_end = -1;
  int64_t cores = 0;
  std::string speedup_form;  // prune::InferenceForm's name: the form that was timed
  int64_t latency_batch = 0;
  int64_t warmup_passes = 0;
  bool warmup_stable = false;
  std::vector<double> dense_ms, compact_ms;  // per round
};

// The entries of one file: machine key -> run id -> measurement.
class Measurements {
 public:
  // Reads <dir>/measurements.h5; empty when there is none. IOError for a file that is not a
  // complete measurements file (a damaged one is never silently replaced).
  static Measurements read(const std::filesystem::path& results_dir);
  static Measurements read_file(const std::filesystem::path& file);  // the file itself, wherever it lies

  const Measurement* find(const std::string& machine_key, const std::string& run_id) const;
  void put(Measurement m);  // adds or replaces the entry of (m.machine, m.run_id)
  size_t size() const;      // entries over all machines
  const std::map<std::string, std::map<std::string, Measurement>>& by_machine() const { return entries_; }

  // Writes every entry to <dir>/measurements.h5 atomically; returns its path.
  std::filesystem::path write(const std::filesystem::path& results_dir) const;

 private:
  std::map<std::string, std::map<std::string, Measurement>> entries_;
};

std::filesystem::path measurements_path(const std::filesystem::path& results_dir);

// A table of every entry (`passlab inspect <dir>/measurements.h5`), one block per machine; a
// speed-up whose rounds spread more than its threshold is marked "?" and explained below.
std::string format_measurements(const Measurements& m);
// "12 entries on 2 machine(s), 1 flagged unreliable" (`passlab inspect <dir>`).
std::string measurements_count_line(const Measurements& m);

}  // namespace passlab::pipeline
