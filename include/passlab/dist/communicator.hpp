#pragma once
// Collective communication inside one run group (Horovod `common/` shape: one small abstract
// interface, backends picked from an ordered list).
//  - "nccl": device (CUDA) tensors; NCCL communicator made from a unique id created on the group
//    leader and broadcast over MPI; operations are asynchronous on a communication stream and
//    wait() polls completion and ncclCommGetAsyncError with the runtime's timeout.
//  - "mpi": host tensors (a device tensor is staged through host memory); synchronous.
// Small host values (counts, hashes, flags, bytes, keep plans) always go over MPI (the control
// plane) whatever the backend, with exact integer or double arithmetic. Code outside src/dist and
// src/core never calls MPI itself (scripts/check_layering.py): it coordinates through these.
#include <ATen/core/Tensor.h>
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "passlab/dist/mpi_handles.hpp"

namespace passlab::dist {

class Runtime;

enum class ReduceOp { sum, mean, max, min };
const char* to_string(ReduceOp op);

class Communicator {
 public:
  virtual ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual const char* backend() const = 0;  // "mpi" | "nccl"
  // Device whose tensors this communicator reduces natively.
  virtual c10::Device device() const = 0;
  // In-place all-reduce of a contiguous tensor. `mean` divides by size() (floating dtypes only).
  // May be asynchronous (NCCL): the result is ordered before later work on the current stream,
  // and wait() blocks until every operation issued so far has completed.
  virtual void allreduce(at::Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  // In-place broadcast from group rank `root`.
  virtual void broadcast(at::Tensor& t, int root = 0) = 0;
  // Blocks until all operations issued by this rank completed; throws DistError on an
  // asynchronous failure or when the runtime's timeout passes.
  virtual void wait() {}
  // Every rank of the group reaches it (after wait()).
  virtual void barrier();

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm control() const { return control_.get(); }  // the group's MPI communicator (a dup)
  double timeout_s() const { return timeout_s_; }

  // Control plane (MPI, host values, exact): all-gather of one value per rank, all-reduce of a
  // few values, broadcast of bytes.
  std::vector<int64_t> allgather(int64_t v);
  std::vector<double> allgather(double v);
  void allreduce_values(std::vector<int64_t>& values, ReduceOp op = ReduceOp::sum);
  void allreduce_values(std::vector<double>& values, ReduceOp op = ReduceOp::sum);
  void broadcast_bytes(std::string& bytes, int root = 0);
  // Every rank's bytes (any length, may differ per rank) to `root`: on the root one string per
  // group rank, in rank order; empty on the other ranks.
  std::vector<std::string> gather_bytes(const std::string& mine, int root = 0);
  // Every rank's bytes to every rank, in rank order.
  std::vector<std::string> allgather_bytes(const std::string& mine);
  // A keep plan (per layer, the indices of the kept channels) from `root` to every rank, so that
  // the ranks of a group slice their models alike.
  using KeepPlan = std::vector<std::vector<int64_t>>;
  void broadcast_plan(KeepPlan& plan, int root = 0);
  // All-reduce of a host tensor over the control plane (any backend); used for evaluation.
  void allreduce_host(at::Tensor& t, ReduceOp op = ReduceOp::sum);

  // Votes: control-plane collectives that a rank may wait in for long (while other ranks or
  // groups still work) or that must not hang when a peer is gone. They wait by testing a
  // non-blocking MPI request and sleeping in between (a blocking MPI call spins and takes the
  // cores from the ranks that work), outside the collective watchdog. When `deadline_s` (> 0)
  // passes first they throw DistError; the abandoned collective cannot be cancelled, so the
  // communicator is then unusable (every later control-plane call throws DistError).
  // deadline_s <= 0: no deadline.
  //
  // Every rank says yes or no; every rank learns which group ranks said yes (ascending).
  std::vector<int> vote(bool yes, double deadline_s = 0);
  // Every rank of the group reaches it.
  void vote_barrier(double deadline_s = 0);
  // `values` of `root` to every rank; every rank passes a vector of the same size.
  void vote_broadcast(std::vector<int64_t>& values, int root = 0, double deadline_s = 0);
  // Whether a vote timed out (this communicator is then unusable).
  bool abandoned() const { return abandoned_ != nullptr; }

 protected:
  Communicator(MPI_Comm group, double timeout_s);
  MpiComm control_;
  int rank_ = 0, size_ = 1;
  double timeout_s_ = 600.0;

 private:
  struct Vote;  // a non-blocking collective and the buffers it works on
  // Waits for `v`'s request; on timeout keeps `v` in abandoned_ and throws DistError.
  void await_vote(std::unique_ptr<Vote>& v, const char* what, double deadline_s);
  void require_usable(const char* what) const;
  std::unique_ptr<Vote> abandoned_;  // a vote that timed out: MPI may still write its buffers
  std::string abandoned_what_;
};

// Backends in order of preference for "auto". `available` says whether a backend can serve the
// runtime's device in this build and on this machine.
struct BackendInfo {
  std::string name;
  bool compiled = false;
  bool available = false;
  std::string why;  // why it is not available
};
std::vector<BackendInfo> backends(const Runtime& rt);

// Whether a backend is available on every rank of `group`. Collective over `group`: every rank
// must call it, and every rank gets the same decision, so that no rank waits in a set-up that
// another rank skipped. Empty when every rank can; otherwise why not: this rank's own `why` where
// it cannot, and on every rank the list of ranks that cannot.
std::string unavailable_in_group(bool available, const std::string& why, MPI_Comm group);

// Creates the communicator of `group` (default: the runtime's run group). `backend` is
// auto | nccl | mpi; asking for one that is not available is a ConfigError saying why. NCCL needs
// a GPU of its own per rank of the group: where two ranks share one (more ranks on a node than
// GPUs), auto takes MPI with a warning and nccl is a ConfigError. The ranks of a group always agree
// on the backend: where some rank's device is not a GPU, they all take MPI (or all fail).
std::unique_ptr<Communicator> make_communicator(const std::string& backend, const Runtime& rt);
std::unique_ptr<Communicator> make_communicator(const std::string& backend, const Runtime& rt, MPI_Comm group);

// Backend constructors (for tests and benchmarks).
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm group, double timeout_s = 600.0);
#ifdef PASSLAB_WITH_CUDA
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int cuda_device, double timeout_s = 600.0);
#endif

// Collective watchdog: while a scope is alive on any thread, a background thread checks that it
// ends within the runtime's timeout, and otherwise logs what hung and MPI_Aborts the job.
class CollectiveScope {
 public:
  explicit CollectiveScope(const char* what);
  ~CollectiveScope();
  CollectiveScope(const CollectiveScope&) = delete;
  CollectiveScope& operator=(const CollectiveScope&) = delete;
};
// Started by the Runtime (timeout_s > 0, world > 1); stopped by its destructor. Returns false
// when one is already running (or timeout_s <= 0). `peers` ("rank 1 on hostB, ...") is named in
// its abort message: the ranks this one may be waiting for.
bool start_watchdog(double timeout_s, const std::string& peers = "");
void stop_watchdog();

}  // namespace passlab::dist
