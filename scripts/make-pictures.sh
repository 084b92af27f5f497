#!/bin/sh
# Regenerates the pictures of docs/guide/seeing-inside.md in docs/pictures/
# from real runs (never by hand):
#   race.svg, race.png: the guide's race program (its first example), traced
#     and checked by tests/check_trace_race.py (the same check as the test
#     trace_picture_race); rerun until a run shows a lost update, at most 20
#     times; drawn from just before the first steal to just after the last slice.
#   bench-pingpong.svg, bench-pingpong.png: `weft-bench --trace --quick
#     --workers 2 pingpong`, a 16 us window around a steal in mid-run.
#   trace-sample.svg, trace-sample.png: the hand-written sample trace
#     tests/data/trace_race.json (the renderer's own section; the test
#     trace_render keeps them equal to the tool's output).
# usage: scripts/make-pictures.sh [BUILD_DIR]   (default: build, configured
# with tools and tests; it builds what it needs)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
out=$root/docs/pictures
tool=$build/tools/trace/weft-trace
race=$build/tests/doc_example_guide_seeing_inside_race
bench=$build/benchmarks/weft-bench
ninja -C "$build" tools/trace/weft-trace tests/doc_example_guide_seeing_inside_race benchmarks/weft-bench >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The race: keep the first run whose counter shows a lost update.
tries=0
while :; do
  tries=$((tries + 1))
  python3 "$root/tests/check_trace_race.py" "$tool" "$race" "$tmp" >"$tmp/log"
  set -- $(sed -n 's/^counter = \([0-9]*\), expected \([0-9]*\)$/\1 \2/p' "$tmp/log")
  [ "$1" -lt "$2" ] && break
  [ "$tries" -lt 20 ] || { echo "make-pictures: no lost update in 20 runs; using the last" >&2; break; }
done
grep 'counter = ' "$tmp/log"
window=$(python3 -c '
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
steals = [e["ts"] for e in ev if e.get("cat") == "steal"]
ends = [e["ts"] + e["dur"] for e in ev if e.get("cat") == "fiber"]
print("%.3f %.3f" % (min(steals) - 20, max(ends) + 20))' "$tmp/race.json")
set -- $window
"$tool" render "$tmp/race.json" --svg "$out/race.svg" --png "$out/race.png" --width 960 --from "$1" --to "$2" \
  --title "racer a and racer b: load, yield, store on two workers; third stolen by the idle worker"

# pingpong on two workers: a window around a steal in the middle of the run.
"$bench" --trace "$tmp/pp.json" --quick --repeat 1 --workers 2 pingpong >/dev/null
window=$(python3 -c '
import json, sys
ev = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e.get("ph") != "M"]
ts = sorted(e["ts"] for e in ev)
mid = ts[len(ts) // 2]
slices = sorted(e["ts"] for e in ev if e.get("cat") == "fiber")
import bisect
def busy(t):  # slices starting in [t - 8, t + 8]
    return bisect.bisect(slices, t + 8) - bisect.bisect_left(slices, t - 8)
steals = sorted(e["ts"] for e in ev if e.get("cat") == "steal" and e["ts"] >= mid)
# The first steal after mid-run with the pair busy around it (not a stretch
# where the machine descheduled a worker).
at = next((t for t in steals if busy(t) >= 24), steals[0] if steals else mid)
print("%.3f %.3f" % (at - 8, at + 8))' "$tmp/pp.json")
set -- $window
"$tool" render "$tmp/pp.json" --svg "$out/bench-pingpong.svg" --png "$out/bench-pingpong.png" \
  --width 960 --from "$1" --to "$2" \
  --title "weft-bench pingpong, 2 workers: 16 us in mid-run, around a steal"
"$tool" summary "$tmp/pp.json" | head -1

# The hand-written sample of the renderer's section.
"$tool" render "$root/tests/data/trace_race.json" --svg "$out/trace-sample.svg" \
  --png "$out/trace-sample.png" --width 960 \
  --title "sample trace: two workers, racer a and racer b across a yield, two steals"
ls -l "$out"
