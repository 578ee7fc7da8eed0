// Run under `mpirun -np 3` (ctest dist_mpi3): odd rank counts exercise non-power-of-two
// reduction algorithms.
#include "dist/comm_cases.inc"
