#!/usr/bin/env bash
# The bounded search behind PASS's defaults (issue 17), on the validation split only:
# experiments/fashion_mnist_tune.toml at 15 % MACs, one run per variant below, then the
# baselines with their own knobs, then the table (python -m analysis.tuning).
#   experiments/fashion_mnist_tune.sh [OUT_DIR] [SEED]
# Each variant adds its assignments to the ones before it unless it starts from "base".
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/fashion_mnist_tune}
seed=${2:-0}
source experiments/tune_run.sh
run() { tune_run experiments/fashion_mnist_tune.toml "$@"; }  # run LABEL [--set ...]

# DESIGN.md §2 as first defined (the previous table's search), then one mechanism at a time.
old=(--set 'search.bn_mode="eval"' --set search.distill=0 --set search.target_anneal=0 --set search.temperature_end=0
     --set search.cost_input=false --set search.global_stats=false --set 'search.flops_loss="squared"')
run "S0 first definition" "${old[@]}"
run "S1 +bn batch" "${old[@]}" --set 'search.bn_mode="batch"'
run "S2 +distill 0.5" "${old[@]}" --set 'search.bn_mode="batch"' --set search.distill=0.5
run "S3 +anneal 0.5" "${old[@]}" --set 'search.bn_mode="batch"' --set search.distill=0.5 --set search.target_anneal=0.5
run "S4 +cost, global stats" "${old[@]}" --set 'search.bn_mode="batch"' --set search.distill=0.5 --set search.target_anneal=0.5 \
  --set search.cost_input=true --set search.global_stats=true
run "S5 +tau 1->0.2" "${old[@]}" --set 'search.bn_mode="batch"' --set search.distill=0.5 --set search.target_anneal=0.5 \
  --set search.cost_input=true --set search.global_stats=true --set search.temperature_end=0.2
# Round 2, around S3 (batch statistics, distillation 0.5, target annealed over half the steps):
# one knob at a time.
s3=("${old[@]}" --set 'search.bn_mode="batch"' --set search.distill=0.5 --set search.target_anneal=0.5)
run "R1 anneal 0.8" "${s3[@]}" --set search.target_anneal=0.8
run "R2 distill 0" "${s3[@]}" --set search.distill=0
run "R3 distill 1" "${s3[@]}" --set search.distill=1
run "R4 bn eval" "${s3[@]}" --set 'search.bn_mode="eval"'
run "R5 lr 0.003" "${s3[@]}" --set search.lr=0.003
run "R6 400 steps" "${s3[@]}" --set search.steps=400
run "R7 hinge" "${s3[@]}" --set 'search.flops_loss="hinge"'
# Round 3: the budget met by projection (masks shifted by a multiple of each channel's MAC cost
# every step) instead of the penalty, after R-round layer profiles showed the penalty keeping
# the costliest (28x28) channels at 30 %.
run "P1 projection" "${s3[@]}" --set 'search.budget_mode="projection"' --set 'sweep.budgets=[0.3, 0.15]'
run "P2 projection + cost, global stats" "${s3[@]}" --set 'search.budget_mode="projection"' --set search.cost_input=true \
  --set search.global_stats=true --set 'sweep.budgets=[0.3, 0.15]'
# Round 4: the hypernetwork emits each group's keep ratio (search.ratio_head), with and without
# the true channel cost as an input, against S3 at the same two budgets.
run "H1 ratio head" "${s3[@]}" --set search.ratio_head=true --set 'sweep.budgets=[0.3, 0.15]'
run "H2 ratio head + cost" "${s3[@]}" --set search.ratio_head=true --set search.cost_input=true --set 'sweep.budgets=[0.3, 0.15]'
# The baselines at the same scale and budget, with their own knob (Taylor batches) given a try.
for m in l1_uniform l1_global taylor_global; do run "baseline" --set "sweep.methods=[\"$m\"]"; done
run "baseline taylor 32" --set 'sweep.methods=["taylor_global"]' --set search.taylor_batches=32
# The chosen setting (S3, the [search] defaults) and the baselines at the table's other budgets.
run "S3 +anneal 0.5" "${s3[@]}" --set 'sweep.budgets=[0.5, 0.3]'
run "baseline" --set 'sweep.methods=["l1_uniform", "l1_global", "taylor_global"]' --set 'sweep.budgets=[0.5, 0.3]'
"$python" -m analysis.tuning "$out"
