#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "commands.hpp"
#include "schema_json.hpp"
#include "passlab/core/error.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/pipeline/measurements.hpp"
#include "passlab/sweep/results.hpp"

namespace passlab::cli {
namespace {

// A scalar attribute's value as it is; an array's as [a, b, ...].
std::string list_text(const std::vector<std::string>& v) {
  if (v.size() == 1) return v[0];
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + "]";
}

// Any attribute as text: strings, integers, then any other number.
std::string attr_text(const io::Group& g, const std::string& a) {
  try {
    return list_text(g.attr_strings(a));
  } catch (const IOError&) {
  }
  try {
    return std::to_string(g.attr_int(a));
  } catch (const IOError&) {
  }
  std::vector<std::string> numbers;
  for (double x : g.attr_doubles(a)) numbers.push_back(std::to_string(x));
  return list_text(numbers);
}

void print_group(const io::Group& g, int depth) {
  std::string pad(static_cast<size_t>(depth) * 2, ' ');
  for (auto& a : g.attr_names()) std::printf("%s@%s = %s\n", pad.c_str(), a.c_str(), attr_text(g, a).c_str());
  for (auto& name : g.children()) {
    if (g.is_group(name)) {
      std::printf("%s%s/\n", pad.c_str(), name.c_str());
      print_group(g.open_group(name), depth + 1);
      continue;
    }
    auto d = g.open_dataset(name);
    std::string shape;
    for (auto x : d.shape()) shape += (shape.empty() ? "" : ",") + std::to_string(x);
    std::string type;
    try {
      type = io::to_string(d.dtype());
    } catch (const IOError&) {
      type = "string";
    }
    std::printf("%s%s [%s] %s\n", pad.c_str(), name.c_str(), shape.c_str(), type.c_str());
  }
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  struct Opts {
    std::string path;
    bool check = false;
    bool tree = false;
    bool index = false;
    bool schema = false;
    bool schema_json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "inspect", "Show a sweep's results as a table (results directory), or one passlab HDF5 file's contents");
  sub->add_option("path", o->path, "Results directory, run file, dense file, sweep.h5 or dataset store");
  sub->add_flag("--check", o->check,
                "Validate every result file (or this file): exit 1 naming each damaged one");
  sub->add_flag("--tree", o->tree, "For sweep.h5: print its groups and links instead of the sweep table");
  sub->add_flag("--index", o->index, "For a results directory: also rebuild its sweep.h5 index");
  sub->add_flag("--schema", o->schema, "Print the Markdown reference of the result-file layout (docs/run-file.md)");
  sub->add_flag("--schema-json", o->schema_json,
                "Print the result-file layout and the method registry as JSON (docs/run-file.json)");
  return {sub, [o](const Context&) {
            namespace fs = std::filesystem;
            if (o->schema || o->schema_json) {
              std::printf("%s", o->schema ? io::run_file::markdown().c_str() : run_file_schema_json().c_str());
              return 0;
            }
            if (o->path.empty()) throw ConfigError("passlab inspect: give a path, --schema or --schema-json");
            const fs::path p = o->path;
            if (o->check) {
              // Every result file against the one notion of a usable result (io/result_file.hpp),
              // a store against its digest or checksum.
              int n = 0;
              const auto t0 = std::chrono::steady_clock::now();
              auto problems = sweep::check_results(p, &n);
              const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::set<std::string> bad, unsealed;
              for (auto& pr : problems) {
                const bool no_digest = pr.what.rfind("no content digest", 0) == 0;
                std::printf("%s %s: %s\n", no_digest ? "UNSEALED" : "DAMAGED", pr.file.c_str(), pr.what.c_str());
                (no_digest ? unsealed : bad).insert(pr.file);
              }
              for (auto& f : bad) unsealed.erase(f);  // unsealed only when that is its one problem
              std::printf("%d file(s) checked in %.3f s, %zu damaged", n, secs, bad.size());
              if (!unsealed.empty())
                std::printf(", %zu without a digest (written before digests: passlab seal verifies and seals them)",
                            unsealed.size());
              std::printf("\n");
              return problems.empty() ? 0 : 1;
            }
            if (fs::is_directory(p)) {
              auto rows = sweep::scan_rows(p);
              std::printf("%s", sweep::format_table(rows).c_str());
              std::printf("%zu result file(s): %s\n", rows.size(), sweep::count_line(rows).c_str());
              if (std::filesystem::exists(pipeline::measurements_path(p)))  // speed-ups timed again after the sweep
                std::printf("%s: %s (passlab inspect %s)\n", pipeline::kMeasurementsFile,
                            pipeline::measurements_count_line(pipeline::Measurements::read(p)).c_str(),
                            pipeline::measurements_path(p).string().c_str());
              if (o->index) std::printf("index: %s\n", sweep::write_index(p).string().c_str());
              return 0;
            }
            io::File f = io::File::open(p);
            std::string kind;
            if (f.root().has_attr(io::run_file::kKind)) {
              try {
                kind = f.root().attr_string(io::run_file::kKind);
              } catch (const IOError&) {
              }
            }
            if (kind == "sweep_index" && !o->tree) {  // the sweep it indexes, read afresh
              auto rows = sweep::scan_rows(p.parent_path().empty() ? fs::path(".") : p.parent_path());
              std::printf("%s", sweep::format_table(rows).c_str());
              std::printf("%zu result file(s): %s\n", rows.size(), sweep::count_line(rows).c_str());
              return 0;
            }
            if (kind == pipeline::kMeasurementsKind && !o->tree) {
              std::printf("%s", pipeline::format_measurements(pipeline::Measurements::read_file(p)).c_str());
              return 0;
            }
            if (kind == io::run_file::kDenseKind || kind == io::run_file::kPruneKind) {
              auto row = sweep::read_row(p, p.parent_path().parent_path());
              std::printf("%s\n", sweep::format_table({row}).c_str());
            }
            std::printf("%s\n", o->path.c_str());
            print_group(f.root(), 1);
            return 0;
          }};
}

}  // namespace passlab::cli
