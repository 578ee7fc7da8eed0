#include "passlab/dist/agreement.hpp"

#include <exception>
#include <vector>

#include "passlab/core/rethrow.hpp"
#include "passlab/core/stop.hpp"
#include "passlab/dist/communicator.hpp"

namespace passlab::dist {

bool stop_agreed(Communicator& comm) {
  std::vector<int64_t> any = {stop::requested() != 0 ? 1 : 0};
  if (comm.size() > 1) comm.allreduce_values(any, ReduceOp::max);
  return any[0] != 0;
}

void on_leader(Communicator& comm, const std::function<void()>& action) {
  if (comm.size() == 1) {
    action();
    return;
  }
  std::vector<int64_t> failed_kind = {-1};
  std::string message;
  if (comm.rank() == 0) {
    try {
      action();
    } catch (const Error& e) {
      failed_kind[0] = int64_t(e.kind());
      message = e.what();
    } catch (const std::exception& e) {
      failed_kind[0] = int64_t(ErrorKind::Internal);
      message = e.what();
    }
  }
  comm.wait();
  comm.vote_broadcast(failed_kind, 0, comm.timeout_s());
  if (failed_kind[0] < 0) return;
  comm.broadcast_bytes(message, 0);
  throw_as(ErrorKind(failed_kind[0]), comm.rank() == 0 ? message : "on group rank 0: " + message);
}

}  // namespace passlab::dist
