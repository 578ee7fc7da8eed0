#include <iostream>
#include <memory>

#include "commands.hpp"
#include "passlab/config/config.hpp"
#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"

namespace passlab::cli {

Command add_config_command(CLI::App& app) {
  struct Opts {
    std::string path, scope = "all";
    std::vector<std::string> sets;
    bool schema = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("config", "Print a resolved config as canonical TOML (with its ids), or the schema");
  sub->add_option("config", o->path, "Experiment TOML");
  add_set_option(sub, o->sets, "of the config");
  sub->add_option("--scope", o->scope, "all|run|dense: which keys to print")->check(CLI::IsMember({"all", "run", "dense"}));
  sub->add_flag("--schema", o->schema, "Print the Markdown reference of every key (docs/config.md)");
  return {sub, [o](const Context&) {
            if (o->schema) {
              std::cout << config::schema_markdown();
              return 0;
            }
            if (o->path.empty()) throw ConfigError("passlab config: give a config file or --schema");
            config::Config c = config::load_file(o->path, o->sets);
            config::Scope s = o->scope == "run" ? config::Scope::run : o->scope == "dense" ? config::Scope::dense : config::Scope::all;
            std::cout << "# run_id = " << config::run_id(c) << ", dense_id = " << config::dense_id(c) << "\n"
                      << config::to_toml(c, s);
            return 0;
          }};
}

}  // namespace passlab::cli
