#include "passlab/pipeline/run_writer.hpp"

#include <torch/torch.h>

#include "passlab/build_info.hpp"
#include "passlab/core/clock.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/tensorio/tensor_h5.hpp"

namespace passlab::pipeline {
namespace {

// An empty curve (a stage that did not run) is left out rather than written empty.
void write_curve(io::Group& metrics, const std::string& name, const std::vector<double>& v) {
  if (!v.empty()) metrics.write(name, v);
}

void write_provenance(io::Group& root, const TaskContext& ctx) {
  const auto& cfg = ctx.cfg;
  root.write_string("config", config::to_toml(cfg));
  for (auto& [k, v] : build_info()) root.set_attr("version_" + k, v);
  root.set_attr("arch", cfg.model.arch);
  root.set_attr("dataset", cfg.data.dataset);
  root.set_attr("seed", cfg.experiment.seed);
  root.set_attr("world_size", static_cast<int64_t>(ctx.rt.world_size()));
  root.set_attr("group_size", static_cast<int64_t>(ctx.comm.size()));
  root.set_attr("backend", std::string(ctx.comm.backend()));
  root.set_attr("device", ctx.rt.device().str());
  root.set_attr("finished_at", utc_now());
}

// /metrics/<prefix>_* per epoch of a training stage.
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

double final_val_top1(const train::FitResult& fit) {
  return fit.epochs.empty() || !fit.epochs.back().eval ? -1.0 : fit.epochs.back().eval->top1();
}

void write_counts(io::Group& summary, const std::string& prefix, const models::Counts& c) {
  summary.set_attr(prefix + "macs", c.macs);
  summary.set_attr(prefix + "params", c.params);
  summary.set_attr(prefix + "ops_full", c.ops_full);
}

// /masks/<group> (uint8 0/1) and /keep/<group> (kept indices), one per channel group.
void write_plan(io::Group& root, models::PrunableNetwork& dense, const prune::KeepPlan& keep_plan) {
  auto masks = root.create_group("masks");
  auto keep = root.create_group("keep");
  auto plan_masks = prune::plan_masks(dense.structure(), keep_plan);
  const auto& groups = dense.groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    io::write_tensor(masks, groups[g].name, plan_masks[g].to(torch::kByte));
    keep.write(groups[g].name, keep_plan[g]);
  }
}

}  // namespace

void write_dense_file(const TaskContext& ctx, models::PrunableNetwork& net, const train::FitResult& fit,
                      const train::EvalResult& test) {
  if (ctx.leader()) {
    io::AtomicWriter w(dense_path(ctx.cfg));
    auto& root = w.root();
    write_provenance(root, ctx);
    root.set_attr("kind", "dense");
    root.set_attr("dense_id", ctx.id);
    auto weights = root.create_group("weights");
    models::save_weights(net, weights);
    auto metrics = root.create_group("metrics");
    write_training_curves(metrics, "dense", fit);
    auto s = root.create_group("summary");
    s.set_attr("top1", test.top1());
    s.set_attr("top5", test.top5());
    s.set_attr("val_top1", final_val_top1(fit));
    write_counts(s, "", net.count());
    root.set_attr("seconds", ctx.elapsed_s());
    w.commit();
  }
  ctx.comm.barrier();
}

void write_run_file(const TaskContext& ctx, const PruneOutcome& out) {
  if (ctx.leader()) {
    const auto& cfg = ctx.cfg;
    const auto& alloc = out.plan.alloc;
    const auto& ev = out.evaluation;
    const auto& fit = out.finetuned.fit;
    io::AtomicWriter w(run_path(cfg));
    auto& root = w.root();
    write_provenance(root, ctx);
    root.set_attr("kind", "prune");
    root.set_attr("run_id", ctx.id);
    root.set_attr("dense_id", config::dense_id(cfg));
    root.set_attr("method", cfg.prune.method);
    root.set_attr("budget", cfg.prune.budget);
    write_plan(root, *out.dense.net, alloc.keep);
    auto metrics = root.create_group("metrics");
    write_curve(metrics, "search_loss", out.plan.curves.loss);
    write_curve(metrics, "search_ce", out.plan.curves.ce);
    write_curve(metrics, "search_budget_term", out.plan.curves.budget_term);
    write_curve(metrics, "search_mac_ratio", out.plan.curves.mac_ratio);
    write_training_curves(metrics, "finetune", fit);
    auto s = root.create_group("summary");
    s.set_attr("top1", ev.test.top1());
    s.set_attr("top5", ev.test.top5());
    s.set_attr("test_loss", ev.test.loss());
    s.set_attr("val_top1", final_val_top1(fit));
    s.set_attr("dense_top1", out.dense.top1);
    write_counts(s, "", ev.counts);
    write_counts(s, "dense_", out.dense.counts);
    s.set_attr("mac_ratio", static_cast<double>(ev.counts.macs) / static_cast<double>(out.dense.counts.macs));
    s.set_attr("budget_met", static_cast<int64_t>(alloc.met_budget));
    s.set_attr("latency_dense_ms", ev.latency_dense.median_ms);
    s.set_attr("latency_pruned_ms", ev.latency_pruned.median_ms);
    s.set_attr("speedup", ev.latency_dense.median_ms / ev.latency_pruned.median_ms);
    s.set_attr("latency_batch", cfg.eval.latency_batch);
    s.set_attr("latency_device", ev.latency_pruned.device);
    if (cfg.output.save_weights) {
      auto weights = root.create_group("weights");
      models::save_weights(out.compact, weights);
    }
    if (out.plan.search) out.plan.search->save(root);
    root.set_attr("search_seconds", out.search_seconds);
    root.set_attr("finetune_seconds", out.finetuned.seconds);
    root.set_attr("seconds", ctx.elapsed_s());
    w.commit();
  }
  ctx.comm.barrier();
}

}  // namespace passlab::pipeline
