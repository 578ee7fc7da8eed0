#pragma once
// Shared by the sweep tests: a tiny sweep over the synthetic store of tests/pass/fixture.hpp
// (dense epochs 1, fine-tune 1 epoch, no search) and helpers to read the sweep journal.
// BatchNorm groups of 16 make each batch of 32 two groups, so run groups of 2 ranks work.
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pass/fixture.hpp"
#include "support/test_util.hpp"

namespace passlab::test {

// TOML of a tiny sweep in `dir` (store dir/tiny.h5, results dir/results).
inline std::string tiny_sweep_toml(const fs::path& dir, const std::string& sweep_lines, const std::string& dist_lines = "") {
  return R"(
[experiment]
name = "tiny_sweep"
[data]
dataset = "tiny"
root = ")" + dir.string() + R"("
val_fraction = 0.1
loader_threads = 1
[model]
arch = "resnet20"
ghost_batch = 16
[dense]
epochs = 1
batch_size = 32
lr = 0.05
[search]
steps = 3
batch_size = 32
hidden = 8
embed = 4
[prune]
method = "random_uniform"
[finetune]
epochs = 1
batch_size = 32
[eval]
latency_batch = 2
latency_warmup = 0
latency_repeats = 1
[sweep]
heartbeat_timeout_s = 5.0
)" + sweep_lines + R"(
[dist]
threads_per_rank = 1
)" + dist_lines + R"(
[output]
dir = ")" + (dir / "results").string() + R"("
progress = "lines"
)";
}

inline config::Config tiny_sweep(const fs::path& dir, const std::string& sweep_lines) {
  return config::load_string(tiny_sweep_toml(dir, sweep_lines), "tiny_sweep.toml");
}

struct JournalLine {
  std::string time, holder, event, id, detail;
};
inline std::vector<JournalLine> read_journal(const fs::path& results) {
  std::vector<JournalLine> out;
  std::istringstream in(read_text(results / "journal.tsv"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    JournalLine j;
    std::getline(f, j.time, '\t');
    std::getline(f, j.holder, '\t');
    std::getline(f, j.event, '\t');
    std::getline(f, j.id, '\t');
    std::getline(f, j.detail);
    out.push_back(j);
  }
  return out;
}
inline int count_events(const std::vector<JournalLine>& j, const std::string& event, const std::string& id) {
  int n = 0;
  for (auto& l : j) n += l.event == event && l.id == id;
  return n;
}

}  // namespace passlab::test
