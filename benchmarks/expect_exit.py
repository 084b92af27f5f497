#!/usr/bin/env python3
"""Exit-status test: expect_exit.py STATUS EXPECTED -- PROGRAM [ARGS...]

Runs PROGRAM ARGS; passes only if it exits with exactly STATUS and its stderr
contains EXPECTED. meson's should_fail accepts any failure, a crash or an
abort included, so it cannot tell "rejected the command line" from "broke
on it"; this can."""
import signal
import subprocess
import sys


def describe(returncode):
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        print(__doc__)
        return 2
    status, expected = int(sys.argv[1]), sys.argv[2]
    command = sys.argv[4:]
    try:
        got = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        print(f"{command}: still running after 60 s")
        return 1
    if got.returncode != status:
        print(f"{command}: {describe(got.returncode)}, expected exit status {status}; stderr:\n{got.stderr}")
        return 1
    if expected not in got.stderr:
        print(f"{command}: exit status {status}, but stderr lacks {expected!r}:\n{got.stderr}")
        return 1
    print(f"{command}: exit status {status} with {expected!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
