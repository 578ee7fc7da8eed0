#include "passlab/pipeline/measurements.hpp"

#include <algorithm>
#include <cstdio>

#include "passlab/core/error.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"

namespace passlab::pipeline {
namespace rf = io::run_file;

namespace {

// Attribute names of an entry that are not also /summary attributes of a run file.
constexpr char kFormatVersion[] = "format_version";
constexpr char kHost[] = "host";
constexpr char kDeviceName[] = "device_name";
constexpr char kRunFile[] = "run_file";
constexpr char kRunFinishedAt[] = "run_finished_at";
constexpr char kMeasuredAt[] = "measured_at";
constexpr char kPassVersion[] = "passlab_version";
constexpr char kGitSha[] = "git_sha";
constexpr char kThreads[] = "threads";
constexpr char kSpeedupMaxSpread[] = "speedup_max_spread";
constexpr char kWarmupPasses[] = "warmup_passes";
constexpr char kWarmupStable[] = "warmup_stable";
constexpr char kDenseRoundsMs[] = "dense_ms";
constexpr char kCompactRoundsMs[] = "compact_ms";

// The scalar attributes of an entry, one table for writing and reading (names shared with a
// run file's /summary where the quantity is the same: the analysis overlays them by name).
const std::vector<std::pair<const char*, std::string Measurement::*>>& string_attrs() {
  static const std::vector<std::pair<const char*, std::string Measurement::*>> t = {
      {rf::kRunId, &Measurement::run_id},           {kRunFile, &Measurement::run_file},
      {kRunFinishedAt, &Measurement::run_finished_at}, {kMeasuredAt, &Measurement::measured_at},
      {kPassVersion, &Measurement::passlab_version}, {kGitSha, &Measurement::git_sha},
      {rf::kSpeedupForm, &Measurement::speedup_form}};
  return t;
}
const std::vector<std::pair<const char*, double Measurement::*>>& double_attrs() {
  static const std::vector<std::pair<const char*, double Measurement::*>> t = {
      {rf::kLatencyDenseMs, &Measurement::latency_dense_ms}, {rf::kLatencyPrunedMs, &Measurement::latency_pruned_ms},
      {rf::kSpeedup, &Measurement::speedup},                 {rf::kSpeedupSpread, &Measurement::speedup_spread},
      {kSpeedupMaxSpread, &Measurement::speedup_max_spread}, {rf::kLoad1minStart, &Measurement::load_1min_start},
      {rf::kLoad1minEnd, &Measurement::load_1min_end}};
  return t;
}
const std::vector<std::pair<const char*, int64_t Measurement::*>>& int_attrs() {
  static const std::vector<std::pair<const char*, int64_t Measurement::*>> t = {
      {rf::kSpeedupRounds, &Measurement::speedup_rounds}, {rf::kCores, &Measurement::cores},
      {rf::kLatencyBatch, &Measurement::latency_batch},   {kThreads, &Measurement::threads},
      {kWarmupPasses, &Measurement::warmup_passes}};
  return t;
}
const std::vector<std::pair<const char*, bool Measurement::*>>& flag_attrs() {  // stored as int64 0/1
  static const std::vector<std::pair<const char*, bool Measurement::*>> t = {
      {rf::kSpeedupUnreliable, &Measurement::speedup_unreliable}, {kWarmupStable, &Measurement::warmup_stable}};
  return t;
}

void write_entry(io::Group& g, const Measurement& m) {
  for (const auto& [name, field] : string_attrs()) g.set_attr(name, m.*field);
  for (const auto& [name, field] : double_attrs()) g.set_attr(name, m.*field);
  for (const auto& [name, field] : int_attrs()) g.set_attr(name, m.*field);
  for (const auto& [name, field] : flag_attrs()) g.set_attr(name, static_cast<int64_t>(m.*field));
  g.write(kDenseRoundsMs, m.dense_ms);
  g.write(kCompactRoundsMs, m.compact_ms);
}

Measurement read_entry(const io::Group& g, const Machine& machine) {
  Measurement m;
  m.machine = machine;
  for (const auto& [name, field] : string_attrs()) m.*field = g.attr_string(name);
  for (const auto& [name, field] : double_attrs()) m.*field = g.attr_double(name);
  for (const auto& [name, field] : int_attrs()) m.*field = g.attr_int(name);
  for (const auto& [name, field] : flag_attrs()) m.*field = g.attr_int(name) != 0;
  m.dense_ms = g.read<double>(kDenseRoundsMs);
  m.compact_ms = g.read<double>(kCompactRoundsMs);
  return m;
}

}  // namespace

std::string Machine::key() const {
  std::string k = host + "@" + device;
  std::replace(k.begin(), k.end(), '/', '_');  // '/' separates HDF5 path components
  return k;
}

std::filesystem::path measurements_path(const std::filesystem::path& results_dir) {
  return results_dir / kMeasurementsFile;
}

Measurements Measurements::read(const std::filesystem::path& results_dir) {
  const auto path = measurements_path(results_dir);
  return std::filesystem::exists(path) ? read_file(path) : Measurements{};
}

Measurements Measurements::read_file(const std::filesystem::path& path) {
  Measurements out;
  io::File f = io::open_complete(path);
  const auto& root = f.root();
  if (!root.has_attr(rf::kKind) || root.attr_string(rf::kKind) != kMeasurementsKind)
    throw IOError(path.string() + ": not a measurements file (root @kind is not \"" + kMeasurementsKind + "\")");
  const int64_t version = root.attr_int(kFormatVersion);
  if (version != kMeasurementsFormatVersion)
    throw IOError(path.string() + ": measurements format version " + std::to_string(version) + ", this passlab reads " +
                  std::to_string(kMeasurementsFormatVersion));
  for (const auto& key : root.children()) {
    const auto mg = root.open_group(key);
    const Machine machine{mg.attr_string(kHost), mg.attr_string(rf::kDevice), mg.attr_string(kDeviceName)};
    for (const auto& id : mg.children()) out.put(read_entry(mg.open_group(id), machine));
  }
  return out;
}

const Measurement* Measurements::find(const std::string& machine_key, const std::string& run_id) const {
  auto m = entries_.find(machine_key);
  if (m == entries_.end()) return nullptr;
  auto e = m->second.find(run_id);
  return e == m->second.end() ? nullptr : &e->second;
}

void Measurements::put(Measurement m) {
  PASSLAB_CHECK(!m.run_id.empty() && !m.machine.host.empty() && !m.machine.device.empty(), InternalError,
                "a measurement needs a run id, a host and a device");
  auto& slot = entries_[m.machine.key()][m.run_id];
  slot = std::move(m);
}

size_t Measurements::size() const {
  size_t n = 0;
  for (const auto& [key, runs] : entries_) n += runs.size();
  return n;
}

std::filesystem::path Measurements::write(const std::filesystem::path& results_dir) const {
  const auto path = measurements_path(results_dir);
  io::AtomicWriter w(path);
  auto& root = w.root();
  root.set_attr(rf::kKind, kMeasurementsKind);
  root.set_attr(kFormatVersion, kMeasurementsFormatVersion);
  for (const auto& [key, runs] : entries_) {
    auto mg = root.create_group(key);
    const Machine& machine = runs.begin()->second.machine;
    mg.set_attr(kHost, machine.host);
    mg.set_attr(rf::kDevice, machine.device);
    mg.set_attr(kDeviceName, machine.device_name);
    for (const auto& [id, m] : runs) {
      auto g = mg.create_group(id);
      write_entry(g, m);
    }
  }
  w.commit();
  return path;
}

namespace {
int64_t unreliable_count(const Measurements& all) {
  int64_t n = 0;
  for (const auto& [key, runs] : all.by_machine())
    for (const auto& [id, m] : runs) n += m.speedup_unreliable;
  return n;
}
}  // namespace

std::string format_measurements(const Measurements& all) {
  std::string out;
  char line[512];
  for (const auto& [key, runs] : all.by_machine()) {
    const Machine& machine = runs.begin()->second.machine;
    out += key + (machine.device_name.empty() ? "" : " (" + machine.device_name + ")") + ":\n";
    std::snprintf(line, sizeof line, "  %-13s %-9s %-7s %-6s %-10s %-11s %-22s %-5s %-7s %-11s %s\n", "run_id", "speed-up",
                  "spread", "rounds", "dense ms", "compact ms", "form", "batch", "threads", "load", "measured_at");
    out += line;
    for (const auto& [id, m] : runs) {
      const std::string speed = std::to_string(m.speedup).substr(0, 4) + "x" + (m.speedup_unreliable ? "?" : "");
      const std::string load = std::to_string(m.load_1min_start).substr(0, 4) + "->" + std::to_string(m.load_1min_end).substr(0, 4);
      std::snprintf(line, sizeof line, "  %-13s %-9s %-7.3f %-6lld %-10.3f %-11.3f %-22s %-5lld %-7lld %-11s %s\n", id.c_str(),
                    speed.c_str(), m.speedup_spread, static_cast<long long>(m.speedup_rounds), m.latency_dense_ms,
                    m.latency_pruned_ms, m.speedup_form.c_str(), static_cast<long long>(m.latency_batch),
                    static_cast<long long>(m.threads), load.c_str(), m.measured_at.c_str());
      out += line;
    }
  }
  if (unreliable_count(all) > 0)
    out += "?: unreliable: the per-round ratios spread more than the run's eval.speedup_max_spread (speedup_max_spread)\n";
  return out;
}

std::string measurements_count_line(const Measurements& all) {
  return std::to_string(all.size()) + " entries on " + std::to_string(all.by_machine().size()) + " machine(s), " +
         std::to_string(unreliable_count(all)) + " flagged unreliable";
}

}  // namespace passlab::pipeline
