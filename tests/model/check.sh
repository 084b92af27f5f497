#!/usr/bin/env bash
# Model-checks a Promela model of weft with spin (docs/design/model_check.md).
#
#   check.sh [--spin PATH] [--cc PATH] MODEL.pml [all|verify|broken]
#   check.sh [--spin PATH] [--cc PATH] MODEL.pml run [NAME=VALUE ...]
#
# The model's header lists the runs, one per line:
#   @verify NAME=VALUE ...                 must verify: no error, search complete
#   @broken NAME=VALUE ... -- TEXT         must fail, with TEXT in pan's report
# (each NAME=VALUE becomes spin -DNAME=VALUE). `all` (the default) does both
# kinds, `verify` and `broken` one kind; `run` does one verify run with the
# given values instead, to explore by hand (exit status 1 if spin finds an
# error, and the trail is replayed).
#
# For each run: spin -a generates pan.c in a temporary directory, cc compiles
# it for a safety search (assertions and invalid end states) with state
# vectors collapsed and memory capped, and pan searches every state. A verify
# run fails on any error, a truncated search (depth limit, memory limit) or a
# missing state count; a broken run fails unless spin reports the expected
# error, so the verify runs cannot pass vacuously. Prints states, transitions,
# depth and time per run. Exit status 0 if every run did what it must.
set -euo pipefail

spin=${SPIN:-spin}
cc=${CC:-cc}
while [[ $# -gt 0 ]]; do
  case $1 in
    --spin) spin=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
if [[ $# -lt 1 ]]; then
  echo "usage: check.sh [--spin PATH] [--cc PATH] MODEL.pml [all|verify|broken|run NAME=VALUE...]" >&2
  exit 2
fi
model=$(realpath "$1")
mode=${2:-all}
if [[ $# -ge 2 ]]; then shift 2; else shift 1; fi

if ! command -v "$spin" >/dev/null 2>&1; then
  echo "check.sh: spin not found ($spin): apt-get install spin" >&2
  exit 2
fi
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "check.sh: no C compiler ($cc) to build spin's verifier: apt-get install gcc" >&2
  exit 2
fi
[[ -r $model ]] || { echo "check.sh: cannot read $model" >&2; exit 2; }

# pan settings: a safety search (no cycle detection: the models check
# assertions and end states), collapse compression, at most 1 GiB of memory,
# a depth limit far above what the models reach (pan says when it is hit).
# Broken runs stop at their first error, within a second: they are compiled
# without optimisation, which saves more time than it costs.
cflags=(-DSAFETY -DCOLLAPSE -DMEMLIM=1024)
pan_args=(-m20000 -w22)
run_limit_s=240

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-model.XXXXXX")
trap 'rm -rf "$work"' EXIT
name=$(basename "$model")
failures=0
runs=0

# one_run KIND EXPECT DEFINES...: KIND is verify or broken; EXPECT is the text
# a broken run must report.
one_run() {
  local kind=$1 expect=$2
  shift 2
  local defs=() d
  for d in "$@"; do defs+=("-D$d"); done
  local dir="$work/run$runs"
  runs=$((runs + 1))
  mkdir "$dir"
  cp "$model" "$dir/$name"  # a copy beside pan, so that spin -t finds the trail
  local label="$kind $name${*:+ $*}"
  if ! (cd "$dir" && "$spin" -a "${defs[@]}" "$name" >spin.out 2>&1); then
    echo "FAIL  $label: spin -a failed"; sed 's/^/      /' "$dir/spin.out"
    failures=$((failures + 1)); return
  fi
  local opt=-O1
  [[ $kind == broken ]] && opt=-O0
  if ! (cd "$dir" && "$cc" "$opt" "${cflags[@]}" -o pan pan.c >cc.out 2>&1); then
    echo "FAIL  $label: compiling pan.c failed"; sed 's/^/      /' "$dir/cc.out"
    failures=$((failures + 1)); return
  fi
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  (cd "$dir" && timeout "$run_limit_s" ./pan "${pan_args[@]}" >pan.out 2>&1) || rc=$?
  t1=$(date +%s.%N)
  local out="$dir/pan.out"
  local secs states trans depth errors
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  states=$(awk '/states, stored/ { print $1; exit }' "$out")
  trans=$(awk '/transitions \(= stored\+matched\)/ { print $1; exit }' "$out")
  depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | head -1)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -1)
  local stats="${states:-?} states, ${trans:-?} transitions, depth ${depth:-?}, ${secs} s"
  local first_error
  first_error=$(grep -m1 -E '^pan:[0-9]+: ' "$out" || true)

  if [[ $kind == verify ]]; then
    local why=""
    if [[ $rc -eq 124 ]]; then why="pan ran past ${run_limit_s} s"
    elif [[ -z $errors || -z $states ]]; then why="no result from pan (exit status $rc)"
    elif [[ $errors != 0 ]]; then why="spin found an error: $first_error"
    elif grep -qiE 'search not completed|max search depth too small|out of memory|MEMLIM' "$out"; then
      why="the search was not complete: $(grep -m1 -iE 'search not completed|max search depth too small|out of memory|MEMLIM' "$out")"
    fi
    if [[ -z $why ]]; then
      echo "ok    $label: $stats"
    else
      echo "FAIL  $label: $why ($stats)"
      sed 's/^/      /' "$out" | grep -v '^      Depth=' | head -40
      if [[ -e "$dir/$name.trail" ]]; then
        echo "      trail (spin -t -p):"
        (cd "$dir" && "$spin" -t -p -g "${defs[@]}" "$name" 2>&1 | tail -80 | sed 's/^/      /') || true
      fi
      failures=$((failures + 1))
    fi
  else
    if [[ -n $errors && $errors != 0 ]] && grep -qF -- "$expect" "$out"; then
      echo "ok    $label: caught, $first_error"
    else
      echo "FAIL  $label: the broken variant was not caught (wanted \"$expect\"; errors: ${errors:-?}; $stats)"
      [[ -n $first_error ]] && echo "      spin reported: $first_error"
      failures=$((failures + 1))
    fi
  fi
}

# The directives of the model header.
declare -a verify_lines=() broken_lines=()
while IFS= read -r line; do
  verify_lines+=("$line")
done < <(sed -n 's/^[[:space:]]*\*[[:space:]]*@verify\b[[:space:]]*//p' "$model")
while IFS= read -r line; do
  broken_lines+=("$line")
done < <(sed -n 's/^[[:space:]]*\*[[:space:]]*@broken\b[[:space:]]*//p' "$model")

case $mode in
  all|verify|broken)
    if [[ ${#verify_lines[@]} -eq 0 || ${#broken_lines[@]} -eq 0 ]]; then
      echo "check.sh: $name lists no @verify or no @broken runs" >&2
      exit 2
    fi
    if [[ $mode != broken ]]; then
      for line in "${verify_lines[@]}"; do
        # shellcheck disable=SC2086  # the line is a list of NAME=VALUE words
        one_run verify "" $line
      done
    fi
    if [[ $mode != verify ]]; then
      for line in "${broken_lines[@]}"; do
        if [[ $line != *" -- "* ]]; then
          echo "check.sh: @broken line without \" -- EXPECTED\": $line" >&2
          exit 2
        fi
        # shellcheck disable=SC2086
        one_run broken "${line#* -- }" ${line%% -- *}
      done
    fi
    ;;
  run)
    one_run verify "" "$@"
    ;;
  *)
    echo "check.sh: unknown mode $mode (all, verify, broken or run)" >&2
    exit 2
    ;;
esac

if [[ $failures -ne 0 ]]; then
  echo "$name: $failures of $runs runs failed"
  exit 1
fi
echo "$name: all $runs runs ok"
