// A prune task killed (SIGKILL) in the middle of its PASS search: the relaunch resumes the
// search from its step checkpoint, not from step 0, and the run file still has every step.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "passlab/config/config.hpp"
#include "passlab/io/hdf5.hpp"
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
}  // namespace

TEST(SweepSearchResume, KilledSearchResumesFromItsCheckpoint) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  constexpr int64_t kSteps = 40;
  std::string toml = test::tiny_sweep_toml(dir.path(), "");
  replace_once(toml, "[search]\nsteps = 3\n",
               "[search]\nsteps = " + std::to_string(kSteps) + "\ncheckpoint_every_steps = 4\nlog_every = 4\n");
  replace_once(toml, "method = \"random_uniform\"", "method = \"pass\"");
  const fs::path toml_path = dir.path() / "sweep.toml";
  test::write_text(toml_path, toml);
  auto plan = sweep::make_plan(config::load_file(toml_path));
  ASSERT_EQ(plan.tasks.size(), 2u);
  const sweep::Task& prune = plan.tasks[1];
  ASSERT_EQ(prune.kind, sweep::Task::Kind::prune);
  const fs::path ckpt = fs::path(prune.cfg.output.dir) / "work" / prune.id / "search.ckpt.h5";

  // First launch, in a process group of its own; killed once the search has a checkpoint.
  const fs::path first_log = dir.path() / "first.log";
  const std::string cmd = binary() + " --log-level info run " + toml_path.string();
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > " + first_log.string() + " 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  bool exited = false;
  while (!fs::exists(ckpt)) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(exited) << "the first launch ended before its search checkpointed:\n" << test::read_text(first_log);
  ASSERT_EQ(kill(-pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_FALSE(fs::exists(prune.path)) << "the prune task finished before the kill";
  ASSERT_TRUE(fs::exists(ckpt)) << "the search finished (and removed its checkpoint) before the kill";
  int64_t at_step = 0;
  {
    io::File f = io::open_complete(ckpt);
    at_step = f.root().attr_int("global_step");
  }
  ASSERT_GT(at_step, 0);
  ASSERT_LT(at_step, kSteps);
  ASSERT_EQ(at_step % 4, 0);

  // Relaunch: the dense model is complete, the prune task resumes its search at that step.
  auto r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("search " + prune.id + ": resumed from .* \\(step ([0-9]+)\\)")))
      << r.output;
  EXPECT_EQ(std::stoll(m[1]), at_step) << r.output;
  // Steps up to the checkpoint were not run again: the relaunch logs only later ones.
  for (int64_t s = 4; s <= at_step; s += 4)
    EXPECT_EQ(r.output.find(": step " + std::to_string(s) + "/" + std::to_string(kSteps) + ":"), std::string::npos)
        << "step " << s << " was run again\n" << r.output;
  EXPECT_NE(r.output.find(": step " + std::to_string(kSteps) + "/" + std::to_string(kSteps) + ":"), std::string::npos)
      << r.output;
  // The run file holds every step's curve values (restored and new) and the search is gone.
  EXPECT_EQ(sweep::read_state(prune.path).kind, sweep::ResultState::Kind::complete);
  io::File f = io::open_complete(prune.path);
  for (const char* curve : {"search_loss", "search_ce", "search_budget_term", "search_mac_ratio"})
    EXPECT_EQ(f.root().read<double>(std::string("metrics/") + curve).size(), static_cast<size_t>(kSteps)) << curve;
  EXPECT_FALSE(fs::exists(ckpt));
}
