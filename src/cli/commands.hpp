#pragma once
// Each subcommand lives in its own file (cmd_<name>.cpp) and registers itself on the app;
// main() runs the action of the subcommand that was selected. Exit codes: core/exit_codes.hpp.
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

// `--set section.key=value` on a subcommand: repeatable, one assignment per option, so that
// `--set a=1 b=2` is refused (exit 2, naming b=2) instead of taking b=2 as a second value or a
// positional. `what` says whose config the assignment overrides and gives examples.
inline CLI::Option* add_set_option(CLI::App* sub, std::vector<std::string>& sets, const std::string& what) {
  return sub->add_option("--set", sets, "Override a key " + what + ": section.key=value (repeatable, one each)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace passlab::cli
