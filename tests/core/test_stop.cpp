// Stop requests (core/stop.hpp): what the signal handler records, signals that arrive twice
// for one stop, a second signal that ends the process at once with 75, and requests relayed
// from another rank. Each case runs in a forked child, so the test process keeps its handlers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "passlab/core/error.hpp"
#include "passlab/core/exit_codes.hpp"
#include "passlab/core/rethrow.hpp"
#include "passlab/core/stop.hpp"

using namespace passlab;

namespace {

// Runs `body` in a child process and returns its exit status (-1: it did not exit normally).
// The child exits 0 when body returns true, 10 when it returns false.
int in_child(const std::function<bool()>& body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body() ? 0 : 10);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

TEST(Stop, SignalIsRecordedAndASignalSoonAfterIsTheSameRequest) {
  for (int sig : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) {
    EXPECT_EQ(in_child([sig] {
                stop::install_handlers();
                if (stop::requested() != 0) return false;
                ::raise(sig);
                if (stop::requested() != sig || stop::requested_by() != -1) return false;
                ::raise(SIGTERM);  // within kSecondSignalAfter: Slurm signals the batch step and the tasks alike
                return stop::requested() == sig && stop::describe() == stop::signal_name(sig);
              }),
              0)
        << stop::signal_name(sig);
  }
}

TEST(Stop, SecondSignalLaterEndsTheProcessAtOnceWith75) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(in_child([] {
              stop::install_handlers();
              ::raise(SIGTERM);
              std::this_thread::sleep_for(std::chrono::duration<double>(stop::kSecondSignalAfter + 0.1));
              ::raise(SIGINT);  // does not return
              return false;
            }),
            exit_code::stopped);
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), stop::kSecondSignalAfter);
}

TEST(Stop, RelayedRequestNamesItsRankAndTheFirstRequestWins) {
  EXPECT_EQ(in_child([] {
              stop::install_handlers();
              stop::request(SIGUSR1, 3);
              if (stop::requested() != SIGUSR1 || stop::requested_by() != 3) return false;
              if (stop::describe() != "SIGUSR1 (received by rank 3)") return false;
              stop::request(SIGTERM, 1);  // a later relay changes nothing
              ::raise(SIGTERM);            // nor this process's own first signal (it is not a second one)
              return stop::requested() == SIGUSR1 && stop::requested_by() == 3;
            }),
            0);
  EXPECT_EQ(in_child([] {
              stop::install_handlers();
              ::raise(SIGUSR2);
              stop::request(SIGTERM, 1);
              return stop::requested() == SIGUSR2 && stop::requested_by() == -1;
            }),
            0);
}

TEST(Stop, NoRequestWithoutASignal) {
  stop::reset_for_tests();
  EXPECT_EQ(stop::requested(), 0);
  EXPECT_EQ(stop::signal_name(0), "no signal");
  EXPECT_EQ(stop::signal_name(SIGTERM), "SIGTERM");
}

TEST(ExitCodes, ErrorsPassedBetweenRanksKeepTheirKind) {
  EXPECT_THROW(throw_as(ErrorKind::IO, "x"), IOError);
  EXPECT_THROW(throw_as(ErrorKind::Config, "x"), ConfigError);
  EXPECT_THROW(throw_as(ErrorKind::Internal, "x"), InternalError);
  EXPECT_THROW(throw_as(ErrorKind::Diverged, "x"), TrainingDiverged);
  try {
    throw_as(ErrorKind::IO, "cannot rename a to b: Is a directory");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::IO);
    EXPECT_STREQ(e.what(), "cannot rename a to b: Is a directory");
  }
  // Distinct codes: a timeout is neither a failed task nor a missing capability.
  EXPECT_NE(exit_code::timed_out, exit_code::failed);
  EXPECT_NE(exit_code::timed_out, exit_code::not_implemented);
  EXPECT_EQ(exit_code::stopped, 75);
}
