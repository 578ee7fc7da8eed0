#pragma once
// Data-parallel gradient all-reduce in fused buckets (DESIGN.md §3), DDP-style:
//  - parameters are packed into buckets in reverse registration order (the order in which
//    backward produces their gradients), the first bucket small (first_bucket_mib, so the first
//    all-reduce starts early), the rest up to bucket_mib; a bucket holds one dtype and device;
//  - each parameter's .grad is a view into its bucket's flat buffer, so backward accumulates
//    straight into the buffer and no copy is needed (a gradient replaced by someone else is
//    copied in and the view re-installed);
//  - buckets are reduced in index order on every rank (identical plans on every rank, checked
//    at construction), as mean over ranks;
//  - with overlap on, autograd post-accumulate hooks launch each bucket as soon as all its
//    gradients are ready and all earlier buckets have launched (overlap with backward; used with
//    asynchronous backends such as NCCL).
// Usage per step:  reducer.prepare(); loss.backward(); reducer.finish();
#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "passlab/dist/communicator.hpp"

namespace passlab::dist {

struct ReducerOptions {
  double bucket_mib = 25.0;
  double first_bucket_mib = 1.0;
  enum class Overlap { auto_, on, off } overlap = Overlap::auto_;  // auto: on for NCCL
  // true: gradients end as the mean over ranks. false: as the sum — for callers that scale the
  // loss by 1/ranks before backward (the Trainer does), which saves the MPI backend a pass over
  // every bucket (NCCL averages for free with ncclAvg either way).
  bool average = true;
};

struct BucketPlan {
  std::vector<size_t> params;     // indices into the reducer's parameter list, in bucket order
  std::vector<int64_t> offsets;   // element offset of each parameter in the flat buffer
  int64_t numel = 0;
  at::ScalarType dtype = at::kFloat;
};

// Pure planning (testable without communication): packs tensors of the given sizes (elements)
// and element sizes in reverse order into buckets.
std::vector<BucketPlan> plan_buckets(const std::vector<at::Tensor>& params, int64_t bucket_bytes,
                                     int64_t first_bucket_bytes);

class GradientReducer {
 public:
  GradientReducer(Communicator& comm, std::vector<at::Tensor> params, const ReducerOptions& opt = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before backward: arms the hooks for this step.
  void prepare();
  // After backward: launches the buckets not launched yet (in order), waits for all, and
  // leaves the mean (or sum, see ReducerOptions::average) gradient in every parameter's .grad. A parameter without a gradient this
  // step contributes zeros (every rank must take part in every bucket).
  void finish();
  // prepare() + finish() for callers that do not overlap (all gradients already computed).
  void reduce() {
    prepare();
    finish();
  }
  // Zeroes all gradients in place (keeps the bucket views).
  void zero_grad();

  const std::vector<BucketPlan>& plan() const { return plan_; }
  const std::vector<at::Tensor>& params() const { return params_; }
  bool overlap() const { return overlap_; }
  int64_t bytes() const;
  // Buckets launched from hooks during the last backward (diagnostics and tests).
  int64_t launched_in_backward() const { return launched_in_backward_; }

 private:
  struct Hook;
  void on_grad_ready(size_t param_index);
  void launch_ready_locked();
  void launch(size_t bucket);
  void gather_into_bucket(size_t bucket);

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  std::vector<BucketPlan> plan_;
  std::vector<at::Tensor> buffers_;       // flat buffer per bucket
  std::vector<at::Tensor> views_;         // per parameter: its view in the buffer
  std::vector<size_t> bucket_of_;         // per parameter: its bucket
  std::vector<int> pending_;              // per bucket: parameters not ready yet this step
  std::vector<char> param_ready_;         // per parameter, this step
  size_t next_launch_ = 0;
  bool armed_ = false;
  bool overlap_ = false;
  bool average_ = true;
  int64_t launched_in_backward_ = 0;
  std::mutex mu_;
  struct HookHandle {
    std::shared_ptr<void> keep_alive;  // owns the gradient accumulator node
    void* node = nullptr;              // torch::autograd::Node*
    uintptr_t key = 0;
  };
  std::vector<HookHandle> hooks_;
};

}  // namespace passlab::dist
