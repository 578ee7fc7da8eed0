// The sweep as users launch it: `passlab run` under mpirun (two run groups, or one group of two
// ranks), killed with SIGKILL and relaunched, stopped by SIGTERM/SIGUSR1 (to mpirun, to
// launch/local.sh, to one rank) and relaunched, two launchers at once over one results directory,
// an injected failure, a result path taken by a folder, and `passlab inspect` / `inspect --check`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
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


// Dense training long enough to be interrupted mid-stage, the same on the relaunch (it is part of
// the dense id): still running when a signal arrives on an idle machine, although mpirun forwards
// SIGTERM to its ranks only a second later (12 epochs were done within it).
const std::string kLongDense = "dense.epochs=60";


// A sweep whose dense models train long enough to be stopped mid-stage.
struct LongDenseSweep {
  test::TempDir dir;
  fs::path toml, results;
  sweep::Plan plan;
  std::vector<fs::path> checkpoints;  // of the dense stages, work/<dense id>/dense.ckpt.h5
  LongDenseSweep(const std::string& sweep_lines, const std::string& dist_lines)
      : toml(setup(dir, sweep_lines, dist_lines)), results(dir.path() / "results"),
        plan(sweep::make_plan(config::load_file(toml, {kLongDense}))) {
    for (auto& t : plan.tasks)
      if (t.kind == sweep::Task::Kind::dense) checkpoints.push_back(results / "work" / t.id / "dense.ckpt.h5");
  }
  std::string run_args() const { return toml.string() + " --set " + kLongDense; }
};

struct StoppedJob {
  int status = 0;
  double seconds = 0;  // from the signal to the job's end
  std::string log;
};

// Starts `cmd` in a process group of its own (output to dir/first.log), waits until every dense
// checkpoint of `s` exists (the first epochs done: every dense stage is mid-way), then sends
// `sig` to the process `target` picks (default: the job itself) and waits for the job.
StoppedJob start_then_signal(const LongDenseSweep& s, const std::string& cmd, int sig,
                             const std::function<pid_t(pid_t)>& target = nullptr) {
  StoppedJob out;
  const fs::path log = s.dir.path() / "first.log";
  pid_t job = spawn_group("exec " + cmd + " > " + log.string() + " 2>&1");
  for (auto& ckpt : s.checkpoints)
    while (!fs::exists(ckpt)) {
      if (waitpid(job, &out.status, WNOHANG) == job) {
        ADD_FAILURE() << "the job ended before " << ckpt << " appeared\n" << test::read_text(log);
        return out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  const pid_t to = target ? target(job) : job;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(kill(to, sig), 0);
  EXPECT_EQ(waitpid(job, &out.status, 0), job);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.log = test::read_text(log);
  std::printf("[ measured ] from the signal to the job's end: %.2f s\n", out.seconds);  // README, Signals
  return out;
}

// mpirun's ranks (its children), by Open MPI world rank.
std::map<int, pid_t> ranks_of(pid_t mpirun_pid) {
  std::map<int, pid_t> out;
  for (auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != mpirun_pid) continue;
    std::ifstream env(e.path() / "environ", std::ios::binary);
    for (std::string var; std::getline(env, var, '\0');)
      if (var.rfind("OMPI_COMM_WORLD_RANK=", 0) == 0) out[std::stoi(var.substr(21))] = std::stoi(name);
  }
  return out;
}

// Relaunches with `cmd`: it must finish the sweep, resuming the stage from every checkpoint in
// `resumed` (logged at info by each group's leader; `level` debug shows the other ranks' too) and
// leave every task of `plan` complete.
void expect_relaunch_resumes(const std::string& cmd, const sweep::Plan& plan, const std::vector<fs::path>& resumed,
                             const std::string& level = "info") {
  auto r = test::run_command("PASSLAB_LOG=" + level + " " + cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (auto& ckpt : resumed) EXPECT_NE(r.output.find("resumed from " + ckpt.string() + " at epoch "), std::string::npos) << r.output;
  for (auto& t : plan.tasks) EXPECT_EQ(sweep::read_state(t.path).kind, sweep::ResultState::Kind::complete) << t.id;
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

TEST(SweepLaunch, Sigusr1ToMpirunStopsTheTaskAtItsFirstStepAndARelaunchFinishes) {
  test::TempDir dir;
  auto toml = setup(dir, "budgets = [0.5, 0.3]\n");
  auto plan = sweep::make_plan(config::load_file(toml));
  const std::string dense = plan.tasks[0].id;
  const fs::path results = dir.path() / "results", go = dir.path() / "go";
  // The dense task waits for `go`; SIGUSR1 arrives (forwarded by mpirun) while it waits, so its
  // training stops after its first step, with a checkpoint, and no other task starts.
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
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let mpirun forward it before the task trains
  test::write_text(go, "");
  ASSERT_EQ(waitpid(job, &status, 0), job);
  const std::string log = test::read_text(dir.path() / "first.log");
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 75) << log;
  EXPECT_NE(log.find("stop requested: SIGUSR1 received"), std::string::npos) << log;
  EXPECT_NE(log.find("stopped by SIGUSR1: relaunch to continue"), std::string::npos) << log;
  EXPECT_EQ(sweep::read_state(plan.tasks[0].path).kind, sweep::ResultState::Kind::missing) << log;
  EXPECT_TRUE(fs::exists(results / "work" / dense / "dense.ckpt.h5")) << log;
  auto j = test::read_journal(results);
  EXPECT_EQ(test::count_events(j, "stop", dense), 1) << log;
  EXPECT_EQ(j.size(), 2u) << "a task started after the stop\n" << log;  // start and stop of the dense task
  EXPECT_TRUE(fs::is_empty(results / "claims")) << "claims left behind";

  expect_relaunch_resumes(mpirun(1) + binary() + " run " + toml.string(), plan, {results / "work" / dense / "dense.ckpt.h5"});
}

// SIGTERM to mpirun: Open MPI sends the ranks SIGCONT, SIGTERM 1 s later and SIGKILL 1 s after
// that, and exits 1 itself whatever the ranks return (so launch/local.sh forwards SIGUSR1
// instead). The ranks still log the signal and checkpoint the dense stage within that second,
// and a relaunch resumes it there.
TEST(SweepSignals, SigtermToMpirunCheckpointsTheStageAndARelaunchResumesIt) {
  LongDenseSweep s("budgets = [0.5]\n", "ranks_per_run = 2\n");
  const std::string run = mpirun(2) + binary() + " run " + s.run_args();
  auto job = start_then_signal(s, run, SIGTERM);
  ASSERT_TRUE(WIFEXITED(job.status)) << job.log;
  EXPECT_NE(WEXITSTATUS(job.status), 0) << job.log;  // Open MPI's own status after SIGTERM
  EXPECT_LT(job.seconds, 5.0) << job.log;
  EXPECT_NE(job.log.find("stop requested: SIGTERM received"), std::string::npos) << job.log;
  EXPECT_EQ(sweep::read_state(s.plan.tasks[0].path).kind, sweep::ResultState::Kind::missing) << job.log;
  EXPECT_TRUE(fs::exists(s.checkpoints[0])) << job.log;
  expect_relaunch_resumes(run, s.plan, s.checkpoints);
}

// SIGTERM to one rank (rank 1, the only rank of the second run group): the stop relay carries it
// to rank 0, which trains the other dense model in the first group. Both groups checkpoint and
// stop; every rank exits 75, so mpirun does too; a relaunch resumes both dense models.
TEST(SweepSignals, SigtermToOneRankStopsEveryGroupWith75AndARelaunchResumes) {
  LongDenseSweep s("seeds = [0, 1]\nbudgets = [0.5]\n", "");
  ASSERT_EQ(s.checkpoints.size(), 2u);
  const std::string run = mpirun(2) + binary() + " run " + s.run_args();
  auto job = start_then_signal(s, run, SIGTERM, [](pid_t mpirun_pid) {
    auto ranks = ranks_of(mpirun_pid);
    EXPECT_EQ(ranks.count(1), 1u);
    return ranks.count(1) ? ranks.at(1) : mpirun_pid;
  });
  ASSERT_TRUE(WIFEXITED(job.status)) << job.log;
  EXPECT_EQ(WEXITSTATUS(job.status), 75) << job.log;
  EXPECT_LT(job.seconds, 10.0) << job.log;
  EXPECT_NE(job.log.find("[1/2] [warning] stop requested: SIGTERM received"), std::string::npos) << job.log;
  EXPECT_NE(job.log.find("[0/2] [warning] stop requested: SIGTERM (received by rank 1)"), std::string::npos) << job.log;
  auto j = test::read_journal(s.results);
  for (auto& t : s.plan.tasks) {
    EXPECT_FALSE(fs::exists(t.path)) << t.id << "\n" << job.log;
    if (t.kind == sweep::Task::Kind::dense) {
      EXPECT_EQ(test::count_events(j, "stop", t.id), 1) << t.id << "\n" << job.log;
    }
  }
  for (auto& ckpt : s.checkpoints) EXPECT_TRUE(fs::exists(ckpt)) << ckpt;
  expect_relaunch_resumes(run, s.plan, s.checkpoints, "debug");  // rank 1 leads the second group
}

// launch/local.sh turns SIGTERM into SIGUSR1 for mpirun (which forwards it and does not kill):
// the ranks checkpoint and exit 75, and so does the script; relaunched through it, the finished
// work is kept and the stage resumes.
TEST(SweepSignals, SigtermToLocalShExits75AndARelaunchThroughItResumes) {
  LongDenseSweep s("budgets = [0.5]\n", "ranks_per_run = 2\n");
  const std::string launch = "env PASSLAB_BIN=" + binary() + " bash " +
                             (test::source_dir() / "launch" / "local.sh").string() + " -n 2 " + s.run_args();
  auto job = start_then_signal(s, launch, SIGTERM);
  ASSERT_TRUE(WIFEXITED(job.status)) << job.log;
  EXPECT_EQ(WEXITSTATUS(job.status), 75) << job.log;
  EXPECT_LT(job.seconds, 10.0) << job.log;
  EXPECT_NE(job.log.find("launch/local.sh: SIGTERM received"), std::string::npos) << job.log;
  EXPECT_NE(job.log.find("stop requested: SIGUSR1 received"), std::string::npos) << job.log;
  EXPECT_NE(job.log.find("stopped by SIGUSR1: relaunch to continue"), std::string::npos) << job.log;
  EXPECT_EQ(test::count_events(test::read_journal(s.results), "stop", s.plan.tasks[0].id), 1) << job.log;
  EXPECT_TRUE(fs::exists(s.checkpoints[0])) << job.log;
  expect_relaunch_resumes(launch, s.plan, s.checkpoints);
}

// A result path taken by a folder: the leader's rename fails; the whole group fails the task
// with the path and the OS error (no rank waits in a barrier for the leader), the failure that
// cannot be recorded there either is reported at the end, and the launch exits 1 at once.
TEST(SweepSignals, ResultPathTakenByAFolderFailsTheTaskOnEveryRankWithThePath) {
  test::TempDir dir;
  auto toml = setup(dir, "budgets = [0.5]\n", "ranks_per_run = 2\ntimeout_s = 60\n");
  auto plan = sweep::make_plan(config::load_file(toml));
  const auto& prune = plan.tasks[1];
  ASSERT_EQ(prune.kind, sweep::Task::Kind::prune);
  fs::create_directories(prune.path / "in_the_way");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = test::run_command(mpirun(2) + binary() + " run " + toml.string());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(seconds, 60.0) << r.output;
  EXPECT_EQ(r.output.find("did not complete within"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cannot rename " + prune.path.string() + ".tmp to " + prune.path.string() + ": Is a directory"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("failed:  " + prune.id), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1/2 tasks complete, 1 failed"), std::string::npos) << r.output;
  EXPECT_EQ(sweep::read_state(plan.tasks[0].path).kind, sweep::ResultState::Kind::complete) << r.output;
  EXPECT_TRUE(fs::is_directory(prune.path / "in_the_way"));
}
