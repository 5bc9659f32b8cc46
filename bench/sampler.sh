#!/usr/bin/env bash
# What croftd's metrics sampler costs with N real VPSes (issue 17's goal:
# under 1 % of one CPU at 500). N busybox VPSes run with croft's usual
# network (a veth each on the bridge, addresses, nftables rules) in a
# croftd of their own; then croftd's CPU time (its own and its waited-for
# children's, such as `btrfs qgroup show`: utime + stime + cutime + cstime
# of /proc/PID/stat) is read over WINDOW idle seconds twice:
#   sampling   metrics_interval = INTERVAL (10, the default)
#   baseline   metrics_interval = 3600 (no sample in the window)
# croftd is restarted between the two (the VPSes keep running: croftd
# finds them again). The sampler's cost is the difference; one sample's
# cost is that times INTERVAL. The first WARMUP seconds after each start
# are not measured.
#
# Usage: bash bench/sampler.sh [--build] [N]     (default N=500; as root)
# Environment: WINDOW=120 INTERVAL=10 WARMUP=20 STORAGE_SIZE=20GiB BIN_DIR
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
REPO=$(cd "$(dirname "$0")/.." && pwd)
NAME=sampler.sh
TAG=croft-bench-sampler
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
if [ "${1:-}" = --build ]; then bench_init --build; shift; else bench_init; fi
N=${1:-500}
WINDOW=${WINDOW:-120}
INTERVAL=${INTERVAL:-10}
WARMUP=${WARMUP:-20}
D=d

pid_of_daemon() { local entry=${DAEMONS[0]}; echo "${entry#*:}"; }
# croftd's CPU seconds so far, its waited-for children's included.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"
}
# Restart croftd with metrics_interval = $1.
restart_with_interval() {
    local pid
    pid=$(pid_of_daemon)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    sed -i "s/^metrics_interval = .*/metrics_interval = $1/" "$WORK/$D/croftd.toml"
    nsenter --net=/run/netns/"$TAG-$D" "$BIN_DIR/croftd" --config "$WORK/$D/croftd.toml" >>"$WORK/$D/croftd.log" 2>&1 &
    DAEMONS=("$D:$!")
    # It finds its VPSes again before it answers: up to two minutes.
    for _ in $(seq 1200); do croft_in "$D" list >/dev/null 2>&1 && return; sleep 0.1; done
    die "croftd did not come back: $(tail -20 "$WORK/$D/croftd.log")"
}
# croftd's CPU % of one CPU over WINDOW seconds, after WARMUP.
measure() {
    local pid before after
    pid=$(pid_of_daemon)
    sleep "$WARMUP"
    before=$(cpu_seconds "$pid")
    sleep "$WINDOW"
    after=$(cpu_seconds "$pid")
    python3 -c "print(f'{($after - $before) / $WINDOW * 100:.3f}')"
}

start_daemon "$D" "storage_size = \"${STORAGE_SIZE:-20GiB}\"
metrics_interval = $INTERVAL
[network]
ipv4 = \"10.88.0.1/16\""
log "building the busybox image"
croft_in "$D" image build busybox >/dev/null
log "launching $N busybox VPSes"
t0=$EPOCHREALTIME
for i in $(seq 1 "$N"); do
    croft_in "$D" launch busybox "s$i" >/dev/null || die "launch s$i failed"
done
t1=$EPOCHREALTIME
running=$(croft_in "$D" list --format json | python3 -c 'import json,sys; print(sum(i["status"] == "running" for i in json.load(sys.stdin)))')
[ "$running" = "$N" ] || die "$running of $N VPSes run"
log "$N running ($(python3 -c "print(f'{$t1 - $t0:.0f}')") s to launch); sampling every $INTERVAL s"
# How many VPSes the last sample saw running.
seen() { curl -sS --unix-socket "$WORK/$D/run/croftd.sock" http://croft/metrics | grep -c '^croft_vps_running{.*} 1$' || true; }
restart_with_interval "$INTERVAL"
sampling=$(measure)
[ "$(seen)" = "$N" ] || die "a sample saw $(seen) of $N VPSes running"
log "sampling: croftd used $sampling % of one CPU; now the baseline"
restart_with_interval 3600
baseline=$(measure)
# Its first sample (at its start) saw them all too: like was measured with like.
[ "$(seen)" = "$N" ] || die "after the restart a sample saw $(seen) of $N VPSes running"
cat <<EOT

Metrics sampler with $N real busybox VPSes (network on), croftd $(basename "$BIN_DIR") build,
croftd's CPU (own + waited-for children) over $WINDOW s idle, after $WARMUP s:
| metrics_interval | croftd CPU, % of one CPU |
|---|---|
| $INTERVAL s (sampling) | $sampling |
| 3600 s (no sample in the window) | $baseline |
EOT
python3 - "$sampling" "$baseline" "$INTERVAL" <<'PY'
import sys
s, b, i = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"| the sampler | {s - b:.3f} % of one CPU, {(s - b) / 100 * i * 1000:.0f} ms of CPU a sample |")
PY
