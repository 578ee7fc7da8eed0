// passlab command line. Subcommands: run, prepare, inspect, config, probe, remeasure (see commands.hpp).
#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "passlab/build_info.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/exit_codes.hpp"
#include "passlab/core/stop.hpp"
#include "passlab/dist/agreement.hpp"

namespace {
int exit_code_of(const passlab::Error& e) {
  namespace code = passlab::exit_code;
  if (dynamic_cast<const passlab::dist::TimedOut*>(&e)) return code::timed_out;
  switch (e.kind()) {
    case passlab::ErrorKind::Config: return code::bad_config;
    case passlab::ErrorKind::NotImplemented: return code::not_implemented;
    default: return code::failed;
  }
}
}  // namespace

int main(int argc, char** argv) {
  using namespace passlab;
  CLI::App app{"passlab: PASS structured pruning and its baselines, as MPI-launched sweeps"};
  app.require_subcommand(0, 1);
  std::string log_level;
  bool show_version = false;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (overrides PASSLAB_LOG and the config)");
  app.add_flag("--version", show_version, "Print versions of passlab and its libraries");
  std::vector<cli::Command> commands = {cli::add_run_command(app), cli::add_prepare_command(app),
                                        cli::add_inspect_command(app), cli::add_config_command(app),
                                        cli::add_probe_command(app), cli::add_remeasure_command(app),
                                        cli::add_seal_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  cli::Context ctx;
  if (!log_level.empty()) {
    ctx.cli_level = log::parse_level(log_level);
    if (!ctx.cli_level) {
      std::fprintf(stderr, "passlab: --log-level %s: expected trace|debug|info|warn|error|off\n", log_level.c_str());
      return 2;
    }
  }
  log::init(ctx.cli_level);
  try {
    if (show_version) {
      for (auto& [k, v] : build_info()) std::printf("%-13s %s\n", (k + ":").c_str(), v.c_str());
      return 0;
    }
    for (auto& [sub, action] : commands)
      if (sub->parsed()) return action(ctx);
    std::cout << app.help();
    return 0;
  } catch (const StopRequested& e) {
    PL_WARN("{}", e.what());
    return exit_code::stopped;
  } catch (const Error& e) {
    PL_ERROR("{}: {}", to_string(e.kind()), e.what());
    return exit_code_of(e);
  } catch (const std::exception& e) {
    PL_ERROR("unexpected error: {}", e.what());
    return 1;
  }
}
