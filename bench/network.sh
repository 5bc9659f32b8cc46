#!/usr/bin/env bash
# VPS networking, side by side in one run:
#   setup      croft start of a busybox VPS with networking on, against the
#              same start on a daemon with networking off: the difference is
#              what the network costs a start (veth, addresses, routes,
#              /etc/hosts, its rules already loaded at launch)
#   throughput iperf3 TCP from one VPS to another through croft's bridge,
#              against iperf3 over a bare veth pair between two namespaces
#   routed     iperf3 TCP from a VPS on a routed network (a public address,
#              no NAT) to an upstream namespace beyond the host: through
#              the bridge, the host's routing and the uplink veth, against
#              the same path bare: two veth pairs with a plain router
#              namespace between them
#
# Usage: bash bench/network.sh [--build]
# Environment: N=20 timed starts (median reported), SECONDS_PER_RUN=5
#   iperf3 duration, RUNS=3 iperf3 runs of each (median), BIN_DIR as in
#   start-exec.sh.
# Runs as root. Each croftd runs in a network namespace of its own; all that
# the script creates carries the tag croft-bench-net-<pid> and is removed by
# the EXIT trap, even on failure.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-20}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
RUNS=${RUNS:-3}
TAG=croft-bench-net-$$

die() { echo "network: error: $*" >&2; exit 1; }
log() { echo "network: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root"
command -v iperf3 >/dev/null || die "iperf3 missing (apt-get install iperf3)"
if [ "${1:-}" = --build ]; then (cd "$REPO" && cargo build --release --bins); fi
if [ -z "${BIN_DIR:-}" ]; then
    BIN_DIR=$REPO/target/release
    [ -x "$BIN_DIR/croftd" ] || BIN_DIR=$REPO/target/debug
fi
[ -x "$BIN_DIR/croftd" ] || die "no croftd in $BIN_DIR (cargo build --release first)"

WORK=/tmp/$TAG
mkdir -p "$WORK"
DAEMONS=()
cleanup() {
    set +e
    # An iperf3 server of ours still waiting for its client.
    if [ -r "$WORK/iperf-server.pid" ]; then
        pid=$(<"$WORK/iperf-server.pid")
        grep -qs iperf3 "/proc/$pid/cmdline" && kill "$pid"
    fi
    for d in on off; do
        sock=$WORK/$d/run/croftd.sock
        if [ -S "$sock" ]; then
            for v in $("$BIN_DIR/croft" --socket "$sock" list --format json 2>/dev/null |
                python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin)))'); do
                "$BIN_DIR/croft" --socket "$sock" delete --force "$v" >/dev/null 2>&1
            done
        fi
    done
    for pid in "${DAEMONS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    # The lxcfs each croftd started (it outlives croftd, like the supervisors).
    for d in on off; do
        if [ -r "$WORK/$d/run/lxcfs.pid" ]; then
            pid=$(<"$WORK/$d/run/lxcfs.pid")
            if grep -qs "$WORK" "/proc/$pid/cmdline"; then
                kill "$pid"
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
        fi
        mountpoint -q "$WORK/$d/run/lxcfs" && umount -l "$WORK/$d/run/lxcfs"
    done
    for d in on off; do
        pool=$WORK/$d/state/storage-pools/default
        mountpoint -q "$pool" && umount "$pool"
    done
    for ns in "$TAG-on" "$TAG-off" "$TAG-a" "$TAG-b" "$TAG-up" "$TAG-ra" "$TAG-rr" "$TAG-rb"; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_daemon() { # NAME EXTRA-TOML
    local d=$1
    mkdir -p "$WORK/$d"
    cat >"$WORK/$d/croftd.toml" <<EOF
state_dir = "$WORK/$d/state"
run_dir = "$WORK/$d/run"
cgroup_prefix = "$TAG-$d"
raise_host_limits = false
storage_size = "1GiB"
log_level = "warn"
$2
EOF
    ip netns add "$TAG-$d"
    ip -n "$TAG-$d" link set lo up
    nsenter --net=/run/netns/"$TAG-$d" "$BIN_DIR/croftd" --config "$WORK/$d/croftd.toml" >"$WORK/$d/croftd.log" 2>&1 &
    DAEMONS+=($!)
    for _ in $(seq 200); do
        "$BIN_DIR/croft" --socket "$WORK/$d/run/croftd.sock" list >/dev/null 2>&1 && return
        sleep 0.05
    done
    die "croftd ($d) did not come up: $(cat "$WORK/$d/croftd.log")"
}
croft_on() { "$BIN_DIR/croft" --socket "$WORK/on/run/croftd.sock" "$@"; }
croft_off() { "$BIN_DIR/croft" --socket "$WORK/off/run/croftd.sock" "$@"; }
ms() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "'$*' failed"
    t1=$EPOCHREALTIME
    python3 -c "print(f'{($t1 - $t0) * 1000:.2f}')"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start_daemon on ""
start_daemon off $'[network]\nenabled = false'

log "start latency, networking on and off ($N runs each, alternating)"
croft_on launch busybox s1 >/dev/null
croft_off launch busybox s1 >/dev/null
on=() off=()
for _ in $(seq "$N"); do
    croft_on stop --force s1 >/dev/null
    croft_off stop --force s1 >/dev/null
    on+=("$(ms croft_on start s1)")
    off+=("$(ms croft_off start s1)")
done
on_ms=$(printf '%s\n' "${on[@]}" | median)
off_ms=$(printf '%s\n' "${off[@]}" | median)

log "throughput: VPS to VPS through the bridge, and a bare veth pair"
croft_on launch busybox t1 >/dev/null
croft_on launch busybox t2 >/dev/null
ip1=$(croft_on info t1 --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nic"]["ipv4"])')
# The init pid is in the host view (`info --host`) since issue 13.
init_pid() {
    (croft_on info "$1" --host --format json 2>/dev/null || croft_on info "$1" --format json) |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["init_pid"])'
}
pid1=$(init_pid t1)
pid2=$(init_pid t2)
ip netns add "$TAG-a"
ip netns add "$TAG-b"
ip -n "$TAG-a" link add veth0 type veth peer name veth0 netns "$TAG-b"
ip -n "$TAG-a" addr add 192.0.2.1/24 dev veth0
ip -n "$TAG-b" addr add 192.0.2.2/24 dev veth0
for ns in "$TAG-a" "$TAG-b"; do ip -n "$ns" link set veth0 up; ip -n "$ns" link set lo up; done

# iperf_result: iperf3 -J output on stdin -> the received bits/s on stdout.
# iperf3 3.12 exits 0 even when the test failed, saying so in an "error" key:
# exit 2 if the server is not listening (yet), 1 on any other error, with
# the error on stderr.
iperf_result() {
    python3 -c '
import json, sys
text = sys.stdin.read()
try:
    j = json.loads(text)
except ValueError:
    sys.exit("no JSON from iperf3: " + (text.strip()[-300:] or "no output"))
err = j.get("error")
if err:
    print(err, file=sys.stderr)
    sys.exit(2 if "unable to connect" in err else 1)
try:
    print(j["end"]["sum_received"]["bits_per_second"])
except (KeyError, TypeError):
    sys.exit("iperf3 reported no end.sum_received")
'
}
# alive PID: the process runs (a zombie, exited but not yet reaped, does not).
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st:0:1}" != Z ]
}
# stop_server PID: kill our iperf3 server (started by iperf, below) and reap it.
stop_server() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null || true
    rm -f "$WORK/iperf-server.pid"
}
iperf() { # SERVER-NSENTER-ARG CLIENT-NSENTER-ARG ADDRESS -> bits/s
    local slog=$WORK/iperf-server.log err=$WORK/iperf-client.err
    nsenter "$1" iperf3 -s -1 -p 5201 >"$slog" 2>&1 &
    local server=$! out rc k bps=""
    echo "$server" >"$WORK/iperf-server.pid" # for cleanup, should we die
    # The server may not listen yet: retry "unable to connect" for up to 10 s.
    # Each client run is bounded too (the test plus 30 s).
    local deadline=$((SECONDS + 10))
    while :; do
        rc=0
        out=$(timeout -k 5 $((SECONDS_PER_RUN + 30)) nsenter "$2" \
            iperf3 -c "$3" -p 5201 -t "$SECONDS_PER_RUN" -O 1 -J 2>"$err") || rc=$?
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            stop_server "$server"
            die "iperf3 client to $3 did not finish within $((SECONDS_PER_RUN + 30)) s"
        fi
        rc=0
        bps=$(iperf_result <<<"$out" 2>>"$err") || rc=$?
        case $rc in
        0) break ;;
        2)
            if ! alive "$server"; then
                stop_server "$server"
                die "iperf3 server exited before a client could connect: $(tail -3 "$slog")"
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                stop_server "$server"
                die "iperf3 client to $3: $(tail -1 "$err") (still after 10 s of retries)"
            fi
            sleep 0.1
            ;;
        *)
            stop_server "$server"
            die "iperf3 client to $3 failed: $(tail -3 "$err" | tr '\n' ' ')"
            ;;
        esac
    done
    # A one-off server exits once its test is over: give it 10 s.
    for ((k = 0; k < 100; k++)); do alive "$server" || break; sleep 0.1; done
    if alive "$server"; then
        stop_server "$server"
        die "iperf3 server still running 10 s after its test ended: $(tail -3 "$slog")"
    fi
    wait "$server" 2>/dev/null || true
    rm -f "$WORK/iperf-server.pid"
    echo "$bps"
}
vps=() bare=()
for _ in $(seq "$RUNS"); do
    vps+=("$(iperf "--net=/proc/$pid1/ns/net" "--net=/proc/$pid2/ns/net" "$ip1")")
    bare+=("$(iperf "--net=/run/netns/$TAG-b" "--net=/run/netns/$TAG-a" 192.0.2.2)")
done
vps_bps=$(printf '%s\n' "${vps[@]}" | median)
bare_bps=$(printf '%s\n' "${bare[@]}" | median)

log "throughput: a routed VPS to an upstream namespace beyond the host"
ip netns add "$TAG-up"
ip -n "$TAG-on" link add crup type veth peer name crdown netns "$TAG-up"
ip -n "$TAG-on" addr add 203.0.113.1/24 dev crup
ip -n "$TAG-up" addr add 203.0.113.2/24 dev crdown
ip -n "$TAG-on" link set crup up
ip -n "$TAG-up" link set crdown up
ip -n "$TAG-up" link set lo up
ip -n "$TAG-up" route add 198.51.100.16/28 via 203.0.113.1
croft_on network create pub --type routed --ipv4 198.51.100.16/28 >/dev/null
croft_on launch busybox r1 --network pub >/dev/null
pidr=$(init_pid r1)
# The same path bare: a namespace, a veth pair, a router namespace, a veth
# pair, a namespace.
for ns in "$TAG-ra" "$TAG-rr" "$TAG-rb"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$TAG-ra" link add v0 type veth peer name v0 netns "$TAG-rr"
ip -n "$TAG-rb" link add v1 type veth peer name v1 netns "$TAG-rr"
ip -n "$TAG-ra" addr add 198.18.1.2/24 dev v0
ip -n "$TAG-rr" addr add 198.18.1.1/24 dev v0
ip -n "$TAG-rr" addr add 198.18.2.1/24 dev v1
ip -n "$TAG-rb" addr add 198.18.2.2/24 dev v1
for pair in "$TAG-ra v0" "$TAG-rr v0" "$TAG-rr v1" "$TAG-rb v1"; do
    set -- $pair
    ip -n "$1" link set "$2" up
done
ip -n "$TAG-ra" route add default via 198.18.1.1
ip -n "$TAG-rb" route add default via 198.18.2.1
ip netns exec "$TAG-rr" sysctl -qw net.ipv4.ip_forward=1
routed=() path=()
for _ in $(seq "$RUNS"); do
    routed+=("$(iperf "--net=/run/netns/$TAG-up" "--net=/proc/$pidr/ns/net" 203.0.113.2)")
    path+=("$(iperf "--net=/run/netns/$TAG-rb" "--net=/run/netns/$TAG-ra" 198.18.2.2)")
done
routed_bps=$(printf '%s\n' "${routed[@]}" | median)
path_bps=$(printf '%s\n' "${path[@]}" | median)

echo
echo "| measurement | croft | peer | |"
echo "|---|---|---|---|"
python3 - "$on_ms" "$off_ms" "$vps_bps" "$bare_bps" "$N" "$RUNS" "$routed_bps" "$path_bps" <<'EOF'
import sys
on, off, vps, bare, n, runs, routed, path = map(float, sys.argv[1:])
print(f"| croft start, median of {n:.0f} | {on:.2f} ms with network | {off:.2f} ms without | network setup costs {on - off:.2f} ms |")
print(f"| TCP VPS to VPS, median of {runs:.0f} | {vps / 1e9:.2f} Gbit/s (bridge, rules) | {bare / 1e9:.2f} Gbit/s (bare veth pair) | {vps / bare:.0%} of bare |")
print(f"| TCP routed VPS to upstream, median of {runs:.0f} | {routed / 1e9:.2f} Gbit/s (bridge, routing, rules, uplink veth) | {path / 1e9:.2f} Gbit/s (the same path bare: veth, router, veth) | {routed / path:.0%} of bare |")
EOF
