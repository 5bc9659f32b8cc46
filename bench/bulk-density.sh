#!/usr/bin/env bash
# Bulk provisioning and density: how fast croft creates and deletes many
# VPSes, and how many idle Debian VPSes fit on this host.
#   1. bulk create   N_BULK busybox VPSes, `croft launch busybox NAME` one
#                    after another, then N_BULK more with CONCURRENCY clients
#                    at once (xargs -P); each as total seconds and VPS/s
#                    (a launch returns once the VPS's init runs). Compared
#                    with LXD's *published* rate (LXD_RATE, about 4 VPS/s; LXD
#                    is not run here: it can only create cgroups at the
#                    hierarchy roots, see DESIGN.md). The busybox image is
#                    built before any timing.
#      bulk delete   `croft delete --force NAME` (stop + delete) of every one
#                    of them, sequentially and CONCURRENCY at once, deletes/s;
#                    and at the end the N_DENSE booted Debian VPSes deleted
#                    one after another, ms a delete.
#   2. density       N_DENSE idle Debian bookworm VPSes (debootstrap
#                    --variant=minbase --include=systemd-sysv,dbus,
#                    openssh-server,iproute2), all launched, each waited for
#                    until `croft exec NAME -- systemctl is-system-running`
#                    answers `running`, then IDLE seconds of idling. Per VPS:
#                      memory  PSS (/proc/PID/smaps_rollup) of every process
#                              in the VPS's memory cgroup plus its
#                              croft-supervisor; the VPS cgroup's own charge
#                              (memory.usage_in_bytes) beside it
#                      croft   what croft itself adds: supervisor PSS +
#                              croftd RSS growth / N_DENSE
#                      disk    pool space used (statvfs of the btrfs pool,
#                              `croft storage info`, as clone-snapshot.sh)
#                              after minus before / N_DENSE, and the mean
#                              exclusive bytes of each VPS's subvolume
#                              (`btrfs qgroup show`)
#                      fit     MemAvailable before the launches divided by
#                              the per-VPS cost (PSS based, and the measured
#                              MemAvailable drop per VPS)
#
# Usage: bash bench/bulk-density.sh [--build] [--help]
#   --build     run `cargo build --release` first (and use target/release)
# Environment:
#   N_BULK=100       VPSes per bulk pass (sequential, then concurrent)
#   CONCURRENCY=10   clients at once in the concurrent passes
#   N_DENSE=30       idle Debian VPSes for the density figures
#   IDLE=10          seconds they idle once all reached `running`
#   BOOT_TIMEOUT=300 seconds (after the last launch) for all of them to reach
#                    `running`; one that does not (or ends `degraded`) is
#                    named in the report, and measured all the same
#   LXD_RATE=4       LXD's published bulk launch rate (VPS/s), quoted only
#   CROFT_NETWORK=1  0 leaves VPSes with loopback only; 1 (default) gives
#                    them croft's usual network (veth on the bridge,
#                    addresses, nftables rules), on a /16 so any N_BULK fits
#   ROOTFS_TARBALL   a tarball of the Debian rootfs (.tar, .tar.gz, .tar.zst,
#                    no device nodes) to use instead of running debootstrap
#                    (1.5 to 3 minutes); if the file does not exist yet, the
#                    tree debootstrap builds is saved there (as .tar)
#   MIRROR=http://deb.debian.org/debian   the Debian mirror for debootstrap
#   STORAGE_SIZE=20GiB  size of croftd's loop-file btrfs pool
#   BIN_DIR          where croftd, croft and croft-supervisor are
#                    (default: target/release if built, else target/debug)
#   RAW_OUT          if set, copy the raw timings and readings there
#
# Must run as root. Rules it keeps (see DESIGN.md "Rules for anything that runs
# here"): croftd runs in a network namespace of its own (`unshare -n`), with a
# private state and run dir under /tmp/croft-bench-<pid> and its cgroups
# beneath its own under the prefix croft-bench-<pid>; debootstrap is the only
# thing that reaches the network (the Debian mirror). Everything it creates
# carries the tag croft-bench-<pid> and is removed by the EXIT trap, even on
# failure (VPSes, supervisors, the lxcfs croftd starts, cgroups, the pool's
# mount and loop device, the work dir).
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N_BULK=${N_BULK:-100}
CONCURRENCY=${CONCURRENCY:-10}
N_DENSE=${N_DENSE:-30}
IDLE=${IDLE:-10}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
LXD_RATE=${LXD_RATE:-4}
CROFT_NETWORK=${CROFT_NETWORK:-1}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
STORAGE_SIZE=${STORAGE_SIZE:-20GiB}
PACKAGES=systemd-sysv,dbus,openssh-server,iproute2
IMAGE=test/bookworm
BUILD=0
export LC_NUMERIC=C # EPOCHREALTIME with a decimal point

die() { echo "bulk-density: error: $*" >&2; exit 1; }
log() { echo "bulk-density: $*" >&2; }

croft() { "$BIN_DIR/croft" --socket "$RUN/croftd.sock" "$@"; }
quiet() { "$@" </dev/null >>"$WORK/cmd.log" 2>&1; }
logtail() { tail -n 3 "$WORK/cmd.log" | tr '\n' ' '; }
# The errors in the log (concurrent clients interleave their output).
logerrs() { grep -i error "$WORK/cmd.log" | tail -n 5 | tr '\n' ' '; }
# Names of the VPSes croftd knows, one a line (with their status if $1 = -s).
vps_list() {
    croft list --format json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    print(i["name"], i.get("status", "?")) if sys.argv[1:] == ["-s"] else print(i["name"])' "$@"
}
# count_running: how many VPSes croftd lists as running.
count_running() { vps_list -s | awk '$2 == "running"' | wc -l; }
pool_used() { croft storage info default --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["used_bytes"])'; }
mem_available() { awk '/^MemAvailable:/{print $2}' /proc/meminfo; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# --------------------------------------------------------------------------
# 1. Bulk create and delete of busybox VPSes.
# --------------------------------------------------------------------------
bulk() {
    local B=$WORK/bulk t0 t1 i
    mkdir -p "$B"
    log "bulk: building the busybox image (untimed)"
    if ! quiet croft image build busybox; then
        # Not buildable on its own: one untimed launch builds it.
        quiet croft launch busybox bulk-warm || die "croft launch busybox bulk-warm failed (last output: $(logtail))"
        quiet croft delete --force bulk-warm || die "croft delete --force bulk-warm failed"
    fi
    # One untimed launch and delete: the bridge and first rules exist, the
    # binaries are in the page cache, as they are on a host in service.
    quiet croft launch busybox bulk-warm || die "croft launch busybox bulk-warm failed (last output: $(logtail))"
    quiet croft delete --force bulk-warm || die "croft delete --force bulk-warm failed"

    log "bulk: $N_BULK sequential launches"
    t0=$EPOCHREALTIME
    for ((i = 1; i <= N_BULK; i++)); do
        quiet croft launch busybox "s$i" || die "croft launch busybox s$i failed (last output: $(logtail))"
    done
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$B/create_seq"
    [ "$(count_running)" = "$N_BULK" ] || die "after the sequential launches $(count_running) VPSes run, not $N_BULK"

    log "bulk: $N_BULK sequential deletes"
    t0=$EPOCHREALTIME
    for ((i = 1; i <= N_BULK; i++)); do
        quiet croft delete --force "s$i" || die "croft delete --force s$i failed (last output: $(logtail))"
    done
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$B/delete_seq"
    [ -z "$(vps_list)" ] || die "VPSes left after the sequential deletes: $(vps_list | tr '\n' ' ')"

    # (xargs gives each command /dev/null as its stdin.)
    local cli=("$BIN_DIR/croft" --socket "$RUN/croftd.sock")
    log "bulk: $N_BULK launches, $CONCURRENCY at once"
    t0=$EPOCHREALTIME
    seq -f 'c%g' 1 "$N_BULK" | xargs -P "$CONCURRENCY" -n 1 "${cli[@]}" launch busybox \
        >>"$WORK/cmd.log" 2>&1 || die "a concurrent croft launch failed: $(logerrs)"
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$B/create_par"
    [ "$(count_running)" = "$N_BULK" ] || die "after the concurrent launches $(count_running) VPSes run, not $N_BULK"

    log "bulk: $N_BULK deletes, $CONCURRENCY at once"
    t0=$EPOCHREALTIME
    seq -f 'c%g' 1 "$N_BULK" | xargs -P "$CONCURRENCY" -n 1 "${cli[@]}" delete --force \
        >>"$WORK/cmd.log" 2>&1 || die "a concurrent croft delete failed: $(logerrs)"
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$B/delete_par"
    [ -z "$(vps_list)" ] || die "VPSes left after the concurrent deletes: $(vps_list | tr '\n' ' ')"
}

# --------------------------------------------------------------------------
# 2. Density of idle Debian VPSes.
# --------------------------------------------------------------------------

# The rootfs tarball: ROOTFS_TARBALL if it exists, else a fresh debootstrap
# (saved at ROOTFS_TARBALL when that is set). Sets TARBALL.
rootfs_tarball() {
    if [ -n "${ROOTFS_TARBALL:-}" ] && [ -s "$ROOTFS_TARBALL" ]; then
        TARBALL=$(realpath "$ROOTFS_TARBALL")
        log "rootfs: reusing $TARBALL"
        return
    fi
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    local tree=$WORK/debootstrap t0=$SECONDS
    log "rootfs: debootstrap bookworm (minbase + $PACKAGES) from $MIRROR; takes a few minutes"
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tree" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed: $(tail -3 "$WORK/debootstrap.log")"
    log "rootfs: debootstrap took $((SECONDS - t0)) s"
    # debootstrap leaves device nodes in /dev: croft refuses them in an
    # image (each VPS gets a fresh /dev).
    rm -rf "$tree/dev"
    mkdir -m 0755 "$tree/dev"
    TARBALL=$WORK/bookworm.tar
    tar --numeric-owner -C "$tree" -cf "$TARBALL" .
    rm -rf --one-file-system "$tree"
    if [ -n "${ROOTFS_TARBALL:-}" ]; then
        cp "$TARBALL" "$ROOTFS_TARBALL.part-$$" && mv "$ROOTFS_TARBALL.part-$$" "$ROOTFS_TARBALL" ||
            die "cannot save the tarball at $ROOTFS_TARBALL"
        log "rootfs: saved as $ROOTFS_TARBALL (ROOTFS_TARBALL=$ROOTFS_TARBALL reuses it)"
    fi
}

# The subvolume's "rfer excl" bytes from its own qgroup (0/ID).
qgroup_of() {
    btrfs qgroup show --raw --sync -f "$1" 2>/dev/null | awk '$1 ~ /^0\// {print $2, $3; exit}'
}

density() {
    local D=$WORK/dense i name st
    mkdir -p "$D"
    log "density: croft image import $TARBALL $IMAGE (untimed)"
    quiet croft image import "$TARBALL" "$IMAGE" || die "croft image import failed (last output: $(logtail))"
    local pool=$WORK/state/storage-pools/default
    qgroup_of "$pool/images/${IMAGE//\//_}" >"$D/image_qgroup" || true

    sleep 2
    sync
    pool_used >"$D/pool_before"
    mem_available >"$D/memavail_before"
    rss_kib "$CROFTD_PID" >"$D/croftd_rss_before"
    cp /proc/meminfo "$D/meminfo_before"

    log "density: launching $N_DENSE Debian VPSes"
    local t0=$EPOCHREALTIME
    for ((i = 1; i <= N_DENSE; i++)); do
        quiet croft launch "$IMAGE" "d$i" || die "croft launch $IMAGE d$i failed (last output: $(logtail))"
    done
    echo "$t0 $EPOCHREALTIME" >"$D/launch"

    # Poll every VPS not yet settled until it answers running (or ends in a
    # state it will not leave by itself), or the deadline passes.
    log "density: waiting for every VPS to reach 'systemctl is-system-running' = running"
    declare -A state=()
    local pending=$N_DENSE deadline=$((SECONDS + BOOT_TIMEOUT))
    while [ "$pending" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
        pending=0
        for ((i = 1; i <= N_DENSE; i++)); do
            case ${state[d$i]:-} in running | degraded | maintenance | stopping) continue ;; esac
            st=$(croft exec "d$i" -- systemctl is-system-running </dev/null 2>/dev/null) || true
            state[d$i]=${st:-no answer}
            case $st in
            running) echo "d$i $EPOCHREALTIME" >>"$D/running_at" ;;
            degraded | maintenance | stopping) ;;
            *) pending=$((pending + 1)) ;;
            esac
        done
        [ "$pending" = 0 ] || sleep 0.5
    done
    echo "$t0 $EPOCHREALTIME" >"$D/all_settled"
    : >"$D/not_running"
    for ((i = 1; i <= N_DENSE; i++)); do
        state[d$i]=${state[d$i]:-never polled}
        [ "${state[d$i]}" = running ] && continue
        local failed
        failed=$(croft exec "d$i" -- systemctl --failed --no-legend --plain </dev/null 2>&1 | awk '{printf "%s ", $1}') || true
        echo "d$i ${state[d$i]// /_} $failed" >>"$D/not_running"
        log "density: d$i is '${state[d$i]}', not running (failed units: ${failed:-none})"
    done
    [ "$(wc -l <"$D/not_running")" -lt "$N_DENSE" ] || die "no VPS reached running"

    log "density: idling ${IDLE}s"
    sleep "$IDLE"

    # Readings: processes of each VPS's memory cgroup and its supervisor.
    local own cgbase
    own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$CROFTD_PID/cgroup")
    cgbase=/sys/fs/cgroup/memory${own%/}/$TAG
    [ -d "$cgbase" ] || die "no VPS cgroups at $cgbase (this script reads cgroup v1 memory)"
    : >"$D/vpses"
    for ((i = 1; i <= N_DENSE; i++)); do
        local sup
        sup=$(<"$RUN/vps/d$i/supervisor.pid")
        grep -qs croft-supervisor "/proc/$sup/cmdline" || die "pid $sup in $RUN/vps/d$i/supervisor.pid is not a croft-supervisor"
        [ -d "$cgbase/d$i" ] || die "no memory cgroup $cgbase/d$i"
        echo "d$i $sup $cgbase/d$i" >>"$D/vpses"
    done
    rss_kib "$CROFTD_PID" >"$D/croftd_rss_after"
    mem_available >"$D/memavail_after"
    cp /proc/meminfo "$D/meminfo_after"
    python3 - "$D/vpses" "$(<"$RUN/lxcfs.pid")" "$CROFTD_PID" >"$D/mem.json" <<'EOF'
import json, os, sys
def rollup(pid):  # (Rss, Pss) in KiB
    with open(f"/proc/{pid}/smaps_rollup") as f:
        d = {l.split()[0]: l.split()[1] for l in f if l.startswith(("Rss:", "Pss:"))}
    return int(d["Rss:"]), int(d["Pss:"])
def pss(pid):
    return rollup(pid)[1]
def comm(pid):
    return open(f"/proc/{pid}/comm").read().strip()
out = {"vpses": []}
for line in open(sys.argv[1]):
    name, sup, cg = line.split()
    pids = set()
    for root, _, files in os.walk(cg):
        if "cgroup.procs" in files:
            pids |= {int(p) for p in open(os.path.join(root, "cgroup.procs")).read().split()}
    sup = int(sup)
    procs = []
    for p in sorted(pids - {sup}):
        try:
            rss, ps = rollup(p)
            procs.append({"pid": p, "comm": comm(p), "rss": rss, "pss": ps})
        except (OSError, KeyError):
            pass  # gone meanwhile, or a kernel thread
    assert procs, f"{name}: no process in {cg}"
    def rd(f):
        return open(os.path.join(cg, f)).read()
    stat = dict(l.split() for l in rd("memory.stat").splitlines())
    out["vpses"].append({
        "name": name,
        "guest": procs,
        "supervisor": {"pid": sup, "pss": pss(sup), "in_cgroup": sup in pids},
        "cg_usage_kib": int(rd("memory.usage_in_bytes")) // 1024,
        "cg_rss_kib": int(stat.get("total_rss", 0)) // 1024,
        "cg_cache_kib": int(stat.get("total_cache", 0)) // 1024,
    })
out["lxcfs_pss"] = pss(int(sys.argv[2]))
out["croftd_pss"] = pss(int(sys.argv[3]))
json.dump(out, sys.stdout)
EOF

    sync
    sleep 1
    pool_used >"$D/pool_after"
    : >"$D/qgroups"
    for ((i = 1; i <= N_DENSE; i++)); do
        echo "d$i $(qgroup_of "$pool/containers/d$i/rootfs")" >>"$D/qgroups"
    done

    # Deleting booted Debian VPSes, whose disks have data of their own: a
    # delete that waited for the btrfs cleaner paid for each disk's cleanup.
    log "density: deleting the $N_DENSE Debian VPSes one after another"
    local t0 t1
    t0=$EPOCHREALTIME
    for ((i = 1; i <= N_DENSE; i++)); do
        quiet croft delete --force "d$i" || die "croft delete --force d$i failed (last output: $(logtail))"
    done
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >"$D/delete_seq"
}

# --------------------------------------------------------------------------
# Set up, run, report, clean up.
# --------------------------------------------------------------------------
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    log "cleaning up"
    if [ -n "${CROFTD_PID:-}" ] && kill -0 "$CROFTD_PID" 2>/dev/null; then
        local names
        names=$(vps_list 2>/dev/null)
        if [ -n "$names" ]; then
            # Several at once: after a failed bulk pass there may be many.
            xargs -P 4 -n 1 "$BIN_DIR/croft" --socket "$RUN/croftd.sock" delete --force <<<"$names" >/dev/null 2>&1 ||
                log "croft delete --force of some VPS failed"
        fi
        kill "$CROFTD_PID" 2>/dev/null
        wait "$CROFTD_PID" 2>/dev/null
    fi
    # Supervisors that survived (only ours: their pid files are in our run dir).
    local f pid
    for f in "$RUN"/vps/*/supervisor.pid; do
        [ -r "$f" ] || continue
        pid=$(<"$f")
        if grep -qs croft-supervisor "/proc/$pid/cmdline" && grep -qs "$RUN" "/proc/$pid/cmdline"; then
            log "killing leftover supervisor $pid"
            kill -KILL "$pid"
        fi
    done
    # The lxcfs croftd started (it outlives croftd, like the supervisors).
    if [ -r "$RUN/lxcfs.pid" ]; then
        pid=$(<"$RUN/lxcfs.pid")
        if grep -qs "$RUN" "/proc/$pid/cmdline"; then
            kill "$pid"
            for ((f = 0; f < 50; f++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    # Our cgroups (croft's prefix): any process still in them is a VPS's.
    local d
    for d in $(find /sys/fs/cgroup -maxdepth 6 -type d -name "$TAG*" 2>/dev/null); do
        for f in $(find "$d" -name cgroup.procs); do
            for pid in $(<"$f"); do kill -KILL "$pid" 2>/dev/null; done
        done
    done
    sleep 0.2
    for d in $(find /sys/fs/cgroup -maxdepth 6 -type d -name "$TAG*" 2>/dev/null); do
        find "$d" -depth -type d -exec rmdir {} + || log "cannot remove cgroup $d"
    done
    # The pool (a loop-file btrfs with autoclear: unmounting frees the loop
    # device), the lxcfs mount, anything else croftd left under $WORK.
    if [ -n "${WORK:-}" ] && grep -q " $WORK" /proc/self/mountinfo; then
        local m
        for m in $(awk -v w="$WORK" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r); do
            umount "$m" 2>/dev/null || umount -l "$m"
        done
    fi
    if [ -n "${WORK:-}" ]; then
        local dev
        for dev in $(losetup -j "$WORK/state/disks/default.img" -O NAME -n 2>/dev/null); do
            losetup -d "$dev"
        done
    fi
    if [ -n "${RAW_OUT:-}" ] && [ -d "$WORK/bulk" ]; then
        mkdir -p "$RAW_OUT" && cp -r "$WORK/bulk" "$WORK/dense" "$WORK/cmd.log" "$WORK/croftd.log" "$RAW_OUT"/ 2>/dev/null
    fi
    [ -n "${WORK:-}" ] && [ -d "$WORK" ] && rm -rf --one-file-system "$WORK"
    # croftd raises per-user kernel limits (inotify) at start: put back
    # what the host had.
    local saved
    for saved in "${SAVED_SYSCTLS[@]}"; do
        echo "${saved#*=}" >"${saved%%=*}" 2>/dev/null || log "cannot restore ${saved%%=*}"
    done
    # Verify: nothing of ours is left.
    local left=0
    [ "$(grep -c "$TAG" /proc/self/mountinfo)" = 0 ] || { log "LEFT: mounts"; left=1; }
    [ -z "$(find /sys/fs/cgroup -maxdepth 6 -iname "$TAG*")" ] || { log "LEFT: cgroups"; left=1; }
    [ -z "$(losetup -a | grep "$TAG")" ] || { log "LEFT: loop devices"; left=1; }
    [ ! -e "${WORK:-/nonexistent}" ] || { log "LEFT: $WORK"; left=1; }
    if pgrep -f "croft-supervisor $RUN" >/dev/null || pgrep -f "$WORK/" >/dev/null; then
        log "LEFT: processes"
        left=1
    fi
    [ "$left" = 0 ] && log "clean: no mounts, cgroups, loop devices, files or processes of $TAG left"
    exit "$rc"
}

main() {
    while [ $# -gt 0 ]; do
        case $1 in
        --build) BUILD=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument $1 (try --help)" ;;
        esac
        shift
    done
    [ "$(id -u)" = 0 ] || die "must run as root"
    local t
    for t in N_BULK CONCURRENCY N_DENSE; do
        [[ ${!t} =~ ^[1-9][0-9]*$ ]] || die "$t must be a positive integer, not '${!t}'"
    done
    for t in unshare setsid python3 tar xargs btrfs losetup; do
        command -v "$t" >/dev/null || die "$t is missing"
    done
    if [ "$BUILD" = 1 ]; then
        (cd "$REPO" && cargo build --release)
        BIN_DIR=${BIN_DIR:-$REPO/target/release}
    fi
    if [ -z "${BIN_DIR:-}" ]; then
        BIN_DIR=$REPO/target/debug
        [ -x "$REPO/target/release/croftd" ] && BIN_DIR=$REPO/target/release
    fi
    for t in croftd croft croft-supervisor; do
        [ -x "$BIN_DIR/$t" ] || die "$BIN_DIR/$t not found (build it, or pass --build)"
    done

    TAG=croft-bench-$$
    WORK=/tmp/$TAG
    RUN=$WORK/run
    SAVED_SYSCTLS=()
    local f
    for f in /proc/sys/fs/inotify/max_user_instances /proc/sys/fs/inotify/max_user_watches; do
        SAVED_SYSCTLS+=("$f=$(cat "$f")")
    done
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -m 0711 "$WORK" # VPS roots must traverse it to reach their rootfs
    mkdir -p "$RUN"
    : >"$WORK/cmd.log"

    log "binaries: $BIN_DIR; N_BULK=$N_BULK, CONCURRENCY=$CONCURRENCY, N_DENSE=$N_DENSE, IDLE=$IDLE, CROFT_NETWORK=$CROFT_NETWORK"
    local started=$SECONDS
    # The tarball first: debootstrap needs the network croftd's namespace
    # does not have, and a failure here costs no VPS.
    rootfs_tarball

    cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$RUN"
cgroup_prefix = "$TAG"
storage_size = "$STORAGE_SIZE"
log_level = "warn"
EOF
    if [ "$CROFT_NETWORK" = 1 ]; then
        printf '[network]\nipv4 = "10.87.0.1/16"\n' >>"$WORK/croftd.toml"
    else
        printf '[network]\nenabled = false\n' >>"$WORK/croftd.toml"
    fi
    LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
    if python3 -c "import sys; sys.exit(0 if float('$LOAD_BEFORE') > 0.5 else 1)"; then
        log "warning: load average is $LOAD_BEFORE; other work on this machine will skew the timings"
    fi
    # setsid: a Ctrl-C of the script must not reach croftd, which the EXIT
    # trap still needs to delete the VPSes.
    unshare -n -- setsid "$BIN_DIR/croftd" -c "$WORK/croftd.toml" >"$WORK/croftd.log" 2>&1 &
    CROFTD_PID=$!
    for ((t = 0; t < 100; t++)); do
        [ -S "$RUN/croftd.sock" ] && croft list >/dev/null 2>&1 && break
        kill -0 "$CROFTD_PID" 2>/dev/null || die "croftd exited: $(cat "$WORK/croftd.log")"
        sleep 0.1
    done
    croft list >/dev/null || die "croftd does not answer on $RUN/croftd.sock"

    bulk
    density

    export LOAD_BEFORE BIN_DIR N_BULK CONCURRENCY N_DENSE IDLE LXD_RATE CROFT_NETWORK
    export DURATION=$((SECONDS - started))
    report
}

report() {
    python3 - "$WORK" <<'EOF'
import json, os, statistics, sys
work = sys.argv[1]
env = os.environ
nb, conc, nd, lxd = int(env["N_BULK"]), int(env["CONCURRENCY"]), int(env["N_DENSE"]), float(env["LXD_RATE"])
B, D = os.path.join(work, "bulk"), os.path.join(work, "dense")
def span(path):
    a, b = map(float, open(path).read().split())
    return b - a
def num(path):
    return int(open(path).read().split()[0])

net = "with" if env["CROFT_NETWORK"] == "1" else "without"
print(f"\nBulk create and delete: {nb} busybox VPSes per pass, {net} network "
      f"(croft from {env['BIN_DIR']})\n")
print("| operation | VPSes | total s | VPS/s | ÷ LXD published |")
print("|---|---:|---:|---:|---:|")
for what, f, create in (
    ("`croft launch busybox NAME`, one after another", "create_seq", True),
    (f"`croft launch busybox NAME`, {conc} client{'s' if conc > 1 else ''} at once", "create_par", True),
    ("`croft delete --force NAME` (stop + delete), one after another", "delete_seq", False),
    (f"`croft delete --force NAME`, {conc} client{'s' if conc > 1 else ''} at once", "delete_par", False),
):
    s = span(os.path.join(B, f))
    ratio = f"{nb / s / lxd:.1f}×" if create else "—"
    print(f"| {what} | {nb} | {s:.2f} | **{nb / s:.1f}** | {ratio} |")
print(f"| LXD bulk launch: *published figure, not measured here* | — | — | ~{lxd:g} | 1.0 |")
print("\nA launch returns once the VPS's init runs (disk clone, identity, cgroups, "
      "network, start). LXD cannot run on this host under its cgroup rule; its rate "
      "is quoted, so the ratio compares different machines.")

m = json.load(open(os.path.join(D, "mem.json")))
V = m["vpses"]
n = len(V)
guest = [sum(p["pss"] for p in v["guest"]) for v in V]
sup = [v["supervisor"]["pss"] for v in V]
procs = [len(v["guest"]) for v in V]
cg = [v["cg_usage_kib"] for v in V]
cgc = [v["cg_cache_kib"] for v in V]
before, after = num(os.path.join(D, "croftd_rss_before")), num(os.path.join(D, "croftd_rss_after"))
growth = (after - before) / nd
croft_add = statistics.mean(sup) + max(growth, 0)
per_vps = statistics.mean(guest) + croft_add
ma0, ma1 = num(os.path.join(D, "memavail_before")), num(os.path.join(D, "memavail_after"))
drop = (ma0 - ma1) / nd
pu0, pu1 = num(os.path.join(D, "pool_before")), num(os.path.join(D, "pool_after"))
q = [l.split() for l in open(os.path.join(D, "qgroups")) if l.strip()]
excl = [int(r[2]) for r in q if len(r) >= 3]
iq = open(os.path.join(D, "image_qgroup")).read().split()
not_running = [l.split(None, 2) for l in open(os.path.join(D, "not_running")) if l.strip()]
run_at = [l.split() for l in open(os.path.join(D, "running_at")) if l.strip()]
t_launch = span(os.path.join(D, "launch"))
t0 = float(open(os.path.join(D, "launch")).read().split()[0])
t_all = max(float(r[1]) for r in run_at) - t0
mib = lambda k: f"{k / 1024:.1f} MiB"

print(f"\nDensity: {nd} idle Debian bookworm VPSes (minbase + systemd, dbus, sshd), "
      f"{net} network, {env['IDLE']} s after all reached `running`; per VPS, "
      f"mean (min–max)\n")
print("| per VPS | KiB | |")
print("|---|---:|---|")
def row(label, xs, note=""):
    print(f"| {label} | {statistics.mean(xs):.0f} ({min(xs)}–{max(xs)}) | {note} |")
row(f"guest PSS (every process of its memory cgroup; {statistics.mean(procs):.1f} processes)", guest, mib(statistics.mean(guest)))
rss = [sum(p["rss"] for p in v["guest"]) for v in V]
row("reference: guest RSS (a page its processes share counts once per process)", rss, mib(statistics.mean(rss)))
row("croft-supervisor PSS", sup, "in the VPS cgroup" if all(v["supervisor"]["in_cgroup"] for v in V) else "outside the VPS cgroup")
print(f"| croftd RSS growth / VPS ({before} → {after} KiB) | {growth:.0f} | |")
print(f"| **croft's own share** (supervisor PSS + croftd growth) | **{croft_add:.0f}** | {mib(croft_add)} |")
print(f"| **host memory per VPS** (guest PSS + croft's share) | **{per_vps:.0f}** | {mib(per_vps)} |")
row("reference: VPS cgroup charge `memory.usage_in_bytes` (includes page cache)", cg, f"of which cache {statistics.mean(cgc):.0f}")
print(f"| reference: MemAvailable drop / VPS ({ma0} → {ma1} KiB) | {drop:.0f} | host-wide: anonymous and kernel memory (mapped file pages still count as available); noisy if other work runs |")
print()
print("| disk per extra VPS | bytes | |")
print("|---|---:|---|")
print(f"| pool used (statvfs) after − before, / {nd} | {(pu1 - pu0) / nd:.0f} | {(pu1 - pu0) / nd / 2**20:.1f} MiB |")
if excl:
    print(f"| subvolume exclusive (qgroup), mean (min–max) | {statistics.mean(excl):.0f} ({min(excl)}–{max(excl)}) | {statistics.mean(excl) / 2**20:.2f} MiB |")
if len(iq) >= 1:
    print(f"| reference: the image itself (qgroup referenced) | {iq[0]} | {int(iq[0]) / 2**20:.0f} MiB, shared by every VPS |")
print()
print("| how many such VPSes fit in memory | VPSes |")
print("|---|---:|")
print(f"| MemAvailable before the launches ({ma0 / 2**20:.1f} GiB) ÷ host memory per VPS | **{int(ma0 / per_vps)}** |")
cons = statistics.mean(cg) + croft_add
print(f"| MemAvailable before ÷ (VPS cgroup charge + croft's share), i.e. counting each VPS's page cache ({cons / 1024:.1f} MiB) | {int(ma0 / cons)} |")
if drop > 0:
    print(f"| MemAvailable before ÷ measured MemAvailable drop per VPS | {int(ma0 / drop)} |")
print(f"\nPer host, not per VPS: lxcfs {m['lxcfs_pss']} KiB PSS, croftd {m['croftd_pss']} KiB PSS.")
print(f"Launching the {nd} took {t_launch:.1f} s; all {len(run_at)} reached `running` "
      f"{t_all:.1f} s after the first launch.")
if not_running:
    print("Not running (measured all the same): " +
          "; ".join(f"{r[0]} '{r[1].replace('_', ' ')}' failed units: {r[2].strip() if len(r) > 2 else 'none'}" for r in not_running))
else:
    print(f"Every one of the {nd} reached `running`.")
print(f"Guest processes (first VPS): " + ", ".join(f"{p['comm']} {p['pss']}" for p in V[0]["guest"]))
dd = span(os.path.join(D, "delete_seq"))
print(f"\nDeleting the {nd} booted Debian VPSes (`croft delete --force`: stop and delete), "
      f"one after another: {dd:.2f} s, **{dd / nd * 1000:.0f} ms** a delete.")
print(f"\nLoad average (1 min) before: {env['LOAD_BEFORE']}, after: {open('/proc/loadavg').read().split()[0]}; "
      f"whole run {env['DURATION']} s.")
EOF
}

main "$@"
