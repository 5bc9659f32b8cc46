#!/usr/bin/env bash
# What croft needs to build, run and be tested: Debian packages (run time,
# and Chromium for the panel's browser tests), and the panel's npm
# packages (crates/croftd/ui/package-lock.json), which croftd embeds at
# build time. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(busybox-static btrfs-progs debootstrap openssh-client util-linux mount iproute2 procps python3 zstd nftables iperf3 lxcfs fio chromium python3-prometheus-client)
# Node.js and npm from Debian, unless the machine has its own.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The panel's npm packages, exactly as the lockfile has them; again only
# when the lockfile changed since.
ui=crates/croftd/ui
if [ ! -f "$ui/node_modules/.package-lock.json" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$ui" --no-audit --no-fund --loglevel=error
fi
