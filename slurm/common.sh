# shellcheck shell=bash
# Sourced by the slurm/*.sbatch templates: runs `passlab run CONFIG [options]` as one srun step
# (one rank per task, one GPU per rank), and handles preemption and the time limit:
#   * SIGUSR1 (sent by `#SBATCH --signal=B:USR1@300` before the time limit, or by
#     `scancel --signal=USR1 --batch JOB`) and SIGTERM are forwarded to the ranks as SIGUSR1:
#     they agree at their next training step, checkpoint the running stage and exit 75 without
#     taking a new task (a SIGTERM that reaches the ranks directly, as scancel sends it, or a
#     signal to any one rank does the same);
#   * if they have not exited after PASSLAB_STOP_GRACE seconds (default 240), the job is
#     requeued anyway: the running task resumes from its last checkpoint;
#   * a job stopped this way is requeued (`scontrol requeue`); the relaunch skips finished
#     tasks and takes over the claims of the killed ones. A plain `scancel` (SIGTERM to every
#     process, SIGKILL KillWait later) stops the ranks the same way, but a cancelled job is not
#     requeued: relaunch it. SIGTERM to the srun process itself is not a stop request: srun
#     answers it by killing the step's tasks at once ("srun: forcing job termination"); the
#     relaunch resumes the stage from its last periodic checkpoint.
#   * exit 4 (a collective timed out: a rank died or hung) requeues the job too, while it has
#     been restarted fewer than PASSLAB_TIMEOUT_REQUEUES times (default 2).
# Environment: PASSLAB_ROOT (checkout; default $SLURM_SUBMIT_DIR), PASSLAB_BIN (default
# $PASSLAB_ROOT/build/passlab), PASSLAB_RANKS_PER_RUN (ranks per task; default the config's),
# PASSLAB_SRUN_ARGS (extra srun arguments), PASSLAB_STOP_GRACE, PASSLAB_NO_REQUEUE=1,
# PASSLAB_TIMEOUT_REQUEUES, and the
# site file PASSLAB_SITE (default $PASSLAB_ROOT/slurm/site.env, if present; see
# slurm/site.env.example): sourced here for PASSLAB_MODULES (`module load`ed), PASSLAB_SETUP
# (a shell line run before srun) and the variables above. Its resources are applied at submission
# by slurm/submit.sh.
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: sbatch $0 CONFIG.toml [passlab run options]" >&2
  exit 2
fi
passlab_root="${PASSLAB_ROOT:-${SLURM_SUBMIT_DIR:-$(pwd)}}"
passlab_bin="${PASSLAB_BIN:-$passlab_root/build/passlab}"
cd "$passlab_root" || exit 2
passlab_site="${PASSLAB_SITE:-$passlab_root/slurm/site.env}"
if [ -f "$passlab_site" ]; then
  # shellcheck disable=SC1090
  source "$passlab_site" || { echo "passlab: cannot source the site file $passlab_site" >&2; exit 2; }
elif [ -n "${PASSLAB_SITE:-}" ]; then
  echo "passlab: site file $PASSLAB_SITE not found" >&2
  exit 2
fi
if [ -n "${PASSLAB_MODULES:-}" ]; then
  set +u  # environment-module implementations read unset variables
  # shellcheck disable=SC2086
  module load ${PASSLAB_MODULES} || { echo "passlab: module load $PASSLAB_MODULES failed" >&2; exit 2; }
  set -u
fi
if [ -n "${PASSLAB_SETUP:-}" ]; then
  eval "$PASSLAB_SETUP" || { echo "passlab: PASSLAB_SETUP failed: $PASSLAB_SETUP" >&2; exit 2; }
fi
passlab_bin="${PASSLAB_BIN:-$passlab_bin}"
if [ ! -x "$passlab_bin" ]; then
  echo "passlab: $passlab_bin not found or not executable (set PASSLAB_BIN or PASSLAB_ROOT)" >&2
  exit 2
fi
passlab_config="$1"
shift
# Result files are written to a temporary name and renamed, so HDF5's own file locks are not
# needed, and on NFS/Lustre without flock they make opens fail (a complete file would look
# damaged and be redone).
export HDF5_USE_FILE_LOCKING="${HDF5_USE_FILE_LOCKING:-FALSE}"
passlab_args=()
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then passlab_args+=(--set "dist.threads_per_rank=$SLURM_CPUS_PER_TASK"); fi
if [ -n "${PASSLAB_RANKS_PER_RUN:-}" ]; then passlab_args+=(--set "dist.ranks_per_run=$PASSLAB_RANKS_PER_RUN"); fi

echo "passlab: job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}," \
     "restart ${SLURM_RESTART_COUNT:-0}, ${SLURM_NTASKS:-?} rank(s) on ${SLURM_JOB_NODELIST:-?}: $passlab_config $*"

passlab_stopping=0
passlab_deadline=0
passlab_step=""
passlab_on_signal() {
  if [ "$passlab_stopping" = 0 ]; then
    passlab_stopping=1
    passlab_deadline=$(( $(date +%s) + ${PASSLAB_STOP_GRACE:-240} ))
    echo "passlab: $1 received: the ranks checkpoint their current stage, then the job is requeued"
    if [ -n "$passlab_step" ]; then kill -USR1 "$passlab_step" 2>/dev/null; fi
  fi
}
trap 'passlab_on_signal USR1' USR1
trap 'passlab_on_signal TERM' TERM

passlab_requeue() {
  if [ "${PASSLAB_NO_REQUEUE:-0}" = 1 ] || [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "passlab: not requeued (PASSLAB_NO_REQUEUE or no job): relaunch to continue"
    return
  fi
  echo "passlab: requeueing job $SLURM_JOB_ID"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    # A cancelled job (plain scancel) cannot be requeued: its stopped stage waits for a relaunch.
    echo "passlab: job $SLURM_JOB_ID could not be requeued (cancelled?): relaunch to continue"
  fi
}

# srun forwards SIGUSR1 to every rank of the step. --mpi=pmix: Debian's Open MPI has no PMI2.
# srun (22.05) exits 0 when the step's tasks fail to launch ("task 0 launch failed"), so its
# messages are kept (and shown) to tell that apart from a finished sweep; their tee ignores the
# stop signals (Slurm's SIGTERM reaches every process of the batch step) so srun keeps its stderr.
passlab_srun_log="$(mktemp "${TMPDIR:-/tmp}/passlab-srun.XXXXXX")"
# shellcheck disable=SC2086
srun --mpi=pmix --kill-on-bad-exit=1 ${PASSLAB_SRUN_ARGS:-} \
  "$passlab_bin" run "$passlab_config" "${passlab_args[@]}" "$@" \
  2> >(trap '' TERM USR1 INT HUP; exec tee -a "$passlab_srun_log" >&2) &
passlab_step=$!
while kill -0 "$passlab_step" 2>/dev/null; do
  if [ "$passlab_stopping" = 1 ] && [ "$(date +%s)" -ge "$passlab_deadline" ]; then
    echo "passlab: the current task did not end within ${PASSLAB_STOP_GRACE:-240} s; requeueing now" \
         "(it resumes from its last checkpoint)"
    passlab_requeue
    rm -f "$passlab_srun_log"
    exit 0
  fi
  sleep 2 &
  wait $! 2>/dev/null
done
wait "$passlab_step"
passlab_rc=$?
sleep 0.2  # let tee write srun's last messages
if [ "$passlab_rc" = 0 ] && grep -qE '^srun: error: .*launch failed|aborted before step completely launched' "$passlab_srun_log"; then
  echo "passlab: the step's tasks failed to launch (srun exited 0 anyway; see the srun errors above)"
  passlab_rc=1
fi
rm -f "$passlab_srun_log"
echo "passlab: step exited with $passlab_rc"
if [ "$passlab_rc" = 75 ] || [ "$passlab_stopping" = 1 ]; then
  passlab_requeue
  exit 0
fi
# Exit 4: a collective timed out (a rank died or hung, often a node fault) and the job was aborted;
# no task is blamed and a relaunch resumes from the checkpoints. Requeue, but only while the job has
# been restarted fewer than PASSLAB_TIMEOUT_REQUEUES times, so that a hang that repeats ends the job.
passlab_timeout_requeues="${PASSLAB_TIMEOUT_REQUEUES:-2}"
if [ "$passlab_rc" = 4 ]; then
  if [ "${SLURM_RESTART_COUNT:-0}" -lt "$passlab_timeout_requeues" ]; then
    echo "passlab: a collective timed out (exit 4: a rank died or hung); requeueing" \
         "(restart $(( ${SLURM_RESTART_COUNT:-0} + 1 )) of at most $passlab_timeout_requeues, PASSLAB_TIMEOUT_REQUEUES)"
    passlab_requeue
    exit 0
  fi
  echo "passlab: a collective timed out (exit 4) after ${SLURM_RESTART_COUNT:-0} restart(s)" \
       "(PASSLAB_TIMEOUT_REQUEUES=$passlab_timeout_requeues): not requeued"
fi
exit "$passlab_rc"
