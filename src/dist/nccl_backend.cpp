// NCCL backend: device tensors, asynchronous collectives on a dedicated communication stream.
// Compiled whenever CUDA/NCCL are found; runs only where a GPU is visible.
#ifdef PASSLAB_WITH_CUDA

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include <chrono>
#include <memory>
#include <thread>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/cuda/cuda_check.hpp"
#include "passlab/dist/communicator.hpp"

namespace passlab::dist {
namespace {

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kByte: return ncclUint8;
    case at::kChar: return ncclInt8;
    default: throw ConfigError(std::string("NCCL cannot reduce dtype ") + c10::toString(t));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::mean: return ncclAvg;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}

// RAII owners of the CUDA and NCCL handles.
struct StreamDeleter {
  void operator()(CUstream_st* s) const { cudaStreamDestroy(s); }
};
struct EventDeleter {
  void operator()(CUevent_st* e) const { cudaEventDestroy(e); }
};
struct NcclDeleter {
  void operator()(ncclComm* c) const { ncclCommDestroy(c); }
};
using StreamPtr = std::unique_ptr<CUstream_st, StreamDeleter>;
using EventPtr = std::unique_ptr<CUevent_st, EventDeleter>;
using NcclPtr = std::unique_ptr<ncclComm, NcclDeleter>;

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm group, int device, double timeout_s) : Communicator(group, timeout_s), device_(device) {
    CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    if (rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    {
      CollectiveScope scope("nccl unique id broadcast");
      MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, control()));
    }
    ncclComm_t comm = nullptr;
    {
      CollectiveScope scope("ncclCommInitRank");
      NCCL_CHECK(ncclCommInitRank(&comm, size(), id, rank()));
    }
    comm_.reset(comm);
    cudaStream_t s = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    stream_.reset(s);
    cudaEvent_t pre = nullptr, post = nullptr;
    CUDA_CHECK(cudaEventCreateWithFlags(&pre, cudaEventDisableTiming));
    pre_.reset(pre);
    CUDA_CHECK(cudaEventCreateWithFlags(&post, cudaEventDisableTiming));
    post_.reset(post);
    int v = 0;
    NCCL_CHECK(ncclGetVersion(&v));
    PL_INFO("nccl {} communicator: {} ranks, device cuda:{}", v, size(), device_);
  }

  ~NcclCommunicator() override {
    if (aborted_) (void)comm_.release();  // ncclCommAbort already freed it
  }

  const char* backend() const override { return "nccl"; }
  c10::Device device() const override { return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device_)); }

  void allreduce(at::Tensor& t, ReduceOp op) override {
    check_tensor(t);
    if (op == ReduceOp::mean && !at::isFloatingType(t.scalar_type()))
      throw ConfigError("mean all-reduce of an integer tensor");
    if (t.numel() == 0) return;
    enqueue_begin();
    NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(t.scalar_type()), nccl_op(op),
                             comm_.get(), stream_.get()));
    enqueue_end();
  }

  void broadcast(at::Tensor& t, int root) override {
    check_tensor(t);
    if (t.numel() == 0) return;
    enqueue_begin();
    NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), size_t(t.numel() * t.element_size()), ncclUint8, root,
                             comm_.get(), stream_.get()));
    enqueue_end();
  }

  // Orders the current stream after the communication and waits on the host, polling NCCL's
  // asynchronous error state; a failure or the timeout aborts the NCCL communicator and throws.
  void wait() override {
    if (!pending_) return;
    CollectiveScope scope("nccl wait");
    auto current = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream();
    CUDA_CHECK(cudaStreamWaitEvent(current, post_.get(), 0));
    auto start = std::chrono::steady_clock::now();
    for (int spin = 0;; ++spin) {
      cudaError_t q = cudaEventQuery(post_.get());
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) CUDA_CHECK(q);
      ncclResult_t async = ncclSuccess;
      NCCL_CHECK(ncclCommGetAsyncError(comm_.get(), &async));
      if (async != ncclSuccess && async != ncclInProgress) fail(std::string("NCCL asynchronous error: ") + ncclGetErrorString(async));
      double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (timeout_s() > 0 && waited > timeout_s())
        fail("NCCL collective did not complete within dist.timeout_s = " + std::to_string(timeout_s()) + " s");
      if (spin > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    pending_ = false;
  }

 private:
  void check_tensor(const at::Tensor& t) const {
    if (!t.defined() || !t.is_cuda() || t.get_device() != device_ || !t.is_contiguous())
      throw InternalError("NCCL backend needs a contiguous tensor on cuda:" + std::to_string(device_) + ", got " +
                          (t.defined() ? t.device().str() : std::string("undefined")));
  }
  // The communication stream starts after the work already queued on the current stream.
  void enqueue_begin() {
    if (aborted_) throw DistError("NCCL communicator was aborted after an earlier failure");
    auto current = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream();
    CUDA_CHECK(cudaEventRecord(pre_.get(), current));
    CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), pre_.get(), 0));
  }
  void enqueue_end() {
    CUDA_CHECK(cudaEventRecord(post_.get(), stream_.get()));
    pending_ = true;
  }
  [[noreturn]] void fail(const std::string& why) {
    ncclCommAbort(comm_.get());
    aborted_ = true;
    throw DistError(why);
  }

  int device_ = 0;
  NcclPtr comm_;
  StreamPtr stream_;
  EventPtr pre_, post_;
  bool pending_ = false;
  bool aborted_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int cuda_device, double timeout_s) {
  return std::make_unique<NcclCommunicator>(group, cuda_device, timeout_s);
}

}  // namespace passlab::dist

#endif  // PASSLAB_WITH_CUDA
