#!/bin/bash
# Run every fuzz target for SECONDS each (default 60) on stable Rust
# (`cargo fuzz run -s none`), starting from the committed corpus, and report
# each target's executions and any crash. Needs cargo-fuzz
# (`cargo install cargo-fuzz`). Exit status is non-zero if a target crashed;
# crashes are left in fuzz/artifacts/<target>/ (copy them into
# fuzz/regressions/<target>/ to make them regression tests).
set -u
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
status=0
for target in cue nock determinism tracking; do
  log=$(mktemp)
  mkdir -p "corpus/$target"
  # Fuzz into a scratch copy: the committed corpus stays small and reviewed.
  work=$(mktemp -d)
  cp "corpus/$target"/* "$work"/ 2>/dev/null
  # The processor's targets need its crates; `cue` and `nock` do not.
  features=()
  case $target in determinism|tracking) features=(--features processor) ;; esac
  cargo fuzz run -s none "${features[@]}" "$target" "$work" -- -max_total_time="$SECONDS_EACH" \
    -rss_limit_mb=4096 -timeout=20 >"$log" 2>&1
  rc=$?
  execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1)
  [ -z "$execs" ] && execs=$(grep -oE "#[0-9]+" "$log" | tail -1 | tr -d '#')
  if [ $rc -eq 0 ]; then
    echo "$target: ${execs:-?} executions, no crash"
  else
    echo "$target: CRASH after ${execs:-?} executions (exit $rc); see $log and fuzz/artifacts/$target/"
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -5
    status=1
  fi
  rm -rf "$work"
done
exit $status
