#!/usr/bin/env python3
"""Runs the race program of docs/guide/seeing-inside.md with tracing on
(WEFT_TRACE), then `weft-trace summary` and `weft-trace render` on its trace,
and checks the structure of what came out: the picture the guide shows is
this run's kind of picture. Runs differ, so it checks lanes and event kinds,
never pixels or times.

usage: check_trace_race.py WEFT_TRACE RACE_PROGRAM [OUT_DIR]

With OUT_DIR, the trace and pictures are left there (scripts/make-pictures.sh);
without, they go to a temporary folder."""
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SVG = '{http://www.w3.org/2000/svg}'
NAMES = ['third', 'racer a', 'racer b']  # in the order main spawns them


def fail(problems):
    sys.exit('check_trace_race: ' + '; '.join(problems))


def check(tool, program, out):
    trace = os.path.join(out, 'race.json')
    env = dict(os.environ, WEFT_TRACE=trace)
    run = subprocess.run([program], env=env, capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        fail(['%s exited %d: %s' % (program, run.returncode, run.stderr.strip())])
    m = re.search(r'counter = (\d+), expected (\d+)', run.stdout)
    if not m:
        fail(['%s printed %r, not "counter = N, expected M"' % (program, run.stdout)])
    print(run.stdout.strip())

    problems = []
    with open(trace, encoding='utf-8') as f:
        doc = json.load(f)
    events = doc['traceEvents']
    lanes = {e['tid']: e['args']['name'] for e in events
             if e.get('ph') == 'M' and e.get('name') == 'thread_name'}
    workers = sorted(n for n in lanes.values() if n.startswith('worker '))
    if workers != ['worker 0', 'worker 1']:
        problems.append('worker lanes %s, expected worker 0 and worker 1' % workers)

    def of(cat):
        return [e for e in events if e.get('cat') == cat]

    # main is the task the plain thread spawned; racer a, racer b and third are
    # what main spawned, in that order (spawn marks: parent -> child).
    spawns = of('spawn')
    roots = [e['args']['child'] for e in spawns if e['args']['parent'] == 0]
    if len(roots) != 1:
        fail(['%d spawns from outside the runtime, expected 1 (main)' % len(roots)])
    main_id = roots[0]
    kids = [e['args']['child'] for e in sorted(spawns, key=lambda e: e['ts'])
            if e['args']['parent'] == main_id]
    if len(kids) != 3:
        fail(['main spawned %d fibers, expected 3' % len(kids)])
    ids = dict(zip(NAMES, kids))

    slices = of('fiber')
    for name, fid in ids.items():
        mine = [s for s in slices if s['args']['fiber'] == fid]
        if not mine:
            problems.append('no run slice of %s (fiber %d)' % (name, fid))
            continue
        # Slices carry the fiber's name, or "fiber <id>" where names are not
        # traced yet; any other label is wrong.
        labels = {s['name'] for s in mine}
        if not labels <= {name, 'fiber %d' % fid}:
            problems.append('%s\'s slices are labelled %s' % (name, sorted(labels)))
        ends = {s['args'].get('end') for s in mine}
        if name.startswith('racer') and 'yield' not in ends:
            problems.append('%s never yielded between its load and store' % name)
        if not [s for s in mine if s['tid'] in (0, 1)]:
            problems.append('%s never ran on a worker' % name)
    steals = of('steal')
    if not steals:
        problems.append('no steal')
    elif not [s for s in steals if s['args']['fiber'] == ids['third']]:
        problems.append('third was not stolen (steals: %s)'
                        % [s['args']['fiber'] for s in steals])
    parks = of('park')
    if not [p for p in parks if p['args']['fiber'] == ids['third'] and 'sleep' in p['args']['reason']]:
        problems.append('third never parked on its sleep')
    # Every fiber that parked ran again (the program ends): third after its
    # sleep, woken by the timer (an unpark mark); main after a join, when a
    # child was not done yet (on a loaded machine all may be done by then).
    # A wake-up that lands while the fiber is still switching out has no
    # unpark mark, so for main only running again is required, and for third
    # only when it parked before its deadline: under ThreadSanitizer its first
    # slice takes 0.4-1.7 ms, past its 1 ms sleep in about half the runs, and
    # then the timer may fire before the park ends (the park mark says "0 us
    # to its deadline"; no unpark mark in about one run in ten under TSan,
    # none in 100 runs of the optimized build).
    unparked = {u['args']['fiber'] for u in of('unpark')}
    third_late = [p for p in parks if p['args']['fiber'] == ids['third']
                  and p['args']['reason'].endswith(' 0 us to its deadline')]
    if ids['third'] not in unparked and not third_late:
        problems.append('third was never unparked')
    for p in parks:
        fid = p['args']['fiber']
        if not [s for s in slices if s['args']['fiber'] == fid and s['ts'] >= p['ts']]:
            problems.append('fiber %d parked at %s and never ran again' % (fid, p['ts']))
    if not of('timer'):
        problems.append('no timer fired (third sleeps)')

    # weft-trace summary: one line per lane, every kind counted.
    summary = subprocess.run([tool, 'summary', trace], capture_output=True, text=True, check=True).stdout
    print(summary.strip())
    counts = {}
    for line in summary.splitlines():
        lm = re.match(r'lane (worker \d+): (.*)$', line)
        if lm:
            counts[lm.group(1)] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', lm.group(2))}
    if sorted(counts) != ['worker 0', 'worker 1']:
        problems.append('summary has worker lanes %s' % sorted(counts))
    total = lambda kind: sum(c.get(kind, 0) for c in counts.values())
    for kind in ['fiber', 'steal', 'park', 'timer']:
        if total(kind) == 0:
            problems.append('summary counts no %s on the workers' % kind)
    # Unpark marks may all be missing (see above): the summary must count
    # what the trace holds.
    worker_tids = {tid for tid, name in lanes.items() if name.startswith('worker ')}
    unparks_on_workers = len([u for u in of('unpark') if u['tid'] in worker_tids])
    if total('unpark') != unparks_on_workers:
        problems.append('summary counts %d unpark marks on the workers, the trace holds %d'
                        % (total('unpark'), unparks_on_workers))

    # weft-trace render: an SVG with two worker lanes and slices, and a PNG.
    svg, png = os.path.join(out, 'race.svg'), os.path.join(out, 'race.png')
    subprocess.run([tool, 'render', trace, '--svg', svg, '--png', png, '--width', '960',
                    '--title', 'racer a and racer b race on a counter; third is stolen'],
                   check=True)
    root = ET.parse(svg).getroot()
    labels = [t.text for g in root.iter(SVG + 'g') if g.get('class') == 'lane'
              for t in g.iter(SVG + 'text') if t.text]
    for w in ['worker 0', 'worker 1']:
        if w not in labels:
            problems.append('the SVG has no lane labelled %s' % w)
    if not [r for r in root.iter(SVG + 'rect') if r.get('class') == 'slice']:
        problems.append('the SVG has no slice')
    with open(png, 'rb') as f:
        if f.read(8) != b'\x89PNG\r\n\x1a\n':
            problems.append('the PNG is not a PNG')
    if problems:
        fail(problems)
    print('check_trace_race: %s has the lanes and events it should' % trace)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    tool, program = sys.argv[1], sys.argv[2]
    if len(sys.argv) == 4:
        os.makedirs(sys.argv[3], exist_ok=True)
        check(tool, program, sys.argv[3])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            check(tool, program, tmp)


if __name__ == '__main__':
    main()
