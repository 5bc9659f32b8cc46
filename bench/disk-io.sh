#!/usr/bin/env bash
# Disk I/O limits, measured with fio inside a VPS: each kind of I/O run
# unlimited, then under its limit (limits.disk.read/write = RATE,
# limits.disk.read_iops/write_iops = IOPS), side by side in one run. What a
# limit holds shows as the measured rate against the limit; what it does
# not hold (buffered writes the kernel writes back on cgroup v1) shows as a
# rate far above it.
#
# Usage: bash bench/disk-io.sh [--build]
# Environment: SECONDS_PER_RUN=5 fio runtime per job, RATE=50MB, IOPS=500,
#   BIN_DIR as in start-exec.sh.
# Runs as root; needs fio (apt-get install fio), which is copied into the
# VPS with the libraries it links. Everything the script creates carries
# the tag croft-bench-io-<pid> and is removed by the EXIT trap, even on
# failure.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
RATE=${RATE:-50MB}
IOPS=${IOPS:-500}
TAG=croft-bench-io-$$

die() { echo "disk-io: error: $*" >&2; exit 1; }
log() { echo "disk-io: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root"
command -v fio >/dev/null || die "fio missing (apt-get install fio)"
if [ "${1:-}" = --build ]; then (cd "$REPO" && cargo build --release --bins); fi
if [ -z "${BIN_DIR:-}" ]; then
    BIN_DIR=$REPO/target/release
    [ -x "$BIN_DIR/croftd" ] || BIN_DIR=$REPO/target/debug
fi
[ -x "$BIN_DIR/croftd" ] || die "no croftd in $BIN_DIR (cargo build --release first)"

WORK=/tmp/$TAG
mkdir -p "$WORK"
DAEMON=
croft() { "$BIN_DIR/croft" --socket "$WORK/run/croftd.sock" "$@"; }
cleanup() {
    set +e
    croft delete --force io1 >/dev/null 2>&1
    [ -n "$DAEMON" ] && { kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; }
    # The lxcfs croftd started (it outlives croftd, like the supervisors).
    if [ -r "$WORK/run/lxcfs.pid" ]; then
        pid=$(<"$WORK/run/lxcfs.pid")
        if grep -qs "$WORK" "/proc/$pid/cmdline"; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    mountpoint -q "$WORK/run/lxcfs" && umount -l "$WORK/run/lxcfs"
    pool=$WORK/state/storage-pools/default
    mountpoint -q "$pool" && umount "$pool"
    ip netns del "$TAG" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$WORK/run"
cgroup_prefix = "$TAG"
raise_host_limits = false
storage_size = "4GiB"
log_level = "warn"
EOF
ip netns add "$TAG"
ip -n "$TAG" link set lo up
nsenter --net=/run/netns/"$TAG" "$BIN_DIR/croftd" --config "$WORK/croftd.toml" >"$WORK/croftd.log" 2>&1 &
DAEMON=$!
for _ in $(seq 200); do croft list >/dev/null 2>&1 && break; sleep 0.05; done
croft list >/dev/null 2>&1 || die "croftd did not come up: $(cat "$WORK/croftd.log")"

log "a busybox VPS with the host's fio and its libraries"
croft launch busybox io1 --no-start >/dev/null
rootfs=$WORK/state/storage-pools/default/containers/io1/rootfs
[ -d "$rootfs" ] || die "no disk at $rootfs"
for lib in $(ldd "$(command -v fio)" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
cp "$(command -v fio)" "$rootfs/bin/fio"
croft start io1 >/dev/null
croft exec io1 -- fio --version >/dev/null || die "fio does not run inside the VPS"

# fio inside the VPS on a 256 MiB file; prints "<MB/s> <IOPS>" of the job.
run_fio() { # RW BS DIRECT [EXTRA...]
    local rw=$1 bs=$2 direct=$3
    shift 3
    croft exec io1 -- fio --name=j --filename=/root/fio.dat --size=256M --rw="$rw" --bs="$bs" \
        --direct="$direct" --ioengine=psync --runtime="$SECONDS_PER_RUN" --time_based \
        --output-format=json "$@" 2>/dev/null |
        python3 -c '
import json, sys
job = json.load(sys.stdin)["jobs"][0]
side = job["read"] if job["read"]["io_bytes"] else job["write"]
print("%.1f %.0f" % (side["bw_bytes"] / 1e6, side["iops"]))'
}
# Lay the file out once, so reads have something to read.
croft exec io1 -- fio --name=lay --filename=/root/fio.dat --size=256M --rw=write --bs=1M \
    --direct=1 --output-format=terse >/dev/null

rows=()
measure() { # LABEL KEY VALUE UNIT RW BS DIRECT [EXTRA...]
    local label=$1 key=$2 value=$3 unit=$4 free held
    shift 4
    croft config unset io1 "$key" >/dev/null 2>&1 || true
    free=$(run_fio "$@")
    croft config set io1 "$key=$value" >/dev/null
    held=$(run_fio "$@")
    croft config unset io1 "$key" >/dev/null
    rows+=("$label|$key=$value|$free|$held|$unit")
    log "$label: unlimited $free, limited $held (MB/s IOPS)"
}
measure "direct sequential read, 1 MiB" limits.disk.read "$RATE" MB/s read 1M 1
measure "direct sequential write, 1 MiB" limits.disk.write "$RATE" MB/s write 1M 1
measure "direct random read, 4 KiB" limits.disk.read_iops "$IOPS" IOPS randread 4k 1
measure "direct random write, 4 KiB" limits.disk.write_iops "$IOPS" IOPS randwrite 4k 1
measure "buffered write, fsync at the end" limits.disk.write "$RATE" MB/s write 1M 0 --end_fsync=1
measure "buffered write, left to the kernel" limits.disk.write "$RATE" MB/s write 1M 0 --invalidate=0

case $(stat -fc %T /sys/fs/cgroup) in cgroup2fs) version=v2 ;; *) version=v1 ;; esac
echo "Disk I/O limits measured with fio inside a busybox VPS (psync, ${SECONDS_PER_RUN}s per run, kernel $(uname -r), cgroup $version):"
echo
echo "| I/O | limit | unlimited | limited | limited / limit |"
echo "|---|---|---|---|---|"
for row in "${rows[@]}"; do
    IFS='|' read -r label limit free held unit <<<"$row"
    python3 - "$label" "$limit" "$free" "$held" "$unit" <<'EOF'
import re, sys
label, limit, free, held, unit = sys.argv[1:]
value = limit.split("=", 1)[1]
if unit == "IOPS":
    want, pick = float(value), 1
else:
    n, suffix = re.fullmatch(r"(\d+)(MB|MiB)", value).groups()
    want, pick = float(n) * (1 if suffix == "MB" else 1.048576), 0
f, h = float(free.split()[pick]), float(held.split()[pick])
print(f"| {label} | {limit} | {f:.1f} {unit} | {h:.1f} {unit} | {h / want:.2f} |")
EOF
done
