#!/usr/bin/env python3
"""check_exports.py LIBWEFT_SO INCLUDE_DIR

Checks what the shared library exports (nm -D --defined-only, demangled):
  - every function the public headers mark WEFT_API is exported (a definition
    that does not see the WEFT_API declaration would stay hidden, and only a
    program that happens to call it would fail to link);
  - nothing that is not weft's own: no moodycamel, no std:: template
    instances (lib/libweft.map), no symbol without "weft" in its name.
Prints the counts."""
import pathlib
import re
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    library, include = sys.argv[1], pathlib.Path(sys.argv[2])
    nm = subprocess.run(["nm", "-D", "--defined-only", "-C", library], capture_output=True, text=True)
    if nm.returncode != 0:
        print(nm.stderr)
        return 1
    # "ADDRESS TYPE NAME"; absolute symbols (type A: version nodes) are not code.
    symbols = [line.split(" ", 2)[2] for line in nm.stdout.splitlines() if line.count(" ") >= 2 and line.split(" ")[1] != "A"]
    failures = 0

    strangers = [s for s in symbols if "weft" not in s or s.startswith("std::") or "moodycamel" in s]
    for s in strangers:
        print(f"exported but not weft's own: {s}")
    failures += len(strangers)

    # Names of the functions declared WEFT_API (not classes: their members are
    # checked by the programs that link libweft).
    declared = set()
    for header in include.rglob("*.hpp"):
        for m in re.finditer(r"^\s*WEFT_API\s+[^;{()]*?([A-Za-z_][A-Za-z_0-9]*)\s*\(", header.read_text(), re.M):
            declared.add(m.group(1))
    exported_names = {re.sub(r"\(.*", "", s).split("::")[-1].replace("[abi:cxx11]", "") for s in symbols}
    missing = sorted(name for name in declared if name not in exported_names)
    for name in missing:
        print(f"declared WEFT_API but not exported: {name}")
    failures += len(missing)

    detail = sum(1 for s in symbols if "weft::detail::" in s)
    print(f"{len(symbols)} symbols exported ({detail} in weft::detail); "
          f"{len(declared)} WEFT_API functions declared; {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
