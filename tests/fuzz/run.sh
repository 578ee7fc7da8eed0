#!/usr/bin/env bash
# run.sh FUZZER SECONDS: runs the config fuzzer from the seed corpus for SECONDS, with leak
# detection; new inputs go to a scratch corpus next to the binary. Prints libFuzzer's summary
# and fails when libFuzzer reports a crash, leak or timeout (non-zero exit).
set -uo pipefail
fuzzer=$1; seconds=${2:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(dirname "$fuzzer")/corpus-run
log=$(dirname "$fuzzer")/fuzz-last.log
mkdir -p "$work"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 -timeout=10 -print_final_stats=1 \
  -dict="$here/toml.dict" "$work" "$here/corpus" >"$log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|Done [0-9]+ runs|ERROR|SUMMARY" "$log"
if [ $rc -ne 0 ]; then
  echo "fuzzer failed (exit $rc); full log: $log"; tail -40 "$log"
fi
exit $rc
