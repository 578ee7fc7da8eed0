// Run under `mpirun -np 2` (ctest train_mpi2).
#include "train/train_cases.inc"
