// Run under `mpirun -np 2` (ctest dist_mpi2).
#include "dist/comm_cases.inc"
