#include "passlab/pipeline/regularise.hpp"

#include <ATen/ATen.h>

#include "passlab/config/config.hpp"
#include "passlab/core/log.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/prune/group_norm.hpp"
#include "passlab/pipeline/stage_loaders.hpp"

namespace passlab::pipeline {

RegularisedModel regularise(const TaskContext& ctx, const TaskData& d, const models::PrunableNetwork& dense,
                            const Penalty& penalty) {
  const config::RegulariseConfig& rc = ctx.cfg.regularise;
  RegularisedModel r;
  r.net = models::make_model(dense.spec());
  models::load_state(*r.net, models::state_dict(dense), {}, "the dense model");
  r.net->to(ctx.rt.device());

  TrainingStage stage = make_training_stage(ctx, d, rc, "regularise", ctx.seed(kRegulariseData));
  // Kept until the task's work directory goes: a task interrupted later (in its fine-tune)
  // restores the finished phase from it instead of training it again.
  stage.options.remove_checkpoint_when_done = false;
  train::Trainer trainer(*r.net, ctx.comm, stage.options);
  models::PrunableNetwork& net = *r.net;
  trainer.set_step([&](const data::Batch& b) {
    at::Tensor logits = net.forward(b.images);
    at::Tensor loss = train::cross_entropy(logits, b.labels, rc.label_smoothing);
    at::Tensor p = penalty(net, trainer.global_step());
    return train::StepOutput(p.defined() ? loss + p : loss, logits);
  });
  const auto t0 = std::chrono::steady_clock::now();
  r.fit = trainer.fit(*stage.train, stage.eval());
  r.seconds = seconds_since(t0);
  r.net->eval();
  PL_INFO("regularise {}: {} epochs in {:.1f} s", ctx.id, rc.epochs, r.seconds);
  return r;
}

Penalty depgraph_penalty(const config::Config& cfg, const models::Structure& s) {
  const std::vector<bool> groups = s.prunable(cfg.prune.prune_residual);
  const double reg = cfg.regularise.depgraph_reg, alpha = cfg.regularise.depgraph_alpha;
  return [groups, reg, alpha](const models::PrunableNetwork& net, int64_t) {
    return prune::group_norm_penalty(net, groups, reg, alpha);
  };
}

Penalty growreg_penalty(const config::Config& cfg, const prune::Allocation& removal, const models::Structure& s) {
  // 1 on every channel the plan removes, 0 on those it keeps; no entry for a group kept whole.
  std::vector<at::Tensor> removed(s.groups.size());
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const auto& keep = removal.keep[g];
    if (static_cast<int64_t>(keep.size()) == s.groups[g].width) continue;
    at::Tensor m = at::ones({s.groups[g].width}, at::kFloat);
    m.index_fill_(0, at::tensor(keep, at::kLong), 0.0);
    removed[g] = m;
  }
  const prune::GrowingSchedule schedule = prune::GrowingSchedule::from(cfg.regularise);
  // Moved to the network's device at the first step (the plan is made before the copy is placed).
  return [removed, schedule](const models::PrunableNetwork& net, int64_t step) mutable {
    const double lambda = schedule.at(step);
    const c10::Device dev = net.parameters().front().device();
    std::vector<at::Tensor> coef(removed.size());
    for (size_t g = 0; g < removed.size(); ++g) {
      if (!removed[g].defined()) continue;
      if (removed[g].device() != dev) removed[g] = removed[g].to(dev);
      coef[g] = removed[g] * lambda;
    }
    return prune::channel_l2_penalty(net, coef);
  };
}

}  // namespace passlab::pipeline
