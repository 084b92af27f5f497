#!/usr/bin/env bash
# The README's first command: installs what is missing, builds weft optimized,
# and runs the benchmark program in quick mode: every workload of
# BENCHMARKS.md, weft beside the plain single-core loop, with the table
# printed and the picture written to build-demo/report/.
# Extra arguments go to weft-bench (e.g. `--workers 1,2` or `fib spawn`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -d build-demo ]; then
  meson setup --reconfigure build-demo --buildtype=release -Dtests=false >/dev/null
else
  meson setup build-demo --buildtype=release -Dtests=false >/dev/null
fi
ninja -C build-demo >/dev/null
./build-demo/benchmarks/weft-bench --quick --report build-demo/report "$@"
