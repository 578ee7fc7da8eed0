// The kill-on-rename race, with a deterministic trigger (PASSLAB_TEST_KILL_AFTER_RENAME): a model
// whose BatchNorm statistics went infinite (finite loss: the trainer's check passes) is never
// recorded as complete, even when the job is killed the instant a file is renamed; a sound model
// killed the same way is kept by the relaunch. (Damaged files redone by a relaunch:
// test_runner.cpp.) No MPI in this process: a launcher started from an MPI process inherits its
// environment.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <c10/core/GradMode.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "passlab/config/config.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/results.hpp"
#include "sweep/sweep_fixture.hpp"

using namespace passlab;
namespace fs = std::filesystem;
namespace rf = passlab::io::run_file;

namespace {

std::string binary() { return test::env_or("PASSLAB_BINARY", "build/passlab"); }

// ResNet-20 weights for the tiny store; `poison`: every BatchNorm running_var is infinite. The
// training loss stays finite (training normalises by batch statistics, evaluation divides by
// infinity), so only the check at commit can stop the model from being recorded.
void write_pretrained(const fs::path& path, bool poison) {
  auto net = models::make_model("resnet20", 4, 3, 16, "cifar");
  if (poison) {
    c10::NoGradGuard ng;
    for (auto& b : net->named_buffers(true))
      if (b.key().find("running_var") != std::string::npos) b.value().fill_(INFINITY);
  }
  io::AtomicWriter w(path);
  auto g = w.root().create_group("weights");
  models::save_weights(*net, g);
  w.commit();
}

// `passlab run toml` in a child with `env` set; polls `watched` while it runs. Returns the wait
// status; *complete_seen counts polls that found `watched` counted complete.
int run_passlab(const fs::path& toml, const fs::path& log, const std::vector<std::pair<std::string, std::string>>& env,
                const fs::path& watched, int* complete_seen) {
  pid_t pid = fork();
  if (pid == 0) {
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(binary().c_str(), binary().c_str(), "run", toml.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    *complete_seen += sweep::read_state(watched).kind == sweep::ResultState::Kind::complete &&
                      !rf::check(watched).usable();  // complete by the sweep's reading yet not usable: never
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status;
}

}  // namespace

TEST(SweepIntegrity, KilledOnTheRenameANonFiniteModelIsNeverRecordedComplete) {
  test::TempDir dir;
  const fs::path weights = dir.path() / "resnet20.h5", toml_path = dir.path() / "sweep.toml";
  write_pretrained(weights, true);
  // The tiny sweep (one retry), its model started from `weights`.
  std::string toml = test::tiny_sweep_toml(dir.path(), "max_retries = 1\n");
  const std::string arch_line = "arch = \"resnet20\"\n";
  toml.replace(toml.find(arch_line), arch_line.size(), arch_line + "pretrained = \"" + weights.string() + "\"\n");
  test::write_text(toml_path, toml);
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto plan = sweep::make_plan(config::load_file(toml_path));
  ASSERT_EQ(plan.tasks.size(), 2u);
  const sweep::Task& dense = plan.tasks[0];
  const sweep::Task& prune = plan.tasks[1];
  ASSERT_EQ(dense.kind, sweep::Task::Kind::dense);
  const std::string name = dense.path.filename().string();
  int bad_seen = 0;

  // 1. Infinite statistics: the commit refuses the model; the job dies right after the rename of
  //    the failure record that replaces it.
  int status = run_passlab(toml_path, dir.path() / "1.log", {{"PASSLAB_TEST_KILL_AFTER_RENAME", name}}, dense.path, &bad_seen);
  std::string out = test::read_text(dir.path() / "1.log");
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "not killed on a rename: " << status << "\n" << out;
  auto state = sweep::read_state(dense.path);
  ASSERT_EQ(state.kind, sweep::ResultState::Kind::failed) << state.error << "\n" << out;
  EXPECT_NE(state.error.find("refusing to record"), std::string::npos) << state.error;
  EXPECT_NE(state.error.find("non-finite values in /weights/"), std::string::npos) << state.error;
  EXPECT_NE(state.error.find("running_var"), std::string::npos) << state.error;
  EXPECT_FALSE(fs::exists(prune.path));  // no prune task started from it

  // 2. Sound weights: the retry commits a usable model and the job dies right after its rename.
  write_pretrained(weights, false);
  status = run_passlab(toml_path, dir.path() / "2.log", {{"PASSLAB_TEST_KILL_AFTER_RENAME", name}}, dense.path, &bad_seen);
  out = test::read_text(dir.path() / "2.log");
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status << "\n" << out;
  auto v = rf::check(dense.path);
  EXPECT_TRUE(v.usable()) << v.reason();

  // 3. The relaunch keeps that model and runs the prune task from it.
  status = run_passlab(toml_path, dir.path() / "3.log", {}, dense.path, &bad_seen);
  out = test::read_text(dir.path() / "3.log");
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_TRUE(rf::check(prune.path).usable()) << rf::check(prune.path).reason();
  auto j = test::read_journal(dense.cfg.output.dir);
  EXPECT_EQ(test::count_events(j, "start", dense.id), 2);  // not a third time
  EXPECT_EQ(bad_seen, 0) << "a file the sweep counted complete was not usable";
  EXPECT_TRUE(sweep::check_results(dense.cfg.output.dir).empty());
}
