#pragma once
// Process identity for log prefixes and error messages. Before MPI_Init the rank is read from
// the launcher's environment (OMPI_COMM_WORLD_*, then PMIX_*, then SLURM_*); the dist runtime
// sets the true values after MPI_Init.
namespace passlab {

struct ProcessIdentity {
  int rank = 0;
  int world = 1;
  bool known = false;  // false: single process without a launcher, or not yet determined
};

ProcessIdentity process_identity();
void set_process_identity(int rank, int world);
// Rank and size from the launcher's environment, without MPI.
ProcessIdentity identity_from_environment();

}  // namespace passlab
