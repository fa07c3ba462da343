#!/usr/bin/env bash
# bench-stall.sh: one server in the agents' list silently drops SYNs and UDP probes (an
# nftables `drop` rule); the agents must keep p99 under 500 ms with no failures.
# See docs/BENCHMARKS.md, section "Stall".
#
# Everything runs inside a network namespace this script creates: two live replicas on its
# loopback (ports 7701, 7702) and a blackholed port 7700 (nothing listens there, and the drop
# rule discards the SYN before the kernel could answer with a reset). The agents' list puts the
# blackholed server first. Each run starts fresh replicas. The EXIT trap stops every process it
# started (by pid) and deletes the namespace (with its nftables table) and the temporary
# directory.
#
# Knobs (environment): AGENTS (200), THINK (100 ms), DURATION (20 s per run), THREADS (1),
# RUNS ("balancing:replica max_connection_age_ms" pairs, default below).
# Needs root (ip netns, nft). Prints Markdown tables on stdout.
set -euo pipefail

AGENTS=${AGENTS:-200}
THINK=${THINK:-100}
DURATION=${DURATION:-20}
THREADS=${THREADS:-1}
# The default age (60 s) lets each agent connect about once per run; 2 s makes every agent
# reconnect (and, in ordered mode, try the blackholed server first again) about ten times.
RUNS=${RUNS:-"ordered:60000 probing:60000 ordered:2000 probing:2000"}
DEAD=7700
LIVE=(7701 7702)
NAIVE_TIMEOUT=5

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
NS=gh-stall-$$
WORK=$(mktemp -d /tmp/gh-stall.XXXXXX)
PIDS=()
NS_MADE=0

extra_cleanup() { ip netns exec "$NS" nft delete table inet gh_stall 2>/dev/null; }
source "$ROOT/scripts/lib/netns-cleanup.sh"

log() { echo "# $*" >&2; }
in_ns() { ip netns exec "$NS" "$@"; }

start_replicas() {
    local age=$1 i port
    for i in 0 1; do
        port=${LIVE[$i]}
        cat >"$WORK/replica$i.ron" <<EOF
(listen: "127.0.0.1:$port", database: "db.ron", bridge: (max_connection_age_ms: $age, drain_timeout_ms: 1000))
EOF
        # `ip netns exec` execs the replica, so $! is the replica's own pid.
        ip netns exec "$NS" "$BIN/gatehouse-replica" --config "$WORK/replica$i.ron" \
            >"$WORK/replica$i.out" 2>"$WORK/replica$i.log" &
        PIDS+=($!)
    done
    for i in 0 1; do
        for _ in $(seq 1 100); do grep -q '^listening on' "$WORK/replica$i.out" && break; sleep 0.1; done
        grep -q '^listening on' "$WORK/replica$i.out" || { log "replica $i did not start"; cat "$WORK/replica$i.log" >&2; exit 1; }
    done
}
stop_replicas() { stop_pids "${PIDS[@]}"; PIDS=(); }

# Seconds (3 decimals) a plain bash connect to port $1 takes inside the namespace, and its exit
# status: 0 connected, 124 timed out (hung), other = refused/failed.
naive_connect() {
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    in_ns timeout "$NAIVE_TIMEOUT" bash -c "echo > /dev/tcp/127.0.0.1/$1" 2>/dev/null || rc=$?
    t1=$(date +%s.%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $rc"
}

log "building (release)"
(cd "$ROOT" && cargo build --release --locked -p gatehouse-replica -p gatehouse-loadgen --bins) >&2

ip netns add "$NS"
NS_MADE=1
ip -n "$NS" link set lo up
in_ns nft -f - <<EOF
table inet gh_stall {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $DEAD counter drop
        udp dport $DEAD counter drop
    }
}
EOF
"$BIN/gatehouse-loadgen" provision --agents "$AGENTS" --out "$WORK" >&2
SERVERS="127.0.0.1:$DEAD,127.0.0.1:${LIVE[0]},127.0.0.1:${LIVE[1]}"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_AVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

start_replicas 60000
read -r NAIVE_DEAD_S NAIVE_DEAD_RC < <(naive_connect "$DEAD")
read -r NAIVE_LIVE_S NAIVE_LIVE_RC < <(naive_connect "${LIVE[0]}")
stop_replicas
# Without the rule, nothing listening answers with a reset at once (for contrast).
in_ns nft delete table inet gh_stall
read -r NAIVE_OPEN_S NAIVE_OPEN_RC < <(naive_connect "$DEAD")
in_ns nft -f - <<EOF
table inet gh_stall {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $DEAD counter drop
        udp dport $DEAD counter drop
    }
}
EOF

for run in $RUNS; do
    mode=${run%%:*}
    age=${run##*:}
    log "run: $mode, replica connection age $age ms, $AGENTS agents, $DURATION s"
    start_replicas "$age"
    in_ns "$BIN/gatehouse-loadgen" run --servers "$SERVERS" --identities "$WORK/identities.ron" \
        --agents "$AGENTS" --threads "$THREADS" --mode closed --think "$THINK" \
        --duration "$DURATION" --balancing "$mode" --seed 1 --json "$WORK/$mode-$age.json" \
        >"$WORK/$mode-$age.out" 2>&1 || { log "loadgen failed"; cat "$WORK/$mode-$age.out" >&2; exit 1; }
    stop_replicas
done
# Packets the rules dropped during the agent runs (counters start at 0 with the second table).
DROPPED=$(in_ns nft list table inet gh_stall | awk '/dport/ { for (i = 1; i < NF; i++) if ($i == "packets") printf "%s%s %s", sep, $1, $(i + 1); sep = ", " }')

echo
echo "### Stall: server list $SERVERS, port $DEAD silently drops TCP SYNs and UDP probes"
echo
echo "Date: $DATE. nproc: $(nproc). CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo). Load average (1/5/15 min) at the start: $LOAD_AVG_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg). Packets dropped during the agent runs: $DROPPED."
echo
echo "A naive client (\`timeout $NAIVE_TIMEOUT bash -c 'echo > /dev/tcp/127.0.0.1/PORT'\` in the namespace):"
echo
echo "| target | seconds | exit status |"
echo "|---|---:|---:|"
echo "| port $DEAD, SYNs dropped | $NAIVE_DEAD_S | $NAIVE_DEAD_RC (124 = killed by timeout: still hanging) |"
echo "| port $DEAD, no rule, nothing listening | $NAIVE_OPEN_S | $NAIVE_OPEN_RC (refused) |"
echo "| port ${LIVE[0]}, live replica | $NAIVE_LIVE_S | $NAIVE_LIVE_RC |"
echo
echo "Agents: $AGENTS, closed loop, think $THINK ms, $DURATION s per run, default mix:"
echo
echo "| balancing | replica connection age | requests | req/s | p50 | p90 | p99 | p99.9 | max | share dead / live / live | redirects | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
for run in $RUNS; do
    mode=${run%%:*}
    age=${run##*:}
    jq -r --arg mode "$mode" --arg age "$((age / 1000)) s" '
        def ms: . / 1000 | . * 10 | round / 10 | tostring + " ms";
        "| \($mode) | \($age) | \(.requests) | \(.throughput_rps | floor) | \(.latency_us.p50 | ms) | \(.latency_us.p90 | ms) | \(.latency_us.p99 | ms) | \(.latency_us.p999 | ms) | \(.latency_us.max | ms) | \(.servers | map(.share_percent | . * 10 | round / 10 | tostring + " %") | join(" / ")) | \(.redirects) | \(.errors)\(.errors_by_kind | to_entries | map(select(.value > 0)) | map(" \(.key)=\(.value)") | join("")) |"' "$WORK/$mode-$age.json"
done
