#!/usr/bin/env bash
# Builds the config-loader fuzzer (clang, libFuzzer + ASan/UBSan, no LibTorch) and runs it.
#   scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
seconds=${1:-60}
out="$PASSLAB_BUILD/fuzz"
cmake -S "$PASSLAB_ROOT/tests/fuzz" -B "$out" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPASSLAB_ROOT="$PASSLAB_ROOT" >/dev/null
cmake --build "$out" --parallel "$(nproc)"
ASAN_OPTIONS=detect_leaks=1 "$PASSLAB_ROOT/tests/fuzz/run.sh" "$out/fuzz_config" "$seconds"
