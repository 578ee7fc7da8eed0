// The dense task as its stages (tasks.hpp).
#include "passlab/core/log.hpp"
#include "passlab/pipeline/context.hpp"
#include "passlab/pipeline/dense_model.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/run_writer.hpp"
#include "passlab/pipeline/task_data.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/pipeline/training.hpp"

namespace passlab::pipeline {

void run_dense_task(const config::Config& cfg, const dist::Runtime& rt, dist::Communicator& comm) {
  const TaskContext ctx{cfg, rt, comm, config::dense_id(cfg)};
  const TaskData d = open_data(cfg);
  auto net = build_dense(ctx, d);
  TrainedStage trained = train_dense(ctx, d, *net);
  const auto test = trained.test();
  PL_INFO("dense {}: test top-1 {:.2f}% ({:.0f} s)", ctx.id, 100 * test.top1(), ctx.elapsed_s());
  write_dense_file(ctx, d, *net, trained.fit, test);
  if (ctx.leader()) remove_work_dir(cfg, ctx.id);
}

}  // namespace passlab::pipeline
