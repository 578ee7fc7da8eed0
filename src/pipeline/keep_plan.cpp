#include "passlab/pipeline/keep_plan.hpp"

#include "passlab/config/methods.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/regularise.hpp"
#include "passlab/pipeline/stage_loaders.hpp"

namespace passlab::pipeline {
namespace {

// PASS: the mask search over this rank's shard of the training split (kSearchData), optionally
// started from another run's search (search.init_from); its scores allocated to the budget.
MethodPlan pass_plan(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& dense) {
  const auto& cfg = ctx.cfg;
  MethodPlan p;
  pass::InputGeometry geo{d.channels, d.size, d.mean, d.std};
  p.search = std::make_unique<pass::PassSearch>(dense, cfg, geo);
  if (!cfg.search.init_from.empty()) p.search->init_from(cfg.search.init_from);
  auto loader = make_loader(ctx, d, d.splits.train, true, cfg.search.batch_size, ctx.seed(kSearchData));
  p.curves = p.search->run(*loader, ctx.comm,
                           pass::PassSearch::trainer_options(cfg, ctx.rt.device(), "search " + ctx.id,
                                                             work_dir(cfg, ctx.id) / "search.ckpt.h5"));
  p.alloc = p.search->allocate();
  return p;
}

// A baseline criterion on the dense weights; a criterion that needs data (the registry's
// needs_data: taylor_global) reads search.taylor_batches training batches of this rank's shard
// (kTaylor); random_uniform draws from kBaseline.
MethodPlan baseline_plan(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& dense) {
  const auto& cfg = ctx.cfg;
  const std::string& method = cfg.prune.method;
  std::unique_ptr<data::Loader> loader;
  prune::BatchSource batches;
  if (config::method_spec(method).needs_data()) {
    loader = make_loader(ctx, d, d.splits.train, true, cfg.search.batch_size, ctx.seed(kTaylor));
    loader->start_epoch(0);
    batches = [&loader](at::Tensor& x, at::Tensor& y) {
      auto b = loader->next();
      if (!b) return false;
      x = b->images;
      y = b->labels;
      return true;
    };
  }
  MethodPlan p;
  p.alloc = prune::allocate_baseline(dense, method, prune::allocation_options(cfg.prune), batches ? &batches : nullptr,
                                     cfg.search.taylor_batches, ctx.seed(kBaseline));
  return p;
}

// depgraph: sparse training of a copy with the group-norm regulariser, then the criterion on the
// copy. growreg: the criterion on the dense network picks the channels to remove, a copy is
// trained with the growing penalty on them, and exactly those are removed from the copy.
MethodPlan regularised_plan(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& dense) {
  const auto& cfg = ctx.cfg;
  const auto& spec = config::method_spec(cfg.prune.method);
  const auto opt = prune::allocation_options(cfg.prune);
  MethodPlan p;
  RegularisedModel reg;
  if (spec.regularisation == config::MethodRegularisation::group_norm) {
    reg = regularise(ctx, d, dense, depgraph_penalty(cfg, dense.structure()));
    p.alloc = prune::allocate_baseline(*reg.net, cfg.prune.method, opt, nullptr, 0, ctx.seed(kBaseline));
  } else {
    p.alloc = prune::allocate_baseline(dense, cfg.prune.method, opt, nullptr, 0, ctx.seed(kBaseline));
    reg = regularise(ctx, d, dense, growreg_penalty(cfg, p.alloc, dense.structure()));
  }
  p.source = reg.net;
  p.regularise_seconds = reg.seconds;
  return p;
}

}  // namespace

MethodPlan find_keep_plan(const TaskContext& ctx, const TaskData& d, models::PrunableNetwork& dense) {
  const auto& spec = config::method_spec(ctx.cfg.prune.method);
  MethodPlan p = spec.is_pass()                                                 ? pass_plan(ctx, d, dense)
                 : spec.regularisation != config::MethodRegularisation::none ? regularised_plan(ctx, d, dense)
                                                                              : baseline_plan(ctx, d, dense);
  dense.clear_masks();
  return p;
}

}  // namespace passlab::pipeline
