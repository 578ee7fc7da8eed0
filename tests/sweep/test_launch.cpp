// The sweep as users launch it: `passlab run` under mpirun (two run groups, or one group of two
// ranks), killed with SIGKILL and relaunched, two launchers at once over one results directory,
// an injected failure, and `passlab inspect` / `inspect --check` on the results.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "passlab/config/config.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/results.hpp"
#include "sweep/sweep_fixture.hpp"

using namespace passlab;
namespace fs = std::filesystem;

namespace {

std::string binary() { return test::env_or("PASSLAB_BINARY", "build/passlab"); }

// Writes the tiny store and a sweep TOML; returns the TOML path.
fs::path setup(const test::TempDir& dir, const std::string& sweep_lines, const std::string& dist_lines = "") {
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  fs::path toml = dir.path() / "sweep.toml";
  test::write_text(toml, test::tiny_sweep_toml(dir.path(), sweep_lines, dist_lines));
  return toml;
}

std::string mpirun(int np, const std::vector<std::string>& env = {}) {
  std::string cmd = "mpirun -np " + std::to_string(np) + " --oversubscribe --bind-to none";
  for (auto& e : env) cmd += " -x " + e;
  return cmd + " ";
}

std::string id_of(const sweep::Plan& p, sweep::Task::Kind kind, int64_t seed, double budget) {
  for (auto& t : p.tasks)
    if (t.kind == kind && t.cfg.experiment.seed == seed && (kind == sweep::Task::Kind::dense || t.cfg.prune.budget == budget))
      return t.id;
  return "";
}

std::string holder_of(const std::vector<test::JournalLine>& j, const std::string& event, const std::string& id) {
  for (auto& l : j)
    if (l.event == event && l.id == id) return l.holder;
  return "";
}
size_t line_of(const std::vector<test::JournalLine>& j, const std::string& event, const std::string& id) {
  for (size_t i = 0; i < j.size(); ++i)
    if (j[i].event == event && j[i].id == id) return i;
  return j.size();
}

// A child running `cmd` through sh in its own process group (so the whole job can be killed).
pid_t spawn_group(const std::string& cmd) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

}  // namespace

TEST(SweepLaunch, SlowTaskDoesNotIdleTheOtherGroup) {
  test::TempDir dir;
  auto toml = setup(dir, "seeds = [0, 1]\nbudgets = [0.5, 0.3]\n");
  auto plan = sweep::make_plan(config::load_file(toml));
  const std::string d0 = id_of(plan, sweep::Task::Kind::dense, 0, 0), p1a = id_of(plan, sweep::Task::Kind::prune, 1, 0.5),
                    p1b = id_of(plan, sweep::Task::Kind::prune, 1, 0.3);
  const fs::path runs = dir.path() / "results" / "runs";
  // Seed 0's dense model is held until both prune tasks of seed 1 are complete: that happens
  // only if the other group takes every ready task meanwhile (a static deal would deadlock).
  const std::string hold = d0 + "=" + (runs / (p1a + ".h5")).string() + ":" + (runs / (p1b + ".h5")).string();
  auto r = test::run_command("PASSLAB_TEST_HOLD_TASK='" + hold + "' " + mpirun(2, {"PASSLAB_TEST_HOLD_TASK"}) + binary() +
                             " run " + toml.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto rows = sweep::scan_rows(dir.path() / "results");
  EXPECT_EQ(sweep::count_line(rows), "6 complete, 0 failed, 0 damaged") << r.output;
  auto j = test::read_journal(dir.path() / "results");
  const std::string slow = holder_of(j, "start", d0);
  ASSERT_FALSE(slow.empty());
  EXPECT_LT(line_of(j, "start", d0), line_of(j, "end", p1b)) << "the held task started after the others ended";
  for (auto& id : {id_of(plan, sweep::Task::Kind::dense, 1, 0), p1a, p1b}) {
    EXPECT_EQ(test::count_events(j, "start", id), 1) << id;
    EXPECT_NE(holder_of(j, "start", id), slow) << id << " ran on the group that held the slow task";
  }
  EXPECT_NE(r.output.find("progress: 6/6 tasks finished"), std::string::npos) << r.output;
}

TEST(SweepLaunch, ResumesAfterSigkillWithoutRedoingFinishedTasks) {
  test::TempDir dir;
  auto toml = setup(dir, "budgets = [0.5, 0.3, 0.2]\n");
  auto plan = sweep::make_plan(config::load_file(toml));
  const std::string held = id_of(plan, sweep::Task::Kind::prune, 0, 0.2);
  const fs::path results = dir.path() / "results";
  // The first launch holds the 20 % task forever; it is killed once the rest is done.
  const std::string hold = held + "=" + (dir.path() / "never").string();
  pid_t job = spawn_group("PASSLAB_TEST_HOLD_TASK='" + hold + "' " + mpirun(2, {"PASSLAB_TEST_HOLD_TASK"}) + binary() +
                          " run " + toml.string() + " > " + (dir.path() / "first.log").string() + " 2>&1");
  ASSERT_GT(job, 0);
  auto done = [&] {
    int n = 0;
    for (auto& t : plan.tasks) n += t.id != held && sweep::read_state(t.path).kind == sweep::ResultState::Kind::complete;
    return n == 3 && fs::exists(results / "claims" / (held + ".claim"));
  };
  int status = 0;
  bool exited = false;
  while (!done()) {
    if (waitpid(job, &status, WNOHANG) == job) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(exited) << test::read_text(dir.path() / "first.log");
  ASSERT_EQ(kill(-job, SIGKILL), 0);
  ASSERT_EQ(waitpid(job, &status, 0), job);
  // Open MPI starts the ranks in process groups of their own, so killing mpirun's group leaves
  // them alive for a while (and their claim rightly counts as held). A job killed by SIGKILL
  // loses every process: kill the ranks too and wait until none is left.
  // "[/]tmp/..." matches the path but not this pattern's own shell command line.
  const std::string pattern = "[" + toml.string().substr(0, 1) + "]" + toml.string().substr(1);
  const std::string mine = "pgrep -f -- '" + pattern + "'";
  test::run_command("pkill -KILL -f -- '" + pattern + "'");
  for (int i = 0; i < 300 && test::run_command(mine).exit_code == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_NE(test::run_command(mine).exit_code, 0) << "ranks of the killed job are still running";
  std::map<std::string, std::pair<fs::file_time_type, uintmax_t>> before;
  for (auto& t : plan.tasks)
    if (t.id != held) before[t.id] = {fs::last_write_time(t.path), fs::file_size(t.path)};
  EXPECT_FALSE(fs::exists(plan.tasks[plan.index_of(held)].path));
  const size_t first_lines = test::read_journal(results).size();

  auto r = test::run_command(mpirun(2) + binary() + " run " + toml.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (auto& t : plan.tasks) {
    EXPECT_EQ(sweep::read_state(t.path).kind, sweep::ResultState::Kind::complete) << t.id << "\n" << r.output;
    if (t.id != held) {
      EXPECT_EQ(fs::last_write_time(t.path), before[t.id].first) << t.id << " was rewritten";
      EXPECT_EQ(fs::file_size(t.path), before[t.id].second) << t.id;
    }
  }
  auto j = test::read_journal(results);
  std::vector<test::JournalLine> second(j.begin() + static_cast<long>(first_lines), j.end());
  EXPECT_EQ(test::count_events(second, "start", held), 1);
  for (auto& l : second) EXPECT_TRUE(l.id == held) << "relaunch redid " << l.id;
}

TEST(SweepLaunch, TwoLaunchersOverOneDirectoryNeverRunATaskTwice) {
  test::TempDir dir;
  auto toml = setup(dir, "seeds = [0, 1]\nbudgets = [0.5, 0.3]\n");
  const std::string cmd = binary() + " run " + toml.string();
  // Two independent launchers (no shared MPI job), started together.
  pid_t a = spawn_group(cmd + " > " + (dir.path() / "a.log").string() + " 2>&1");
  pid_t b = spawn_group(cmd + " > " + (dir.path() / "b.log").string() + " 2>&1");
  int sa = 0, sb = 0;
  ASSERT_EQ(waitpid(a, &sa, 0), a);
  ASSERT_EQ(waitpid(b, &sb, 0), b);
  EXPECT_TRUE(WIFEXITED(sa) && WEXITSTATUS(sa) == 0) << test::read_text(dir.path() / "a.log");
  EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 0) << test::read_text(dir.path() / "b.log");
  auto rows = sweep::scan_rows(dir.path() / "results");
  EXPECT_EQ(sweep::count_line(rows), "6 complete, 0 failed, 0 damaged");
  auto j = test::read_journal(dir.path() / "results");
  std::set<std::string> holders;
  for (auto& row : rows) {
    EXPECT_EQ(test::count_events(j, "start", row.id), 1) << row.id << " ran more than once";
    EXPECT_EQ(test::count_events(j, "end", row.id), 1) << row.id;
    holders.insert(holder_of(j, "start", row.id));
  }
  // Every start comes with its end before the same task starts anywhere else (checked above by
  // the counts); both launchers took part unless one was much slower to start.
  EXPECT_GE(holders.size(), 1u);
}

TEST(SweepLaunch, FailureInATwoRankGroupIsIsolatedAndInspectFindsDamage) {
  test::TempDir dir;
  auto toml = setup(dir, "budgets = [0.5, 0.3]\nmax_retries = 0\n", "ranks_per_run = 2\n");
  auto plan = sweep::make_plan(config::load_file(toml));
  const std::string bad = id_of(plan, sweep::Task::Kind::prune, 0, 0.5);
  const std::string good = id_of(plan, sweep::Task::Kind::prune, 0, 0.3);
  auto r = test::run_command("PASSLAB_TEST_FAIL_TASK=" + bad + " " + mpirun(2, {"PASSLAB_TEST_FAIL_TASK"}) + binary() +
                             " run " + toml.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("failed:  " + bad), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2/3 tasks complete, 1 failed"), std::string::npos) << r.output;
  const fs::path results = dir.path() / "results";
  EXPECT_EQ(sweep::read_state(results / "runs" / (good + ".h5")).kind, sweep::ResultState::Kind::complete);

  auto table = test::run_command(binary() + " inspect " + results.string());
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("failed"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("injected failure"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("3 result file(s): 2 complete, 1 failed, 0 damaged"), std::string::npos) << table.output;

  auto index = test::run_command(binary() + " inspect " + (results / "sweep.h5").string());
  EXPECT_EQ(index.exit_code, 0) << index.output;
  EXPECT_NE(index.output.find("2 complete, 1 failed"), std::string::npos) << index.output;
  auto file = test::run_command(binary() + " inspect " + (results / "runs" / (good + ".h5")).string());
  EXPECT_EQ(file.exit_code, 0) << file.output;
  EXPECT_NE(file.output.find("complete  " + good), std::string::npos) << file.output;
  EXPECT_NE(file.output.find("summary/"), std::string::npos) << file.output;

  auto ok = test::run_command(binary() + " inspect --check " + results.string());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;  // a failure record is not damage
  EXPECT_NE(ok.output.find("0 damaged"), std::string::npos) << ok.output;
  const fs::path victim = results / "runs" / (good + ".h5");
  fs::resize_file(victim, fs::file_size(victim) - 200);
  auto damaged = test::run_command(binary() + " inspect --check " + results.string());
  EXPECT_EQ(damaged.exit_code, 1) << damaged.output;
  EXPECT_NE(damaged.output.find("DAMAGED " + victim.string()), std::string::npos) << damaged.output;
  EXPECT_NE(damaged.output.find("1 damaged"), std::string::npos) << damaged.output;
  auto one = test::run_command(binary() + " inspect --check " + victim.string());
  EXPECT_EQ(one.exit_code, 1) << one.output;
}

TEST(SweepLaunch, Sigusr1StopsAfterTheCurrentTaskAndARelaunchFinishes) {
  test::TempDir dir;
  auto toml = setup(dir, "budgets = [0.5, 0.3]\n");
  auto plan = sweep::make_plan(config::load_file(toml));
  const std::string dense = plan.tasks[0].id;
  const fs::path results = dir.path() / "results", go = dir.path() / "go";
  // The dense task waits for `go`; SIGUSR1 arrives (forwarded by mpirun) while it runs.
  pid_t job = spawn_group("PASSLAB_TEST_HOLD_TASK='" + dense + "=" + go.string() + "' exec " +
                          mpirun(1, {"PASSLAB_TEST_HOLD_TASK"}) + binary() + " run " + toml.string() + " > " +
                          (dir.path() / "first.log").string() + " 2>&1");
  ASSERT_GT(job, 0);
  int status = 0;
  while (test::count_events(test::read_journal(results), "start", dense) == 0) {
    ASSERT_NE(waitpid(job, &status, WNOHANG), job) << test::read_text(dir.path() / "first.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(kill(job, SIGUSR1), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let mpirun forward it before the task ends
  test::write_text(go, "");
  ASSERT_EQ(waitpid(job, &status, 0), job);
  const std::string log = test::read_text(dir.path() / "first.log");
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 75) << log;
  EXPECT_NE(log.find("stopped by a signal"), std::string::npos) << log;
  EXPECT_EQ(sweep::read_state(plan.tasks[0].path).kind, sweep::ResultState::Kind::complete) << log;
  // No new task after the signal was seen: normally none after the dense one, at worst one more.
  int left = 0;
  for (auto& t : plan.tasks) left += !fs::exists(t.path);
  EXPECT_GE(left, 1) << log;
  EXPECT_TRUE(fs::is_empty(results / "claims")) << "claims left behind";

  auto r = test::run_command(mpirun(1) + binary() + " run " + toml.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (auto& t : plan.tasks) EXPECT_EQ(sweep::read_state(t.path).kind, sweep::ResultState::Kind::complete) << t.id;
}
