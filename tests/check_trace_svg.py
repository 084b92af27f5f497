#!/usr/bin/env python3
"""Renders a sample trace with weft-trace and parses the SVG with a real XML
parser (xml.etree): it must be well-formed, have one lane group per lane and
one slice rect per fiber slice, and no script.

usage: check_trace_svg.py WEFT_TRACE TRACE.json LANES SLICES"""
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SVG = '{http://www.w3.org/2000/svg}'


def main():
    tool, trace, lanes, slices = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with tempfile.TemporaryDirectory() as tmp:
        out = tmp + '/out.svg'
        subprocess.run([tool, 'render', trace, '--svg', out], check=True)
        root = ET.parse(out).getroot()  # raises on malformed XML
    if root.tag != SVG + 'svg':
        sys.exit('root is %s, not svg' % root.tag)
    got_lanes = [g for g in root.iter(SVG + 'g') if g.get('class') == 'lane']
    got_slices = [r for r in root.iter(SVG + 'rect') if r.get('class') == 'slice']
    scripts = list(root.iter(SVG + 'script'))
    problems = []
    if len(got_lanes) != lanes:
        problems.append('%d lane groups, expected %d' % (len(got_lanes), lanes))
    if len(got_slices) != slices:
        problems.append('%d slice rects, expected %d' % (len(got_slices), slices))
    if scripts:
        problems.append('has a script')
    for g in got_lanes:
        if not [t for t in g.iter(SVG + 'text') if t.text]:
            problems.append('lane %s has no label' % g.get('id'))
    if problems:
        sys.exit(trace + ': ' + '; '.join(problems))
    print('%s: well-formed, %d lanes, %d slices' % (trace, lanes, slices))


if __name__ == '__main__':
    main()
