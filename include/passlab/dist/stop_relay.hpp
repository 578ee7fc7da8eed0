#pragma once
// Carries a stop request (core/stop.hpp) from the rank that received the signal to every rank of
// the job, whatever task its run group is running, so one SIGTERM to one rank stops the job as
// a whole. A background thread looks at this rank's request every 50 ms, logs it once (every
// rank, at warn), sends it once to every other rank over its own duplicate of the world
// (point-to-point, so no rank has to be anywhere in particular to receive it) and records the
// requests that arrive. The group then agrees at its next step boundary
// (dist/agreement.hpp: stop_agreed). Made by the Runtime that initialised MPI (the passlab
// binary, also as a singleton) and stopped before it finalises MPI.
#include <mpi.h>

#include <atomic>
#include <thread>
#include <vector>

#include "passlab/dist/mpi_handles.hpp"

namespace passlab::dist {

class StopRelay {
 public:
  // A world of one process, or an MPI that is not thread-safe (thread level below MULTIPLE): it
  // only logs (each run group then stops on its own signal).
  explicit StopRelay(MPI_Comm world);
  ~StopRelay();
  StopRelay(const StopRelay&) = delete;
  StopRelay& operator=(const StopRelay&) = delete;

 private:
  void run();
  void send_to_all(int signal);
  void receive();  // records every request that arrived (MPI_Iprobe, non-blocking)
  void finish();   // completes or cancels the sends, drains what arrived

  MpiComm comm_;
  int rank_ = 0, size_ = 1;
  bool use_mpi_ = false;
  std::vector<int> sent_;  // the signal number sent, one buffer for every send
  std::vector<MPI_Request> requests_;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace passlab::dist
