#include "passlab/core/process.hpp"

#include <atomic>
#include <cstdlib>
#include <string>

namespace passlab {
namespace {
std::atomic<int> g_rank{-1};
std::atomic<int> g_world{1};

bool env_int(const char* name, int& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0) return false;
  out = static_cast<int>(x);
  return true;
}
}  // namespace

ProcessIdentity identity_from_environment() {
  // Under mpirun inside a Slurm job every rank sees SLURM_PROCID=0, so Open MPI's own
  // variables come first; under srun --mpi=pmix only PMIX_RANK and SLURM_* are set.
  static const char* pairs[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                   {"PMIX_RANK", "PMIX_SIZE"},
                                   {"PMI_RANK", "PMI_SIZE"},
                                   {"SLURM_PROCID", "SLURM_NTASKS"}};
  ProcessIdentity id;
  for (auto& p : pairs) {
    int r = 0, w = 0;
    if (env_int(p[0], r)) {
      id.rank = r;
      id.world = env_int(p[1], w) && w > r ? w : r + 1;
      id.known = true;
      return id;
    }
  }
  return id;
}

ProcessIdentity process_identity() {
  int r = g_rank.load();
  if (r >= 0) return ProcessIdentity{r, g_world.load(), true};
  return identity_from_environment();
}

void set_process_identity(int rank, int world) {
  g_world.store(world);
  g_rank.store(rank);
}

}  // namespace passlab
