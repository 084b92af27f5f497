#!/usr/bin/env bash
# Builds weft, installs it into a scratch prefix (staged with DESTDIR, as a
# distribution package would be), and builds and runs the tiny consumer
# program tests/consumers/consumer.cpp three ways:
#   cmake       find_package(weft CONFIG) and weft::weft
#   pkg-config  c++ $(pkg-config --cflags --libs weft), with an rpath
#   subproject  weft as a Meson subproject (and checks that weft then adds
#               no tests of its own to the parent's `meson test`)
# Also checks the installed library: its soname, and that it exports no
# moodycamel (or other non-weft) symbols.
#
#   scripts/consumers.sh [SCRATCH_DIR]   (default: a fresh mktemp -d, removed at the end)
#
# Prints one line per check and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

if [ $# -ge 1 ]; then
  scratch=$1
  mkdir -p "$scratch"
else
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
fi
scratch=$(cd "$scratch" && pwd)
prefix=/usr/local            # what the .pc file and the layout assume
stage=$scratch/stage         # DESTDIR: the tree lands in $stage$prefix
failed=0
setup() {  # meson setup, or --reconfigure a build directory kept from an earlier run in SCRATCH_DIR
  if [ -d "$1/meson-private" ]; then meson setup --reconfigure "$@"; else meson setup "$@"; fi
}
check() {  # check NAME COMMAND...: runs it, logs to $scratch/NAME.log, says ok or FAILED
  local name=$1; shift
  if "$@" >"$scratch/$name.log" 2>&1; then
    echo "consumers: $name ok"
  else
    echo "consumers: $name FAILED (log follows)"
    tail -n 40 "$scratch/$name.log"
    failed=$((failed + 1))
  fi
}

# 1. Build and install the library alone (no tests, examples, benchmarks).
install_weft() {
  setup "$scratch/build-weft" --prefix="$prefix" --buildtype=release \
    -Dtests=false -Dexamples=false -Dbenchmarks=false &&
    ninja -C "$scratch/build-weft" &&
    rm -rf "$stage" && DESTDIR="$stage" meson install -C "$scratch/build-weft" --no-rebuild
}
check install install_weft
libdir=$(meson introspect --buildoptions "$scratch/build-weft" 2>/dev/null |
         python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
root=$stage$prefix
echo "consumers: installed under $root (libdir $libdir)"

# 2. The installed library: a versioned soname, and only weft's symbols exported.
exports() {
  local so
  so=$(ls "$root/$libdir"/libweft.so.*.*.* | head -n 1) || return 1
  readelf -d "$so" | grep -E 'SONAME.*libweft\.so\.[0-9]' || { echo "no versioned soname"; return 1; }
  nm -D --defined-only "$so" | c++filt >"$scratch/exports.txt"
  echo "$(wc -l <"$scratch/exports.txt") exported symbols"
  if grep -i moodycamel "$scratch/exports.txt"; then echo "moodycamel symbols are exported"; return 1; fi
  # Every defined symbol is weft's (a function, a typeinfo or vtable);
  # lib/libweft.map drops the std:: template instances.
  if grep -v 'weft' "$scratch/exports.txt"; then echo "symbols without weft in their name are exported"; return 1; fi
}
check exports exports

# 3. CMake: find_package(weft CONFIG) through CMAKE_PREFIX_PATH. The config
# file finds the staged prefix from its own location.
cmake_consumer() {
  cmake -S tests/consumers -B "$scratch/build-cmake" -DCMAKE_PREFIX_PATH="$root" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$scratch/build-cmake" &&
    "$scratch/build-cmake/consumer"  # CMake gives it an rpath to the imported library
}
check cmake cmake_consumer

# 4. pkg-config: the .pc file lives in the (multiarch) libdir; the staged
# tree is not at its recorded prefix, so tell pkg-config where it is.
pkgconfig_consumer() {
  local pc="--define-variable=prefix=$root"
  export PKG_CONFIG_PATH="$root/$libdir/pkgconfig"
  local flags libs libdir_pc
  flags=$(pkg-config "$pc" --cflags weft) && libs=$(pkg-config "$pc" --libs weft) &&
    libdir_pc=$(pkg-config "$pc" --variable=libdir weft) || return 1
  echo "cflags: $flags; libs: $libs; libdir: $libdir_pc"
  # shellcheck disable=SC2086  # the flags are meant to split
  c++ -std=c++20 -O1 $flags tests/consumers/consumer.cpp -o "$scratch/consumer-pkgconfig" $libs \
    -Wl,-rpath,"$libdir_pc" &&
    "$scratch/consumer-pkgconfig"
}
check pkg-config pkgconfig_consumer

# 5. Meson subproject: the consumer project with a copy of weft's source
# tree (without build directories) as subprojects/weft.
subproject_consumer() {
  local proj=$scratch/subproject
  rm -rf "$proj/subprojects" && mkdir -p "$proj/subprojects/weft" &&
    cp tests/consumers/meson.build tests/consumers/consumer.cpp "$proj/" &&
    tar --exclude='./build*' --exclude=./.git --exclude=./subprojects -cf - . | tar -xf - -C "$proj/subprojects/weft" &&
    setup "$proj/build" "$proj" --buildtype=release &&
    ninja -C "$proj/build" || return 1
  local tests
  tests=$(meson test -C "$proj/build" --list --no-rebuild 2>/dev/null | grep -cv "^$")
  echo "tests in the parent project: $tests"
  meson test -C "$proj/build" --list --no-rebuild
  [ "$tests" -eq 1 ] || { echo "weft added tests to its parent project"; return 1; }
  if ls "$proj/build/subprojects/weft/tests" 2>/dev/null | grep -q test_; then
    echo "weft built its tests as a subproject"
    return 1
  fi
  meson test -C "$proj/build" --print-errorlogs
}
check subproject subproject_consumer

if [ "$failed" -eq 0 ]; then
  echo "consumers: all passed"
else
  echo "consumers: $failed FAILED"
fi
[ "$failed" -eq 0 ]
