#!/usr/bin/env bash
# What the honest df costs, side by side in one run: two croftds, one with
# the disk view on (statfs inside a VPS answered through seccomp user
# notification, runtime/disk_view.rs) and one with it off (disk_view =
# false: statfs goes straight to the kernel).
#   statfs /     on the VPS's disk: answered by the disk view server
#   statfs /dev  another filesystem: sent to the server, left to the kernel
#   start        croft start of a stopped busybox VPS (the server's fork and
#                the second filter are on this path)
#
# Usage: bash bench/df.sh [--build]
# Environment: N=20 timed starts (median), CALLS=20000 statfs calls per
#   run, RUNS=5 runs of each (median), BIN_DIR as in start-exec.sh.
# Runs as root. Everything it makes carries the tag croft-bench-df-<pid>
# and is removed by the EXIT trap, even on failure.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-20}
CALLS=${CALLS:-20000}
RUNS=${RUNS:-5}
TAG=croft-bench-df-$$

die() { echo "df: error: $*" >&2; exit 1; }
log() { echo "df: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root"
if [ "${1:-}" = --build ]; then (cd "$REPO" && cargo build --release --bins --examples); fi
if [ -z "${BIN_DIR:-}" ]; then
    BIN_DIR=$REPO/target/release
    [ -x "$BIN_DIR/croftd" ] || BIN_DIR=$REPO/target/debug
fi
[ -x "$BIN_DIR/croftd" ] || die "no croftd in $BIN_DIR (cargo build --release first)"
PROBE=$BIN_DIR/examples/statfs_probe
[ -x "$PROBE" ] || die "no $PROBE (cargo build --examples)"

WORK=/tmp/$TAG
mkdir -p "$WORK"
DAEMONS=()
croft_in() { local d=$1; shift; "$BIN_DIR/croft" --socket "$WORK/$d/run/croftd.sock" "$@"; }
cleanup() {
    set +e
    for d in on off; do croft_in "$d" delete --force d1 >/dev/null 2>&1; done
    for pid in "${DAEMONS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    for d in on off; do
        if [ -r "$WORK/$d/run/lxcfs.pid" ]; then
            pid=$(<"$WORK/$d/run/lxcfs.pid")
            if grep -qs "$WORK" "/proc/$pid/cmdline"; then
                kill "$pid"
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
        fi
        mountpoint -q "$WORK/$d/run/lxcfs" && umount -l "$WORK/$d/run/lxcfs"
        pool=$WORK/$d/state/storage-pools/default
        mountpoint -q "$pool" && umount "$pool"
        ip netns del "$TAG-$d" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_daemon() { # NAME DISK_VIEW
    local d=$1
    mkdir -p "$WORK/$d"
    cat >"$WORK/$d/croftd.toml" <<EOT
state_dir = "$WORK/$d/state"
run_dir = "$WORK/$d/run"
cgroup_prefix = "$TAG-$d"
raise_host_limits = false
storage_size = "1GiB"
log_level = "warn"
disk_view = $2
EOT
    ip netns add "$TAG-$d"
    ip -n "$TAG-$d" link set lo up
    nsenter --net=/run/netns/"$TAG-$d" "$BIN_DIR/croftd" --config "$WORK/$d/croftd.toml" >"$WORK/$d/croftd.log" 2>&1 &
    DAEMONS+=($!)
    for _ in $(seq 200); do croft_in "$d" list >/dev/null 2>&1 && return; sleep 0.05; done
    die "croftd ($d) did not come up: $(cat "$WORK/$d/croftd.log")"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "'$*' failed"
    t1=$EPOCHREALTIME
    python3 -c "print(f'{($t1 - $t0) * 1000:.2f}')"
}

start_daemon on true
start_daemon off false
for d in on off; do
    croft_in "$d" launch busybox d1 --disk 200MiB --no-start >/dev/null
    rootfs=$WORK/$d/state/storage-pools/default/containers/d1/rootfs
    for lib in $(ldd "$PROBE" | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
    cp "$PROBE" "$rootfs/bin/statfs_probe"
    croft_in "$d" start d1 >/dev/null
done

probe() { # DAEMON PATH -> "ns blocks"
    croft_in "$1" exec d1 -- statfs_probe "$2" "$CALLS" |
        sed -E 's/ns_per_call=([0-9]+) blocks=([0-9]+).*/\1 \2/'
}
declare -A result
for path in / /dev; do
    for d in on off; do
        runs=()
        for _ in $(seq "$RUNS"); do
            read -r ns blocks < <(probe "$d" "$path")
            runs+=("$ns")
        done
        result[$d$path]=$(printf '%s\n' "${runs[@]}" | median)
        result[blocks$d$path]=$blocks
        log "statfs $path, disk view $d: ${result[$d$path]} ns ($blocks blocks)"
    done
done

log "start latency, disk view on and off ($N runs each, alternating)"
on=() off=()
for _ in $(seq "$N"); do
    croft_in on stop --force d1 >/dev/null
    croft_in off stop --force d1 >/dev/null
    on+=("$(ms croft_in on start d1)")
    off+=("$(ms croft_in off start d1)")
done
on_ms=$(printf '%s\n' "${on[@]}" | median)
off_ms=$(printf '%s\n' "${off[@]}" | median)

echo "statfs inside a busybox VPS with a 200MiB disk on a 1GiB pool ($CALLS calls a run, median of $RUNS runs; starts: median of $N), kernel $(uname -r):"
echo
echo "| | disk view on | off | on / off |"
echo "|---|---|---|---|"
for path in / /dev; do
    python3 -c "import sys; on, off = map(float, sys.argv[1:3]); print(f'| statfs {sys.argv[3]} (ns a call) | {on:.0f} | {off:.0f} | {on / off:.1f} |')" \
        "${result[on$path]}" "${result[off$path]}" "$path"
done
echo "| df / size (blocks of 4 KiB) | ${result[blockson/]} | ${result[blocksoff/]} | |"
python3 -c "import sys; on, off = map(float, sys.argv[1:3]); print(f'| croft start (ms) | {on:.2f} | {off:.2f} | {on / off:.2f} |')" "$on_ms" "$off_ms"
