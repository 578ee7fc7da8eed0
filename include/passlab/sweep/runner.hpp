#pragma once
// Runs a sweep (sweep/plan.hpp) on this process's run group, dynamically.
//
// The group leader repeatedly picks the first task of the plan (highest priority first) that is
// not finished, whose dense model is complete (prune tasks) and that it can claim in
// <results>/claims/ (sweep/claims.hpp), and broadcasts it to its group; every rank of the group
// runs it. So groups never sit idle while a task is ready, and any number of launchers (one
// mpirun with several groups, several mpiruns, a SLURM job array) can share one results
// directory: a task runs at most once at a time, and a dead launcher's claims are taken over.
//
// Results: a complete file is never redone. A task that throws on every rank of its group
// (exception, NaN loss, a diverged search...) is recorded in its result file with
// status = "failed", `error` and `attempts`; the sweep goes on, and the task is retried up to
// sweep.max_retries times (in this or a later launch). After that it is final: later launches
// report it and leave it alone unless SweepOptions::retry_failed. The prune tasks of a dense
// model that finally failed are reported as blocked.
// Stop requests (core/stop.hpp: SIGTERM, SIGINT, SIGUSR1, SIGUSR2 to any rank, relayed to every
// rank): the running task's group agrees at its next training step, checkpoints the stage and
// stops it (StopRequested: nothing recorded, the claim released, the work folder kept); no new
// task is taken; the launch reports "stopped" and exits 75. A relaunch resumes the task from its
// checkpoint.
// A failure that cannot be recorded at the task's path (a folder where the file goes) is final
// for the launch and reported with its path and OS error.
// A group leaves when every task is finished, failed for good, blocked, or held by a live claim
// of another group or launcher. At the end every rank meets at a world barrier, the world
// leader rebuilds <results>/sweep.h5, and every rank gets the same report.
//
// Test-only hooks (environment; documented in README, never set in production):
//   PASSLAB_TEST_FAIL_TASK=<id>[@N][,...]   the task throws (its first N attempts only, with @N)
//   PASSLAB_TEST_HOLD_TASK=<id>=<file>[:<file>...]  the task waits until every file exists
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
  std::string status;    // "complete" | "failed" (this attempt)
  std::string error;
  double seconds = 0;
};

struct SweepOptions {
  bool retry_failed = false;  // failed tasks get a fresh set of attempts
  double poll_s = 0.5;        // how often a waiting leader looks again
};

struct SweepReport {
  std::vector<TaskOutcome> ran;  // tasks this group ran (each attempt)
  int total = 0, complete = 0, failed = 0, blocked = 0, pending = 0;  // over the whole plan, at the end
  std::vector<std::string> failed_ids, blocked_ids;
  bool stopped = false;  // a stop was requested before the sweep finished
  // 75: stopped by a signal (relaunch to continue); 1: some task failed for good or is blocked;
  // 0: otherwise (every task complete, or the rest held by other live launchers).
  int exit_code() const;
  std::string summary() const;  // one paragraph for the end of a launch
};

// Creates output.dir and its dense/, runs/, work/ and claims/ folders, or throws a ConfigError
// naming the path and the OS error (a plain file in the way, no permission). `passlab run` calls
// it before any rank starts, so a bad results directory is found before a model trains.
void prepare_results_dir(const config::Config& cfg);

SweepReport run_sweep(const config::Config& cfg, const dist::Runtime& rt, const SweepOptions& opt = {});  // calls prepare_results_dir

// The prune rows of the sweep table (sweep/results.hpp), as before.
std::string summary_table(const std::string& results_dir);

}  // namespace passlab::sweep
