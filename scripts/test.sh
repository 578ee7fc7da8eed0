#!/usr/bin/env bash
# The README's test command: install dependencies, configure, build, run every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$PASSLAB_ROOT/scripts/install-deps.sh"
start=$(date +%s)
passlab_configure_and_build
echo "[test] build finished in $(( $(date +%s) - start )) s"
cd "$PASSLAB_BUILD"
ctest --output-on-failure --timeout 900 "$@"
