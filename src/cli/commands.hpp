#pragma once
// Each subcommand lives in its own file (cmd_<name>.cpp) and registers itself on the app;
// main() runs the action of the subcommand that was selected. Exit codes: core/exit_codes.hpp.
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <utility>

#include "passlab/core/log.hpp"

namespace passlab::cli {

struct Context {
  std::optional<log::Level> cli_level;  // --log-level, when given
};

using Action = std::function<int(const Context&)>;
using Command = std::pair<CLI::App*, Action>;

Command add_run_command(CLI::App& app);
Command add_prepare_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_config_command(CLI::App& app);
Command add_probe_command(CLI::App& app);
Command add_remeasure_command(CLI::App& app);
Command add_seal_command(CLI::App& app);

}  // namespace passlab::cli
