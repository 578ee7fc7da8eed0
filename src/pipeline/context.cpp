#include "passlab/pipeline/context.hpp"

#include "passlab/core/rng.hpp"
#include "passlab/dist/communicator.hpp"

namespace passlab::pipeline {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t TaskContext::seed(Stream s) const { return derive_seed(static_cast<uint64_t>(cfg.experiment.seed), s); }
double TaskContext::elapsed_s() const { return seconds_since(started); }
bool TaskContext::leader() const { return comm.rank() == 0; }

}  // namespace passlab::pipeline
