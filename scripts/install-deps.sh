#!/usr/bin/env bash
# Installs the Debian 12 packages weft builds and tests with. Idempotent; needs
# root (or sudo). Non-interactive, so it also runs in CI with no stdin.
set -euo pipefail

mapfile -t packages < "$(dirname "$0")/debian-packages.txt"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
  as_root=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: ${packages[*]} present"
