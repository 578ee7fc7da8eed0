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
#include "passlab/io/hdf5.hpp"

namespace fs = std::filesystem;

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

// Reads one attribute whatever its type (string, integer or floating).
void read_any_attr(const io::Group& g, const std::string& a) {
  try {
    (void)g.attr_string(a);
    return;
  } catch (const IOError&) {
  }
  try {
    (void)g.attr_int(a);
    return;
  } catch (const IOError&) {
  }
  (void)g.attr_double(a);
}

// Reads every dataset and attribute under `g` (HDF5 verifies what it reads: a truncated or
// overwritten chunk or header fails here).
void read_everything(const io::Group& g) {
  for (auto& a : g.attr_names()) read_any_attr(g, a);
  for (auto& name : g.children()) {
    if (g.is_group(name)) {
      read_everything(g.open_group(name));
      continue;
    }
    io::Dataset d = g.open_dataset(name);
    io::DType t;
    try {
      t = d.dtype();
    } catch (const IOError&) {
      (void)g.read_string(name);  // string datasets (e.g. /config)
      continue;
    }
    switch (t) {
      case io::DType::u8: (void)g.read<uint8_t>(name); break;
      case io::DType::i32: (void)g.read<int32_t>(name); break;
      case io::DType::i64: (void)g.read<int64_t>(name); break;
      case io::DType::f32: (void)g.read<float>(name); break;
      case io::DType::f64: (void)g.read<double>(name); break;
    }
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
  try {
    io::File f = io::open_complete(file, {"complete", "failed"});
    if (f.root().attr_string("status") == "complete") {
      s.kind = ResultState::Kind::complete;
    } else {
      s.kind = ResultState::Kind::failed;
      s.attempts = opt_int(f.root(), "attempts", 1);
      s.error = opt_string(f.root(), "error");
    }
  } catch (const IOError& e) {
    s.kind = ResultState::Kind::damaged;
    s.error = e.what();
  }
  return s;
}

void write_failure(const fs::path& file, const config::Config& task, const std::string& kind, const std::string& id,
                   const std::string& error, int64_t attempts, double seconds) {
  fs::create_directories(file.parent_path());
  io::AtomicWriter w(file);
  auto& r = w.root();
  r.write_string("config", config::to_toml(task));
  r.set_attr("kind", kind);
  r.set_attr(kind == "dense" ? "dense_id" : "run_id", id);
  r.set_attr("dense_id", config::dense_id(task));
  r.set_attr("arch", task.model.arch);
  r.set_attr("dataset", task.data.dataset);
  r.set_attr("seed", task.experiment.seed);
  if (kind == "prune") {
    r.set_attr("method", task.prune.method);
    r.set_attr("budget", task.prune.budget);
  }
  r.set_attr("error", error);
  r.set_attr("attempts", attempts);
  r.set_attr("seconds", seconds);
  r.set_attr("finished_at", utc_now());
  w.commit("failed");
}

Row read_row(const fs::path& file, const fs::path& dir) {
  Row row;
  std::error_code ec;
  fs::path rel = fs::relative(file, dir, ec);
  row.file = ec || rel.empty() ? file.string() : rel.string();
  row.id = file.stem().string();
  row.kind = file.parent_path().filename() == "dense" ? "dense" : "prune";
  try {
    io::File f = io::open_complete(file, {"complete", "failed"});
    const auto& r = f.root();
    row.status = r.attr_string("status");
    row.kind = opt_string(r, "kind").empty() ? row.kind : opt_string(r, "kind");
    row.method = row.kind == "dense" ? "(dense)" : opt_string(r, "method");
    row.arch = opt_string(r, "arch");
    row.dataset = opt_string(r, "dataset");
    row.budget = row.kind == "dense" ? 1.0 : opt_double(r, "budget");
    row.seed = opt_int(r, "seed");
    row.seconds = opt_double(r, "seconds");
    row.error = opt_string(r, "error");
    row.attempts = opt_int(r, "attempts", row.status == "failed" ? 1 : 0);
    if (row.status == "complete" && r.has("summary")) {
      auto s = r.open_group("summary");
      row.top1 = opt_double(s, "top1");
      row.dense_top1 = opt_double(s, "dense_top1");
      row.macs = opt_int(s, "macs");
      row.mac_ratio = row.kind == "dense" ? 1.0 : opt_double(s, "mac_ratio");
      row.speedup = opt_double(s, "speedup");
    }
  } catch (const IOError& e) {
    row.status = "damaged";
    row.error = e.what();
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
    int ka = a.kind == "dense" ? 0 : 1, kb = b.kind == "dense" ? 0 : 1;
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
    if (!with_dense && r.kind == "dense") continue;
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
  for (auto& r : rows) {
    if (!with_dense && r.kind == "dense") continue;
    std::string secs = r.seconds < 0 ? "-" : num(r.seconds, "%.0fs");
    std::snprintf(line.data(), line.size(), kLayout, r.status.c_str(), r.id.c_str(), wm,
                  r.method.empty() ? "-" : r.method.c_str(), wa, r.arch.empty() ? "-" : r.arch.c_str(), wd,
                  r.dataset.empty() ? "-" : r.dataset.c_str(), r.kind == "dense" ? "1.00" : num(r.budget, "%.2f").c_str(),
                  r.seed < 0 ? "-" : std::to_string(r.seed).c_str(), num(100 * r.top1, "%.2f").c_str(),
                  r.macs < 0 ? "-" : std::to_string(r.macs).c_str(), num(100 * r.mac_ratio, "%.1f").c_str(),
                  num(r.speedup, "%.2f").c_str(), secs.c_str());
    out += line.data();
    if (r.status != "complete" && !r.error.empty()) {
      std::string e = r.error.size() > 300 ? r.error.substr(0, 300) + "..." : r.error;
      out += "          error" + (r.attempts > 0 ? " (attempt " + std::to_string(r.attempts) + ")" : std::string()) + ": " +
             e + "\n";
    }
  }
  return out;
}

std::string count_line(const std::vector<Row>& rows) {
  int complete = 0, failed = 0, damaged = 0;
  for (auto& r : rows) {
    if (r.status == "complete") ++complete;
    else if (r.status == "failed") ++failed;
    else ++damaged;
  }
  return std::to_string(complete) + " complete, " + std::to_string(failed) + " failed, " + std::to_string(damaged) +
         " damaged";
}

fs::path write_index(const fs::path& dir) {
  auto rows = scan_rows(dir);
  fs::path out = dir / "sweep.h5";
  io::AtomicWriter w(out);
  auto& root = w.root();
  auto links = root.create_group("runs");
  int complete = 0, failed = 0, damaged = 0;
  for (auto& r : rows) {
    if (r.status == "complete") ++complete;
    else if (r.status == "failed") ++failed;
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
    io::File f = io::File::open(file);
    const auto& r = f.root();
    if (!r.has_attr("status")) {
      bad("no status attribute: unfinished or not written by passlab");
      return out;
    }
    const std::string status = r.attr_string("status");
    if (status != "complete" && status != "failed") {
      bad("status is '" + status + "'");
      return out;
    }
    // The index holds links to the run files (checked on their own) and fixed-length columns.
    if (opt_string(r, "kind") == "sweep_index") return out;
    read_everything(r);
    if (status == "failed") {
      if (opt_string(r, "error").empty()) bad("failed without an error attribute");
      return out;
    }
    if (!r.has("config")) bad("no /config");
    if (!r.has("summary")) {
      bad("no /summary");
      return out;
    }
    auto s = r.open_group("summary");
    double top1 = opt_double(s, "top1", NAN);
    if (!(top1 >= 0 && top1 <= 1)) bad("summary top1 is " + std::to_string(top1) + ", not in [0, 1]");
    if (opt_int(s, "macs", 0) <= 0) bad("summary macs missing or not positive");
    if (opt_string(r, "kind") == "prune") {
      if (!r.has("keep")) bad("prune run without /keep");
      if (!r.has("masks")) bad("prune run without /masks");
      double ratio = opt_double(s, "mac_ratio", NAN);
      if (!(ratio > 0 && ratio <= 1.0 + 1e-9)) bad("summary mac_ratio is " + std::to_string(ratio));
    }
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
