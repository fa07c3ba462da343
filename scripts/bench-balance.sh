#!/usr/bin/env bash
# bench-balance.sh: three replicas, one four times slower, open-loop load at about 80 % of the
# total capacity, once per `--balancing` mode: p50/p99 and each replica's share.
# See docs/BENCHMARKS.md, section "Balance".
#
# Capacity is set by the benchmark-only service delay, not by the CPU: every worker sleeps
# `benchmark_service_delay_ms` per request, so a replica with W workers serves at most about
# W / delay requests/s whatever else runs on the two cores. The fast replicas sleep FAST_MS,
# the slow one 4 x FAST_MS. The script measures each replica's capacity (closed loop, one
# replica at a time), then offers LOAD_PCT % of the sum.
#
# Everything runs inside a network namespace this script creates; the EXIT trap stops every
# process it started (by pid) and deletes the namespace and the temporary directory.
#
# Knobs (environment): FAST_MS (4), WORKERS (2), AGENTS (300), DURATION (30 s per mode),
# LOAD_PCT (80), SEED (7), AGE_MS (replica max_connection_age_ms, 5000), MODES.
# Needs root (ip netns). Prints Markdown tables on stdout.
set -euo pipefail

FAST_MS=${FAST_MS:-4}
SLOW_MS=$((4 * FAST_MS))
WORKERS=${WORKERS:-2}
AGENTS=${AGENTS:-300}
DURATION=${DURATION:-30}
LOAD_PCT=${LOAD_PCT:-80}
SEED=${SEED:-7}
AGE_MS=${AGE_MS:-5000}
MODES=${MODES:-"probing seed_estimate round_robin random ordered"}
MIX="authorize=100,deny=20"
PORTS=(7701 7702 7703)
DELAYS=("$SLOW_MS" "$FAST_MS" "$FAST_MS") # the slow replica is first in the agents' list

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
NS=gh-balance-$$
WORK=$(mktemp -d /tmp/gh-balance.XXXXXX)
PIDS=()
NS_MADE=0

source "$ROOT/scripts/lib/netns-cleanup.sh"

log() { echo "# $*" >&2; }

# Starts the three replicas afresh (so every mode starts from the same state).
start_replicas() {
    local i port
    for i in 0 1 2; do
        port=${PORTS[$i]}
        cat >"$WORK/replica$i.ron" <<EOF
(listen: "127.0.0.1:$port", database: "db.ron", bridge: (workers: $WORKERS,
 benchmark_service_delay_ms: ${DELAYS[$i]}, max_connection_age_ms: $AGE_MS, drain_timeout_ms: 1000))
EOF
        # `ip netns exec` execs the replica, so $! is the replica's own pid.
        ip netns exec "$NS" "$BIN/gatehouse-replica" --config "$WORK/replica$i.ron" \
            >"$WORK/replica$i.out" 2>"$WORK/replica$i.log" &
        PIDS+=($!)
    done
    for i in 0 1 2; do
        for _ in $(seq 1 100); do grep -q '^listening on' "$WORK/replica$i.out" && break; sleep 0.1; done
        grep -q '^listening on' "$WORK/replica$i.out" || { log "replica $i did not start"; cat "$WORK/replica$i.log" >&2; exit 1; }
    done
}
stop_replicas() { stop_pids "${PIDS[@]}"; PIDS=(); }

loadgen() { ip netns exec "$NS" "$BIN/gatehouse-loadgen" "$@"; }
ms() { jq -r "$1 / 1000 | . * 10 | round / 10" "$2"; }

log "building (release)"
(cd "$ROOT" && cargo build --release --locked -p gatehouse-replica -p gatehouse-loadgen --bins) >&2

ip netns add "$NS"
NS_MADE=1
ip -n "$NS" link set lo up
"$BIN/gatehouse-loadgen" provision --agents "$AGENTS" --out "$WORK" >&2
SERVERS="127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_AVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Capacity: each replica alone, saturated by a closed loop (64 agents, no think time; the
# queue stays below the busy limit: 62 x 16 ms / 2 workers = 0.5 s < busy_wait_ms 1 s).
start_replicas
declare -a CAP
for i in 0 1 2; do
    log "capacity of replica $i (delay ${DELAYS[$i]} ms, $WORKERS workers)"
    loadgen run --servers "127.0.0.1:${PORTS[$i]}" --identities "$WORK/identities.ron" \
        --agents 64 --mode closed --duration 5 --mix "$MIX" --balancing ordered --seed "$SEED" \
        --json "$WORK/cap$i.json" >"$WORK/cap$i.out" 2>&1
    CAP[$i]=$(jq -r '.throughput_rps | floor' "$WORK/cap$i.json")
done
stop_replicas
TOTAL=$((CAP[0] + CAP[1] + CAP[2]))
RATE=$((TOTAL * LOAD_PCT / 100))

echo
echo "### Balance: capacity (each replica alone, closed loop, 64 agents, 5 s, mix $MIX)"
echo
echo "Date: $DATE. nproc: $(nproc). CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo). Load average (1/5/15 min) at the start: $LOAD_AVG_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| replica | service delay | workers | expected ≈ workers / delay | measured req/s | p50 |"
echo "|---|---:|---:|---:|---:|---:|"
for i in 0 1 2; do
    echo "| 127.0.0.1:${PORTS[$i]} | ${DELAYS[$i]} ms | $WORKERS | $((WORKERS * 1000 / DELAYS[i])) | ${CAP[$i]} | $(ms .latency_us.p50 "$WORK/cap$i.json") ms |"
done
echo
echo "Total capacity $TOTAL req/s; offered load $LOAD_PCT % = $RATE req/s (open loop, Poisson)."

# 2. One run per balancing mode, same seed, duration, rate and fresh replicas.
for mode in $MODES; do
    log "mode $mode: $RATE req/s for $DURATION s"
    start_replicas
    loadgen run --servers "$SERVERS" --identities "$WORK/identities.ron" --agents "$AGENTS" \
        --mode open --rate "$RATE" --duration "$DURATION" --mix "$MIX" --balancing "$mode" \
        --seed "$SEED" --json "$WORK/$mode.json" >"$WORK/$mode.out" 2>&1 \
        || { log "loadgen failed in mode $mode"; cat "$WORK/$mode.out" >&2; exit 1; }
    stop_replicas
done

echo
echo "### Balance: $RATE req/s open loop, $AGENTS agents, $DURATION s per mode, seed $SEED, replica connection age $AGE_MS ms"
echo
echo "Agents' server list: slow (${SLOW_MS} ms) first, then the two fast (${FAST_MS} ms). Capacity share: slow $((CAP[0] * 1000 / TOTAL / 10)) %, fast $((CAP[1] * 1000 / TOTAL / 10)) % and $((CAP[2] * 1000 / TOTAL / 10)) %. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| balancing | req/s | p50 | p90 | p99 | p99.9 | max | share slow / fast / fast | p99 slow / fast / fast | redirects | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|"
for mode in $MODES; do
    J=$WORK/$mode.json
    jq -r --arg mode "$mode" '
        def ms: . / 1000 | . * 10 | round / 10 | tostring + " ms";
        "| \($mode) | \(.throughput_rps | floor) | \(.latency_us.p50 | ms) | \(.latency_us.p90 | ms) | \(.latency_us.p99 | ms) | \(.latency_us.p999 | ms) | \(.latency_us.max | ms) | \(.servers | map(.share_percent | . * 10 | round / 10 | tostring + " %") | join(" / ")) | \(.servers | map(.p99_us | ms) | join(" / ")) | \(.redirects) | \(.errors)\(.errors_by_kind | to_entries | map(select(.value > 0)) | map(" \(.key)=\(.value)") | join("")) |"' "$J"
done
