// Communicator base (control plane over MPI), backend registry, and the MPI backend.
#include "passlab/dist/communicator.hpp"

#include <ATen/ATen.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/dist/agreement.hpp"
#include "passlab/dist/runtime.hpp"
#ifdef PASSLAB_WITH_CUDA
#include "passlab/cuda/device.hpp"
#endif

namespace passlab::dist {

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "?";
}

namespace {

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::mean: return MPI_SUM;
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
  }
  return MPI_SUM;
}

// MPI datatype of a dtype MPI reduces natively; MPI_DATATYPE_NULL otherwise.
MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kChar: return MPI_INT8_T;
    case at::kShort: return MPI_INT16_T;
    default: return MPI_DATATYPE_NULL;
  }
}

// In-place all-reduce of a contiguous CPU tensor of an MPI-native dtype, in chunks of < 2^31
// elements (MPI counts are int).
void mpi_allreduce_native(void* data, int64_t numel, at::ScalarType dtype, MPI_Op op, MPI_Comm comm) {
  MPI_Datatype type = mpi_type(dtype);
  const int64_t chunk = int64_t(1) << 30;
  const size_t esize = c10::elementSize(dtype);
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < numel; done += chunk) {
    int n = static_cast<int>(std::min(chunk, numel - done));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + done * esize, n, type, op, comm));
  }
}

void mpi_bcast_bytes(void* data, int64_t bytes, int root, MPI_Comm comm) {
  const int64_t chunk = int64_t(1) << 30;
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < bytes; done += chunk) {
    int n = static_cast<int>(std::min(chunk, bytes - done));
    MPI_CHECK(MPI_Bcast(p + done, n, MPI_BYTE, root, comm));
  }
}

// All-reduce of any host-reachable tensor over MPI: stages device / non-contiguous tensors and
// dtypes MPI cannot reduce (bf16, fp16 are summed in fp32) through a contiguous host buffer.
void host_allreduce(at::Tensor& t, ReduceOp op, MPI_Comm comm, int size) {
  PASSLAB_CHECK(t.defined(), InternalError, "allreduce of an undefined tensor");
  PASSLAB_CHECK(t.scalar_type() != at::kBool, ConfigError, "allreduce of a bool tensor");
  if (op == ReduceOp::mean)
    PASSLAB_CHECK(at::isFloatingType(t.scalar_type()), ConfigError,
                  std::string("mean all-reduce of an integer tensor (") + c10::toString(t.scalar_type()) + ")");
  // One rank: every reduction is the identity. Returning here also spares a device tensor the
  // round trip through host memory (on a GPU that copy cost a one-rank Trainer half its speed).
  if (t.numel() == 0 || size == 1) return;
  bool native = mpi_type(t.scalar_type()) != MPI_DATATYPE_NULL;
  bool direct = native && t.device().is_cpu() && t.is_contiguous();
  at::Tensor work = direct ? t : t.to(at::kCPU, native ? t.scalar_type() : at::kFloat).contiguous();
  mpi_allreduce_native(work.data_ptr(), work.numel(), work.scalar_type(), mpi_op(op), comm);
  if (op == ReduceOp::mean) work.div_(size);
  if (!direct) t.copy_(work);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm group, double timeout_s) : Communicator(group, timeout_s) {}
  const char* backend() const override { return "mpi"; }
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  void allreduce(at::Tensor& t, ReduceOp op) override {
    CollectiveScope scope("mpi allreduce");
    host_allreduce(t, op, control(), size());
  }
  void broadcast(at::Tensor& t, int root) override {
    CollectiveScope scope("mpi broadcast");
    PASSLAB_CHECK(t.defined(), InternalError, "broadcast of an undefined tensor");
    if (t.numel() == 0) return;
    bool direct = t.device().is_cpu() && t.is_contiguous();
    at::Tensor work = direct ? t : t.to(at::kCPU).contiguous();
    mpi_bcast_bytes(work.data_ptr(), int64_t(work.numel() * work.element_size()), root, control());
    if (!direct) t.copy_(work);
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Base: control plane

struct Communicator::Vote {
  MPI_Request request = MPI_REQUEST_NULL;
  std::vector<int64_t> send, recv;  // owned here: MPI writes them until the request completes
};

Communicator::Communicator(MPI_Comm group, double timeout_s) : control_(MpiComm::dup(group)), timeout_s_(timeout_s) {
  rank_ = control_.rank();
  size_ = control_.size();
}

void Communicator::require_usable(const char* what) const {
  if (abandoned_)
    throw DistError(std::string(what) + " on a communicator whose vote '" + abandoned_what_ +
                    "' timed out (its collective is still pending; the group cannot be trusted to agree)");
}

void Communicator::barrier() {
  wait();
  require_usable("barrier");
  CollectiveScope scope("barrier");
  MPI_CHECK(MPI_Barrier(control()));
}

std::vector<int64_t> Communicator::allgather(int64_t v) {
  require_usable("allgather");
  CollectiveScope scope("allgather");
  std::vector<int64_t> out(size_);
  MPI_CHECK(MPI_Allgather(&v, 1, MPI_INT64_T, out.data(), 1, MPI_INT64_T, control()));
  return out;
}

std::vector<double> Communicator::allgather(double v) {
  require_usable("allgather");
  CollectiveScope scope("allgather");
  std::vector<double> out(size_);
  MPI_CHECK(MPI_Allgather(&v, 1, MPI_DOUBLE, out.data(), 1, MPI_DOUBLE, control()));
  return out;
}

void Communicator::allreduce_values(std::vector<int64_t>& values, ReduceOp op) {
  PASSLAB_CHECK(op != ReduceOp::mean, ConfigError, "mean all-reduce of integer values");
  if (values.empty()) return;
  require_usable("allreduce_values");
  CollectiveScope scope("allreduce_values");
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_INT64_T, mpi_op(op), control()));
}

void Communicator::allreduce_values(std::vector<double>& values, ReduceOp op) {
  if (values.empty()) return;
  require_usable("allreduce_values");
  CollectiveScope scope("allreduce_values");
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_DOUBLE, mpi_op(op), control()));
  if (op == ReduceOp::mean)
    for (auto& v : values) v /= size_;
}

void Communicator::broadcast_bytes(std::string& bytes, int root) {
  require_usable("broadcast_bytes");
  CollectiveScope scope("broadcast_bytes");
  int64_t n = int64_t(bytes.size());
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT64_T, root, control()));
  bytes.resize(size_t(n));
  if (n > 0) mpi_bcast_bytes(bytes.data(), n, root, control());
}

namespace {
// MPI's v-collectives count and place in int: the displacements of `sizes` laid end to end.
std::vector<int> displacements(const std::vector<int64_t>& sizes, const char* what) {
  std::vector<int> displs(sizes.size(), 0);
  int64_t at = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    displs[r] = int(at);
    at += sizes[r];
    if (at > INT_MAX)
      throw DistError(std::string(what) + ": " + std::to_string(at) + "+ bytes in all exceed MPI's int counts " +
                      "(the control plane carries small values)");
  }
  return displs;
}

std::vector<std::string> split_parts(const std::vector<char>& all, const std::vector<int64_t>& sizes,
                                     const std::vector<int>& displs) {
  std::vector<std::string> out;
  out.reserve(sizes.size());
  for (size_t r = 0; r < sizes.size(); ++r) out.emplace_back(all.data() + displs[r], size_t(sizes[r]));
  return out;
}

std::vector<int> int_counts(const std::vector<int64_t>& sizes) { return std::vector<int>(sizes.begin(), sizes.end()); }
}  // namespace

std::vector<std::string> Communicator::gather_bytes(const std::string& mine, int root) {
  require_usable("gather_bytes");
  CollectiveScope scope("gather_bytes");
  const int64_t n = int64_t(mine.size());
  PASSLAB_CHECK(n <= INT_MAX, DistError, "gather_bytes of " + std::to_string(n) + " bytes (more than MPI's int count)");
  std::vector<int64_t> sizes(rank_ == root ? size_t(size_) : 0);
  MPI_CHECK(MPI_Gather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, root, control()));
  if (rank_ != root) {
    MPI_CHECK(MPI_Gatherv(mine.data(), int(n), MPI_BYTE, nullptr, nullptr, nullptr, MPI_BYTE, root, control()));
    return {};
  }
  const std::vector<int> displs = displacements(sizes, "gather_bytes"), counts = int_counts(sizes);
  std::vector<char> all(size_t(displs.back() + counts.back()) + 1);  // + 1: never a null buffer
  MPI_CHECK(MPI_Gatherv(mine.data(), int(n), MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, root,
                        control()));
  return split_parts(all, sizes, displs);
}

std::vector<std::string> Communicator::allgather_bytes(const std::string& mine) {
  const std::vector<int64_t> sizes = allgather(int64_t(mine.size()));
  CollectiveScope scope("allgather_bytes");
  const std::vector<int> displs = displacements(sizes, "allgather_bytes"), counts = int_counts(sizes);
  std::vector<char> all(size_t(displs.back() + counts.back()) + 1);
  MPI_CHECK(MPI_Allgatherv(mine.data(), int(mine.size()), MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                           control()));
  return split_parts(all, sizes, displs);
}

void Communicator::broadcast_plan(KeepPlan& plan, int root) {
  // One int64 list: the number of layers, each layer's length, then the indices layer by layer.
  std::vector<int64_t> flat;
  if (rank_ == root) {
    flat.push_back(int64_t(plan.size()));
    for (auto& layer : plan) flat.push_back(int64_t(layer.size()));
    for (auto& layer : plan) flat.insert(flat.end(), layer.begin(), layer.end());
  }
  std::string bytes(reinterpret_cast<const char*>(flat.data()), flat.size() * sizeof(int64_t));
  broadcast_bytes(bytes, root);
  if (rank_ == root) return;
  PASSLAB_CHECK(bytes.size() % sizeof(int64_t) == 0 && !bytes.empty(), InternalError, "broadcast_plan: torn message");
  flat.resize(bytes.size() / sizeof(int64_t));
  std::memcpy(flat.data(), bytes.data(), bytes.size());
  const size_t layers = size_t(flat[0]);
  PASSLAB_CHECK(flat[0] >= 0 && flat.size() >= 1 + layers, InternalError, "broadcast_plan: bad layer count");
  plan.assign(layers, {});
  size_t at = 1 + layers;
  for (size_t l = 0; l < layers; ++l) {
    const size_t len = size_t(flat[1 + l]);
    PASSLAB_CHECK(flat[1 + l] >= 0 && at + len <= flat.size(), InternalError, "broadcast_plan: bad layer length");
    plan[l].assign(flat.begin() + std::ptrdiff_t(at), flat.begin() + std::ptrdiff_t(at + len));
    at += len;
  }
  PASSLAB_CHECK(at == flat.size(), InternalError, "broadcast_plan: trailing values");
}

void Communicator::allreduce_host(at::Tensor& t, ReduceOp op) {
  require_usable("allreduce_host");
  CollectiveScope scope("allreduce_host");
  host_allreduce(t, op, control(), size_);
}

// ---------------------------------------------------------------------------------------------
// Votes

Communicator::~Communicator() {
  if (!abandoned_) return;
  // A vote that timed out may still be written by MPI: free its buffers only once its request
  // is complete, and otherwise leave them (a few bytes, in a job that is ending anyway).
  int finalized = 0, done = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized &&
      MPI_Test(&abandoned_->request, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done)
    return;
  (void)abandoned_.release();
}

void Communicator::await_vote(std::unique_ptr<Vote>& v, const char* what, double deadline_s) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  int sleep_us = 100;
  for (;;) {
    int done = 0;
    MPI_CHECK(MPI_Test(&v->request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    if (deadline_s > 0 && std::chrono::duration<double>(Clock::now() - t0).count() > deadline_s) break;
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min(sleep_us * 2, 50000);
  }
  abandoned_ = std::move(v);
  abandoned_what_ = what;
  throw TimedOut(std::string("vote '") + what + "' did not complete within " + std::to_string(deadline_s) +
                 " s on group rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                 " (a peer is dead, hung, or went another way)");
}

std::vector<int> Communicator::vote(bool yes, double deadline_s) {
  require_usable("vote");
  auto v = std::make_unique<Vote>();
  v->send = {yes ? 1 : 0};
  v->recv.assign(size_t(size_), 0);
  MPI_CHECK(MPI_Iallgather(v->send.data(), 1, MPI_INT64_T, v->recv.data(), 1, MPI_INT64_T, control(), &v->request));
  await_vote(v, "vote", deadline_s);
  std::vector<int> ranks;
  for (int r = 0; r < size_; ++r)
    if (v->recv[size_t(r)]) ranks.push_back(r);
  return ranks;
}

void Communicator::vote_barrier(double deadline_s) {
  wait();
  require_usable("vote_barrier");
  auto v = std::make_unique<Vote>();
  MPI_CHECK(MPI_Ibarrier(control(), &v->request));
  await_vote(v, "barrier", deadline_s);
}

void Communicator::vote_broadcast(std::vector<int64_t>& values, int root, double deadline_s) {
  require_usable("vote_broadcast");
  PASSLAB_CHECK(values.size() <= size_t(INT_MAX), InternalError, "vote_broadcast of too many values");
  auto v = std::make_unique<Vote>();
  v->recv = values;
  MPI_CHECK(MPI_Ibcast(v->recv.data(), int(v->recv.size()), MPI_INT64_T, root, control(), &v->request));
  await_vote(v, "broadcast", deadline_s);
  values = v->recv;
}

// ---------------------------------------------------------------------------------------------
// Backends

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm group, double timeout_s) {
  return std::make_unique<MpiCommunicator>(group, timeout_s);
}

std::vector<BackendInfo> backends(const Runtime& rt) {
  std::vector<BackendInfo> out;
  BackendInfo nccl{"nccl", false, false, ""};
#ifdef PASSLAB_WITH_CUDA
  nccl.compiled = true;
  nccl.available = rt.device().is_cuda();
  if (!nccl.available) nccl.why = "the runtime's device is " + rt.device().str() + ", not a CUDA GPU";
#else
  nccl.why = "this build has no CUDA/NCCL support";
#endif
  out.push_back(nccl);
  out.push_back(BackendInfo{"mpi", true, true, ""});
  return out;
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, const Runtime& rt) {
  return make_communicator(backend, rt, rt.group());
}

std::string unavailable_in_group(bool available, const std::string& why, MPI_Comm group) {
  int size = 1;
  MPI_CHECK(MPI_Comm_size(group, &size));
  const int mine = available ? 1 : 0;
  std::vector<int> all(static_cast<size_t>(size), 0);
  MPI_CHECK(MPI_Allgather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, group));
  std::string ranks;
  for (int r = 0; r < size; ++r)
    if (!all[static_cast<size_t>(r)]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  if (ranks.empty()) return "";
  const std::string who = size == 1 ? std::string() : "rank(s) " + ranks + " of the run group cannot use it";
  if (available) return who;
  return who.empty() ? why : why + "; " + who;
}

#ifdef PASSLAB_WITH_CUDA
namespace {
// NCCL refuses a communicator with two ranks on one GPU ("Duplicate GPU detected"). Collective
// over `group`: every rank learns the same answer, empty when each rank has a GPU of its own.
std::string shared_gpu(const Runtime& rt, MPI_Comm group) {
  int size = 1;
  MPI_CHECK(MPI_Comm_size(group, &size));
  if (size == 1) return "";
  constexpr int kLen = 320;
  char host[256] = {};
  // Without a host name, ranks on one PCI bus id are taken to share that GPU (the safe answer).
  if (gethostname(host, sizeof host - 1) != 0) {
    PL_WARN("dist: gethostname failed ({}); assuming ranks with the same GPU bus id share it", std::strerror(errno));
    std::strcpy(host, "?");
  }
  std::string me = std::string(host) + " GPU " + cuda::pci_bus_id(rt.device().index());
  std::vector<char> mine(kLen, 0), all(static_cast<size_t>(kLen) * size, 0);
  std::memcpy(mine.data(), me.data(), std::min<size_t>(me.size(), kLen - 1));
  MPI_CHECK(MPI_Allgather(mine.data(), kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, group));
  for (int i = 0; i < size; ++i)
    for (int j = i + 1; j < size; ++j)
      if (std::strncmp(&all[size_t(i) * kLen], &all[size_t(j) * kLen], kLen) == 0)
        return "ranks " + std::to_string(i) + " and " + std::to_string(j) + " of the run group share " +
               std::string(&all[size_t(i) * kLen]) + " (NCCL needs one GPU per rank)";
  return "";
}
}  // namespace
#endif

std::unique_ptr<Communicator> make_communicator(const std::string& backend, const Runtime& rt, MPI_Comm group) {
  if (backend != "auto" && backend != "nccl" && backend != "mpi")
    throw ConfigError("dist.backend must be auto, nccl or mpi, not \"" + backend + "\"");
  for (const auto& b : backends(rt)) {
    if (backend != "auto" && b.name != backend) continue;
#ifdef PASSLAB_WITH_CUDA
    if (b.name == "nccl") {
      // Both probes are collective: every rank of the group gets here (the list is the same on
      // every rank) and leaves with the same answer.
      std::string why = unavailable_in_group(b.available, b.why, group);
      if (why.empty()) why = shared_gpu(rt, group);
      if (!why.empty()) {
        if (backend == "nccl") throw ConfigError("dist.backend = \"nccl\" is not available: " + why);
        if (b.available) PL_WARN("dist: NCCL: {}; using the MPI backend", why);
        continue;
      }
    }
#endif
    if (!b.available) {
      if (backend == "auto") continue;
      throw ConfigError("dist.backend = \"" + backend + "\" is not available: " + b.why);
    }
    if (b.name == "mpi") {
      if (rt.device().is_cuda())
        PL_WARN("dist.backend = mpi with device {}: gradients are staged through host memory", rt.device().str());
      return make_mpi_communicator(group, rt.timeout_s());
    }
#ifdef PASSLAB_WITH_CUDA
    if (b.name == "nccl") return make_nccl_communicator(group, rt.device().index(), rt.timeout_s());
#endif
  }
  throw InternalError("no communication backend available");
}

}  // namespace passlab::dist
