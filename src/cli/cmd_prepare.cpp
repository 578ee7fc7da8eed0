#include <memory>

#include "commands.hpp"
#include "passlab/core/error.hpp"

namespace passlab::cli {

Command add_prepare_command(CLI::App& app) {
  auto* sub = app.add_subcommand("prepare", "Convert a raw dataset into an HDF5 image store");
  sub->allow_extras();
  return {sub, [](const Context&) -> int {
            throw NotImplementedError("passlab prepare: not implemented yet in this build");
          }};
}

}  // namespace passlab::cli
