#!/usr/bin/env bash
# A real two-node cluster on this machine, to run passlab across nodes without a second machine:
# two network namespaces, each with its own host name (a UTS namespace) and address, joined by a
# veth pair on a private /30; Open MPI launches on both through an rsh agent that enters a node's
# namespaces; optionally a two-node Slurm (one slurmctld, one slurmd per node, munge shared).
#   scripts/cluster-2node.sh start          # the two nodes and Open MPI's settings
#   scripts/cluster-2node.sh start-slurm    # also Slurm (installs the Debian packages), waits for idle
#   scripts/cluster-2node.sh exec passlab-n1 mpirun -np 2 hostname    # one rank per node
#   scripts/cluster-2node.sh exec passlab-n1 sbatch --nodes=2 ...     # after start-slurm
#   scripts/cluster-2node.sh status | env | stop-slurm | stop
# `exec NODE CMD...` runs CMD inside NODE's namespaces with the cluster's environment (Open MPI's
# agent, hostfile and TCP interface; SLURM_CONF). `env` prints that environment as exports.
# Nodes: passlab-n1 (10.213.7.1) and passlab-n2 (10.213.7.2); nothing else is routed, so all
# traffic stays on the veth pair and each node's loopback. Both nodes share this machine's
# filesystem, processes IDs and cores (each declares all of them).
# Needs root (or sudo). Idempotent like scripts/slurm-local.sh: `start` on a running cluster
# checks it; `stop` removes everything `start` made (namespaces, veth, mounts, daemons, files)
# and does nothing on a stopped cluster. State in PASSLAB_CLUSTER_DIR (default
# /tmp/passlab-cluster2). One such cluster per machine (the names are fixed); Slurm refuses to
# start while another slurmctld/slurmd runs (scripts/slurm-local.sh's). Exit 77 from start when
# this machine does not permit network or UTS namespaces (the reason is printed).
# Environment: PASSLAB_CLUSTER_DIR, PASSLAB_SLURM_TIMEOUT (seconds to wait for the nodes, default 60).
set -euo pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
dir=${PASSLAB_CLUSTER_DIR:-/tmp/passlab-cluster2}
wait_s=${PASSLAB_SLURM_TIMEOUT:-60}
nodes=(passlab-n1 passlab-n2)
declare -A addr=([passlab-n1]=10.213.7.1 [passlab-n2]=10.213.7.2)
declare -A veth=([passlab-n1]=pl2n-n1 [passlab-n2]=pl2n-n2)
net=10.213.7.0/30
partition=local
conf="$dir/slurm.conf"

log() { echo "[cluster-2node] $*" >&2; }
die() { log "error: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

# shellcheck source=scripts/slurm-daemons.sh
source "$(dirname "$self")/slurm-daemons.sh"

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1 || grep -q " $1 " /proc/self/mountinfo; }
netns_exists() { [ -e "/run/netns/$1" ]; }
uts_file() { echo "$dir/uts-$1"; }
node_known() { [ -n "${addr[$1]:-}" ] || die "unknown node '$1' (nodes: ${nodes[*]})"; }
# The command prefix that runs a command on node N: in its UTS and network namespaces, and in a
# private mount namespace where /etc/hosts also names the nodes (Slurm resolves them; /etc/hosts
# itself is not touched) and $dir/tmp is the node's own scratch directory (Slurm's TmpFS: PMIx
# puts per-step directories there whose names would collide in a shared /tmp).
node_prefix() {
  prefix=()
  [ -z "$SUDO" ] || prefix=("$SUDO")
  # shellcheck disable=SC2016  # $0 and $@ are the inner shell's
  prefix+=(nsenter --uts="$(uts_file "$1")" --net="/run/netns/$1" --
          unshare --mount --propagation private
          sh -c 'mount --bind "$0" /etc/hosts && mount --bind "$1" "$2" && shift 2 && exec "$@"' "$dir/hosts" "$dir/tmp-$1" "$dir/tmp")
}
in_node() { local prefix; node_prefix "$1"; shift; "${prefix[@]}" "$@"; }

# The environment every command in the cluster gets (also what `env` prints).
cluster_env() {
  cat <<EOF
export OMPI_MCA_plm_rsh_agent=$dir/rsh-agent
export OMPI_MCA_orte_default_hostfile=$dir/hostfile
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_btl_tcp_if_include=$net
export OMPI_MCA_oob_tcp_if_include=$net
export PASSLAB_CLUSTER_DIR=$dir
EOF
  if [ "$(id -u)" = 0 ]; then echo "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"; fi
  if [ -f "$conf" ]; then echo "export SLURM_CONF=$conf"; fi
}

running() {
  local n
  for n in "${nodes[@]}"; do
    netns_exists "$n" && is_mounted "$(uts_file "$n")" || return 1
  done
}

# Exit 77 with the reason where namespaces cannot be made here.
check_permitted() {
  local err
  command -v ip >/dev/null || { log "cannot start: iproute2 (ip) is missing"; exit 77; }
  if ! command -v nsenter >/dev/null || ! command -v unshare >/dev/null; then
    log "cannot start: util-linux nsenter/unshare missing"
    exit 77
  fi
  if ! err=$($SUDO unshare --uts --net true 2>&1); then
    log "cannot start: this machine does not permit network/UTS namespaces here: $err"
    exit 77
  fi
}

write_files() {
  mkdir -p "$dir"
  # Open MPI calls the agent as `AGENT [options] HOST COMMAND...` (COMMAND for a remote shell).
  cat >"$dir/rsh-agent.tmp" <<EOF
#!/bin/sh
# Written by scripts/cluster-2node.sh: Open MPI's rsh agent; runs the command in HOST's namespaces.
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in
  passlab-n1|passlab-n2) ;;
  *) echo "rsh-agent: \$host is not a node of this cluster (passlab-n1, passlab-n2)" >&2; exit 255 ;;
esac
PASSLAB_CLUSTER_DIR="$dir" exec bash "$self" exec "\$host" /bin/sh -c "\$*"
EOF
  chmod 0755 "$dir/rsh-agent.tmp"
  mv "$dir/rsh-agent.tmp" "$dir/rsh-agent"
  printf '%s slots=1\n' "${nodes[@]}" >"$dir/hostfile"
  { cat /etc/hosts; for n in "${nodes[@]}"; do echo "${addr[$n]} $n"; done; } >"$dir/hosts"
  mkdir -p "$dir/tmp" "$dir/tmp-passlab-n1" "$dir/tmp-passlab-n2"
}

cmd_start() {
  if running; then
    log "already running (${nodes[*]})"
    write_files
    return
  fi
  check_permitted
  local n
  for n in "${nodes[@]}"; do
    if netns_exists "$n"; then
      is_mounted "$(uts_file "$n")" || die "network namespace $n exists but is not this cluster's ($dir): another cluster-2node runs (stop it with its PASSLAB_CLUSTER_DIR)"
    fi
  done
  cmd_stop_quiet
  mkdir -p "$dir"
  # /run/netns is made (and bind-mounted onto itself) by the first `ip netns add`: remember
  # whether it was there so that stop leaves it as it was.
  [ -d /run/netns ] || touch "$dir/made-run-netns"
  for n in "${nodes[@]}"; do
    $SUDO ip netns add "$n"
    touch "$(uts_file "$n")"
    $SUDO unshare --uts="$(uts_file "$n")" hostname "$n"
  done
  $SUDO ip link add "${veth[passlab-n1]}" type veth peer name "${veth[passlab-n2]}"
  for n in "${nodes[@]}"; do
    $SUDO ip link set "${veth[$n]}" netns "$n"
    $SUDO ip -n "$n" addr add "${addr[$n]}/30" dev "${veth[$n]}"
    $SUDO ip -n "$n" link set lo up
    $SUDO ip -n "$n" link set "${veth[$n]}" up
  done
  write_files
  # Both ends up and reachable (the veth carrier comes up asynchronously): a refused connection
  # to a closed port on passlab-n2 means its address answers.
  local out
  for _ in $(seq 1 50); do
    out=$(in_node passlab-n1 timeout 1 bash -c "exec 3<>/dev/tcp/${addr[passlab-n2]}/9" 2>&1 || true); case "$out" in *refused*) break ;; esac
    sleep 0.1
  done
  log "nodes ${nodes[*]} up (${addr[passlab-n1]}, ${addr[passlab-n2]} on ${veth[passlab-n1]}/${veth[passlab-n2]}); try: $0 exec passlab-n1 mpirun -np 2 hostname"
}

# --- Slurm -----------------------------------------------------------------------------------
# munged listens on a Unix socket in the filesystem, which both nodes share: one munged (started
# by start_munge, scripts/slurm-daemons.sh) serves both.

slurm_pids() {
  recorded_pid "$dir/slurmctld.pid" slurmctld || true
  local n
  for n in "${nodes[@]}"; do recorded_pid "$dir/slurmd-$n.pid" slurmd || true; done
}

write_conf() {
  local cpus mem n
  cpus=$(nproc)
  [ "$cpus" -ge 2 ] || cpus=2
  # Both nodes declare this machine's memory, halved: together they never claim more than it has.
  mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.45}' /proc/meminfo)
  mkdir -p "$dir/state" "$dir/log"
  for n in "${nodes[@]}"; do mkdir -p "$dir/spool/$n"; done
  cat >"$conf.tmp" <<EOF
# Written by scripts/cluster-2node.sh: a two-node Slurm in two network namespaces.
ClusterName=passlab-2node
SlurmctldHost=passlab-n1(${addr[passlab-n1]})
SlurmctldPort=6817
SlurmdPort=6818
$(slurm_conf_common)
SlurmdTimeout=30
MinJobAge=300
KillWait=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
TmpFS=$dir/tmp
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
EOF
  for n in "${nodes[@]}"; do
    echo "NodeName=$n NodeHostname=$n NodeAddr=${addr[$n]} CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN" >>"$conf.tmp"
  done
  echo "PartitionName=$partition Nodes=$(IFS=,; echo "${nodes[*]}") Default=YES MaxTime=INFINITE State=UP" >>"$conf.tmp"
  mv "$conf.tmp" "$conf"
}

nodes_state() { in_node passlab-n1 env SLURM_CONF="$conf" timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null || true; }

wait_idle() {
  local deadline=$(( $(date +%s) + wait_s )) st="" ok n
  while [ "$(date +%s)" -lt "$deadline" ]; do
    st=$(nodes_state)
    ok=1
    for n in "${nodes[@]}"; do
      case "$(awk -v n="$n" '$1 == n {print $2}' <<<"$st")" in
        idle|mixed|allocated|completing) ;;
        drain*|down*) ok=0; in_node passlab-n1 env SLURM_CONF="$conf" timeout 10 scontrol update NodeName="$n" State=RESUME >/dev/null 2>&1 || true ;;
        *) ok=0 ;;
      esac
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.5
  done
  log "nodes not ready after ${wait_s} s (${st:-no answer}); logs: $dir/log"
  tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true
  return 1
}

cmd_start_slurm() {
  cmd_start
  install_packages
  local have n
  have=$(slurm_pids | wc -w)
  if [ "$have" = 3 ]; then
    log "Slurm already running"
    wait_idle
    return
  fi
  [ "$have" = 0 ] || stop_slurm
  local other
  other=$(pgrep -x 'slurmctld|slurmd' 2>/dev/null | tr '\n' ' ' || true)
  [ -z "$other" ] || die "another slurmctld/slurmd runs here (PIDs $other); stop it first (one Slurm per machine)"
  start_munge
  write_conf
  rm -f "$dir/slurmctld.pid" "$dir"/slurmd-*.pid
  log "starting slurmctld on passlab-n1 and a slurmd on each node ($conf)"
  in_node passlab-n1 slurmctld -c -f "$conf"
  for n in "${nodes[@]}"; do in_node "$n" slurmd -f "$conf" -N "$n"; done
  for _ in $(seq 1 50); do
    [ "$(slurm_pids | wc -w)" = 3 ] && break
    sleep 0.1
  done
  [ "$(slurm_pids | wc -w)" = 3 ] || { tail -n 20 "$dir"/log/*.log >&2 2>/dev/null; die "slurmctld/slurmd did not start"; }
  wait_idle
  log "nodes ${nodes[*]} idle; partition '$partition'. Submit from a node: $0 exec passlab-n1 sbatch ..."
}

stop_slurm() {
  local pids munged p
  pids=$(slurm_pids | tr '\n' ' ')
  munged=$(recorded_pid "$dir/munged.pid" munged || true)
  if [ -n "$(recorded_pid "$dir/slurmctld.pid" slurmctld || true)" ] && netns_exists passlab-n1 && is_mounted "$(uts_file passlab-n1)"; then
    in_node passlab-n1 env SLURM_CONF="$conf" timeout 10 scancel --full --quiet 2>/dev/null || true
    for _ in $(seq 1 20); do
      [ -z "$(in_node passlab-n1 env SLURM_CONF="$conf" timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
      sleep 0.5
    done
  fi
  for p in $pids $munged; do $SUDO kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for p in $pids $munged; do pid_alive "$p" && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $pids $munged; do
    if pid_alive "$p"; then log "PID $p did not stop in 10 s: SIGKILL"; $SUDO kill -KILL "$p" 2>/dev/null || true; fi
  done
  # What killed step daemons leave in the nodes' scratch (PMIx directories named by job id,
  # which restart at 1) would fail the next start's steps.
  for n in "${nodes[@]}"; do
    if [ -d "$dir/tmp-$n" ]; then find "$dir/tmp-$n" -mindepth 1 -delete; fi
  done
  rm -rf "$dir/slurmctld.pid" "$dir"/slurmd-*.pid "$dir/munged.pid" "$dir/state" "$dir/spool" "$dir/log" "$conf"
  if [ -n "$pids$munged" ]; then log "Slurm stopped (PIDs $pids$munged)"; fi
}

# --- stop ------------------------------------------------------------------------------------

cmd_stop_quiet() {
  local n p left
  stop_slurm
  for n in "${nodes[@]}"; do
    if netns_exists "$n"; then
      # Whatever still runs in the node (ranks, orted, job steps) goes with it.
      left=$($SUDO ip netns pids "$n" 2>/dev/null | tr '\n' ' ' || true)
      if [ -n "$left" ]; then
        log "killing the processes left on $n: $left"
        for p in $left; do $SUDO kill -KILL "$p" 2>/dev/null || true; done
        for _ in $(seq 1 50); do [ -z "$($SUDO ip netns pids "$n" 2>/dev/null)" ] && break; sleep 0.1; done
      fi
      # Deleting a namespace deletes the veth end in it, and with it its peer.
      $SUDO ip netns delete "$n"
    fi
    if is_mounted "$(uts_file "$n")"; then $SUDO umount "$(uts_file "$n")"; fi
    rm -f "$(uts_file "$n")"
  done
  if [ -f "$dir/made-run-netns" ]; then
    if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
      while is_mounted /run/netns; do $SUDO umount /run/netns || break; done
      $SUDO rmdir /run/netns
    fi
    rm -f "$dir/made-run-netns"
  fi
  rm -f "$dir/rsh-agent" "$dir/hostfile" "$dir/hosts"
  rm -rf "$dir/tmp" "$dir/tmp-passlab-n1" "$dir/tmp-passlab-n2"
  if [ -d "$dir" ]; then rmdir "$dir" 2>/dev/null || true; fi
}

cmd_stop() {
  local was=0
  { running || [ -n "$(slurm_pids)" ] || [ -f "$dir/made-run-netns" ]; } && was=1
  cmd_stop_quiet
  if [ "$was" = 1 ]; then log "stopped"; else log "not running"; fi
}

cmd_status() {
  if ! running; then
    echo "stopped"
    return 3
  fi
  local n
  echo "running: ${nodes[*]} (state in $dir)"
  for n in "${nodes[@]}"; do
    echo "$n: hostname $(in_node "$n" hostname), $(in_node "$n" ip -brief -4 addr show dev "${veth[$n]}" | awk '{print $1, $2, $3}'), $($SUDO ip netns pids "$n" | wc -l) process(es)"
  done
  if [ -n "$(slurm_pids)" ]; then
    echo "slurm: PIDs $(slurm_pids | tr '\n' ' ')"
    in_node passlab-n1 env SLURM_CONF="$conf" timeout 10 sinfo -N -l || true
    in_node passlab-n1 env SLURM_CONF="$conf" timeout 10 squeue || true
  fi
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: $0 exec NODE COMMAND..."
  local n=$1; shift
  node_known "$n"
  running || die "the cluster is not running ($0 start)"
  eval "$(cluster_env)"
  local prefix
  node_prefix "$n"
  exec "${prefix[@]}" "$@"
}

case "${1:-}" in
  start) cmd_start ;;
  start-slurm) cmd_start_slurm ;;
  stop-slurm) stop_slurm ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cluster_env ;;
  exec) shift; cmd_exec "$@" ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] || exit 2 ;;
esac
