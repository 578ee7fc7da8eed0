#include "passlab/pipeline/run_writer.hpp"

#include <torch/torch.h>

#include <exception>
#include <iterator>

#include "passlab/build_info.hpp"
#include "passlab/core/clock.hpp"
#include "passlab/core/error.hpp"
#include "passlab/dist/agreement.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/tensorio/tensor_h5.hpp"

namespace passlab::pipeline {
namespace {

// Every name written here is declared in the run-file schema (io/run_schema.hpp); tests check the
// files the real tasks write against it.
namespace rf = io::run_file;

// An empty curve (a stage that did not run) is left out rather than written empty.
void write_curve(io::Group& metrics, const std::string& name, const std::vector<double>& v) {
  if (!v.empty()) metrics.write(name, v);
}

void write_provenance(io::Group& root, const TaskContext& ctx) {
  const auto& cfg = ctx.cfg;
  root.write_string(rf::kConfig, config::to_toml(cfg));
  for (auto& [k, v] : build_info()) root.set_attr(rf::kVersionPrefix + k, v);
  root.set_attr(rf::kArch, cfg.model.arch);
  root.set_attr(rf::kDataset, cfg.data.dataset);
  root.set_attr(rf::kSeed, cfg.experiment.seed);
  root.set_attr(rf::kWorldSize, static_cast<int64_t>(ctx.rt.world_size()));
  root.set_attr(rf::kGroupSize, static_cast<int64_t>(ctx.comm.size()));
  root.set_attr(rf::kBackend, std::string(ctx.comm.backend()));
  root.set_attr(rf::kDevice, ctx.rt.device().str());
  root.set_attr(rf::kFinishedAt, utc_now());
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
  // In the order of the schema's kTrainingCurveSuffixes.
  const std::vector<double>* curves[] = {&loss, &top1, &lr, &val_top1, &secs};
  static_assert(std::size(curves) == std::size(rf::kTrainingCurveSuffixes));
  for (size_t i = 0; i < std::size(curves); ++i) write_curve(metrics, prefix + rf::kTrainingCurveSuffixes[i], *curves[i]);
}

double final_val_top1(const train::FitResult& fit) {
  return fit.epochs.empty() || !fit.epochs.back().eval ? -1.0 : fit.epochs.back().eval->top1();
}

void write_counts(io::Group& summary, const char* macs, const char* params, const char* ops_full, const models::Counts& c) {
  summary.set_attr(macs, c.macs);
  summary.set_attr(params, c.params);
  summary.set_attr(ops_full, c.ops_full);
}

// /masks/<group> (uint8 0/1) and /keep/<group> (kept indices), one per channel group.
void write_plan(io::Group& root, models::PrunableNetwork& dense, const prune::KeepPlan& keep_plan) {
  auto masks = root.create_group(rf::kMasks);
  auto keep = root.create_group(rf::kKeep);
  auto plan_masks = prune::plan_masks(dense.structure(), keep_plan);
  const auto& groups = dense.groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    io::write_tensor(masks, groups[g].name, plan_masks[g].to(torch::kByte));
    keep.write(groups[g].name, keep_plan[g]);
  }
}

// /normalization: the normalisation the model saw, which a later model.pretrained import of this file
// follows under data.normalize = "source".
void write_input(io::Group& root, const TaskData& d) {
  auto input = root.create_group(rf::kNormalization);
  input.write(rf::kNormMean, d.mean);
  input.write(rf::kNormStd, d.std);
  input.write_string(rf::kNormalize, d.normalize);
}

}  // namespace

void write_dense_file(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& net, const train::FitResult& fit,
                      const train::EvalResult& test) {
  // A write that fails (or a commit refused for a non-finite value) is every rank's error.
  dist::on_leader(ctx.comm, [&] {
    io::AtomicWriter w(dense_path(ctx.cfg));
    auto& root = w.root();
    write_provenance(root, ctx);
    root.set_attr(rf::kKind, rf::kDenseKind);
    root.set_attr(rf::kDenseId, ctx.id);
    auto weights = root.create_group(rf::kWeights);
    models::save_weights(net, weights);
    write_input(root, d);
    auto metrics = root.create_group(rf::kMetrics);
    write_training_curves(metrics, "dense", fit);
    auto s = root.create_group(rf::kSummary);
    s.set_attr(rf::kTop1, test.top1());
    s.set_attr(rf::kTop5, test.top5());
    s.set_attr(rf::kValTop1, final_val_top1(fit));
    write_counts(s, rf::kMacs, rf::kParams, rf::kOpsFull, net.count());
    root.set_attr(rf::kSeconds, ctx.elapsed_s());
    rf::commit_result(w, rf::kComplete);
  });
}

void write_run_file(const TaskContext& ctx, const PruneOutcome& out) {
  // A write that fails (or a commit refused for a non-finite value) is every rank's error.
  dist::on_leader(ctx.comm, [&] {
    const auto& cfg = ctx.cfg;
    const auto& alloc = out.plan.alloc;
    const auto& ev = out.evaluation;
    const auto& fit = out.finetuned.fit;
    io::AtomicWriter w(run_path(cfg));
    auto& root = w.root();
    write_provenance(root, ctx);
    root.set_attr(rf::kKind, rf::kPruneKind);
    root.set_attr(rf::kRunId, ctx.id);
    root.set_attr(rf::kDenseId, config::dense_id(cfg));
    root.set_attr(rf::kMethod, cfg.prune.method);
    root.set_attr(rf::kBudget, cfg.prune.budget);
    write_plan(root, *out.dense.net, alloc.keep);
    write_input(root, out.data);
    auto metrics = root.create_group(rf::kMetrics);
    // In the order of the schema's kSearchCurves.
    const std::vector<double>* search_curves[] = {&out.plan.curves.loss, &out.plan.curves.ce,
                                                  &out.plan.curves.budget_term, &out.plan.curves.mac_ratio,
                                                  &out.plan.curves.target_ratio};
    static_assert(std::size(search_curves) == std::size(rf::kSearchCurves));
    for (size_t i = 0; i < std::size(search_curves); ++i) write_curve(metrics, rf::kSearchCurves[i], *search_curves[i]);
    write_training_curves(metrics, "finetune", fit);
    auto s = root.create_group(rf::kSummary);
    s.set_attr(rf::kTop1, ev.test.top1());
    s.set_attr(rf::kTop5, ev.test.top5());
    s.set_attr(rf::kTestLoss, ev.test.loss());
    s.set_attr(rf::kValTop1, final_val_top1(fit));
    s.set_attr(rf::kDenseTop1, out.dense.top1);
    write_counts(s, rf::kMacs, rf::kParams, rf::kOpsFull, ev.counts);
    write_counts(s, rf::kDenseMacs, rf::kDenseParams, rf::kDenseOpsFull, out.dense.counts);
    s.set_attr(rf::kMacRatio, static_cast<double>(ev.counts.macs) / static_cast<double>(out.dense.counts.macs));
    s.set_attr(rf::kBudgetMet, static_cast<int64_t>(alloc.met_budget));
    const auto& sp = ev.speed;
    s.set_attr(rf::kLatencyDenseMs, sp.dense_median_ms);
    s.set_attr(rf::kLatencyPrunedMs, sp.compact_median_ms);
    s.set_attr(rf::kSpeedup, sp.speedup);
    s.set_attr(rf::kSpeedupSpread, sp.spread);
    s.set_attr(rf::kSpeedupRounds, sp.rounds);
    s.set_attr(rf::kSpeedupUnreliable, static_cast<int64_t>(sp.unreliable));
    s.set_attr(rf::kLoad1minStart, sp.load_start.load_1min);
    s.set_attr(rf::kLoad1minEnd, sp.load_end.load_1min);
    s.set_attr(rf::kCores, sp.load_end.cores);
    s.set_attr(rf::kSpeedupForm, std::string(prune::to_string(sp.form)));
    s.set_attr(rf::kLatencyBatch, sp.batch);
    s.set_attr(rf::kLatencyDevice, sp.device);
    if (out.probe) {
      s.set_attr(rf::kProbeValTop1, out.probe->val.top1());
      s.set_attr(rf::kProbeBatches, out.probe->batches);
    }
    if (cfg.output.save_weights) {
      auto weights = root.create_group(rf::kWeights);
      models::save_weights(out.compact, weights);
    }
    if (out.plan.search) out.plan.search->save(root);
    root.set_attr(rf::kSearchSeconds, out.search_seconds);
    root.set_attr(rf::kRegulariseSeconds, out.plan.regularise_seconds);
    root.set_attr(rf::kFinetuneSeconds, out.finetuned.seconds);
    root.set_attr(rf::kSeconds, ctx.elapsed_s());
    rf::commit_result(w, rf::kComplete);
  });
}

}  // namespace passlab::pipeline
