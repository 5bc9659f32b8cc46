#!/usr/bin/env bash
# Quick start: install what croft needs, build it, run croftd on its
# built-in defaults (state in /var/lib/croft, SQLite, API socket
# /run/croft/croftd.sock) and launch a first VPS named "demo".
#
#   scripts/quickstart.sh           set up and run
#   scripts/quickstart.sh --down    delete the demo VPS and stop croftd
#   scripts/quickstart.sh --purge   also unmount the storage pool, remove the
#                                   bridge and croft's nftables tables and every
#                                   croft file (refused while VPSes run)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (croftd manages namespaces and cgroups)" >&2; exit 1; }
BIN=target/release
export PATH="$PWD/$BIN:$PATH"
PIDFILE=/run/croft/croftd.pid
UNIT=/etc/systemd/system/croftd.service
# Where systemd is PID 1 croftd runs as its service (packaging/croftd.service);
# elsewhere (a container, a chroot) it is started in the background.
with_systemd() { [ -d /run/systemd/system ]; }

if [ "${1:-}" = "--down" ] || [ "${1:-}" = "--purge" ]; then
  croft delete --force demo 2>/dev/null || true
  if [ "${1:-}" = "--purge" ] && [ -n "$(croft list --format json 2>/dev/null | grep '"name"' || true)" ]; then
    echo "quickstart: VPSes still exist (croft list); delete them before --purge" >&2
    exit 1
  fi
  if with_systemd && [ -f "$UNIT" ]; then
    systemctl stop croftd.service || true
  fi
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$PIDFILE"
  fi
  if [ "${1:-}" = "--down" ]; then
    echo "croftd stopped (other VPSes keep running under their supervisors; state stays in /var/lib/croft)"
    exit 0
  fi
  if [ -f "$UNIT" ]; then
    with_systemd && systemctl disable croftd.service 2>/dev/null || true
    rm -f "$UNIT"
    with_systemd && systemctl daemon-reload || true
  fi
  if mountpoint -q /var/lib/croft/storage-pools/default; then umount /var/lib/croft/storage-pools/default; fi
  # The lxcfs croftd started for honest /proc files inside VPSes.
  if [ -r /run/croft/lxcfs.pid ]; then kill "$(cat /run/croft/lxcfs.pid)" 2>/dev/null || true; fi
  if mountpoint -q /run/croft/lxcfs; then umount -l /run/croft/lxcfs; fi
  # The network croftd set up: its bridge and its own nftables tables.
  ip link del croftbr0 2>/dev/null || true
  nft delete table inet croft 2>/dev/null || true
  nft delete table bridge croft 2>/dev/null || true
  rm -rf /var/lib/croft /run/croft /var/log/croft /etc/croft
  rm -f /usr/local/bin/croftd /usr/local/bin/croft /usr/local/bin/croft-supervisor
  echo "croft removed: storage pool unmounted, state and binaries deleted"
  exit 0
fi

scripts/deps.sh
cargo build --release --workspace
# croftd's configuration, made once: the API and the web panel on port 8443
# (TLS 1.3, a self-signed certificate made at the first start).
if [ ! -f /etc/croft/croftd.toml ]; then
  mkdir -p /etc/croft
  cat > /etc/croft/croftd.toml <<'TOML'
# croftd's configuration: every setting has a default (see the README).
# The REST API for remote callers and the web panel (/ui/), over TLS 1.3.
https_address = "[::]:8443"
TOML
fi
install -m 0755 "$BIN/croftd" "$BIN/croft" "$BIN/croft-supervisor" /usr/local/bin/

if with_systemd; then
  install -m 0644 packaging/croftd.service "$UNIT"
  systemctl daemon-reload
  systemctl enable croftd.service
  # A newly built croftd replaces the running one; VPSes keep running.
  systemctl restart croftd.service
  log="journalctl -u croftd"
else
  # A newly built croftd (and its configuration) replaces the running one,
  # as systemctl restart does; VPSes keep running.
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    pid=$(cat "$PIDFILE")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  # (A croftd the quick start did not start is left alone.)
  if ! croft list >/dev/null 2>&1; then
    mkdir -p /run/croft /var/log/croft
    nohup /usr/local/bin/croftd >>/var/log/croft/croftd.log 2>&1 &
    echo $! > "$PIDFILE"
  fi
  log=/var/log/croft/croftd.log
fi
for _ in $(seq 100); do croft list >/dev/null 2>&1 && break; sleep 0.1; done
croft list >/dev/null || { echo "croftd did not start; see ${log:-/var/log/croft/croftd.log}" >&2; exit 1; }
# The first launch builds the Debian image with debootstrap (a minute or
# two); later launches snapshot it in well under a second.
croft info demo >/dev/null 2>&1 || croft launch debian/bookworm demo --memory 1GiB --cpu 1 --processes 500 --disk 4GiB
for _ in $(seq 100); do
  [ "$(croft exec demo -- systemctl is-system-running 2>/dev/null)" = running ] && break
  sleep 0.1
done
croft list
croft exec demo -- sh -c 'echo "hello from $(hostname): $(. /etc/os-release; echo $PRETTY_NAME), PID 1 is $(cat /proc/1/comm), systemd is $(systemctl is-system-running), eth0 is $(ip -br -4 addr show eth0 | tr -s " " | cut -d" " -f3)"'
echo
address=$(croft server info 2>/dev/null | awk '/^HTTPS address:/ { print $3 }' || true)
port=${address##*:}
if [ -n "$address" ] && [ "$address" != - ] && [ -r /var/lib/croft/panel-admin-password ]; then
  # The host's first IPv4 address, else localhost.
  host=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9.]+$' || true)
  echo "Web panel: https://${host:-localhost}:${port}/ui/  (also https://localhost:${port}/ui/; a self-signed certificate: $(croft server info | awk '/^Fingerprint:/ { print $2 }'))"
  echo "Log in as: admin   first password: $(cat /var/lib/croft/panel-admin-password)   (kept in /var/lib/croft/panel-admin-password; croft user passwd admin sets another)"
fi
echo "Try: croft exec -t demo -- bash     croft console demo (Ctrl+a q detaches)     croft --help"
