#include "passlab/pipeline/stage_loaders.hpp"

#include <algorithm>

#include "passlab/core/log.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/pipeline/paths.hpp"

namespace passlab::pipeline {
namespace {

int64_t per_rank(int64_t global_batch, const dist::Communicator& comm) {
  int64_t b = global_batch / comm.size();
  if (b * comm.size() != global_batch)
    PL_WARN("batch size {} is not divisible by the {} ranks of the group; using {} per rank", global_batch, comm.size(), b);
  return std::max<int64_t>(1, b);
}

}  // namespace

std::unique_ptr<data::Loader> make_loader(const TaskContext& ctx, const TaskData& d, const data::SplitView& view,
                                          bool train, int64_t global_batch, uint64_t seed) {
  const int64_t group = train ? config::ghost_group(ctx.cfg.model.ghost_batch, global_batch) : 0;
  auto opt = data::loader_options(ctx.cfg.data, d.info, train, group > 0 ? global_batch : per_rank(global_batch, ctx.comm),
                                  seed, ctx.comm.rank(), ctx.comm.size(), d.channels);
  opt.ghost_group = group;
  opt.mean = d.mean;  // per model input channel (data.normalize)
  opt.std = d.std;
  opt.device = ctx.rt.device();
  return std::make_unique<data::Loader>(view, opt);
}

data::BatchSource* TrainingStage::eval() const { return val->dataset_size() > 0 ? val.get() : nullptr; }

TrainingStage make_training_stage(const TaskContext& ctx, const TaskData& d, const config::TrainConfig& tc,
                                  const std::string& name, uint64_t seed) {
  TrainingStage s;
  s.train = make_loader(ctx, d, d.splits.train, true, tc.batch_size, seed);
  s.val = make_loader(ctx, d, d.splits.val, false, tc.eval_batch_size, 0);
  s.test = make_loader(ctx, d, d.splits.test, false, tc.eval_batch_size, 0);
  s.options = train::TrainerOptions::from(tc, ctx.cfg.dist, ctx.cfg.output, ctx.rt.device(), name + " " + ctx.id, seed,
                                          work_dir(ctx.cfg, ctx.id) / (name + ".ckpt.h5"));
  s.options.remove_checkpoint_when_done = true;
  s.options.bn_group = config::ghost_group(ctx.cfg.model.ghost_batch, tc.batch_size);
  return s;
}

}  // namespace passlab::pipeline
