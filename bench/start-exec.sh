#!/usr/bin/env bash
# croft side by side with crun and LXC, in one run, on the same busybox rootfs:
#   1. start latency   croft start        vs crun run -d / lxc-start -d (detached,
#                      return once the container's init runs) and crun run /
#                      lxc-execute of /bin/true (whole lifecycle, teardown included)
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
# Must run as root. Rules it keeps (see DESIGN.md "Rules for anything that runs
# here" and PEERS.md): croftd runs in a network namespace of its own
# (`unshare -n`); the peers run in a private mount namespace where
# /sys/fs/cgroup/unified is unmounted (crun: --cgroup-manager=disabled) and
# LXC uses relative cgroups restricted to the memory controller, beneath a
# sub-cgroup of this script's own memory cgroup. Everything it creates carries
# the tag croft-bench-<pid> and is removed by the EXIT trap, even on failure.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-20}
WARMUP=${WARMUP:-2}
VPSES=${VPSES:-20}
GAPS=${GAPS:-0 0.1}
BUILD=0

die() { echo "start-exec: error: $*" >&2; exit 1; }
log() { echo "start-exec: $*" >&2; }

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
    # starts it: move this shell (and so every peer) into a sub-cgroup of our
    # own memory cgroup.
    echo "$BASHPID" >"$PEER_CG/cgroup.procs"

    local crun=(crun --root "$WORK/crun-state" --cgroup-manager=disabled)
    local lxcp="$WORK/lxc"
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
        grep -qs "$RUN" "/proc/$pid/cmdline" && kill "$pid"
    fi
    # Our cgroups: croft's prefix and the peers' sub-cgroup. Any process still
    # in them is one this run started (a VPS, a peer container or monitor).
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
    # Verify: nothing of ours is left.
    local left=0
    [ "$(grep -c "$TAG" /proc/self/mountinfo)" = 0 ] || { log "LEFT: mounts"; left=1; }
    [ -z "$(find /sys/fs/cgroup -maxdepth 6 -iname "$TAG*")" ] || { log "LEFT: cgroups"; left=1; }
    if pgrep -f "croft-supervisor $RUN" >/dev/null || pgrep -f "$WORK/lxc" >/dev/null; then
        log "LEFT: processes"
        left=1
    fi
    [ "$left" = 0 ] && log "clean: no mounts, cgroups or processes of $TAG left"
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
    local memcg
    memcg=$(own_cgroup /sys/fs/cgroup/memory)
    [ -n "$memcg" ] || die "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory (this script is written for v1/hybrid hosts)"
    PEER_CG=/sys/fs/cgroup/memory${memcg%/}/$TAG-peers
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -m 0711 "$WORK" # VPS roots must traverse it to reach their rootfs
    mkdir -p "$WORK/etc/lxc" "$RUN"
    cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$RUN"
cgroup_prefix = "$TAG"
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
    local img=$WORK/state/images/busybox/rootfs
    [ -d "$img" ] || die "no busybox image at $img"
    mkdir -p "$WORK/crun" "$WORK/lxc"
    cp -a "$img" "$WORK/crun/rootfs"
    cp -a "$img" "$WORK/lxc/rootfs"
    python3 - "$WORK/crun/rootfs" "$WORK/lxc/rootfs" <<'EOF'
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
    mkdir -p "$PEER_CG"

    export -f inner inner_cleanup rss_kib smaps croft die log
    export WORK RUN TAG PEER_CG BIN_DIR CROFTD_PID N WARMUP VPSES GAPS
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

def q(xs, p):
    xs = sorted(xs)
    return statistics.quantiles(xs, n=4)[0 if p == 25 else 2] if len(xs) > 1 else xs[0]

def table(title, base, rows, refs=()):
    print(f"\n{title} (median of {n} runs, ms; ratio = peer / croft)\n")
    print("| command | median ms | p25–p75 ms | ratio |")
    print("|---|---:|---:|---:|")
    b = statistics.median(ms(base[1]))
    for name, label in [base] + rows + list(refs):
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
], refs=[("reference: `croft info NAME` (CLI → croftd API round trip only)", "croft_info")])
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
