#pragma once
// passlab's experiment configuration: typed structs with defaults, loaded from TOML and
// validated against one declarative schema (config/schema.hpp) that also produces the
// canonical TOML, the run ids and docs/config.md. No LibTorch here: the fuzzer links this.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace passlab::config {

struct ExperimentConfig {
  std::string name = "passlab";
  std::string description;
  int64_t seed = 0;
};

struct DataConfig {
  std::string dataset = "fashion_mnist";
  std::string store;          // HDF5 store; empty: <root>/<dataset>.h5
  std::string root = "data";  // directory of stores
  double val_fraction = 0.1;  // held out of train for validation (tuning never reads test)
  int64_t input_size = 0;     // 0: the store's resolution
  std::string augment = "auto";
  int64_t crop_padding = 4;
  int64_t loader_threads = 2;
  int64_t prefetch_batches = 4;
  int64_t limit_train = 0;  // 0: all; else the first N training images (smoke runs, tests)
  int64_t limit_test = 0;
  // Input normalisation: dataset (this store's train mean/std), source (the statistics recorded
  // with the model.pretrained file), imagenet (torchvision's ImageNet mean/std).
  std::string normalize = "dataset";
};

struct ModelConfig {
  std::string arch = "resnet20";
  std::string stem = "auto";
  // Weights to start the dense model from: a torchvision export (analysis/export_torchvision.py),
  // a passlab dense file, or a run file (the dense file it was pruned from); pipeline/pretrained.hpp.
  std::string pretrained;
  // Training BatchNorm statistics are taken over groups of this many consecutive samples of the
  // global batch (ghost batches), so they do not depend on how the batch is split over ranks.
  int64_t ghost_batch = 32;
};

// Samples per BatchNorm statistics group of a stage whose global batch is `batch_size`: the
// ghost batch, or the whole batch when it is smaller (one group).
inline int64_t ghost_group(int64_t ghost_batch, int64_t batch_size) {
  return ghost_batch < batch_size ? ghost_batch : batch_size;
}

// One data-parallel training stage: [dense] and [finetune].
struct TrainConfig {
  int64_t epochs = 15;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 256;
  std::string optimizer = "sgd";
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 5e-4;
  std::string schedule = "cosine";
  double warmup_epochs = 0.0;
  std::vector<int64_t> milestones;  // epochs, for schedule = "step"
  double gamma = 0.1;
  double label_smoothing = 0.0;
  std::string precision = "fp32";
};

// [dense]: what the dense stage trains (the transfer regime, docs/transfer.md): everything
// (full), only the classifier on the frozen pretrained backbone (head), or head_epochs of the
// head alone followed by epochs of everything (head_then_full).
struct DenseConfig : TrainConfig {
  std::string mode = "full";
  int64_t head_epochs = 0;  // head_then_full: epochs of the head phase
};

struct FinetuneConfig : TrainConfig {
  bool keep_prompt = false;
  FinetuneConfig() {
    epochs = 3;
    lr = 0.01;
  }
};

// The regularisation phase of the methods that sparsify a copy of the dense model before their
// criterion ranks it (config/methods.hpp: depgraph, growreg): its training (the [dense] keys) and
// the regularisers' coefficients, as Torch-Pruning 1.6's GroupNormPruner and GrowingRegPruner
// (prune/regularise.hpp).
struct RegulariseConfig : TrainConfig {
  double depgraph_reg = 1e-4;    // GroupNormPruner reg
  double depgraph_alpha = 16.0;  // GroupNormPruner.regularize alpha (2^4): the weakest channel's penalty multiple
  double growreg_reg = 0.0;      // penalty of the removed channels at step 0
  double growreg_delta = 1e-4;   // added every growreg_interval steps
  int64_t growreg_interval = 10;
  double growreg_cap = 1.0;      // the penalty stops growing here
  RegulariseConfig() {
    epochs = 3;
    lr = 0.01;
  }
};

struct SearchConfig {
  int64_t steps = 200;
  int64_t batch_size = 128;
  double lr = 1e-3;
  double weight_decay = 0.0;
  std::string prompt = "pad";
  int64_t prompt_pad = 0;  // 0: max(2, round(size/14))
  int64_t prompt_pool = 8;
  int64_t hidden = 128;
  int64_t embed = 32;
  std::string recurrence = "lstm";
  bool use_stats = true;
  bool stats_skip = true;
  double temperature = 1.0;
  double lambda = 2.0;
  std::string flops_loss = "squared";
  // What the search optimises (docs/method.md): BatchNorm statistics of the masked forward,
  // distillation from the dense network, schedules of the MAC target and of tau.
  // Defaults from validation-only tuning (docs/method.md, README "Tuning").
  std::string bn_mode = "batch";  // eval: running statistics; batch: the batch's (running ones untouched)
  double distill = 0.5;           // weight of KL(dense || masked) in the task loss, the rest is CE
  double target_anneal = 0.5;     // fraction of the steps over which the MAC target falls from 1 to the budget
  double temperature_end = 0.0;  // > 0: tau decays geometrically from temperature to this by the last step
  // penalty: lambda * flops_loss pulls the MACs to the target; projection: every step's masks are
  // shifted by one multiplier of each channel's MAC cost until they meet the target exactly.
  std::string budget_mode = "penalty";
  // What the hypernetwork sees: each group's true per-channel MAC cost, statistics that keep
  // their scale across layers.
  bool cost_input = false;
  bool global_stats = false;
  // The hypernetwork emits each group's keep ratio and ranks channels inside the group (the
  // abstract's layer-wise channel sparsity) instead of one score per channel ranked globally.
  bool ratio_head = false;
  std::string init_from;
  int64_t taylor_batches = 8;
  int64_t log_every = 10;
  int64_t checkpoint_every_steps = 50;  // 0: no search checkpoint
};

struct PruneConfig {
  std::string method = "pass";
  double budget = 0.5;  // fraction of dense MACs kept
  double flops_tolerance = 0.005;
  int64_t min_keep_channels = 1;
  double min_keep_fraction = 0.05;
  int64_t round_to = 1;
  // Residual ties (ResNets, MobileNetV2) are pruned too: without them only the inner convolutions
  // of a ResNet lose channels, a space where uniform allocation is already strong (issue 17).
  bool prune_residual = true;
};

// The speed-up measurement (prune/speedup.hpp): latency_warmup and latency_repeats are the
// warm-up floor and the interleaved rounds; the keys after them only shape the measurement, not
// the network, and are outside the run id. probe_batches sizes the structure probe
// (pipeline/probe.hpp): it reads the plan and touches no stage's numbers, so it is outside too.
struct EvalConfig {
  int64_t latency_batch = 32;
  int64_t latency_warmup = 3;
  int64_t latency_repeats = 10;
  int64_t latency_warmup_max = 30;
  double latency_warmup_tolerance = 0.10;
  double speedup_max_spread = 0.10;
  double latency_round_ms = 20.0;  // each round: back-to-back passes filling this long (0: one pass)
  int64_t probe_batches = 20;  // 0: no probe
  std::string latency_form = "folded";  // prune::InferenceForm: training | folded | folded_channels_last
};

// One include/exclude entry of [sweep]: unset fields match anything.
struct SweepFilter {
  std::optional<std::string> arch, dataset, method;
  std::optional<double> budget;
  std::optional<int64_t> seed;
  bool operator==(const SweepFilter&) const = default;
};

struct SweepConfig {
  // Empty axes take the single value of the base config (model.arch, data.dataset, ...).
  std::vector<std::string> archs, datasets, methods;
  std::vector<double> budgets;
  std::vector<int64_t> seeds;
  std::vector<SweepFilter> include, exclude;
  int64_t max_retries = 1;
  double heartbeat_timeout_s = 300.0;
};

struct DistConfig {
  std::string backend = "auto";
  int64_t ranks_per_run = 1;
  double bucket_mib = 25.0;
  double first_bucket_mib = 1.0;
  int64_t threads_per_rank = 0;  // 0: cores / local ranks
  std::string device = "auto";
  double timeout_s = 600.0;
};

struct OutputConfig {
  std::string dir = "results";
  std::string log_level = "info";
  std::string progress = "auto";
  bool save_weights = true;
  int64_t checkpoint_every = 1;
};

struct Config {
  ExperimentConfig experiment;
  DataConfig data;
  ModelConfig model;
  DenseConfig dense;
  SearchConfig search;
  PruneConfig prune;
  RegulariseConfig regularise;
  FinetuneConfig finetune;
  EvalConfig eval;
  SweepConfig sweep;
  DistConfig dist;
  OutputConfig output;

  // Where it came from (for messages and provenance); not part of the schema.
  std::string source = "<defaults>";
  std::string resolved_store() const;  // data.store or <data.root>/<data.dataset>.h5
};

// Loads and validates a TOML file, applying `--set key.path=value` overrides (in order) first.
// Throws ConfigError naming file, line, key path, value and what is allowed.
Config load_file(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});
// Same, from text (`source` names it in messages).
Config load_string(const std::string& text, const std::string& source, const std::vector<std::string>& overrides = {});

// Which keys a rendering or hash covers.
enum class Scope {
  all,    // every key
  run,    // keys that determine a prune task's result (no output/dist/sweep/provenance)
  dense,  // keys that determine its dense model (experiment.seed, data, model, dense)
};

// Canonical TOML: every key (defaults included), sections and keys sorted, fixed formatting.
std::string to_toml(const Config& cfg, Scope scope = Scope::all);
// Short stable id: hash of to_toml(cfg, scope). Formatting and key order of the source do not
// change it; any change of a value inside the scope does.
std::string run_id(const Config& cfg);
std::string dense_id(const Config& cfg);

// Expands [sweep] into one task config per (arch, dataset, budget, method, seed) after
// include/exclude filters, in a stable order. Each task's axes are written into
// model.arch, data.dataset, prune.budget, prune.method, experiment.seed, and its sweep
// section is cleared.
std::vector<Config> expand_tasks(const Config& cfg);

// The names accepted for enumerated keys (shared with modules that implement them).
const std::vector<std::string>& known_archs();
const std::vector<std::string>& known_methods();

}  // namespace passlab::config
