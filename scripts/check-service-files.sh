#!/usr/bin/env bash
# Checks the service files in conf/: the systemd units with `systemd-analyze verify` (every
# key known, every path absolute, the binaries executable: the ones built in target/ stand in
# for /usr/bin) and the SMF manifests against the service_bundle schema subset with xmllint.
# A check whose tool is missing prints SKIPPED and passes; .ci/run installs both tools.
# Usage: scripts/check-service-files.sh [BIN_DIR]   (default: target/debug, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:-target/debug}
status=0

if command -v systemd-analyze >/dev/null 2>&1; then
    for b in gatehouse-master gatehouse-replica gatehouse-agent; do
        [ -x "$bin_dir/$b" ] || cargo build --quiet --bins --locked
    done
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for unit in conf/systemd/*.service; do
        sed "s#/usr/bin/gatehouse-#$(realpath "$bin_dir")/gatehouse-#" "$unit" >"$scratch/$(basename "$unit")"
    done
    # verify exits 0 on unknown keys (a warning): any output at all is a failure here.
    out=$(cd "$scratch" && systemd-analyze verify --man=no ./*.service 2>&1) || status=1
    if [ -n "$out" ]; then
        echo "$out" >&2
        status=1
    fi
    echo "systemd units: $( [ $status = 0 ] && echo OK || echo FAILED )"
else
    echo "SKIPPED: systemd-analyze is missing (apt-get install systemd) for conf/systemd"
fi

if command -v xmllint >/dev/null 2>&1; then
    if XML_CATALOG_FILES=conf/smf/catalog.xml xmllint --noout --valid conf/smf/gatehouse-*.xml; then
        echo "SMF manifests: OK"
    else
        echo "SMF manifests: FAILED" >&2
        status=1
    fi
else
    echo "SKIPPED: xmllint is missing (apt-get install libxml2-utils) for conf/smf"
fi
exit $status
