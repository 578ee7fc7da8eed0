#!/usr/bin/env bash
# Runs a passlab sweep on this machine under mpirun: one rank per GPU (the runtime gives each
# local rank its own GPU), or 2 ranks on a CPU-only machine; handles root, oversubscription and
# binding. Everything after the config goes to `passlab run`.
#   launch/local.sh [-n RANKS] [--dry] CONFIG.toml [--set key=value ...] [--retry-failed]
# Environment: PASSLAB_BIN (default build/passlab), MPIRUN (default mpirun),
#   PASSLAB_MPI_ARGS (extra mpirun arguments), PASSLAB_THREADS (intra-op threads per rank).
# Exit status is passlab's: 0 done, 1 a task failed for good, 2 bad configuration, 4 a collective
# timed out, 75 stopped by SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 to this script (or to a rank):
# the running stage is checkpointed; relaunch to continue (finished tasks are kept, the
# interrupted one resumes from its checkpoint). A second signal 2 s or more later ends the ranks
# at once, the last checkpoint kept.
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
# Stop signals. Open MPI's mpirun (4.1) answers SIGTERM and SIGINT by ending the job itself:
# SIGCONT to the ranks, SIGTERM 1 s later, SIGKILL 1 s after that (odls_base_sigkill_timeout),
# then it exits 1 whatever the ranks returned. It forwards SIGUSR1 and SIGUSR2 untouched. So
# mpirun runs in a session of its own (a Ctrl-C on the terminal reaches only this script) and
# every stop signal this script gets goes to mpirun as SIGUSR1: the ranks agree at their next
# step, checkpoint the stage, exit 75, and this script exits with mpirun's status.
setsid_cmd=()
if command -v setsid >/dev/null 2>&1; then setsid_cmd=(setsid); fi
"${setsid_cmd[@]}" "${cmd[@]}" &
mpirun_pid=$!
# shellcheck disable=SC2317  # called by the traps below
stop_ranks() {
  echo "launch/local.sh: $1 received: asking the ranks to stop (SIGUSR1 to mpirun); they checkpoint the" \
       "running stage and exit 75" >&2
  kill -USR1 "$mpirun_pid" 2>/dev/null || true
}
for sig in TERM INT HUP USR1 USR2; do
  # shellcheck disable=SC2064
  trap "stop_ranks SIG$sig" "$sig"
done
# `wait` returns early when a trapped signal arrives: wait again until mpirun has ended.
while kill -0 "$mpirun_pid" 2>/dev/null; do wait "$mpirun_pid" || true; done
rc=0
wait "$mpirun_pid" || rc=$?
exit "$rc"
