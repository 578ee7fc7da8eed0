#include "passlab/pass/task.hpp"

#include <torch/torch.h>

#include <chrono>
#include <ctime>

#include "passlab/build_info.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/data/split.hpp"
#include "passlab/data/store.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pass/search.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/latency.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "passlab/train/trainer.hpp"

namespace fs = std::filesystem;

namespace passlab::pass {
namespace {

// Streams of derive_seed(experiment.seed, ·) so stages never share random numbers.
enum Stream : uint64_t { kInit = 1, kDenseData = 2, kSearchData = 3, kFinetuneData = 4, kBaseline = 5, kTaylor = 6 };

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Everything about the data a task needs: the three splits and the input geometry.
struct TaskData {
  data::Splits splits;
  data::StoreInfo info;
  int64_t channels = 0;  // the model's input channels
  int64_t size = 0;      // the model's input side
  std::vector<double> mean, std;
};

TaskData open_data(const config::Config& cfg) {
  TaskData d;
  d.splits = data::open_splits(cfg.data, cfg.resolved_store());
  d.info = d.splits.train.store()->info();
  // ImageNet-pretrained weights expect three channels; a gray store is replicated.
  d.channels = cfg.model.pretrained.empty() ? d.info.channels : 3;
  d.size = cfg.data.input_size > 0 ? cfg.data.input_size : d.info.height;
  for (int64_t c = 0; c < d.channels; ++c) {
    size_t src = static_cast<size_t>(d.info.channels == 1 ? 0 : c);
    d.mean.push_back(d.info.mean.at(src));
    d.std.push_back(d.info.std.at(src));
  }
  return d;
}

int64_t per_rank(int64_t global_batch, const dist::Communicator& comm) {
  int64_t b = global_batch / comm.size();
  if (b * comm.size() != global_batch)
    PL_WARN("batch size {} is not divisible by the {} ranks of the group; using {} per rank", global_batch, comm.size(), b);
  return std::max<int64_t>(1, b);
}

std::unique_ptr<data::Loader> make_loader(const config::Config& cfg, const TaskData& d, const data::SplitView& view,
                                          bool train, int64_t global_batch, uint64_t seed, const dist::Runtime& rt,
                                          const dist::Communicator& comm) {
  auto opt = data::loader_options(cfg.data, d.info, train, per_rank(global_batch, comm), seed, comm.rank(), comm.size(),
                                  d.channels);
  opt.device = rt.device();
  return std::make_unique<data::Loader>(view, opt);
}

// One training stage ([dense] or [finetune]): its loaders over train/val/test and its trainer
// options (checkpoint under work/<id>/<name>.ckpt.h5, removed when the stage completes).
struct Stage {
  std::unique_ptr<data::Loader> train, val, test;
  train::TrainerOptions options;
  data::BatchSource* eval() const { return val->dataset_size() > 0 ? val.get() : nullptr; }
};

Stage make_stage(const config::Config& cfg, const TaskData& d, const config::TrainConfig& tc, const std::string& name,
                 const std::string& id, uint64_t seed, const dist::Runtime& rt, const dist::Communicator& comm) {
  Stage s;
  s.train = make_loader(cfg, d, d.splits.train, true, tc.batch_size, seed, rt, comm);
  s.val = make_loader(cfg, d, d.splits.val, false, tc.eval_batch_size, 0, rt, comm);
  s.test = make_loader(cfg, d, d.splits.test, false, tc.eval_batch_size, 0, rt, comm);
  s.options = train::TrainerOptions::from(tc, cfg.dist, cfg.output, rt.device(), name + " " + id, seed,
                                          work_dir(cfg, id) / (name + ".ckpt.h5"));
  s.options.remove_checkpoint_when_done = true;
  return s;
}

models::ModelSpec dense_spec(const config::Config& cfg, const TaskData& d) {
  models::ModelSpec s;
  s.arch = cfg.model.arch;
  s.num_classes = d.info.num_classes();
  s.in_channels = d.channels;
  s.input_size = d.size;
  s.stem = cfg.model.stem;
  return s;
}

void write_curve(io::Group& metrics, const std::string& name, const std::vector<double>& v) {
  if (!v.empty()) metrics.write(name, v);
}

void write_provenance(io::Group& root, const config::Config& cfg, const dist::Runtime& rt,
                      const dist::Communicator& comm) {
  root.write_string("config", config::to_toml(cfg));
  for (auto& [k, v] : build_info()) root.set_attr("version_" + k, v);
  root.set_attr("arch", cfg.model.arch);
  root.set_attr("dataset", cfg.data.dataset);
  root.set_attr("seed", cfg.experiment.seed);
  root.set_attr("world_size", static_cast<int64_t>(rt.world_size()));
  root.set_attr("group_size", static_cast<int64_t>(comm.size()));
  root.set_attr("backend", std::string(comm.backend()));
  root.set_attr("device", rt.device().str());
  root.set_attr("finished_at", utc_now());
}

void write_training_curves(io::Group& metrics, const std::string& prefix, const train::FitResult& fit) {
  std::vector<double> loss, top1, lr, val_top1, secs;
  for (auto& e : fit.epochs) {
    loss.push_back(e.train_loss);
    top1.push_back(e.train_top1);
    lr.push_back(e.lr);
    secs.push_back(e.seconds);
    if (e.eval) val_top1.push_back(e.eval->top1());
  }
  write_curve(metrics, prefix + "_train_loss", loss);
  write_curve(metrics, prefix + "_train_top1", top1);
  write_curve(metrics, prefix + "_lr", lr);
  write_curve(metrics, prefix + "_val_top1", val_top1);
  write_curve(metrics, prefix + "_epoch_seconds", secs);
}

}  // namespace

fs::path dense_path(const config::Config& t) { return fs::path(t.output.dir) / "dense" / (config::dense_id(t) + ".h5"); }
fs::path run_path(const config::Config& t) { return fs::path(t.output.dir) / "runs" / (config::run_id(t) + ".h5"); }
fs::path work_dir(const config::Config& t, const std::string& id) { return fs::path(t.output.dir) / "work" / id; }

void run_dense_task(const config::Config& cfg, const dist::Runtime& rt, dist::Communicator& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string id = config::dense_id(cfg);
  const uint64_t seed = static_cast<uint64_t>(cfg.experiment.seed);
  TaskData d = open_data(cfg);
  torch::manual_seed(derive_seed(seed, kInit));
  auto net = models::make_model(dense_spec(cfg, d));
  if (!cfg.model.pretrained.empty()) {
    models::LoadOptions lo;
    lo.head = net->head();
    auto rep = models::load_weights(*net, cfg.model.pretrained, lo);
    PL_INFO("dense {}: {} tensors from {}{}", id, rep.loaded, cfg.model.pretrained, rep.head_replaced ? " (new head)" : "");
  }
  net->to(rt.device());
  PL_INFO("dense {}: {} on {} ({} train / {} val / {} test images, {}x{}x{}), {} MACs", id, cfg.model.arch,
          cfg.data.dataset, d.splits.train.size(), d.splits.val.size(), d.splits.test.size(), d.channels, d.size, d.size,
          net->count().macs);

  Stage stage = make_stage(cfg, d, cfg.dense, "dense", id, derive_seed(seed, kDenseData), rt, comm);
  train::Trainer trainer(*net, comm, stage.options);
  auto fit = trainer.fit(*stage.train, stage.eval());
  auto test = trainer.evaluate(*stage.test);
  PL_INFO("dense {}: test top-1 {:.2f}% ({:.0f} s)", id, 100 * test.top1(), seconds_since(t0));

  if (comm.rank() == 0) {
    io::AtomicWriter w(dense_path(cfg));
    auto& root = w.root();
    write_provenance(root, cfg, rt, comm);
    root.set_attr("kind", "dense");
    root.set_attr("dense_id", id);
    auto weights = root.create_group("weights");
    models::save_weights(*net, weights);
    auto metrics = root.create_group("metrics");
    write_training_curves(metrics, "dense", fit);
    auto s = root.create_group("summary");
    s.set_attr("top1", test.top1());
    s.set_attr("top5", test.top5());
    s.set_attr("val_top1", fit.epochs.empty() || !fit.epochs.back().eval ? -1.0 : fit.epochs.back().eval->top1());
    auto counts = net->count();
    s.set_attr("macs", counts.macs);
    s.set_attr("params", counts.params);
    s.set_attr("ops_full", counts.ops_full);
    root.set_attr("seconds", seconds_since(t0));
    w.commit();
  }
  comm.barrier();
}

void run_prune_task(const config::Config& cfg, const dist::Runtime& rt, dist::Communicator& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string id = config::run_id(cfg);
  const std::string& method = cfg.prune.method;
  const uint64_t seed = static_cast<uint64_t>(cfg.experiment.seed);
  TaskData d = open_data(cfg);

  // The dense model, exactly as the dense task left it.
  auto dense = models::make_model(dense_spec(cfg, d));
  const fs::path dense_file = dense_path(cfg);
  double dense_top1 = -1;
  {
    io::File f = io::open_complete(dense_file);
    models::load_weights(*dense, dense_file);
    dense_top1 = f.root().open_group("summary").attr_double("top1");
  }
  dense->to(rt.device());
  dense->eval();
  const auto dense_counts = dense->count();

  // 1. Which channels to keep.
  const auto t_search = std::chrono::steady_clock::now();
  prune::Allocation alloc;
  SearchCurves curves;
  std::unique_ptr<PassSearch> search;
  if (is_pass_method(method)) {
    InputGeometry geo{d.channels, d.size, d.mean, d.std};
    search = std::make_unique<PassSearch>(*dense, cfg, geo);
    if (!cfg.search.init_from.empty()) search->init_from(cfg.search.init_from);
    auto loader = make_loader(cfg, d, d.splits.train, true, cfg.search.batch_size, derive_seed(seed, kSearchData), rt, comm);
    curves = search->run(*loader, comm,
                         PassSearch::trainer_options(cfg, rt.device(), "search " + id, work_dir(cfg, id) / "search.ckpt.h5"));
    alloc = search->allocate();
  } else {
    auto opt = prune::allocation_options(cfg.prune);
    std::unique_ptr<data::Loader> loader;
    prune::BatchSource batches;
    if (method == "taylor_global") {
      loader = make_loader(cfg, d, d.splits.train, true, cfg.search.batch_size, derive_seed(seed, kTaylor), rt, comm);
      loader->start_epoch(0);
      batches = [&loader](at::Tensor& x, at::Tensor& y) {
        auto b = loader->next();
        if (!b) return false;
        x = b->images;
        y = b->labels;
        return true;
      };
    }
    alloc = prune::allocate_baseline(*dense, method, opt, batches ? &batches : nullptr, cfg.search.taylor_batches,
                                     derive_seed(seed, kBaseline));
  }
  dense->clear_masks();
  // Every rank of the group slices the leader's channels. PASS masks were already checked
  // identical, so a different plan there is an error; data-dependent baselines (Taylor on each
  // rank's shard) follow the leader.
  if (comm.size() > 1) {
    std::string bytes;
    for (auto& k : alloc.keep) {
      for (auto i : k) bytes += std::to_string(i) + ",";
      bytes += ";";
    }
    const std::string mine = bytes;
    comm.broadcast_bytes(bytes, 0);
    if (bytes != mine) {
      if (search) throw DistError("prune task " + id + ": ranks of the run group allocated different channels");
      prune::KeepPlan leader;
      std::vector<int64_t> cur;
      std::string num;
      for (char ch : bytes) {
        if (ch == ',') {
          cur.push_back(std::stoll(num));
          num.clear();
        } else if (ch == ';') {
          leader.push_back(cur);
          cur.clear();
        } else {
          num += ch;
        }
      }
      alloc.keep = leader;
      alloc.kept = prune::kept_counts(leader);
      alloc.macs = dense->structure().macs(alloc.kept);
      PL_DEBUG("prune {}: using the group leader's channels ({} is data-dependent)", id, method);
    }
  }
  const double search_seconds = seconds_since(t_search);
  PL_INFO("prune {}: {} at {:.0f}% of MACs kept {:.2f}% ({} of {} MACs){}", id, method, 100 * cfg.prune.budget,
          100 * alloc.ratio(), alloc.macs, alloc.dense_macs, alloc.met_budget ? "" : " — budget NOT met within tolerance");

  // 2. The compact network, fine-tuned (with the prompt when keep_prompt).
  auto compact = prune::make_compact(*dense, alloc.keep);
  compact->to(rt.device());
  VisualPrompt* prompt = (search && cfg.finetune.keep_prompt) ? search->prompt() : nullptr;
  Stage stage = make_stage(cfg, d, cfg.finetune, "finetune", id, derive_seed(seed, kFinetuneData), rt, comm);
  train::Trainer trainer(*compact, comm, stage.options);
  if (prompt) {
    train::NamedTensors named;
    for (auto& kv : compact->named_parameters()) named.emplace_back(kv.key(), kv.value());
    for (auto& kv : prompt->named_parameters()) {
      kv.value().set_requires_grad(true);
      named.emplace_back("prompt." + kv.key(), kv.value());
    }
    trainer.set_trainable(named);
    trainer.set_forward([&](const at::Tensor& x) { return compact->forward(prompt->forward(x)); });
  }
  const auto t_ft = std::chrono::steady_clock::now();
  auto fit = trainer.fit(*stage.train, stage.eval());
  const double finetune_seconds = seconds_since(t_ft);
  auto test = trainer.evaluate(*stage.test);

  // 3. Cost of the compact network: exact counts and measured latency.
  const auto counts = compact->count();
  auto lat_dense = prune::measure_latency(*dense, cfg.eval.latency_batch, d.channels, d.size, cfg.eval.latency_warmup,
                                          cfg.eval.latency_repeats);
  auto lat_pruned = prune::measure_latency(*compact, cfg.eval.latency_batch, d.channels, d.size, cfg.eval.latency_warmup,
                                           cfg.eval.latency_repeats);
  PL_INFO("prune {}: test top-1 {:.2f}% (dense {:.2f}%), MACs {:.1f}%, latency {:.2f} → {:.2f} ms ({:.2f}x)", id,
          100 * test.top1(), 100 * dense_top1, 100.0 * counts.macs / dense_counts.macs, lat_dense.median_ms,
          lat_pruned.median_ms, lat_dense.median_ms / lat_pruned.median_ms);

  if (comm.rank() == 0) {
    io::AtomicWriter w(run_path(cfg));
    auto& root = w.root();
    write_provenance(root, cfg, rt, comm);
    root.set_attr("kind", "prune");
    root.set_attr("run_id", id);
    root.set_attr("dense_id", config::dense_id(cfg));
    root.set_attr("method", method);
    root.set_attr("budget", cfg.prune.budget);
    auto masks = root.create_group("masks");
    auto keep = root.create_group("keep");
    auto plan_masks = prune::plan_masks(dense->structure(), alloc.keep);
    const auto& groups = dense->groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      io::write_tensor(masks, groups[g].name, plan_masks[g].to(torch::kByte));
      keep.write(groups[g].name, alloc.keep[g]);
    }
    auto metrics = root.create_group("metrics");
    write_curve(metrics, "search_loss", curves.loss);
    write_curve(metrics, "search_ce", curves.ce);
    write_curve(metrics, "search_budget_term", curves.budget_term);
    write_curve(metrics, "search_mac_ratio", curves.mac_ratio);
    write_training_curves(metrics, "finetune", fit);
    auto s = root.create_group("summary");
    s.set_attr("top1", test.top1());
    s.set_attr("top5", test.top5());
    s.set_attr("test_loss", test.loss());
    s.set_attr("val_top1", fit.epochs.empty() || !fit.epochs.back().eval ? -1.0 : fit.epochs.back().eval->top1());
    s.set_attr("dense_top1", dense_top1);
    s.set_attr("macs", counts.macs);
    s.set_attr("params", counts.params);
    s.set_attr("ops_full", counts.ops_full);
    s.set_attr("dense_macs", dense_counts.macs);
    s.set_attr("dense_params", dense_counts.params);
    s.set_attr("dense_ops_full", dense_counts.ops_full);
    s.set_attr("mac_ratio", static_cast<double>(counts.macs) / static_cast<double>(dense_counts.macs));
    s.set_attr("budget_met", static_cast<int64_t>(alloc.met_budget));
    s.set_attr("latency_dense_ms", lat_dense.median_ms);
    s.set_attr("latency_pruned_ms", lat_pruned.median_ms);
    s.set_attr("speedup", lat_dense.median_ms / lat_pruned.median_ms);
    s.set_attr("latency_batch", cfg.eval.latency_batch);
    s.set_attr("latency_device", lat_pruned.device);
    if (cfg.output.save_weights) {
      auto weights = root.create_group("weights");
      models::save_weights(*compact, weights);
    }
    if (search) search->save(root);
    root.set_attr("search_seconds", search_seconds);
    root.set_attr("finetune_seconds", finetune_seconds);
    root.set_attr("seconds", seconds_since(t0));
    w.commit();
  }
  comm.barrier();
}

}  // namespace passlab::pass
