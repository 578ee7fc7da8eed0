#!/usr/bin/env bash
# Runs a passlab sweep on this machine under mpirun: one rank per GPU (the runtime gives each
# local rank its own GPU), or 2 ranks on a CPU-only machine; handles root, oversubscription and
# binding. Everything after the config goes to `passlab run`.
#   launch/local.sh [-n RANKS] [--dry] CONFIG.toml [--set key=value ...] [--retry-failed]
# Environment: PASSLAB_BIN (default build/passlab), MPIRUN (default mpirun),
#   PASSLAB_MPI_ARGS (extra mpirun arguments), PASSLAB_THREADS (intra-op threads per rank).
# Exit status is passlab's: 0 done, 1 a task failed for good, 75 stopped by SIGUSR1/SIGTERM
# (relaunch to continue: finished tasks are kept, the rest resume from their checkpoints).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${PASSLAB_BIN:-$here/build/passlab}"
mpirun="${MPIRUN:-mpirun}"
np=""
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--np) np="$2"; shift 2 ;;
    --dry) dry=1; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: launch/local.sh [-n RANKS] [--dry] CONFIG.toml [passlab run options]" >&2; exit 2; }
[ -x "$bin" ] || { echo "launch/local.sh: $bin not found; build first (README, Build) or set PASSLAB_BIN" >&2; exit 2; }

cores=$(nproc)
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && [ "$gpus" -gt 0 ]; then
  IFS=, read -r -a vis <<<"$CUDA_VISIBLE_DEVICES"
  gpus=${#vis[@]}
fi
if [ -z "$np" ]; then
  if [ "$gpus" -gt 0 ]; then np=$gpus; else np=2; fi
fi
if [ "$gpus" -gt 0 ] && [ "$np" -gt "$gpus" ]; then
  echo "launch/local.sh: $np ranks but $gpus GPU(s): ranks would share GPUs; use -n $gpus" >&2
  exit 2
fi

args=(-np "$np")
# Open MPI refuses root without these; containers often run as root.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
threads=${PASSLAB_THREADS:-$(( cores / np ))}
if [ "$threads" -lt 1 ]; then threads=1; fi
if [ "$np" -gt "$cores" ]; then
  # More ranks than cores: allowed, unbound (binding would stack ranks on the same core).
  args+=(--oversubscribe --bind-to none)
else
  # Each rank gets its own block of cores, next to its GPU where the topology says so.
  args+=(--map-by "slot:PE=$threads" --bind-to core)
fi
# Pass the environment passlab, HDF5 and NCCL read to every rank.
for v in $(env | grep -oE '^(PASSLAB_[A-Z0-9_]+|NCCL_[A-Z0-9_]+|HDF5_USE_FILE_LOCKING|CUDA_VISIBLE_DEVICES|OMP_NUM_THREADS)=' | tr -d '='); do
  args+=(-x "$v")
done
# shellcheck disable=SC2206
extra=(${PASSLAB_MPI_ARGS:-})
cmd=("$mpirun" "${args[@]}" "${extra[@]}" "$bin" run "$1")
# The runtime picks cores / local ranks threads itself; PASSLAB_THREADS overrides it.
if [ -n "${PASSLAB_THREADS:-}" ]; then cmd+=(--set "dist.threads_per_rank=$PASSLAB_THREADS"); fi
cmd+=("${@:2}")
echo "launch/local.sh: ${cmd[*]}" >&2
if [ "$dry" = 1 ]; then exit 0; fi
# mpirun forwards SIGUSR1/SIGUSR2 to the ranks: they finish the current task and exit 75.
exec "${cmd[@]}"
