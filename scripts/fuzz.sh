#!/usr/bin/env bash
# Fuzzes weft's channels against the model for a bounded time:
#   scripts/fuzz.sh SECONDS
# Builds tests/fuzz/channel_fuzzer with clang++-14, libFuzzer, ASan and UBSan
# in build-fuzz/ (libweft coverage-instrumented too), runs it for SECONDS over
# a scratch copy of tests/fuzz/corpus (new findings never touch the repo),
# prints one summary line, and exits non-zero on any crash, sanitizer report,
# model mismatch or timeout. Installs nothing: CI installs clang-14 and
# libclang-rt-14-dev from scripts/debian-packages.txt.
#
# -fsized-deallocation: clang 14 does not enable it by default, and
# lib/scheduling/task_memory.cpp calls the sized ::operator delete(void*, size_t).
#
# Environment: FUZZ_CXX (default clang++-14), FUZZ_BUILD (default build-fuzz),
# FUZZ_JOBS (ninja -j, default: ninja's own), FUZZ_KEEP=1 keeps the scratch
# directory (its corpus/ holds what this run added; see docs/design/fuzzing.md
# for merging it back by hand).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh SECONDS" >&2
  exit 2
fi
cxx=${FUZZ_CXX:-clang++-14}
dir=${FUZZ_BUILD:-build-fuzz}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: $cxx not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi

opts=(-Dbuildtype=debugoptimized -Db_ndebug=false
      -Db_sanitize=address,undefined -Db_lundef=false
      "-Dcpp_args=['-fsanitize=fuzzer-no-link','-fsized-deallocation']"
      -Dfuzz=true -Dtests=true -Dbenchmarks=false -Dexamples=false)
if [ -f "$dir/build.ninja" ]; then
  setup=(meson configure "$dir" "${opts[@]}")  # (meson 1.0's setup --reconfigure drops a new cpp_args)
else
  setup=(meson setup "$dir" "${opts[@]}")
fi
echo "=== fuzz: ${setup[*]} (CXX=$cxx)"
if ! CXX="$cxx" "${setup[@]}" >"$dir.setup.log" 2>&1; then
  cat "$dir.setup.log" >&2
  echo "fuzz: meson setup FAILED" >&2
  exit 1
fi
rm -f "$dir.setup.log"
if ! ninja -C "$dir" ${FUZZ_JOBS:+-j "$FUZZ_JOBS"} tests/fuzz/channel_fuzzer; then
  echo "fuzz: build FAILED" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-fuzz.XXXXXX")
if [ "${FUZZ_KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work/corpus" "$work/artifacts"
cp tests/fuzz/corpus/* "$work/corpus/"
log="$work/fuzz.log"

# Sanitizer reports are crashes. One input runs well under a second; 30 s is
# a hang. -max_len: a few hundred operations on four channels is plenty.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
# Symbolized reports need llvm-symbolizer (Debian package llvm-14), which
# the sanitizers look for under that exact name.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
echo "=== fuzz: $dir/tests/fuzz/channel_fuzzer for ${seconds}s over a copy of tests/fuzz/corpus ($(ls "$work/corpus" | wc -l) inputs)"
"./$dir/tests/fuzz/channel_fuzzer" \
  -max_total_time="$seconds" -max_len=512 -timeout=30 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" >"$log" 2>&1
rc=$?

# libFuzzer's last status line: "#123456 DONE cov: 1234 ft: 5678 corp: 90/12Kb ..."
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
execs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}')
speed=$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}')
cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
crashes=$(ls "$work/artifacts" | wc -l)

if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
  # The model's report (operation trace, then MISMATCH) and the crash
  # report that follows it; otherwise (a sanitizer report) the log's tail.
  if grep -q '^=== weft channel fuzz: operation trace' "$log"; then
    sed -n '/^=== weft channel fuzz: operation trace/,$p' "$log" | head -n 1500
  else
    tail -n 120 "$log"
  fi
  for f in "$work/artifacts"/*; do
    [ -e "$f" ] || continue
    echo "fuzz: reproducer $(basename "$f") (hex):" >&2
    od -An -tx1 -v "$f" | head -n 20 >&2
  done
  trap - EXIT  # keep the artifacts and the log
  echo "fuzz: FAILED (exit $rc, $crashes reproducers in $work/artifacts, log $log): execs ${execs:-?}," \
       "cov ${cov:-?}; replay one with $dir/tests/fuzz/channel_fuzzer FILE or <build>/tests/fuzz/fuzz_replay FILE" >&2
  exit 1
fi
echo "fuzz: ok: ${seconds}s, ${execs:-?} execs (${speed:-?}/s), cov ${cov:-?} edges, ft ${ft:-?} features, corpus ${corp:-?} inputs, no mismatch"
