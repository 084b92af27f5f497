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
 *                    its token or at most k_runnext_watch_ns; whenever it
 *                    wakes it unmarks them, then reads them (stop_watching,
 *                    seq_cst store then seq_cst load), and gets up to search
 *                    if one holds a task; else it sleeps on, unwatched.
 *   steal_stale_runnext   the searcher takes a task the owner left there.
 * Spin's interleavings are sequentially consistent, which the seq_cst
 * accesses above give the real code.
 *
 * The owner pushes PUSHES tasks one after another; after each it either
 * takes the task itself (it switched out) or computes for ever (stops). The
 * watcher watches, sleeps (woken by its token, or by its timeout: always
 * possible), unmarks, looks, and then sleeps unwatched until a token. The
 * property: once nothing can move, no task is left in the slot (a task
 * stuck behind a busy waker with every other worker asleep for good is the
 * failure). Checked by a monitor that runs only when every other process
 * is blocked (spin's `timeout`).
 *
 * Runs (tests/model/check.sh):
 * @verify
 * @verify PUSHES=3
 * @broken BROKEN=1 -- assertion violated
 * @broken BROKEN=2 -- assertion violated
 *
 * BROKEN=1: the watcher reads the slots before it unmarks them.
 * BROKEN=2: the owner reads the mark before it publishes the task.
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
     :: atomic { runnext == 1 -> runnext = 0; taken++ }  /* switched out: ran it */
     :: atomic { runnext == 0 -> skip }                   /* the watcher took it */
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
  /* start_watching, then the sleep: token or timeout */
  marked = 1;
  if
  :: token == 1 -> token = 0
  :: true -> skip   /* the watch ran out */
  fi;
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
