#pragma once
// Result files of a sweep as the orchestrator sees them (DESIGN.md §4): their state, the record
// of a failed task, the rows of the sweep table, the sweep.h5 index and the integrity check.
// No LibTorch here.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace passlab::config {
struct Config;
}

namespace passlab::sweep {

struct ResultState {
  enum class Kind { missing, complete, failed, damaged };
  Kind kind = Kind::missing;
  int64_t attempts = 0;  // failed: how many attempts failed so far
  std::string error;     // failed: the recorded error; damaged: what is wrong
};
// complete only for a usable file (io::run_file::check); damaged for any other file that is
// neither missing nor a valid failure record, with the reason.
ResultState read_state(const std::filesystem::path& file);

// Records a failed attempt of a task at its result path (status = "failed", `error`,
// `attempts`, the task's identity and resolved config), through io::AtomicWriter.
void write_failure(const std::filesystem::path& file, const config::Config& task, const std::string& kind,
                   const std::string& id, const std::string& error, int64_t attempts, double seconds);

// One row of the sweep table (a dense or prune result file).
struct Row {
  std::string file;  // path relative to the results directory
  std::string kind, id, status, method, arch, dataset, error;
  double budget = -1, top1 = -1, dense_top1 = -1, mac_ratio = -1, speedup = -1, seconds = -1;
  int64_t seed = -1, macs = -1, attempts = 0;
  bool speedup_unreliable = false;  // summary@speedup_unreliable: format_table marks the speed-up "?"
};
Row read_row(const std::filesystem::path& file, const std::filesystem::path& results_dir);
// Every result file under <dir>/dense and <dir>/runs (damaged ones as status "damaged"),
// sorted by kind, dataset, arch, budget (descending), method, seed.
std::vector<Row> scan_rows(const std::filesystem::path& results_dir);
// Ends with a line explaining the "?" mark when a shown row has an unreliable speed-up.
std::string format_table(const std::vector<Row>& rows, bool with_dense = true);
// "12 complete, 1 failed, 0 damaged"
std::string count_line(const std::vector<Row>& rows);

// Rebuilds <dir>/sweep.h5: /runs/<id> external links to every readable result file, /table/<column>
// (one dataset per column, one entry per row as in scan_rows) and root attrs (counts, time).
// Written atomically, so readers never see a half index. Returns its path.
std::filesystem::path write_index(const std::filesystem::path& results_dir);

// Checks a result file (or every file of a results directory) against the one notion of a usable
// result (io/result_file.hpp: every problem of a complete file that is not usable, of a failure
// record that is not valid), a dataset store against its digest or checksum (data::check_store).
struct Problem {
  std::string file, what;
};
std::vector<Problem> check_file(const std::filesystem::path& file);
std::vector<Problem> check_results(const std::filesystem::path& results_dir, int* files_checked = nullptr);

// Append-only journal <dir>/journal.tsv: "utc-time \t holder \t event \t task id \t detail".
// One write per line (O_APPEND). Events: start, end, fail, takeover, skip.
void journal(const std::filesystem::path& results_dir, const std::string& holder, const std::string& event,
             const std::string& id, const std::string& detail = "");

}  // namespace passlab::sweep
