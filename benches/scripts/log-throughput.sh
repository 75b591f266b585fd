#!/usr/bin/env bash
# Logged vs unlogged throughput of `spectree run` (issue: `--log` keeps at
# least 80% of the unlogged rate on tiny and kv at the default group),
# alternating the two, with the machine's parallel capacity before and after.
# Usage: benches/scripts/log-throughput.sh [REPEATS]   (release build first)
set -euo pipefail
S=${S:-target/release/spectree}
N=${1:-3}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
capacity() { "$S" run --workload tiny --events 1000 --threads 2 --no-analysis | sed -n 's/.*parallel capacity \([0-9.]*\)x.*/capacity \1/p'; }
rate() { sed -n 's/^speculative: *[0-9.]* s *\([0-9]*\) events\/s/\1/p'; }
capacity
for w in "tiny" "kv --events 300000"; do
  for i in $(seq "$N"); do
    rm -rf "$DIR/log"
    # shellcheck disable=SC2086
    plain=$("$S" run --workload $w --threads 2 --no-compare --no-analysis | rate)
    # shellcheck disable=SC2086
    logged=$("$S" run --workload $w --threads 2 --no-compare --no-analysis --log "$DIR/log" | rate)
    echo "$w: unlogged $plain ev/s, logged $logged ev/s, ratio $(echo "scale=3; $logged/$plain" | bc)"
  done
done
capacity
