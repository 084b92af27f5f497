/*
 * runnext_watch.pml: a sleeping worker that watches the runnext slots
 * instead of being woken for each push (lib/scheduling/worker.hpp,
 * "Watching"), for spin.
 *
 * The real code (lib/scheduling/worker.cpp):
 *   push_woken       the owner's seq_cst exchange into its runnext slot, then,
 *                    for a push into an empty slot, a seq_cst load of the
 *                    watch mark: marked -> wake nobody; else notify (the
 *                    watcher, here the one sleeper, gets its token).
 *   sleep            a watcher marks the slots (start_watching), sleeps until
 *                    its token or at most k_runnext_watch_ns. When the watch
 *                    runs out it first looks without unmarking (watch_on):
 *                    if the owner switched fibers since its last look, and
 *                    the slot is empty or its owner switched, it watches
 *                    again. Otherwise, and when its token comes, it unmarks
 *                    the slots, then reads them (stop_watching, seq_cst
 *                    store then seq_cst load), and gets up to search if one
 *                    holds a task; else it sleeps on, unwatched.
 *   steal_stale_runnext   the searcher takes a task the owner left there.
 * Spin's interleavings are sequentially consistent, which the seq_cst
 * accesses above give the real code.
 *
 * The owner pushes PUSHES tasks one after another; after each it either
 * takes the task itself (it switched out) or computes for ever (stops);
 * `switches` counts the times it went on to another fiber. The watcher
 * watches, sleeps (woken by its token, or by its timeout: always possible),
 * looks and watches again while the owner keeps switching, then unmarks,
 * looks, and sleeps unwatched until a token. The properties: once nothing
 * can move, no task is left in the slot (a task stuck behind a busy waker
 * with every other worker asleep for good is the failure), checked by a
 * monitor that runs only when every other process is blocked (spin's
 * `timeout`); and the watch ends once the owner stops switching: the
 * watcher looks at most once more than the owner switched (a watch that
 * went on for ever would leave a stuck task where nobody takes it, which
 * the first check cannot see, since the watcher can always move).
 *
 * Runs (tests/model/check.sh):
 * @verify
 * @verify PUSHES=3
 * @broken BROKEN=1 -- assertion violated
 * @broken BROKEN=2 -- assertion violated
 * @broken BROKEN=3 -- assertion violated
 *
 * BROKEN=1: the watcher reads the slots before it unmarks them.
 * BROKEN=2: the owner reads the mark before it publishes the task.
 * BROKEN=3: the watcher's look compares the owner's switches with the
 *           count when the watch began, not at its last look.
 */
#ifndef PUSHES
#define PUSHES 2
#endif
#ifndef BROKEN
#define BROKEN 0
#endif

bit runnext = 0;   /* the owner's slot holds a task */
bit marked = 0;    /* the watcher's mark on it */
bit token = 0;     /* the watcher's wake-up token */
byte taken = 0;    /* tasks taken, by either side */
byte switches = 0; /* the owner's switch count (Worker::switches_) */
bit owner_busy = 0;

proctype Owner() {
  byte i = 0;
  bit seen;
  do
  :: i < PUSHES ->
#if BROKEN == 2
     seen = marked;
     runnext = 1;
#else
     runnext = 1;      /* the exchange */
     seen = marked;    /* then the mark */
#endif
     if
     :: !seen -> token = 1   /* notify */
     :: else -> skip
     fi;
     if
     :: atomic { runnext == 1 -> runnext = 0; taken++; switches++ }  /* switched out: ran it */
     :: atomic { runnext == 0 -> switches++ }  /* the watcher took it: on to another fiber */
     :: owner_busy = 1; goto busy                         /* computes for ever */
     fi;
     i++
  :: else -> break
  od;
busy:
  skip
}

proctype Watcher() {
  bit seen;
  bit switched;
  byte first, last, now, looks = 0;
  /* start_watching (records the count), then the sleep: token or timeout */
  marked = 1;
  first = switches;
  last = first;
watch:
  if
  :: token == 1 -> token = 0; goto unwatch
  :: true -> skip   /* the watch ran out: watch_on looks, marks left alone */
  fi;
  looks++;
  assert(looks <= PUSHES + 1);
  now = switches;
#if BROKEN == 3
  switched = (now != first);
#else
  switched = (now != last);
#endif
  last = now;
  seen = runnext;
  if
  :: seen && !switched -> goto unwatch  /* a task behind an owner that did not switch */
  :: !(seen && !switched) && switched -> goto watch  /* the hand-off goes on */
  :: !(seen && !switched) && !switched -> goto unwatch  /* nobody switched: over */
  fi;
unwatch:
#if BROKEN == 1
  seen = runnext;
  marked = 0;
#else
  marked = 0;       /* stop_watching: unmark */
  seen = runnext;   /* then look */
#endif
  if
  :: seen -> atomic { if :: runnext == 1 -> runnext = 0; taken++ :: else -> skip fi }
  :: else -> skip
  fi;
  /* searches again whenever woken, unwatched */
end_sleep:
  do
  :: token == 1 -> token = 0;
     atomic { if :: runnext == 1 -> runnext = 0; taken++ :: else -> skip fi }
  od
}

proctype Monitor() {
  timeout -> assert(runnext == 0)
}

init {
  atomic {
    run Owner();
    run Watcher();
    run Monitor()
  }
}
