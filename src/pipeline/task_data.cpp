#include "passlab/pipeline/task_data.hpp"

#include "passlab/core/check.hpp"
#include "passlab/pipeline/pretrained.hpp"

namespace passlab::pipeline {

TaskData open_data(const config::Config& cfg) {
  TaskData d;
  d.splits = data::open_splits(cfg.data, cfg.resolved_store());
  d.info = d.splits.train.store()->info();
  auto& source = d.source;
  if (!cfg.model.pretrained.empty()) source = open_pretrained(cfg.model.pretrained, cfg.model.arch);
  // The model takes the input the pretrained weights expect (3 channels for ImageNet weights; a
  // gray store is replicated), else the store's.
  d.channels = source ? source->channels : d.info.channels;
  d.size = cfg.data.input_size > 0 ? cfg.data.input_size : d.info.height;
  d.normalize = cfg.data.normalize;
  if (d.normalize == "source") {
    d.mean = source->mean;  // config validation: "source" comes with model.pretrained
    d.std = source->std;
  } else if (d.normalize == "imagenet") {
    PASSLAB_CHECK(d.channels == 3, ConfigError,
                  "data.normalize = \"imagenet\" needs a 3-channel model input; this one has " + std::to_string(d.channels));
    d.mean = kImagenetMean;
    d.std = kImagenetStd;
  } else {
    for (int64_t c = 0; c < d.channels; ++c) {
      size_t src = static_cast<size_t>(d.info.channels == 1 ? 0 : c);
      d.mean.push_back(d.info.mean.at(src));
      d.std.push_back(d.info.std.at(src));
    }
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
