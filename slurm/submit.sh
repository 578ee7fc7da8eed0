#!/usr/bin/env bash
# Submits a slurm/ template with this site's resources, so that the templates themselves never
# need edits: reads the site file (PASSLAB_SITE, default slurm/site.env; see
# slurm/site.env.example and, for scripts/slurm-local.sh's one-node cluster, slurm/site.local.env)
# and turns its settings into sbatch options, which override the template's #SBATCH defaults.
#   slurm/submit.sh [sbatch options] TEMPLATE.sbatch CONFIG.toml [passlab run options]
#   PASSLAB_SITE=slurm/site.local.env slurm/submit.sh --wait slurm/node.sbatch experiments/quickstart.toml
# sbatch options go before the template, in the --option=value form; they override the site's.
# Without a site file it is plain sbatch (the template's #SBATCH lines apply). The job finds the
# checkout through PASSLAB_ROOT (exported here) and loads the site's modules/setup (slurm/common.sh).
# PASSLAB_SUBMIT_DRY=1 prints the sbatch command instead of running it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PASSLAB_ROOT="${PASSLAB_ROOT:-$root}"
site="${PASSLAB_SITE:-$root/slurm/site.env}"
if [ -f "$site" ]; then
  site="$(cd "$(dirname "$site")" && pwd)/$(basename "$site")"
  set -a
  # shellcheck disable=SC1090
  source "$site"
  set +a
  export PASSLAB_SITE="$site"
elif [ -n "${PASSLAB_SITE:-}" ]; then
  echo "slurm/submit.sh: site file $PASSLAB_SITE not found" >&2
  exit 2
fi

user_opts=()
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do user_opts+=("$1"); shift; done
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
template="$1"
shift
[ -f "$template" ] || { echo "slurm/submit.sh: template $template not found" >&2; exit 2; }

site_opts=()
[ -z "${PASSLAB_PARTITION:-}" ] || site_opts+=("--partition=$PASSLAB_PARTITION")
[ -z "${PASSLAB_ACCOUNT:-}" ] || site_opts+=("--account=$PASSLAB_ACCOUNT")
[ -z "${PASSLAB_QOS:-}" ] || site_opts+=("--qos=$PASSLAB_QOS")
[ -z "${PASSLAB_TIME:-}" ] || site_opts+=("--time=$PASSLAB_TIME")
[ -z "${PASSLAB_MEM:-}" ] || site_opts+=("--mem=$PASSLAB_MEM")
# One rank per GPU: the tasks per node follow the GPUs unless set. 0 GPUs (a CPU partition)
# still overrides the template's --gpus-per-node.
[ -z "${PASSLAB_GPUS_PER_NODE:-}" ] || site_opts+=("--gpus-per-node=$PASSLAB_GPUS_PER_NODE")
tasks="${PASSLAB_TASKS_PER_NODE:-}"
if [ -z "$tasks" ] && [ "${PASSLAB_GPUS_PER_NODE:-0}" -gt 0 ] 2>/dev/null; then tasks="$PASSLAB_GPUS_PER_NODE"; fi
[ -z "$tasks" ] || site_opts+=("--ntasks-per-node=$tasks")
[ -z "${PASSLAB_CPUS_PER_TASK:-}" ] || site_opts+=("--cpus-per-task=$PASSLAB_CPUS_PER_TASK")
# shellcheck disable=SC2206
[ -z "${PASSLAB_SBATCH_ARGS:-}" ] || site_opts+=(${PASSLAB_SBATCH_ARGS})

cmd=(sbatch "${site_opts[@]}" "${user_opts[@]}" "$template" "$@")
if [ "${PASSLAB_SUBMIT_DRY:-0}" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
exec "${cmd[@]}"
