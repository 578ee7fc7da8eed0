#pragma once
// What a run group agrees on besides its data: a stop request, the outcome of a leader-only
// action, and the error a vote raises when a peer does not answer. Built on the Communicator's
// control plane (host values over MPI), for every backend.
#include <functional>
#include <string>

#include "passlab/core/error.hpp"

namespace passlab::dist {

class Communicator;

// A vote that did not complete within its deadline (dist.timeout_s: a peer is dead or hung). A
// distributed error, told apart so that the job ends with exit_code::timed_out.
struct TimedOut : DistError {
  explicit TimedOut(const std::string& w) : DistError(w) {}
};

// Whether any rank of the group has a stop request (core/stop.hpp; a signal to any rank of the
// job reaches every rank through dist/stop_relay.hpp). Every rank calls it at the same point (a
// step boundary) and gets the same answer; one small all-reduce when the group has peers.
bool stop_agreed(Communicator& comm);

// Runs `action` on group rank 0 only and makes its outcome every rank's: when it throws, every
// rank throws an error of the same kind with its message (the path and the OS error of a file
// that could not be written; "on group rank 0: " in front on the others), so no rank waits in a
// later collective for a leader that failed. Every rank returns after the action: it replaces a
// barrier after leader-only writes. The others wait politely, at most dist.timeout_s (TimedOut).
void on_leader(Communicator& comm, const std::function<void()>& action);

}  // namespace passlab::dist
