#pragma once
// Shared by the pass and sweep tests: a tiny learnable synthetic store and a tiny config.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "passlab/config/config.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/data/store.hpp"
#include "passlab/dist/runtime.hpp"

namespace passlab::test {
namespace fs = std::filesystem;

// MPI may be initialised once per process: one runtime for the whole binary.
inline dist::Runtime& runtime() {
  static dist::Runtime rt{dist::RuntimeOptions{}};
  return rt;
}

// 4 classes of 16x16 gray images: a bright 4x4 square in the class's quadrant, plus noise
// (`num_classes` < 4: the first quadrants only).
inline void write_store(const fs::path& path, int64_t n_train, int64_t n_test, int64_t num_classes = 4) {
  data::StoreWriter::Meta m;
  m.format = "synthetic";
  m.source = "test_task.cpp";
  m.classes = {"nw", "ne", "sw", "se"};
  m.classes.resize(static_cast<size_t>(num_classes));
  m.height = m.width = 16;
  m.channels = 1;
  data::StoreWriter w(path, m);
  Rng rng(5);
  for (auto [split, n] : {std::pair<const char*, int64_t>{"train", n_train}, {"test", n_test}}) {
    w.begin_split(split, n);
    std::vector<uint8_t> img(16 * 16);
    for (int64_t i = 0; i < n; ++i) {
      int64_t label = i % num_classes;
      for (auto& p : img) p = static_cast<uint8_t>(rng.uniform_below(60));
      int r0 = label < 2 ? 2 : 10, c0 = label % 2 == 0 ? 2 : 10;
      for (int r = r0; r < r0 + 4; ++r)
        for (int c = c0; c < c0 + 4; ++c) img[static_cast<size_t>(r * 16 + c)] = 230;
      w.write(1, img.data(), &label);
    }
  }
  w.commit();
}

inline config::Config tiny_config(const fs::path& dir, const std::string& method) {
  config::Config c = config::load_string(R"(
[data]
dataset = "tiny"
val_fraction = 0.1
loader_threads = 1
[model]
arch = "resnet20"
[dense]
epochs = 2
batch_size = 32
lr = 0.05
[search]
steps = 8
batch_size = 32
hidden = 16
embed = 8
[finetune]
epochs = 1
batch_size = 32
[eval]
latency_batch = 4
latency_warmup = 1
latency_repeats = 2
[output]
progress = "none"
)", "tiny.toml");
  c.data.root = dir.string();
  c.output.dir = (dir / "results").string();
  c.prune.method = method;
  c.prune.budget = 0.5;
  return c;
}

}  // namespace passlab::test
