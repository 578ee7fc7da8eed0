#include "passlab/dist/stop_relay.hpp"

#include <chrono>

#include "passlab/core/exit_codes.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/core/stop.hpp"

namespace passlab::dist {
namespace {
constexpr int kTag = 75;  // the only tag on the relay's own communicator
}

StopRelay::StopRelay(MPI_Comm world) {
  MPI_CHECK(MPI_Comm_size(world, &size_));
  int level = MPI_THREAD_SINGLE;
  MPI_CHECK(MPI_Query_thread(&level));
  use_mpi_ = size_ > 1 && level == MPI_THREAD_MULTIPLE;
  if (use_mpi_) {
    comm_ = MpiComm::dup(world);
    rank_ = comm_.rank();
  }
  if (size_ > 1 && !use_mpi_)
    PL_WARN("MPI is not thread-safe here (thread level {}): a stop signal reaches only the run group of the rank "
            "that receives it",
            level);
  thread_ = std::thread([this] { run(); });
}

StopRelay::~StopRelay() {
  quit_.store(true);
  if (thread_.joinable()) thread_.join();
  if (use_mpi_) finish();
}

void StopRelay::run() {
  bool announced = false;
  for (;;) {
    // Read before the check below: a stop that ends the process within one sleep (a fast
    // checkpoint) sets quit_ after the signal, and is still announced by this last pass.
    const bool last_pass = quit_.load();
    if (use_mpi_) receive();
    const int sig = stop::requested();
    if (sig != 0 && !announced) {
      announced = true;
      PL_WARN("stop requested: {}; the run group checkpoints or finishes its current stage, then passlab exits {} "
              "(relaunch to continue; a second signal {:.0f} s or more later ends it at once)",
              stop::requested_by() < 0 ? stop::signal_name(sig) + " received" : stop::describe(), exit_code::stopped,
              stop::kSecondSignalAfter);
      if (auto l = spdlog::default_logger()) l->flush();
      if (use_mpi_ && stop::requested_by() < 0) send_to_all(sig);
    }
    if (last_pass) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void StopRelay::send_to_all(int signal) {
  sent_.assign(size_t(size_), signal);
  requests_.assign(size_t(size_), MPI_REQUEST_NULL);
  for (int r = 0; r < size_; ++r)
    if (r != rank_) MPI_CHECK(MPI_Isend(&sent_[size_t(r)], 1, MPI_INT, r, kTag, comm_.get(), &requests_[size_t(r)]));
}

void StopRelay::receive() {
  for (;;) {
    int flag = 0;
    MPI_Status status;
    MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm_.get(), &flag, &status));
    if (!flag) return;
    int sig = 0;
    MPI_CHECK(MPI_Recv(&sig, 1, MPI_INT, status.MPI_SOURCE, kTag, comm_.get(), MPI_STATUS_IGNORE));
    stop::request(sig, status.MPI_SOURCE);
  }
}

void StopRelay::finish() {
  // A destructor reports nothing: a failure here only leaves a message unread in a job that ends.
  try {
    for (auto& req : requests_) {
      if (req == MPI_REQUEST_NULL) continue;
      int done = 0;
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (!done) {  // not delivered (a peer that ended first): cancel it
        MPI_Cancel(&req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
      }
    }
    receive();
  } catch (const std::exception& e) {
    PL_DEBUG("stop relay: {}", e.what());
  }
}

}  // namespace passlab::dist
