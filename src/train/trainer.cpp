#include "passlab/train/trainer.hpp"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/stop.hpp"
#include "passlab/dist/agreement.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/reducer.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "passlab/train/progress.hpp"

namespace passlab::train {
namespace {

// After the group agreed on a stop (the checkpoint, if any, written): logs and unwinds the stage.
[[noreturn]] void throw_stopped(const TrainerOptions& opt, const std::string& where) {
  const std::string kept = opt.checkpoint.empty() ? "this stage has no checkpoint: it restarts"
                                                  : "checkpoint " + opt.checkpoint.string() + " kept";
  PL_WARN("{}: stopped {} on a stop request ({}); {}", opt.label, where,
          stop::requested() != 0 ? stop::describe() : std::string("made on another rank of the group"), kept);
  throw StopRequested(opt.label + ": stopped " + where + " on a stop request; " + kept);
}

}  // namespace

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels, double label_smoothing) {
  return at::cross_entropy_loss(logits.to(at::kFloat), labels, {}, at::Reduction::Mean, -100, label_smoothing);
}

TrainerOptions TrainerOptions::from(const config::TrainConfig& train, const config::DistConfig& dist,
                                    const config::OutputConfig& output, c10::Device device, std::string label,
                                    uint64_t seed, std::filesystem::path checkpoint) {
  TrainerOptions o;
  o.train = train;
  o.bucket_mib = dist.bucket_mib;
  o.first_bucket_mib = dist.first_bucket_mib;
  o.device = device;
  o.progress = output.progress;
  o.label = std::move(label);
  o.seed = seed;
  o.checkpoint = std::move(checkpoint);
  o.checkpoint_every = output.checkpoint_every;
  return o;
}

std::vector<double> StepCurves::get(const std::string& name) const {
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return values[k];
  return {};
}

// Where training stands inside an epoch, as a checkpoint stores it: the next batch, and the
// group's sums over the batches done (restored on the leader, so the epoch-end reduction is exact).
struct EpochPosition {
  int64_t epoch = 0, batch = 0;
  double loss_sum = 0;
  int64_t samples = 0, correct = 0;
  bool have_logits = true;
};

struct Trainer::Impl {
  std::unique_ptr<dist::GradientReducer> reducer;
  std::optional<LrSchedule> schedule;
  EpochPosition position;              // written by save_checkpoint
  std::optional<EpochPosition> resume; // read by load_checkpoint, consumed by the next epoch
  std::vector<at::Tensor> pending;     // step values not yet fetched, one [names] row per step
  StepCurves curves;                   // fetched step values (group means)
};

namespace {

// bf16 autocast for the forward pass on CUDA; a no-op elsewhere.
class AutocastScope {
 public:
  AutocastScope(bool enabled, c10::Device device) : on_(enabled && device.is_cuda()) {
    if (on_) {
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
      at::autocast::set_autocast_enabled(at::kCUDA, true);
    }
  }
  ~AutocastScope() {
    if (on_) {
      at::autocast::set_autocast_enabled(at::kCUDA, false);
      at::autocast::clear_cache();
    }
  }

 private:
  bool on_;
};

void check_same_everywhere(dist::Communicator& comm, int64_t v, const std::string& what) {
  auto all = comm.allgather(v);
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r] != v)
      throw DataError(what + " differs across ranks: rank " + std::to_string(r) + " has " + std::to_string(all[r]) +
                      ", this rank " + std::to_string(v) + " (every rank must run the same number of steps)");
}

at::Tensor generator_state(c10::Device device) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state().contiguous();
}

void set_generator_state(c10::Device device, const at::Tensor& state) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

}  // namespace

Trainer::Trainer(models::Network& model, dist::Communicator& comm, TrainerOptions opt)
    : model_(model), comm_(comm), opt_(std::move(opt)), impl_(std::make_unique<Impl>()) {
  model_.to(opt_.device);
  forward_ = [this](const at::Tensor& x) { return model_.forward(x); };
  if (opt_.train.precision != "fp32" && opt_.train.precision != "bf16")
    throw ConfigError("precision must be fp32 or bf16, not \"" + opt_.train.precision + "\"");
  if (opt_.train.precision == "bf16" && !opt_.device.is_cuda())
    PL_WARN("{}: precision = bf16 applies on GPU only; training on {} in fp32", opt_.label, opt_.device.str());
}

Trainer::~Trainer() = default;

void Trainer::set_trainable(NamedTensors params) {
  PASSLAB_CHECK(!setup_, InternalError, "set_trainable after training started");
  trainable_ = std::move(params);
  custom_trainable_ = true;
}
void Trainer::set_forward(ForwardFn fn) { forward_ = std::move(fn); }
void Trainer::set_step(StepFn fn) { step_ = std::move(fn); }
void Trainer::on_epoch_end(EpochFn fn) { on_epoch_ = std::move(fn); }

NamedTensors Trainer::state_tensors() const {
  NamedTensors out;
  std::set<const void*> seen;
  for (const auto& it : model_.named_parameters(true)) {
    out.emplace_back("model/" + it.key(), it.value());
    seen.insert(it.value().unsafeGetTensorImpl());
  }
  for (const auto& it : model_.named_buffers(true)) {
    out.emplace_back("model/" + it.key(), it.value());
    seen.insert(it.value().unsafeGetTensorImpl());
  }
  for (const auto& [n, t] : trainable_)
    if (!seen.count(t.unsafeGetTensorImpl())) out.emplace_back("trainable/" + n, t);
  return out;
}

NamedTensors Trainer::synced_tensors() const {
  NamedTensors all = state_tensors();
  if (!opt_.frozen_model) return all;
  NamedTensors out;
  for (auto& [n, t] : all)
    if (n.rfind("trainable/", 0) == 0) out.emplace_back(n, t);
  return out;
}

void Trainer::check_finite(double loss, const std::string& where) const {
  if (!std::isfinite(loss))
    throw TrainingDiverged(opt_.label + ": training diverged: loss is " + std::to_string(loss) + " " + where);
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> finite;
  for (const auto& [n, t] : trainable_) finite.push_back(t.isfinite().all());
  if (finite.empty() || at::stack(finite).all().item<bool>()) return;
  for (const auto& [n, t] : trainable_)
    if (!t.isfinite().all().item<bool>())
      throw TrainingDiverged(opt_.label + ": training diverged: trainable tensor " + n + " is not finite " + where);
}

void Trainer::flush_curves(bool log) {
  auto& im = *impl_;
  if (im.pending.empty()) return;
  c10::NoGradGuard no_grad;
  // One reduction and one host copy for all steps since the last flush.
  at::Tensor rows = at::stack(im.pending);
  im.pending.clear();
  if (comm_.size() > 1) {
    comm_.allreduce(rows, dist::ReduceOp::mean);
    comm_.wait();
  }
  rows = rows.cpu().contiguous();
  const int64_t n = rows.size(0), k = rows.size(1);
  const double* v = rows.data_ptr<double>();
  const int64_t first_step = global_step_ - n;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) im.curves.values[size_t(j)].push_back(v[i * k + j]);
    if (!std::isfinite(v[i * k])) check_finite(v[i * k], "at step " + std::to_string(first_step + i + 1));
  }
  if (log && comm_.rank() == 0) {
    std::string line;
    for (int64_t j = 0; j < k; ++j) {
      char value[32];
      std::snprintf(value, sizeof value, " %.4f", v[(n - 1) * k + j]);
      line += " " + im.curves.names[size_t(j)] + value;
    }
    const int64_t total = opt_.max_steps > 0 ? opt_.max_steps : 0;
    PL_INFO("{}: step {}{}:{}", opt_.label, global_step_, total > 0 ? "/" + std::to_string(total) : "", line);
  }
}

void Trainer::record_step(const StepOutput& out, double weight) {
  auto& im = *impl_;
  const auto as_value = at::TensorOptions().dtype(at::kDouble).device(opt_.device);
  std::vector<at::Tensor> row = {out.loss.detach().to(as_value).reshape({})};
  std::vector<std::string> names = {"loss"};
  for (const auto& [n, v] : out.values) {
    row.push_back(v.detach().to(as_value).reshape({}));
    names.push_back(n);
  }
  if (im.curves.names.empty()) {
    im.curves.names = names;
    im.curves.values.assign(names.size(), {});
  }
  PASSLAB_CHECK(names == im.curves.names, InternalError,
                opt_.label + ": the step values changed names or order (or differ from the checkpoint's)");
  // Weighted by the rank's share: the group mean of the rows is then the global-batch mean.
  im.pending.push_back(weight != 1.0 ? at::stack(row) * weight : at::stack(row));
}

void Trainer::broadcast_state() {
  if (comm_.size() == 1) return;
  c10::NoGradGuard no_grad;
  for (auto& [n, t] : synced_tensors()) {
    at::Tensor x = t;
    comm_.broadcast(x, 0);
  }
  comm_.wait();
}

void Trainer::sync_buffers() {
  if (comm_.size() == 1 || opt_.frozen_model || opt_.frozen_buffers) return;
  c10::NoGradGuard no_grad;
  for (const auto& it : model_.named_buffers(true)) {
    at::Tensor b = it.value();
    if (!b.defined() || b.numel() == 0) continue;
    if (at::isFloatingType(b.scalar_type()))
      comm_.allreduce(b, dist::ReduceOp::mean);
    else
      comm_.broadcast(b, 0);
  }
  comm_.wait();
}

void Trainer::ensure_setup(int64_t steps_per_epoch) {
  if (!setup_) {
    if (!custom_trainable_)
      for (const auto& it : model_.named_parameters(true))
        if (it.value().requires_grad()) trainable_.emplace_back(it.key(), it.value());
    PASSLAB_CHECK(!trainable_.empty(), ConfigError, opt_.label + ": nothing to train (no tensor requires grad)");
    for (auto& [n, t] : trainable_)
      PASSLAB_CHECK(t.requires_grad() && t.is_leaf(), InternalError, opt_.label + ": trainable tensor " + n + " is not a leaf requiring grad");
    broadcast_state();
    optimizer_ = make_optimizer(opt_.train, trainable_);
    std::vector<at::Tensor> tensors;
    for (auto& [n, t] : trainable_) tensors.push_back(t);
    dist::ReducerOptions ro;
    ro.bucket_mib = opt_.bucket_mib;
    ro.first_bucket_mib = opt_.first_bucket_mib;
    ro.average = false;  // the loss is scaled by 1/ranks before backward: the sum is the mean
    impl_->reducer = std::make_unique<dist::GradientReducer>(comm_, std::move(tensors), ro);
    setup_ = true;
  }
  impl_->schedule.emplace(opt_.train, steps_per_epoch, opt_.max_steps);
}

EpochStats Trainer::train_epoch(data::BatchSource& train, int64_t epoch) {
  auto t0 = std::chrono::steady_clock::now();
  const int64_t nb = train.batches_per_epoch();
  check_same_everywhere(comm_, nb, "batches per epoch");
  // A checkpoint taken inside this epoch: continue after its batches, from the group's sums
  // (held by the leader alone, so the epoch-end sum counts them once).
  EpochPosition from;
  from.epoch = epoch;
  if (impl_->resume && impl_->resume->epoch == epoch) {
    from = *impl_->resume;
    if (comm_.rank() != 0) {
      from.loss_sum = 0;
      from.samples = from.correct = 0;
    }
  }
  impl_->resume.reset();
  if (from.batch > 0)
    train.resume_epoch(epoch, from.batch);
  else
    train.start_epoch(epoch);
  if (opt_.set_train_mode) model_.train(true);
  // Also for a frozen model: a caller that runs its BatchNorms on batch statistics
  // (models::BatchNormMode::batch_frozen) gets the stage's groups.
  models::set_batchnorm_group(model_, opt_.bn_group);
  double bn_weight = NAN;  // the stat_weight last set on the model's BatchNorms
  const bool bf16 = opt_.train.precision == "bf16";
  const int64_t epochs = opt_.max_steps > 0 ? (opt_.max_steps + nb - 1) / std::max<int64_t>(1, nb) : opt_.train.epochs;
  Progress progress(Progress::resolve(opt_.progress, comm_.rank() == 0),
                    opt_.label + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), nb,
                    opt_.progress_every_s);
  StepFn step = step_ ? step_ : StepFn([this](const data::Batch& b) {
    at::Tensor logits = forward_(b.images);
    return StepOutput{cross_entropy(logits, b.labels, opt_.train.label_smoothing), logits};
  });
  at::Tensor loss_sum = at::full({}, from.loss_sum, at::TensorOptions().dtype(at::kDouble).device(opt_.device));
  at::Tensor correct = at::full({}, from.correct, at::TensorOptions().dtype(at::kLong).device(opt_.device));
  int64_t samples = from.samples, steps = 0;
  bool have_logits = from.have_logits;
  double lr = 0, last_loss = NAN;
  auto& reducer = *impl_->reducer;
  for (int64_t i = from.batch; i < nb; ++i) {
    if (opt_.max_steps > 0 && global_step_ >= opt_.max_steps) break;
    auto b = train.next();
    if (!b) throw DataError(opt_.label + ": the batch source ended after " + std::to_string(i) + " of " +
                            std::to_string(nb) + " batches");
    data::Batch batch{b->images.to(opt_.device, /*non_blocking=*/true), b->labels.to(opt_.device, true), b->indices,
                      b->global_size};
    const int64_t bsz = batch.labels.size(0);
    // This rank's share of the global batch: its loss weight, so that the summed gradients are
    // the global-batch mean (exactly 1/ranks for equal shares, as before).
    const double share = b->global_size > 0 ? double(bsz) / double(b->global_size) : 1.0 / double(comm_.size());
    if (!opt_.frozen_model && share * double(comm_.size()) != bn_weight) {
      bn_weight = share * double(comm_.size());
      models::set_batchnorm_stat_weight(model_, bn_weight);
    }
    lr = impl_->schedule->at(global_step_);
    reducer.zero_grad();
    reducer.prepare();
    StepOutput out;
    {
      AutocastScope autocast(bf16, opt_.device);
      out = step(batch);
    }
    // Global-batch mean = sum of the share-weighted gradients (exact for power-of-two groups).
    (share != 1.0 ? out.loss * share : out.loss).backward();
    reducer.finish();
    optimizer_->step(lr);
    ++global_step_;
    ++steps;
    samples += bsz;
    {
      c10::NoGradGuard no_grad;
      loss_sum += out.loss.detach().to(at::kDouble) * double(bsz);
      if (out.logits.defined())
        correct += (out.logits.detach().argmax(1) == batch.labels).sum();
      else
        have_logits = false;
      if (opt_.step_curves) record_step(out, share * double(comm_.size()));
    }
    if (progress.due(i + 1)) {
      last_loss = out.loss.detach().item<double>();
      progress.update(i + 1, samples * comm_.size(), last_loss, lr);
    }
    // Step-count points: the same steps on every rank, so the collectives below line up.
    const bool log_due = opt_.step_curves && opt_.log_every_steps > 0 && global_step_ % opt_.log_every_steps == 0;
    const bool done = opt_.max_steps > 0 && global_step_ >= opt_.max_steps;
    const bool checkpoint_due = !opt_.checkpoint.empty() && opt_.checkpoint_every_steps > 0 &&
                                global_step_ % opt_.checkpoint_every_steps == 0 && i + 1 < nb && !done;
    // A stop request (a signal to any rank), agreed by the group after every step but the
    // epoch's last (fit() looks after the epoch ends): checkpoint here and unwind.
    const bool stop = i + 1 < nb && !done && dist::stop_agreed(comm_);
    const bool save = checkpoint_due || (stop && !opt_.checkpoint.empty());
    if (log_due || save) flush_curves(log_due);
    if (save) {
      // The group's sums so far, checked before anything is written from them.
      std::vector<double> part = {loss_sum.item<double>(), double(samples), double(correct.item<int64_t>()),
                                  have_logits ? 0.0 : 1.0};
      comm_.allreduce_values(part, dist::ReduceOp::sum);
      check_finite(part[0], "in epoch " + std::to_string(epoch + 1) + " by step " + std::to_string(global_step_));
      impl_->position =
          EpochPosition{epoch, i + 1, part[0], int64_t(std::llround(part[1])), int64_t(std::llround(part[2])), part[3] == 0};
      // The leader's buffers are saved for every rank: average them first, as at an epoch end
      // (running statistics are linear in their updates, so this moves them by rounding only).
      sync_buffers();
      save_checkpoint(opt_.checkpoint);
    }
    if (stop) {
      progress.finish();
      throw_stopped(opt_, "in epoch " + std::to_string(epoch + 1) + " at step " + std::to_string(global_step_));
    }
  }
  progress.finish();
  std::vector<double> totals = {loss_sum.item<double>(), double(samples), double(correct.item<int64_t>())};
  comm_.allreduce_values(totals, dist::ReduceOp::sum);
  check_finite(totals[0], "in epoch " + std::to_string(epoch + 1) + " (by step " + std::to_string(global_step_) + ")");
  sync_buffers();
  EpochStats s;
  s.epoch = epoch;
  s.train_loss = totals[1] > 0 ? totals[0] / totals[1] : NAN;
  s.train_top1 = have_logits && totals[1] > 0 ? totals[2] / totals[1] : NAN;
  s.lr = lr;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.images_per_s = s.seconds > 0 ? totals[1] / s.seconds : 0;
  return s;
}

EvalResult Trainer::evaluate(data::BatchSource& source) {
  c10::NoGradGuard no_grad;
  if (opt_.set_train_mode) model_.eval();
  source.start_epoch(0);
  const int64_t n = source.dataset_size();
  // Per dataset index: [seen, top-1 correct, top-5 correct, loss]; reduced with max, so a sample
  // a padded shard holds twice (wrap-around) counts once.
  at::Tensor per = at::zeros({4, std::max<int64_t>(n, 1)}, at::kFloat);
  EvalResult r;
  bool by_index = true;
  std::vector<double> fallback = {0, 0, 0, 0};
  while (auto b = source.next()) {
    at::Tensor labels = b->labels.to(opt_.device);
    at::Tensor logits;
    {
      AutocastScope autocast(opt_.train.precision == "bf16", opt_.device);
      logits = forward_(b->images.to(opt_.device, true));
    }
    logits = logits.to(at::kFloat);
    at::Tensor loss = at::cross_entropy_loss(logits, labels, {}, at::Reduction::None, -100, 0.0);
    int64_t k = std::min<int64_t>(5, logits.size(1));
    at::Tensor top = std::get<1>(logits.topk(k, 1));
    at::Tensor c1 = top.select(1, 0) == labels;
    at::Tensor c5 = (top == labels.unsqueeze(1)).any(1);
    at::Tensor rows = at::stack({at::ones_like(loss), c1.to(at::kFloat), c5.to(at::kFloat), loss}).cpu();
    if (b->indices.defined() && by_index) {
      at::Tensor idx = b->indices.to(at::kLong).cpu();
      PASSLAB_CHECK(idx.numel() == 0 || (idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < n), DataError,
                    opt_.label + ": evaluation batch has indices outside [0, dataset_size)");
      per.index_put_({at::indexing::Slice(), idx}, rows);
    } else {
      by_index = false;
      auto sums = rows.to(at::kDouble).sum(1);
      for (int j = 0; j < 4; ++j) fallback[j] += sums[j].item<double>();
    }
  }
  // Every rank must agree on the method (a collective follows).
  check_same_everywhere(comm_, by_index ? 1 : 0, "evaluation by dataset index");
  if (by_index) {
    comm_.allreduce_host(per, dist::ReduceOp::max);
    auto sums = per.to(at::kDouble).sum(1);
    fallback = {sums[0].item<double>(), sums[1].item<double>(), sums[2].item<double>(), sums[3].item<double>()};
  } else {
    comm_.allreduce_values(fallback, dist::ReduceOp::sum);
  }
  r.samples = std::llround(fallback[0]);
  r.top1_correct = std::llround(fallback[1]);
  r.top5_correct = std::llround(fallback[2]);
  r.loss_sum = fallback[3];
  return r;
}

FitResult Trainer::fit(data::BatchSource& train, data::BatchSource* eval) {
  const int64_t spe = train.batches_per_epoch();
  ensure_setup(spe);
  FitResult result;
  int64_t start = 0;
  if (!opt_.checkpoint.empty()) {
    if (auto e = load_checkpoint(opt_.checkpoint)) {
      start = *e;
      result.resumed_from_epoch = start;
      result.resumed_from_step = global_step_;
      PL_INFO("{}: resumed from {} at epoch {}, batch {} (step {})", opt_.label, opt_.checkpoint.string(), start + 1,
              impl_->resume ? impl_->resume->batch : 0, global_step_);
    }
  }
  const int64_t epochs = opt_.max_steps > 0 ? (opt_.max_steps + spe - 1) / std::max<int64_t>(1, spe) : opt_.train.epochs;
  for (int64_t epoch = start; epoch < epochs; ++epoch) {
    if (opt_.max_steps > 0 && global_step_ >= opt_.max_steps) break;
    EpochStats s = train_epoch(train, epoch);
    if (eval) s.eval = evaluate(*eval);
    history_.push_back(s);
    impl_->position = EpochPosition{epoch + 1, 0, 0, 0, 0, true};
    if (s.eval)
      PL_INFO("{}: epoch {}/{} loss {:.4f} train top-1 {:.2f}% | eval top-1 {:.2f}% top-5 {:.2f}% loss {:.4f} ({} samples) | "
              "{:.0f} img/s, {:.1f} s",
              opt_.label, epoch + 1, epochs, s.train_loss, 100 * s.train_top1, 100 * s.eval->top1(), 100 * s.eval->top5(),
              s.eval->loss(), s.eval->samples, s.images_per_s, s.seconds);
    else
      PL_INFO("{}: epoch {}/{} loss {:.4f} train top-1 {:.2f}% | {:.0f} img/s, {:.1f} s", opt_.label, epoch + 1, epochs,
              s.train_loss, 100 * s.train_top1, s.images_per_s, s.seconds);
    if (on_epoch_) on_epoch_(s);
    bool last = epoch + 1 == epochs || (opt_.max_steps > 0 && global_step_ >= opt_.max_steps);
    const bool epochs_due = opt_.checkpoint_every > 0 && ((epoch + 1) % opt_.checkpoint_every == 0 || last);
    const bool steps_due = opt_.checkpoint_every_steps > 0 && (global_step_ % opt_.checkpoint_every_steps == 0 || last);
    const bool saved = !opt_.checkpoint.empty() && (epochs_due || steps_due);
    if (saved) {
      flush_curves(last && opt_.log_every_steps > 0);  // the checkpoint holds every step's values
      save_checkpoint(opt_.checkpoint);
    }
    if (!last && dist::stop_agreed(comm_)) {
      if (!saved && !opt_.checkpoint.empty()) {
        flush_curves(false);
        save_checkpoint(opt_.checkpoint);
      }
      throw_stopped(opt_, "after epoch " + std::to_string(epoch + 1) + " (step " + std::to_string(global_step_) + ")");
    }
  }
  flush_curves(opt_.log_every_steps > 0);
  if (!opt_.checkpoint.empty() && opt_.remove_checkpoint_when_done) {
    comm_.barrier();
    if (comm_.rank() == 0) std::filesystem::remove(opt_.checkpoint);
  }
  result.epochs = history_;
  result.steps = global_step_;
  result.curves = impl_->curves;
  return result;
}

// --- checkpoints --------------------------------------------------------------------------------

namespace {
const char* kHistoryFields[] = {"epoch", "train_loss", "train_top1", "lr", "seconds", "images_per_s",
                                "eval_samples", "eval_top1", "eval_top5", "eval_loss"};
}

void Trainer::save_checkpoint(const std::filesystem::path& path) {
  PASSLAB_CHECK(setup_, InternalError, "save_checkpoint before training was set up");
  // Every rank's generator states (CPU, and CUDA when used) go to the leader.
  std::vector<c10::Device> devices = {c10::Device(c10::kCPU)};
  if (opt_.device.is_cuda()) devices.push_back(opt_.device);
  std::vector<at::Tensor> rng_all;
  for (auto& d : devices) {
    at::Tensor s = generator_state(d);
    int64_t bytes = s.numel();
    check_same_everywhere(comm_, bytes, "generator state size");
    auto parts = comm_.gather_bytes(std::string(static_cast<const char*>(s.data_ptr()), size_t(bytes)), 0);
    at::Tensor all = at::empty({comm_.size(), bytes}, at::kByte);
    for (size_t r = 0; r < parts.size(); ++r)  // the leader's only: the others get no parts
      std::memcpy(all[int64_t(r)].data_ptr(), parts[r].data(), size_t(bytes));
    rng_all.push_back(all);
  }
  // Written by the leader; a failure (disk full, a folder in the way) is every rank's error.
  dist::on_leader(comm_, [&] {
    io::AtomicWriter w(path);
    auto& root = w.root();
    root.set_attr("kind", "passlab-checkpoint");
    root.set_attr("label", opt_.label);
    const EpochPosition& at = impl_->position;
    root.set_attr("next_epoch", at.epoch);
    root.set_attr("next_batch", at.batch);  // > 0: taken inside next_epoch, after this many batches
    root.set_attr("epoch_loss_sum", at.loss_sum);
    root.set_attr("epoch_samples", at.samples);
    root.set_attr("epoch_correct", at.correct);
    root.set_attr("epoch_have_logits", int64_t(at.have_logits));
    root.set_attr("global_step", global_step_);
    root.set_attr("world_size", int64_t(comm_.size()));
    root.set_attr("optimizer", optimizer_->name());
    root.set_attr("seed", int64_t(opt_.seed));
    NamedTensors model, extra;
    for (auto& [n, t] : synced_tensors()) {
      if (n.rfind("model/", 0) == 0) model.emplace_back(n.substr(6), t);
      else extra.emplace_back(n.substr(10), t);
    }
    auto g = root.create_group("model");
    io::write_tensors(g, model);
    auto gt = root.create_group("trainable");
    io::write_tensors(gt, extra);
    auto go = root.create_group("optimizer");
    io::write_tensors(go, optimizer_->state());
    io::write_tensor(root, "rng_cpu", rng_all[0]);
    if (rng_all.size() > 1) io::write_tensor(root, "rng_cuda", rng_all[1]);
    auto gh = root.create_group("history");
    for (const char* f : kHistoryFields) {
      std::vector<double> v;
      for (auto& s : history_) {
        std::string k = f;
        double x = k == "epoch" ? double(s.epoch) : k == "train_loss" ? s.train_loss : k == "train_top1" ? s.train_top1
                 : k == "lr" ? s.lr : k == "seconds" ? s.seconds : k == "images_per_s" ? s.images_per_s
                 : !s.eval ? NAN : k == "eval_samples" ? double(s.eval->samples) : k == "eval_top1" ? s.eval->top1()
                 : k == "eval_top5" ? s.eval->top5() : s.eval->loss();
        v.push_back(x);
      }
      gh.write<double>(f, v);
    }
    // Step curves (fetched before every checkpoint, so complete up to global_step).
    auto gs = root.create_group("step_curves");
    const auto& curves = impl_->curves;
    gs.set_attr("count", int64_t(curves.names.size()));  // names in order as name_0, name_1, ...
    for (size_t k = 0; k < curves.names.size(); ++k) {
      gs.set_attr("name_" + std::to_string(k), curves.names[k]);
      gs.write<double>(curves.names[k], curves.values[k]);
    }
    w.commit();
  });  // the file is complete before any rank goes on (or reads it)
}

std::optional<int64_t> Trainer::load_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  PASSLAB_CHECK(setup_, InternalError, "load_checkpoint before training was set up");
  io::File f = io::open_complete(path);
  auto& root = f.root();
  int64_t world = root.attr_int("world_size");
  if (world != comm_.size())
    PL_WARN("{}: checkpoint {} was written by {} ranks, resuming on {}: the continuation is not bit-for-bit", opt_.label,
            path.string(), world, comm_.size());
  if (root.attr_string("optimizer") != optimizer_->name())
    throw ConfigError(opt_.label + ": checkpoint " + path.string() + " used optimizer " + root.attr_string("optimizer") +
                      ", this run " + optimizer_->name());
  std::map<std::string, at::Tensor> stored;
  for (auto& [n, t] : io::read_tensors(root.open_group("model"))) stored["model/" + n] = t;
  for (auto& [n, t] : io::read_tensors(root.open_group("trainable"))) stored["trainable/" + n] = t;
  {
    c10::NoGradGuard no_grad;
    for (auto& [n, t] : synced_tensors()) {
      auto it = stored.find(n);
      if (it == stored.end()) throw IOError("checkpoint " + path.string() + " has no tensor " + n);
      if (!it->second.sizes().equals(t.sizes()))
        throw IOError("checkpoint " + path.string() + ": tensor " + n + " has another shape than the model's");
      at::Tensor dst = t;
      dst.copy_(it->second);
    }
  }
  optimizer_->load_state(io::read_tensors(root.open_group("optimizer")));
  if (world == comm_.size()) {
    at::Tensor cpu = io::read_tensor(root, "rng_cpu");
    set_generator_state(c10::Device(c10::kCPU), cpu[comm_.rank()].clone());
    if (opt_.device.is_cuda() && root.has("rng_cuda"))
      set_generator_state(opt_.device, io::read_tensor(root, "rng_cuda")[comm_.rank()].clone());
  }
  global_step_ = root.attr_int("global_step");
  history_.clear();
  auto gh = root.open_group("history");
  std::map<std::string, std::vector<double>> h;
  for (const char* fld : kHistoryFields) h[fld] = gh.read<double>(fld);
  for (size_t i = 0; i < h["epoch"].size(); ++i) {
    EpochStats s;
    s.epoch = int64_t(h["epoch"][i]);
    s.train_loss = h["train_loss"][i];
    s.train_top1 = h["train_top1"][i];
    s.lr = h["lr"][i];
    s.seconds = h["seconds"][i];
    s.images_per_s = h["images_per_s"][i];
    if (!std::isnan(h["eval_samples"][i])) {
      EvalResult e;
      e.samples = std::llround(h["eval_samples"][i]);
      e.top1_correct = std::llround(h["eval_top1"][i] * double(e.samples));
      e.top5_correct = std::llround(h["eval_top5"][i] * double(e.samples));
      e.loss_sum = h["eval_loss"][i] * double(e.samples);
      s.eval = e;
    }
    history_.push_back(s);
  }
  auto& im = *impl_;
  im.curves = StepCurves{};
  im.pending.clear();
  if (root.has("step_curves")) {
    auto gs = root.open_group("step_curves");
    for (int64_t k = 0; k < gs.attr_int("count"); ++k) {
      im.curves.names.push_back(gs.attr_string("name_" + std::to_string(k)));
      im.curves.values.push_back(gs.read<double>(im.curves.names.back()));
    }
  }
  const int64_t next_epoch = root.attr_int("next_epoch");
  im.resume.reset();
  if (root.has_attr("next_batch") && root.attr_int("next_batch") > 0)
    im.resume = EpochPosition{next_epoch,
                              root.attr_int("next_batch"),
                              root.attr_double("epoch_loss_sum"),
                              root.attr_int("epoch_samples"),
                              root.attr_int("epoch_correct"),
                              root.attr_int("epoch_have_logits") != 0};
  im.position = im.resume ? *im.resume : EpochPosition{next_epoch, 0, 0, 0, 0, true};
  return next_epoch;
}

}  // namespace passlab::train
