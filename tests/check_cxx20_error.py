#!/usr/bin/env python3
"""check_cxx20_error.py INCLUDE_DIR [GENERATED_INCLUDE_DIR] -- CXX [ARGS...]

Compiles a one-line file including each public header under INCLUDE_DIR/weft
(every *.hpp, detail/ included) with -std=c++17: each must fail, and its first
error must be weft's "weft needs C++20" #error, not some later complaint
about `requires` or concepts. Then includes weft.hpp (all of them) with
-std=c++20 to show that the include path works. GENERATED_INCLUDE_DIR is where the build put
weft/version.hpp (the build tree's include/), which weft.hpp includes."""
import pathlib
import subprocess
import sys
import tempfile

MESSAGE = "weft needs C++20"


def main():
    if "--" not in sys.argv or sys.argv.index("--") not in (2, 3) or len(sys.argv) <= sys.argv.index("--") + 1:
        print(__doc__)
        return 2
    dash = sys.argv.index("--")
    include = pathlib.Path(sys.argv[1])
    include_args = [arg for d in sys.argv[1:dash] for arg in ("-I", d)]
    cxx = sys.argv[dash + 1:]
    headers = sorted(p.relative_to(include).as_posix() for p in (include / "weft").rglob("*.hpp"))
    if len(headers) < 5:
        print(f"only {len(headers)} headers found under {include}/weft: wrong directory?")
        return 1
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for header in headers:
            source = pathlib.Path(tmp) / "use.cpp"
            source.write_text(f"#include <{header}>\nint main() {{ return 0; }}\n")
            base = cxx + include_args + ["-fsyntax-only", str(source)]
            # -Wfatal-errors: stop at the first error, which must be ours.
            old = subprocess.run(base + ["-std=c++17", "-Wfatal-errors"], capture_output=True, text=True)
            errors = [line for line in old.stderr.splitlines() if "error:" in line]
            if old.returncode == 0:
                print(f"{header}: compiled with -std=c++17; it must be rejected")
                failures += 1
            elif not errors or MESSAGE not in errors[0]:
                first = errors[0] if errors else old.stderr.strip()
                print(f"{header}: the first error below C++20 is not weft's #error:\n  {first}")
                failures += 1
        # The control: all of them (weft.hpp) compile with -std=c++20.
        source = pathlib.Path(tmp) / "use.cpp"
        source.write_text("#include <weft/weft.hpp>\nint main() { return 0; }\n")
        new = subprocess.run(cxx + include_args + ["-fsyntax-only", "-std=c++20", str(source)], capture_output=True, text=True)
        if new.returncode != 0:
            print(f"weft/weft.hpp does not compile with -std=c++20:\n{new.stderr}")
            failures += 1
    print(f"{len(headers)} headers checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
