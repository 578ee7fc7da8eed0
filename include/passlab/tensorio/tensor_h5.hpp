#pragma once
// Tensors <-> HDF5 datasets (on top of io/hdf5.hpp). Used for weights (/weights/<param>),
// masks, checkpoints and optimizer state. Dtypes: float32, float64, int32, int64, uint8, bool
// (stored as uint8 with attribute bool=1). Shape is kept exactly; 0-d tensors are scalars.
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "passlab/io/hdf5.hpp"

namespace passlab::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes a contiguous CPU copy of `t` as dataset `name` of `g`.
void write_tensor(Group& g, const std::string& name, const at::Tensor& t, const WriteOptions& opt = {});
// Reads dataset `name` as a CPU tensor of its stored dtype and shape.
at::Tensor read_tensor(const Group& g, const std::string& name);

// A flat group of named tensors (names may contain '.', e.g. "layer1.0.conv1.weight").
void write_tensors(Group& g, const NamedTensors& named, const WriteOptions& opt = {});
NamedTensors read_tensors(const Group& g);  // sorted by name

}  // namespace passlab::io
