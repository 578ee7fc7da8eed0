#include "passlab/core/stop.hpp"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "passlab/core/exit_codes.hpp"
#include "passlab/core/log.hpp"

namespace passlab::stop {
namespace {

// Lock-free atomics only: read and written by the signal handler.
std::atomic<int> g_signal{0};          // the first request's signal
std::atomic<int> g_from{-1};           // the rank it came from (-1: this process)
std::atomic<int64_t> g_first_ns{0};    // when this process received its first signal
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<int64_t>::is_always_lock_free);

int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

extern "C" void on_stop_signal(int sig) {
  const int64_t now = monotonic_ns();
  const int64_t first = g_first_ns.load();
  if (first != 0) {
    if (double(now - first) * 1e-9 < kSecondSignalAfter) return;  // the same request, delivered twice
    static const char msg[] = "passlab: a second stop signal: exiting now (75); the last checkpoint is kept\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(exit_code::stopped);
  }
  g_first_ns.store(now);
  int none = 0;
  g_signal.compare_exchange_strong(none, sig);  // a relayed request may have come first
}

}  // namespace

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2})
    if (::sigaction(sig, &sa, nullptr) != 0)
      PL_WARN("cannot install a handler for {}: {}", signal_name(sig), std::strerror(errno));
}

int requested() { return g_signal.load(); }

int requested_by() { return g_signal.load() != 0 ? g_from.load() : -1; }

void request(int signal, int from_rank) {
  if (g_signal.load() != 0) return;  // the first request wins
  g_from.store(from_rank);
  int none = 0;
  if (!g_signal.compare_exchange_strong(none, signal)) g_from.store(-1);  // this process's own signal came first
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    case 0: return "no signal";
  }
  return "signal " + std::to_string(signal);
}

std::string describe() {
  const int sig = requested();
  const int from = requested_by();
  return from < 0 ? signal_name(sig) : signal_name(sig) + " (received by rank " + std::to_string(from) + ")";
}

void reset_for_tests() {
  g_signal.store(0);
  g_from.store(-1);
  g_first_ns.store(0);
}

}  // namespace passlab::stop
