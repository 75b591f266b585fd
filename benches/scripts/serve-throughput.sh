#!/usr/bin/env bash
# Events/s of `spectree serve` on the embedded log and on NATS JetStream
# (R1: one server; R3: a 3-node cluster on loopback), at the default group,
# and how far a follower lags the R3 writer at the end of the run.
# Usage: benches/scripts/serve-throughput.sh [EVENTS]  (release build and a
# nats-server on the PATH first)
set -euo pipefail
S=${S:-$PWD/target/release/spectree}
N=${1:-200000}
K='[[0 6] [0 2] 0 7]'
W=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$W"' EXIT
seq 1 "$N" > "$W/events"
now() { date +%s.%N; }
rate() { echo "scale=0; $N / ($2 - $1)" | bc; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_servers() { # COUNT -> URL
  local n=$1 ports=() routes=() list="" url=""
  for i in $(seq 1 "$n"); do ports+=("$(port)"); routes+=("$(port)"); done
  for r in "${routes[@]}"; do list="$list${list:+,}nats://127.0.0.1:$r"; done
  for i in $(seq 0 $((n - 1))); do
    if [ "$n" -gt 1 ]; then
      nats-server -a 127.0.0.1 -p "${ports[$i]}" -n "s$i" -js -sd "$W/js$n-$i" \
        --cluster_name bench --cluster "nats://127.0.0.1:${routes[$i]}" --routes "$list" >/dev/null 2>&1 &
    else
      nats-server -a 127.0.0.1 -p "${ports[$i]}" -n "s$i" -js -sd "$W/js$n-$i" >/dev/null 2>&1 &
    fi
    PIDS+=($!)
    url="$url${url:+,}nats://127.0.0.1:${ports[$i]}"
  done
  echo "$url"
}
wait_ready() { # URL NODE
  for _ in $(seq 1 120); do
    if echo | "$S" serve "$2" --jetstream "$1" --kernel "$K" --replicas 1 >/dev/null 2>&1; then return; fi
    sleep 0.5
  done
  echo "no JetStream at $1" >&2; exit 1
}

t0=$(now); "$S" serve "$W/embedded" --kernel "$K" < "$W/events" > /dev/null 2>&1; t1=$(now)
echo "embedded: $(rate "$t0" "$t1") events/s"

url1=$(start_servers 1); wait_ready "$url1" probe
t0=$(now); "$S" serve r1 --jetstream "$url1" --replicas 1 --kernel "$K" < "$W/events" > /dev/null 2>&1; t1=$(now)
echo "jetstream R1: $(rate "$t0" "$t1") events/s"

url3=$(start_servers 3); wait_ready "$url3" probe
echo 0 | "$S" serve r3 --jetstream "$url3" --replicas 3 --kernel "$K" >/dev/null 2>&1
coproc F { "$S" serve r3 --jetstream "$url3" --kernel "$K" --follow 2>/dev/null; }
t0=$(now); "$S" serve r3 --jetstream "$url3" --take-over --kernel "$K" < "$W/events" > /dev/null 2>&1; t1=$(now)
echo "jetstream R3: $(rate "$t0" "$t1") events/s"
want=$((N + 1))
while :; do
  echo mug >&"${F[1]}"; read -r line <&"${F[0]}"
  [ "${line%% *}" -ge "$want" ] && break
  sleep 0.005
done
t2=$(now)
echo "follower lag at the end of the R3 run: $(echo "scale=3; ($t2 - $t1) * 1000" | bc) ms"
