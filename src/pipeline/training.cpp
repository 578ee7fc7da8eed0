#include "passlab/pipeline/training.hpp"

#include <torch/torch.h>

#include <optional>

#include "passlab/pass/hypernet.hpp"

namespace passlab::pipeline {

train::EvalResult TrainedStage::test() { return trainer->evaluate(*stage.test); }

namespace {

// While alive, the network's parameters outside its classifier do not require grad (autograd
// builds no graph through the backbone); they require it again afterwards, also when training
// throws.
class BackboneFreeze {
 public:
  explicit BackboneFreeze(models::PrunableNetwork& net) {
    for (auto& kv : net.named_parameters())
      if (is_head_parameter(net, kv.key()))
        head_.emplace_back(kv.key(), kv.value());
      else if (kv.value().requires_grad())
        frozen_.push_back(kv.value());
    for (auto& p : frozen_) p.set_requires_grad(false);
  }
  ~BackboneFreeze() {
    for (auto& p : frozen_) p.set_requires_grad(true);
  }
  BackboneFreeze(const BackboneFreeze&) = delete;
  BackboneFreeze& operator=(const BackboneFreeze&) = delete;
  const train::NamedTensors& head() const { return head_; }

 private:
  train::NamedTensors head_;
  std::vector<at::Tensor> frozen_;
};

// One phase of the dense stage on [dense] with `epochs`: every parameter, or the head alone.
TrainedStage train_dense_phase(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& net, bool head_only,
                               int64_t epochs) {
  config::TrainConfig tc = ctx.cfg.dense;
  tc.epochs = epochs;
  TrainedStage t;
  t.stage = make_training_stage(ctx, d, tc, head_only ? "dense_head" : "dense", ctx.seed(head_only ? kHeadData : kDenseData));
  std::optional<BackboneFreeze> freeze;
  if (head_only) {
    // The backbone stays in eval mode: its BatchNorms normalise with the source's running
    // statistics and never update them, so it computes exactly the source's features.
    t.stage.options.set_train_mode = false;
    t.stage.options.frozen_buffers = true;
    freeze.emplace(net);
    net.eval();
  }
  t.trainer = std::make_unique<train::Trainer>(net, ctx.comm, t.stage.options);
  if (head_only) t.trainer->set_trainable(freeze->head());
  const auto t0 = std::chrono::steady_clock::now();
  t.fit = t.trainer->fit(*t.stage.train, t.stage.eval());
  t.seconds = seconds_since(t0);
  return t;
}

}  // namespace

bool is_head_parameter(const models::PrunableNetwork& net, const std::string& name) {
  return name.rfind(net.head() + ".", 0) == 0;
}

TrainedStage train_dense(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& net) {
  const auto& dc = ctx.cfg.dense;
  if (dc.mode == "head") return train_dense_phase(ctx, d, net, true, dc.epochs);
  if (dc.mode == "full") return train_dense_phase(ctx, d, net, false, dc.epochs);
  // head_then_full. A resumed task runs the (cheap) head phase again before the full phase
  // restores its checkpoint, so its curves are those of an uninterrupted run.
  TrainedStage head = train_dense_phase(ctx, d, net, true, dc.head_epochs);
  TrainedStage full = train_dense_phase(ctx, d, net, false, dc.epochs);
  // The dense curves: the head phase's epochs, then the full phase's.
  full.fit.epochs.insert(full.fit.epochs.begin(), head.fit.epochs.begin(), head.fit.epochs.end());
  full.seconds += head.seconds;
  return full;
}

TrainedStage finetune(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& compact,
                      pass::VisualPrompt* prompt) {
  TrainedStage t;
  t.stage = make_training_stage(ctx, d, ctx.cfg.finetune, "finetune", ctx.seed(kFinetuneData));
  t.trainer = std::make_unique<train::Trainer>(compact, ctx.comm, t.stage.options);
  if (prompt) {
    // The prompt is trained with the network and stays in front of it.
    train::NamedTensors named;
    for (auto& kv : compact.named_parameters()) named.emplace_back(kv.key(), kv.value());
    for (auto& kv : prompt->named_parameters()) {
      kv.value().set_requires_grad(true);
      named.emplace_back("prompt." + kv.key(), kv.value());
    }
    t.trainer->set_trainable(named);
    t.trainer->set_forward([&compact, prompt](const at::Tensor& x) { return compact.forward(prompt->forward(x)); });
  }
  const auto t0 = std::chrono::steady_clock::now();
  t.fit = t.trainer->fit(*t.stage.train, t.stage.eval());
  t.seconds = seconds_since(t0);
  return t;
}

}  // namespace passlab::pipeline
