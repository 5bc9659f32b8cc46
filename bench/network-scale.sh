#!/usr/bin/env bash
# How croft's nftables rules scale: with N VPSes loaded (each with a
# firewall rule), one VPS's firewall change, an address added live, and a
# VPS added and removed, each an incremental load, side by side with the
# full reload croft avoids (crates/croft-host/examples/nft_scale.rs).
#
# Usage: bash bench/network-scale.sh [N...]   (default: 50 500)
# Runs as root, in a network namespace of its own (croft-bench-scale-<pid>),
# removed by the EXIT trap even on failure.
set -euo pipefail
REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "network-scale: run as root" >&2; exit 1; }
NS=croft-bench-scale-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
(cd "$REPO" && cargo build --release --example nft_scale -p croft-host >&2)
ip netns add "$NS"
for n in "${@:-50 500}"; do
    for count in $n; do
        ip netns exec "$NS" "$REPO/target/release/examples/nft_scale" "$count" 9
    done
done
