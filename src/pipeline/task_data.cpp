#include "passlab/pipeline/task_data.hpp"

namespace passlab::pipeline {

TaskData open_data(const config::Config& cfg) {
  TaskData d;
  d.splits = data::open_splits(cfg.data, cfg.resolved_store());
  d.info = d.splits.train.store()->info();
  // ImageNet-pretrained weights expect three channels; a gray store is replicated.
  d.channels = cfg.model.pretrained.empty() ? d.info.channels : 3;
  d.size = cfg.data.input_size > 0 ? cfg.data.input_size : d.info.height;
  for (int64_t c = 0; c < d.channels; ++c) {
    size_t src = static_cast<size_t>(d.info.channels == 1 ? 0 : c);
    d.mean.push_back(d.info.mean.at(src));
    d.std.push_back(d.info.std.at(src));
  }
  return d;
}

models::ModelSpec dense_spec(const config::Config& cfg, const TaskData& d) {
  models::ModelSpec s;
  s.arch = cfg.model.arch;
  s.num_classes = d.info.num_classes();
  s.in_channels = d.channels;
  s.input_size = d.size;
  s.stem = cfg.model.stem;
  return s;
}

}  // namespace passlab::pipeline
