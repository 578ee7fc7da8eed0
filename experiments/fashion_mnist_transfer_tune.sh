#!/usr/bin/env bash
# The transfer regime's prompt settings on the validation split only (issue 18):
# experiments/fashion_mnist_transfer_tune.toml at 30 % and 15 % MACs, one run per variant and
# seed, then the table (python -m analysis.tuning). Needs experiments/fashion_mnist_transfer.sh's
# stores and source model. Relaunch to resume: finished runs are kept.
#   experiments/fashion_mnist_transfer_tune.sh [OUT_DIR] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/fashion_mnist_transfer_tune}
seeds=${2:-0 1}
source experiments/tune_run.sh
run() { tune_run experiments/fashion_mnist_transfer_tune.toml "$@"; }  # run LABEL [--set ...]

for seed in $seeds; do
  run "T0 pass (2 px border, dropped after the search)"
  run "T1 pass_no_prompt" --set 'sweep.methods=["pass_no_prompt"]'
  run "T2 pass, prompt kept for the fine-tune" --set finetune.keep_prompt=true
  run "T3 pass, 4 px border" --set search.prompt_pad=4
  run "T4 pass, 4 px border kept for the fine-tune" --set search.prompt_pad=4 --set finetune.keep_prompt=true
  run "B1 l1_global" --set 'sweep.methods=["l1_global"]'
done
"$python" -m analysis.tuning "$out" | tee "$out/tuning.txt"
