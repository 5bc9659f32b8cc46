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
NAME=disk-io
TAG=croft-bench-io-$$
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
command -v fio >/dev/null || die "fio missing (apt-get install fio)"
bench_init "$@"
start_daemon io 'storage_size = "4GiB"'
croft() { croft_in io "$@"; }

log "a busybox VPS with the host's fio and its libraries"
croft launch busybox io1 --no-start >/dev/null
install_binary io io1 "$(command -v fio)" /bin/fio
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
