#!/usr/bin/env bash
# The README's first command: installs what is missing, builds weft optimized,
# and runs the demo (fibers on every core, and what ran where).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -d build-demo ]; then
  meson setup --reconfigure build-demo --buildtype=release -Dtests=false >/dev/null
else
  meson setup build-demo --buildtype=release -Dtests=false >/dev/null
fi
ninja -C build-demo >/dev/null
./build-demo/examples/hello_workers "$@"
