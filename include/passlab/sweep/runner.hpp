#pragma once
// Runs the tasks of a sweep on this process's run group.
//
// Current scheduling (static): every dense model the sweep needs is trained first, the dense
// tasks dealt round-robin to the run groups; after a world barrier the prune tasks are dealt
// the same way. A task whose file is already complete is skipped, so relaunching resumes.
// Dynamic hand-out, claims shared by several launchers, retries and the sweep index are the
// sweep orchestrator's (issue 7).
#include <string>
#include <vector>

#include "passlab/config/config.hpp"

namespace passlab::dist {
class Runtime;
}

namespace passlab::sweep {

struct TaskOutcome {
  std::string kind;  // "dense" | "prune"
  std::string id;
  std::string path;
  bool skipped = false;  // already complete
};

std::vector<TaskOutcome> run_static(const config::Config& cfg, const dist::Runtime& rt);

// One line per complete run file under <dir>/runs: method, budget, seed, top-1, MACs, speed-up.
std::string summary_table(const std::string& results_dir);

}  // namespace passlab::sweep
