# Sourced by the validation tuning drivers (experiments/*_tune.sh) once they have set $out (the
# results folder): sets $passlab and $python (PASSLAB_BIN, PASSLAB_VENV) and $log, and defines
#   tune_run TOML LABEL [--set ...]
# which runs TOML once with output.dir=$out, experiment.seed=$seed and LABEL as the experiment's
# description (analysis.tuning groups by it), its lines appended to $log: the sweep's own lines
# name test top-1, which tuning must not read, so they stay out of the terminal.
passlab=${PASSLAB_BIN:-build/passlab}
python=${PASSLAB_VENV:-$HOME/.local/share/passlab/venv}/bin/python
log=$out/tune.log
mkdir -p "$out"

tune_run() {
  local toml=$1 label=$2
  shift 2
  echo "tune: $label (seed $seed)" >&2
  "$passlab" run "$toml" --retry-failed --set "output.dir=\"$out\"" --set "experiment.seed=$seed" \
    --set "experiment.description=\"$label\"" "$@" >>"$log" 2>&1 ||
    { echo "tune: $label failed, see $log" >&2; return 1; }
}
