#!/usr/bin/env bash
# The whole test suite: formatting, lints, and the three tiers of tests
# (see docs/testing.md): unit tests, service and API tests on the simulated
# backend, and the privileged end-to-end tests (real croftd, croft and
# supervisors; run as root); then a check that nothing was left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root (the end-to-end tests create namespaces and cgroups)" >&2; exit 1; }
scripts/deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo build --workspace --bins --examples
log=$(mktemp)
browser_log=$(mktemp)
trap 'rm -f "$log" "$browser_log"' EXIT
# The leak check runs whether or not tests failed: a failing test must clean
# up too.
set +e
cargo test --workspace --features croft/e2e --no-fail-fast --lib --bins --tests -- --test-threads=2 2>&1 | tee "$log"
test_status=${PIPESTATUS[0]}
# The panel in a real browser: Debian's Chromium, driven by playwright-core,
# against croftd on the simulated backend (crates/croftd/ui/tests/).
echo "== browser tests"
(cd crates/croftd/ui && CROFTD="$OLDPWD/target/debug/croftd" node --test --test-reporter=tap tests/*.test.mjs) 2>&1 | tee "$browser_log"
browser_status=${PIPESTATUS[0]}
set -e
# cargo's "test result:" lines, and node's TAP summary ("# pass N"; a
# cancelled test counts as failed).
read -r passed failed < <(awk '/^test result:/ { for (i = 2; i <= NF; i++) {
  if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } } END { print p+0, f+0 }' "$log")
read -r browser_passed browser_failed < <(awk '/^# pass / { p += $3 } /^# (fail|cancelled) / { f += $3 }
  END { print p+0, f+0 }' "$browser_log")
passed=$((passed + browser_passed)); failed=$((failed + browser_failed))

echo "== leak check"
leaks=0
if grep -q croft-test /proc/self/mountinfo; then echo "leaked mounts:"; grep croft-test /proc/self/mountinfo; leaks=1; fi
cg=$(find /sys/fs/cgroup -maxdepth 6 -type d -name 'croft-test-*' 2>/dev/null || true)
if [ -n "$cg" ]; then echo "leaked cgroups:"; echo "$cg"; leaks=1; fi
procs=$(pgrep -af 'croft-test-' || true)
if [ -n "$procs" ]; then echo "leaked processes:"; echo "$procs"; leaks=1; fi
loops=$(losetup -a 2>/dev/null | grep croft-test || true)
if [ -n "$loops" ]; then echo "leaked loop devices:"; echo "$loops"; leaks=1; fi
procs=$(pgrep -af 'croft-panel-test-|playwright_chromium' || true)
if [ -n "$procs" ]; then echo "leaked browser-test processes:"; echo "$procs"; leaks=1; fi
dirs=$(ls -d /tmp/croft-test-* /tmp/croft-panel-test-* /tmp/playwright_chromiumdev_profile-* 2>/dev/null || true)
if [ -n "$dirs" ]; then echo "leaked directories:"; echo "$dirs"; leaks=1; fi
ns=$(ip netns list 2>/dev/null | grep croft-test || true)
if [ -n "$ns" ]; then echo "leaked network namespaces:"; echo "$ns"; leaks=1; fi
links=$(ip -br link 2>/dev/null | grep -E '^(crv[0-9]|croftbr)' || true)
if [ -n "$links" ]; then echo "leaked links in the host namespace:"; echo "$links"; leaks=1; fi
tables=$(nft list tables 2>/dev/null | grep -w croft || true)
if [ -n "$tables" ]; then echo "leaked nftables tables in the host namespace:"; echo "$tables"; leaks=1; fi
[ "$leaks" = 0 ] || { echo "the test suite left things behind" >&2; exit 1; }
echo "nothing leaked"
echo "tests: $passed passed, $failed failed"
[ "$test_status" = 0 ] || { echo "cargo test failed (status $test_status)" >&2; exit "$test_status"; }
[ "$browser_status" = 0 ] || { echo "the browser tests failed (status $browser_status)" >&2; exit "$browser_status"; }
