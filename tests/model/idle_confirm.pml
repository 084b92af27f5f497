/*
 * idle_confirm.pml: a worker's push onto its own deque without a barrier,
 * and the sleeper's confirmation that makes up for it, for spin.
 *
 * The real code:
 *   lib/scheduling/idle_workers.*  the counters (awake, searching) in one
 *                         word, the sleepers' list under a mutex;
 *                         may_need_notify_after_push (producer: barrier,
 *                         read, wake one sleeper as a searcher if nobody
 *                         searches); may_need_notify_after_own_push (the
 *                         same read with no barrier); try_begin_search (at
 *                         most half the workers search); end_search;
 *                         begin_sleep (decrement, list, barrier);
 *                         confirm_sleep (the heavy barrier).
 *   lib/scheduling/heavy_barrier.*  membarrier: every running thread of the
 *                         process passes a full barrier before it returns.
 *   lib/scheduling/worker.cpp  push_local (deque push, then
 *                         notify_work_after_own_push); the loop's search,
 *                         steal and sleep; sleep() (the re-check after
 *                         begin_sleep, a confirmation due if another worker
 *                         was awake, the wait for a token, the confirmation:
 *                         the heavy barrier, then the re-check again).
 *
 * Memory: the counters change only by locked read-modify-writes, which
 * every core sees at once (sequentially consistent here). The deque's
 * push is a plain store, which can sit in the producer's store buffer
 * while the producer's later load of the counters runs: `sb` counts the
 * owner's pushes not yet visible, and the process `drain` makes them
 * visible one at a time, whenever it likes (x86's TSO for this pair). A
 * producer's barrier waits until its buffer is empty. The heavy barrier
 * waits until everything the owner's buffer held when it began has
 * drained (`old_sb`, counted down as it drains); the owner may push more
 * meanwhile.
 *
 * Processes (two workers):
 *   owner  a worker running a CPU-bound fiber that spawns ITEMS children
 *          onto its own deque and then spins until other workers have run
 *          them all (it never pops them itself: the case where a missed
 *          wake-up hangs). Each push is followed by the producer's check,
 *          with no barrier (or with one, BARRIER=1).
 *   drain  the owner's store buffer.
 *   thief  the other worker: searches (steals), sleeps; its sleep's
 *          re-check after the decrement; the wait for a token; the
 *          confirmation.
 *
 * NO_HEAVY=1 drops the heavy barrier from the confirmation: its re-check
 * may then run while the push still sits in the buffer (what an earlier
 * design, a timed "vigil" with no barrier, rested on the buffer's timing
 * for), and the task is lost.
 *
 * Checked: no invalid end state: the owner must see every child run
 * (taken == ITEMS) and the thief end asleep (a valid end) with nothing
 * queued. A lost wake-up leaves the owner spinning and the thief asleep
 * for ever: spin reports an invalid end state.
 *
 * @verify
 * @verify ITEMS=2
 * @verify ITEMS=3
 * @verify BARRIER=1 NOCONFIRM=1
 * @verify BARRIER=1 NOCONFIRM=1 ITEMS=2
 * @broken NOCONFIRM=1 -- invalid end state
 * @broken NOCONFIRM=1 ITEMS=2 -- invalid end state
 * @broken NO_HEAVY=1 -- invalid end state
 * @broken CONFIRM_OTHERS=0 -- invalid end state
 */

#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef BARRIER
#define BARRIER 0
#endif
#ifndef NOCONFIRM
#define NOCONFIRM 0
#endif
#ifndef NO_HEAVY
#define NO_HEAVY 0
#endif
/* CONFIRM_OTHERS=0: a confirmation is due only when no other worker was
   awake (the wrong way round: the producer is the other worker). */
#ifndef CONFIRM_OTHERS
#define CONFIRM_OTHERS 1
#endif

#define N 2

byte awake = N;       /* IdleWorkers: awake workers */
byte searching = 0;   /* IdleWorkers: searching workers */
bool listed = false;  /* the thief is on the sleepers' list */
bool token = false;   /* the thief's wake token (Worker::wake) */
byte deque = 0;       /* the owner's deque: visible items */
byte sb = 0;          /* the owner's pushes still in its store buffer */
byte old_sb = 0;      /* of those, the ones the heavy barrier waits for */
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
  bool confirm = false;
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
#if CONFIRM_OTHERS
    confirm = (awake > 0) && !NOCONFIRM
#else
    confirm = (awake == 0) && !NOCONFIRM
#endif
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
  :: confirm ->
     confirm = false;
     /* confirm_sleep: the heavy barrier */
#if !NO_HEAVY
     old_sb = sb;
     (old_sb == 0);
#endif
     /* the re-check again: a notify may pick this very worker, whose
        token the loop then takes */
     if
     :: deque > 0 -> notify()
     :: else -> skip
     fi
  od
}
