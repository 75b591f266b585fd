#!/bin/bash
# The Nock table of docs/benchmarks.md: instructions per unit of work
# (callgrind; the difference of two sizes, so start-up and parsing cancel)
# and wall time, untracked and tracked, for each benchmark formula.
# Usage: cargo build --release; benches/scripts/nock-table.sh
set -euo pipefail
B=${SPECTREE:-./target/release/spectree}
. "$(dirname "$0")/nock-formulas.sh"

ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null \
    | grep -o "Collected : [0-9]*" | grep -o "[0-9]*"; }
wall() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }

# untracked: *[input F]; tracked, input from the event (state-free code):
# kernel [[1 0] 7 [0 2] F]; tracked, input from the state: [[1 0] 7 [0 3] F].
# Instructions are the big input's minus the tiny input's, per formula
# evaluated (`fuel`: the fewest fuel units the big input runs in).
row() {
    local name=$1 f=$2 tiny=$3 big=$4 fuel=$5
    local u e s t
    u=$(( $(ir "$B" nock "$big" "$f") - $(ir "$B" nock "$tiny" "$f") ))
    e=$(( $(ir "$B" trace --state 0 --kernel "[[1 0] 7 [0 2] $f]" --event "$big" --regions depth:0) \
        - $(ir "$B" trace --state 0 --kernel "[[1 0] 7 [0 2] $f]" --event "$tiny" --regions depth:0) ))
    s=$(( $(ir "$B" trace --state "$big" --kernel "[[1 0] 7 [0 3] $f]" --event 0 --regions depth:0) \
        - $(ir "$B" trace --state "$tiny" --kernel "[[1 0] 7 [0 3] $f]" --event 0 --regions depth:0) ))
    t=$(wall "$B" nock "$big" "$f")
    printf "| %s | %s | %s | %.1f | %.1f (%.2fx) | %.1f (%.2fx) | %s s |\n" "$name" "$big" "$fuel" \
        "$(echo "$u / $fuel" | bc -l)" "$(echo "$e / $fuel" | bc -l)" "$(echo "$e / $u" | bc -l)" \
        "$(echo "$s / $fuel" | bc -l)" "$(echo "$s / $u" | bc -l)" "$t"
}
echo "| formula | input | formulas evaluated | instructions per formula, untracked | tracked, input from the event | tracked, input from the state | wall, untracked |"
echo "|---|---|---|---|---|---|---|"
row decrement "$DEC" 1 100000 1200000
row fib "$FIB" 1 22 4712217
row ackermann "$ACK" "[0 0]" "[3 7]" 7991494
row list "$LIST" 0 100000 2500024
