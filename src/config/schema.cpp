#include "passlab/config/schema.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "passlab/config/methods.hpp"

namespace passlab::config {

const char* to_string(Kind k) {
  switch (k) {
    case Kind::boolean: return "boolean";
    case Kind::integer: return "integer";
    case Kind::real: return "float";
    case Kind::string: return "string";
    case Kind::int_list: return "array of integers";
    case Kind::real_list: return "array of floats";
    case Kind::string_list: return "array of strings";
    case Kind::filter_list: return "array of tables";
  }
  return "?";
}

const std::vector<std::string>& known_archs() {
  static const std::vector<std::string> v = {"resnet18", "resnet34", "resnet50",  "resnet20",    "resnet56",
                                             "vgg11_bn", "vgg16_bn", "vgg19_bn", "mobilenet_v2"};
  return v;
}

namespace {

template <class T> constexpr Kind kind_of();
template <> constexpr Kind kind_of<bool>() { return Kind::boolean; }
template <> constexpr Kind kind_of<int64_t>() { return Kind::integer; }
template <> constexpr Kind kind_of<double>() { return Kind::real; }
template <> constexpr Kind kind_of<std::string>() { return Kind::string; }
template <> constexpr Kind kind_of<std::vector<int64_t>>() { return Kind::int_list; }
template <> constexpr Kind kind_of<std::vector<double>>() { return Kind::real_list; }
template <> constexpr Kind kind_of<std::vector<std::string>>() { return Kind::string_list; }
template <> constexpr Kind kind_of<std::vector<SweepFilter>>() { return Kind::filter_list; }

// Builder for one field bound to cfg.<section>.<member>.
template <class S, class B, class T>
FieldSpec bind(const char* section, const char* key, S Config::*sec, T B::*mem, const char* doc) {
  FieldSpec f;
  f.section = section;
  f.key = key;
  f.kind = kind_of<T>();
  f.doc = doc;
  f.get = [sec, mem](const Config& c) -> Value { return Value(static_cast<const B&>(c.*sec).*mem); };
  f.set = [sec, mem](Config& c, const Value& v) { static_cast<B&>(c.*sec).*mem = std::get<T>(v); };
  return f;
}

struct Builder {
  std::vector<FieldSpec> out;
  FieldSpec& add(FieldSpec f) {
    out.push_back(std::move(f));
    return out.back();
  }
};

// Upper bounds no real run reaches: a value past them is a typo or an overflow probe (an epoch
// count of 2^63-1 would train forever), so it is refused up front rather than run.
constexpr double kMaxEpochs = 100000;                // dense/finetune epochs, milestones, checkpoint_every
constexpr double kMaxBatch = 1 << 20;                // any batch size
constexpr double kMaxSteps = 1e8;                    // search steps and step intervals
constexpr double kMaxImages = 1e10;                  // limit_train / limit_test
constexpr double kMaxTimeoutS = 7 * 24 * 3600;       // one week, any timeout in seconds
constexpr double kMaxBucketMiB = 65536;              // 64 GiB all-reduce bucket
constexpr double kMaxCount = 1 << 20;                // ranks, channels, repeats and other counts

FieldSpec& range(FieldSpec& f, std::optional<double> lo, std::optional<double> hi, bool lo_ex = false, bool hi_ex = false) {
  f.min = lo;
  f.max = hi;
  f.min_exclusive = lo_ex;
  f.max_exclusive = hi_ex;
  return f;
}
FieldSpec& choices(FieldSpec& f, std::vector<std::string> c) {
  f.choices = std::move(c);
  return f;
}

// The TrainConfig keys of a training section: [dense], [finetune], [regularise].
template <class Section>
void add_train(Builder& b, const char* s, Section Config::*sec) {
  auto add = [&](auto mem, const char* key, const char* doc) -> FieldSpec& { return b.add(bind(s, key, sec, mem, doc)); };
  range(add(&TrainConfig::epochs, "epochs", "Training epochs."), 0, kMaxEpochs);
  range(add(&TrainConfig::batch_size, "batch_size", "Global batch size (split over the ranks of a run group)."), 1, kMaxBatch);
  range(add(&TrainConfig::eval_batch_size, "eval_batch_size", "Global batch size for evaluation."), 1, kMaxBatch);
  choices(add(&TrainConfig::optimizer, "optimizer", "Optimizer."), {"sgd", "adam"});
  range(add(&TrainConfig::lr, "lr", "Peak learning rate."), 0, std::nullopt, true);
  range(add(&TrainConfig::momentum, "momentum", "SGD momentum (Adam: beta1)."), 0, 1, false, true);
  add(&TrainConfig::nesterov, "nesterov", "Nesterov momentum (SGD).");
  range(add(&TrainConfig::weight_decay, "weight_decay", "L2 weight decay."), 0, std::nullopt);
  choices(add(&TrainConfig::schedule, "schedule", "Learning-rate schedule after warm-up."), {"cosine", "step", "constant"});
  range(add(&TrainConfig::warmup_epochs, "warmup_epochs", "Linear warm-up length in epochs (fractions allowed)."), 0, kMaxEpochs);
  range(add(&TrainConfig::milestones, "milestones", "Epochs at which schedule = \"step\" multiplies the rate by gamma."), 1, kMaxEpochs);
  range(add(&TrainConfig::gamma, "gamma", "Step-schedule factor."), 0, 1, true, false);
  range(add(&TrainConfig::label_smoothing, "label_smoothing", "Label smoothing of the cross-entropy."), 0, 1, false, true);
  choices(add(&TrainConfig::precision, "precision", "Arithmetic: fp32, or bf16 autocast (GPU only; CPU runs fp32)."), {"fp32", "bf16"});
}

std::vector<FieldSpec> make_fields() {
  Builder b;
  auto& e = b;
  // [experiment]
  e.add(bind("experiment", "name", &Config::experiment, &ExperimentConfig::name, "Name of the experiment (provenance only).")).in_run = false;
  e.add(bind("experiment", "description", &Config::experiment, &ExperimentConfig::description, "Free text (provenance only).")).in_run = false;
  {
    auto& f = range(e.add(bind("experiment", "seed", &Config::experiment, &ExperimentConfig::seed,
                               "Seed of everything random in a run (sweep.seeds overrides it per task).")), 0, std::nullopt);
    f.in_dense = true;
  }
  // [data]
  auto data = [&](auto mem, const char* key, const char* doc, bool identity = true) -> FieldSpec& {
    FieldSpec& f = e.add(bind("data", key, &Config::data, mem, doc));
    f.in_run = identity;
    f.in_dense = identity;
    return f;
  };
  data(&DataConfig::dataset, "dataset", "Dataset name (sweep.datasets overrides it); selects <root>/<dataset>.h5.");
  data(&DataConfig::store, "store", "HDF5 store written by `passlab prepare`; empty: <root>/<dataset>.h5.", false);
  data(&DataConfig::root, "root", "Directory holding the dataset stores.", false);
  range(data(&DataConfig::val_fraction, "val_fraction", "Fraction of train held out as validation split (tuning never reads test)."), 0, 0.5, false, false);
  range(data(&DataConfig::input_size, "input_size", "Training/eval resolution; 0 keeps the store's."), 0, 1024);
  choices(data(&DataConfig::augment, "augment", "Train augmentation: auto (crop_flip below 64 px, rrc_flip above), none, crop_flip, rrc_flip."),
          {"auto", "none", "crop_flip", "rrc_flip"});
  range(data(&DataConfig::crop_padding, "crop_padding", "Zero padding of the random crop (crop_flip)."), 0, 64);
  range(data(&DataConfig::loader_threads, "loader_threads", "Loader worker threads per rank.", false), 1, 64);
  range(data(&DataConfig::prefetch_batches, "prefetch_batches", "Batches prepared ahead per rank.", false), 1, 256);
  range(data(&DataConfig::limit_train, "limit_train", "Use only the first N training images (0: all); smoke runs and tests."), 0, kMaxImages);
  range(data(&DataConfig::limit_test, "limit_test", "Use only the first N test images (0: all)."), 0, kMaxImages);
  {
    auto& f = choices(data(&DataConfig::normalize, "normalize",
                           "Input normalisation: dataset (the store's train mean/std), source (the mean/std recorded in the "
                           "model.pretrained file: a passlab dense or run file's /normalization, ImageNet's for a torchvision export), "
                           "imagenet (torchvision's ImageNet mean/std). The values used are recorded in /normalization of dense and run files."),
                      {"dataset", "source", "imagenet"});
    f.id_when_set = true;
  }
  // [model]
  auto model = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    FieldSpec& f = e.add(bind("model", key, &Config::model, mem, doc));
    f.in_dense = true;
    return f;
  };
  choices(model(&ModelConfig::arch, "arch", "Architecture (sweep.archs overrides it)."), known_archs());
  choices(model(&ModelConfig::stem, "stem", "ResNet stem: cifar (3x3, no max-pool), imagenet (7x7 + max-pool), auto (cifar below 64 px)."),
          {"auto", "cifar", "imagenet"});
  range(model(&ModelConfig::ghost_batch, "ghost_batch",
              "BatchNorm statistics in training are taken over groups of this many consecutive samples of the global batch "
              "(ghost batches; the whole batch when it is smaller), so results do not depend on the number of ranks. "
              "dense, finetune and search batch sizes must be multiples of it, and every rank of a run group gets at least one group."),
        1, kMaxBatch);
  model(&ModelConfig::pretrained, "pretrained",
        "Weights to start the dense model from: a torchvision export (analysis/export_torchvision.py), a passlab dense "
        "file, or a passlab run file (then the dense file it was pruned from, <results>/dense/<dense_id>.h5 beside its "
        "runs/ directory); the head is replaced when class counts differ. \"{arch}\" is replaced by each task's "
        "architecture (e.g. \"weights/{arch}_imagenet.h5\").");
  // [dense], [finetune]
  size_t before = b.out.size();
  add_train(b, "dense", &Config::dense);
  {
    auto dense = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
      FieldSpec& f = e.add(bind("dense", key, &Config::dense, mem, doc));
      f.id_when_set = true;
      return f;
    };
    choices(dense(&DenseConfig::mode, "mode",
                  "What the dense stage trains: full (every parameter), head (only the classifier, on the frozen "
                  "model.pretrained backbone in eval mode: its BatchNorm statistics untouched), head_then_full "
                  "(dense.head_epochs of the head alone, then dense.epochs of everything). head and head_then_full need "
                  "model.pretrained."),
            {"full", "head", "head_then_full"});
    range(dense(&DenseConfig::head_epochs, "head_epochs", "Epochs of the head phase of dense.mode = head_then_full (0 otherwise)."),
          0, kMaxEpochs);
  }
  for (size_t i = before; i < b.out.size(); ++i) b.out[i].in_dense = true;
  add_train(b, "finetune", &Config::finetune);
  e.add(bind("finetune", "keep_prompt", &Config::finetune, &FinetuneConfig::keep_prompt,
             "Keep the learned visual prompt on the input of the pruned network and fine-tune it too."));
  // [search]
  auto search = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    return e.add(bind("search", key, &Config::search, mem, doc));
  };
  range(search(&SearchConfig::steps, "steps", "Optimisation steps of the mask search (PASS)."), 0, kMaxSteps);
  range(search(&SearchConfig::batch_size, "batch_size", "Global batch size of the search."), 1, kMaxBatch);
  range(search(&SearchConfig::lr, "lr", "Adam learning rate of hypernetwork, prompt encoder and prompt."), 0, std::nullopt, true);
  range(search(&SearchConfig::weight_decay, "weight_decay", "Adam weight decay of the search parameters."), 0, std::nullopt);
  choices(search(&SearchConfig::prompt, "prompt", "Visual prompt: pad (learnable border), none."), {"pad", "none"});
  range(search(&SearchConfig::prompt_pad, "prompt_pad", "Prompt border width in pixels; 0: max(2, round(size/14))."), 0, 512);
  range(search(&SearchConfig::prompt_pool, "prompt_pool", "Prompt encoder: side of the average-pooled prompt fed to its MLP."), 1, 64);
  range(search(&SearchConfig::hidden, "hidden", "LSTM hidden size."), 1, 4096);
  range(search(&SearchConfig::embed, "embed", "Width of the per-channel weight-statistics embedding."), 1, 4096);
  choices(search(&SearchConfig::recurrence, "recurrence", "Hypernetwork over groups: lstm, or mlp (per-group, no recurrence)."), {"lstm", "mlp"});
  search(&SearchConfig::use_stats, "use_stats", "Feed per-layer weight statistics to the hypernetwork.");
  search(&SearchConfig::stats_skip, "stats_skip", "Add the learned multiple of the standardised channel magnitude to the scores.");
  range(search(&SearchConfig::temperature, "temperature", "Sigmoid temperature tau of the straight-through masks."), 0, std::nullopt, true);
  range(search(&SearchConfig::lambda, "lambda", "Weight of the MAC-budget loss."), 0, std::nullopt);
  choices(search(&SearchConfig::flops_loss, "flops_loss", "Form of the budget loss: squared (F/F*-1)^2, abs |F/F*-1|, hinge max(0, F/F*-1)^2."),
          {"squared", "abs", "hinge"});
  choices(search(&SearchConfig::bn_mode, "bn_mode",
                 "BatchNorm of the masked forward in the search: eval (the dense model's running statistics) or batch "
                 "(the batch's statistics, as after recalibration; running statistics are left untouched)."),
          {"eval", "batch"});
  range(search(&SearchConfig::distill, "distill",
               "Weight d of distillation from the dense network: task loss (1-d) CE + d KL(dense || masked)."),
        0, 1);
  range(search(&SearchConfig::target_anneal, "target_anneal",
               "Fraction of the search steps over which the MAC target falls linearly from the dense MACs to the budget; 0: the budget from the start."),
        0, 1);
  range(search(&SearchConfig::temperature_end, "temperature_end",
               "> 0: tau decays geometrically from search.temperature to this value by the last step; 0: constant tau."),
        0, std::nullopt);
  choices(search(&SearchConfig::budget_mode, "budget_mode",
                 "How the search meets the MAC target: penalty (lambda times flops_loss in the loss) or projection (each step's "
                 "masks keep channels with score > mu * their MAC cost, mu chosen so they meet the target exactly; no budget term)."),
          {"penalty", "projection"});
  search(&SearchConfig::cost_input, "cost_input",
         "Feed each group's true MAC cost per channel (its producer and its consumers, relative to the mean group) to the hypernetwork.");
  search(&SearchConfig::global_stats, "global_stats",
         "Standardise the weight statistics over all prunable channels (keeping cross-layer scale, per-weight norms) instead of within each layer.");
  {
    auto& f = search(&SearchConfig::ratio_head, "ratio_head",
           "The hypernetwork emits each group's keep ratio (a sigmoid head on its state) and ranks the group's channels by their "
           "scores; the compact network keeps each group's top ratio x width channels, the ratios shifted together in logit "
           "space to meet the budget. Not with budget_mode = \"projection\".");
    f.id_when_set = true;  // added after the Fashion-MNIST table run started: its ids stay
  }
  search(&SearchConfig::init_from, "init_from", "Run file whose hypernetwork, prompt encoder and prompt start the search (transfer).");
  range(search(&SearchConfig::taylor_batches, "taylor_batches", "Data batches for the taylor_global criterion."), 1, kMaxCount);
  range(search(&SearchConfig::log_every, "log_every", "Log search progress every N steps."), 1, kMaxSteps).in_run = false;
  range(search(&SearchConfig::checkpoint_every_steps, "checkpoint_every_steps",
               "Checkpoint the search every N steps (a preempted prune task resumes its search there); 0: never."),
        0, kMaxSteps)
      .in_run = false;
  // [regularise]
  add_train(b, "regularise", &Config::regularise);
  auto reg = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    return e.add(bind("regularise", key, &Config::regularise, mem, doc));
  };
  range(reg(&RegulariseConfig::depgraph_reg, "depgraph_reg",
            "depgraph: coefficient of the group-norm regulariser (Torch-Pruning GroupNormPruner reg)."),
        0, std::nullopt);
  range(reg(&RegulariseConfig::depgraph_alpha, "depgraph_alpha",
            "depgraph: a group's weakest channel is penalised alpha times its strongest, "
            "alpha^((max-n)/(max-min)) in between (GroupNormPruner.regularize alpha)."),
        1, std::nullopt);
  range(reg(&RegulariseConfig::growreg_reg, "growreg_reg", "growreg: L2 coefficient of the removed channels at the first step."),
        0, std::nullopt);
  range(reg(&RegulariseConfig::growreg_delta, "growreg_delta",
            "growreg: added to the coefficient every growreg_interval steps (GrowingRegPruner delta_reg)."),
        0, std::nullopt);
  range(reg(&RegulariseConfig::growreg_interval, "growreg_interval", "growreg: steps between two increments of the coefficient."),
        1, kMaxSteps);
  range(reg(&RegulariseConfig::growreg_cap, "growreg_cap", "growreg: the coefficient grows up to this value, then stays."),
        0, std::nullopt);
  // [prune]
  auto prune = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    return e.add(bind("prune", key, &Config::prune, mem, doc));
  };
  choices(prune(&PruneConfig::method, "method", "Pruning method (sweep.methods overrides it); the registered methods are listed under Methods below."), known_methods());
  range(prune(&PruneConfig::budget, "budget", "Fraction of the dense MACs kept (sweep.budgets overrides it)."), 0, 1, true, false);
  range(prune(&PruneConfig::flops_tolerance, "flops_tolerance", "Allowed relative miss of the MAC budget."), 0, 0.5, true, false);
  range(prune(&PruneConfig::min_keep_channels, "min_keep_channels", "Per-group floor: at least this many channels."), 1, kMaxCount);
  range(prune(&PruneConfig::min_keep_fraction, "min_keep_fraction", "Per-group floor: at least this fraction of channels."), 0, 1, false, true);
  range(prune(&PruneConfig::round_to, "round_to", "Round kept channel counts to a multiple of this (1: none)."), 1, 1024);
  prune(&PruneConfig::prune_residual, "prune_residual", "Also prune channels tied by residual additions (one group per stage).");
  // [eval]
  auto eval = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    return e.add(bind("eval", key, &Config::eval, mem, doc));
  };
  range(eval(&EvalConfig::latency_batch, "latency_batch", "Batch size of the latency measurement."), 1, kMaxBatch);
  range(eval(&EvalConfig::latency_warmup, "latency_warmup",
             "Untimed forward passes of each network before timing, at least (more until the times settle, see latency_warmup_tolerance)."),
        0, kMaxCount);
  range(eval(&EvalConfig::latency_repeats, "latency_repeats",
             "Interleaved timing rounds (each times the dense and the compact network once, alternating which goes first); "
             "the speed-up is the median of the per-round ratios."),
        1, kMaxCount);
  // Measurement-only keys: outside the run id, so that tuning the measurement keeps run ids.
  range(eval(&EvalConfig::latency_warmup_max, "latency_warmup_max", "Untimed forward passes of each network before timing, at most."),
        0, kMaxCount)
      .in_run = false;
  range(eval(&EvalConfig::latency_warmup_tolerance, "latency_warmup_tolerance",
             "The warm-up ends when each network's last 3 times vary by less than this fraction ((max - min) / min)."),
        0, std::nullopt, true)
      .in_run = false;
  range(eval(&EvalConfig::speedup_max_spread, "speedup_max_spread",
             "A speed-up whose spread ((q75 - q25) / median of the per-round ratios) exceeds this is flagged unreliable "
             "(summary@speedup_unreliable, a ? in inspect)."),
        0, std::nullopt, true)
      .in_run = false;
  range(eval(&EvalConfig::latency_round_ms, "latency_round_ms",
             "Each timing round times each network over as many back-to-back passes as fill about this many "
             "milliseconds (at least one, counted from its last warm-up times) and takes their mean: single passes of a "
             "few milliseconds are scattered by scheduler ticks, and the mean steadies the per-round ratio. 0: one pass "
             "per round."),
        0, 60000.0)
      .in_run = false;
  range(eval(&EvalConfig::probe_batches, "probe_batches",
             "Structure probe of every prune task, right after slicing: recalibrate the compact network's BatchNorm "
             "statistics on this many training batches (finetune.batch_size), no fine-tune, and record its validation "
             "top-1 (summary@probe_val_top1; `passlab probe` scores finished run files the same way); 0: no probe."),
        0, kMaxCount)
      .in_run = false;
  choices(eval(&EvalConfig::latency_form, "latency_form",
               "Form of both networks the speed-up times: folded (BatchNorm folded into the convs, as deployed), "
               "folded_channels_last (the same in NHWC memory format), auto (folded, in the memory format that times faster "
               "on the dense network; NHWC tends to win at ImageNet sizes, NCHW at CIFAR sizes), or training (as built, "
               "BatchNorm layers)."),
          {"folded", "folded_channels_last", "auto", "training"})
      .in_run = false;
  // [sweep]
  auto sweep = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    FieldSpec& f = e.add(bind("sweep", key, &Config::sweep, mem, doc));
    f.in_run = false;
    return f;
  };
  choices(sweep(&SweepConfig::archs, "archs", "Architectures of the sweep; empty: [model.arch]."), known_archs());
  sweep(&SweepConfig::datasets, "datasets", "Datasets of the sweep; empty: [data.dataset].");
  range(sweep(&SweepConfig::budgets, "budgets", "MAC budgets (fractions kept); empty: [prune.budget]."), 0, 1, true, false);
  choices(sweep(&SweepConfig::methods, "methods", "Methods; empty: [prune.method]."), known_methods());
  range(sweep(&SweepConfig::seeds, "seeds", "Seeds; empty: [experiment.seed]."), 0, std::nullopt);
  sweep(&SweepConfig::include, "include",
        "If non-empty, keep only tasks matching at least one entry, e.g. [{arch = \"vgg16_bn\", budget = 0.3}] "
        "(keys: arch, dataset, method, budget, seed).");
  sweep(&SweepConfig::exclude, "exclude", "Drop tasks matching any entry (same keys as include).");
  range(sweep(&SweepConfig::max_retries, "max_retries", "Retries of a failed task before it is reported failed."), 0, 100);
  range(sweep(&SweepConfig::heartbeat_timeout_s, "heartbeat_timeout_s", "A task claim without heartbeat for this long is taken over."), 1, kMaxTimeoutS);
  // [dist]
  auto dist = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    FieldSpec& f = e.add(bind("dist", key, &Config::dist, mem, doc));
    f.in_run = false;
    return f;
  };
  choices(dist(&DistConfig::backend, "backend", "Communicator: auto (NCCL on GPU, else MPI), nccl, mpi."), {"auto", "nccl", "mpi"});
  range(dist(&DistConfig::ranks_per_run, "ranks_per_run", "Ranks per run group (data parallel inside a group)."), 1, kMaxCount);
  range(dist(&DistConfig::bucket_mib, "bucket_mib", "Gradient all-reduce bucket size in MiB."), 0, kMaxBucketMiB, true);
  range(dist(&DistConfig::first_bucket_mib, "first_bucket_mib", "Size of the first bucket in MiB (launches early)."), 0, kMaxBucketMiB, true);
  range(dist(&DistConfig::threads_per_rank, "threads_per_rank", "Intra-op threads per rank; 0: cores per node / local ranks."), 0, 1024);
  choices(dist(&DistConfig::device, "device", "Device: auto (GPU of the local rank when present), cpu, cuda."), {"auto", "cpu", "cuda"});
  range(dist(&DistConfig::timeout_s, "timeout_s", "Collective timeout before the job is aborted."), 1, kMaxTimeoutS);
  // [output]
  auto output = [&](auto mem, const char* key, const char* doc) -> FieldSpec& {
    FieldSpec& f = e.add(bind("output", key, &Config::output, mem, doc));
    f.in_run = false;
    return f;
  };
  output(&OutputConfig::dir, "dir", "Results directory (run files, sweep.h5, dense models, checkpoints).");
  choices(output(&OutputConfig::log_level, "log_level", "Log level (the --log-level option and PASSLAB_LOG take precedence)."),
          {"trace", "debug", "info", "warn", "error", "off"});
  choices(output(&OutputConfig::progress, "progress", "Progress display: auto (bar on a terminal, periodic lines otherwise), bar, lines, none."),
          {"auto", "bar", "lines", "none"});
  output(&OutputConfig::save_weights, "save_weights", "Store the compact model's weights in the run file.");
  range(output(&OutputConfig::checkpoint_every, "checkpoint_every", "Checkpoint every N epochs (0: never)."), 0, kMaxEpochs);
  return std::move(b.out);
}

std::string fmt_num(double x) {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (std::isnan(x)) return "nan";
  char buf[400];
  // Shortest round-trip digits; plain decimals in the usual range, exponents outside it.
  const double a = std::abs(x);
  auto fmt = (a == 0.0 || (a >= 1e-5 && a < 1e15)) ? std::chars_format::fixed : std::chars_format::scientific;
  auto r = std::to_chars(buf, buf + sizeof buf, x, fmt);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

std::string format_filter(const SweepFilter& f) {
  std::vector<std::string> parts;  // keys in sorted order
  if (f.arch) parts.push_back("arch = " + quote(*f.arch));
  if (f.budget) parts.push_back("budget = " + fmt_num(*f.budget));
  if (f.dataset) parts.push_back("dataset = " + quote(*f.dataset));
  if (f.method) parts.push_back("method = " + quote(*f.method));
  if (f.seed) parts.push_back("seed = " + std::to_string(*f.seed));
  std::string s = "{ ";
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? ", " : "") + parts[i];
  return parts.empty() ? "{}" : s + " }";
}

template <class T, class F>
std::string fmt_list(const std::vector<T>& v, F fmt) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt(v[i]);
  return s + "]";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string format_value(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) return fmt_num(x);
        else if constexpr (std::is_same_v<T, std::string>) return quote(x);
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return fmt_list(x, [](int64_t i) { return std::to_string(i); });
        else if constexpr (std::is_same_v<T, std::vector<double>>) return fmt_list(x, [](double d) { return fmt_num(d); });
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) return fmt_list(x, [](const std::string& s) { return quote(s); });
        else return fmt_list(x, [](const SweepFilter& f) { return format_filter(f); });
      },
      v);
}

std::string FieldSpec::allowed() const {
  std::string base = to_string(kind);
  if (!choices.empty()) {
    std::string c;
    for (size_t i = 0; i < choices.size(); ++i) c += (i ? ", " : "") + quote(choices[i]);
    return (kind == Kind::string ? std::string("one of ") : base + " of ") + c;
  }
  std::string r;
  if (min) r += std::string(min_exclusive ? "> " : ">= ") + (kind == Kind::integer || kind == Kind::int_list ? std::to_string((int64_t)*min) : fmt_num(*min));
  if (max) r += std::string(r.empty() ? "" : " and ") + (max_exclusive ? "< " : "<= ") + (kind == Kind::integer || kind == Kind::int_list ? std::to_string((int64_t)*max) : fmt_num(*max));
  if (r.empty()) return base;
  bool list = kind == Kind::int_list || kind == Kind::real_list;
  return base + (list ? ", each " : " ") + r;
}

const std::vector<SectionSpec>& sections() {
  static const std::vector<SectionSpec> s = {
      {"experiment", "Name and seed of the experiment."},
      {"data", "Dataset store, validation split, augmentation, loader."},
      {"model", "Architecture and optional imported weights."},
      {"dense", "Training of the dense model (one per arch, dataset and seed; shared by its prune tasks)."},
      {"search", "PASS mask search: visual prompt, prompt encoder, recurrent hypernetwork, budget loss."},
      {"prune", "Method, MAC budget and allocation constraints."},
      {"regularise", "Regularisation phase of depgraph and growreg: a copy of the dense model trained with a sparsity "
                     "penalty (same keys as [dense], plus the regularisers' coefficients) before it is ranked and sliced."},
      {"finetune", "Fine-tuning of the compact network (same keys as [dense], plus keep_prompt)."},
      {"eval", "Latency measurement."},
      {"sweep", "Axes of the sweep and task selection. Not part of a run's identity."},
      {"dist", "Distributed runtime. Not part of a run's identity."},
      {"output", "Where results go and how progress shows. Not part of a run's identity."},
  };
  return s;
}

const std::vector<FieldSpec>& fields() {
  static const std::vector<FieldSpec> f = make_fields();
  return f;
}

const FieldSpec* find_field(const std::string& section, const std::string& key) {
  for (auto& f : fields())
    if (f.section == section && f.key == key) return &f;
  return nullptr;
}

std::optional<std::string> suggest(const std::string& word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (auto& c : candidates) {
    size_t d = edit_distance(word, c);
    // A key that extends or abbreviates a candidate ("lrate" for "lr") is a near miss too.
    if (std::min(word.size(), c.size()) >= 2 && (word.rfind(c, 0) == 0 || c.rfind(word, 0) == 0)) d = std::min<size_t>(d, 2);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string schema_markdown() {
  std::ostringstream o;
  o << "# passlab configuration reference\n\n"
    << "Generated from the schema in `src/config/schema.cpp` by `passlab config --schema`; a test keeps this file\n"
    << "equal to that output. Every key is optional; the default applies when it is absent. Unknown keys,\n"
    << "wrong types, non-finite floats (inf, nan) and out-of-range values are errors naming the file, line, key\n"
    << "and what is allowed; every count has an upper bound no real run reaches.\n"
    << "`passlab run CONFIG --set section.key=value` overrides a key (the value is TOML; a bare word is a string).\n\n"
    << "Identity: a run id hashes the canonical TOML of every key marked *run*; a dense model's id hashes the keys\n"
    << "marked *dense*. Changing a key outside those sets (paths, threads, logging, sweep axes) never changes an id.\n"
    << "A key marked *when not default* was added after ids were in use: it enters the ids only when set to another\n"
    << "value than its default, so earlier configs and files keep their ids.\n\n";
  Config defaults;
  for (auto& s : sections()) {
    o << "## [" << s.name << "]\n\n" << s.doc << "\n\n";
    o << "| key | type / allowed | default | identity | meaning |\n|---|---|---|---|---|\n";
    for (auto& f : fields()) {
      if (f.section != s.name) continue;
      std::string id = f.in_dense ? "run, dense" : (f.in_run ? "run" : "-");
      if (f.id_when_set) id += " (when not default)";
      std::string allowed = f.allowed();
      std::string def = format_value(f.get(defaults));
      auto esc = [](std::string t) {
        std::string r;
        for (char c : t) r += (c == '|') ? std::string("\\|") : std::string(1, c);
        return r;
      };
      o << "| `" << f.key << "` | " << esc(allowed) << " | `" << esc(def) << "` | " << id << " | " << esc(f.doc) << " |\n";
    }
    o << "\n";
  }
  o << methods_markdown();
  return o.str();
}

}  // namespace passlab::config
