#include "passlab/dist/reducer.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function_hook.h>
// torch::autograd::Node is declared in node.h in newer LibTorch (2.15, the venv's) and in
// function.h in older ones (2.11, the GPU machine's PyTorch); function.h includes node.h where
// both exist.
#if __has_include(<torch/csrc/autograd/node.h>)
#include <torch/csrc/autograd/node.h>
#else
#include <torch/csrc/autograd/function.h>
#endif
#include <torch/csrc/autograd/variable.h>

#include <map>
#include <utility>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"

namespace passlab::dist {

std::vector<BucketPlan> plan_buckets(const std::vector<at::Tensor>& params, int64_t bucket_bytes,
                                     int64_t first_bucket_bytes) {
  std::vector<BucketPlan> plan;
  std::vector<int64_t> plan_bytes;
  std::map<std::pair<int, std::string>, size_t> open;  // (dtype, device) -> open bucket
  for (size_t k = params.size(); k-- > 0;) {
    const at::Tensor& p = params[k];
    auto key = std::make_pair(int(p.scalar_type()), p.device().str());
    int64_t bytes = p.numel() * int64_t(p.element_size());
    auto it = open.find(key);
    if (it != open.end()) {
      size_t b = it->second;
      int64_t cap = b == 0 ? first_bucket_bytes : bucket_bytes;
      if (!plan[b].params.empty() && plan_bytes[b] + bytes > cap) open.erase(it), it = open.end();
    }
    if (it == open.end()) {
      BucketPlan nb;
      nb.dtype = p.scalar_type();
      plan.push_back(nb);
      plan_bytes.push_back(0);
      it = open.emplace(key, plan.size() - 1).first;
    }
    BucketPlan& b = plan[it->second];
    b.params.push_back(k);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
    plan_bytes[it->second] += bytes;
  }
  return plan;
}

struct GradientReducer::Hook : torch::autograd::FunctionPostHook {
  Hook(GradientReducer* r, size_t i) : reducer(r), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    reducer->on_grad_ready(index);
    return outputs;
  }
  GradientReducer* reducer;
  size_t index;
};

GradientReducer::GradientReducer(Communicator& comm, std::vector<at::Tensor> params, const ReducerOptions& opt)
    : comm_(comm), params_(std::move(params)) {
  for (auto& p : params_)
    PASSLAB_CHECK(p.defined() && p.requires_grad(), InternalError, "GradientReducer: parameters must require grad");
  auto mib = [](double m) { return std::max<int64_t>(1, int64_t(m * 1024.0 * 1024.0)); };
  plan_ = plan_buckets(params_, mib(opt.bucket_mib), mib(opt.first_bucket_mib));

  // Every rank must reduce the same buckets in the same order: compare a digest of the plan.
  std::vector<int64_t> digest_in;
  for (auto& b : plan_) {
    digest_in.push_back(int64_t(b.dtype));
    digest_in.push_back(b.numel);
    for (size_t k : b.params) digest_in.push_back(params_[k].numel());
  }
  int64_t digest = int64_t(hash64(digest_in.data(), digest_in.size() * sizeof(int64_t)) >> 1);
  auto all = comm_.allgather(digest);
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r] != digest)
      throw DistError("GradientReducer: rank " + std::to_string(r) +
                      " has a different parameter list (shapes/dtypes) than this rank; every rank of a group must "
                      "train the same parameters");

  views_.resize(params_.size());
  bucket_of_.resize(params_.size());
  for (size_t b = 0; b < plan_.size(); ++b) {
    const auto& bp = plan_[b];
    const at::Tensor& first = params_[bp.params.front()];
    buffers_.push_back(at::zeros({bp.numel}, first.options().requires_grad(false)));
    for (size_t j = 0; j < bp.params.size(); ++j) {
      size_t k = bp.params[j];
      views_[k] = buffers_[b].narrow(0, bp.offsets[j], params_[k].numel()).view(params_[k].sizes());
      bucket_of_[k] = b;
      at::Tensor& g = params_[k].mutable_grad();
      if (g.defined()) views_[k].copy_(g);
      g = views_[k];
    }
  }
  pending_.assign(plan_.size(), 0);
  param_ready_.assign(params_.size(), 0);

  average_ = opt.average;
  overlap_ = opt.overlap == ReducerOptions::Overlap::on ||
             (opt.overlap == ReducerOptions::Overlap::auto_ && std::string(comm_.backend()) == "nccl");
  if (overlap_) {
    for (size_t k = 0; k < params_.size(); ++k) {
      auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
      PASSLAB_CHECK(acc, InternalError, "GradientReducer: parameter " + std::to_string(k) + " is not a leaf");
      HookHandle h;
      h.node = acc.get();
      h.key = acc->add_post_hook(std::make_unique<Hook>(this, k));
      h.keep_alive = std::shared_ptr<void>(nullptr, [acc](void*) mutable { acc = {}; });
      hooks_.push_back(std::move(h));
    }
  }
  PL_DEBUG("reducer: {} parameters, {} buckets, {:.1f} MiB, backend {}, overlap {}", params_.size(), plan_.size(),
           double(bytes()) / (1024.0 * 1024.0), comm_.backend(), overlap_);
}

GradientReducer::~GradientReducer() {
  for (auto& h : hooks_) static_cast<torch::autograd::Node*>(h.node)->del_post_hook(h.key);
}

int64_t GradientReducer::bytes() const {
  int64_t n = 0;
  for (auto& b : buffers_) n += b.numel() * int64_t(b.element_size());
  return n;
}

void GradientReducer::prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t b = 0; b < plan_.size(); ++b) pending_[b] = int(plan_[b].params.size());
  std::fill(param_ready_.begin(), param_ready_.end(), 0);
  next_launch_ = 0;
  launched_in_backward_ = 0;
  armed_ = overlap_;
}

void GradientReducer::on_grad_ready(size_t k) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!armed_ || param_ready_[k]) return;
  param_ready_[k] = 1;
  --pending_[bucket_of_[k]];
  size_t before = next_launch_;
  launch_ready_locked();
  launched_in_backward_ += int64_t(next_launch_ - before);
}

void GradientReducer::launch_ready_locked() {
  while (next_launch_ < plan_.size() && pending_[next_launch_] == 0) launch(next_launch_++);
}

void GradientReducer::gather_into_bucket(size_t b) {
  for (size_t k : plan_[b].params) {
    at::Tensor& g = params_[k].mutable_grad();
    if (!g.defined()) {
      views_[k].zero_();  // unused this step: contributes zeros
      g = views_[k];
    } else if (g.data_ptr() != views_[k].data_ptr()) {
      views_[k].copy_(g);  // someone replaced the gradient: copy it in, re-install the view
      g = views_[k];
    }
  }
}

void GradientReducer::launch(size_t b) {
  gather_into_bucket(b);
  comm_.allreduce(buffers_[b], average_ ? ReduceOp::mean : ReduceOp::sum);
}

void GradientReducer::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
    while (next_launch_ < plan_.size()) launch(next_launch_++);
  }
  comm_.wait();
}

void GradientReducer::zero_grad() {
  for (auto& b : buffers_) b.zero_();
  for (size_t k = 0; k < params_.size(); ++k) {
    at::Tensor& g = params_[k].mutable_grad();
    if (!g.defined() || g.data_ptr() != views_[k].data_ptr()) g = views_[k];
  }
}

}  // namespace passlab::dist
