// Run under `mpirun -np 3` (ctest train_mpi3): a non-power-of-two group.
#include "train/train_cases.inc"
