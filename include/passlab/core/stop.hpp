#pragma once
// Stop requests. SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 ask this process to stop cleanly: the
// handler only records the signal (async-signal-safe); the trainer polls the request at step
// boundaries and the group agrees on it (dist/agreement.hpp: stop_agreed), checkpoints the stage
// and unwinds with StopRequested; `passlab run` then exits exit_code::stopped (75). A rank that
// is told by another rank (dist's stop relay) records the request without a signal.
//
// A second signal at least kSecondSignalAfter seconds after the first ends the process at once
// with exit_code::stopped: checkpoints are written to a temporary name and renamed, so the last
// one is kept. Signals closer together count as one request, because one stop often arrives
// twice (Slurm signals both the batch script, which forwards SIGUSR1, and the tasks).
#include <stdexcept>
#include <string>

namespace passlab {

// Thrown by the trainer at a step boundary on every rank of a group alike, once the group agreed
// on a stop and the stage's checkpoint is written. Not an Error (nothing failed): the sweep
// records nothing for the task, and `passlab run` exits exit_code::stopped.
struct StopRequested : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace passlab

namespace passlab::stop {

constexpr double kSecondSignalAfter = 2.0;

// Installs the handlers (idempotent). `passlab run` calls it before MPI starts.
void install_handlers();
// 0 when no stop was requested; else the signal that asked first (received or relayed).
int requested();
// Records a stop requested elsewhere (another rank received `signal`); the first request wins.
void request(int signal, int from_rank);
// The rank whose signal the request came from (-1: this process's own signal or none).
int requested_by();
// "SIGTERM", "SIGUSR1", ... ("signal N" for others).
std::string signal_name(int signal);
// What the request is, for logs and errors: "SIGTERM", or "SIGTERM (received by rank 1)".
std::string describe();
// Forgets any request and resets the signal count (tests).
void reset_for_tests();

}  // namespace passlab::stop
