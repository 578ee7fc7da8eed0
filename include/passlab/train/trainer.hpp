#pragma once
// The data-parallel trainer used by every stage (dense training, PASS search, fine-tuning).
//
//   train::Trainer t(model, *comm, train::TrainerOptions::from(cfg.dense, cfg.dist, cfg.output,
//                    rt.device(), "dense", cfg.experiment.seed, dir / "dense.ckpt.h5"));
//   auto result = t.fit(train_source, &val_source);      // resumes from the checkpoint if any
//   auto test = t.evaluate(test_source);
//
// Each step: forward on this rank's batch, backward, gradients summed over the group in fused
// buckets (dist::GradientReducer), optimizer step with the scheduled learning rate. A rank's loss
// is weighted by its share of the global batch (Batch::global_size; equal shares when unknown),
// so the gradient is the global-batch mean however the batch is split. Parameters and buffers
// are broadcast from the group leader at the start; floating buffers (BatchNorm statistics) are
// averaged over the group after every epoch. The model's BatchNorms take training statistics
// over groups of TrainerOptions::bn_group samples (models/ghost_batchnorm.hpp), each rank's
// running-statistics update weighted by its share, so the averaged running statistics are the
// same on any number of ranks. Evaluation counts are reduced exactly (per dataset index, so
// wrap-around padding is not counted twice).
//
// PASS reuses it with its own trainable tensors (hypernetwork, prompt) over a frozen backbone,
// its own step (masked, prompted network; cross-entropy + FLOPs term) returning named per-step
// values, a step count instead of epochs, and checkpoints every N steps (resumed mid-epoch):
// set_trainable(), set_step(), TrainerOptions::max_steps / step_curves / checkpoint_every_steps.
//
// Stop requests (core/stop.hpp): after every step the group agrees whether any rank was asked
// to stop (dist/agreement.hpp); if so the leader writes the checkpoint (mid-epoch, resumed at the
// next batch) and every rank throws StopRequested.
//
// Divergence: a non-finite loss or trainable tensor ends fit() with TrainingDiverged, detected
// at the points where the group already synchronises (epoch end, step-curve flushes, before
// every checkpoint), so no checkpoint and no result is ever written from a diverged state.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "passlab/config/config.hpp"
#include "passlab/data/batch.hpp"
#include "passlab/models/network.hpp"
#include "passlab/train/optimizer.hpp"

// Held by reference only: its header (and <mpi.h>) stays out of every includer of this one.
namespace passlab::dist {
class Communicator;
}

namespace passlab::train {

struct TrainerOptions {
  config::TrainConfig train;
  double bucket_mib = 25.0;
  double first_bucket_mib = 1.0;
  c10::Device device{c10::kCPU};  // where the model and batches live (the runtime's device)
  std::string progress = "auto";  // auto | bar | lines | none
  double progress_every_s = 30.0; // lines mode
  std::string label = "train";    // stage name in logs and progress
  uint64_t seed = 0;
  // Checkpoint file (empty: none); written by the group leader every `checkpoint_every` epochs
  // and after the last; fit() resumes from it when it exists and is complete.
  std::filesystem::path checkpoint;
  int64_t checkpoint_every = 1;
  bool remove_checkpoint_when_done = false;
  int64_t checkpoint_every_steps = 0;  // > 0: also checkpoint every N steps (mid-epoch; resume skips the batches done)
  int64_t max_steps = 0;          // > 0: stop after this many steps (schedule spans them)
  bool set_train_mode = true;     // model.train() during training epochs, model.eval() in evaluate()
  // The model's own parameters and buffers are not trained (a frozen backbone every rank loaded
  // from the same file): they are neither broadcast, averaged after epochs nor checkpointed.
  bool frozen_model = false;
  // The model's buffers do not change in this stage (its BatchNorms stay in eval mode: a head
  // trained on a frozen backbone): they are not averaged after epochs, which could only add
  // rounding to identical copies.
  bool frozen_buffers = false;
  // Samples per BatchNorm statistics group while training the model (0: this rank's whole batch);
  // set on the model's GhostBatchNorm2d modules unless frozen_model.
  int64_t bn_group = 0;
  // Record per-step curves: "loss" and the step's StepOutput::values, averaged over the group.
  // They stay on the device and are fetched (one reduction, one host copy) every
  // log_every_steps steps, at checkpoints and at the end of fit().
  bool step_curves = false;
  int64_t log_every_steps = 0;    // > 0: log the latest step values every N steps (with step_curves)

  static TrainerOptions from(const config::TrainConfig& train, const config::DistConfig& dist,
                             const config::OutputConfig& output, c10::Device device, std::string label, uint64_t seed,
                             std::filesystem::path checkpoint = {});
};

struct EvalResult {
  int64_t samples = 0;       // distinct samples evaluated (all ranks)
  int64_t top1_correct = 0;
  int64_t top5_correct = 0;
  double loss_sum = 0.0;     // sum of per-sample cross-entropy
  double top1() const { return samples ? double(top1_correct) / double(samples) : 0.0; }
  double top5() const { return samples ? double(top5_correct) / double(samples) : 0.0; }
  double loss() const { return samples ? loss_sum / double(samples) : 0.0; }
};

struct EpochStats {
  int64_t epoch = 0;
  double train_loss = 0;   // mean over the samples of the epoch (all ranks)
  double train_top1 = 0;   // accuracy on the training batches as trained (NaN without logits)
  double lr = 0;           // at the epoch's last step
  double seconds = 0;
  double images_per_s = 0; // all ranks
  std::optional<EvalResult> eval;
};

// Per-step values (TrainerOptions::step_curves): names[k]'s value at step s is values[k][s].
struct StepCurves {
  std::vector<std::string> names;  // "loss", then the step function's values in its order
  std::vector<std::vector<double>> values;
  // The curve named `name` (empty when there is none).
  std::vector<double> get(const std::string& name) const;
};

struct FitResult {
  std::vector<EpochStats> epochs;  // every epoch, including those restored from a checkpoint
  int64_t resumed_from_epoch = 0;  // 0: started fresh
  int64_t resumed_from_step = 0;   // 0: started fresh
  int64_t steps = 0;
  StepCurves curves;               // every step, including those restored from a checkpoint
};

// What a training step computes from a batch: the loss to minimise (mean over this rank's
// batch), optionally logits for the running training accuracy, and optionally named scalars
// recorded per step (with TrainerOptions::step_curves; same names in the same order every step).
struct StepOutput {
  StepOutput() = default;
  StepOutput(at::Tensor loss_, at::Tensor logits_ = {}, NamedTensors values_ = {})
      : loss(std::move(loss_)), logits(std::move(logits_)), values(std::move(values_)) {}
  at::Tensor loss;
  at::Tensor logits;
  NamedTensors values;
};

class Trainer {
 public:
  using ForwardFn = std::function<at::Tensor(const at::Tensor& images)>;
  using StepFn = std::function<StepOutput(const data::Batch& batch)>;
  using EpochFn = std::function<void(const EpochStats&)>;

  Trainer(models::Network& model, dist::Communicator& comm, TrainerOptions opt);
  ~Trainer();

  // The tensors to train (default: the model's parameters that require grad). Tensors that
  // are not the model's are broadcast and checkpointed too (under their names).
  void set_trainable(NamedTensors params);
  // Forward used by the default step and by evaluate (default: model.forward).
  void set_forward(ForwardFn fn);
  // Training step (default: label-smoothed cross-entropy of forward(images)).
  void set_step(StepFn fn);
  void on_epoch_end(EpochFn fn);

  // Trains for options.train.epochs (or max_steps); evaluates `eval` after each epoch if given.
  FitResult fit(data::BatchSource& train, data::BatchSource* eval = nullptr);
  // Exact top-1/top-5/loss over `source` on all ranks of the group.
  EvalResult evaluate(data::BatchSource& source);

  // Leader writes atomically; every rank returns after it is on disk.
  void save_checkpoint(const std::filesystem::path& path);
  // Restores state from `path` if it exists and is complete; returns the epoch to continue at.
  std::optional<int64_t> load_checkpoint(const std::filesystem::path& path);

  int64_t global_step() const { return global_step_; }
  const NamedTensors& trainable() const { return trainable_; }
  Optimizer* optimizer() { return optimizer_.get(); }
  // Parameters and buffers of the model, and the extra trainable tensors, by name.
  NamedTensors state_tensors() const;

 private:
  struct Impl;
  // What is broadcast at the start and checkpointed: state_tensors() without the model's own
  // tensors when it is frozen.
  NamedTensors synced_tensors() const;
  // Throws TrainingDiverged when `loss` or a trainable tensor is not finite (call where every
  // rank holds the same values, so they all throw together).
  void check_finite(double loss, const std::string& where) const;
  // Reduces the pending step values over the group, appends them to the curves (checking the
  // loss), and logs the latest when `log`.
  void flush_curves(bool log);
  // Queues this step's loss and values times `weight` (this rank's share of the global batch
  // times the ranks; on the device, no host sync).
  void record_step(const StepOutput& out, double weight);
  void ensure_setup(int64_t steps_per_epoch);
  void broadcast_state();
  void sync_buffers();
  EpochStats train_epoch(data::BatchSource& train, int64_t epoch);

  models::Network& model_;
  dist::Communicator& comm_;
  TrainerOptions opt_;
  NamedTensors trainable_;
  bool custom_trainable_ = false;
  ForwardFn forward_;
  StepFn step_;
  EpochFn on_epoch_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<Impl> impl_;
  int64_t global_step_ = 0;
  int64_t start_epoch_ = 0;
  std::vector<EpochStats> history_;
  bool setup_ = false;
};

// Label-smoothed cross-entropy (mean over the batch), as torch.nn.CrossEntropyLoss.
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels, double label_smoothing = 0.0);

}  // namespace passlab::train
