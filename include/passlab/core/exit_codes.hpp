#pragma once
// The exit statuses of the passlab binary, in one place: the CLI returns them, the distributed
// runtime passes them to MPI_Abort, and README ("Exit codes") lists them.
namespace passlab::exit_code {

constexpr int ok = 0;
constexpr int failed = 1;           // a runtime or I/O failure; for `run`, a task failed for good
constexpr int bad_config = 2;       // bad command line or configuration
constexpr int not_implemented = 3;  // a capability missing from this build
// A collective did not complete within dist.timeout_s (a peer is dead or hung): the job was
// aborted. Not a verdict on any task; a relaunch redoes the interrupted ones.
constexpr int timed_out = 4;
// Stopped by a signal (SIGTERM, SIGINT, SIGUSR1, SIGUSR2): the current stage was checkpointed
// or finished; relaunch to continue. EX_TEMPFAIL of <sysexits.h>, what requeueing schedulers
// expect.
constexpr int stopped = 75;

}  // namespace passlab::exit_code
