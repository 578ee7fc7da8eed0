#!/usr/bin/env bash
# The README's main job, on a fresh machine: installs what is missing, configures and builds
# passlab, then runs experiments/quickstart.toml.
#
# Status: the training pipeline (datasets, models, distributed trainer, PASS, sweeps) is being
# built issue by issue. Until `passlab run` trains, this validates the quickstart config and
# prints its task plan (--dry-run); it does not pretend to train.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
bash "$PASSLAB_ROOT/scripts/install-deps.sh"
passlab_configure_and_build
cd "$PASSLAB_ROOT"
"$PASSLAB_BUILD/passlab" --version
"$PASSLAB_BUILD/passlab" run experiments/quickstart.toml --dry-run
echo
echo "quickstart: dry run only — training is not implemented yet in this build (see README, Status)."
