#!/usr/bin/env python3
"""Counts the serialising instructions one weft-bench workload executes.

Usage: scripts/serialising_count.py BUILD_DIR WORKLOAD OPS [WORKERS]

Runs `BUILD_DIR/benchmarks/weft-bench --quick --repeat 1 --workers WORKERS
WORKLOAD` under callgrind with per-instruction counts, disassembles every
object it ran (objdump), and sums the executions of lock-prefixed
instructions, XCHG with memory (implicitly locked) and MFENCE. Prints the
total divided by OPS (the workload's operations in quick mode: 100000 for
spawn and pingpong, 111111 for skynet, 121392 for fib), then the sites
that account for at least 1 % of them, per operation. Start-up and
shutdown are counted too, so the figures are upper bounds.

These instructions cost the same whatever surrounds them (a few ns each:
benchmarks/serial_floor.cpp measures it), which makes their count a floor
that instruction counts alone do not show (docs/benchmarks.md, "Issue 17:
the serialising floor"). Needs valgrind and binutils.
"""
import collections
import re
import subprocess
import sys
import tempfile


def parse_callgrind(path):
    """{object path: {instruction address: executions}}, calls excluded."""
    names = {}
    counts = collections.defaultdict(collections.Counter)
    current = None
    address = 0
    after_calls = False
    line_re = re.compile(r'^(0x[0-9a-f]+|[+-]\d+|\*)\s+\S+\s+(\d+)$')
    for line in open(path):
        line = line.rstrip('\n')
        m = re.match(r'(c?)ob=\((\d+)\)(?: (.*))?$', line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if not m.group(1):
                current = names[m.group(2)]
            continue
        if line.startswith('calls='):
            after_calls = True  # the next cost line is the call's inclusive cost
            continue
        m = line_re.match(line)
        if not m:
            continue
        a = m.group(1)
        if a.startswith('0x'):
            address = int(a, 16)
        elif a != '*':
            address += int(a)
        if after_calls:
            after_calls = False
            continue
        counts[current][address] += int(m.group(2))
    return counts


def serialising_sites(obj, executed):
    """[(function, instruction, executions)] for obj's serialising instructions."""
    try:
        dis = subprocess.run(['objdump', '-d', '-C', '--no-show-raw-insn', obj], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    sites = []
    function = ''
    for line in dis.splitlines():
        m = re.match(r'^[0-9a-f]+ <(.*)>:', line)
        if m:
            function = m.group(1)
            continue
        m = re.match(r'^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$', line)
        if not m:
            continue
        op, args = m.group(2), m.group(3)
        locked = op == 'lock' or op == 'mfence' or (op.startswith('xchg') and '(' in args)
        if not locked:
            continue
        n = executed.get(int(m.group(1), 16), 0)
        if n:
            sites.append((function, (op + ' ' + args).split(',')[0], n))
    return sites


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    build, workload, ops = sys.argv[1], sys.argv[2], int(sys.argv[3])
    workers = sys.argv[4] if len(sys.argv) == 5 else '1'
    with tempfile.NamedTemporaryFile(suffix='.callgrind') as out:
        subprocess.run(['valgrind', '--tool=callgrind', '--dump-instr=yes', '--callgrind-out-file=' + out.name,
                        build + '/benchmarks/weft-bench', '--quick', '--repeat', '1', '--workers', workers,
                        workload], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts = parse_callgrind(out.name)
    sites = []
    for obj, executed in counts.items():
        if obj and obj.startswith('/'):
            sites += [(obj.rsplit('/', 1)[-1], f, i, n) for f, i, n in serialising_sites(obj, executed)]
    total = sum(n for *_, n in sites)
    print(f'{workload} on {workers} worker(s): {total / ops:.2f} serialising instructions per operation')
    for obj, function, insn, n in sorted(sites, key=lambda s: -s[3]):
        if n < total / 100:
            break
        print(f'  {n / ops:5.2f}  {obj}: {function[:90]}: {insn}')


if __name__ == '__main__':
    main()
