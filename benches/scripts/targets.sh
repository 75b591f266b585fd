#!/bin/bash
# Issue 4 targets at 2 threads: each case three times, medians of the JSON reports.
# Usage: cargo build --release; benches/scripts/targets.sh
B=${SPECTREE:-./target/release/spectree}
D=${OUT:-/tmp/spectree-targets}; mkdir -p $D
run() { name=$1; shift; for r in 1 2 3; do $B run "$@" --json $D/$name-$r.json > /dev/null 2>&1 || echo "FAIL $name"; done;
python3 - "$name" "$D" <<'PY'
import json,sys,statistics
n=sys.argv[1]
rs=[json.load(open(f"{sys.argv[2]}/{n}-{r}.json")) for r in (1,2,3)]
med=lambda k: statistics.median(x[k] for x in rs)
print(f"{n:14} speedup {med('speedup'):.2f} (runs {' '.join('%.2f'%x['speedup'] for x in rs)}) capacity {med('capacity_at_threads'):.2f} eff {med('speedup')/med('capacity_at_threads'):.2f} cpu_ratio {med('cpu_ratio'):.2f} reexec {med('reexecutions')/rs[0]['events']*100:.1f}% aborts {med('aborts')/rs[0]['events']*100:.1f}% ap {rs[0]['available_parallelism']} identical {all(x['identical'] for x in rs)}")
PY
}
run independent --workload independent --threads 2
run arvo --workload arvo --threads 2
run hotspot --workload hotspot --threads 2
run tiny --workload tiny --threads 2 --no-analysis
run tiny-1t --workload tiny --threads 1 --no-analysis
run kv-40us --workload kv --work 40 --threads 2
run kv-4us --workload kv --work 4 --threads 2
run kv-0us --workload kv --work 0 --threads 2
