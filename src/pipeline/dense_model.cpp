#include "passlab/pipeline/dense_model.hpp"

#include <torch/torch.h>

#include "passlab/core/log.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/paths.hpp"

namespace passlab::pipeline {

models::PrunableNetworkPtr build_dense(const TaskContext& ctx, const TaskData& d) {
  const auto& cfg = ctx.cfg;
  torch::manual_seed(ctx.seed(kInit));
  auto net = models::make_model(dense_spec(cfg, d));
  if (d.source) {
    models::LoadOptions lo;
    lo.head = net->head();
    auto rep = models::load_weights(*net, d.source->weights_file, lo);
    PL_INFO("dense {}: {} tensors from {} ({}){}", ctx.id, rep.loaded, d.source->weights_file.string(), d.source->kind,
            rep.head_replaced ? ", new head" : "");
  }
  net->to(ctx.rt.device());
  PL_INFO("dense {}: {} on {} ({} train / {} val / {} test images, {}x{}x{}), {} MACs", ctx.id, cfg.model.arch,
          cfg.data.dataset, d.splits.train.size(), d.splits.val.size(), d.splits.test.size(), d.channels, d.size, d.size,
          net->count().macs);
  return net;
}

DenseModel load_dense(const TaskContext& ctx, const TaskData& d) {
  DenseModel m;
  m.net = models::make_model(dense_spec(ctx.cfg, d));
  const auto file = dense_path(ctx.cfg);
  {
    // A usable dense file only (io/result_file.hpp): a damaged or non-finite one is refused here
    // rather than blamed on the prune task that would start from it.
    io::File f = io::run_file::open_usable(file);
    models::load_weights(*m.net, file);
    m.top1 = f.root().open_group("summary").attr_double("top1");
  }
  m.net->to(ctx.rt.device());
  m.net->eval();
  m.counts = m.net->count();
  return m;
}

}  // namespace passlab::pipeline
