#!/usr/bin/env bash
# Throughput benchmark (docs/BENCHMARKS.md, "## Throughput"): one gatehouse-replica pinned to
# CPU 0, the load generator pinned to CPU 1, authorize-only closed loop at 50, 500 and 5000
# agents, side by side with redis-server GET (also pinned to CPU 0) at the same connection
# counts, in the same run. Gatehouse is measured twice: with the full agent engine as the
# client (`loadgen run`), and with the lean closed-loop client that also drives redis
# (`loadgen direct`: same handshake and sealed requests, one connection per agent identity).
# The three clients run back to back in each round, in an order that rotates from round to
# round. Prints three Markdown tables: the best round of each client with the median of the
# per-round ratios; each process's CPU in those rounds (which side was the limit, and what a
# request cost each); and each server's CPU per request over all rounds.
#
# Self-contained: builds release with --locked, provisions a fleet in a temporary directory,
# starts and stops every process itself (trap on EXIT), and every wait is bounded.
#
# Environment: DURATION (seconds per measurement, default 10), COUNTS (default "50 500 5000"),
# REPEAT (rounds of replica+redis per count, default 1; the best round of each is reported, and
# the median and range of the rounds' gatehouse/redis ratios),
# SKIP_BUILD=1 (use the binaries already built), BIN_DIR (where they are; default
# target/release), BASE_BIN_DIR (optional: a directory with an earlier build's
# gatehouse-replica; it is started too, pinned like the others, and measured in every round with
# the lean client, so a change's cost is a per-round ratio to the build before it),
# AUDIT=1 (also start two replicas with the audit journal on, `answer_after: Synced` and
# `Written` (the default), measured in every round with the lean client: their req/s and p50/p99, and per
# round their ratio to the journal-off replica and to redis; docs/BENCHMARKS.md, "Audit").
set -euo pipefail

DURATION=${DURATION:-10}
COUNTS=${COUNTS:-"50 500 5000"}
REPEAT=${REPEAT:-1}
SERVER_CPU=0
CLIENT_CPU=1
# Seconds a server may take to print its ready line.
READY_LIMIT_S=15

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
PIDS=()
NS_MADE=0 # no network namespace here: the shared cleanup only stops PIDS and removes WORK
source "$root/scripts/lib/netns-cleanup.sh"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (bounded) until FILE has a line matching PATTERN.
wait_for_line() {
    local file=$1 pattern=$2 i
    for ((i = 0; i < READY_LIMIT_S * 10; i++)); do
        if grep -q "$pattern" "$file" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for '$pattern' in $file:" >&2
    tail -n 20 "$file" >&2 || true
    return 1
}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release --locked -p gatehouse-replica -p gatehouse-loadgen \
        --bin gatehouse-replica --bin gatehouse-loadgen >&2
fi
bin_dir=${BIN_DIR:-$root/target/release}
replica_bin=$bin_dir/gatehouse-replica
loadgen_bin=$bin_dir/gatehouse-loadgen

max_agents=0
for n in $COUNTS; do
    ((n > max_agents)) && max_agents=$n
done
"$loadgen_bin" provision --agents "$max_agents" --out "$WORK" >&2

# The replica: defaults except the address (a free port picked by the kernel) and the caps on
# connections in the handshake. The load generator opens every agent's connection within the
# first second, from 127.0.0.1, on a client process that answers 5000 handshakes on one core:
# with the defaults (512 at once, early drop from 256, 128 per address) a loaded replica told
# ~2000 of 5000 to go elsewhere, which a throughput run must not measure. Real agents each
# answer their own handshake at once, from their own address. The earlier build
# (BASE_BIN_DIR), which has no such caps, gets plain defaults.
cat >"$WORK/replica.ron" <<EOF
(listen: "127.0.0.1:0", database: "db.ron",
 bridge: (max_handshakes: 8192, max_handshakes_per_source: 8192))
EOF
cat >"$WORK/replica-base.ron" <<EOF
(listen: "127.0.0.1:0", database: "db.ron")
EOF
for mode in Synced Written; do
    cat >"$WORK/replica-audit-$mode.ron" <<EOF
(listen: "127.0.0.1:0", database: "db.ron",
 audit: (enabled: true, dir: "audit-$mode", answer_after: $mode),
 bridge: (max_handshakes: 8192, max_handshakes_per_source: 8192))
EOF
done
# Starts replica binary $1 with config $2, pinned, logging to $WORK/$3.{out,log}; sets
# started_pid and started_addr once it is listening.
start_replica() {
    taskset -c "$SERVER_CPU" "$1" --config "$2" >"$WORK/$3.out" 2>"$WORK/$3.log" &
    PIDS+=($!)
    started_pid=$!
    wait_for_line "$WORK/$3.out" '^listening on '
    started_addr=$(sed -n 's/^listening on //p' "$WORK/$3.out" | head -n 1)
}

start_replica "$replica_bin" "$WORK/replica.ron" replica
replica_pid=$started_pid replica_addr=$started_addr
base_pid="" base_addr=""
if [[ -n "${BASE_BIN_DIR:-}" ]]; then
    start_replica "$BASE_BIN_DIR/gatehouse-replica" "$WORK/replica-base.ron" base
    base_pid=$started_pid base_addr=$started_addr
fi

declare -A audit_addr=() audit_pid=()
if [[ "${AUDIT:-0}" == 1 ]]; then
    for mode in Synced Written; do
        start_replica "$replica_bin" "$WORK/replica-audit-$mode.ron" "audit-$mode"
        audit_addr[$mode]=$started_addr
        audit_pid[$mode]=$started_pid
    done
fi

redis_port=$(free_port)
taskset -c "$SERVER_CPU" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --maxclients 10000 >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
redis_pid=$!
wait_for_line "$WORK/redis.log" 'Ready to accept connections'
redis_addr=127.0.0.1:$redis_port

# Prints "throughput | p50 ms | p99 ms | errors" from a loadgen JSON summary.
summary_cells() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_us"]
print("%.0f %.0f | %.2f | %.2f | %d" % (d["throughput_rps"], d["throughput_rps"], l["p50"] / 1e3, l["p99"] / 1e3, d["errors"]))' "$1"
}

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}
clk_tck=$(getconf CLK_TCK)

# Runs the load generator ("$@") with its JSON summary at $1, and records, for that run, the
# server's CPU ($2 = its pid) and the load generator's own CPU, as "server_pct client_pct
# server_us_per_request client_us_per_request" in the file $1.cpu. A process at ~100 % is
# the limit of that run; the other one's µs/request is its cost at that rate.
measured_run() {
    local json=$1 server_pid=$2
    shift 2
    local before after start end client
    before=$(cpu_ticks "$server_pid")
    start=$(date +%s.%N)
    client=$( { TIMEFORMAT='%U %S'; time "$@" >/dev/null; } 2>&1 | tail -n 1)
    end=$(date +%s.%N)
    after=$(cpu_ticks "$server_pid")
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
ticks, hz, wall = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[5]) - float(sys.argv[4])
user, system = (float(x) for x in sys.argv[6].split())
server_s, client_s, n = ticks / hz, user + system, max(d["requests"], 1)
print("%.0f %.0f %.1f %.1f" % (100 * server_s / wall, 100 * client_s / wall, server_s * 1e6 / n, client_s * 1e6 / n))' \
        "$json" "$((after - before))" "$clk_tck" "$start" "$end" "$client" >"$json.cpu"
}

echo "replica pid $replica_pid on $replica_addr, redis pid $redis_pid on $redis_addr;" \
    "CPU $SERVER_CPU: servers, CPU $CLIENT_CPU: load generator; $DURATION s per run" >&2

# Three clients per round, back to back: the agent engine (`run`: what real agents cost), the
# lean closed-loop client speaking the same sealed protocol (`direct`: as light as the redis
# client, so the server is what is measured), and the redis client.
clients=(engine direct redis)
declare -A label=([engine]="gatehouse, agent engine" [direct]="gatehouse, lean client" [redis]="redis GET" [base]="base build, lean client")
label[Synced]="audit journal on (Synced), lean client"
label[Written]="audit journal on (Written), lean client"
if [[ -n "$base_pid" ]]; then
    clients=(engine direct base redis)
    echo "base replica pid $base_pid on $base_addr (from $BASE_BIN_DIR)" >&2
fi
if [[ "${AUDIT:-0}" == 1 ]]; then
    clients+=(Synced Written)
fi

# Runs one client against its server for one round; prints "req_per_s".
run_client() {
    local client=$1 n=$2 json=$3
    case $client in
    engine)
        measured_run "$json" "$replica_pid" \
            "$loadgen_bin" run --servers "$replica_addr" --identities "$WORK/identities.ron" \
            --agents "$n" --mode closed --duration "$DURATION" \
            --mix authorize=100,authenticate=0,deny=0 --pin-cpu "$CLIENT_CPU" --json "$json"
        ;;
    direct)
        measured_run "$json" "$replica_pid" \
            "$loadgen_bin" direct --server "$replica_addr" --identities "$WORK/identities.ron" \
            --agents "$n" --duration "$DURATION" --pin-cpu "$CLIENT_CPU" --json "$json"
        ;;
    base)
        measured_run "$json" "$base_pid" \
            "$loadgen_bin" direct --server "$base_addr" --identities "$WORK/identities.ron" \
            --agents "$n" --duration "$DURATION" --pin-cpu "$CLIENT_CPU" --json "$json"
        ;;
    Synced | Written)
        measured_run "$json" "${audit_pid[$client]}" \
            "$loadgen_bin" direct --server "${audit_addr[$client]}" --identities "$WORK/identities.ron" \
            --agents "$n" --duration "$DURATION" --pin-cpu "$CLIENT_CPU" --json "$json"
        ;;
    redis)
        measured_run "$json" "$redis_pid" \
            "$loadgen_bin" redis --addr "$redis_addr" --connections "$n" --duration "$DURATION" \
            --pin-cpu "$CLIENT_CPU" --json "$json"
        ;;
    esac
}

rows=() cpu_rows=() us_rows=() audit_rows=()
for n in $COUNTS; do
    declare -A best=() cells=() cpu=() ratios=() server_us=()
    for ((round = 1; round <= REPEAT; round++)); do
        declare -A got=()
        line="$n agents, round $round:"
        # The order rotates from round to round, so no client always runs first in a
        # machine whose speed drifts within a round.
        for ((k = 0; k < ${#clients[@]}; k++)); do
            c=${clients[(k + round - 1) % ${#clients[@]}]}
            json=$WORK/$c-$n-$round.json
            run_client "$c" "$n" "$json"
            read -r rps rest < <(summary_cells "$json")
            read -r sp cp su cu <"$json.cpu"
            got[$c]=$rps
            server_us[$c]+=" $su"
            line+=" ${label[$c]} $rps req/s | $rest (server $sp % CPU, $su µs/req; client $cp %, $cu µs/req);"
            if ((rps > ${best[$c]:-0})); then
                best[$c]=$rps cells[$c]=$rest cpu[$c]="$sp | $su | $cp | $cu"
            fi
        done
        echo "$line" >&2
        for c in engine direct; do
            ratios[$c]+=" ${got[$c]}/${got[redis]}"
        done
        if [[ -n "$base_pid" ]]; then
            ratios[base]+=" ${got[direct]}/${got[base]}"
        fi
        if [[ "${AUDIT:-0}" == 1 ]]; then
            for mode in Synced Written; do
                ratios[$mode]+=" ${got[$mode]}/${got[direct]}"
                ratios[$mode-redis]+=" ${got[$mode]}/${got[redis]}"
            done
        fi
    done
    row="| $n | ${cells[engine]} | ${cells[direct]} | ${cells[redis]}"
    for c in engine direct; do
        # Each round runs the clients back to back, so its ratio is the fairest single
        # comparison on a machine whose speed drifts: the median of the rounds' ratios, and
        # their range.
        row+=$(python3 -c 'import statistics, sys
r = sorted(int(a) / max(int(b), 1) for a, b in (p.split("/") for p in sys.argv[1:]))
print(" | %.2f (%.2f-%.2f)" % (statistics.median(r), r[0], r[-1]))' ${ratios[$c]})
    done
    if [[ -n "$base_pid" ]]; then
        row+=$(python3 -c 'import statistics, sys
r = sorted(int(a) / max(int(b), 1) for a, b in (p.split("/") for p in sys.argv[1:]))
print(" | %.2f (%.2f-%.2f)" % (statistics.median(r), r[0], r[-1]))' ${ratios[base]})
        row+=" | ${cells[base]}"
    fi
    if [[ "${AUDIT:-0}" == 1 ]]; then
        audit_row="| $n | ${cells[direct]}"
        for mode in Synced Written; do
            audit_row+=" | ${cells[$mode]}"
            for r in "$mode" "$mode-redis"; do
                audit_row+=$(python3 -c 'import statistics, sys
r = sorted(int(a) / max(int(b), 1) for a, b in (p.split("/") for p in sys.argv[1:]))
print(" | %.2f (%.2f-%.2f)" % (statistics.median(r), r[0], r[-1]))' ${ratios[$r]})
            done
        done
        audit_rows+=("$audit_row |")
    fi
    rows+=("$row |")
    cpu_rows+=("| $n | ${cpu[engine]} | ${cpu[direct]} | ${cpu[redis]} |")
    # What a request cost each server, over all rounds: the comparison that does not depend
    # on which side was the limit.
    us_row="| $n"
    for c in engine direct base Synced Written redis; do
        [[ -n "${server_us[$c]:-}" ]] || continue
        us_row+=$(python3 -c 'import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print(" | %.1f (%.1f-%.1f)" % (statistics.median(v), v[0], v[-1]))' ${server_us[$c]})
    done
    us_rows+=("$us_row |")
    unset best cells cpu ratios got server_us
done

echo
echo "Best round of each (req/s, p50 ms, p99 ms, errors); ratios to redis per round: median (range)."
echo
if [[ -n "$base_pid" ]]; then
    echo "| agents / connections | agent engine req/s | p50 | p99 | errors | lean client req/s | p50 | p99 | errors | redis GET req/s | p50 | p99 | errors | engine / redis | lean / redis | lean / base build | base build req/s | p50 | p99 | errors |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
else
    echo "| agents / connections | agent engine req/s | p50 | p99 | errors | lean client req/s | p50 | p99 | errors | redis GET req/s | p50 | p99 | errors | engine / redis | lean / redis |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
fi
for row in "${rows[@]}"; do
    echo "$row"
done

echo
echo "CPU of each process in those best rounds (server % of its core, server µs per request,"
echo "client % of its core, client µs per request); a process near 100 % was that run's limit:"
echo
echo "| agents | engine run: replica % | replica µs | loadgen % | loadgen µs | lean run: replica % | replica µs | client % | client µs | redis % | redis µs | client % | client µs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${cpu_rows[@]}"; do
    echo "$row"
done

echo
echo "Server CPU per request over all rounds, µs: median (range):"
echo
us_header="| agents | replica, engine run | replica, lean run"
us_rule="|---:|---:|---:"
if [[ -n "$base_pid" ]]; then us_header+=" | base build, lean run"; us_rule+="|---:"; fi
if [[ "${AUDIT:-0}" == 1 ]]; then us_header+=" | journal Synced, lean run | journal Written, lean run"; us_rule+="|---:|---:"; fi
echo "$us_header | redis |"
echo "$us_rule|---:|"
for row in "${us_rows[@]}"; do
    echo "$row"
done

if [[ "${AUDIT:-0}" == 1 ]]; then
    echo
    echo "The audit journal, lean client (best round: req/s | p50 ms | p99 ms | errors); ratios per"
    echo "round, median (range): journal on / journal off, and journal on / redis:"
    echo
    echo "| agents | journal off req/s | p50 | p99 | errors | Synced req/s | p50 | p99 | errors | Synced / off | Synced / redis | Written req/s | p50 | p99 | errors | Written / off | Written / redis |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for row in "${audit_rows[@]}"; do
        echo "$row"
    done
fi
