#!/usr/bin/env bash
# The remote API beside the local one, in one run, interleaved round by round:
#   1. exec round trip   croft exec VPS -- true through the local socket (the
#                        CLI asks croftd once, then talks to the supervisor)
#                        vs croft --remote exec over TLS 1.3 on loopback (a
#                        WebSocket through croftd, token checked). Goal:
#                        remote within 2x local.
#   2. one API request   GET /1.0/instances/NAME/state over the local socket
#                        (host root: no credential to check) vs over HTTPS
#                        with a bearer token (looked up, hash compared,
#                        policy applied), each on one kept-alive connection
#                        (curl, the first request of each left out). The
#                        difference bounds what authenticating and
#                        authorizing a request adds. Goal: under 1 ms.
#
# Usage: bash bench/remote.sh [--build]
#   --build     run `cargo build --release` first (and use target/release)
# Environment:
#   N=50        timed rounds (medians reported)
#   BIN_DIR     where croftd, croft and croft-supervisor are
#               (default: target/release if built, else target/debug)
#
# Must run as root. croftd runs in a network namespace of its own (unshare
# -n), listening on 127.0.0.1:8443 there; every client command runs in that
# namespace too (nsenter), so both paths pay the same to get there.
# Everything it creates carries the tag croft-bench-<pid> and is removed by
# the EXIT trap, even on failure.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-50}
die() { echo "remote: error: $*" >&2; exit 1; }
log() { echo "remote: $*" >&2; }

case "${1:-}" in
    --build) (cd "$REPO" && cargo build --release --bins) ;;
    "") ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
esac
[ "$(id -u)" = 0 ] || die "run as root"
for t in curl python3 nsenter unshare; do command -v "$t" >/dev/null || die "$t is missing"; done
if [ -z "${BIN_DIR:-}" ]; then
    BIN_DIR=$REPO/target/release
    [ -x "$BIN_DIR/croftd" ] || BIN_DIR=$REPO/target/debug
fi
[ -x "$BIN_DIR/croftd" ] || die "no croftd in $BIN_DIR (cargo build first)"

TAG=croft-bench-$$
WORK=/tmp/$TAG
RUN=$WORK/run
CROFTD_PID=
cleanup() {
    set +e
    if [ -n "$CROFTD_PID" ]; then
        in_ns croft delete bench-remote --force >/dev/null 2>&1
        kill "$CROFTD_PID" 2>/dev/null
        wait "$CROFTD_PID" 2>/dev/null
    fi
    # Supervisors and the lxcfs croftd started outlive it: ours only (their
    # pid files are in our run dir, and their command lines name it).
    local f pid d
    for f in "$RUN"/vps/*/supervisor.pid "$RUN/lxcfs.pid"; do
        [ -r "$f" ] || continue
        pid=$(<"$f")
        if grep -qs "$RUN" "/proc/$pid/cmdline"; then
            kill "$pid"
            for ((d = 0; d < 50; d++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    sleep 0.5
    for d in $(find /sys/fs/cgroup -maxdepth 6 -type d -name "$TAG*" 2>/dev/null); do
        for f in $(find "$d" -name cgroup.procs); do
            for pid in $(<"$f"); do kill -KILL "$pid" 2>/dev/null; done
        done
    done
    sleep 0.2
    for d in $(find /sys/fs/cgroup -maxdepth 6 -type d -name "$TAG*" 2>/dev/null); do
        find "$d" -depth -type d -exec rmdir {} +
    done
    awk -v w="$WORK" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a command in croftd's network namespace, with the bench's croft.
in_ns() {
    local cmd=$1
    shift
    [ "$cmd" = croft ] && cmd=$BIN_DIR/croft
    nsenter -t "$CROFTD_PID" -n -- env CROFT_SOCKET="$RUN/croftd.sock" CROFT_CONFIG_DIR="$WORK/client" "$cmd" "$@"
}

mkdir -m 0711 "$WORK"
mkdir -p "$RUN" "$WORK/client"
cat >"$WORK/croftd.toml" <<EOF
state_dir = "$WORK/state"
run_dir = "$RUN"
cgroup_prefix = "$TAG"
raise_host_limits = false
log_level = "warn"
https_address = "127.0.0.1:8443"
EOF
# Loopback up before croftd binds its address on it.
unshare -n -- sh -c 'ip link set lo up && exec setsid "$0" -c "$1"' "$BIN_DIR/croftd" "$WORK/croftd.toml" >"$WORK/croftd.log" 2>&1 &
CROFTD_PID=$!
for ((t = 0; t < 100; t++)); do
    [ -S "$RUN/croftd.sock" ] && in_ns croft list >/dev/null 2>&1 && break
    kill -0 "$CROFTD_PID" 2>/dev/null || die "croftd exited: $(cat "$WORK/croftd.log")"
    sleep 0.1
done
in_ns croft launch busybox bench-remote >/dev/null || die "launch failed"
TOKEN=$(in_ns croft token create --scope read-write --expires 1d 2>/dev/null)
FINGERPRINT=$(in_ns croft server info --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate_fingerprint"])')
in_ns croft remote add bench https://127.0.0.1:8443 --token "$TOKEN" --fingerprint "$FINGERPRINT" >/dev/null
log "binaries: $BIN_DIR; N=$N"

# 1. exec, interleaved.
python3 - "$N" "$CROFTD_PID" "$BIN_DIR/croft" "$RUN/croftd.sock" "$WORK/client" >"$WORK/exec.txt" <<'EOF'
import os, subprocess, sys, time
n, pid, croft, sock, cfg = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
env = dict(os.environ, CROFT_SOCKET=sock, CROFT_CONFIG_DIR=cfg)
def run(args):
    t = time.perf_counter()
    subprocess.run(["nsenter", "-t", pid, "-n", "--", croft] + args, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000
for _ in range(3):
    run(["exec", "bench-remote", "--", "true"]); run(["--remote", "bench", "exec", "bench-remote", "--", "true"])
for _ in range(n):
    print("local", run(["exec", "bench-remote", "--", "true"]))
    print("remote", run(["--remote", "bench", "exec", "bench-remote", "--", "true"]))
EOF

# 2. one request, on a kept-alive connection each.
URL_PATH=/1.0/instances/bench-remote/state
urls() { local base=$1 i; for ((i = 0; i <= N; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$base$URL_PATH"; done; }
: >"$WORK/request.txt"
for ((round = 0; round < 3; round++)); do
    urls http://croftd | in_ns curl -s --unix-socket "$RUN/croftd.sock" -w 'local %{time_total}\n' -K - |
        tail -n +2 >>"$WORK/request.txt"
    urls https://127.0.0.1:8443 | in_ns curl -s --insecure -H "Authorization: Bearer $TOKEN" \
        -w 'remote %{time_total}\n' -K - | tail -n +2 >>"$WORK/request.txt"
done

python3 - "$WORK/exec.txt" "$WORK/request.txt" <<'EOF'
import statistics, sys
def load(path, scale):
    d = {}
    for line in open(path):
        k, v = line.split()
        d.setdefault(k, []).append(float(v) * scale)
    return d
def row(label, xs):
    q = statistics.quantiles(xs, n=4)
    return f"| {label} | {statistics.median(xs):.2f} | {q[0]:.2f}–{q[2]:.2f} |"
e = load(sys.argv[1], 1)
print("\nexec round trip, `croft exec bench-remote -- true` (ms; ratio = remote / local, goal <= 2)\n")
print("| path | median ms | p25–p75 ms |\n|---|---|---|")
print(row("local socket (CLI to the supervisor)", e["local"]))
print(row("remote: TLS 1.3 on loopback, WebSocket through croftd", e["remote"]))
print(f"\nratio remote / local: {statistics.median(e['remote']) / statistics.median(e['local']):.2f}")
r = load(sys.argv[2], 1000)
print("\none API request, GET /1.0/instances/NAME/state on a kept-alive connection (ms)\n")
print("| path | median ms | p25–p75 ms |\n|---|---|---|")
print(row("local socket, host root", r["local"]))
print(row("HTTPS with a bearer token", r["remote"]))
print(f"\nadded by the remote path (TLS, token, policy): {statistics.median(r['remote']) - statistics.median(r['local']):.3f} ms (goal < 1 ms)")
EOF
