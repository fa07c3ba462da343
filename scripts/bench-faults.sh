#!/usr/bin/env bash
# bench-faults.sh: faults injected into one server of a master + 3 replicas under open-loop
# load, one scenario at a time; per phase (before, during, after the fault) p50/p99/p99.9/max,
# errors and the faulty server's share. See docs/BENCHMARKS.md, section "Faults".
#
# The lab: a bridge in a namespace of its own, and five namespaces wired to it by veth pairs
# (all created inside the namespaces, nothing in the host's): the master (10.77.0.1), three
# replicas following it (10.77.0.2-4), and the load generator (10.77.0.10), which runs AGENTS
# agents (the real engine) at RATE requests/s in open loop. Each scenario starts a fresh
# deployment. Faults, on replica 1 unless said otherwise, from second BEFORE for FAULT seconds:
#   tcp-drop      nftables drops TCP to its port (probes still answered)
#   tcp-udp-drop  drops TCP and UDP to its port
#   partition     drops everything in and out of its interface (replication too)
#   sigstop       SIGSTOP of the master (in the agents' list), SIGCONT at the end
#   kill9         kill -9; restarted (same store) at the end: how soon it carries its share
#   delay200      +200 ms on every packet to it (a proxy: this kernel has no tc netem)
# Then the CLI check: the agent daemon with every server's TCP dropped (probes answered) must
# answer "no server accepts connections" within 2 s; and with 3 of 4 dropped, fresh
# connections (idle_close_ms 300) must not wait for the blocked ones.
#
# Knobs (environment): AGENTS (300), RATE (2000), BEFORE (10), FAULT (20), AFTER (20),
# THREADS (1), SCENARIOS (all, in the order above), CLI_CHECK (1), BIN (the binaries to
# measure: this tree's target/release, built first; another tree's to compare older code,
# not built here — it needs `gatehouse-loadgen run --phases`). Options: --json PATH.
# Needs root, ip, nft (installed with apt-get if missing), python3, jq. Prints a Markdown
# table on stdout. The EXIT trap stops every process it started and deletes the namespaces.
set -euo pipefail

AGENTS=${AGENTS:-300}
RATE=${RATE:-2000}
BEFORE=${BEFORE:-10}
FAULT=${FAULT:-20}
AFTER=${AFTER:-20}
THREADS=${THREADS:-1}
SCENARIOS=${SCENARIOS:-"tcp-drop tcp-udp-drop partition sigstop kill9 delay200"}
CLI_CHECK=${CLI_CHECK:-1}
JSON_OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --json) JSON_OUT=$2; shift 2 ;;
        *) echo "usage: $0 [--json PATH]" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=1
[ -n "${BIN:-}" ] && BUILD=0
BIN=${BIN:-$ROOT/target/release}
P=ghf$$
NS=$P-br
WORK=$(mktemp -d /tmp/gh-faults.XXXXXX)
PIDS=()
NS_MADE=0
NAMES=(m r1 r2 r3 a)
ADDRS=(10.77.0.1 10.77.0.2 10.77.0.3 10.77.0.4 10.77.0.10)
PORT=7701
REPL_PORT=7710

extra_cleanup() { local n; for n in "${NAMES[@]}"; do ip netns del "$P-$n" 2>/dev/null; done; }
source "$ROOT/scripts/lib/netns-cleanup.sh"

log() { echo "# $*" >&2; }
ns_of() { echo "$P-$1"; }
addr_of() { local i; for i in "${!NAMES[@]}"; do if [ "${NAMES[$i]}" = "$1" ]; then echo "${ADDRS[$i]}"; fi; done; }

for tool in ip nft; do
    command -v $tool >/dev/null || { log "installing $tool"; apt-get install -y -qq iproute2 nftables >/dev/null; }
done
command -v jq >/dev/null || { log "jq is needed"; exit 1; }

if [ "$BUILD" = 1 ]; then
    log "building (release)"
    (cd "$ROOT" && cargo build --release --locked -p gatehouse-replica -p gatehouse-master \
        -p gatehouse-agent -p gatehouse-loadgen --bins) >&2
fi

# The lab: bridge namespace, five hosts wired to it.
ip netns add "$NS"
NS_MADE=1
ip -n "$NS" link add br0 type bridge
ip -n "$NS" link set br0 up
for i in "${!NAMES[@]}"; do
    n=${NAMES[$i]}
    ip netns add "$(ns_of "$n")"
    ip -n "$(ns_of "$n")" link set lo up
    ip -n "$(ns_of "$n")" link add eth0 type veth peer name "v$n" netns "$NS"
    ip -n "$(ns_of "$n")" addr add "${ADDRS[$i]}/24" dev eth0
    ip -n "$(ns_of "$n")" link set eth0 up
    ip -n "$NS" link set "v$n" master br0
    ip -n "$NS" link set "v$n" up
done

"$BIN/gatehouse-loadgen" provision --agents $((AGENTS + 1)) --out "$WORK" >&2
SERVERS="$(addr_of m):$PORT,$(addr_of r1):$PORT,$(addr_of r2):$PORT,$(addr_of r3):$PORT"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(cd "$BIN" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

# --- deployment -------------------------------------------------------------------------
SERVER_PID=()   # by name: m r1 r2 r3 (index in NAMES)
wait_line() { # file pattern seconds
    local i
    for i in $(seq 1 $(($3 * 20))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    log "timed out waiting for '$2' in $1"; cat "${1%.out}.log" >&2 2>/dev/null || true; return 1
}
start_master() {
    cat >"$WORK/master.ron" <<EOF
(listen: "$(addr_of m):$PORT", database: "master.sqlite", admin_socket: "admin.sock",
 replication_listen: Some("$(addr_of m):$REPL_PORT"), bridge: (drain_timeout_ms: 1000))
EOF
    : >"$WORK/m.out"
    (cd "$WORK" && exec ip netns exec "$(ns_of m)" "$BIN/gatehouse-master" --config master.ron \
        >"$WORK/m.out" 2>"$WORK/m.log") &
    PIDS+=($!); SERVER_PID[0]=$!
    wait_line "$WORK/m.out" '^listening on' 20
}
# start_replica N [LISTEN_PORT]: replica rN following the master.
start_replica() {
    local n=$1 port=${2:-$PORT} i=$1
    cat >"$WORK/r$n.ron" <<EOF
(listen: "$(addr_of "r$n"):$port", replication: (masters: ["$(addr_of m):$REPL_PORT"],
 host: "replica$n", node_key_file: "replica$n.key", store: "r$n.sqlite",
 status_file: "r$n-status.ron"), bridge: (drain_timeout_ms: 1000))
EOF
    : >"$WORK/r$n.out"
    (cd "$WORK" && exec ip netns exec "$(ns_of "r$n")" "$BIN/gatehouse-replica" --config "r$n.ron" \
        >"$WORK/r$n.out" 2>>"$WORK/r$n.log") &
    PIDS+=($!); SERVER_PID[$i]=$!
    wait_line "$WORK/r$n.out" '^listening on' 20
}
admin() { "$BIN/gatehouse-admin" --socket "$WORK/admin.sock" "$@" >/dev/null; }
deploy() { # [replica-1-port]
    rm -f "$WORK"/master.sqlite* "$WORK"/r?.sqlite* "$WORK"/replica?.key "$WORK"/r?-status.ron "$WORK"/*.log
    start_master
    admin import "$WORK/db.ron"
    local n
    for n in 1 2 3; do admin host add "replica$n" --key-file "$WORK/replica$n.key"; done
    for n in 1 2 3; do admin replica add "replica$n"; done
    start_replica 1 "${1:-$PORT}"
    start_replica 2
    start_replica 3
    for n in 1 2 3; do wait_line "$WORK/r$n-status.ron" 'state: Established' 20; done
}
undeploy() { stop_pids "${PIDS[@]}"; PIDS=(); SERVER_PID=(); }

# --- faults -----------------------------------------------------------------------------
nft_in() { ip netns exec "$(ns_of "$1")" nft "${@:2}"; }
fault_table() { # ns: an empty filter table with input and output chains
    nft_in "$1" add table inet gh_fault
    nft_in "$1" 'add chain inet gh_fault input { type filter hook input priority 0; policy accept; }'
    nft_in "$1" 'add chain inet gh_fault output { type filter hook output priority 0; policy accept; }'
}
fault_start() {
    case $1 in
        tcp-drop) fault_table r1; nft_in r1 add rule inet gh_fault input tcp dport $PORT drop ;;
        tcp-udp-drop) fault_table r1
            nft_in r1 add rule inet gh_fault input tcp dport $PORT drop
            nft_in r1 add rule inet gh_fault input udp dport $PORT drop ;;
        partition) fault_table r1
            nft_in r1 add rule inet gh_fault input iifname eth0 drop
            nft_in r1 add rule inet gh_fault output oifname eth0 drop ;;
        sigstop) kill -STOP "${SERVER_PID[0]}" ;;
        kill9) kill -KILL "${SERVER_PID[1]}" ;;
        delay200) echo 200 >"$WORK/delay" ;;
    esac
}
fault_end() {
    case $1 in
        tcp-drop|tcp-udp-drop|partition) nft_in r1 delete table inet gh_fault ;;
        sigstop) kill -CONT "${SERVER_PID[0]}" ;;
        kill9) start_replica 1 ;;
        delay200) echo 0 >"$WORK/delay" ;;
    esac
}
target_of() { case $1 in sigstop) echo 0 ;; *) echo 1 ;; esac; }

# Seconds (3 decimals) from now until replica 1's status file says Established again.
replication_resume() {
    local t0 i
    t0=$(date +%s.%N)
    for i in $(seq 1 400); do
        if grep -q 'state: Established' "$WORK/r1-status.ron" 2>/dev/null \
            && ! grep -q 'last_heard_ms: Some([0-9]\{4,\})' "$WORK/r1-status.ron"; then
            awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; return
        fi
        sleep 0.025
    done
    echo "null"
}

run_scenario() {
    local sc=$1 total=$((BEFORE + FAULT + AFTER)) proxy_pid=""
    log "scenario $sc: $AGENTS agents, $RATE req/s, fault from ${BEFORE}s for ${FAULT}s"
    if [ "$sc" = delay200 ]; then
        echo 0 >"$WORK/delay"
        deploy 7801
        : >"$WORK/proxy.out"
        (exec ip netns exec "$(ns_of r1)" python3 "$ROOT/scripts/lib/delay-proxy.py" \
            "$(addr_of r1):$PORT" "$(addr_of r1):7801" "$WORK/delay" >"$WORK/proxy.out" 2>&1) &
        proxy_pid=$!; PIDS+=($proxy_pid)
        wait_line "$WORK/proxy.out" '^listening on' 10
    else
        deploy
    fi
    (exec ip netns exec "$(ns_of a)" "$BIN/gatehouse-loadgen" run --servers "$SERVERS" \
        --identities "$WORK/identities.ron" --agents "$AGENTS" --threads "$THREADS" \
        --mode open --rate "$RATE" --duration "$total" --phases "$BEFORE,$((BEFORE + FAULT))" \
        --seed 1 --json "$WORK/$sc.json" >"$WORK/$sc.out" 2>&1) &
    local lg=$!
    PIDS+=($lg)
    wait_line "$WORK/$sc.out" "^\[ *${BEFORE}s\]" $((BEFORE + 30))
    fault_start "$sc"
    wait_line "$WORK/$sc.out" "^\[ *$((BEFORE + FAULT))s\]" $((FAULT + 30))
    fault_end "$sc"
    local resume=null
    [ "$sc" = partition ] && resume=$(replication_resume)
    wait "$lg" || { log "loadgen failed"; cat "$WORK/$sc.out" >&2; exit 1; }
    undeploy
    jq --arg sc "$sc" --argjson target "$(target_of "$sc")" --argjson resume "$resume" \
        --argjson at $((BEFORE + FAULT)) '{scenario: $sc, target: $target,
        replication_resume_s: $resume, requests, errors, errors_by_kind,
        phases: [.phases[] | {from_s, to_s, requests, errors, errors_by_kind,
            latency_us, target_share_percent: .servers[$target].share_percent,
            shares: [.servers[].share_percent]}],
        target_share_by_second_after: [.seconds[] | select(.second > $at)
            | .share_percent[$target]]}' "$WORK/$sc.json" >"$WORK/$sc.result.json"
}

# --- the CLI check ----------------------------------------------------------------------
cli_check() {
    log "CLI check: agent daemon in the load namespace"
    deploy
    local host key
    # The last identity: provisioned one beyond the load generator's agents.
    host=$(grep -oE 'host: *"[^"]+"' "$WORK/identities.ron" | tail -1 | cut -d'"' -f2)
    key=$(grep -oE 'key: *"[0-9a-f]{64}"' "$WORK/identities.ron" | tail -1 | cut -d'"' -f2)
    echo "$key" >"$WORK/agent.key"; chmod 600 "$WORK/agent.key"
    cat >"$WORK/agent.ron" <<EOF
(host: "$host", node_key_file: "agent.key", servers: ["${SERVERS//,/\", \"}"],
 socket_path: "agent.sock", idle_close_ms: 300)
EOF
    : >"$WORK/agentd.out"
    (exec ip netns exec "$(ns_of a)" "$BIN/gatehouse-agent" run --config "$WORK/agent.ron" \
        >"$WORK/agentd.out" 2>"$WORK/agentd.log") &
    PIDS+=($!)
    wait_line "$WORK/agentd.out" '^listening on' 10
    cli() { # prints "seconds exit-status message"
        local t0 t1 rc=0 msg
        t0=$(date +%s.%N)
        msg=$(ip netns exec "$(ns_of a)" "$BIN/gatehouse-agent" --socket "$WORK/agent.sock" \
            authorize SSH 10.0.0.1 alice alice web1 2>&1) || rc=$?
        t1=$(date +%s.%N)
        echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $rc $msg"
    }
    CLI_OK=$(cli)
    local n
    for n in r1 r2 r3; do fault_table "$n"; nft_in "$n" add rule inet gh_fault input tcp dport $PORT drop; done
    CLI_THREE=()
    for _ in 1 2 3 4 5 6; do sleep 0.5; CLI_THREE+=("$(cli | cut -d' ' -f1)"); done
    fault_table m; nft_in m add rule inet gh_fault input tcp dport $PORT drop
    sleep 0.5
    CLI_ALL=$(cli)
    CLI_ALL2=$(cli)
    undeploy
}

for sc in $SCENARIOS; do run_scenario "$sc"; done
[ "$CLI_CHECK" = 1 ] && cli_check

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
MACHINE="Date: $DATE. Commit: $COMMIT. nproc: $(nproc). Load average (1/5/15 min) at the start: $LOAD_START; at the end: $LOAD_END."
jq -s --arg machine "$MACHINE" --arg agents "$AGENTS" --arg rate "$RATE" \
    --arg cli_ok "${CLI_OK:-}" --arg cli_all "${CLI_ALL:-}" --arg cli_all2 "${CLI_ALL2:-}" \
    --arg cli_three "${CLI_THREE[*]:-}" \
    '{machine: $machine, agents: ($agents | tonumber), rate: ($rate | tonumber),
      scenarios: ., cli: {healthy: $cli_ok, all_tcp_dropped: [$cli_all, $cli_all2],
      three_of_four_dropped_s: ($cli_three | split(" ") | map(select(. != "") | tonumber))}}' \
    "$WORK"/*.result.json >"$WORK/all.json"
[ -n "$JSON_OUT" ] && cp "$WORK/all.json" "$JSON_OUT"

echo
echo "### Faults: master + 3 replicas, $AGENTS agents, open loop $RATE req/s; fault at ${BEFORE} s for ${FAULT} s"
echo
echo "$MACHINE"
echo
echo "| fault | phase | requests | p50 | p99 | p99.9 | max | errors | faulty server's share |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
jq -r '.scenarios[] | .scenario as $sc | .phases | to_entries[] |
    def ms: . / 1000 | . * 10 | round / 10 | tostring + " ms";
    "| \($sc) | \(["before", "during", "after"][.key]) (\(.value.from_s)-\(.value.to_s) s) | \(.value.requests) | \(.value.latency_us.p50 | ms) | \(.value.latency_us.p99 | ms) | \(.value.latency_us.p999 | ms) | \(.value.latency_us.max | ms) | \(.value.errors) | \(.value.target_share_percent | . * 10 | round / 10) % |"' "$WORK/all.json"
echo
jq -r '.scenarios[] | select(.replication_resume_s != null) | "Replication of the partitioned replica resumed \(.replication_resume_s) s after the heal."' "$WORK/all.json"
jq -r '.scenarios[] | select(.scenario == "kill9") | "Restarted replica, share per second after the restart (%): \(.target_share_by_second_after | map(. * 10 | round / 10) | join(", "))"' "$WORK/all.json"
if [ "$CLI_CHECK" = 1 ]; then
    echo
    echo "CLI (seconds, exit status, output): healthy: \`$CLI_OK\`; every server's TCP dropped: \`$CLI_ALL\`, again: \`$CLI_ALL2\`; 3 of 4 dropped, fresh connections: ${CLI_THREE[*]} s."
fi
