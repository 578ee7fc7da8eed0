#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "passlab/core/error.hpp"
#include "passlab/io/hdf5.hpp"

namespace passlab::cli {
namespace {

std::string attr_text(const io::Group& g, const std::string& a) {
  try {
    return g.attr_string(a);
  } catch (const IOError&) {
  }
  try {
    return std::to_string(g.attr_int(a));
  } catch (const IOError&) {
  }
  return std::to_string(g.attr_double(a));
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
  auto path = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("inspect", "Show the contents of a passlab HDF5 file (run file or dataset store)");
  sub->add_option("path", *path, "HDF5 file")->required();
  return {sub, [path](const Context&) {
            io::File f = io::File::open(*path);
            std::printf("%s\n", path->c_str());
            print_group(f.root(), 1);
            return 0;
          }};
}

}  // namespace passlab::cli
