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
NAME=df
TAG=croft-bench-df-$$
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_init "$@"
PROBE=$BIN_DIR/examples/statfs_probe
[ -x "$PROBE" ] || die "no $PROBE (cargo build --examples)"

start_daemon on $'storage_size = "1GiB"\ndisk_view = true'
start_daemon off $'storage_size = "1GiB"\ndisk_view = false'
for d in on off; do
    croft_in "$d" launch busybox d1 --disk 200MiB --no-start >/dev/null
    install_binary "$d" d1 "$PROBE" /bin/statfs_probe
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
