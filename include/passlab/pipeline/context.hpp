#pragma once
// What every stage of a task needs to know: the task's config, the process runtime, the run
// group's communicator, the task id and when the task started; and the random streams the
// stages draw from, so that no two stages share random numbers.
#include <chrono>
#include <cstdint>
#include <string>

#include "passlab/config/config.hpp"

namespace passlab::dist {
class Runtime;
class Communicator;
}  // namespace passlab::dist

namespace passlab::pipeline {

// Streams of derive_seed(experiment.seed, ·). The values are part of the results: changing one
// changes every number of the stage that uses it.
enum Stream : uint64_t {
  kInit = 1, kDenseData = 2, kSearchData = 3, kFinetuneData = 4, kBaseline = 5, kTaylor = 6, kRegulariseData = 7,
  kProbeData = 8, kHeadData = 9
};

struct TaskContext {
  const config::Config& cfg;
  const dist::Runtime& rt;
  dist::Communicator& comm;
  std::string id;  // dense_id or run_id
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  uint64_t seed(Stream s) const;   // derive_seed(experiment.seed, s)
  double elapsed_s() const;        // since `started`
  bool leader() const;             // rank 0 of the run group: the one that writes files
};

double seconds_since(std::chrono::steady_clock::time_point t0);

}  // namespace passlab::pipeline
