#include "passlab/pipeline/probe.hpp"

#include <torch/torch.h>

#include <chrono>
#include <vector>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/pipeline/dense_model.hpp"
#include "passlab/pipeline/stage_loaders.hpp"

namespace passlab::pipeline {

int64_t recalibrate_batchnorm(models::Network& net, data::BatchSource& source, int64_t batches, dist::Communicator& comm,
                              c10::Device device) {
  PASSLAB_CHECK(batches >= 1, ConfigError, "BatchNorm recalibration needs at least one batch, not " + std::to_string(batches));
  std::vector<models::GhostBatchNorm2dImpl*> bns;
  for (const auto& m : net.modules(/*include_self=*/false)) {
    if (auto* bn = dynamic_cast<models::GhostBatchNorm2dImpl*>(m.get())) {
      bns.push_back(bn);
      continue;
    }
    // A normalisation layer of another kind would keep its dense statistics silently.
    PASSLAB_CHECK(!m->named_buffers(/*recurse=*/false).contains("running_mean"), InternalError,
                  "BatchNorm recalibration: module " + m->name() + " has running statistics but is not a GhostBatchNorm2d");
  }
  c10::NoGradGuard no_grad;
  net.eval();
  std::vector<std::optional<double>> momentum;
  std::vector<int64_t> group;
  for (auto* bn : bns) {
    momentum.push_back(bn->momentum);
    group.push_back(bn->group);
    bn->momentum = std::nullopt;  // cumulative average: factor 1/k at the k-th batch
    bn->group = 0;                // statistics over the whole batch of this rank
    bn->reset_running_stats();
    bn->train();
  }
  source.start_epoch(0);
  int64_t used = 0;
  while (used < batches) {
    auto b = source.next();
    if (!b) break;
    net.forward(b->images.to(device));
    ++used;
  }
  for (size_t i = 0; i < bns.size(); ++i) {
    bns[i]->momentum = momentum[i];
    bns[i]->group = group[i];
    bns[i]->eval();
  }
  PASSLAB_CHECK(used > 0, DataError, "BatchNorm recalibration: the training source has no batch");
  // Every rank used the same number of batches (loaders shard a split evenly), so the mean of
  // the ranks' averages is the average over all of the group's batches.
  if (comm.size() > 1) {
    for (auto* bn : bns) {
      comm.allreduce(bn->running_mean, dist::ReduceOp::mean);
      comm.allreduce(bn->running_var, dist::ReduceOp::mean);
    }
    comm.wait();
  }
  return used;
}

ProbeResult probe_plan(const models::PrunableNetwork& dense, const prune::KeepPlan& plan, data::BatchSource& train,
                       data::BatchSource& val, int64_t batches, dist::Communicator& comm, c10::Device device) {
  auto compact = prune::make_compact(dense, plan);
  compact->to(device);
  ProbeResult r;
  r.batches = recalibrate_batchnorm(*compact, train, batches, comm, device);
  train::TrainerOptions o;
  o.device = device;
  o.label = "probe";
  o.progress = "none";
  train::Trainer evaluator(*compact, comm, o);
  r.val = evaluator.evaluate(val);
  return r;
}

std::optional<ProbeResult> probe_task_plan(const TaskContext& ctx, const TaskData& d, const models::PrunableNetwork& dense,
                                           const prune::KeepPlan& plan) {
  const auto& cfg = ctx.cfg;
  if (cfg.eval.probe_batches == 0) return std::nullopt;
  if (d.splits.val.size() == 0) {
    PL_WARN("probe {}: no validation split (data.val_fraction = 0); the plan is not probed", ctx.id);
    return std::nullopt;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto train = make_loader(ctx, d, d.splits.train, true, cfg.finetune.batch_size, ctx.seed(kProbeData));
  auto val = make_loader(ctx, d, d.splits.val, false, cfg.finetune.eval_batch_size, 0);
  ProbeResult r = probe_plan(dense, plan, *train, *val, cfg.eval.probe_batches, ctx.comm, ctx.rt.device());
  PL_INFO("probe {}: validation top-1 {:.2f}% with BatchNorm recalibrated on {} batches, no fine-tune ({:.1f} s)", ctx.id,
          100 * r.val.top1(), r.batches, seconds_since(t0));
  return r;
}

RunFileProbe probe_run_file(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                            const dist::Runtime& rt, dist::Communicator& comm) {
  namespace rf = io::run_file;
  RunFileProbe out;
  config::Config cfg;
  std::string dense_id;
  std::vector<std::pair<std::string, std::vector<int64_t>>> named;
  {
    io::File f = io::run_file::open_usable(file);
    const auto& root = f.root();
    PASSLAB_CHECK(root.has_attr(rf::kKind) && root.attr_string(rf::kKind) == rf::kPruneKind, IOError,
                  file.string() + ": not a prune run file (kind is not \"prune\")");
    cfg = config::load_string(root.read_string(rf::kConfig), file.string() + ":/config", overrides);
    out.run_id = root.attr_string(rf::kRunId);
    out.method = root.attr_string(rf::kMethod);
    out.budget = root.attr_double(rf::kBudget);
    dense_id = root.attr_string(rf::kDenseId);
    const auto summary = root.open_group(rf::kSummary);
    if (summary.has_attr(rf::kValTop1)) out.val_top1 = summary.attr_double(rf::kValTop1);
    const auto keep = root.open_group(rf::kKeep);
    for (const auto& name : keep.children()) named.emplace_back(name, keep.read<int64_t>(name));
  }
  PASSLAB_CHECK(cfg.eval.probe_batches > 0, ConfigError,
                file.string() + ": eval.probe_batches is 0; give the number of batches (--set eval.probe_batches=N)");
  PASSLAB_CHECK(config::dense_id(cfg) == dense_id, ConfigError,
                file.string() + ": the overrides change the dense model's id (" + dense_id + " in the file, " +
                    config::dense_id(cfg) + " with them); override only keys outside it (e.g. data.root, eval.*)");
  // The dense model of a run file lies in the dense/ folder beside its runs/ folder, wherever the
  // results directory was moved since.
  cfg.output.dir = std::filesystem::absolute(file).parent_path().parent_path().string();
  const TaskContext ctx{cfg, rt, comm, out.run_id};
  const TaskData d = open_data(cfg);
  DenseModel dense = load_dense(ctx, d);
  // By group name: a missing or unknown group is an IOError.
  out.probe = probe_task_plan(ctx, d, *dense.net, prune::plan_from_named(dense.net->structure(), named));
  return out;
}

}  // namespace passlab::pipeline
