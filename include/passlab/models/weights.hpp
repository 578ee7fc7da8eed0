#pragma once
// Weights by name: a module's state (parameters + buffers, torchvision's state_dict keys) to and
// from HDF5. A weights file written by analysis/export_torchvision.py has one dataset per
// state_dict key under /weights (root attributes: arch, num_classes, source); run files store
// the compact model's weights the same way under /weights.
#include <filesystem>
#include <string>
#include <vector>

#include "passlab/tensorio/tensor_h5.hpp"

namespace torch::nn {
class Module;
}

namespace passlab::models {

// Parameters then buffers, by name (detached CPU-or-device tensors sharing storage).
io::NamedTensors state_dict(const torch::nn::Module& m);

struct LoadOptions {
  // Module path of the classifier (PrunableNetwork::head()). When its weight/bias shapes differ
  // from the file's only in the number of classes, they keep their fresh initialisation.
  std::string head;
  bool replace_head = true;
  bool allow_missing = false;  // tensors of the module absent from the file
  bool allow_extra = false;    // tensors of the file absent from the module
};

struct LoadReport {
  int64_t loaded = 0;
  bool head_replaced = false;
  std::vector<std::string> missing, extra;  // filled when allowed
};

// Copies tensors by name into the module (in place, dtype/device of the module kept). Throws
// IOError naming every missing, extra or mis-shaped tensor (up to a few of each) and the file.
LoadReport load_state(torch::nn::Module& m, const io::NamedTensors& tensors, const LoadOptions& opt = {},
                      const std::string& source = "<tensors>");
LoadReport load_weights(torch::nn::Module& m, const std::filesystem::path& file, const LoadOptions& opt = {},
                        const std::string& group = "weights");
void save_weights(const torch::nn::Module& m, io::Group& g);  // one dataset per state_dict key

}  // namespace passlab::models
