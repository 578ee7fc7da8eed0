#!/usr/bin/env bash
# A real one-node Slurm on this machine, on loopback, to try the cluster workflow (slurm/) on a
# laptop or in CI:
#   scripts/slurm-local.sh start     # install (Debian packages), configure, start, wait for idle
#   eval "$(scripts/slurm-local.sh env)"   # SLURM_CONF for sbatch/squeue/scontrol in this shell
#   slurm/submit.sh slurm/node.sbatch experiments/quickstart.toml   # with PASSLAB_SITE=slurm/site.local.env
#   scripts/slurm-local.sh status
#   scripts/slurm-local.sh stop      # cancels the jobs, stops the daemons this script started
# Needs root (or sudo) for slurmd. Idempotent: `start` on a running cluster only waits for the
# node; `stop` on a stopped one does nothing. Everything lives in PASSLAB_SLURM_DIR (default
# /tmp/passlab-slurm): slurm.conf, state, spool, logs, and the PIDs of the daemons it started;
# /etc/slurm is not touched. Only one Slurm can run on a machine (slurmctld binds 0.0.0.0):
# `start` refuses when another slurmctld/slurmd already runs.
# Environment: PASSLAB_SLURM_DIR, PASSLAB_SLURM_CPUS (CPUs the node declares; default nproc, at
# least 2), PASSLAB_SLURM_PORT (slurmctld port, default 6817; slurmd uses the next one),
# PASSLAB_SLURM_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

dir=${PASSLAB_SLURM_DIR:-/tmp/passlab-slurm}
conf="$dir/slurm.conf"
port=${PASSLAB_SLURM_PORT:-6817}
wait_s=${PASSLAB_SLURM_TIMEOUT:-60}
node=passlab-node
partition=local

log() { echo "[slurm-local] $*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

# shellcheck source=scripts/slurm-daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-daemons.sh"

write_conf() {
  local cpus mem host
  cpus=${PASSLAB_SLURM_CPUS:-$(nproc)}
  [ "$cpus" -ge 2 ] || cpus=2
  mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  host=$(hostname -s)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat >"$conf.tmp" <<EOF
# Written by scripts/slurm-local.sh: a one-node Slurm on loopback for passlab's templates.
ClusterName=passlab-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
$(slurm_conf_common)
MinJobAge=300
KillWait=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

node_state() { SLURM_CONF=$conf timeout 10 sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -1; }

wait_idle() {
  local deadline=$(( $(date +%s) + wait_s )) st=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    st=$(node_state || true)
    case "$st" in
      idle|mixed|allocated|completing) return 0 ;;
      drain*|down*) SLURM_CONF=$conf timeout 10 scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  log "node '$node' not ready after ${wait_s} s (state: ${st:-none}); logs: $dir/log"
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2>/dev/null || true
  return 1
}

cmd_start() {
  install_packages
  mkdir -p "$dir"
  local ctld slurmd_pid
  ctld=$(recorded_pid "$dir/slurmctld.pid" slurmctld || true)
  slurmd_pid=$(recorded_pid "$dir/slurmd.pid" slurmd || true)
  if [ -n "$ctld" ] && [ -n "$slurmd_pid" ]; then
    log "already running (slurmctld $ctld, slurmd $slurmd_pid)"
    wait_idle
    return
  fi
  # Another Slurm on this machine (a system one, or a half-started one of ours) would own the
  # ports: stop ours, refuse others.
  [ -z "$ctld$slurmd_pid" ] || cmd_stop
  local other
  other=$(pgrep -x 'slurmctld|slurmd' 2>/dev/null | tr '\n' ' ' || true)
  [ -z "$other" ] || die "another slurmctld/slurmd runs here (PIDs $other); stop it first (one Slurm per machine)"
  start_munge
  write_conf
  rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid"
  log "starting slurmctld and slurmd ($conf)"
  # -c: a fresh cluster without the jobs of an earlier start.
  $SUDO slurmctld -c -f "$conf"
  $SUDO slurmd -f "$conf" -N "$node"
  local i
  for i in $(seq 1 50); do
    if recorded_pid "$dir/slurmctld.pid" slurmctld >/dev/null && recorded_pid "$dir/slurmd.pid" slurmd >/dev/null; then break; fi
    sleep 0.1
  done
  recorded_pid "$dir/slurmctld.pid" slurmctld >/dev/null || { tail -n 20 "$dir/log/slurmctld.log" >&2 2>/dev/null; die "slurmctld did not start"; }
  recorded_pid "$dir/slurmd.pid" slurmd >/dev/null || { tail -n 20 "$dir/log/slurmd.log" >&2 2>/dev/null; die "slurmd did not start"; }
  wait_idle
  log "node $node idle; partition '$partition'. In your shell: export SLURM_CONF=$conf"
}

cmd_stop() {
  local ctld slurmd_pid munged p i
  ctld=$(recorded_pid "$dir/slurmctld.pid" slurmctld || true)
  slurmd_pid=$(recorded_pid "$dir/slurmd.pid" slurmd || true)
  munged=$(recorded_pid "$dir/munged.pid" munged || true)
  if [ -n "$ctld" ] && [ -n "$slurmd_pid" ]; then
    # Cancel the jobs so that no job step outlives the daemons.
    SLURM_CONF=$conf timeout 10 scancel --full --quiet --partition="$partition" 2>/dev/null || true
    for i in $(seq 1 20); do
      [ -z "$(SLURM_CONF=$conf timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
      sleep 0.5
    done
  fi
  for p in $slurmd_pid $ctld $munged; do $SUDO kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for p in $slurmd_pid $ctld $munged; do pid_alive "$p" && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $slurmd_pid $ctld $munged; do
    if pid_alive "$p"; then log "PID $p did not stop in 10 s: SIGKILL"; $SUDO kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid" "$dir/munged.pid"
  if [ -n "$ctld$slurmd_pid$munged" ]; then log "stopped (PIDs $slurmd_pid $ctld $munged)"; else log "not running"; fi
}

cmd_status() {
  local ctld slurmd_pid
  ctld=$(recorded_pid "$dir/slurmctld.pid" slurmctld || true)
  slurmd_pid=$(recorded_pid "$dir/slurmd.pid" slurmd || true)
  if [ -z "$ctld" ] || [ -z "$slurmd_pid" ]; then
    echo "stopped${ctld:+ (slurmctld $ctld alive)}${slurmd_pid:+ (slurmd $slurmd_pid alive)}"
    return 3
  fi
  echo "running: slurmctld $ctld, slurmd $slurmd_pid; SLURM_CONF=$conf"
  SLURM_CONF=$conf timeout 10 sinfo -N -l || true
  SLURM_CONF=$conf timeout 10 squeue || true
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] || exit 2 ;;
esac
