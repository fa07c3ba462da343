#!/usr/bin/env bash
# Installs the Debian packages (scripts/build-debs.sh) into a scratch root with
# `dpkg --root DIR --force-script-chrootless` (the maintainer scripts honour DPKG_ROOT, so the
# service user and the directories are made in DIR alone), runs each daemon's --check from its
# installed path and config in a private mount namespace chrooted into DIR (the host's
# libraries bind-mounted read-only, gone with the namespace), purges everything and checks
# that nothing of the packages is left. The machine itself is never touched.
# Needs root (unshare, chroot), dpkg-deb and systemd-sysusers; prints SKIPPED otherwise.
# Usage: scripts/check-debs.sh [BIN_DIR]   (default target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug}
for tool in dpkg dpkg-deb unshare chroot systemd-sysusers; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIPPED: $tool is missing (.ci/run installs it)"
        exit 0
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "SKIPPED: needs root (dpkg --root, unshare --mount, chroot)"
    exit 0
fi
scratch=$(mktemp -d /tmp/gatehouse-debs.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
root=$scratch/root
DEB_COMPRESS=none scripts/build-debs.sh "$bin" "$scratch/out" >/dev/null
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
before=$(cd "$root" && find . | sort)
host_before=$(cat /etc/passwd /etc/group | sha256sum)
dpkg_root() {
    # --force-depends: the scratch root has no libc6 package (the host's libc serves the
    # --check runs below).
    dpkg --root="$root" --log="$scratch/dpkg.log" --force-script-chrootless --force-depends \
        --force-not-root "$@"
}
fail() { echo "FAILED: $*" >&2; exit 1; }

echo "== install"
dpkg_root -i "$scratch"/out/*.deb >"$scratch/install.log" 2>&1 || { cat "$scratch/install.log" >&2; fail "dpkg -i"; }
for f in usr/bin/gatehouse-master usr/bin/gatehouse-admin usr/bin/gatehouse-replica \
    usr/bin/gatehouse-agent usr/bin/gatehouse-loadgen \
    usr/lib/systemd/system/gatehouse-master.service usr/lib/systemd/system/gatehouse-replica.service \
    usr/lib/systemd/system/gatehouse-agent.service usr/lib/sysusers.d/gatehouse-master.conf \
    etc/gatehouse/master.ron etc/gatehouse/replica.ron etc/gatehouse/agent.ron \
    usr/share/man/man8/gatehouse-admin.8.gz usr/share/man/man1/gatehouse-loadgen.1.gz \
    usr/share/bash-completion/completions/gatehouse-admin; do
    [ -e "$root/$f" ] || fail "$f not installed"
done
ls "$root"/usr/lib/*/security/pam_gatehouse.so "$root"/usr/lib/*/libnss_gatehouse.so.2 >/dev/null \
    || fail "the PAM and NSS modules are not installed"
uid=$(awk -F: '$1 == "gatehouse" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "gatehouse" { print $4 }' "$root/etc/passwd")
[ -n "$uid" ] || fail "no gatehouse user in the scratch root's /etc/passwd"
[ "$(stat -c '%u %a' "$root/var/lib/gatehouse")" = "$uid 700" ] || fail "/var/lib/gatehouse is not the service user's, 0700"
echo "installed: 4 packages, user gatehouse ($uid:$gid), /var/lib/gatehouse 0700"

echo "== --check from the installed paths (chroot in a private mount namespace)"
# What an admin adds after installing: the hosts' node keys; systemd's RuntimeDirectory.
key=$(printf '%064x' 7)
install -m 0600 -o "$uid" -g "$gid" /dev/null "$root/etc/gatehouse/replica1.key"
echo "$(printf '%s' "$key" | sed 's/7$/8/')" >"$root/etc/gatehouse/replica1.key"
install -m 0600 /dev/null "$root/etc/gatehouse/node.key"
echo "$(printf '%s' "$key" | sed 's/7$/9/')" >"$root/etc/gatehouse/node.key"
install -d -m 0755 -o "$uid" -g "$gid" "$root/run/gatehouse-replica"
mounts="usr/lib lib64 dev proc"
for m in $mounts; do mkdir -p "$root/$m"; done
# Merged /usr (Debian 12): /lib is a link to usr/lib, and the loader's path goes through it.
ln -s usr/lib "$root/lib"
unshare --mount --propagation private sh -euc '
    root=$1 uid=$2 gid=$3
    for m in usr/lib lib64 dev; do
        [ -d "/$m" ] && mount --bind -o ro "/$m" "$root/$m"
    done
    mount -t proc proc "$root/proc"
    chroot --userspec="$uid:$gid" "$root" /usr/bin/gatehouse-master --config /etc/gatehouse/master.ron --check
    chroot --userspec="$uid:$gid" "$root" /usr/bin/gatehouse-replica --config /etc/gatehouse/replica.ron --check
    chroot "$root" /usr/bin/gatehouse-agent run --config /etc/gatehouse/agent.ron --check
    chroot "$root" /usr/bin/gatehouse-admin --version
' check "$root" "$uid" "$gid" || fail "a --check from the installed paths"
rm -f "$root/lib"
for m in lib64 dev proc; do rmdir "$root/$m"; done
rm -f "$root/etc/gatehouse/replica1.key" "$root/etc/gatehouse/node.key"
rm -rf "$root/run"

echo "== purge"
dpkg_root --purge gatehouse-master gatehouse-replica gatehouse-agent gatehouse-loadgen \
    >"$scratch/purge.log" 2>&1 || { cat "$scratch/purge.log" >&2; fail "dpkg --purge"; }
after=$(cd "$root" && find . | sort)
# What may remain: dpkg's own database and the service user (Debian never removes system
# users on purge: files elsewhere may still carry its uid).
left=$(comm -13 <(echo "$before") <(echo "$after") \
    | grep -v -E '^\./var/lib/dpkg(/|$)|^\./etc/(passwd|group|shadow|gshadow)-?$|^\./etc/\.pwd\.lock$|^\./(usr|usr/lib|var|var/lib|etc)$' || true)
if [ -n "$left" ]; then
    echo "$left" >&2
    fail "the purge left the files above"
fi
[ "$(cat /etc/passwd /etc/group | sha256sum)" = "$host_before" ] || fail "this machine's users changed"
echo "debian packages: OK (installed, checked, purged; the machine untouched)"
