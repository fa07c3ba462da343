# Shared by the benchmark scripts (sourced, not run); the throughput one uses no namespace
# and keeps NS_MADE=0. The sourcing script sets NS, WORK, PIDS=() and NS_MADE=0 first, and may define
# `extra_cleanup` (run while the namespace still exists, e.g. to delete nft tables).
# On exit, for any reason: stop every process it started (SIGTERM, up to 7 s, then SIGKILL),
# delete the namespace, and remove WORK (KEEP=1 keeps it for a post-mortem).

stop_pids() {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for _ in $(seq 1 70); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

cleanup() {
    local status=$?
    set +e
    stop_pids "${PIDS[@]}"
    if [ "$NS_MADE" = 1 ]; then
        declare -F extra_cleanup >/dev/null && extra_cleanup
        ip netns del "$NS" 2>/dev/null
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
