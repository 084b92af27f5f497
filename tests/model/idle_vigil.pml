/*
 * idle_vigil.pml: a worker's push onto its own deque without a barrier,
 * and the sleepers' vigil that makes up for it, for spin.
 *
 * The real code:
 *   lib/scheduling/idle_workers.*  the counters (awake, searching) in one
 *                         word, the sleepers' list under a mutex;
 *                         worker_to_notify (producer: barrier, read, wake
 *                         one sleeper as a searcher if nobody searches);
 *                         worker_to_notify_local (the same read with no
 *                         barrier); try_begin_search (at most half the
 *                         workers search); end_search; begin_sleep
 *                         (decrement, list, barrier; reports whether other
 *                         workers were awake: the vigil); wake_self.
 *   lib/scheduling/worker.cpp  push_local (deque push, then
 *                         notify_work_local); the loop's search, steal
 *                         and sleep; sleep() (the re-check after
 *                         begin_sleep, the wait for a token, the vigil's
 *                         one re-check: vigil_found_work).
 *
 * Memory: the counters change only by locked read-modify-writes, which
 * every core sees at once (sequentially consistent here). The deque's
 * push is a plain store, which can sit in the producer's store buffer
 * while the producer's later load of the counters runs: `sb` counts the
 * owner's pushes not yet visible, and the process `drain` makes them
 * visible one at a time, whenever it likes (x86's TSO for this pair). A
 * producer's barrier waits until its buffer is empty.
 *
 * Processes (two workers):
 *   owner  a worker running a CPU-bound fiber that spawns ITEMS children
 *          onto its own deque and then spins until other workers have run
 *          them all (it never pops them itself: the case where a missed
 *          wake-up hangs). Each push is followed by the producer's check,
 *          with no barrier (or with one, BARRIER=1).
 *   drain  the owner's store buffer.
 *   thief  the other worker: searches (steals), sleeps; its sleep's
 *          re-check after the decrement; the wait for a token; the vigil.
 *
 * The vigil's timing: the sleeper looks again k_vigil_ns (100 us) after
 * its decrement; a store leaves a store buffer in nanoseconds. Modelled as:
 * the vigil's re-check can run only once the owner's buffer holds nothing
 * that was pushed before the decrement (`old_sb`, the part of the buffer
 * the decrement found, counted down as it drains). VIGIL_EARLY=1 drops
 * that guard: the re-check may then run while the push still sits in the
 * buffer, and the task is lost (so the timing assumption is what the
 * vigil rests on).
 *
 * Checked: no invalid end state: the owner must see every child run
 * (taken == ITEMS) and the thief end asleep (a valid end) with nothing
 * queued. A lost wake-up leaves the owner spinning and the thief asleep
 * for ever: spin reports an invalid end state.
 *
 * @verify
 * @verify ITEMS=2
 * @verify ITEMS=3
 * @verify BARRIER=1 NOVIGIL=1
 * @verify BARRIER=1 NOVIGIL=1 ITEMS=2
 * @broken NOVIGIL=1 -- invalid end state
 * @broken NOVIGIL=1 ITEMS=2 -- invalid end state
 * @broken VIGIL_EARLY=1 -- invalid end state
 * @broken VIGIL_OTHERS=0 -- invalid end state
 */

#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef BARRIER
#define BARRIER 0
#endif
#ifndef NOVIGIL
#define NOVIGIL 0
#endif
#ifndef VIGIL_EARLY
#define VIGIL_EARLY 0
#endif
/* VIGIL_OTHERS=0: the vigil is kept only when no other worker was awake
   (the wrong way round: the producer is the other worker). */
#ifndef VIGIL_OTHERS
#define VIGIL_OTHERS 1
#endif

#define N 2

byte awake = N;       /* IdleWorkers: awake workers */
byte searching = 0;   /* IdleWorkers: searching workers */
bool listed = false;  /* the thief is on the sleepers' list */
bool token = false;   /* the thief's wake token (Worker::wake) */
byte deque = 0;       /* the owner's deque: visible items */
byte sb = 0;          /* the owner's pushes still in its store buffer */
byte old_sb = 0;      /* of those, the ones the thief's decrement found */
byte taken = 0;       /* children run by the thief */
bool pushed_all = false;

/* worker_to_notify's decision and wake, atomic: its slow part runs under
   the sleepers' mutex, which begin_sleep holds while it lists itself. */
inline notify() {
  atomic {
    if
    :: searching == 0 && listed ->
       listed = false; awake++; searching++; token = true
    :: else -> skip
    fi
  }
}

active proctype owner() {
  byte i = 0;
  do
  :: i < ITEMS ->
     sb++;           /* push_local: the deque store, not yet visible */
#if BARRIER
     (sb == 0);      /* the full barrier: wait for the buffer to drain */
#endif
     notify();       /* read the counters (the load passes the store) */
     i++
  :: else -> break
  od;
  pushed_all = true;
  (taken == ITEMS)   /* spins: only the thief can run the children */
}

active proctype drain() {
  do
  :: atomic { sb > 0 -> sb--; deque++; if :: old_sb > 0 -> old_sb-- :: else -> skip fi }
  :: pushed_all && sb == 0 -> break
  od
}

active proctype thief() {
  bool me_searching = false;
  bool vigil = false;
  bool up = false;
loop:
  /* try_begin_search: at most half the workers search */
  atomic {
    if
    :: !me_searching && 2 * searching < N -> searching++; me_searching = true
    :: else -> skip
    fi
  }
  if
  :: me_searching ->
     atomic {
       if
       :: deque > 0 -> deque--; taken++; up = true
       :: else -> up = false
       fi
     }
     if
     :: up ->
        /* end_search; the last searcher would wake another sleeper:
           with two workers there is none (the owner is awake) */
        atomic { searching--; me_searching = false };
        goto loop
     :: else -> skip
     fi
  :: else -> skip
  fi;
  /* begin_sleep: decrement (and stop searching), list, barrier */
  atomic {
    awake--;
    if
    :: me_searching -> searching--; me_searching = false
    :: else -> skip
    fi;
    listed = true;
#if VIGIL_OTHERS
    vigil = (awake > 0) && !NOVIGIL;
#else
    vigil = (awake == 0) && !NOVIGIL;
#endif
    old_sb = sb
  }
  /* the re-check after the decrement */
  if
  :: deque > 0 -> notify()
  :: else -> skip
  fi;
  /* the wait: asleep here is a valid end once everything ran */
end_asleep:
  do
  :: atomic { token -> token = false; me_searching = true }; goto loop
#if VIGIL_EARLY
  :: vigil ->
#else
  :: vigil && old_sb == 0 ->
#endif
     vigil = false;
     /* vigil_found_work: re-check; if work, wake_self as a searcher */
     atomic {
       if
       :: deque > 0 && listed ->
          listed = false; awake++; searching++; me_searching = true; up = true
       :: else -> up = false
       fi
     };
     if
     :: up -> goto loop
     :: else -> skip
     fi
  od
}
