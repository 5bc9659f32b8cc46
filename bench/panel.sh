#!/usr/bin/env bash
# The panel and metrics at 500 VPSes (issue 17's numbers): the server time of
# the dashboard, a VPS page and a /metrics scrape, and croftd's CPU while
# idle with its sampler running every 10 s. croftd runs on the simulated
# backend (no root; nothing on the host changes), so the sampler's cost here
# is croftd's own work per sample (the store, the snapshot, rendering) and
# not the kernel's (cgroup and netlink reads of 500 real VPSes).
#
#   bash bench/panel.sh [VPSES]      (default 500; uses target/release if built)
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
REPO=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-500}
BIN=$REPO/target/release/croftd
[ -x "$BIN" ] || BIN=$REPO/target/debug/croftd
[ -x "$BIN" ] || { echo "panel.sh: build croftd first (cargo build --release -p croftd)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/croft-bench-panel-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cat >"$WORK/croftd.toml" <<EOT
state_dir = "$WORK/state"
run_dir = "$WORK/run"
https_address = "127.0.0.1:0"
log_level = "info"
metrics_interval = ${METRICS_INTERVAL:-10}
[network]
ipv4 = "10.96.0.1/20"
EOT
"$BIN" --simulate --config "$WORK/croftd.toml" >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "listening for remote callers" "$WORK/log" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'address=[0-9.:]*' "$WORK/log" | head -1 | cut -d= -f2)
[ -n "$ADDR" ] || { cat "$WORK/log"; exit 1; }
URL=https://$ADDR
SOCK=$WORK/run/croftd.sock
api() { curl -sS --fail-with-body --unix-socket "$SOCK" -X "$1" "http://croft$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
echo "panel.sh: $N VPSes on croftd --simulate ($BIN)" >&2
for i in $(seq 1 "$N"); do
  api POST /1.0/instances "{\"name\":\"v$i\",\"image\":\"busybox\"}" >"$WORK/answer" || { cat "$WORK/answer" >&2; exit 1; }
done
for _ in $(seq 300); do
  [ "$(api GET /1.0/instances | grep -o '"status":"running"' | wc -l)" -ge "$N" ] && break; sleep 0.2
done
# The admin's session, as a browser gets it.
curl -sk -c "$WORK/jar" -H "Origin: $URL" -d "name=admin&password=$(cat "$WORK/state/panel-admin-password")" "$URL/ui/login" -o /dev/null
# The dashboard with every card, not the login page: the session works.
cards=$(curl -sk -b "$WORK/jar" "$URL/ui/" | grep -o 'data-vps="' | wc -l)
[ "$cards" -ge "$N" ] || { echo "panel.sh: the admin's session shows $cards of $N cards" >&2; exit 1; }
sleep 11   # one sample taken
# The median of 20 requests' total time (loopback: server time and TLS).
median() { # PATH
  for _ in $(seq 20); do curl -sk -b "$WORK/jar" -o /dev/null -w '%{time_total}\n' "$URL$1"; done |
    sort -n | awk '{ t[NR] = $1 } END { printf "%.1f", t[int((NR + 1) / 2)] * 1000 }'
}
dash=$(median /ui/)
page=$(median /ui/instances/v1)
scrape=$(median /metrics)
lines=$(curl -sk -b "$WORK/jar" "$URL/metrics" | wc -l)
# croftd's CPU over 60 s idle: the sampler's six samples, the traffic
# sampler, and nothing else.
ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
before=$(ticks); sleep 60; after=$(ticks)
hz=$(getconf CLK_TCK)
cpu=$(awk -v d=$((after - before)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz / 60 * 100 }')
cat <<EOT
| what, with $N VPSes | measured | goal |
|---|---|---|
| dashboard (/ui/, $N cards) | $dash ms | < 100 ms |
| a VPS's page | $page ms | < 100 ms |
| a /metrics scrape ($lines lines) | $scrape ms | < 50 ms |
| croftd's CPU, idle, sampling every 10 s (simulated VPSes) | $cpu % of one CPU | < 1 % |
EOT
