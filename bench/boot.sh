#!/usr/bin/env bash
# Booting Debian: croft side by side with LXC and systemd-nspawn, in one run,
# on the same Debian bookworm root filesystem (debootstrap --variant=minbase
# --include=systemd-sysv,dbus,openssh-server,iproute2):
#   1. boot time    from the start command to `systemctl is-system-running`
#                   answering `running` inside the guest, polled about every
#                   20 ms:
#                     croft launch IMAGE NAME   (a new VPS from the imported
#                                               image: disk clone, identity,
#                                               start, boot)
#                     croft start NAME          (an existing, stopped VPS)
#                     lxc-start -d              (an existing container)
#                     systemd-nspawn -b         (an existing tree)
#                   polled with `croft exec NAME --`, `lxc-attach` and
#                   `nsenter -a -t <guest PID 1>` respectively
#   2. idle memory  of one booted guest, alone on the host, IDLE seconds
#                   after it reached `running`: PSS (smaps_rollup) summed over
#                   every process of the guest's pid namespace, plus the
#                   host-side process that keeps it (croft-supervisor, LXC's
#                   `[lxc monitor]`, systemd-nspawn); the guest's process count
#
# Usage: bash bench/boot.sh [--build] [--help]
#   --build     run `cargo build --release` first (and use target/release)
# Environment:
#   N=10        timed boots per tool (the median is reported)
#   WARMUP=1    untimed boots of each tool before the timed ones
#   IDLE=5      seconds a guest idles at `running` before its memory is read
#   SETTLE=0.5  seconds of pause before each timed boot (the previous guest's
#               shutdown and teardown finish first)
#   POLL=0.02   seconds between two `is-system-running` queries
#   BOOT_TIMEOUT=60  seconds a boot may take before the run fails
#   ROOTFS_TARBALL   a tarball of the rootfs (.tar, .tar.gz, .tar.zst, no
#               device nodes) to use instead of running debootstrap (which
#               takes 1.5 to 3 minutes); if the file does not exist yet, the
#               tree debootstrap builds is saved there (as .tar) for next time
#   MIRROR=http://deb.debian.org/debian   the Debian mirror for debootstrap
#   CROFT_NETWORK=0  1 gives croft's VPSes their usual network (a veth on the
#               bridge, addresses, routes); by default they have loopback only,
#               like the peers (lxc.net.0.type = empty, nspawn
#               --private-network)
#   BIN_DIR     where croftd, croft and croft-supervisor are
#               (default: target/release if built, else target/debug)
#   RAW_OUT     if set, copy the raw timings and memory readings there
#
# What each tool gets (the same tree for all; each its own copy):
#   croft   the tarball imported unchanged (`croft image import FILE
#           test/bookworm`); croft gives each VPS its own hostname,
#           machine-id and SSH host keys at launch, as it always does.
#   LXC     `sys-kernel-debug.mount` masked in its copy: under LXC the unit's
#           conditions pass (CAP_SYS_RAWIO stays in the bounding set) and the
#           debugfs mount then fails in the user namespace, leaving the guest
#           `degraded`, never `running`. Config: id map 0 -> 100000 (65536
#           ids) over an idmapped rootfs (`lxc.rootfs.options =
#           idmap=container`), `lxc.net.0.type = empty`, `lxc.mount.auto =
#           proc:mixed sys:mixed cgroup:mixed`, relative cgroups restricted to
#           `memory,name=systemd` (with `memory` alone systemd finds no
#           writable name=systemd cgroup and PID 1 exits at once), no
#           AppArmor, no seccomp, `lxc.signal.halt = SIGRTMIN+4`.
#   nspawn  nothing masked; `systemd-nspawn -q -b --register=no --keep-unit
#           --private-network --private-users=100000:65536
#           --private-users-ownership=map --link-journal=no
#           --console=read-only`. No PID-1 shim is needed: plain -b fails
#           (PEERS.md) only when nspawn runs at the root of the name=systemd
#           hierarchy, which it then mounts, host-root-owned, as the guest's
#           /sys/fs/cgroup/systemd. Here it runs in a name=systemd sub-cgroup
#           of this script's own, which nspawn chowns to the guest's root and
#           mounts as the guest's tree, so systemd boots unaided.
#   console-getty.service and sys-kernel-tracing.mount are left alone
#   everywhere (every tool runs an agetty on its console pty).
#
# Must run as root. Rules it keeps (see DESIGN.md "Rules for anything that runs
# here" and PEERS.md): croftd runs in a network namespace of its own
# (`unshare -n`); the peers run in a private mount namespace where
# /sys/fs/cgroup/unified is unmounted; LXC and nspawn live beneath a sub-cgroup
# of this script's own memory cgroup (and of its own name=systemd cgroup), LXC
# with relative cgroups. systemd-container (nspawn), lxc, uidmap and
# debootstrap are installed with apt-get if missing. Everything it creates
# carries the tag croft-bench-<pid> and is removed by the EXIT trap, even on
# failure (LXC's lock files under /run/lxc/lock included).
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-10}
WARMUP=${WARMUP:-1}
IDLE=${IDLE:-5}
SETTLE=${SETTLE:-0.5}
POLL=${POLL:-0.02}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CROFT_NETWORK=${CROFT_NETWORK:-0}
PACKAGES=systemd-sysv,dbus,openssh-server,iproute2
IMAGE=test/bookworm
BUILD=0
export LC_NUMERIC=C # EPOCHREALTIME with a decimal point

die() { echo "boot: error: $*" >&2; exit 1; }
log() { echo "boot: $*" >&2; }

# --------------------------------------------------------------------------
# Inner part: runs in the private mount namespace (see `main` below).
# --------------------------------------------------------------------------
inner() {
    cd /
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    # LXC insists on newuidmap, which reads /etc/subuid (empty on the host):
    # give it one, in this mount namespace only. Likewise a global lxc.conf
    # (lxc.cgroup.use is a system key, not a container key).
    mount --bind "$WORK/etc/subid" /etc/subuid
    mount --bind "$WORK/etc/subid" /etc/subgid
    mount --bind "$WORK/etc/lxc" /etc/lxc
    # LXC creates its relative cgroups beneath the cgroup of the process that
    # starts it, nspawn (--keep-unit) stays in it: move this shell (and so
    # every peer) into sub-cgroups of our own memory and name=systemd cgroups.
    echo "$BASHPID" >"$PEER_CG/cgroup.procs"
    echo "$BASHPID" >"$PEER_SD/cgroup.procs"

    local lxcp="$WORK/lxc" s=boot-start
    LXC_RUNNING=0 NSPAWN_PID=
    trap inner_cleanup EXIT

    quiet() { "$@" </dev/null >>"$WORK/cmd.log" 2>&1; }

    # The guest's PID 1 under nspawn: the child of systemd-nspawn that lives
    # in another pid namespace (the outer child, in ours, is transient).
    nspawn_init() {
        local own c ns
        own=$(readlink "/proc/$NSPAWN_PID/ns/pid" 2>/dev/null) || return 1
        for c in $(cat "/proc/$NSPAWN_PID"/task/*/children 2>/dev/null); do
            ns=$(readlink "/proc/$c/ns/pid" 2>/dev/null) || continue
            [ "$ns" != "$own" ] && { echo "$c"; return 0; }
        done
        return 1
    }
    # nspawn_in CMD...: run CMD inside the nspawn guest, once systemd is its
    # PID 1 (never before: nothing may run in a guest half set up).
    nspawn_in() {
        local init
        init=$(nspawn_init) || return 1
        [ "$(cat "/proc/$init/comm" 2>/dev/null)" = systemd ] || return 1
        nsenter -t "$init" -a "$@"
    }
    nspawn_start() {
        (
            echo "$BASHPID" >"$PEER_SD/nspawn/cgroup.procs"
            exec systemd-nspawn -q -b --register=no --keep-unit --private-network \
                --private-users=100000:65536 --private-users-ownership=map \
                --link-journal=no --console=read-only --machine=boot-nspawn \
                -D "$WORK/nspawn/rootfs"
        ) </dev/null >>"$WORK/nspawn/console.log" 2>&1 &
        NSPAWN_PID=$!
    }
    # SIGTERM: nspawn asks the guest's systemd to halt, then exits.
    nspawn_stop() {
        local k
        [ -n "$NSPAWN_PID" ] || return 0
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        for ((k = 0; k < 300; k++)); do
            kill -0 "$NSPAWN_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$NSPAWN_PID" 2>/dev/null && die "systemd-nspawn $NSPAWN_PID did not stop in 30 s"
        wait "$NSPAWN_PID" 2>/dev/null || true
        NSPAWN_PID=
    }
    lxc_stop() {
        quiet lxc-stop -n boot -P "$lxcp" -t 30 || quiet lxc-stop -k -n boot -P "$lxcp" ||
            die "lxc-stop failed (see $WORK/cmd.log)"
        LXC_RUNNING=0
    }

    # wait_running LABEL T0 T1 IN...: the boot started at T0 (its start
    # command returned at T1); run `IN... systemctl is-system-running` (IN
    # runs a command inside the guest) every $POLL s until it prints
    # "running". If $RECORD, append "t0 t1 q0 q1" to $T/LABEL: q0..q1 is the
    # query that saw "running".
    wait_running() {
        local label=$1 t0=$2 t1=$3 st q0 q1
        shift 3
        local deadline=$((${t0/./} + BOOT_TIMEOUT * 1000000))
        while :; do
            q0=$EPOCHREALTIME
            st=$("$@" systemctl is-system-running </dev/null 2>/dev/null) || true
            q1=$EPOCHREALTIME
            case $st in
            running) break ;;
            # (offline: no manager answers yet, early in the boot; poll on)
            degraded | maintenance | stopping)
                die "$label: the guest is '$st', not running; failed units: $("$@" systemctl --failed --no-legend --plain </dev/null 2>&1 | awk '{printf "%s ", $1}')"
                ;;
            esac
            if [ "$label" = nspawn ] && ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
                die "systemd-nspawn exited: $(tail -3 "$WORK/nspawn/console.log")"
            fi
            [ "${q1/./}" -lt "$deadline" ] || die "$label: no 'running' within ${BOOT_TIMEOUT}s (last answer: '$st')"
            sleep "$POLL"
        done
        if [ "$RECORD" = 1 ]; then echo "$t0 $t1 $q0 $q1" >>"$T/$label"; fi
    }

    pause() { [ "$SETTLE" = 0 ] || sleep "$SETTLE"; }
    boot_croft_launch() { # a new VPS each round, deleted afterwards
        local name=boot-launch-$i t0 t1
        pause
        t0=$EPOCHREALTIME
        quiet croft launch "$IMAGE" "$name" || die "croft launch $IMAGE $name failed (see $WORK/cmd.log)"
        t1=$EPOCHREALTIME
        wait_running croft_launch "$t0" "$t1" croft exec "$name" --
        quiet croft delete --force "$name" || die "croft delete --force $name failed"
    }
    boot_croft_start() {
        local t0 t1
        pause
        t0=$EPOCHREALTIME
        quiet croft start "$s" || die "croft start $s failed (see $WORK/cmd.log)"
        t1=$EPOCHREALTIME
        wait_running croft_start "$t0" "$t1" croft exec "$s" --
        quiet croft stop "$s" || die "croft stop $s failed"
    }
    boot_lxc() {
        local t0 t1
        pause
        LXC_RUNNING=1
        t0=$EPOCHREALTIME
        quiet lxc-start -d -n boot -P "$lxcp" || die "lxc-start failed (see $WORK/cmd.log, $lxcp/lxc.log)"
        t1=$EPOCHREALTIME
        wait_running lxc_start "$t0" "$t1" lxc-attach -n boot -P "$lxcp" --
        lxc_stop
    }
    boot_nspawn() {
        local t0 t1
        pause
        t0=$EPOCHREALTIME
        nspawn_start
        t1=$EPOCHREALTIME
        wait_running nspawn "$t0" "$t1" nspawn_in
        nspawn_stop
    }

    # ---- 1. boot time ------------------------------------------------------
    local i k tool total=$((WARMUP + N))
    T="$WORK/times"
    mkdir -p "$T"
    log "boot time: $WARMUP warm-up + $N timed rounds, interleaved"
    for ((i = 0; i < total; i++)); do
        RECORD=$((i >= WARMUP ? 1 : 0))
        # Rotate the order each round so no tool always runs first.
        local order=(croft_launch croft_start lxc nspawn)
        k=$((i % ${#order[@]}))
        order=("${order[@]:k}" "${order[@]:0:k}")
        for tool in "${order[@]}"; do "boot_$tool"; done
        log "  round $((i + 1))/$total done"
    done

    # ---- 2. idle memory, one guest at a time ---------------------------------
    local M="$WORK/mem" init sup mon
    mkdir -p "$M"
    RECORD=0
    log "memory: croft (idle ${IDLE}s after running)"
    quiet croft start "$s" || die "croft start $s failed"
    wait_running croft_start "$EPOCHREALTIME" 0 croft exec "$s" --
    sleep "$IDLE"
    # The init pid is in the host view (`info --host`) since issue 13, in
    # the plain view before: either croft this script is pointed at.
    init=$( (croft info "$s" --host --format json 2>/dev/null || croft info "$s" --format json) |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["init_pid"])')
    sup=$(<"$RUN/vps/$s/supervisor.pid")
    grep -q croft-supervisor "/proc/$sup/cmdline" || die "pid $sup in $RUN/vps/$s/supervisor.pid is not a croft-supervisor"
    mem_of "$init" "$sup" >"$M/croft.json"
    mem_of 0 "$(<"$RUN/lxcfs.pid")" >"$M/lxcfs.json"
    mem_of 0 "$CROFTD_PID" >"$M/croftd.json"
    quiet croft stop "$s" || die "croft stop $s failed"

    log "memory: LXC (idle ${IDLE}s after running)"
    LXC_RUNNING=1
    quiet lxc-start -d -n boot -P "$lxcp" || die "lxc-start failed"
    wait_running lxc_start "$EPOCHREALTIME" 0 lxc-attach -n boot -P "$lxcp" --
    sleep "$IDLE"
    init=$(lxc-info -n boot -P "$lxcp" -p -H)
    mon=$(awk '/^PPid:/{print $2}' "/proc/$init/status")
    grep -q 'lxc monitor' "/proc/$mon/cmdline" || die "parent $mon of the LXC guest's init is not an lxc monitor"
    mem_of "$init" "$mon" >"$M/lxc.json"
    lxc_stop

    log "memory: nspawn (idle ${IDLE}s after running)"
    nspawn_start
    wait_running nspawn "$EPOCHREALTIME" 0 nspawn_in
    sleep "$IDLE"
    init=$(nspawn_init) || die "no nspawn guest init"
    mem_of "$init" "$NSPAWN_PID" >"$M/nspawn.json"
    nspawn_stop
}

inner_cleanup() {
    local rc=$?
    if [ -n "${NSPAWN_PID:-}" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null
        local k
        for ((k = 0; k < 100; k++)); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ "${LXC_RUNNING:-0}" = 1 ]; then
        lxc-stop -k -n boot -P "$WORK/lxc" >/dev/null 2>&1 || true
    fi
    # Whatever survived is in our cgroups: the outer EXIT trap kills it.
    exit "$rc"
}

# mem_of INIT HOSTPID...: JSON with the PSS (KiB, smaps_rollup) of every
# process in INIT's pid namespace (none if INIT is 0) and of each HOSTPID.
mem_of() {
    python3 - "$@" <<'EOF'
import json, os, sys
init, hosts = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
def pss(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
def comm(pid):
    return open(f"/proc/{pid}/comm").read().strip()
def name(pid):  # comm is cut at 15 bytes; LXC's monitor renames itself
    argv0 = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].decode()
    if argv0.startswith("[") and "]" in argv0:
        return argv0[: argv0.index("]") + 1]
    return os.path.basename(argv0) or comm(pid)
guest = []
if init:
    ns = os.readlink(f"/proc/{init}/ns/pid")
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{p}/ns/pid") == ns:
                guest.append({"pid": int(p), "comm": comm(p), "pss": pss(p)})
        except OSError:
            pass  # gone meanwhile, or a kernel thread
    assert guest, f"no process in the pid namespace of {init}"
host = [{"pid": p, "comm": name(p), "pss": pss(p)} for p in hosts]
json.dump({"guest": sorted(guest, key=lambda g: g["pid"]), "host": host}, sys.stdout)
EOF
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

# need COMMAND PACKAGE: apt-get install PACKAGE if COMMAND is missing.
need() {
    command -v "$1" >/dev/null && return 0
    log "$1 is missing: apt-get install $2"
    local out
    if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" 2>&1); then
        log "apt-get install $2 failed; apt-get update, then once more"
        out=$({ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2"; } 2>&1) ||
            die "apt-get install $2 failed: $(tail -3 <<<"$out")"
    fi
    command -v "$1" >/dev/null || die "$2 is installed but $1 is still missing"
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    log "cleaning up"
    if [ -n "${INNER_PID:-}" ] && kill -0 "$INNER_PID" 2>/dev/null; then
        kill -TERM "$INNER_PID"
        local k
        for ((k = 0; k < 300; k++)); do kill -0 "$INNER_PID" 2>/dev/null || break; sleep 0.1; done
    fi
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
    # monitor, systemd-nspawn).
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
    if [ -n "${WORK:-}" ] && grep -q " $WORK" /proc/self/mountinfo; then
        log "unmounting leftover mounts under $WORK"
        awk -v w="$WORK" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    fi
    if [ -n "${RAW_OUT:-}" ] && [ -d "$WORK/times" ]; then
        mkdir -p "$RAW_OUT" && cp -r "$WORK/times" "$WORK/mem" "$RAW_OUT"/ 2>/dev/null
    fi
    [ -n "${WORK:-}" ] && [ -d "$WORK" ] && rm -rf --one-file-system "$WORK"
    # LXC's lock files for our lxcpath, and nspawn's run dir if it made it.
    [ -n "${WORK:-}" ] && rm -rf "/run/lxc/lock$WORK"
    [ "${LXC_LOCKDIR_OURS:-0}" = 1 ] && rmdir "/run/lxc/lock${WORK%/*}" 2>/dev/null
    if [ "${NSPAWN_RUNDIR_OURS:-0}" = 1 ] && [ -d /run/systemd/nspawn ]; then
        find /run/systemd/nspawn -depth -type d -empty -delete
    fi
    # Verify: nothing of ours is left.
    local left=0
    [ "$(grep -c "$TAG" /proc/self/mountinfo)" = 0 ] || { log "LEFT: mounts"; left=1; }
    [ -z "$(find /sys/fs/cgroup -maxdepth 6 -iname "$TAG*")" ] || { log "LEFT: cgroups"; left=1; }
    [ -z "$(losetup -a | grep "$TAG")" ] || { log "LEFT: loop devices"; left=1; }
    [ ! -e "/run/lxc/lock/tmp/$TAG" ] || { log "LEFT: /run/lxc/lock/tmp/$TAG"; left=1; }
    if pgrep -f "croft-supervisor $RUN" >/dev/null || pgrep -f "$WORK/" >/dev/null; then
        log "LEFT: processes"
        left=1
    fi
    [ "$left" = 0 ] && log "clean: no mounts, cgroups, loop devices, lock files or processes of $TAG left"
    exit "$rc"
}

# The rootfs tarball: ROOTFS_TARBALL if it exists, else a fresh debootstrap
# (saved at ROOTFS_TARBALL when that is set). Sets TARBALL.
rootfs_tarball() {
    if [ -n "${ROOTFS_TARBALL:-}" ] && [ -s "$ROOTFS_TARBALL" ]; then
        TARBALL=$(realpath "$ROOTFS_TARBALL")
        log "rootfs: reusing $TARBALL"
        return
    fi
    need debootstrap debootstrap
    local tree=$WORK/debootstrap t0=$SECONDS
    log "rootfs: debootstrap bookworm (minbase + $PACKAGES) from $MIRROR; takes a few minutes"
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tree" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed: $(tail -3 "$WORK/debootstrap.log")"
    log "rootfs: debootstrap took $((SECONDS - t0)) s"
    # debootstrap leaves device nodes in /dev: croft refuses them in an
    # image (each VPS gets a fresh /dev), and LXC (autodev) and nspawn make
    # their own.
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
    if [ "$BUILD" = 1 ]; then
        (cd "$REPO" && cargo build --release)
        BIN_DIR=${BIN_DIR:-$REPO/target/release}
    fi
    if [ -z "${BIN_DIR:-}" ]; then
        BIN_DIR=$REPO/target/debug
        [ -x "$REPO/target/release/croftd" ] && BIN_DIR=$REPO/target/release
    fi
    local t
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
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -m 0711 "$WORK" # VPS roots must traverse it to reach their rootfs
    mkdir -p "$WORK/etc/lxc" "$RUN"

    need systemd-nspawn systemd-container
    need lxc-start lxc
    need newuidmap uidmap
    for t in lxc-attach lxc-stop lxc-info nsenter unshare python3 tar; do
        command -v "$t" >/dev/null || die "$t is missing"
    done

    log "binaries: $BIN_DIR; N=$N, WARMUP=$WARMUP, IDLE=$IDLE, SETTLE=$SETTLE, POLL=$POLL, CROFT_NETWORK=$CROFT_NETWORK"
    rootfs_tarball

    cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$RUN"
cgroup_prefix = "$TAG"
raise_host_limits = false
log_level = "warn"
EOF
    [ "$CROFT_NETWORK" = 1 ] || printf '[network]\nenabled = false\n' >>"$WORK/croftd.toml"
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
    log "croft: image import $TARBALL $IMAGE"
    croft image import "$TARBALL" "$IMAGE" >>"$WORK/cmd.log" 2>&1 ||
        die "croft image import failed: $(tail -3 "$WORK/cmd.log")"
    croft launch "$IMAGE" boot-start --no-start >>"$WORK/cmd.log" 2>&1 ||
        die "croft launch $IMAGE boot-start --no-start failed: $(tail -3 "$WORK/cmd.log")"

    # The peers' trees: the same tarball, unpacked with host ids 0..65535;
    # both peers map them to the guest's ids through an idmapped mount, as
    # croft does.
    local p
    for p in lxc nspawn; do
        log "$p: unpacking its copy of the rootfs"
        mkdir -p "$WORK/$p/rootfs"
        tar --numeric-owner -xpf "$TARBALL" -C "$WORK/$p/rootfs"
    done
    ln -sfn /dev/null "$WORK/lxc/rootfs/etc/systemd/system/sys-kernel-debug.mount"

    # LXC: unprivileged-style container (id map), relative cgroups, no
    # network, no AppArmor, no common.conf.
    echo 'root:100000:65536' >"$WORK/etc/subid"
    echo 'lxc.cgroup.use = memory,name=systemd' >"$WORK/etc/lxc/lxc.conf"
    : >"$WORK/etc/lxc/default.conf"
    mkdir -p "$WORK/lxc/boot"
    cat >"$WORK/lxc/boot/config" <<EOF
lxc.uts.name = boot-lxc
lxc.rootfs.path = dir:$WORK/lxc/rootfs
lxc.rootfs.options = idmap=container
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.cgroup.relative = 1
lxc.apparmor.profile = unconfined
lxc.net.0.type = empty
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.autodev = 1
lxc.tty.max = 0
lxc.pty.max = 16
lxc.signal.halt = SIGRTMIN+4
lxc.log.file = $WORK/lxc/lxc.log
lxc.log.level = ERROR
EOF
    mkdir -p "$PEER_CG" "$PEER_SD/nspawn"

    LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
    if python3 -c "import sys; sys.exit(0 if float('$LOAD_BEFORE') > 0.5 else 1)"; then
        log "warning: load average is $LOAD_BEFORE; other work on this machine will skew the timings"
    fi
    export -f inner inner_cleanup mem_of croft die log
    export WORK RUN TAG PEER_CG PEER_SD BIN_DIR CROFTD_PID N WARMUP IDLE SETTLE POLL BOOT_TIMEOUT IMAGE
    # In the background, so that a signal to this script is handled at once
    # (the EXIT trap first lets the inner part stop its peers).
    unshare -m --propagation private -- bash -euo pipefail -c inner &
    INNER_PID=$!
    wait "$INNER_PID"
    INNER_PID=

    export LOAD_BEFORE BIN_DIR CROFT_NETWORK
    report
}

report() {
    python3 - "$WORK" "$N" "$IDLE" <<'EOF'
import json, os, statistics, sys
work, n, idle = sys.argv[1], int(sys.argv[2]), sys.argv[3]
T = os.path.join(work, "times")
def runs(label):
    with open(os.path.join(T, label)) as f:
        rows = [list(map(float, l.split())) for l in f if l.strip()]
    assert len(rows) == n, f"{label}: {len(rows)} runs, expected {n}"
    return rows
def q(xs, p):
    xs = sorted(xs)
    return statistics.quantiles(xs, n=4)[0 if p == 25 else 2] if len(xs) > 1 else xs[0]
rows = [
    ("`croft launch IMAGE NAME` (new VPS)", "croft_launch", "`croft exec`"),
    ("`croft start NAME` (existing VPS)", "croft_start", "`croft exec`"),
    ("`lxc-start -d` (existing container)", "lxc_start", "`lxc-attach`"),
    ("`systemd-nspawn -b` (existing tree)", "nspawn", "`nsenter -a`"),
]
data = {label: runs(label) for _, label, _ in rows}
boot = {l: [(r[3] - r[0]) * 1000 for r in rs] for l, rs in data.items()}
med = {l: statistics.median(xs) for l, xs in boot.items()}
bin_dir = os.environ["BIN_DIR"]
print(f"\nBoot to `systemctl is-system-running` = running, Debian bookworm "
      f"(median of {n} runs, ms; croft from {bin_dir})\n")
print("| start command | start cmd returns | to `running` | p25–p75 | poll query (ms) | ÷ croft start | ÷ croft launch |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, label, tool in rows:
    rs = data[label]
    ret = f"{statistics.median((r[1] - r[0]) * 1000 for r in rs):.0f}"
    if label == "nspawn":
        ret = "— (stays in front)"
    qry = statistics.median((r[3] - r[2]) * 1000 for r in rs)
    xs = boot[label]
    print(f"| {name} | {ret} | **{med[label]:.0f}** | {q(xs,25):.0f}–{q(xs,75):.0f} | "
          f"{tool} {qry:.0f} | {med[label]/med['croft_start']:.2f} | {med[label]/med['croft_launch']:.2f} |")
print("\n`to running` ends when the query that first answers `running` returns, so it "
      "includes that one query (its median is the `poll query` column); polls are "
      f"{float(os.environ.get('POLL', '0.02'))*1000:.0f} ms apart.")

M = os.path.join(work, "mem")
def load(name): return json.load(open(os.path.join(M, name + ".json")))
mem = {k: load(k) for k in ("croft", "lxc", "nspawn")}
def tot(m): return sum(g["pss"] for g in m["guest"]) + sum(h["pss"] for h in m["host"])
base = tot(mem["croft"])
print(f"\nIdle memory of one booted guest, alone on the host, {idle} s after `running` "
      "(PSS from smaps_rollup, KiB)\n")
print("| | guest processes | guest PSS | host-side process | its PSS | total PSS | ÷ croft |")
print("|---|---:|---:|---|---:|---:|---:|")
for name, k in (("croft", "croft"), ("LXC", "lxc"), ("systemd-nspawn", "nspawn")):
    m = mem[k]
    g = sum(x["pss"] for x in m["guest"])
    h = sum(x["pss"] for x in m["host"])
    hn = " + ".join(x["comm"] for x in m["host"])
    t = g + h
    print(f"| {name} | {len(m['guest'])} | {g} | {hn} | {h} | **{t}** ({t/1024:.1f} MiB) | {t/base:.2f} |")
lx, cd = load("lxcfs"), load("croftd")
print(f"\nPer host, not per guest (croft): {lx['host'][0]['comm']} {lx['host'][0]['pss']} KiB PSS "
      f"(serves every VPS's /proc files), {cd['host'][0]['comm']} {cd['host'][0]['pss']} KiB PSS.")
for name, k in (("croft", "croft"), ("LXC", "lxc"), ("nspawn", "nspawn")):
    print(f"{name} guest: " + ", ".join(f"{g['comm']} {g['pss']}" for g in mem[k]["guest"]))
print(f"\nLoad average (1 min) before: {os.environ['LOAD_BEFORE']}, after: {open('/proc/loadavg').read().split()[0]}")
EOF
}

main "$@"
