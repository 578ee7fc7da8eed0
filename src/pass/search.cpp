#include "passlab/pass/search.hpp"

#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "passlab/config/methods.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/tensorio/tensor_h5.hpp"

namespace passlab::pass {

namespace rf = io::run_file;  // the run-file schema's names

bool is_pass_method(const std::string& m) {
  const config::MethodSpec* spec = config::find_method(m);
  return spec && spec->is_pass();
}

HyperNetOptions hyper_options(const config::SearchConfig& s, const std::string& method, int64_t channels) {
  if (!is_pass_method(method)) throw ConfigError("prune.method = \"" + method + "\" is not a PASS method");
  const config::MethodSpec& variant = config::method_spec(method);  // its ablation switches
  HyperNetOptions o;
  o.hidden = s.hidden;
  o.embed = s.embed;
  o.recurrent = s.recurrence == "lstm" && variant.recurrence;
  o.use_stats = s.use_stats && variant.stats;
  o.stats_skip = s.stats_skip && variant.stats;
  o.use_prompt = s.prompt == "pad" && variant.prompt;
  o.prompt_channels = channels;
  o.prompt_pool = s.prompt_pool;
  o.temperature = s.temperature;
  o.cost_input = s.cost_input;
  o.ratio_head = s.ratio_head;
  if (s.ratio_head && s.budget_mode == "projection")
    throw ConfigError("search.ratio_head = true needs search.budget_mode = \"penalty\": the projection shifts per-channel "
                      "scores by their MAC cost, the ratio head has no per-channel threshold to shift");
  return o;
}

int64_t masks_hash(const std::vector<at::Tensor>& masks) {
  std::string bytes;
  for (auto& m : masks) {
    if (!m.defined()) {
      bytes += '|';
      continue;
    }
    auto b = (m.detach().to(torch::kCPU) > 0.5).to(torch::kByte).contiguous();
    bytes.append(reinterpret_cast<const char*>(b.data_ptr<uint8_t>()), static_cast<size_t>(b.numel()));
    bytes += '|';
  }
  return static_cast<int64_t>(hash64(bytes.data(), bytes.size()) >> 1);
}


namespace {
// BatchNorm of the masked forward in batch-statistics mode (search.bn_mode = "batch"): a masked
// network normalised with the dense running statistics is a broken network (at 15 % MACs its CE
// sat at chance for the whole search); with the batch's statistics (over the ghost groups of the
// global batch) it is the network a BatchNorm recalibration would give, so the search ranks
// structures by what they can still compute. BatchNormMode::batch_frozen never touches the
// running statistics, so the teacher's forward and the stored dense model keep them; this puts
// the standard mode back however the search ends.
struct StandardBatchNormOnExit {
  torch::nn::Module& net;
  explicit StandardBatchNormOnExit(torch::nn::Module& n) : net(n) {}
  StandardBatchNormOnExit(const StandardBatchNormOnExit&) = delete;
  StandardBatchNormOnExit& operator=(const StandardBatchNormOnExit&) = delete;
  ~StandardBatchNormOnExit() { models::set_batchnorm_mode(net, models::BatchNormMode::standard); }
};
}  // namespace

double SearchSchedule::target_ratio(int64_t step) const {
  if (anneal_steps <= 0 || step >= anneal_steps) return budget;
  const double done = static_cast<double>(step) / static_cast<double>(anneal_steps);
  return 1.0 - (1.0 - budget) * done;
}

double SearchSchedule::temperature(int64_t step) const {
  if (temperature_end <= 0 || steps <= 1) return temperature_start;
  const double done = std::min(1.0, static_cast<double>(step) / static_cast<double>(steps - 1));
  return temperature_start * std::pow(temperature_end / temperature_start, done);
}

SearchSchedule SearchSchedule::from(const config::Config& cfg) {
  SearchSchedule s;
  s.steps = cfg.search.steps;
  s.budget = cfg.prune.budget;
  s.anneal_steps = static_cast<int64_t>(std::llround(cfg.search.target_anneal * static_cast<double>(cfg.search.steps)));
  s.temperature_start = cfg.search.temperature;
  s.temperature_end = cfg.search.temperature_end;
  return s;
}

double budget_shift(const models::Structure& structure, const std::vector<GroupInput>& groups,
                    const std::vector<at::Tensor>& scores, double target_macs) {
  std::vector<at::Tensor> s;
  std::vector<double> cost;
  double lo = 0, hi = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    s.push_back(scores.at(i).detach().to(torch::kCPU, torch::kDouble));
    cost.push_back(std::exp(groups[i].log_cost));
    lo = std::min(lo, s.back().min().item<double>() / cost.back() - 1.0);
    hi = std::max(hi, s.back().max().item<double>() / cost.back() + 1.0);
  }
  auto macs_at = [&](double shift) {
    auto kept = structure.widths();
    for (size_t i = 0; i < groups.size(); ++i)
      kept[static_cast<size_t>(groups[i].group)] =
          std::max<int64_t>(1, (s[i] > shift * cost[i]).sum().item<int64_t>());
    return static_cast<double>(structure.macs(kept));
  };
  if (macs_at(lo) <= target_macs) return lo;  // every channel fits
  for (int it = 0; it < 60; ++it) {  // invariant: macs_at(lo) > target >= macs_at(hi)
    const double mid = 0.5 * (lo + hi);
    (macs_at(mid) > target_macs ? lo : hi) = mid;
  }
  return hi;
}

at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits) {
  auto log_p_student = torch::log_softmax(student_logits.to(torch::kFloat), 1);
  auto log_p_teacher = torch::log_softmax(teacher_logits.to(torch::kFloat), 1);
  return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean();
}

PassSearch::PassSearch(models::PrunableNetwork& net, const config::Config& cfg, const InputGeometry& input)
    : net_(net), cfg_(cfg), input_(input) {
  prunable_ = net_.structure().prunable(cfg_.prune.prune_residual);
  auto opt = hyper_options(cfg_.search, cfg_.prune.method, input_.channels);
  auto device = net_.parameters().empty() ? torch::Device(torch::kCPU) : net_.parameters().front().device();
  if (opt.use_prompt) {
    int64_t pad = cfg_.search.prompt_pad > 0 ? cfg_.search.prompt_pad : default_prompt_pad(input_.size);
    prompt_ = std::make_shared<VisualPrompt>(input_.channels, input_.size, pad, input_.mean, input_.std);
    prompt_->to(device);
  }
  // Seeded so every rank of a group builds the same initial θ, ω (checked again after search).
  torch::manual_seed(derive_seed(static_cast<uint64_t>(cfg_.experiment.seed), 0x9a55));
  hyper_ = std::make_shared<HyperNetwork>(group_inputs(net_, prunable_, cfg_.search.global_stats), opt);
  hyper_->to(device);
}

void PassSearch::init_from(const std::filesystem::path& run_file) {
  // The sweep's notion of a usable result (io/result_file.hpp): complete, schema-valid, its digest
  // matching, finite; a changed or half-written run file never starts a search.
  io::File f = io::run_file::open_usable(run_file);
  const auto& root = f.root();
  std::string arch = root.has_attr(rf::kArch) ? root.attr_string(rf::kArch) : "?";
  if (arch != cfg_.model.arch)
    throw ConfigError("search.init_from = \"" + run_file.string() + "\": run of arch " + arch + ", this task is " + cfg_.model.arch);
  if (!root.has(rf::kHypernet))
    throw ConfigError("search.init_from = \"" + run_file.string() + "\" holds no /hypernet (not a PASS run)");
  auto load = [&](torch::nn::Module& m, const std::string& group) {
    auto g = root.open_group(group);
    torch::NoGradGuard ng;
    for (auto& kv : m.named_parameters()) {
      if (!g.has(kv.key()))
        throw ConfigError("search.init_from = \"" + run_file.string() + "\": /" + group + "/" + kv.key() +
                          " is missing (different method or hypernetwork size)");
      auto t = io::read_tensor(g, kv.key());
      if (t.sizes() != kv.value().sizes())
        throw ConfigError("search.init_from = \"" + run_file.string() + "\": /" + group + "/" + kv.key() +
                          " has another shape (different architecture width or hypernetwork size)");
      kv.value().copy_(t.to(kv.value().options()));
    }
  };
  load(*hyper_, rf::kHypernet);
  if (prompt_) {
    if (!root.has(rf::kPrompt)) throw ConfigError("search.init_from = \"" + run_file.string() + "\" holds no /prompt");
    load(*prompt_, rf::kPrompt);
  }
  PL_INFO("PASS: hypernetwork{} initialised from {}", prompt_ ? " and prompt" : "", run_file.string());
}

train::TrainerOptions PassSearch::trainer_options(const config::Config& cfg, c10::Device device, std::string label,
                                                  std::filesystem::path checkpoint) {
  config::TrainConfig t;
  t.optimizer = "adam";
  t.lr = cfg.search.lr;
  t.weight_decay = cfg.search.weight_decay;
  t.schedule = "constant";
  t.warmup_epochs = 0;
  t.label_smoothing = 0;
  t.batch_size = cfg.search.batch_size;
  t.precision = cfg.dense.precision;  // the search runs the dense backbone
  auto o = train::TrainerOptions::from(t, cfg.dist, cfg.output, device, std::move(label),
                                       static_cast<uint64_t>(cfg.experiment.seed), std::move(checkpoint));
  o.max_steps = cfg.search.steps;
  o.checkpoint_every = 0;  // by steps only: a search is usually shorter than an epoch
  o.checkpoint_every_steps = cfg.search.checkpoint_every_steps;
  // Kept after the search: a task killed later (fine-tuning) restores the finished search from it
  // instead of searching again. The prune task removes its work directory once its file is written.
  o.remove_checkpoint_when_done = false;
  o.set_train_mode = false;  // run() sets the BatchNorms (search.bn_mode)
  // Batch statistics over ghost groups of the global batch: the same search on any rank count.
  o.bn_group = config::ghost_group(cfg.model.ghost_batch, cfg.search.batch_size);
  o.frozen_model = true;
  o.step_curves = true;
  o.log_every_steps = cfg.search.log_every;
  return o;
}

SearchCurves PassSearch::run(data::BatchSource& train, dist::Communicator& comm, const train::TrainerOptions& options) {
  const auto& s = cfg_.search;
  net_.eval();
  for (auto& p : net_.parameters()) p.set_requires_grad(false);
  SearchCurves curves;
  if (options.max_steps <= 0) return curves;  // no search: the initial hypernetwork decides
  train::NamedTensors trainable;
  for (auto& kv : hyper_->named_parameters())
    if (kv.value().requires_grad()) trainable.emplace_back("hypernet." + kv.key(), kv.value());
  if (prompt_)
    for (auto& kv : prompt_->named_parameters())
      if (kv.value().requires_grad()) trainable.emplace_back("prompt." + kv.key(), kv.value());
  train::Trainer trainer(net_, comm, options);
  trainer.set_trainable(std::move(trainable));  // every rank starts from the leader's θ, ω, V
  const double dense_macs = static_cast<double>(net_.structure().count().macs);
  const auto schedule = SearchSchedule::from(cfg_);
  const bool batch_stats = s.bn_mode == "batch";
  StandardBatchNormOnExit standard_bn{net_};
  auto set_bn = [&](models::BatchNormMode mode) {
    if (batch_stats) models::set_batchnorm_mode(net_, mode);
  };
  trainer.set_step([&](const data::Batch& b) {
    const int64_t step = trainer.global_step();
    hyper_->set_temperature(schedule.temperature(step));
    at::Tensor teacher;
    if (s.distill > 0) {  // the dense network as it is: no masks, running statistics, no prompt
      torch::NoGradGuard ng;
      net_.clear_masks();
      set_bn(models::BatchNormMode::standard);
      teacher = net_.forward(b.images).detach();
    }
    const double target = schedule.target_ratio(step);
    auto out = forward_at(target);
    net_.set_masks(hyper_->full_masks(out.masks, net_.num_groups()));
    set_bn(models::BatchNormMode::batch_frozen);
    auto logits = net_.forward(prompt_ ? prompt_->forward(b.images) : b.images);
    auto ce = train::cross_entropy(logits, b.labels);
    auto task = ce;
    if (s.distill > 0) task = (1.0 - s.distill) * ce + s.distill * distillation_loss(logits, teacher).to(ce.scalar_type());
    auto macs = net_.masked_macs().to(ce.scalar_type());  // fp32 also under bf16 autocast
    auto bt = budget_loss(macs, target * dense_macs, s.flops_loss);
    // Under projection the masks meet the target by construction: the term is only recorded.
    const double lambda = s.budget_mode == "projection" ? 0.0 : s.lambda;
    train::StepOutput out_step{task + lambda * bt, logits, {}};
    out_step.values = {{"ce", ce.detach()},
                       {"budget_term", bt.detach()},
                       {"mac_ratio", macs.detach().to(torch::kDouble) / dense_macs},
                       {"target_ratio", torch::full({}, target, torch::kDouble)}};
    return out_step;
  });
  auto fit = trainer.fit(train);
  set_bn(models::BatchNormMode::standard);
  hyper_->set_temperature(schedule.temperature(options.max_steps));
  net_.clear_masks();
  // Identical masks on every rank of the group (checked, not assumed).
  if (comm.size() > 1) {
    auto hashes = comm.allgather(masks_hash(masks()));
    for (auto h : hashes)
      if (h != hashes.front()) throw DistError("PASS search: ranks of the run group ended with different masks");
  }
  curves.loss = fit.curves.get("loss");
  curves.ce = fit.curves.get("ce");
  curves.budget_term = fit.curves.get("budget_term");
  curves.mac_ratio = fit.curves.get("mac_ratio");
  curves.target_ratio = fit.curves.get("target_ratio");
  curves.resumed_from_step = fit.resumed_from_step;
  return curves;
}

HyperOutput PassSearch::forward_at(double target_ratio) {
  const auto prompt_image = [&] { return prompt_ ? prompt_->image() : at::Tensor(); };
  if (cfg_.search.budget_mode != "projection") return hyper_->forward(prompt_image());
  const double target_macs = target_ratio * static_cast<double>(net_.structure().count().macs);
  const auto& groups = hyper_->groups();
  hyper_->set_cost_shift(0);
  {
    torch::NoGradGuard ng;
    auto first = hyper_->forward(prompt_image());
    hyper_->set_cost_shift(budget_shift(net_.structure(), groups, first.scores, target_macs));
  }
  // The auto-regressive keep ratios of this pass follow the first pass's shift; the correction
  // makes the masks meet the target whatever that changed.
  auto out = hyper_->forward(prompt_image());
  const double correction = budget_shift(net_.structure(), groups, out.scores, target_macs);
  for (size_t i = 0; i < groups.size(); ++i) {
    out.scores[i] = out.scores[i] - correction * std::exp(groups[i].log_cost);
    out.soft[i] = torch::sigmoid(out.scores[i] / hyper_->options().temperature);
    out.masks[i] = straight_through_mask(out.scores[i], hyper_->options().temperature);
  }
  hyper_->set_cost_shift(hyper_->cost_shift() + correction);
  return out;
}

prune::GroupScores PassSearch::scores() {
  torch::NoGradGuard ng;
  auto out = forward_at(cfg_.prune.budget);
  prune::GroupScores scores(static_cast<size_t>(net_.num_groups()));
  const auto& groups = hyper_->groups();
  for (size_t i = 0; i < groups.size(); ++i)
    scores[static_cast<size_t>(groups[i].group)] = out.scores[i].detach().to(torch::kCPU, torch::kDouble);
  return scores;
}

std::vector<at::Tensor> PassSearch::masks() {
  torch::NoGradGuard ng;
  auto out = forward_at(cfg_.prune.budget);
  return hyper_->full_masks(out.masks, net_.num_groups());
}

prune::Allocation PassSearch::allocate() {
  auto opt = prune::allocation_options(cfg_.prune);
  // The hypernetwork's scores are logits with a shared threshold (0): rank them as they are.
  opt.normalization = prune::Normalization::none;
  return prune::allocate_global(net_.structure(), scores(), opt);
}

void PassSearch::save(io::Group& root) const {
  auto h = root.create_group(rf::kHypernet);
  for (auto& kv : hyper_->named_parameters()) io::write_tensor(h, kv.key(), kv.value());
  if (prompt_) {
    auto p = root.create_group(rf::kPrompt);
    for (auto& kv : prompt_->named_parameters()) io::write_tensor(p, kv.key(), kv.value());
    io::write_tensor(p, rf::kPromptImage, prompt_->image());
  }
}

}  // namespace passlab::pass
