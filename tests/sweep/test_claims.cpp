// Task claims shared by launchers: exclusive, released, taken over when their holder died or
// stopped beating, refreshed while held, and exclusive under concurrent claimers.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <thread>

#include "passlab/sweep/claims.hpp"
#include "support/test_util.hpp"

using namespace passlab;
namespace fs = std::filesystem;

namespace {
void set_age(const fs::path& p, double seconds_ago) {
  struct timespec ts[2];
  clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= static_cast<time_t>(seconds_ago);
  ts[1] = ts[0];
  ASSERT_EQ(utimensat(AT_FDCWD, p.c_str(), ts, 0), 0);
}
double age(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return double(std::time(nullptr) - st.st_mtim.tv_sec);
}
}  // namespace

TEST(Claims, ExclusiveUntilReleased) {
  test::TempDir dir;
  sweep::ClaimDir a(dir / "claims", 60, "a"), b(dir / "claims", 60, "b");
  auto c = a.try_claim("t1");
  ASSERT_TRUE(c);
  EXPECT_EQ(a.state("t1"), sweep::ClaimDir::State::live);
  EXPECT_FALSE(b.try_claim("t1"));
  EXPECT_TRUE(b.try_claim("t2"));  // another task is free (released at once)
  sweep::Holder h;
  b.state("t1", &h);
  EXPECT_EQ(h.label, "a");
  EXPECT_EQ(h.pid, static_cast<long long>(getpid()));
  c->release();
  EXPECT_EQ(a.state("t1"), sweep::ClaimDir::State::free);
  EXPECT_TRUE(b.try_claim("t1"));
}

TEST(Claims, DeadHolderOnThisHostIsTakenOverAtOnce) {
  test::TempDir dir;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sweep::ClaimDir d(dir / "claims", 3600, "child");
    auto c = d.try_claim("t");
    _exit(c ? 0 : 1);  // dies holding the claim (no destructor runs)
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  sweep::ClaimDir me(dir / "claims", 3600, "parent");
  ASSERT_TRUE(fs::exists(me.path_of("t")));
  EXPECT_EQ(me.state("t"), sweep::ClaimDir::State::stale);  // heartbeat fresh, but the process is gone
  auto c = me.try_claim("t");
  ASSERT_TRUE(c);
  sweep::Holder h;
  me.state("t", &h);
  EXPECT_EQ(h.label, "parent");
}

TEST(Claims, ZombieHolderIsDead) {
  // A rank killed with its mpirun is reparented and may stay a zombie until some init reaps
  // it; kill(pid, 0) still succeeds then, but the holder is dead.
  test::TempDir dir;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    sweep::ClaimDir d(dir / "claims", 3600, "child");
    auto c = d.try_claim("t");
    char ok = c ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) _exit(2);
    _exit(0);  // not reaped below until the check: a zombie
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 'y');
  // Wait (without reaping) until the child is a zombie.
  for (int i = 0; i < 500; ++i) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    auto close_paren = s.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < s.size() && s[close_paren + 2] == 'Z') break;
    usleep(10000);
  }
  ASSERT_EQ(kill(pid, 0), 0) << "the zombie still answers kill(pid, 0)";
  sweep::ClaimDir me(dir / "claims", 3600, "parent");
  EXPECT_EQ(me.state("t"), sweep::ClaimDir::State::stale);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

TEST(Claims, ForeignClaimIsStaleOnlyWithoutHeartbeat) {
  test::TempDir dir;
  sweep::ClaimDir me(dir / "claims", 10, "me");
  test::write_text(me.path_of("t"), "some-other-host 4242 1 g0\n");
  EXPECT_EQ(me.state("t"), sweep::ClaimDir::State::live);  // cannot see that host's processes
  EXPECT_FALSE(me.try_claim("t"));
  set_age(me.path_of("t"), 100);
  EXPECT_EQ(me.state("t"), sweep::ClaimDir::State::stale);
  auto c = me.try_claim("t");
  ASSERT_TRUE(c);
  EXPECT_EQ(me.state("t"), sweep::ClaimDir::State::live);
  EXPECT_FALSE(c->lost());
}

TEST(Claims, HeldClaimKeepsBeating) {
  test::TempDir dir;
  sweep::ClaimDir me(dir / "claims", 1.0, "me");  // heartbeat every 0.25 s
  auto c = me.try_claim("t");
  ASSERT_TRUE(c);
  set_age(me.path_of("t"), 50);
  // The heartbeat refreshes it; wait for that (bounded only to end a broken test).
  for (int i = 0; i < 400 && age(me.path_of("t")) > 10; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_LT(age(me.path_of("t")), 10);
  sweep::ClaimDir other(dir / "claims", 1.0, "other");
  EXPECT_FALSE(other.try_claim("t"));
}

TEST(Claims, ConcurrentClaimersNeverShareATask) {
  test::TempDir dir;
  constexpr int kProcs = 4, kTasks = 40;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        sweep::ClaimDir d(dir / "claims", 3600, "p" + std::to_string(p));
        std::vector<std::unique_ptr<sweep::Claim>> held;  // held until every claimer is done
        for (int t = 0; t < kTasks; ++t)
          if (auto c = d.try_claim("task" + std::to_string(t))) {
            std::ofstream(dir / ("won." + std::to_string(p)), std::ios::app) << t << "\n";
            held.push_back(std::move(c));
          }
        test::write_text(dir / ("finished." + std::to_string(p)), "");
        while (!fs::exists(dir / "all_done")) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } catch (...) {
        rc = 2;
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  for (int p = 0; p < kProcs; ++p)
    while (!fs::exists(dir / ("finished." + std::to_string(p)))) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  test::write_text(dir / "all_done", "");
  for (pid_t k : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(k, &status, 0), k);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::map<int, int> winners;
  for (int p = 0; p < kProcs; ++p) {
    std::ifstream in(dir / ("won." + std::to_string(p)));
    int t;
    while (in >> t) ++winners[t];
  }
  ASSERT_EQ(winners.size(), static_cast<size_t>(kTasks));
  for (auto& [t, n] : winners) EXPECT_EQ(n, 1) << "task" << t;
}

// The margin is timeout - heartbeat interval (timeout/4, at most 30 s): hand-computed values.
TEST(Claims, ClockSkewWarnsBeyondTheHeartbeatMargin) {
  EXPECT_DOUBLE_EQ(sweep::heartbeat_interval_s(60), 15);
  EXPECT_DOUBLE_EQ(sweep::heartbeat_interval_s(300), 30);
  EXPECT_TRUE(sweep::clock_skew_warning(44.9, 60).empty());  // margin 60 - 15 = 45
  EXPECT_TRUE(sweep::clock_skew_warning(-44.9, 60).empty());
  std::string ahead = sweep::clock_skew_warning(45.5, 60), behind = sweep::clock_skew_warning(-45.5, 60);
  EXPECT_NE(ahead.find("45.5 s ahead of the results file system's, more than the heartbeat margin of 45.0 s"),
            std::string::npos)
      << ahead;
  EXPECT_NE(ahead.find("will look stale"), std::string::npos) << ahead;
  EXPECT_NE(behind.find("45.5 s behind"), std::string::npos) << behind;
  EXPECT_NE(behind.find("taken over late"), std::string::npos) << behind;
  EXPECT_TRUE(sweep::clock_skew_warning(269, 300).empty());  // margin 300 - 30 = 270
  EXPECT_FALSE(sweep::clock_skew_warning(271, 300).empty());
}

// On a local file system the file's clock is this host's: no skew, and the probe leaves nothing.
TEST(Claims, ClockSkewMeasuredAgainstTheFileSystem) {
  test::TempDir dir;
  sweep::ClaimDir d(dir / "claims", 60, "g0");
  EXPECT_LT(std::abs(d.clock_skew_s()), 1.0);
  EXPECT_TRUE(fs::is_empty(dir / "claims"));
}
