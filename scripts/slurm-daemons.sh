# shellcheck shell=bash
# Sourced by scripts/slurm-local.sh and scripts/cluster-2node.sh: the Slurm and munge pieces both
# clusters share. The caller defines dir (its state directory: munged's PID is recorded there),
# SUDO ("" as root, else sudo), log and die.
packages=(slurmctld slurmd slurm-client munge)
: "${dir:?the caller sets dir}"

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# PID recorded in FILE, if that process is alive and is COMMAND.
recorded_pid() {
  local f=$1 comm=$2 p
  [ -f "$f" ] || return 1
  p=$(cat "$f" 2>/dev/null || true)
  pid_alive "$p" || return 1
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ] || return 1
  echo "$p"
}

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "Slurm is not installed and apt-get is missing: install ${missing[*]}"
    log "installing Debian packages: ${missing[*]}"
    # From the package lists already there if they have them; else update them first.
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
}

munge_works() { timeout 10 munge -n </dev/null 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then return; fi
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    $SUDO mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
      $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 0400 /etc/munge/munge.key
  fi
  $SUDO install -d -o munge -g munge -m 0755 /run/munge
  log "starting munged"
  $SUDO runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 1 50); do
    if munge_works; then
      $SUDO cp /run/munge/munged.pid "$dir/munged.pid" 2>/dev/null || true
      return
    fi
    sleep 0.1
  done
  die "munged does not answer (see /var/log/munge/munged.log)"
}

# The slurm.conf settings both clusters share (STACK-NOTES: what worked with Debian's Slurm 22.05):
# root daemons, no cgroups or accounting, cores as the unit, PMIx for srun, impossible requests
# rejected instead of pending forever, daemons bound to their own address.
slurm_conf_common() {
  cat <<'EOF'
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
EnforcePartLimits=ALL
CommunicationParameters=NoInAddrAny
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerParameters=sched_interval=2
EOF
}
