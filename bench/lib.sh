# Shared by the benchmark scripts that run croftds of their own (sourced,
# not run): finding the binaries, starting a croftd in a network
# namespace of its own, timing, and removing everything at exit.
#
# The sourcing script sets NAME (its name in messages) and TAG (the tag
# everything it makes carries), then calls bench_init "$@".

die() { echo "$NAME: error: $*" >&2; exit 1; }
log() { echo "$NAME: $*" >&2; }

# Root check, --build, and BIN_DIR: the release build if there is one.
bench_init() {
    [ "$(id -u)" = 0 ] || die "run as root"
    if [ "${1:-}" = --build ]; then (cd "$REPO" && cargo build --release --bins --examples); fi
    if [ -z "${BIN_DIR:-}" ]; then
        BIN_DIR=$REPO/target/release
        [ -x "$BIN_DIR/croftd" ] || BIN_DIR=$REPO/target/debug
    fi
    [ -x "$BIN_DIR/croftd" ] || die "no croftd in $BIN_DIR (cargo build --release first)"
    WORK=/tmp/$TAG
    mkdir -p "$WORK"
    DAEMONS=()
    trap bench_cleanup EXIT
}

# croft against daemon D: croft_in D ARGS...
croft_in() { local d=$1; shift; "$BIN_DIR/croft" --socket "$WORK/$d/run/croftd.sock" "$@"; }

# Start daemon D in namespace $TAG-D with the extra TOML lines given.
start_daemon() { # D EXTRA-TOML
    local d=$1
    mkdir -p "$WORK/$d"
    cat >"$WORK/$d/croftd.toml" <<EOT
state_dir = "$WORK/$d/state"
run_dir = "$WORK/$d/run"
cgroup_prefix = "$TAG-$d"
raise_host_limits = false
log_level = "warn"
$2
EOT
    ip netns add "$TAG-$d"
    ip -n "$TAG-$d" link set lo up
    nsenter --net=/run/netns/"$TAG-$d" "$BIN_DIR/croftd" --config "$WORK/$d/croftd.toml" >"$WORK/$d/croftd.log" 2>&1 &
    DAEMONS+=("$d:$!")
    for _ in $(seq 200); do croft_in "$d" list >/dev/null 2>&1 && return; sleep 0.05; done
    die "croftd ($d) did not come up: $(cat "$WORK/$d/croftd.log")"
}

# Copy a host binary and the libraries it links into a stopped VPS's disk.
install_binary() { # D VPS BINARY DEST
    local rootfs=$WORK/$1/state/storage-pools/default/containers/$2/rootfs
    [ -d "$rootfs" ] || die "no disk at $rootfs"
    for lib in $(ldd "$3" | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
    cp "$3" "$rootfs$4"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Milliseconds a command takes.
ms() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "'$*' failed"
    t1=$EPOCHREALTIME
    python3 -c "print(f'{($t1 - $t0) * 1000:.2f}')"
}

# Every VPS of every daemon deleted, the daemons stopped, the lxcfs each
# started (it outlives croftd, like the supervisors) stopped, pools
# unmounted, namespaces and files removed.
bench_cleanup() {
    set +e
    local entry d pid pool
    for entry in "${DAEMONS[@]}"; do
        d=${entry%%:*}
        for v in $(croft_in "$d" list --format json 2>/dev/null |
            python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin)))'); do
            croft_in "$d" delete --force "$v" >/dev/null 2>&1
        done
    done
    for entry in "${DAEMONS[@]}"; do
        pid=${entry#*:}
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for entry in "${DAEMONS[@]}"; do
        d=${entry%%:*}
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
    # A pool still mounted (VPSes left running: their croftd never
    # answered) is not deleted through: said, and left for a person.
    if grep -qs " $WORK/" /proc/self/mountinfo; then
        echo "$NAME: left $WORK in place: something there is still mounted" >&2
        return
    fi
    rm -rf "$WORK"
}
