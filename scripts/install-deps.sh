#!/usr/bin/env bash
# Installs everything the lab and the tests need on a fresh Debian 12 machine (as root). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(corosync libquorum-dev libvotequorum-dev libcpg-dev libcmap-dev rsync mariadb-server nftables chromium
      gcc libc6-dev iproute2 socat iputils-arping iputils-ping util-linux procps libvirt-clients libvirt-daemon libxml2-utils
      openssl shellcheck)
missing=()
for p in "${DEBS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts corosync as a service on install; the lab runs its own per namespace, never this one.
command -v systemctl >/dev/null && systemctl is-active -q corosync 2>/dev/null && systemctl disable --now corosync >/dev/null 2>&1 || true

command -v node >/dev/null || { echo "Node.js 20+ is required (apt-get install nodejs)"; exit 1; }
command -v pnpm >/dev/null || npm install -g --silent pnpm@9.15.9
pnpm install --frozen-lockfile --silent
