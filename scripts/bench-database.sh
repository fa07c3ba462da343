#!/usr/bin/env bash
# bench-database.sh: how Gatehouse's costs grow with the size of the security database
# (docs/BENCHMARKS.md, "Database scale"). For each size N (default 1k, 10k, 100k, 1M users,
# with N hosts and 2N routes, every user with a Unix identity; `gatehouse-benchdb generate`),
# on one machine, real release binaries on 127.0.0.1:
#
#   - import: `gatehouse-admin import` of the generated file into an empty master (wall time);
#   - master start-up (restart on the imported store, until it answers `status`) and RSS;
#   - a fresh follower (two at once, empty stores) from start to caught up, and the snapshot
#     install time the follower logs;
#   - replica start-up on its store (until it listens) and RSS, per user plus route;
#   - single changes (`user add`, one at a time at RATE/s): acknowledgement p50/p99 (fsync
#     included) and acknowledgement -> visible on both followers (probe replies) p50/p99;
#   - authorize throughput at CONNS connections against one follower (pinned to CPU 0, the
#     lean client on CPU 1), alternating with redis-server GET at the same connection count,
#     ROUNDS times (medians, and their ratio).
#
# Writes the figures as JSON ($OUT_JSON, default bench-database.json in the work directory)
# and prints Markdown tables, each figure with its growth from the smallest to the largest
# size named (constant, sublinear, linear, superlinear: the exponent k of size^k).
#
# Knobs (environment): SIZES ("1000 10000 100000 1000000"), CHANGES (200), RATE (20 per s),
# CONNS (500), DURATION (5 s per throughput run), ROUNDS (3), OUT_JSON, KEEP=1 (keep $WORK).
# Needs redis-server (apt-get install -y redis-server) and python3; about 10 GiB of memory
# and 20 minutes at 1M users. Every process it starts is stopped by pid on exit.
set -euo pipefail

SIZES=${SIZES:-"1000 10000 100000 1000000"}
CHANGES=${CHANGES:-200}
RATE=${RATE:-20}
CONNS=${CONNS:-500}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=0
CLIENT_CPU=1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/gh-dbscale.XXXXXX)
OUT_JSON=${OUT_JSON:-$WORK/bench-database.json}
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "# kept $WORK" >&2; fi
}
trap cleanup EXIT

log() { echo "# $*" >&2; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
forget_pid() { local p=$1 keep=(); for x in "${PIDS[@]}"; do [[ $x != "$p" ]] && keep+=("$x"); done; PIDS=("${keep[@]}"); }
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; forget_pid "$1"; }

# Waits (bounded: $3 seconds) until file $1 has a line starting with $2; prints the rest.
wait_line() {
    local file=$1 prefix=$2 limit=$3 start
    start=$(date +%s)
    while (($(date +%s) - start < limit)); do
        if line=$(grep -m1 "^$prefix" "$file" 2>/dev/null); then echo "${line#"$prefix"}"; return 0; fi
        sleep 0.01
    done
    log "no '$prefix' in $file within $limit s"; cat "${file%.out}.log" >&2 || true; return 1
}

# Waits (bounded) until replica status file $1 shows applied >= $2.
wait_applied() {
    local file=$1 head=$2 limit=$3 start
    start=$(date +%s)
    while (($(date +%s) - start < limit)); do
        applied=$(sed -n 's/.*applied: *\([0-9]*\).*/\1/p' "$file" 2>/dev/null | head -n1 || true)
        if [[ -n "$applied" && "$applied" -ge "$head" ]]; then return 0; fi
        sleep 0.01
    done
    log "replica status $file never reached $head"; return 1
}

command -v redis-server >/dev/null || { log "redis-server is missing: apt-get install -y redis-server"; exit 1; }
log "building (release)"
(cd "$ROOT" && cargo build --release --locked -p gatehouse-master -p gatehouse-replica \
    -p gatehouse-agent -p gatehouse-tests -p gatehouse-loadgen --bin gatehouse-master --bin gatehouse-admin \
    --bin gatehouse-replica --bin gatehouse-loadgen --bin gatehouse-benchdb) >&2

"$BIN/gatehouse-loadgen" provision --agents "$CONNS" --out "$WORK/prov" >&2
admin() { "$BIN/gatehouse-admin" --socket "$D/admin.sock" "$@"; }
head_seq() { admin status | sed -n 's/^sequence: *\([0-9]*\).*/\1/p' | head -n1; }

start_master() {
    # --accept-writes: the bench restarts its own master (no replica was ever promoted), and
    # its first changes must not wait for the fresh followers to confirm the epoch.
    "$BIN/gatehouse-master" --config "$D/master.ron" --accept-writes >"$D/master.out" 2>"$D/master.log" &
    MASTER=$!
    PIDS+=("$MASTER")
}

start_replica() { # name, cpu list
    local name=$1 cpus=$2
    : >"$D/$name.out"
    (cd "$D/$name" && exec taskset -c "$cpus" "$BIN/gatehouse-replica" --config replica.ron \
        >"$D/$name.out" 2>"$D/$name.log") &
    PIDS+=($!)
    eval "${name^^}=$!"
}

results=()
for N in $SIZES; do
    D=$WORK/n$N
    mkdir -p "$D"
    log "== $N users: generating"
    "$BIN/gatehouse-benchdb" generate --users "$N" --base "$WORK/prov/db.ron" --out "$D/fleet.ron" >&2
    fleet_bytes=$(stat -c %s "$D/fleet.ron")
    cat >"$D/master.ron" <<EOF
(listen: "127.0.0.1:0", database: "$D/master.sqlite", admin_socket: "$D/admin.sock",
 replication_listen: Some("127.0.0.1:0"), master_key: "$D/master.key", log_level: "warn",
 bridge: (workers: 1))
EOF
    start_master
    wait_line "$D/master.out" "listening on " 60 >/dev/null
    log "importing $fleet_bytes bytes"
    t0=$(now)
    admin import "$D/fleet.ron" >/dev/null 2>"$D/import.err"
    import_s=$(since "$t0")
    log "import: $import_s s"
    for r in r1 r2; do
        admin host add "$r" --key-file "$D/$r.key" >/dev/null
    done
    printf 'replica add r1\nreplica add r2\n' >"$D/replicas.batch"
    admin batch "$D/replicas.batch" >/dev/null
    master_rss_import=$(rss_kib "$MASTER")

    stop "$MASTER"
    : >"$D/master.out"
    t0=$(now)
    start_master
    repl_addr=$(wait_line "$D/master.out" "replication on " 600)
    master_pub=$(wait_line "$D/master.out" "master key " 600)
    wait_line "$D/master.out" "listening on " 600 >/dev/null
    admin status >/dev/null
    master_start_s=$(since "$t0")
    master_rss_start=$(rss_kib "$MASTER")
    head=$(head_seq)
    log "master restart: $master_start_s s, RSS $master_rss_start KiB, head $head"

    for r in r1 r2; do
        mkdir -p "$D/$r"
        cat >"$D/$r/replica.ron" <<EOF
(listen: "127.0.0.1:0", log_level: "info",
 replication: (masters: [(address: "$repl_addr", key: "$master_pub")], host: "$r",
   node_key_file: "$D/$r.key", store: "$D/$r/replica.sqlite", status_file: "$D/$r/status.ron"),
 bridge: ())
EOF
    done
    t0=$(now)
    start_replica r1 "$SERVER_CPU"
    start_replica r2 "$CLIENT_CPU"
    wait_applied "$D/r1/status.ron" "$head" 1800
    wait_applied "$D/r2/status.ron" "$head" 1800
    follower_s=$(since "$t0")
    install_s=$(sed -n 's/.*installed the snapshot at sequence [0-9]* ([0-9]* users) in \(.*\)$/\1/p' "$D/r1.log" | head -n1)
    replica_rss_caught_up=$(rss_kib "$R1")
    log "fresh followers caught up: $follower_s s (install $install_s)"

    r1_addr=$(wait_line "$D/r1.out" "listening on " 60)
    r2_addr=$(wait_line "$D/r2.out" "listening on " 60)
    lag_json=$("$BIN/gatehouse-benchdb" lag --socket "$D/admin.sock" --replicas "$r1_addr,$r2_addr" \
        --identities "$WORK/prov/identities.ron" --changes "$CHANGES" --rate "$RATE")
    log "lag: $lag_json"
    master_rss_changes=$(rss_kib "$MASTER")

    stop "$R1"
    : >"$D/r1.out"
    t0=$(now)
    start_replica r1 "$SERVER_CPU"
    r1_addr=$(wait_line "$D/r1.out" "listening on " 600)
    replica_start_s=$(since "$t0")
    head=$(head_seq)
    wait_applied "$D/r1/status.ron" "$head" 600
    sleep 1
    replica_rss_start=$(rss_kib "$R1")
    log "replica restart: $replica_start_s s, RSS $replica_rss_start KiB"

    redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    taskset -c "$SERVER_CPU" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no --maxclients 10000 >"$D/redis.log" 2>&1 &
    REDIS=$!
    PIDS+=("$REDIS")
    wait_line "$D/redis.log" ".*Ready to accept connections" 30 >/dev/null || true
    gh=() rd=()
    for ((round = 1; round <= ROUNDS; round++)); do
        "$BIN/gatehouse-loadgen" direct --server "$r1_addr" --identities "$WORK/prov/identities.ron" \
            --agents "$CONNS" --duration "$DURATION" --pin-cpu "$CLIENT_CPU" --json "$D/gh$round.json" >/dev/null 2>&1
        "$BIN/gatehouse-loadgen" redis --addr "127.0.0.1:$redis_port" --connections "$CONNS" \
            --duration "$DURATION" --pin-cpu "$CLIENT_CPU" --json "$D/redis$round.json" >/dev/null 2>&1
        gh+=("$D/gh$round.json") rd+=("$D/redis$round.json")
    done
    stop "$REDIS"
    log "throughput rounds done"

    python3 - "$N" "$fleet_bytes" "$import_s" "$master_start_s" "$master_rss_import" \
        "$master_rss_start" "$master_rss_changes" "$follower_s" "$install_s" \
        "$replica_rss_caught_up" "$replica_start_s" "$replica_rss_start" "$lag_json" \
        "${gh[*]}" "${rd[*]}" >"$D/result.json" <<'PY'
import json, re, statistics, sys
a = sys.argv[1:]
n = int(a[0])
def duration(text):
    m = re.match(r"([0-9.]+)(ms|µs|s)", text or "")
    if not m: return None
    return float(m.group(1)) * {"s": 1, "ms": 1e-3, "µs": 1e-6}[m.group(2)]
gh = [json.load(open(p))["throughput_rps"] for p in a[13].split()]
rd = [json.load(open(p))["throughput_rps"] for p in a[14].split()]
routes = 2 * n + 20
out = {
    "users": n, "hosts": n, "routes": routes, "fleet_ron_bytes": int(a[1]),
    "import_s": float(a[2]),
    "master_start_s": float(a[3]),
    "master_rss_kib_after_import": int(a[4]),
    "master_rss_kib_after_restart": int(a[5]),
    "master_rss_kib_after_changes": int(a[6]),
    "fresh_follower_caught_up_s": float(a[7]),
    "snapshot_install_s": duration(a[8]),
    "replica_rss_kib_caught_up": int(a[9]),
    "replica_start_s": float(a[10]),
    "replica_rss_kib_after_restart": int(a[11]),
    "replica_rss_bytes_per_user_plus_route": int(a[11]) * 1024 / (n + routes),
    "lag": json.loads(a[12]),
    "authorize_rps": statistics.median(gh),
    "redis_rps": statistics.median(rd),
    "authorize_over_redis": statistics.median([g / r for g, r in zip(gh, rd)]),
}
print(json.dumps(out))
PY
    results+=("$D/result.json")
    stop "$R1"; stop "$R2"; stop "$MASTER"
    rm -f "$D/fleet.ron" "$D"/*.sqlite* "$D"/r?/replica.sqlite*
done

python3 - "$OUT_JSON" "${results[@]}" <<'PY'
import json, math, sys, datetime, os
rows = [json.load(open(p)) for p in sys.argv[2:]]
doc = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(), "sizes": rows}
json.dump(doc, open(sys.argv[1], "w"), indent=1)
figures = [
    ("import (s)", lambda r: r["import_s"]),
    ("one change acknowledged, p50 (ms)", lambda r: r["lag"]["ack_p50_ms"]),
    ("one change acknowledged, p99 (ms)", lambda r: r["lag"]["ack_p99_ms"]),
    ("ack -> visible on both followers, p50 (ms)", lambda r: r["lag"]["visible_p50_ms"]),
    ("ack -> visible on both followers, p99 (ms)", lambda r: r["lag"]["visible_p99_ms"]),
    ("ack + visible, p99 (ms)", lambda r: r["lag"]["total_p99_ms"]),
    ("fresh follower, start -> caught up (s)", lambda r: r["fresh_follower_caught_up_s"]),
    ("snapshot install (s)", lambda r: r["snapshot_install_s"]),
    ("master start-up (s)", lambda r: r["master_start_s"]),
    ("master RSS after restart (MiB)", lambda r: r["master_rss_kib_after_restart"] / 1024),
    ("master RSS after the changes (MiB)", lambda r: r["master_rss_kib_after_changes"] / 1024),
    ("replica start-up (s)", lambda r: r["replica_start_s"]),
    ("replica RSS after restart (MiB)", lambda r: r["replica_rss_kib_after_restart"] / 1024),
    ("replica RSS per user + route (B)", lambda r: r["replica_rss_bytes_per_user_plus_route"]),
    ("authorize, 500 conns (req/s)", lambda r: r["authorize_rps"]),
    ("redis GET, same run (req/s)", lambda r: r["redis_rps"]),
    ("authorize / redis", lambda r: r["authorize_over_redis"]),
]
def growth(values, sizes):
    pts = [(s, v) for s, v in zip(sizes, values) if v is not None and v > 0]
    if len(pts) < 2: return "-"
    (s0, v0), (s1, v1) = pts[0], pts[-1]
    k = math.log(v1 / v0) / math.log(s1 / s0)
    name = "constant" if abs(k) < 0.15 else "sublinear" if k < 0.7 else "linear" if k < 1.3 else "superlinear"
    return f"{name} (k = {k:.2f})"
sizes = [r["users"] for r in rows]
print(f"| figure | " + " | ".join(f"{s:,}" for s in sizes) + " | growth |")
print("|---|" + "---:|" * len(sizes) + "---|")
def fmt(v):
    if v is None: return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
for name, get in figures:
    vals = [get(r) for r in rows]
    print(f"| {name} | " + " | ".join(fmt(v) for v in vals) + f" | {growth(vals, sizes)} |")
PY
log "JSON: $OUT_JSON"
