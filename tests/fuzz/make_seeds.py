#!/usr/bin/env python3
"""Writes the hand-written seeds tests/fuzz/corpus/seed-* (the rest of the
corpus was found by libFuzzer). The byte encoding is channel_fuzz.cpp's:

  byte 0        number of channels - 1 (mod 4); 0x80: free the channels
                undrained at the end
  1 per channel policy + 3 * capacity index (policy 0 buffered, 1 dropping,
                2 sliding; capacities 0 1 2 3 4 2 9 17)
  then ops      one opcode byte (index into k_ops, mod 24) and its arguments
"""
import os
import sys

OPS = {  # first index of each operation in channel_fuzz.cpp's k_ops table
    'try_send': 0, 'try_recv': 3, 'close': 6, 'observe': 7,
    'select_default': 8, 'select_after_zero': 10, 'send_for_zero': 11,
    'recv_for_zero': 12, 'spawn_send': 13, 'spawn_recv': 15,
    'spawn_select': 17, 'send': 19, 'recv': 20, 'select': 21,
    'short_wait': 22, 'flush': 23,
}
CAPS = [0, 1, 2, 3, 4, 2, 9, 17]
POLICY = {'buffered': 0, 'dropping': 1, 'sliding': 2}


def chan(policy, cap):
    return POLICY[policy] + 3 * CAPS.index(cap)


def sel(cases, random=False, extra_first=False):
    """A select spec: cases are ('recv', c) or ('send', c)."""
    spec = (len(cases) - 1) | (0x10 if random else 0) | (0x20 if extra_first else 0)
    return [spec] + [c | (0x10 if kind == 'send' else 0) for kind, c in cases]


class Seed:
    def __init__(self, channels, drain=True):
        self.b = [(len(channels) - 1) | (0 if drain else 0x80)]
        self.b += [chan(p, c) for p, c in channels]

    def op(self, name, *args):
        self.b.append(OPS[name])
        for a in args:
            self.b += a if isinstance(a, list) else [a]
        return self

    def spawn(self, kind, c_or_sel, timed=False):
        t = 0x80 if timed else 0
        if kind == 'select':
            return self.op('spawn_select', t, c_or_sel)
        return self.op('spawn_' + kind, c_or_sel | t)


def seeds():
    s = {}
    s['rendezvous'] = (Seed([('buffered', 0)])
                       .spawn('recv', 0).op('try_send', 0).op('flush').op('observe', 0)
                       .spawn('send', 0).op('try_recv', 0).op('flush')
                       .op('try_send', 0).op('try_recv', 0))
    s['parked-senders-fifo'] = (Seed([('buffered', 2)])
                                .op('try_send', 0).op('try_send', 0)
                                .spawn('send', 0).spawn('send', 0).spawn('send', 0, timed=True)
                                .op('observe', 0).op('try_recv', 0).op('try_recv', 0)
                                .op('recv_for_zero', 0).op('try_recv', 0).op('try_recv', 0)
                                .op('flush').op('observe', 0))
    s['parked-receivers-fifo'] = (Seed([('dropping', 1)])
                                  .spawn('recv', 0).spawn('recv', 0, timed=True).spawn('recv', 0)
                                  .op('observe', 0).op('try_send', 0).op('send_for_zero', 0)
                                  .op('send', 0).op('try_send', 0).op('flush').op('observe', 0))
    s['dropping'] = (Seed([('dropping', 2)])
                     .op('try_send', 0).op('try_send', 0).op('try_send', 0).op('try_send', 0)
                     .op('observe', 0).op('try_recv', 0).op('try_recv', 0).op('try_recv', 0))
    s['sliding'] = (Seed([('sliding', 2)])
                    .op('try_send', 0).op('try_send', 0).op('try_send', 0).op('try_send', 0)
                    .op('observe', 0).op('try_recv', 0).op('try_recv', 0).op('try_recv', 0))
    s['close-wakes-all'] = (Seed([('buffered', 0), ('buffered', 1)])
                            .spawn('recv', 0).spawn('recv', 0, timed=True)
                            .op('try_send', 1).spawn('send', 1).spawn('send', 1, timed=True)
                            .op('close', 0).op('close', 1).op('flush').op('observe', 0).op('observe', 1)
                            .op('try_recv', 1).op('try_recv', 1).op('try_send', 1))
    s['parked-select-stale-node'] = (Seed([('buffered', 0), ('buffered', 0), ('buffered', 0)])
                                     .spawn('select', sel([('recv', 0), ('recv', 1), ('send', 2)]))
                                     .op('try_send', 1).op('try_send', 0).op('try_recv', 2)
                                     .op('observe', 0).op('flush').op('observe', 0).op('observe', 2))
    s['select-default-priority'] = (Seed([('buffered', 2), ('sliding', 1), ('buffered', 0)])
                                    .op('select_default', sel([('recv', 0), ('send', 0), ('send', 2)]))
                                    .op('select_default', sel([('recv', 0), ('send', 1)], extra_first=True))
                                    .op('select_after_zero', sel([('recv', 2), ('recv', 1), ('recv', 0)]))
                                    .op('select_default', sel([('recv', 2), ('send', 2)]))
                                    .op('observe', 0).op('observe', 1))
    s['select-random'] = (Seed([('buffered', 3), ('dropping', 1), ('buffered', 0)])
                          .op('try_send', 0).op('try_send', 0)
                          .op('select_default', sel([('recv', 0), ('send', 1), ('recv', 0)], random=True))
                          .op('select', sel([('recv', 0), ('send', 0), ('send', 1)], random=True))
                          .spawn('recv', 2)
                          .op('select_after_zero', sel([('send', 2), ('recv', 2)], random=True, extra_first=True))
                          .op('flush'))
    s['short-waits-time-out'] = (Seed([('buffered', 0), ('buffered', 1)])
                                 .op('short_wait', 1, 0).op('short_wait', 0, 0)
                                 .op('short_wait', 2, sel([('recv', 0), ('send', 0)]))
                                 .op('try_send', 1).op('short_wait', 0, 1)
                                 .op('observe', 0).op('observe', 1))
    s['ring-grows'] = (Seed([('buffered', 17), ('sliding', 9)], drain=False)
                       .op('try_send', 0).op('try_send', 0).op('try_send', 0).op('try_recv', 0)
                       .op('try_recv', 0))
    for _ in range(12):
        s['ring-grows'].op('try_send', 0).op('try_send', 1)
    s['ring-grows'].op('try_recv', 1).op('observe', 0).op('observe', 1)
    s['timed-select-helpers'] = (Seed([('buffered', 0), ('dropping', 1), ('buffered', 1)])
                                 .spawn('select', sel([('recv', 0), ('recv', 2)]), timed=True)
                                 .spawn('select', sel([('send', 0), ('recv', 2)]), timed=True)
                                 .op('try_recv', 0).op('try_send', 2).op('close', 0).op('flush'))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, seed in seeds().items():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(bytes(b & 0xff for b in seed.b))


if __name__ == '__main__':
    main()
