#!/bin/bash
# The throughput targets at 2 threads (docs/benchmarks.md): each case three
# times, then a table of medians from the JSON reports. Run with nothing else
# busy on the machine.
# Usage: cargo build --release; benches/scripts/targets.sh
B=${SPECTREE:-./target/release/spectree}
D=${OUT:-/tmp/spectree-targets}; mkdir -p "$D"
run() {
    name=$1; shift
    for r in 1 2 3; do
        "$B" run --no-analysis "$@" --json "$D/$name.$r.json" >/dev/null 2>&1 || echo "FAIL $name"
    done
}
one() { name=$1; shift; "$B" run --no-analysis "$@" --json "$D/$name.1.json" >/dev/null 2>&1 || echo "FAIL $name"; }
run arvo --workload arvo --threads 2
run independent --workload independent --threads 2
run tiny --workload tiny --threads 2
run hotspot --workload hotspot --threads 2
run kv1k-40 --workload kv --keys 1000 --work 40 --events 20000 --threads 2
run kv1k-4 --workload kv --keys 1000 --work 4 --events 100000 --threads 2
run kv1k-0 --workload kv --keys 1000 --work 0 --events 200000 --threads 2
run kv100k-40 --workload kv --keys 100000 --work 40 --events 20000 --threads 2
run kv100k-4 --workload kv --keys 100000 --work 4 --events 100000 --threads 2
run kv100k-0 --workload kv --keys 100000 --work 0 --events 200000 --threads 2
for w in arvo independent tiny hotspot; do one "t1-$w" --workload "$w" --threads 1; done
one t1-kv1k-4 --workload kv --keys 1000 --work 4 --events 100000 --threads 1
python3 - "$D" <<'PY'
import glob, json, os, statistics as st, sys
d = sys.argv[1]
names = sorted({os.path.basename(f).rsplit('.', 2)[0] for f in glob.glob(d + '/*.json')})
print("| case | speedup | runs | capacity | cpu ratio | serial ev/s | speculative ev/s | vs plain | commit ns/event | direct |")
print("|---|---|---|---|---|---|---|---|---|---|")
for n in names:
    rs = [json.load(open(f)) for f in sorted(glob.glob(f"{d}/{n}.*.json"))]
    med = lambda k: st.median((r.get(k) or 0) for r in rs)
    runs = " ".join(f"{r['speedup']:.2f}" for r in rs)
    ok = "" if all(r['identical'] for r in rs) else " NOT IDENTICAL"
    print(f"| {n} | {med('speedup'):.2f} | {runs} | {med('capacity'):.2f} | {med('cpu_ratio'):.2f} "
          f"| {med('serial_events_per_sec'):,.0f} | {med('parallel_events_per_sec'):,.0f} "
          f"| {med('speedup_vs_plain'):.2f} | {med('commit_overhead_ns_per_event'):,.0f} "
          f"| {med('direct'):,.0f} of {rs[0]['events']:,}{ok} |")
PY
