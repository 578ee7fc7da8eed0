#include "passlab/pipeline/paths.hpp"

#include "passlab/core/files.hpp"
#include "passlab/core/log.hpp"

namespace fs = std::filesystem;

namespace passlab::pipeline {

fs::path dense_path(const config::Config& t) { return fs::path(t.output.dir) / "dense" / (config::dense_id(t) + ".h5"); }
fs::path run_path(const config::Config& t) { return fs::path(t.output.dir) / "runs" / (config::run_id(t) + ".h5"); }
fs::path work_dir(const config::Config& t, const std::string& id) { return fs::path(t.output.dir) / "work" / id; }

void remove_work_dir(const config::Config& t, const std::string& id) {
  std::error_code ec;
  remove_tree(work_dir(t, id), ec);
  if (ec) PL_WARN("task {}: could not remove {}: {}", id, work_dir(t, id).string(), ec.message());
}

}  // namespace passlab::pipeline
