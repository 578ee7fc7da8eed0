// The prune task as its stages (tasks.hpp).
#include "passlab/core/log.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/dense_model.hpp"
#include "passlab/pipeline/evaluation.hpp"
#include "passlab/pipeline/keep_plan.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/plan_agreement.hpp"
#include "passlab/pipeline/probe.hpp"
#include "passlab/pipeline/run_writer.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/pipeline/training.hpp"
#include "passlab/prune/slice.hpp"

namespace passlab::pipeline {

void run_prune_task(const config::Config& cfg, const dist::Runtime& rt, dist::Communicator& comm) {
  const TaskContext ctx{cfg, rt, comm, config::run_id(cfg)};
  const TaskData d = open_data(cfg);
  DenseModel dense = load_dense(ctx, d);

  const auto t_search = std::chrono::steady_clock::now();
  MethodPlan plan = find_keep_plan(ctx, d, *dense.net);
  agree_on_plan(plan.alloc, dense.net->structure(), comm,
                plan.search ? PlanPolicy::must_match : PlanPolicy::follow_leader, ctx.id);
  const double search_seconds = seconds_since(t_search);
  const auto& alloc = plan.alloc;
  PL_INFO("prune {}: {} at {:.0f}% of MACs kept {:.2f}% ({} of {} MACs){}", ctx.id, cfg.prune.method,
          100 * cfg.prune.budget, 100 * alloc.ratio(), alloc.macs, alloc.dense_macs,
          alloc.met_budget ? "" : " — budget NOT met within tolerance");

  // The network the plan slices: the dense model, or its regularised copy (depgraph, growreg).
  const models::PrunableNetwork& source = plan.source ? *plan.source : *dense.net;
  // Before the fine-tune, on a compact network of its own: the fine-tune starts from the same
  // state with or without the probe.
  const std::optional<ProbeResult> probe = probe_task_plan(ctx, d, source, alloc.keep);
  auto compact = prune::make_compact(source, alloc.keep);
  compact->to(rt.device());
  pass::VisualPrompt* prompt = (plan.search && cfg.finetune.keep_prompt) ? plan.search->prompt() : nullptr;
  TrainedStage finetuned = finetune(ctx, d, *compact, prompt);

  const PrunedEvaluation evaluation = evaluate_and_measure(ctx, d, finetuned, dense, *compact);
  write_run_file(ctx, PruneOutcome{dense, plan, search_seconds, *compact, finetuned, evaluation, probe, d});
  if (ctx.leader()) remove_work_dir(cfg, ctx.id);  // the search checkpoint was kept until now
}

}  // namespace passlab::pipeline
