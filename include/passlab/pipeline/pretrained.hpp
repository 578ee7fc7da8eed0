#pragma once
// What model.pretrained names (docs/transfer.md), and the input the source model expects:
//   * a torchvision export (analysis/export_torchvision.py): /weights, root attribute arch; its
//     weights expect 3 channels normalised with ImageNet's statistics (so does any other file
//     without a kind attribute: a weights file is loaded by tensor names and shapes);
//   * a passlab dense file (kind = dense): /weights, and /normalization (mean, std per input channel);
//   * a passlab run file (kind = prune): stands for the dense file it was pruned from,
//     <results>/dense/<dense_id>.h5 beside its runs/ directory. Its own /weights are the compact
//     network, whose widths are not the architecture's, so they cannot start a dense model.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace passlab::pipeline {

// torchvision's ImageNet normalisation (transforms.Normalize in its reference recipes).
inline const std::vector<double> kImagenetMean = {0.485, 0.456, 0.406};
inline const std::vector<double> kImagenetStd = {0.229, 0.224, 0.225};

struct PretrainedSource {
  std::filesystem::path weights_file;  // the file whose /weights start the dense model
  std::string kind;                    // "torchvision" or "dense"
  int64_t channels = 3;                // input channels the weights expect
  std::vector<double> mean, std;       // the source's input normalisation, per input channel
};

// Reads what `file` is and checks that it holds `arch`'s weights; throws IOError naming the file
// and the problem (a run file whose dense file is gone, another architecture, a passlab file
// written before /normalization was recorded).
PretrainedSource open_pretrained(const std::filesystem::path& file, const std::string& arch);

}  // namespace passlab::pipeline
