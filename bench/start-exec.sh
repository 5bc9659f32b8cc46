#!/usr/bin/env bash
# croft side by side with its peers, in one run, on the same busybox rootfs:
#   1. start latency   croft start        vs crun run -d / lxc-start -d (detached,
#                      return once the container's init runs) and, for the whole
#                      lifecycle of an isolated /bin/true (teardown included),
#                      crun run, lxc-execute, runc run, systemd-nspawn and
#                      podman run --rm
#   2. exec round trip croft exec -- true vs crun exec / lxc-attach -- /bin/true
#   3. memory          PSS of the per-VPS croft-supervisor processes plus croftd's
#                      RSS growth, for VPSES running VPSes; LXC's per-container
#                      monitor process for comparison
#
# Usage: bash bench/start-exec.sh [--build] [--help]
#   --build     run `cargo build --release` first (and use target/release)
# Environment:
#   N=20        timed runs per measurement (the median is reported)
#   WARMUP=2    untimed runs of each measurement before the timed ones
#   VPSES=20    running VPSes (and LXC containers) for the memory measurement
#   GAPS="0 0.1" the timing passes to make: seconds of idle pause before each
#               timed command. 0 = back to back (a busy host); 0.1 = after an
#               idle gap, where the first cgroup attach pays a full RCU grace
#               period (see docs/benchmarks.md)
#   BIN_DIR     where croftd, croft and croft-supervisor are
#               (default: target/release if built, else target/debug)
#   RAW_OUT     if set, copy the raw timings (one directory) there
#
# crun, LXC (and uidmap, busybox-static) must be installed. runc, nspawn
# (systemd-container) and podman are installed with apt-get if missing; one
# that cannot be installed, or whose first run fails, gets a row saying so and
# the run goes on without it.
#
# Must run as root. Rules it keeps (see DESIGN.md "Rules for anything that runs
# here" and PEERS.md): croftd runs in a network namespace of its own
# (`unshare -n`); the peers run in a private mount namespace where
# /sys/fs/cgroup/unified is unmounted (crun: --cgroup-manager=disabled;
# podman: --cgroups=disabled) and LXC uses relative cgroups restricted to the
# memory controller, beneath a sub-cgroup of this script's own memory cgroup.
# runc runs inside an outer user namespace (ids 0.. -> 100000..), where it is
# rootless and cannot create a cgroup anywhere. nspawn (--keep-unit) creates
# its payload and supervisor cgroups beneath the name=systemd cgroup it runs
# in (and chowns payload to the guest's root): it runs in a name=systemd
# sub-cgroup of this script's own, never at the hierarchy root. podman keeps
# its storage, run, tmp and network config dirs in the work dir. Everything
# it creates carries the tag croft-bench-<pid> and is removed by the EXIT
# trap, even on failure (LXC's lock dir for our lxcpath, crun's state of
# podman's containers, and /run/systemd/nspawn if nspawn made it, included).
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-20}
WARMUP=${WARMUP:-2}
VPSES=${VPSES:-20}
GAPS=${GAPS:-0 0.1}
BUILD=0

die() { echo "start-exec: error: $*" >&2; exit 1; }
log() { echo "start-exec: $*" >&2; }
# skip LABEL REASON: leave a peer out of the run (its row gives the reason).
skip() {
    log "leaving out $1: $2"
    mkdir -p "$WORK/skip"
    echo "$2" >"$WORK/skip/$1"
}
skipped() { [ -e "$WORK/skip/$1" ]; }

# --------------------------------------------------------------------------
# Inner part: runs in the private mount namespace (see `main` below).
# --------------------------------------------------------------------------
inner() {
    cd /
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    # LXC insists on newuidmap, which reads /etc/subuid (empty on the host):
    # give it one, in this mount namespace only. Likewise a global lxc.conf
    # that restricts LXC to the memory controller (lxc.cgroup.use is a system
    # key, not a container key).
    mount --bind "$WORK/etc/subid" /etc/subuid
    mount --bind "$WORK/etc/subid" /etc/subgid
    mount --bind "$WORK/etc/lxc" /etc/lxc
    # LXC creates its relative cgroups beneath the cgroup of the process that
    # starts it, nspawn (--keep-unit) its payload and supervisor cgroups
    # beneath its own name=systemd cgroup: move this shell (and so every peer)
    # into sub-cgroups of our own memory and name=systemd cgroups.
    echo "$BASHPID" >"$PEER_CG/cgroup.procs"
    echo "$BASHPID" >"$PEER_SD/cgroup.procs"

    local crun=(crun --root "$WORK/crun-state" --cgroup-manager=disabled)
    local lxcp="$WORK/lxc"
    # runc: the outer user namespace (the same id map as the other peers') is
    # the container's; runc runs as its root (-S 0 -G 0), so rootless (cgroup
    # errors ignored), and every cgroup dir is owned by host root, so it
    # creates none. (Without -S 0 runc would be uid 65534 there and refuse
    # the bundle: "rootless container requires user namespaces".)
    local userns=(unshare --map-users=100000,0,65536 --map-groups=100000,0,65536 -U -S 0 -G 0 --)
    local runc=("${userns[@]}" runc --root "$WORK/runc-state")
    local nspawn=(systemd-nspawn -q --register=no --keep-unit --private-network
        --private-users=100000:65536 --machine="$TAG" -D "$WORK/nspawn/rootfs")
    # podman: its state in the work dir (without --network-config-dir it
    # creates /etc/cni/net.d/cni.lock, even with --network=none), but for
    # crun's state of its containers, /run/crun/<id> (crun's default), which
    # --rm removes and the EXIT trap checks. (With --runtime-flag
    # root=DIR, podman's removal left that state behind: not a fair run.)
    local podman=(podman --root "$WORK/podman/root" --runroot "$WORK/podman/run"
        --tmpdir "$WORK/podman/tmp" --network-config-dir "$WORK/podman/net"
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend=none)
    local podman_run=(run --rm --cgroups=disabled --network=none
        --ulimit nofile=20000:20000 --ulimit nproc=4096:4096
        --uidmap 0:100000:65536 --gidmap 0:100000:65536 --rootfs "$WORK/podman/rootfs")
    CRUN_RUNNING=() LXC_RUNNING=()
    trap inner_cleanup EXIT

    # timed LABEL CMD...: append "t0 t1" (EPOCHREALTIME) of one run to
    # $T/LABEL, after a pause of $gap seconds. The command must succeed; its
    # output goes to $WORK/cmd.log.
    timed() {
        local label=$1 t0 t1
        shift
        [ "$gap" = 0 ] || sleep "$gap"
        t0=$EPOCHREALTIME
        "$@" </dev/null >>"$WORK/cmd.log" 2>&1 || die "$label: '$*' failed (see $WORK/cmd.log)"
        t1=$EPOCHREALTIME
        if [ "$RECORD" = 1 ]; then echo "$t0 $t1" >>"$T/$label"; fi
    }
    quiet() { "$@" </dev/null >>"$WORK/cmd.log" 2>&1; }

    # The peers this script installs itself (runc, nspawn, podman) never fail
    # the run: one that fails is dropped, and its row says why.
    # ptimed LABEL CMD...: as `timed`, but a failure drops LABEL.
    ptimed() {
        local label=$1 t0 t1 rc=0
        shift
        [ "$gap" = 0 ] || sleep "$gap"
        t0=$EPOCHREALTIME
        "$@" </dev/null >"$WORK/peer.log" 2>&1 || rc=$?
        t1=$EPOCHREALTIME
        cat "$WORK/peer.log" >>"$WORK/cmd.log"
        if [ "$rc" != 0 ]; then
            skip "$label" "failed in round $((i + 1)) of the ${gap} s pass: $(why "$rc")"
        elif [ "$RECORD" = 1 ]; then
            echo "$t0 $t1" >>"$T/$label"
        fi
    }
    # probe LABEL CMD...: one untimed run first; a failure drops LABEL.
    probe() {
        local label=$1 rc=0
        shift
        skipped "$label" && return 0
        log "checking that $label runs here"
        "$@" </dev/null >"$WORK/peer.log" 2>&1 || rc=$?
        cat "$WORK/peer.log" >>"$WORK/cmd.log"
        [ "$rc" = 0 ] || skip "$label" "could not run here: $(why "$rc")"
    }
    # why RC: the last line the failed peer printed.
    why() {
        local last
        last=$(grep . "$WORK/peer.log" | tail -1 | cut -c1-300) || true
        echo "exit status $1${last:+: $last}"
    }
    probe runc_run_true "${runc[@]}" run --bundle "$WORK/runc/bundle-true" bench-true
    probe nspawn_true "${nspawn[@]}" /bin/true
    probe podman_run_true "${podman[@]}" "${podman_run[@]}" /bin/true

    local gap i k tool total=$((WARMUP + N)) s=bench-start
    for gap in $GAPS; do
        T="$WORK/times/$gap"
        mkdir -p "$T"

        # ---- 1. start latency ----------------------------------------------
        log "start latency, gap ${gap}s: $WARMUP warm-up + $N timed rounds, interleaved"
        for ((i = 0; i < total; i++)); do
            RECORD=$((i >= WARMUP ? 1 : 0))
            # Rotate the order each round so no tool always runs first.
            local order=(croft croft_info crun_d lxc_d crun_true lxc_true)
            for tool in runc_run_true userns_true nspawn_true podman_run_true; do
                # userns_true only explains runc's row.
                skipped "$tool" || { [ "$tool" = userns_true ] && skipped runc_run_true; } ||
                    order+=("$tool")
            done
            k=$((i % ${#order[@]}))
            order=("${order[@]:k}" "${order[@]:0:k}")
            for tool in "${order[@]}"; do
                case $tool in
                croft)
                    timed croft_start croft start "$s"
                    quiet croft stop --force "$s" || die "croft stop --force $s failed"
                    ;;
                croft_info) # reference: the CLI -> croftd API round trip alone
                    timed croft_info croft info "$s"
                    ;;
                crun_d)
                    CRUN_RUNNING+=(bench-d)
                    timed crun_run_d "${crun[@]}" run -d --bundle "$WORK/crun/bundle-sleep" bench-d
                    quiet "${crun[@]}" delete -f bench-d || die "crun delete -f failed"
                    CRUN_RUNNING=()
                    ;;
                lxc_d)
                    LXC_RUNNING+=(bench-d)
                    timed lxc_start_d lxc-start -d -n bench-d -P "$lxcp"
                    quiet lxc-stop -k -n bench-d -P "$lxcp" || die "lxc-stop failed"
                    LXC_RUNNING=()
                    ;;
                crun_true)
                    timed crun_run_true "${crun[@]}" run --bundle "$WORK/crun/bundle-true" bench-true
                    ;;
                lxc_true)
                    timed lxc_execute_true lxc-execute -n bench-true -P "$lxcp" -- /bin/true
                    ;;
                runc_run_true)
                    ptimed runc_run_true "${runc[@]}" run --bundle "$WORK/runc/bundle-true" bench-true
                    ;;
                userns_true) # reference: runc's outer user namespace alone
                    ptimed userns_true "${userns[@]}" /bin/true
                    ;;
                nspawn_true)
                    ptimed nspawn_true "${nspawn[@]}" /bin/true
                    ;;
                podman_run_true)
                    ptimed podman_run_true "${podman[@]}" "${podman_run[@]}" /bin/true
                    ;;
                esac
            done
        done

        # ---- 2. exec round trip --------------------------------------------
        log "exec round trip, gap ${gap}s: $WARMUP warm-up + $N timed rounds, interleaved"
        quiet croft start "$s" || die "croft start $s failed"
        CRUN_RUNNING+=(bench-exec)
        quiet "${crun[@]}" run -d --bundle "$WORK/crun/bundle-sleep" bench-exec || die "crun run -d failed"
        LXC_RUNNING+=(bench-exec)
        quiet lxc-start -d -n bench-exec -P "$lxcp" || die "lxc-start failed"
        for ((i = 0; i < total; i++)); do
            RECORD=$((i >= WARMUP ? 1 : 0))
            local order=(croft crun lxc)
            k=$((i % 3))
            order=("${order[@]:k}" "${order[@]:0:k}")
            for tool in "${order[@]}"; do
                case $tool in
                croft) timed croft_exec croft exec "$s" -- true ;;
                crun) timed crun_exec "${crun[@]}" exec bench-exec /bin/true ;;
                lxc) timed lxc_attach lxc-attach -n bench-exec -P "$lxcp" -- /bin/true ;;
                esac
            done
        done
        quiet croft stop --force "$s" || die "croft stop --force $s failed"
        quiet "${crun[@]}" delete -f bench-exec || die "crun delete -f failed"
        CRUN_RUNNING=()
        quiet lxc-stop -k -n bench-exec -P "$lxcp" || die "lxc-stop failed"
        LXC_RUNNING=()
    done

    # ---- 3. memory per running VPS -----------------------------------------
    log "memory: launching $VPSES busybox VPSes"
    local M="$WORK/mem"
    mkdir -p "$M"
    sleep 1
    rss_kib "$CROFTD_PID" >"$M/croftd_rss_before"
    for ((i = 1; i <= VPSES; i++)); do
        quiet croft launch busybox "mem$i" || die "croft launch busybox mem$i failed"
    done
    sleep 2 # let every init settle (busybox rcS, the console shell)
    rss_kib "$CROFTD_PID" >"$M/croftd_rss_after"
    : >"$M/supervisors"
    for ((i = 1; i <= VPSES; i++)); do
        local pidf="$RUN/vps/mem$i/supervisor.pid" pid
        [ -r "$pidf" ] || die "no $pidf"
        pid=$(<"$pidf")
        grep -q croft-supervisor "/proc/$pid/cmdline" || die "pid $pid in $pidf is not a croft-supervisor"
        echo "$pid $(smaps "$pid")" >>"$M/supervisors"
    done
    croft list --format json >"$M/croft-list.json"

    log "memory: starting $VPSES LXC containers for comparison"
    : >"$M/lxc_monitors"
    for ((i = 1; i <= VPSES; i++)); do
        LXC_RUNNING+=("mem$i")
        quiet lxc-start -d -n "mem$i" -P "$lxcp" || die "lxc-start mem$i failed"
    done
    sleep 2
    for ((i = 1; i <= VPSES; i++)); do
        local init mon
        init=$(lxc-info -n "mem$i" -P "$lxcp" -p -H)
        mon=$(awk '/^PPid:/{print $2}' "/proc/$init/status")
        grep -q 'lxc monitor' "/proc/$mon/cmdline" || die "parent $mon of mem$i's init is not an lxc monitor"
        echo "$mon $(smaps "$mon")" >>"$M/lxc_monitors"
    done
    for ((i = 1; i <= VPSES; i++)); do
        quiet lxc-stop -k -n "mem$i" -P "$lxcp" || die "lxc-stop mem$i failed"
    done
    LXC_RUNNING=()
    # croft's VPSes are deleted by the outer EXIT trap.
}

inner_cleanup() {
    local rc=$? c
    for c in "${CRUN_RUNNING[@]}"; do
        crun --root "$WORK/crun-state" --cgroup-manager=disabled delete -f "$c" >/dev/null 2>&1 || true
    done
    for c in "${LXC_RUNNING[@]}"; do
        lxc-stop -k -n "$c" -P "$WORK/lxc" >/dev/null 2>&1 || true
    done
    exit "$rc"
}

# VmRSS of a process in KiB.
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
# "rss pss private" of a process in KiB, from smaps_rollup.
smaps() {
    awk '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_(Clean|Dirty):/{u+=$2} END{print r, p, u}' \
        "/proc/$1/smaps_rollup"
}

# --------------------------------------------------------------------------
# Outer part: set up, run the inner part, report, clean up.
# --------------------------------------------------------------------------
croft() { "$BIN_DIR/croft" --socket "$RUN/croftd.sock" "$@"; }

# The cgroup path of this process in the hierarchy mounted at $1.
own_cgroup() {
    local opts
    opts=$(awk -v m="$1" '$5==m{for(i=7;$i!="-";i++);print $(i+3)}' /proc/self/mountinfo)
    local ctrl
    for ctrl in ${opts//,/ }; do
        case $ctrl in rw | ro | relatime | noatime | nosuid | nodev | noexec | xattr | release_agent=* | clone_children) ;;
        *)
            awk -F: -v c="$ctrl" '{n=split($2,a,","); for(j=1;j<=n;j++) if(a[j]==c) print $3}' /proc/self/cgroup
            return
            ;;
        esac
    done
}

# want_peer LABEL COMMAND PACKAGE: apt-get install PACKAGE if COMMAND is
# missing; if that fails, LABEL is left out (its row says why), not the run.
want_peer() {
    local label=$1 cmd=$2 pkg=$3 out
    command -v "$cmd" >/dev/null && return 0
    log "$cmd is missing: apt-get install $pkg"
    if ! out=$(apt_install "$pkg" 2>&1); then
        log "apt-get install $pkg failed; apt-get update, then once more"
        out=$({ apt-get update && apt_install "$pkg"; } 2>&1) || true
    fi
    command -v "$cmd" >/dev/null ||
        skip "$label" "not installed (apt-get install $pkg failed: $(grep . <<<"$out" | tail -1 | cut -c1-200))"
}
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y --no-install-recommends "$@" </dev/null
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    log "cleaning up"
    if [ -n "${CROFTD_PID:-}" ] && kill -0 "$CROFTD_PID" 2>/dev/null; then
        local name
        for name in $(croft list --format json 2>/dev/null |
            python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin)))' 2>/dev/null); do
            croft delete --force "$name" >/dev/null 2>&1 || log "croft delete --force $name failed"
        done
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
    # Our cgroups: croft's prefix and the peers' sub-cgroups. Any process
    # still in them is one this run started (a VPS, a peer container, its
    # monitor, systemd-nspawn, conmon).
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
    if grep -q " $WORK" /proc/self/mountinfo; then
        log "unmounting leftover mounts under $WORK"
        awk -v w="$WORK" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    fi
    if [ -n "${RAW_OUT:-}" ] && [ -d "$WORK/times" ]; then
        mkdir -p "$RAW_OUT" && cp -r "$WORK/times" "$WORK/mem" "$RAW_OUT"/ 2>/dev/null
    fi
    [ -n "${WORK:-}" ] && [ -d "$WORK" ] && rm -rf --one-file-system "$WORK"
    # LXC's lock files for our lxcpath, and nspawn's run dir if it made it
    # (only the empty dirs: a concurrent nspawn's files stay).
    [ -n "${WORK:-}" ] && rm -rf "/run/lxc/lock$WORK"
    [ "${LXC_LOCKDIR_OURS:-0}" = 1 ] && rmdir "/run/lxc/lock${WORK%/*}" 2>/dev/null
    if [ "${NSPAWN_RUNDIR_OURS:-0}" = 1 ] && [ -d /run/systemd/nspawn ]; then
        find /run/systemd/nspawn -depth -type d -empty -delete
    fi
    # crun's state of podman's containers (ours: their rootfs is in $WORK).
    for d in $(grep -ls "\"$WORK/" /run/crun/*/config.json 2>/dev/null); do
        rm -rf "${d%/config.json}"
    done
    [ "${CRUN_RUNDIR_OURS:-0}" = 1 ] && rmdir /run/crun 2>/dev/null
    # Verify: nothing of ours is left.
    local left=0
    [ "$(grep -c "$TAG" /proc/self/mountinfo)" = 0 ] || { log "LEFT: mounts"; left=1; }
    [ -z "$(find /sys/fs/cgroup -maxdepth 6 -iname "$TAG*")" ] || { log "LEFT: cgroups"; left=1; }
    [ -z "$(losetup -a | grep "$TAG")" ] || { log "LEFT: loop devices"; left=1; }
    [ ! -e "/run/lxc/lock$WORK" ] || { log "LEFT: /run/lxc/lock$WORK"; left=1; }
    [ -z "$(grep -ls "\"$WORK/" /run/crun/*/config.json 2>/dev/null)" ] || { log "LEFT: podman's containers in /run/crun"; left=1; }
    if [ "${NSPAWN_RUNDIR_OURS:-0}" = 1 ] && [ -e /run/systemd/nspawn ]; then
        log "LEFT: /run/systemd/nspawn (not there before this run; not empty now)"
        left=1
    fi
    [ ! -e "${WORK:-/nonexistent}" ] || { log "LEFT: $WORK"; left=1; }
    if pgrep -f "croft-supervisor $RUN" >/dev/null || pgrep -f "$WORK/" >/dev/null; then
        log "LEFT: processes: $(pgrep -af "$WORK/" | tr '\n' ';')"
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
    for t in crun lxc-start lxc-execute lxc-attach lxc-stop lxc-info newuidmap unshare python3 /bin/busybox; do
        command -v "$t" >/dev/null || die "$t is missing (apt-get install crun lxc uidmap busybox-static)"
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
    local memcg sdcg
    memcg=$(own_cgroup /sys/fs/cgroup/memory)
    [ -n "$memcg" ] || die "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory (this script is written for v1/hybrid hosts)"
    sdcg=$(own_cgroup /sys/fs/cgroup/systemd)
    [ -n "$sdcg" ] || die "no cgroup v1 name=systemd hierarchy at /sys/fs/cgroup/systemd (this script is written for v1/hybrid hosts)"
    PEER_CG=/sys/fs/cgroup/memory${memcg%/}/$TAG-peers
    PEER_SD=/sys/fs/cgroup/systemd${sdcg%/}/$TAG-peers
    NSPAWN_RUNDIR_OURS=0 # did nspawn's /run dir exist before us?
    [ -e /run/systemd/nspawn ] || NSPAWN_RUNDIR_OURS=1
    LXC_LOCKDIR_OURS=0
    [ -e "/run/lxc/lock${WORK%/*}" ] || LXC_LOCKDIR_OURS=1
    CRUN_RUNDIR_OURS=0
    [ -e /run/crun ] || CRUN_RUNDIR_OURS=1
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -m 0711 "$WORK" # VPS roots must traverse it to reach their rootfs
    mkdir -p "$WORK/etc/lxc" "$RUN"

    # The whole-lifecycle peers this script may install (or skip).
    want_peer runc_run_true runc runc
    want_peer nspawn_true systemd-nspawn systemd-container
    want_peer podman_run_true podman podman

    cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$RUN"
cgroup_prefix = "$TAG"
raise_host_limits = false
log_level = "warn"
EOF

    log "binaries: $BIN_DIR; N=$N, WARMUP=$WARMUP, VPSES=$VPSES, GAPS=\"$GAPS\""
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
    croft launch busybox bench-start --no-start >>"$WORK/cmd.log" 2>&1 ||
        die "croft launch busybox bench-start --no-start failed: $(tail -3 "$WORK/cmd.log")"

    # The peers' rootfs: copies of croft's busybox image, owned by ids
    # 100000.. (the peers map container root to host 100000), as croft
    # shifts its own copy into the VPS's range.
    # (The image is a subvolume of the btrfs pool, or a dir of the dir pool.)
    local img
    for img in "$WORK/state/storage-pools/default/images/busybox" "$WORK/state/images/busybox/rootfs" ""; do
        [ -d "$img/bin" ] && break
    done
    [ -n "$img" ] || die "no busybox image under $WORK/state (storage-pools/default/images/busybox or images/busybox/rootfs)"
    local p roots=()
    for p in crun lxc runc nspawn podman; do
        mkdir -p "$WORK/$p"
        cp -a "$img" "$WORK/$p/rootfs"
        roots+=("$WORK/$p/rootfs")
    done
    python3 - "${roots[@]}" <<'EOF'
import os, stat, sys
for top in sys.argv[1:]:
    paths = [top]
    for root, dirs, files in os.walk(top):
        paths += [os.path.join(root, n) for n in dirs + files]
    for p in paths:
        st = os.lstat(p)
        os.lchown(p, st.st_uid + 100000, st.st_gid + 100000)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(p, stat.S_IMODE(st.st_mode))  # chown clears set-id bits
EOF

    # crun bundles: `crun spec` defaults plus user and cgroup namespaces, the
    # same id mapping, no terminal, no cgroup resources.
    local b
    for b in true sleep; do
        mkdir -p "$WORK/crun/bundle-$b"
        (cd "$WORK/crun/bundle-$b" && crun spec)
        python3 - "$WORK/crun/bundle-$b/config.json" "$WORK/crun/rootfs" "$b" <<'EOF'
import json, sys
path, rootfs, kind = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"] if kind == "true" else ["/bin/sleep", "1000000"]
c["root"] = {"path": rootfs, "readonly": True}
l = c["linux"]
l["namespaces"] = [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"]]
l["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
l["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
l.pop("resources", None)
json.dump(c, open(path, "w"), indent=1)
EOF
    done

    # runc bundle: `runc spec` defaults with the same changes, but no user
    # namespace of its own: runc runs in an outer one holding that id map
    # (see inner). Its state dir belongs to that namespace's root.
    if ! skipped runc_run_true; then
        mkdir -p "$WORK/runc/bundle-true"
        (cd "$WORK/runc/bundle-true" && runc spec)
        python3 - "$WORK/runc/bundle-true/config.json" "$WORK/runc/rootfs" <<'EOF'
import json, sys
path, rootfs = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"] = {"path": rootfs, "readonly": True}
l = c["linux"]
l["namespaces"] = [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount", "cgroup"]]
l.pop("uidMappings", None)
l.pop("gidMappings", None)
l.pop("resources", None)
json.dump(c, open(path, "w"), indent=1)
EOF
        install -d -m 0700 -o 100000 -g 100000 "$WORK/runc-state"
    fi

    # LXC: unprivileged-style container (id map), relative cgroups, no
    # network, no AppArmor, no common.conf; one config per container name.
    echo 'root:100000:65536' >"$WORK/etc/subid"
    echo 'lxc.cgroup.use = memory' >"$WORK/etc/lxc/lxc.conf"
    : >"$WORK/etc/lxc/default.conf"
    local name names=(bench-true bench-d bench-exec)
    for ((t = 1; t <= VPSES; t++)); do names+=("mem$t"); done
    for name in "${names[@]}"; do
        mkdir -p "$WORK/lxc/$name"
        {
            echo "lxc.uts.name = $name"
            echo "lxc.rootfs.path = dir:$WORK/lxc/rootfs"
            echo "lxc.idmap = u 0 100000 65536"
            echo "lxc.idmap = g 0 100000 65536"
            echo "lxc.cgroup.relative = 1"
            echo "lxc.apparmor.profile = unconfined"
            echo "lxc.net.0.type = empty"
            echo "lxc.mount.auto = proc:mixed sys:mixed"
            echo "lxc.autodev = 1"
            echo "lxc.tty.max = 0"
            echo "lxc.log.file = $WORK/lxc/lxc.log"
            echo "lxc.log.level = ERROR"
            [ "$name" = bench-true ] || echo "lxc.init.cmd = /bin/sleep 1000000"
        } >"$WORK/lxc/$name/config"
    done
    mkdir -p "$PEER_CG" "$PEER_SD"

    export -f inner inner_cleanup rss_kib smaps croft die log skip skipped
    export WORK RUN TAG PEER_CG PEER_SD BIN_DIR CROFTD_PID N WARMUP VPSES GAPS
    unshare -m --propagation private -- bash -euo pipefail -c inner

    export LOAD_BEFORE
    report
}

report() {
    python3 - "$WORK" "$N" "$VPSES" <<'EOF'
import os, statistics, sys
work, n, vpses = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def ms(label):
    with open(os.path.join(T, label)) as f:
        xs = [(float(b) - float(a)) * 1000 for a, b in (l.split() for l in f if l.strip())]
    assert len(xs) == n, f"{label}: {len(xs)} runs, expected {n}"
    return xs

def skipped(label):
    p = os.path.join(work, "skip", label)
    if not os.path.exists(p):
        return None
    return open(p).read().strip().replace("|", "\\|")

def q(xs, p):
    xs = sorted(xs)
    return statistics.quantiles(xs, n=4)[0 if p == 25 else 2] if len(xs) > 1 else xs[0]

def table(title, base, rows, refs=()):
    print(f"\n{title} (median of {n} runs, ms; ratio = peer / croft)\n")
    print("| command | median ms | p25–p75 ms | ratio |")
    print("|---|---:|---:|---:|")
    b = statistics.median(ms(base[1]))
    for name, label in [base] + rows + list(refs):
        why = skipped(label)
        if label == "userns_true" and skipped("runc_run_true") is not None:
            continue  # it only explains runc's row
        if why is not None:
            print(f"| {name} | — | — | {why} |")
            continue
        xs = ms(label)
        m = statistics.median(xs)
        ratio = "1.00 (base)" if label == base[1] else "—" if (name, label) in refs else f"{m / b:.2f}"
        print(f"| {name} | {m:.1f} | {q(xs,25):.1f}–{q(xs,75):.1f} | {ratio} |")

for gap in sorted(os.listdir(os.path.join(work, "times")), key=float):
  T = os.path.join(work, "times", gap)
  when = "back to back" if float(gap) == 0 else f"after a {gap} s idle gap"
  table(f"Start latency, {when}", ("`croft start` (returns once init is exec'd)", "croft_start"), [
    ("`crun run -d` (returns once the container process runs)", "crun_run_d"),
    ("`lxc-start -d` (returns once the container is RUNNING)", "lxc_start_d"),
    ("`crun run` /bin/true (start, run, exit, teardown)", "crun_run_true"),
    ("`lxc-execute` /bin/true (start, run, exit, teardown)", "lxc_execute_true"),
    ("`runc run` /bin/true, rootless in an outer user namespace (start, run, exit, teardown)", "runc_run_true"),
    ("`systemd-nspawn` /bin/true (start, run, exit, teardown)", "nspawn_true"),
    ("`podman run --rm --rootfs` /bin/true (start, run, exit, removal)", "podman_run_true"),
], refs=[("reference: `croft info NAME` (CLI → croftd API round trip only)", "croft_info"),
    ("reference: `unshare -U` with the 65536-id map, /bin/true (runc's outer user namespace alone)", "userns_true")])
  table(f"Exec round trip, {when}", ("`croft exec NAME -- true`", "croft_exec"), [
    ("`crun exec ID /bin/true`", "crun_exec"),
    ("`lxc-attach -n NAME -- /bin/true`", "lxc_attach"),
])

M = os.path.join(work, "mem")
sup = [list(map(int, l.split())) for l in open(os.path.join(M, "supervisors"))]
mon = [list(map(int, l.split())) for l in open(os.path.join(M, "lxc_monitors"))]
before = int(open(os.path.join(M, "croftd_rss_before")).read())
after = int(open(os.path.join(M, "croftd_rss_after")).read())
def avg(rows, i): return sum(r[i] for r in rows) / len(rows)
print(f"\nMemory per running VPS ({vpses} running; KiB per VPS)\n")
print("| what | RSS | PSS | private (USS) |")
print("|---|---:|---:|---:|")
print(f"| croft-supervisor (one per VPS) | {avg(sup,1):.0f} | {avg(sup,2):.0f} | {avg(sup,3):.0f} |")
growth = (after - before) / vpses
print(f"| croftd RSS growth / VPS ({before} → {after} KiB) | {growth:.0f} | | |")
total = avg(sup, 2) + max(growth, 0)
print(f"| **croft total (supervisor PSS + croftd growth)** | | **{total:.0f}** ({total/1024:.2f} MiB) | |")
print(f"| LXC monitor `[lxc monitor]` (one per container) | {avg(mon,1):.0f} | {avg(mon,2):.0f} | {avg(mon,3):.0f} |")
print(f"\nLoad average (1 min) before: {os.environ['LOAD_BEFORE']}, after: {open('/proc/loadavg').read().split()[0]}")
EOF
}

main "$@"
