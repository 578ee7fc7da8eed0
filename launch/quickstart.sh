#!/usr/bin/env bash
# The README's main job, on a fresh machine: installs what is missing, configures and builds
# passlab, prepares Debian's Fashion-MNIST into data/fashion_mnist.h5 (once), and runs
# experiments/quickstart.toml under `mpirun -np 2` on the CPU: one dense ResNet-20, then PASS,
# l1_global and random_uniform at 50 % and 30 % of the dense MACs, each fine-tuned briefly.
# Prints the result table. A relaunch skips finished tasks.
#   launch/quickstart.sh [--set section.key=value ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
start=$(date +%s)
bash "$PASSLAB_ROOT/scripts/install-deps.sh"
passlab_configure_and_build
cd "$PASSLAB_ROOT"
bin="$PASSLAB_BUILD/passlab"
if [ ! -f data/fashion_mnist.h5 ]; then
  mkdir -p data
  "$bin" prepare fashion-mnist --out data/fashion_mnist.h5
fi
# Two ranks; the runtime gives each cores / local ranks intra-op threads.
mpirun -np 2 --oversubscribe "$bin" run experiments/quickstart.toml "$@"
echo "quickstart: finished in $(( $(date +%s) - start )) s; table again: $bin inspect results/quickstart"
