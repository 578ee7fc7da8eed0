#include "passlab/models/ghost_batchnorm.hpp"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/GradMode.h>

#include <functional>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"

namespace passlab::models {

GhostBatchNorm2dImpl::GhostBatchNorm2dImpl(int64_t channels, double eps, double momentum)
    : momentum(momentum), channels_(channels), eps_(eps) {
  PASSLAB_CHECK(channels > 0, InternalError, "GhostBatchNorm2d needs at least one channel");
  weight = register_parameter("weight", at::empty({channels}));
  bias = register_parameter("bias", at::empty({channels}));
  running_mean = register_buffer("running_mean", at::empty({channels}));
  running_var = register_buffer("running_var", at::empty({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
  reset_parameters();
}

void GhostBatchNorm2dImpl::reset_parameters() {
  c10::NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
  reset_running_stats();
}

void GhostBatchNorm2dImpl::reset_running_stats() {
  c10::NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

at::Tensor GhostBatchNorm2dImpl::forward(const at::Tensor& x) {
  PASSLAB_CHECK(x.dim() >= 2 && x.size(1) == channels_, InternalError,
                "GhostBatchNorm2d over " + std::to_string(channels_) + " channels got input with " +
                    (x.dim() >= 2 ? std::to_string(x.size(1)) : std::string("no")) + " channels");
  const bool cudnn = at::globalContext().userEnabledCuDNN();
  const bool batch_stats = is_training() || mode == BatchNormMode::batch_frozen;
  if (!batch_stats)  // torch::nn::BatchNorm2d's eval-mode call, argument for argument
    return at::batch_norm(x, weight, bias, running_mean, running_var, false, momentum.value_or(0.0), eps_, cudnn);
  const int64_t n = x.size(0), g = group > 0 ? group : n;
  PASSLAB_CHECK(n > 0 && n % g == 0, InternalError,
                "GhostBatchNorm2d: a batch of " + std::to_string(n) + " samples is not whole groups of " +
                    std::to_string(g) + " (the loader gives each rank whole ghost groups)");
  const int64_t k = n / g, c = channels_;
  // Fold the groups into channels: [k*g, C, ...] -> [g, k*C, L], where channel j*C + c is channel
  // c of group j. One batch_norm call then normalises every group by its own statistics (the
  // same kernel as BatchNorm2d; one group is BatchNorm2d's own call on the unfolded input).
  at::Tensor folded = k == 1 ? x : x.reshape({k, g, c, -1}).transpose(0, 1).reshape({g, k * c, -1});
  const bool update = is_training() && mode == BatchNormMode::standard;
  // With momentum 1 the "running" buffers of the call receive each group's batch mean and
  // unbiased variance, which the running statistics below need.
  at::Tensor group_mean, group_var;
  if (update) {
    group_mean = at::zeros({k * c}, running_mean.options());
    group_var = at::ones({k * c}, running_var.options());
  }
  at::Tensor w = k == 1 ? weight : weight.repeat({k}), b = k == 1 ? bias : bias.repeat({k});
  at::Tensor y = at::batch_norm(folded, w, b, group_mean, group_var, true, 1.0, eps_, cudnn);
  if (k > 1) y = y.reshape({g, k, c, -1}).transpose(0, 1).reshape(x.sizes());
  if (update) {
    c10::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    const double f = momentum ? *momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
    const double m = f * stat_weight;
    running_mean.mul_(1 - f).add_(group_mean.view({k, c}).mean(0), m);
    running_var.mul_(1 - f).add_(group_var.view({k, c}).mean(0), m);
  }
  return y;
}

namespace {
void for_each_batchnorm(torch::nn::Module& net, const std::function<void(GhostBatchNorm2dImpl&)>& fn) {
  // modules(include_self = true) needs `net` held by a shared_ptr; the caller may hold it otherwise.
  if (auto* self = dynamic_cast<GhostBatchNorm2dImpl*>(&net)) fn(*self);
  for (const auto& m : net.modules(/*include_self=*/false))
    if (auto* bn = dynamic_cast<GhostBatchNorm2dImpl*>(m.get())) fn(*bn);
}
}  // namespace

void set_batchnorm_group(torch::nn::Module& net, int64_t group) {
  PASSLAB_CHECK(group >= 0, InternalError, "negative BatchNorm group size");
  for_each_batchnorm(net, [group](GhostBatchNorm2dImpl& bn) { bn.group = group; });
}

void set_batchnorm_stat_weight(torch::nn::Module& net, double weight) {
  for_each_batchnorm(net, [weight](GhostBatchNorm2dImpl& bn) { bn.stat_weight = weight; });
}

void set_batchnorm_mode(torch::nn::Module& net, BatchNormMode mode) {
  for_each_batchnorm(net, [mode](GhostBatchNorm2dImpl& bn) { bn.mode = mode; });
}

}  // namespace passlab::models
