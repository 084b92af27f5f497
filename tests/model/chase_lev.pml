/*
 * chase_lev.pml: the Chase-Lev deque of lib/scheduling/chase_lev_deque.hpp, with the
 * batch steal of Worker::steal_from_others (lib/scheduling/worker.cpp), for spin.
 *
 * Processes: one owner and THIEVES thieves (two unless said), on one deque whose ring starts at
 * capacity 2 (the smallest the constructor allows) and grows.
 *   owner    NPUSH pushes and NPOP pops in every order, plus (PEEK) one
 *            pop_if_bottom(), as run_queued_task_inline does: modelled as
 *            its look at the bottom slot and, if that found an item, pop()
 *            (whose second read of the owner-only bottom_ and ring_ gives
 *            the values the look read; the code passes them on), and
 *            (SELF_STEAL) one steal() of its own, as pick_task
 *            does every k_fifo_interval ticks; then pops until pop()
 *            returns nothing.
 *   thief    ROUNDS calls of steal_from_others() aimed at this deque: steal
 *            until success or empty (lost_race retries), and after a success
 *            up to min(size_approx() / 2, k_steal_batch - 1) more steals.
 *
 * Checked, over every interleaving:
 *   - an item is taken at most once (assert as each item is taken), and
 *     only items that were pushed are taken (a slot that was never written,
 *     or a stale one, would show up as 0 or as a second taking);
 *   - every pushed item is taken exactly once, and the deque is empty, once
 *     all processes have ended (the final assert in init);
 *   - I1 of the header: top <= bottom + 1 in every reachable state;
 *   - pop_if_bottom() takes the item it looked at or nothing, never another
 *     item (the claim run_queued_task_inline relies on);
 *   - every process ends (no invalid end state).
 *
 * NOT covered: spin explores sequentially consistent interleavings only.
 * Each shared access here is one atomic step in one global order, which is
 * what seq_cst would give. The real code uses weaker orders (relaxed slots,
 * acquire/release on bottom_, ring_ and in push's load of top_, whose cached
 * value is an owner-local variable here); that they
 * suffice is argued beside each atomic in chase_lev_deque.hpp and exercised
 * by tests/test_deque.cpp under ThreadSanitizer, not by this model. Also not
 * covered: more than NPUSH items, more than two thieves, ring retirement
 * (rings are never freed, I4, so there is nothing to model).
 *
 * LONE=1 models the deque of a runtime with one worker (stealable false):
 * pop() without the CAS on the last item (and, in the real code, without
 * the barrier, which this sequentially consistent model cannot tell apart).
 * It must verify with no thief (THIEVES=0), the only way the runtime uses
 * it, and must fail with thieves: the path is correct only because nobody
 * else steals.
 *
 * Deliberately broken variants (spin -DBROKEN=n), each must be caught:
 *   1  steal() claims index t with a plain store instead of the CAS
 *   2  pop() takes the last item without the CAS on top_
 *   3  pop() loads top_ before it publishes the decremented bottom_
 *   4  push() grows one item too late (b - t > capacity), so it overwrites
 *      the slot of the oldest item
 *   5  steal() loads ring_ before top_ and bottom_ (stale ring after grow)
 *   6  push() counts one item fewer than its cached top_ shows (as if it
 *      assumed a steal since), so it overwrites the slot of the oldest item
 *
 * The runs of tests/model/check.sh (spin -D values; see that script):
 *   the defaults: 3 pushes (the ring grows once), a pop, a pop_if_bottom and
 *   a self-steal by the owner, one steal_from_others() per thief;
 *   4 pushes, plain pops; 3 pushes, two steal_from_others() per thief.
 * @verify
 * @verify NPUSH=4 PEEK=0 SELF_STEAL=0
 * @verify ROUNDS=2 PEEK=0 SELF_STEAL=0
 * @verify LONE=1 THIEVES=0 NPUSH=4
 * @broken LONE=1 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 * @broken BROKEN=1 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 * @broken BROKEN=2 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 * @broken BROKEN=3 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 * @broken BROKEN=4 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 * @broken BROKEN=5 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 * @broken BROKEN=6 PEEK=0 SELF_STEAL=0 -- assertion violated (taken[
 */

#ifndef NPUSH
#define NPUSH 3           /* items pushed by the owner */
#endif
#ifndef NPOP
#define NPOP 1            /* pops among the pushes (the drain comes after) */
#endif
#ifndef ROUNDS
#define ROUNDS 1          /* steal_from_others() calls per thief */
#endif
#ifndef PEEK
#define PEEK 1            /* pop_if_bottom() by the owner, 0 or 1 */
#endif
#ifndef SELF_STEAL
#define SELF_STEAL 1      /* steal() by the owner, 0 or 1 */
#endif
#ifndef BROKEN
#define BROKEN 0
#endif
#ifndef LONE
#define LONE 0            /* the lone worker's pop (stealable false), 0 or 1 */
#endif
#ifndef THIEVES
#define THIEVES 2         /* thief processes, 0 to 2 */
#endif

#define BATCH 31          /* Worker::k_steal_batch - 1 */

/* Rings: ring k has capacity CAP0 << k and occupies slots base(k) ..
 * base(k) + cap(k) - 1 of one flat array; `ring` is the index of the ring
 * that ring_ points to. Ring 0 is the one the constructor makes. */
#define CAP0 2
#define NRINGS 3
#define cap(k) (CAP0 << (k))
#define base(k) (CAP0 * ((1 << (k)) - 1))
#define slot(k, i) slots[base(k) + ((i) & (cap(k) - 1))]

/* steal() results (StealStatus) */
#define SUCCESS 1
#define EMPTY 2
#define LOST 3

short top = 0;            /* top_ */
short bottom = 0;         /* bottom_ (pop() makes it -1 for a moment) */
byte ring = 0;            /* ring_ */
#define NSLOTS 14        /* CAP0 * (2^NRINGS - 1): 2 + 4 + 8 */
byte slots[NSLOTS];       /* Ring::slots of every ring; item 0 = never written */

byte taken[NPUSH + 1];    /* how many times each item 1 .. NPUSH was taken */
byte finished = 0;        /* owner and thieves that have ended */

/* I1 of the header, asserted with every write of top_ or bottom_, so that
 * it holds in every reachable state. */
#define I1 assert(top <= bottom + 1)

/* Records that item x was taken; x must be a pushed item, taken once. */
inline took(x) {
  d_step {
    assert(x >= 1 && x <= NPUSH);
    taken[x]++;
    assert(taken[x] == 1)
  }
}

/* ---- the deque, one statement per shared access ---- */

/* ChaseLevDeque::push. Nobody but the owner writes bottom_, ring_ or the
 * slots, so the owner's reads of them are private and are folded together
 * (here, in pop and in pop_if_bottom); every access to top_, and every write
 * others can see, is a step of its own. */
inline push(item) {
  d_step { b = bottom; r = ring };
  /* The owner's cached top_ (tc): reloaded only when the ring looks full. */
#if BROKEN == 6
  if
  :: b - (tc + 1) > cap(r) - 1 ->
#else
  if
  :: b - tc > cap(r) - 1 ->
#endif
     tc = top;                                     /* acquire */
     t = tc;
#if BROKEN == 4
     if
     :: b - t > cap(r) -> grow()
     :: else -> skip
     fi
#else
     if
     :: b - t > cap(r) - 1 -> grow()
     :: else -> skip
     fi
#endif
  :: else -> skip
  fi;
  slot(r, b) = item;                               /* Ring::put, relaxed */
  d_step { bottom = b + 1; I1; b = 0; t = 0; r = 0 }  /* release */
}

/* ChaseLevDeque::grow: copies t .. b-1 into a ring twice the size, then
 * publishes it. The copy is one step: no thief can see the new ring before
 * `ring = nr`, and nobody but the owner writes slots. */
inline grow() {
  d_step {
    assert(r + 1 < NRINGS);
    i = t;
    do
    :: i < b -> slot(r + 1, i) = slot(r, i); i++
    :: else -> break
    od;
    i = 0
  }
  ring = r + 1;                                    /* release */
  r = r + 1
}

/* ChaseLevDeque::pop; x = 0 for nullptr. */
#if LONE
inline pop(x) {
  d_step { b = bottom - 1; r = ring };
  t = top;                                         /* relaxed */
  tc = t;
  if
  :: t > b -> x = 0
  :: else ->
     d_step { bottom = b; I1 };                    /* relaxed */
     x = slot(r, b)
  fi;
  d_step { b = 0; t = 0; r = 0 }
}
#else
inline pop(x) {
  d_step { b = bottom - 1; r = ring };
#if BROKEN == 3
  t = top;
  d_step { bottom = b; I1 };
#else
  d_step { bottom = b; I1 };                       /* seq_cst */
  t = top;                                         /* seq_cst */
#endif
  tc = t;                                          /* push()'s cache */
  if
  :: t > b ->
     d_step { bottom = b + 1; I1 };                /* was empty: restore */
     x = 0
  :: else ->
     x = slot(r, b);
     if
     :: t == b ->
#if BROKEN == 2
        d_step { top = t + 1; I1 };
#else
        d_step {                                   /* compare_exchange_strong */
          if
          :: top == t -> top = t + 1; I1
          :: else -> x = 0
          fi
        };
#endif
        d_step { bottom = b + 1; I1 }
     :: else -> skip
     fi
  fi;
  d_step { b = 0; t = 0; r = 0 }
}
#endif

/* The first half of ChaseLevDeque::pop_if_bottom: the bottom item, or
 * x = 0 for none (then pop_if_bottom returns false). */
inline look_at_bottom(x) {
  b = bottom;
  t = top;                                         /* relaxed */
  if
  :: t >= b -> x = 0
  :: else -> d_step { r = ring; x = slot(r, b - 1) }
  fi;
  d_step { b = 0; t = 0; r = 0 }
}

/* ChaseLevDeque::steal. The thief's own locals are st, sb, sr. */
inline steal(res, item) {
#if BROKEN == 5
  sr = ring;
  st = top;
  sb = bottom;
#else
  st = top;                                        /* seq_cst */
  sb = bottom;                                     /* seq_cst */
#endif
  if
  :: st >= sb -> res = EMPTY; item = 0
  :: else ->
#if BROKEN != 5
     sr = ring;                                    /* acquire */
#endif
     item = slot(sr, st);                          /* Ring::get, relaxed */
#if BROKEN == 1
     d_step { top = st + 1; I1; res = SUCCESS }
#else
     d_step {                                      /* compare_exchange_strong */
       if
       :: top == st -> top = st + 1; I1; res = SUCCESS
       :: else -> res = LOST; item = 0
       fi
     }
#endif
  fi;
  d_step { st = 0; sb = 0; sr = 0 }
}

/* ChaseLevDeque::size_approx */
inline size_approx(n) {
  sb = bottom;                                     /* relaxed */
  st = top;                                        /* relaxed */
  if
  :: sb > st -> n = sb - st
  :: else -> n = 0
  fi;
  d_step { st = 0; sb = 0 }
}

/* ---- the processes ---- */

proctype owner() {
  short b, t, st, sb;
  short tc = 0;  /* ChaseLevDeque::top_cache_ */
  byte r, sr, i, x, p, res;
  byte pushed = 0, pops = 0, peeks = 0, self_steals = 0;

  do
  :: pushed < NPUSH -> pushed++; push(pushed)
  :: pops < NPOP -> pops++; pop(x); if :: x != 0 -> took(x); x = 0 :: else -> skip fi
  :: peeks < PEEK -> peeks++;
     look_at_bottom(p);                            /* pop_if_bottom(p) */
     if :: p != 0 -> pop(x) :: else -> skip fi;
     /* a thief may have taken the item looked at; never another one */
     assert(p == 0 || x == 0 || x == p);
     if :: x != 0 -> took(x); x = 0 :: else -> skip fi;
     p = 0
  :: self_steals < SELF_STEAL -> self_steals++;
     steal(res, x);
     if :: res == SUCCESS -> took(x) :: else -> skip fi;
     x = 0; res = 0
  :: else -> break
  od;
  /* Drain: once pop() returns nothing the deque stays empty (only the owner
   * pushes), so every item left has been taken by someone. */
  do
  :: pop(x);
     if
     :: x == 0 -> break
     :: else -> took(x); x = 0
     fi
  od;
  finished++
}

proctype thief() {
  short st, sb, n;
  byte sr, res, item, extra, rounds = 0;

  do
  :: rounds < ROUNDS -> rounds++;
     /* steal_from_others(), for this one victim */
     do
     :: steal(res, item);
        if
        :: res == SUCCESS ->
           took(item);
           size_approx(n);
           if
           :: n / 2 < BATCH -> extra = n / 2
           :: else -> extra = BATCH
           fi;
           n = 0;
           do
           :: extra > 0 ->
              extra--;
              steal(res, item);
              if
              :: res == SUCCESS -> took(item)   /* pushed to the thief's own deque */
              :: else -> break
              fi
           :: else -> break
           od;
           extra = 0; item = 0; res = 0;
           break
        :: res == EMPTY -> res = 0; break
        :: res == LOST -> res = 0          /* someone else took it; the next may be ours */
        fi
     od
  :: else -> break
  od;
  finished++
}

init {
  byte k;
  atomic {
    run owner();
    k = 0;
    do
    :: k < THIEVES -> run thief(); k++
    :: else -> break
    od
  };
  (finished == 1 + THIEVES);
  assert(top == bottom);
  k = 1;
  do
  :: k <= NPUSH -> assert(taken[k] == 1); k++
  :: else -> break
  od
}
