// passlab command line: run, prepare, inspect, config. Exit codes: 0 success, 1 runtime or
// I/O failure, 2 bad command line or configuration, 3 a capability not implemented yet.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <optional>
#include <set>

#include "passlab/build_info.hpp"
#include "passlab/config/config.hpp"
#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/io/hdf5.hpp"

namespace {

using namespace passlab;

int exit_code(const Error& e) {
  switch (e.kind()) {
    case ErrorKind::Config: return 2;
    case ErrorKind::NotImplemented: return 3;
    default: return 1;
  }
}

void print_version() {
  for (auto& [k, v] : build_info()) std::printf("%-13s %s\n", (k + ":").c_str(), v.c_str());
}

int cmd_config(const std::string& path, const std::vector<std::string>& sets, const std::string& scope) {
  config::Config c = config::load_file(path, sets);
  config::Scope s = scope == "run" ? config::Scope::run : scope == "dense" ? config::Scope::dense : config::Scope::all;
  std::cout << config::to_toml(c, s);
  return 0;
}

int cmd_run(const std::string& path, const std::vector<std::string>& sets, bool dry_run,
            std::optional<log::Level> cli_level) {
  config::Config c = config::load_file(path, sets);
  log::init(cli_level, log::parse_level(c.output.log_level));
  auto tasks = config::expand_tasks(c);
  std::set<std::string> dense;
  for (auto& t : tasks) dense.insert(config::dense_id(t));
  PL_INFO("config {}: {} prune tasks, {} dense models, results in {}", path, tasks.size(), dense.size(), c.output.dir);
  std::printf("%-14s %-14s %-14s %-18s %-7s %-5s %s\n", "run_id", "dense_id", "dataset", "method", "budget", "seed", "arch");
  for (auto& t : tasks)
    std::printf("%-14s %-14s %-14s %-18s %-7.3f %-5lld %s\n", config::run_id(t).c_str(), config::dense_id(t).c_str(),
                t.data.dataset.c_str(), t.prune.method.c_str(), t.prune.budget, static_cast<long long>(t.experiment.seed),
                t.model.arch.c_str());
  if (dry_run) {
    std::printf("dry run: configuration valid; %zu tasks planned. Training is not implemented yet in this build.\n", tasks.size());
    return 0;
  }
  throw NotImplementedError("passlab run: training is not implemented yet in this build (use --dry-run to validate a config)");
}

void print_group(const io::Group& g, int depth) {
  std::string pad(static_cast<size_t>(depth) * 2, ' ');
  for (auto& a : g.attr_names()) {
    std::string v;
    try {
      v = g.attr_string(a);
    } catch (const IOError&) {
      try {
        v = std::to_string(g.attr_int(a));
      } catch (const IOError&) {
        v = std::to_string(g.attr_double(a));
      }
    }
    std::printf("%s@%s = %s\n", pad.c_str(), a.c_str(), v.c_str());
  }
  for (auto& name : g.children()) {
    if (g.is_group(name)) {
      std::printf("%s%s/\n", pad.c_str(), name.c_str());
      print_group(g.open_group(name), depth + 1);
    } else {
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
}

int cmd_inspect(const std::string& path) {
  io::File f = io::File::open(path);
  std::printf("%s\n", path.c_str());
  print_group(f.root(), 1);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"passlab: PASS structured pruning and baselines, as MPI-launched sweeps"};
  app.require_subcommand(0, 1);
  std::string log_level;
  bool show_version = false;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (overrides PASSLAB_LOG and the config)");
  app.add_flag("--version", show_version, "Print versions of passlab and its libraries");

  auto* run = app.add_subcommand("run", "Run an experiment (one task or a sweep) from a TOML config");
  std::string run_cfg;
  std::vector<std::string> sets;
  bool dry_run = false;
  run->add_option("config", run_cfg, "Experiment TOML")->required()->check(CLI::ExistingFile);
  run->add_option("--set", sets, "Override a key: section.key=value (repeatable)");
  run->add_flag("--dry-run", dry_run, "Validate the config and print the planned tasks; train nothing");

  auto* prepare = app.add_subcommand("prepare", "Convert a raw dataset into an HDF5 image store");
  prepare->allow_extras();

  auto* inspect = app.add_subcommand("inspect", "Show the contents of a run file, store or results directory");
  std::string inspect_path;
  inspect->add_option("path", inspect_path, "HDF5 file")->required();

  auto* cfg = app.add_subcommand("config", "Print a resolved config as canonical TOML, or the schema");
  std::string cfg_path, scope = "all";
  bool schema = false;
  cfg->add_option("config", cfg_path, "Experiment TOML");
  cfg->add_option("--set", sets, "Override a key: section.key=value (repeatable)");
  cfg->add_option("--scope", scope, "all|run|dense: which keys to print")->check(CLI::IsMember({"all", "run", "dense"}));
  cfg->add_flag("--schema", schema, "Print the Markdown reference of every key (docs/config.md)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::optional<log::Level> cli_level;
  if (!log_level.empty()) {
    cli_level = log::parse_level(log_level);
    if (!cli_level) {
      std::fprintf(stderr, "passlab: --log-level %s: expected trace|debug|info|warn|error|off\n", log_level.c_str());
      return 2;
    }
  }
  log::init(cli_level);

  try {
    if (show_version) {
      print_version();
      return 0;
    }
    if (*run) return cmd_run(run_cfg, sets, dry_run, cli_level);
    if (*prepare) throw NotImplementedError("passlab prepare: not implemented yet in this build");
    if (*inspect) return cmd_inspect(inspect_path);
    if (*cfg) {
      if (schema) {
        std::cout << config::schema_markdown();
        return 0;
      }
      if (cfg_path.empty()) throw ConfigError("passlab config: give a config file or --schema");
      return cmd_config(cfg_path, sets, scope);
    }
    std::cout << app.help();
    return 0;
  } catch (const Error& e) {
    PL_ERROR("{}: {}", to_string(e.kind()), e.what());
    return exit_code(e);
  } catch (const std::exception& e) {
    PL_ERROR("unexpected error: {}", e.what());
    return 1;
  }
}
