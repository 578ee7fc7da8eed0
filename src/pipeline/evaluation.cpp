#include "passlab/pipeline/evaluation.hpp"

#include "passlab/core/log.hpp"

namespace passlab::pipeline {

PrunedEvaluation evaluate_and_measure(const TaskContext& ctx, const TaskData& d, TrainedStage& finetuned,
                                      DenseModel& dense, models::PrunableNetwork& compact) {
  const auto& e = ctx.cfg.eval;
  PrunedEvaluation r;
  r.test = finetuned.test();
  r.counts = compact.count();
  r.speed = prune::measure_speedup(*dense.net, compact, e.latency_batch, d.channels, d.size, prune::speedup_options(e));
  const auto& sp = r.speed;
  PL_INFO("prune {}: test top-1 {:.2f}% (dense {:.2f}%), MACs {:.1f}%, latency ({}) {:.2f} → {:.2f} ms, speed-up {:.2f}x "
          "(spread {:.2f} over {} rounds{}; load {:.2f} → {:.2f} on {} cores)",
          ctx.id, 100 * r.test.top1(), 100 * dense.top1, 100.0 * r.counts.macs / dense.counts.macs, prune::to_string(sp.form), sp.dense_median_ms,
          sp.compact_median_ms, sp.speedup, sp.spread, sp.rounds, sp.unreliable ? ", UNRELIABLE" : "", sp.load_start.load_1min,
          sp.load_end.load_1min, sp.load_end.cores);
  if (sp.unreliable)
    PL_WARN("prune {}: speed-up spread {:.2f} exceeds eval.speedup_max_spread = {:.2f}; the run file flags it unreliable",
            ctx.id, sp.spread, e.speedup_max_spread);
  return r;
}

}  // namespace passlab::pipeline
