#include "passlab/pipeline/training.hpp"

#include <torch/torch.h>

#include "passlab/pass/hypernet.hpp"

namespace passlab::pipeline {

train::EvalResult TrainedStage::test() { return trainer->evaluate(*stage.test); }

TrainedStage train_dense(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& net) {
  TrainedStage t;
  t.stage = make_training_stage(ctx, d, ctx.cfg.dense, "dense", ctx.seed(kDenseData));
  t.trainer = std::make_unique<train::Trainer>(net, ctx.comm, t.stage.options);
  const auto t0 = std::chrono::steady_clock::now();
  t.fit = t.trainer->fit(*t.stage.train, t.stage.eval());
  t.seconds = seconds_since(t0);
  return t;
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
