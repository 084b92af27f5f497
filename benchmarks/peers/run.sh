#!/usr/bin/env bash
# Runs weft-bench beside its peers on this machine: Go (benchmarks/peers/go,
# Debian's golang-go) and oneTBB (benchmarks/peers/tbb, Debian's libtbb-dev).
# Builds both peers into BUILD/peers, then runs, for each workload, weft,
# Go and oneTBB in turn, ROUNDS times (ABBA-like rotation, so that drift on
# a shared machine hits all alike), and prints every line each program
# printed, prefixed by the round. Not part of CI.
#
#   benchmarks/peers/run.sh BUILD ROUNDS [--quick] [--repeat K] [--workers LIST] [workloads]
#   benchmarks/peers/run.sh build-rel 2 --repeat 5 --workers 1,2 spawn fib pingpong
#
# BUILD is a weft build directory (meson) with benchmarks/weft-bench built.
# A peer that does not know a workload is skipped for it.
set -euo pipefail
usage="usage: run.sh BUILD ROUNDS [--quick] [--repeat K] [--workers LIST] [workload ...]"
(($# >= 2)) && [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$1 rounds=$2
shift 2
bench="$build/benchmarks/weft-bench"
[[ -x $bench ]] || { echo "run.sh: $bench not built" >&2; exit 2; }
out="$(cd "$build" && pwd)/peers"
mkdir -p "$out"
(cd "$here/go" && go build -o "$out/weft-peer-go" .)
g++ -O3 -std=c++20 "$here/tbb/main.cpp" -o "$out/weft-peer-tbb" -ltbb
opts=() names=()
while (($#)); do
  case $1 in
    --repeat|--workers) (($# >= 2)) || { echo "$usage" >&2; exit 2; }; opts+=("$1" "$2"); shift 2 ;;
    --quick) opts+=("$1"); shift ;;
    -*) echo "run.sh: $1: not an option the peers share (--quick, --repeat, --workers)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
((${#names[@]})) || names=(spawn fib skynet pingpong parked timers idlewait mutex)
tbb_knows=" spawn fib mutex "
fresh_knows=" parked timers "
for ((r = 1; r <= rounds; r++)); do
  for name in "${names[@]}"; do
    progs=("$bench" "$out/weft-peer-go")
    [[ $tbb_knows == *" $name "* ]] && progs+=("$out/weft-peer-tbb")
    # Go's runs of these share one warm process unless --fresh (go/main.go):
    # both, the cold one as peer=go-fresh.
    [[ $fresh_knows == *" $name "* ]] && progs+=(go-fresh)
    # rotate the order each round
    for ((k = 0; k < ${#progs[@]}; k++)); do
      p=${progs[$(((k + r) % ${#progs[@]}))]}
      if [[ $p == go-fresh ]]; then
        "$out/weft-peer-go" --fresh "${opts[@]}" "$name" | sed 's/^peer=go /peer=go-fresh /'
      else
        "$p" "${opts[@]}" "$name"
      fi | grep '^peer=' | grep -v '^peer=single-core' | sed "s/^/round=$r /"
    done
  done
done
