// A prune task killed (SIGKILL) in the middle of its PASS search: the relaunch resumes the
// search from its step checkpoint, not from step 0, and the run file still has every step. Killed
// during its fine-tune: the relaunch does not run the search again.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "passlab/config/config.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/results.hpp"
#include "sweep/sweep_fixture.hpp"

using namespace passlab;
namespace fs = std::filesystem;

namespace {
std::string binary() { return test::env_or("PASSLAB_BINARY", "build/passlab"); }

void replace_once(std::string& s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
}
// Launches `cmd` in a process group of its own with its output in `log`, and SIGKILLs the group
// as soon as `trigger` exists. Fails when the launch ends first.
void launch_and_kill_when(const std::string& cmd, const fs::path& log, const fs::path& trigger) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > " + log.string() + " 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  while (!fs::exists(trigger)) {
    ASSERT_NE(waitpid(pid, &status, WNOHANG), pid) << "the launch ended before " << trigger << " appeared:\n"
                                                   << test::read_text(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(kill(-pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
}

// The tiny sweep (one dense model, one prune task) with a PASS search of `steps` steps that
// checkpoints every 4, and `finetune_epochs` of fine-tuning.
struct SearchSweep {
  fs::path toml;
  sweep::Task prune;
  fs::path search_ckpt, finetune_ckpt;
  std::string cmd;
};
SearchSweep search_sweep(const fs::path& dir, int64_t steps, int64_t finetune_epochs) {
  test::write_store(dir / "tiny.h5", 120, 40);
  std::string toml = test::tiny_sweep_toml(dir, "");
  replace_once(toml, "[search]\nsteps = 3\n",
               "[search]\nsteps = " + std::to_string(steps) + "\ncheckpoint_every_steps = 4\nlog_every = 4\n");
  replace_once(toml, "method = \"random_uniform\"", "method = \"pass\"");
  replace_once(toml, "[finetune]\nepochs = 1\n", "[finetune]\nepochs = " + std::to_string(finetune_epochs) + "\n");
  SearchSweep s;
  s.toml = dir / "sweep.toml";
  test::write_text(s.toml, toml);
  auto plan = sweep::make_plan(config::load_file(s.toml));
  EXPECT_EQ(plan.tasks.size(), 2u);
  s.prune = plan.tasks.at(1);
  EXPECT_EQ(s.prune.kind, sweep::Task::Kind::prune);
  const fs::path work = fs::path(s.prune.cfg.output.dir) / "work" / s.prune.id;
  s.search_ckpt = work / "search.ckpt.h5";
  s.finetune_ckpt = work / "finetune.ckpt.h5";
  s.cmd = binary() + " --log-level info run " + s.toml.string();
  return s;
}

// The run file is complete, holds every search step's curve values, and the task's work
// directory (its checkpoints) is gone.
void expect_complete_with_every_step(const SearchSweep& s, int64_t steps) {
  EXPECT_EQ(sweep::read_state(s.prune.path).kind, sweep::ResultState::Kind::complete);
  io::File f = io::open_complete(s.prune.path);
  for (const char* curve : passlab::io::run_file::kSearchCurves)
    EXPECT_EQ(f.root().read<double>(std::string("metrics/") + curve).size(), static_cast<size_t>(steps)) << curve;
  EXPECT_FALSE(fs::exists(s.search_ckpt.parent_path()));
}
}  // namespace

TEST(SweepSearchResume, KilledSearchResumesFromItsCheckpoint) {
  test::TempDir dir;
  constexpr int64_t kSteps = 40;
  const SearchSweep sw = search_sweep(dir.path(), kSteps, 1);
  const fs::path& ckpt = sw.search_ckpt;

  // First launch: killed once the search has a checkpoint.
  ASSERT_NO_FATAL_FAILURE(launch_and_kill_when(sw.cmd, dir.path() / "first.log", ckpt));
  ASSERT_FALSE(fs::exists(sw.prune.path)) << "the prune task finished before the kill";
  int64_t at_step = 0;
  {
    io::File f = io::open_complete(ckpt);
    at_step = f.root().attr_int("global_step");
  }
  ASSERT_GT(at_step, 0);
  ASSERT_LT(at_step, kSteps);
  ASSERT_EQ(at_step % 4, 0);

  // Relaunch: the dense model is complete, the prune task resumes its search at that step.
  auto r = test::run_command(sw.cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("search " + sw.prune.id + ": resumed from .* \\(step ([0-9]+)\\)")))
      << r.output;
  EXPECT_EQ(std::stoll(m[1]), at_step) << r.output;
  // Steps up to the checkpoint were not run again: the relaunch logs only later ones.
  for (int64_t s = 4; s <= at_step; s += 4)
    EXPECT_EQ(r.output.find(": step " + std::to_string(s) + "/" + std::to_string(kSteps) + ":"), std::string::npos)
        << "step " << s << " was run again\n" << r.output;
  EXPECT_NE(r.output.find(": step " + std::to_string(kSteps) + "/" + std::to_string(kSteps) + ":"), std::string::npos)
      << r.output;
  expect_complete_with_every_step(sw, kSteps);
}

// Killed while fine-tuning: the search's final checkpoint stays until the task's file is written,
// so the relaunch restores the finished search (no step runs again) and fine-tunes.
TEST(SweepSearchResume, KillDuringFinetuneDoesNotRedoTheSearch) {
  test::TempDir dir;
  constexpr int64_t kSteps = 12;
  const SearchSweep sw = search_sweep(dir.path(), kSteps, 3);
  // Killed once fine-tune epoch 1 has its checkpoint.
  ASSERT_NO_FATAL_FAILURE(launch_and_kill_when(sw.cmd, dir.path() / "first.log", sw.finetune_ckpt));
  ASSERT_FALSE(fs::exists(sw.prune.path)) << "the prune task finished before the kill";
  {
    io::File f = io::open_complete(sw.search_ckpt);
    ASSERT_EQ(f.root().attr_int("global_step"), kSteps);
  }
  auto r = test::run_command(sw.cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("search " + sw.prune.id + ": resumed from .* \\(step " +
                                                       std::to_string(kSteps) + "\\)")))
      << r.output;
  for (int64_t s = 4; s <= kSteps; s += 4)
    EXPECT_EQ(r.output.find(": step " + std::to_string(s) + "/" + std::to_string(kSteps) + ":"), std::string::npos)
        << "search step " << s << " was run again\n" << r.output;
  expect_complete_with_every_step(sw, kSteps);
}
