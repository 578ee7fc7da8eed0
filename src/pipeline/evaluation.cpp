#include "passlab/pipeline/evaluation.hpp"

#include "passlab/core/log.hpp"

namespace passlab::pipeline {

PrunedEvaluation evaluate_and_measure(const TaskContext& ctx, const TaskData& d, TrainedStage& finetuned,
                                      DenseModel& dense, models::PrunableNetwork& compact) {
  const auto& e = ctx.cfg.eval;
  PrunedEvaluation r;
  r.test = finetuned.test();
  r.counts = compact.count();
  r.latency_dense = prune::measure_latency(*dense.net, e.latency_batch, d.channels, d.size, e.latency_warmup, e.latency_repeats);
  r.latency_pruned = prune::measure_latency(compact, e.latency_batch, d.channels, d.size, e.latency_warmup, e.latency_repeats);
  PL_INFO("prune {}: test top-1 {:.2f}% (dense {:.2f}%), MACs {:.1f}%, latency {:.2f} → {:.2f} ms ({:.2f}x)", ctx.id,
          100 * r.test.top1(), 100 * dense.top1, 100.0 * r.counts.macs / dense.counts.macs, r.latency_dense.median_ms,
          r.latency_pruned.median_ms, r.latency_dense.median_ms / r.latency_pruned.median_ms);
  return r;
}

}  // namespace passlab::pipeline
