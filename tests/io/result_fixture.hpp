#pragma once
// Result files built by hand from the declared schema (io/run_schema.hpp), for the io tests.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"

namespace passlab::test {
namespace rf = passlab::io::run_file;

inline bool needed(const rf::Entry& e, unsigned kind, const std::string& status) {
  if (!(e.files & kind)) return false;
  return e.need == rf::Need::always || (e.need == rf::Need::complete && status == rf::kComplete) ||
         (e.need == rf::Need::failed && status == rf::kFailed);
}

inline std::string concrete(std::string path) {  // "/masks/*" -> "/masks/g0"
  std::replace(path.begin(), path.end(), '*', 'x');
  return path == "/" ? "" : path.substr(1);
}

inline void write_attr(io::Group& g, const std::string& name, rf::Type t) {
  if (t == rf::Type::string) g.set_attr(name, "text");
  else if (t == rf::Type::int64) g.set_attr(name, int64_t{1});
  else g.set_attr(name, 0.5);
}

// A file with exactly the entries the table requires of this kind and status, each written with
// its declared type (groups first, so that entries inside them have a place); `before_commit`
// may add to it, `commit` commits it (default: a plain AtomicWriter commit, as before digests).
inline void write_minimal(const std::filesystem::path& p, unsigned kind, const std::string& status,
                          const std::function<void(io::Group&)>& before_commit = {},
                          const std::function<void(io::AtomicWriter&, const std::string&)>& commit = {}) {
  io::AtomicWriter w(p);
  auto& root = w.root();
  for (auto& e : rf::entries())
    if (needed(e, kind, status) && e.item == rf::Item::group) root.require_group(concrete(e.path));
  // The group holding `path` ("" is the root) and the last name of `path`.
  auto place = [&](const std::string& path, const std::function<void(io::Group&, const std::string&)>& f) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return f(root, path);
    if (!root.has(path.substr(0, slash))) return;  // inside an optional group left out
    io::Group g = root.open_group(path.substr(0, slash));
    f(g, path.substr(slash + 1));
  };
  for (auto& e : rf::entries()) {
    if (!needed(e, kind, status) || e.item == rf::Item::group || e.attr == rf::kStatus) continue;  // commit sets status
    const std::string path = concrete(e.path);
    if (e.item == rf::Item::attribute) {
      auto set = [&](io::Group& g) {
        write_attr(g, e.attr, e.type);
        if (e.attr == rf::kKind) g.set_attr(e.attr, kind == rf::Files::dense ? rf::kDenseKind : rf::kPruneKind);
      };
      if (path.empty()) {
        set(root);
      } else {
        io::Group g = root.open_group(path);
        set(g);
      }
      continue;
    }
    place(path, [&](io::Group& g, const std::string& name) {
      if (e.type == rf::Type::string) g.write_string(name, "text");
      else if (e.type == rf::Type::int64) g.write(name, std::vector<int64_t>{0, 2});
      else if (e.type == rf::Type::uint8) g.write(name, std::vector<uint8_t>{1, 0, 1});
      else g.write(name, std::vector<double>{0.25});
    });
  }
  if (before_commit) before_commit(root);
  if (commit) commit(w, status);
  else w.commit(status);
}

}  // namespace passlab::test
