#pragma once
// The data of a task: the train/val/test splits of its store and the input geometry the model
// sees (channels, side, normalisation), and the dense architecture built for it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "passlab/config/config.hpp"
#include "passlab/data/split.hpp"
#include "passlab/models/prunable.hpp"
#include "passlab/pipeline/pretrained.hpp"

namespace passlab::pipeline {

struct TaskData {
  data::Splits splits;
  data::StoreInfo info;
  int64_t channels = 0;  // the model's input channels
  int64_t size = 0;      // the model's input side
  std::vector<double> mean, std;  // per model input channel (data.normalize), what the loaders apply
  std::string normalize;          // data.normalize they came from
  std::optional<PretrainedSource> source;  // what model.pretrained names, when set
};

TaskData open_data(const config::Config& cfg);

// The dense architecture of the task on this data (dense widths).
models::ModelSpec dense_spec(const config::Config& cfg, const TaskData& d);

}  // namespace passlab::pipeline
