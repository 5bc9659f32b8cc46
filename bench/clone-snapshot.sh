#!/usr/bin/env bash
# Snapshot, copy and launch time against data size, croft side by side with
# the plain tools on the same btrfs pool in one run:
#   snapshot   croft snapshot create     vs btrfs subvolume snapshot -r
#   clone      croft copy (new identity)  vs cp -a --reflink=always
#   launch     croft launch IMAGE (clone of the image + start), per image size
#   disk       pool space each extra VPS launched from one image costs
#   send       croft snapshot export (whole, and --since an older snapshot
#              after CHANGE_MB more MB were written) vs btrfs send [-p];
#              croft snapshot import of both vs btrfs receive
# Sizes: a bare busybox disk, then 200 MB and 2 GB of random data (SIZES).
#
# Usage: bash bench/clone-snapshot.sh [--build]
# Environment: N=10 timed runs (median reported), N_SEND=5 for the send
#   table, CHANGE_MB=20 written between the two snapshots sent, SIZES="0 200 2000" (MB),
#   EXTRA=10 VPSes for the disk-per-VPS figure, BIN_DIR as in start-exec.sh.
# Runs as root; croftd runs in its own network namespace on its own 8 GiB
# loop-file pool (sparse, 16 GiB); everything is removed by the EXIT trap, even on failure.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-10}
SIZES=${SIZES:-0 200 2000}
EXTRA=${EXTRA:-10}
N_SEND=${N_SEND:-5}
CHANGE_MB=${CHANGE_MB:-20}

die() { echo "clone-snapshot: error: $*" >&2; exit 1; }
log() { echo "clone-snapshot: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root"
if [ "${1:-}" = --build ]; then (cd "$REPO" && cargo build --release --bins); fi
if [ -z "${BIN_DIR:-}" ]; then
    BIN_DIR=$REPO/target/release
    [ -x "$BIN_DIR/croftd" ] || BIN_DIR=$REPO/target/debug
fi
[ -x "$BIN_DIR/croftd" ] || die "no croftd in $BIN_DIR (cargo build --release first)"

WORK=/tmp/croft-bench-clone-$$
POOL=$WORK/state/storage-pools/default
SCRATCH=$POOL/bench-scratch
mkdir -p "$WORK"
cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$WORK/run"
cgroup_prefix = "croft-bench-clone-$$"
raise_host_limits = false
storage_size = "16GiB"
log_level = "warn"
EOF
croft() { "$BIN_DIR/croft" --socket "$WORK/run/croftd.sock" "$@"; }

cleanup() {
    set +e
    if [ -S "$WORK/run/croftd.sock" ]; then
        for v in $(croft list --format json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin)))'); do
            croft delete --force "$v" >/dev/null 2>&1
        done
    fi
    [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    # The lxcfs croftd started (it outlives croftd, like the supervisors).
    if [ -r "$WORK/run/lxcfs.pid" ]; then
        pid=$(<"$WORK/run/lxcfs.pid")
        grep -qs "$WORK" "/proc/$pid/cmdline" && kill "$pid"
    fi
    mountpoint -q "$WORK/run/lxcfs" && umount -l "$WORK/run/lxcfs"
    for d in "$SCRATCH"/*; do [ -d "$d" ] && btrfs -q subvolume delete "$d" >/dev/null 2>&1; done
    rm -rf "$SCRATCH" 2>/dev/null
    if mountpoint -q "$POOL"; then
        local dev
        dev=$(findmnt -n -o SOURCE "$POOL")
        umount "$POOL"
        case "$dev" in /dev/loop*) losetup -d "$dev" 2>/dev/null ;; esac
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

unshare --net "$BIN_DIR/croftd" --config "$WORK/croftd.toml" >"$WORK/croftd.log" 2>&1 &
DAEMON=$!
for _ in $(seq 200); do croft list >/dev/null 2>&1 && break; sleep 0.05; done
croft list >/dev/null || die "croftd did not come up: $(cat "$WORK/croftd.log")"

# ms CMD...: run CMD, print its wall time in milliseconds.
ms() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "'$*' failed"
    t1=$EPOCHREALTIME
    python3 -c "print(f'{($t1 - $t0) * 1000:.1f}')"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
used() { croft storage info default --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["used_bytes"])'; }

mkdir -p "$SCRATCH"
ROWS=() SEND_ROWS=()
for size in $SIZES; do
    src=d$size
    log "VPS $src with $size MB of data"
    croft launch busybox "$src" >/dev/null
    [ "$size" = 0 ] || croft exec "$src" -- sh -c "dd if=/dev/urandom of=/root/data bs=1M count=$size 2>/dev/null && sync"
    rootfs=$POOL/containers/$src/rootfs
    snap=() raw=() copy=() reflink=()
    for i in $(seq "$N"); do
        snap+=("$(ms croft snapshot create "$src" "s$i")")
        raw+=("$(ms btrfs -q subvolume snapshot -r "$rootfs" "$SCRATCH/raw$i")")
        btrfs -q subvolume delete "$SCRATCH/raw$i" >/dev/null
        copy+=("$(ms croft copy "$src" "$src-c$i")")
        croft delete --force "$src-c$i" >/dev/null
        btrfs -q subvolume create "$SCRATCH/ref$i" >/dev/null
        reflink+=("$(ms cp -a --reflink=always "$rootfs/." "$SCRATCH/ref$i/")")
        btrfs -q subvolume delete "$SCRATCH/ref$i" >/dev/null
    done
    # Export and import: the whole snapshot, then only what changed since
    # it, beside btrfs send and receive by hand of the same snapshots.
    snaps=$POOL/containers/$src/snapshots
    croft exec "$src" -- sh -c "dd if=/dev/urandom of=/root/change bs=1M count=$CHANGE_MB 2>/dev/null && sync"
    croft snapshot create "$src" changed >/dev/null
    croft launch busybox "$src-r" >/dev/null
    # Each step starts with nothing dirty (sync first): otherwise a step
    # pays for writing back what the one before it left in the page cache
    # (neither croft nor btrfs receive syncs at the end). croft goes first
    # in odd rounds and the plain tool in even ones, so neither always
    # meets cold metadata.
    exp=() send=() expi=() sendi=() imp=() recv=() impi=() recvi=()
    for i in $(seq "$N_SEND"); do
        mkdir "$SCRATCH/recv$i"
        croft_side() {
            sync; exp+=("$(ms croft snapshot export "$src" s1 "$WORK/full.stream" --force)")
            sync; expi+=("$(ms croft snapshot export "$src" changed "$WORK/inc.stream" --since s1 --force)")
            sync; imp+=("$(ms croft snapshot import "$src-r" "$WORK/full.stream" --name "f$i")")
            sync; impi+=("$(ms croft snapshot import "$src-r" "$WORK/inc.stream" --name "i$i")")
        }
        btrfs_side() {
            sync; send+=("$(ms btrfs -q send -f "$WORK/raw-full.stream" "$snaps/s1")")
            sync; sendi+=("$(ms btrfs -q send -p "$snaps/s1" -f "$WORK/raw-inc.stream" "$snaps/changed")")
            sync; recv+=("$(ms btrfs -q receive -f "$WORK/raw-full.stream" "$SCRATCH/recv$i")")
            sync; recvi+=("$(ms btrfs -q receive -f "$WORK/raw-inc.stream" "$SCRATCH/recv$i")")
        }
        if [ $((i % 2)) = 1 ]; then croft_side; btrfs_side; else btrfs_side; croft_side; fi
        full_mb=$(du -m --apparent-size "$WORK/full.stream" | cut -f1)
        inc_mb=$(du -m --apparent-size "$WORK/inc.stream" | cut -f1)
        rm -f "$WORK"/*.stream
        croft snapshot delete "$src-r" "f$i" >/dev/null
        croft snapshot delete "$src-r" "i$i" >/dev/null
        for d in "$SCRATCH/recv$i"/*; do btrfs -q subvolume delete "$d" >/dev/null; done
        rmdir "$SCRATCH/recv$i"
    done
    croft delete --force "$src-r" >/dev/null
    croft snapshot delete "$src" changed >/dev/null
    m() { printf '%s\n' "$@" | median; }
    SEND_ROWS+=("| $size MB | $full_mb / $inc_mb MB | $(m "${exp[@]}") | $(m "${send[@]}") | $(m "${expi[@]}") | $(m "${sendi[@]}") | $(m "${imp[@]}") | $(m "${recv[@]}") | $(m "${impi[@]}") | $(m "${recvi[@]}") |")
    # The same tree as an image, to time launches from it.
    launch=()
    if [ "$size" != 0 ]; then
        croft stop "$src" >/dev/null
        tar -C "$rootfs" -cf "$WORK/$src.tar" .
        croft image import "$WORK/$src.tar" "bench/$src" >/dev/null
        rm -f "$WORK/$src.tar"
        for i in $(seq "$N"); do
            launch+=("$(ms croft launch "bench/$src" "$src-l$i")")
            croft delete --force "$src-l$i" >/dev/null
        done
    else
        for i in $(seq "$N"); do
            launch+=("$(ms croft launch busybox "$src-l$i")")
            croft delete --force "$src-l$i" >/dev/null
        done
    fi
    ROWS+=("| $size MB | $(m "${snap[@]}") | $(m "${raw[@]}") | $(m "${copy[@]}") | $(m "${reflink[@]}") | $(m "${launch[@]}") |")
done

# Disk per extra VPS from the largest image.
last=${SIZES##* }
image=busybox
[ "$last" = 0 ] || image=bench/d$last
sync
before=$(used)
for i in $(seq "$EXTRA"); do croft launch "$image" "extra$i" >/dev/null; done
sync
sleep 1
after=$(used)
per_vps=$(python3 -c "print(f'{($after - $before) / $EXTRA / 1024:.0f}')")

echo
echo "Medians of $N runs, milliseconds. croft commands include the CLI round trip."
echo
echo "| data | croft snapshot | btrfs snapshot | croft copy | cp --reflink | croft launch |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Disk per extra VPS launched from $image: $per_vps KiB ($EXTRA VPSes, pool used before/after)."
echo
echo "Export and import (medians of $N_SEND runs, milliseconds): the whole snapshot, then"
echo "the changes since it after $CHANGE_MB MB more were written; streams as files in $WORK."
echo
echo "| data | stream whole / changes | croft export | btrfs send | croft export --since | btrfs send -p | croft import | btrfs receive | croft import (changes) | btrfs receive (changes) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${SEND_ROWS[@]}"

