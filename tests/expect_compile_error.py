#!/usr/bin/env python3
"""Compile-failure test: expect_compile_error.py SOURCE DEFINE EXPECTED -- CXX [ARGS...]

Compiles SOURCE with -DDEFINE (it must fail, and the diagnostics must contain
EXPECTED), then without it (it must compile), so that a broken include path or
a typo cannot make the test pass."""
import subprocess
import sys


def compile_(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    if "--" not in sys.argv or sys.argv.index("--") != 4:
        print(__doc__)
        return 2
    source, define, expected = sys.argv[1:4]
    cxx = sys.argv[5:]
    base = cxx + ["-std=c++20", "-fsyntax-only", source]
    control = compile_(base)
    if control.returncode != 0:
        print("the control build (no case) failed, so the test proves nothing:\n" + control.stderr)
        return 1
    bad = compile_(base + ["-D" + define])
    if bad.returncode == 0:
        print(f"-D{define}: compiled, but it must be rejected")
        return 1
    if expected not in bad.stderr:
        print(f"-D{define}: rejected, but without the message {expected!r}:\n" + bad.stderr)
        return 1
    print(f"-D{define}: rejected with {expected!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
