#!/usr/bin/env bash
# Debian packages croft needs at run time and in its tests. Idempotent.
set -euo pipefail
PACKAGES=(busybox-static btrfs-progs debootstrap openssh-client util-linux mount iproute2 procps python3 zstd nftables iperf3 lxcfs fio)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
