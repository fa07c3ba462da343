#!/usr/bin/env bash
# bench-scale.sh: 5000 simulated agents connected across three replicas for 60 s, and the
# replicas' memory per agent connection. See docs/BENCHMARKS.md, section "Scale".
#
# Everything runs inside a network namespace this script creates (fixed ports on its own
# loopback, and /proc/net/sockstat that counts only our sockets). The EXIT trap stops every
# process the script started (by pid) and deletes the namespace and the temporary directory.
#
# Knobs (environment): AGENTS (5000), DURATION (60 s), THINK (ms between an agent's requests,
# 1000), THREADS (load-generator threads, 2), WARMUP_AGENTS (60).
# Needs root (ip netns). Prints Markdown tables on stdout; logs go to $WORK (kept on failure
# only if KEEP=1).
set -euo pipefail

AGENTS=${AGENTS:-5000}
DURATION=${DURATION:-60}
THINK=${THINK:-1000}
THREADS=${THREADS:-2}
WARMUP_AGENTS=${WARMUP_AGENTS:-60}
PORTS=(7701 7702 7703)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
NS=gh-scale-$$
WORK=$(mktemp -d /tmp/gh-scale.XXXXXX)
PIDS=()
NS_MADE=0

source "$ROOT/scripts/lib/netns-cleanup.sh"

log() { echo "# $*" >&2; }
# Runs a command in the namespace. For background processes call `ip netns exec` directly:
# it execs the command, so $! is the command's own pid (a shell function would add a subshell).
in_ns() { ip netns exec "$NS" "$@"; }

# Resident and proportional set size of a process, KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kib() {
    if [ -r "/proc/$1/smaps_rollup" ]; then awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"
    else echo "n/a"; fi
}
# Established TCP connections whose local port is $1 (the replica's side), in the namespace.
conns_on() { in_ns ss -Htn state established "( sport = :$1 )" | wc -l; }
# Kernel memory of the socket slab caches, bytes (global: other processes add noise).
SLABS="TCP UDP sock_inode_cache filp dentry eventpoll_epi eventpoll_pwq"
# One line per cache: name objsize num_objs (global: other processes add noise).
slab_snapshot() {
    awk -v list="$SLABS" 'BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
        want[$1] { print $1, $4, $3 }' /proc/slabinfo
}
# TCP buffer memory in pages (sockstat "mem").
tcp_mem_pages() { in_ns awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }

log "building (release)"
(cd "$ROOT" && cargo build --release --locked -p gatehouse-replica -p gatehouse-loadgen --bins) >&2

ip netns add "$NS"
NS_MADE=1
ip -n "$NS" link set lo up

"$BIN/gatehouse-loadgen" provision --agents "$AGENTS" --out "$WORK" >&2
SERVERS=""
for i in 0 1 2; do
    port=${PORTS[$i]}
    cat >"$WORK/replica$i.ron" <<EOF
(listen: "127.0.0.1:$port", database: "db.ron", bridge: (drain_timeout_ms: 1000))
EOF
    ip netns exec "$NS" "$BIN/gatehouse-replica" --config "$WORK/replica$i.ron" \
        >"$WORK/replica$i.out" 2>"$WORK/replica$i.log" &
    PIDS+=($!)
    SERVERS+="${SERVERS:+,}127.0.0.1:$port"
done
REPLICA_PIDS=("${PIDS[@]}")
for i in 0 1 2; do
    for _ in $(seq 1 100); do grep -q '^listening on' "$WORK/replica$i.out" && break; sleep 0.1; done
    grep -q '^listening on' "$WORK/replica$i.out" || { log "replica $i did not start"; cat "$WORK/replica$i.log" >&2; exit 1; }
done
log "replicas ${REPLICA_PIDS[*]} on $SERVERS"

declare -A COLD_RSS COLD_PSS WARM_RSS WARM_PSS LOAD_RSS LOAD_PSS LOAD_CONNS AFTER_RSS
for i in 0 1 2; do
    COLD_RSS[$i]=$(rss_kib "${REPLICA_PIDS[$i]}"); COLD_PSS[$i]=$(pss_kib "${REPLICA_PIDS[$i]}")
done

# Warm-up: a few agents for 3 s, so one-time costs (worker threads' malloc arenas, the policy
# caches, the estimator) are paid before the baseline. The connections close when it exits.
log "warm-up: $WARMUP_AGENTS agents for 3 s"
in_ns "$BIN/gatehouse-loadgen" run --servers "$SERVERS" --identities "$WORK/identities.ron" \
    --agents "$WARMUP_AGENTS" --duration 3 --think 10 >"$WORK/warmup.out" 2>&1
sleep 1
for i in 0 1 2; do
    WARM_RSS[$i]=$(rss_kib "${REPLICA_PIDS[$i]}"); WARM_PSS[$i]=$(pss_kib "${REPLICA_PIDS[$i]}")
done
slab_snapshot >"$WORK/slab0"
TCPMEM0=$(tcp_mem_pages)

log "run: $AGENTS agents, closed loop, think $THINK ms, $THREADS threads, $DURATION s"
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_AVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
RUN_CMD=("$BIN/gatehouse-loadgen" run --servers "$SERVERS" --identities "$WORK/identities.ron"
    --agents "$AGENTS" --threads "$THREADS" --mode closed --think "$THINK"
    --duration "$DURATION" --seed 1 --json "$WORK/scale.json")
ip netns exec "$NS" "${RUN_CMD[@]}" >"$WORK/run.out" 2>&1 &
LG=$!
PIDS+=("$LG")

# Sample at mid-run (every agent started within the first second; the first connection-age
# goodbyes come at 60 s).
sleep $((DURATION / 2))
for i in 0 1 2; do
    LOAD_CONNS[$i]=$(conns_on "${PORTS[$i]}")
    LOAD_RSS[$i]=$(rss_kib "${REPLICA_PIDS[$i]}"); LOAD_PSS[$i]=$(pss_kib "${REPLICA_PIDS[$i]}")
done
slab_snapshot >"$WORK/slab1"
TCPMEM1=$(tcp_mem_pages)
LG_RSS=$(rss_kib "$LG")
SOCKSTAT=$(in_ns grep '^TCP:' /proc/net/sockstat)
LOAD_AVG_MID=$(cut -d' ' -f1-3 /proc/loadavg)

STATUS=0
wait "$LG" || STATUS=$?
PIDS=("${REPLICA_PIDS[@]}")
sleep 1
for i in 0 1 2; do AFTER_RSS[$i]=$(rss_kib "${REPLICA_PIDS[$i]}"); done
cat "$WORK/run.out" >&2
[ "$STATUS" = 0 ] || { log "load generator exited with $STATUS"; exit 1; }

J=$WORK/scale.json
echo
echo "### Scale: $AGENTS agents, 3 replicas, closed loop, think $THINK ms, $DURATION s"
echo
echo "Date: $START_DATE. nproc: $(nproc). CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo). Load average (1/5/15 min) at the start: $LOAD_AVG_START; at mid-run: $LOAD_AVG_MID; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| agents | threads | requests | req/s | p50 | p99 | p99.9 | max | redirects | errors | agent connections at mid-run |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
TOTAL_CONNS=$((LOAD_CONNS[0] + LOAD_CONNS[1] + LOAD_CONNS[2]))
jq -r --arg c "$TOTAL_CONNS" '"| \(.agents) | \(.threads) | \(.requests) | \(.throughput_rps | floor) | \(.latency_us.p50 / 1000 | . * 10 | round / 10) ms | \(.latency_us.p99 / 1000 | . * 10 | round / 10) ms | \(.latency_us.p999 / 1000 | . * 10 | round / 10) ms | \(.latency_us.max / 1000 | . * 10 | round / 10) ms | \(.redirects) | \(.errors) \(.errors_by_kind | to_entries | map(select(.value > 0)) | map("\(.key)=\(.value)") | join(" ")) | \($c) |"' "$J"
echo
echo "Replica memory (KiB; cold = before any agent, warm = after a $WARMUP_AGENTS-agent warm-up with its connections closed, load = at $((DURATION / 2)) s; per connection = (load - warm) / connections, bytes):"
echo
echo "| replica | share | connections | RSS cold | RSS warm | RSS load | RSS after run | RSS B/conn | PSS warm | PSS load | PSS B/conn |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for i in 0 1 2; do
    share=$(jq -r ".servers[$i].share_percent | . * 10 | round / 10" "$J")
    c=${LOAD_CONNS[$i]}
    rb=$(( c > 0 ? (LOAD_RSS[$i] - WARM_RSS[$i]) * 1024 / c : 0 ))
    if [ "${LOAD_PSS[$i]}" != n/a ]; then pb=$(( c > 0 ? (LOAD_PSS[$i] - WARM_PSS[$i]) * 1024 / c : 0 )); else pb=n/a; fi
    echo "| 127.0.0.1:${PORTS[$i]} | $share % | $c | ${COLD_RSS[$i]} | ${WARM_RSS[$i]} | ${LOAD_RSS[$i]} | ${AFTER_RSS[$i]} | $rb | ${WARM_PSS[$i]} | ${LOAD_PSS[$i]} | $pb |"
done
echo
echo "Kernel memory (not process memory): socket slab caches, before the run and at mid-run with $TOTAL_CONNS agent connections."
echo "Each agent holds one TCP socket pair (agent end + replica end); the load generator's UDP probe sockets are one per thread, not per agent. /proc/slabinfo is global: other processes add noise (dentry especially)."
echo
echo "| slab cache | object size B | objects before | objects at mid-run | growth KiB | B per agent |"
echo "|---|---:|---:|---:|---:|---:|"
KTOTAL=0
while read -r name size before; do
    after=$(awk -v n="$name" '$1 == n { print $3 }' "$WORK/slab1")
    grow=$(( (after - before) * size ))
    KTOTAL=$((KTOTAL + grow))
    echo "| $name | $size | $before | $after | $((grow / 1024)) | $(( TOTAL_CONNS > 0 ? grow / TOTAL_CONNS : 0 )) |"
done <"$WORK/slab0"
echo "| total | | | | $((KTOTAL / 1024)) | $(( TOTAL_CONNS > 0 ? KTOTAL / TOTAL_CONNS : 0 )) |"
echo
echo "TCP buffer memory (sockstat \`mem\`, pages): $TCPMEM0 before, $TCPMEM1 at mid-run. Namespace sockstat at mid-run: \`$SOCKSTAT\`."
echo "Load generator RSS at mid-run: $LG_RSS KiB = $(( LG_RSS * 1024 / AGENTS )) B per simulated agent (agent side, for comparison)."
