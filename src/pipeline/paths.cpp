#include "passlab/pipeline/paths.hpp"

namespace fs = std::filesystem;

namespace passlab::pipeline {

fs::path dense_path(const config::Config& t) { return fs::path(t.output.dir) / "dense" / (config::dense_id(t) + ".h5"); }
fs::path run_path(const config::Config& t) { return fs::path(t.output.dir) / "runs" / (config::run_id(t) + ".h5"); }
fs::path work_dir(const config::Config& t, const std::string& id) { return fs::path(t.output.dir) / "work" / id; }

}  // namespace passlab::pipeline
