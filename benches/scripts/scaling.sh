#!/bin/bash
# Scaling: every workload at 1-16 threads (WL, TH, EXTRA override); reports in $OUT.
# Usage: OUT=dir SPECTREE=path/to/spectree benches/scripts/scaling.sh
B=${SPECTREE:-./target/release/spectree}; OUT=${OUT:-/tmp/spectree-scaling}; mkdir -p $OUT
for w in ${WL:-independent arvo}; do
  for t in ${TH:-2 4 8 16}; do
    case $w in tiny) ev=1000000;; kv) ev=100000;; arvo) ev=100000;; *) ev=50000;; esac
    $B run --workload $w --threads $t --events $ev --no-analysis $EXTRA --json $OUT/$w-$t.json > $OUT/$w-$t.txt 2>&1
    echo "$w $t rc=$?"; grep -E "speedup|internals|re-exec" $OUT/$w-$t.txt
  done
done
