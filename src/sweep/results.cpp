#include "passlab/sweep/results.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <tuple>

#include "passlab/config/config.hpp"
#include "passlab/core/clock.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/data/store.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"

namespace fs = std::filesystem;
namespace rf = passlab::io::run_file;

namespace passlab::sweep {
namespace {

std::string opt_string(const io::Group& g, const char* name) {
  try {
    return g.has_attr(name) ? g.attr_string(name) : "";
  } catch (const IOError&) {
    return "";
  }
}
double opt_double(const io::Group& g, const char* name, double fallback = -1) {
  try {
    return g.has_attr(name) ? g.attr_double(name) : fallback;
  } catch (const IOError&) {
    return fallback;
  }
}
int64_t opt_int(const io::Group& g, const char* name, int64_t fallback = -1) {
  try {
    return g.has_attr(name) ? g.attr_int(name) : fallback;
  } catch (const IOError&) {
    return fallback;
  }
}

// Fixed-length string column (h5py reads it as bytes; .astype(str) gives text).
void write_string_column(io::Group& g, const std::string& name, const std::vector<std::string>& values) {
  size_t width = 1;
  for (auto& v : values) width = std::max(width, v.size());
  std::vector<char> buf(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  io::TypeId type(H5_CHECK(H5Tcopy(H5T_C_S1)));
  H5_CHECK(H5Tset_size(type.get(), width));
  H5_CHECK(H5Tset_strpad(type.get(), H5T_STR_NULLPAD));
  hsize_t dims[1] = {values.size()};
  io::SpaceId space(H5_CHECK(H5Screate_simple(1, dims, nullptr)));
  io::DatasetId ds(H5_CHECK(H5Dcreate2(g.id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  if (!values.empty()) H5_CHECK(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
}

}  // namespace

ResultState read_state(const fs::path& file) {
  ResultState s;
  std::error_code ec;
  if (!fs::exists(file, ec)) return s;
  // The one notion of a usable result (io/result_file.hpp): anything else is redone.
  const rf::Verdict v = rf::check(file);
  switch (v.state) {
    case rf::Verdict::State::complete: s.kind = ResultState::Kind::complete; break;
    case rf::Verdict::State::failed: {
      s.kind = ResultState::Kind::failed;
      io::File f = io::File::open(file);
      s.attempts = opt_int(f.root(), rf::kAttempts, 1);
      s.error = opt_string(f.root(), rf::kError);
      break;
    }
    case rf::Verdict::State::unusable:
      s.kind = ResultState::Kind::damaged;
      s.error = v.reason();
      break;
  }
  return s;
}

void write_failure(const fs::path& file, const config::Config& task, const std::string& kind, const std::string& id,
                   const std::string& error, int64_t attempts, double seconds) {
  fs::create_directories(file.parent_path());
  io::AtomicWriter w(file);
  auto& r = w.root();
  r.write_string(rf::kConfig, config::to_toml(task));
  r.set_attr(rf::kKind, kind);
  r.set_attr(kind == rf::kDenseKind ? rf::kDenseId : rf::kRunId, id);
  r.set_attr(rf::kDenseId, config::dense_id(task));
  r.set_attr(rf::kArch, task.model.arch);
  r.set_attr(rf::kDataset, task.data.dataset);
  r.set_attr(rf::kSeed, task.experiment.seed);
  if (kind == rf::kPruneKind) {
    r.set_attr(rf::kMethod, task.prune.method);
    r.set_attr(rf::kBudget, task.prune.budget);
  }
  r.set_attr(rf::kError, error);
  r.set_attr(rf::kAttempts, attempts);
  r.set_attr(rf::kSeconds, seconds);
  r.set_attr(rf::kFinishedAt, utc_now());
  rf::commit_result(w, rf::kFailed);
}

Row read_row(const fs::path& file, const fs::path& dir) {
  Row row;
  std::error_code ec;
  fs::path rel = fs::relative(file, dir, ec);
  row.file = ec || rel.empty() ? file.string() : rel.string();
  row.id = file.stem().string();
  row.kind = file.parent_path().filename() == "dense" ? rf::kDenseKind : rf::kPruneKind;
  const rf::Verdict v = rf::check(file);
  if (v.state == rf::Verdict::State::unusable) {
    row.status = v.no_digest && v.problems.size() == 1 ? "unsealed" : "damaged";
    row.error = v.reason();
  }
  try {
    io::File f = io::File::open(file);
    const auto& r = f.root();
    if (v.state != rf::Verdict::State::unusable) row.status = r.attr_string(rf::kStatus);
    row.kind = opt_string(r, rf::kKind).empty() ? row.kind : opt_string(r, rf::kKind);
    const bool dense = row.kind == rf::kDenseKind;
    row.method = dense ? "(dense)" : opt_string(r, rf::kMethod);
    row.arch = opt_string(r, rf::kArch);
    row.dataset = opt_string(r, rf::kDataset);
    row.budget = dense ? 1.0 : opt_double(r, rf::kBudget);
    row.seed = opt_int(r, rf::kSeed);
    row.seconds = opt_double(r, rf::kSeconds);
    if (row.error.empty()) row.error = opt_string(r, rf::kError);
    row.attempts = opt_int(r, rf::kAttempts, row.status == rf::kFailed ? 1 : 0);
    if (row.status == rf::kComplete && r.has(rf::kSummary)) {
      auto s = r.open_group(rf::kSummary);
      row.top1 = opt_double(s, rf::kTop1);
      row.dense_top1 = opt_double(s, rf::kDenseTop1);
      row.macs = opt_int(s, rf::kMacs);
      row.mac_ratio = dense ? 1.0 : opt_double(s, rf::kMacRatio);
      row.speedup = opt_double(s, rf::kSpeedup);
      row.speedup_unreliable = opt_int(s, rf::kSpeedupUnreliable, 0) != 0;
    }
  } catch (const IOError&) {
    // Unreadable: the verdict says why.
  }
  return row;
}

std::vector<Row> scan_rows(const fs::path& dir) {
  std::vector<Row> rows;
  for (const char* sub : {"dense", "runs"}) {
    fs::path d = dir / sub;
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    for (auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".h5") rows.push_back(read_row(e.path(), dir));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    int ka = a.kind == rf::kDenseKind ? 0 : 1, kb = b.kind == rf::kDenseKind ? 0 : 1;
    return std::tie(ka, a.dataset, a.arch, b.budget, a.method, a.seed, a.id) <
           std::tie(kb, b.dataset, b.arch, a.budget, b.method, b.seed, b.id);
  });
  return rows;
}

std::string format_table(const std::vector<Row>& rows, bool with_dense) {
  std::string out;
  // Text columns as wide as their longest entry (at least the usual widths), so that names such as
  // pass_no_recurrence keep the columns aligned.
  int wm = 16, wa = 10, wd = 14;
  for (auto& r : rows) {
    if (!with_dense && r.kind == rf::kDenseKind) continue;
    wm = std::max(wm, static_cast<int>(r.method.size()));
    wa = std::max(wa, static_cast<int>(r.arch.size()));
    wd = std::max(wd, static_cast<int>(r.dataset.size()));
  }
  // One layout for the header and every row.
  constexpr const char* kLayout = "%-9s %-13s %-*s %-*s %-*s %6s %4s %7s %12s %6s %7s %8s\n";
  std::vector<char> line(static_cast<size_t>(wm + wa + wd) + 512);
  std::snprintf(line.data(), line.size(), kLayout, "status", "id", wm, "method", wa, "arch", wd, "dataset", "budget",
                "seed", "top1%", "MACs", "MACs%", "speedup", "time");
  out += line.data();
  auto num = [](double v, const char* fmt) {
    char b[32];
    if (v < 0 || !std::isfinite(v)) return std::string("-");
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  int unreliable = 0;
  for (auto& r : rows) {
    if (!with_dense && r.kind == rf::kDenseKind) continue;
    // An unreliable speed-up keeps its number but never shows without its mark.
    const bool flag = r.speedup_unreliable && r.speedup >= 0;
    unreliable += flag;
    std::string secs = r.seconds < 0 ? "-" : num(r.seconds, "%.0fs");
    std::snprintf(line.data(), line.size(), kLayout, r.status.c_str(), r.id.c_str(), wm,
                  r.method.empty() ? "-" : r.method.c_str(), wa, r.arch.empty() ? "-" : r.arch.c_str(), wd,
                  r.dataset.empty() ? "-" : r.dataset.c_str(), r.kind == rf::kDenseKind ? "1.00" : num(r.budget, "%.2f").c_str(),
                  r.seed < 0 ? "-" : std::to_string(r.seed).c_str(), num(100 * r.top1, "%.2f").c_str(),
                  r.macs < 0 ? "-" : std::to_string(r.macs).c_str(), num(100 * r.mac_ratio, "%.1f").c_str(),
                  (num(r.speedup, "%.2f") + (flag ? "?" : "")).c_str(), secs.c_str());
    out += line.data();
    if (r.status != rf::kComplete && !r.error.empty()) {
      std::string e = r.error.size() > 300 ? r.error.substr(0, 300) + "..." : r.error;
      out += "          error" + (r.attempts > 0 ? " (attempt " + std::to_string(r.attempts) + ")" : std::string()) + ": " +
             e + "\n";
    }
  }
  if (unreliable > 0)
    out += "? " + std::to_string(unreliable) + " speed-up" + (unreliable > 1 ? "s" : "") +
           " unreliable: the per-round ratios spread more than eval.speedup_max_spread (summary@speedup_spread); "
           "re-measure on a quieter machine\n";
  return out;
}

std::string count_line(const std::vector<Row>& rows) {
  int complete = 0, failed = 0, damaged = 0, unsealed = 0;
  for (auto& r : rows) {
    if (r.status == rf::kComplete) ++complete;
    else if (r.status == rf::kFailed) ++failed;
    else if (r.status == "unsealed") ++unsealed;
    else ++damaged;
  }
  return std::to_string(complete) + " complete, " + std::to_string(failed) + " failed, " + std::to_string(damaged) +
         " damaged" +
         (unsealed ? ", " + std::to_string(unsealed) + " written before digests (passlab seal DIR seals them)" : "");
}

fs::path write_index(const fs::path& dir) {
  auto rows = scan_rows(dir);
  fs::path out = dir / "sweep.h5";
  io::AtomicWriter w(out);
  auto& root = w.root();
  auto links = root.create_group("runs");
  int complete = 0, failed = 0, damaged = 0;
  for (auto& r : rows) {
    if (r.status == rf::kComplete) ++complete;
    else if (r.status == rf::kFailed) ++failed;
    else ++damaged;
    if (r.status == "damaged") continue;
    // Relative to sweep.h5's folder, so the results directory can be moved or copied.
    H5_CHECK(H5Lcreate_external(r.file.c_str(), "/", links.id(), r.id.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  }
  auto table = root.create_group("table");
  auto col_s = [&](const char* name, auto get) {
    std::vector<std::string> v;
    for (auto& r : rows) v.push_back(get(r));
    write_string_column(table, name, v);
  };
  auto col_d = [&](const char* name, auto get) {
    std::vector<double> v;
    for (auto& r : rows) v.push_back(get(r));
    table.write(name, v.data(), io::Shape{v.size()});
  };
  auto col_i = [&](const char* name, auto get) {
    std::vector<int64_t> v;
    for (auto& r : rows) v.push_back(get(r));
    table.write(name, v.data(), io::Shape{v.size()});
  };
  col_s("file", [](const Row& r) { return r.file; });
  col_s("id", [](const Row& r) { return r.id; });
  col_s("kind", [](const Row& r) { return r.kind; });
  col_s("status", [](const Row& r) { return r.status; });
  col_s("method", [](const Row& r) { return r.method; });
  col_s("arch", [](const Row& r) { return r.arch; });
  col_s("dataset", [](const Row& r) { return r.dataset; });
  col_s("error", [](const Row& r) { return r.error; });
  col_d("budget", [](const Row& r) { return r.budget; });
  col_i("seed", [](const Row& r) { return r.seed; });
  col_d("top1", [](const Row& r) { return r.top1; });
  col_d("dense_top1", [](const Row& r) { return r.dense_top1; });
  col_i("macs", [](const Row& r) { return r.macs; });
  col_d("mac_ratio", [](const Row& r) { return r.mac_ratio; });
  col_d("speedup", [](const Row& r) { return r.speedup; });
  col_i("speedup_unreliable", [](const Row& r) { return static_cast<int64_t>(r.speedup_unreliable); });
  col_d("seconds", [](const Row& r) { return r.seconds; });
  col_i("attempts", [](const Row& r) { return r.attempts; });
  root.set_attr("kind", "sweep_index");
  root.set_attr("rows", static_cast<int64_t>(rows.size()));
  root.set_attr("complete", static_cast<int64_t>(complete));
  root.set_attr("failed", static_cast<int64_t>(failed));
  root.set_attr("damaged", static_cast<int64_t>(damaged));
  root.set_attr("built_at", utc_now());
  w.commit();
  return out;
}

std::vector<Problem> check_file(const fs::path& file) {
  std::vector<Problem> out;
  auto bad = [&](const std::string& what) { out.push_back({file.string(), what}); };
  try {
    {
      io::File f = io::File::open(file);
      const auto& r = f.root();
      // The index holds links to the run files (checked on their own) and fixed-length columns.
      if (opt_string(r, rf::kKind) == "sweep_index") return out;
      if (data::is_store(f)) {
        for (auto& problem : data::check_store(file)) bad(problem);
        return out;
      }
    }
    for (auto& problem : rf::check(file).problems) bad(problem);
  } catch (const std::exception& e) {
    bad(e.what());
  }
  return out;
}

std::vector<Problem> check_results(const fs::path& dir, int* files_checked) {
  std::vector<Problem> out;
  int n = 0;
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) {
    if (files_checked) *files_checked = 1;
    return check_file(dir);
  }
  if (!fs::is_directory(dir, ec)) {
    out.push_back({dir.string(), "no such file or directory"});
    return out;
  }
  for (const char* sub : {"dense", "runs"}) {
    fs::path d = dir / sub;
    if (!fs::is_directory(d, ec)) continue;
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(d)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& p : files) {
      if (p.extension() == ".h5") {
        ++n;
        auto probs = check_file(p);
        out.insert(out.end(), probs.begin(), probs.end());
      } else if (p.extension() == ".tmp") {
        PL_INFO("{}: leftover temporary file of a killed writer (harmless; the next writer replaces it)", p.string());
      }
    }
  }
  if (fs::exists(dir / "sweep.h5", ec)) {
    ++n;
    auto probs = check_file(dir / "sweep.h5");
    out.insert(out.end(), probs.begin(), probs.end());
  }
  if (files_checked) *files_checked = n;
  return out;
}

void journal(const fs::path& dir, const std::string& holder, const std::string& event, const std::string& id,
             const std::string& detail) {
  std::string line = utc_now() + "\t" + holder + "\t" + event + "\t" + id + "\t" + detail;
  for (auto& c : line)
    if (c == '\n') c = ' ';
  line += "\n";
  fs::path p = dir / "journal.tsv";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    PL_WARN("cannot open {}: {}", p.string(), std::strerror(errno));
    return;
  }
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    PL_WARN("cannot append to {}: {}", p.string(), std::strerror(errno));
  if (::close(fd) != 0) PL_WARN("cannot close {}: {}", p.string(), std::strerror(errno));
}

}  // namespace passlab::sweep
