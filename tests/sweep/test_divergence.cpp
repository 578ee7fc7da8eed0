// A diverging dense task, as users run it (`passlab run`, watched from outside): it fails before
// any complete dense file exists, with a clear error; its prune tasks are blocked; the other
// model's tasks finish. (A divergence from the learning rate alone: test_runner.cpp.)
// No MPI in this process before the child runs: a launcher started from an MPI process
// inherits its environment.
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
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/results.hpp"
#include "sweep/sweep_fixture.hpp"

using namespace passlab;
namespace fs = std::filesystem;

namespace {

std::string binary() { return test::env_or("PASSLAB_BINARY", "build/passlab"); }

// Weights of `arch` for the tiny store (4 classes, 3 channels, 16 px); `poison`: one weight is
// infinite, so the first forward pass, and with it the loss, is not finite.
void write_pretrained(const fs::path& path, const std::string& arch, bool poison) {
  auto net = models::make_model(arch, 4, 3, 16, "cifar");
  if (poison) {
    c10::NoGradGuard ng;
    net->parameters().front().view(-1)[0] = INFINITY;
  }
  io::AtomicWriter w(path);
  auto g = w.root().create_group("weights");
  models::save_weights(*net, g);
  w.commit();
}

}  // namespace

TEST(SweepDivergence, DivergingDenseTaskNeverLeavesACompleteFileAndBlocksOnlyItsPruneTasks) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  write_pretrained(dir.path() / "resnet20.h5", "resnet20", false);
  write_pretrained(dir.path() / "resnet56.h5", "resnet56", true);
  std::string toml = test::tiny_sweep_toml(dir.path(), "archs = [\"resnet20\", \"resnet56\"]\nmax_retries = 0\n");
  const std::string arch_line = "arch = \"resnet20\"\n";
  ASSERT_NE(toml.find(arch_line), std::string::npos);
  toml.replace(toml.find(arch_line), arch_line.size(), arch_line + "pretrained = \"" + (dir.path() / "{arch}.h5").string() + "\"\n");
  const fs::path toml_path = dir.path() / "sweep.toml";
  test::write_text(toml_path, toml);
  auto plan = sweep::make_plan(config::load_file(toml_path));
  ASSERT_EQ(plan.tasks.size(), 4u);
  const sweep::Task *bad = nullptr, *blocked = nullptr;
  for (auto& t : plan.tasks) {
    if (t.cfg.model.arch != "resnet56") continue;
    (t.kind == sweep::Task::Kind::dense ? bad : blocked) = &t;
  }
  ASSERT_TRUE(bad && blocked);

  // The sweep in a child process; this one watches the diverging model's dense file meanwhile.
  const fs::path log = dir.path() / "run.log";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(binary().c_str(), binary().c_str(), "run", toml_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  int status = 0, polls = 0, complete_seen = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    complete_seen += sweep::read_state(bad->path).kind == sweep::ResultState::Kind::complete;
    ++polls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::string out = test::read_text(log);
  EXPECT_GT(polls, 10) << out;
  EXPECT_EQ(complete_seen, 0) << "a complete dense file of the diverging model existed during the run";
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;  // a task failed for good

  auto state = sweep::read_state(bad->path);
  EXPECT_EQ(state.kind, sweep::ResultState::Kind::failed);
  EXPECT_NE(state.error.find("dense " + bad->id + ": training diverged: loss is"), std::string::npos) << state.error;
  EXPECT_NE(state.error.find("in epoch 1"), std::string::npos) << state.error;
  EXPECT_FALSE(fs::exists(blocked->path));
  EXPECT_NE(out.find("blocked: " + blocked->id), std::string::npos) << out;
  for (auto& t : plan.tasks)
    if (t.cfg.model.arch == "resnet20") {
      EXPECT_EQ(sweep::read_state(t.path).kind, sweep::ResultState::Kind::complete) << t.id << "\n" << out;
    }
}
