#!/usr/bin/env bash
# The README quickstart's sweep (experiments/quickstart.toml: a dense ResNet-20, then pass,
# l1_global and random_uniform at 50 % and 30 % of MACs) run beside CPU-heavy processes, and the
# speed-up column its prune tasks measured: does a loaded machine ever report a compact network
# slower than its dense one at 50 % MACs without flagging the measurement unreliable?
#
#   bench/quickstart_speedup_loaded.sh [--load N] [--out DIR] [--remeasure] [--set section.key=value ...]
#
#   --load N      busy-loop processes beside the sweep (default: the number of cores; 0: none,
#                 for the idle run, or when something else already loads the machine)
#   --out DIR     results directory (default: results/quickstart_speedup_<load>_<utc time>, fresh)
#   --remeasure   afterwards, with the busy loops stopped: `passlab remeasure DIR` and the
#                 speed-ups it measured beside the tasks' own
#   --set ...     passed to `passlab run` (e.g. --set eval.latency_repeats=20)
#
# The table alone, of a results directory made before: bench/quickstart_speedup_table.py DIR.
#
# Needs a built passlab ($PASSLAB_BUILD/passlab; scripts/env.sh) and Debian's Fashion-MNIST
# (prepared into data/fashion_mnist.h5 when missing). Prints, per prune run: method, budget, MACs
# kept, speed-up, spread of the per-round ratios, the unreliable flag and the machine's 1-minute
# load around the measurement; then a verdict for the 50 % runs: "ok" (speed-up >= 1), "flagged"
# (below 1 but flagged unreliable) or "FAIL" (below 1, not flagged). Exit status 1 on a FAIL.
# Label the numbers with the load they ran under: an idle run is --load 0 on an idle machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$PASSLAB_ROOT"
bin="$PASSLAB_BUILD/passlab"
py="$PASSLAB_VENV/bin/python"
[ -x "$bin" ] || { echo "quickstart_speedup_loaded: build passlab first ($bin missing)" >&2; exit 2; }

load=$(nproc)
out=""
remeasure=0
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --load) load="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --remeasure) remeasure=1; shift ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "quickstart_speedup_loaded: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="results/quickstart_speedup_load${load}_$(date -u +%Y%m%dT%H%M%SZ)"
[ ! -e "$out" ] || { echo "quickstart_speedup_loaded: $out exists; give a fresh --out" >&2; exit 2; }
mkdir -p "$(dirname "$out")"

if [ ! -f data/fashion_mnist.h5 ]; then
  mkdir -p data
  "$bin" prepare fashion-mnist --out data/fashion_mnist.h5
fi

# The busy loops: started here, stopped by their own ids (never by name) when the script ends.
hogs=()
stop_hogs() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hogs[@]}"; do wait "$p" 2>/dev/null || true; done
  hogs=()
}
trap stop_hogs EXIT
for _ in $(seq 1 "$load"); do
  ( while :; do :; done ) &
  hogs+=($!)
done
echo "quickstart_speedup_loaded: ${#hogs[@]} busy loop(s) beside the sweep; load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; results in $out"

start=$(date +%s)
set +e
mpirun -np 2 --oversubscribe "$bin" run experiments/quickstart.toml --set "output.dir=$out" "${sets[@]}" > "$out.log" 2>&1
rc=$?
set -e
stop_hogs
echo "quickstart_speedup_loaded: sweep exit $rc after $(( $(date +%s) - start )) s (log: $out.log); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$rc" -eq 0 ] || { tail -20 "$out.log"; exit 1; }

if [ "$remeasure" -eq 1 ]; then
  "$bin" remeasure "$out" --progress lines "${sets[@]}"
fi

"$py" "$PASSLAB_ROOT/bench/quickstart_speedup_table.py" "$out"
