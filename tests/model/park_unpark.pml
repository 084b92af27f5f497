/*
 * park_unpark.pml: how a fiber parks on a wait list and is woken, for spin.
 *
 * The real code:
 *   lib/channels/channel_core.cpp  channel_op: under the channel lock, construct a
 *                         Waiter, set_deadline, enqueue the node, unlock,
 *                         Waiter::park(); on cancelled / timed_out take the
 *                         node off the list again under the lock.
 *                         try_send_locked / claim_first: the waker pops the
 *                         node and try_claim(notified)s it under the lock,
 *                         hands the value over, unlocks, then unpark()s.
 *   lib/sync/waiter.cpp        Waiter::park for a fiber: publish_parked_on,
 *                         park_current_fiber(), clear_parked_on,
 *                         cancel_deadline(); fire_deadline:
 *                         try_claim(timed_out) + unpark(); Waiter::unpark.
 *   lib/sync/wait_visit.hpp    publish_parked_on / clear_parked_on: store
 *                         parked_on, then take wait_lock once only while a
 *                         visit is in progress; WaitVisit: the visitors'
 *                         count, raised before they read parked_on.
 *   lib/sync/waiter.hpp        try_claim: one CAS pending -> outcome.
 *   lib/scheduling/worker.cpp        park_current_fiber (the notified fast path),
 *                         suspend_current_fiber (to the loop, or straight
 *                         to the next local fiber), settle_switched_out
 *                         (after the switch, on whichever context landed:
 *                         CAS running -> parked, or re-queue on notified),
 *                         unpark_fiber (a load: parked is ours, schedule
 *                         it; else exchange to notified; schedule if it
 *                         was parked).
 *   lib/scheduling/scheduler.cpp     Scheduler::shutdown: in a WaitVisit, claim
 *                         f->parked_on as cancelled under wait_lock, unpark
 *                         after.
 *   lib/time/timer_heap.*      a firing timer's callback runs outside the heap
 *                         lock; cancel() waits for a running callback.
 *   lib/scheduling/context_switch.*  the switch itself: one step that saves the
 *                         fiber's context and leaves its stack.
 *
 * Processes:
 *   fiber      ROUNDS waits in a row on one wait list, or with SELECT on
 *              two (select_cases: one waiter, a node on each list); the
 *              same Fiber, and so the same park_state word, every time;
 *              each wait with or without a deadline (DEADLINES). Also the
 *              context it switches to (the worker loop or the next fiber):
 *              settle_switched_out runs on the same thread right after the
 *              switch, before that context does anything else, so it is
 *              part of this process.
 *   waker      one per list: a fiber on another worker completing the wait
 *              (try_send_locked) whenever our node is on its list:
 *              claim_first, hand the value over, unlock, unpark.
 *   timer      the firer of the waiter's deadline timer.
 *   canceller  (CANCEL) shutdown's claim through Fiber::parked_on, CANCEL
 *              attempts at any time. The real shutdown cancels only once
 *              the runtime is quiescent; racing it with everything else
 *              checks more than the code needs.
 *   scope      (SCOPE) the cancellation of the fiber's scope
 *              (lib/structured/cancel_state.cpp, CancelState::cancel_subtree): sets
 *              the scope's flag, then under the scope's lock walks its
 *              members and, under each member's wait_lock, claims its
 *              parked_on. The fiber's side (Waiter::park): it joins the
 *              members list at its first park in the scope, publishes
 *              parked_on under wait_lock, then reads the flag and, if set,
 *              claims its own waiter and unparks itself (C2 of
 *              cancel_state.hpp). With SCOPE=1 the fiber waits on a list
 *              nobody completes and no deadline fires, so only the
 *              cancellation can end its waits: a lost one leaves the fiber
 *              parked for ever (an invalid end state), and every wait
 *              after the cancellation must end cancelled.
 *   runner     any worker that pops the fiber from a run queue and resumes
 *              it (Worker::enter, from run_task or a direct switch).
 *
 * Checked, over every interleaving:
 *   - a fiber is resumed only after its context was saved by the switch
 *     away, never while it runs, and at most once per park (asserts in
 *     runner); Worker::enter's assert (park_state == running) holds;
 *   - each wait is claimed by exactly one party and unpark()ed exactly once
 *     (assert in unpark); an unparker never finds `notified` already there;
 *   - nobody touches a waiter after its owner has left the wait: every claim
 *     and every unpark() asserts that the waiter it found is still the live
 *     one (the Waiter lifetime rule of waiter.hpp);
 *   - a notified wait was taken off the list by the waker and sees the value
 *     it handed over; a timed-out or cancelled one leaves nothing on the list
 *     and no timer armed or firing;
 *   - no lost wake-up: every process ends or waits at an end label, so a
 *     fiber left parked after its waiter was claimed is an invalid end state;
 *     and at the end every slow-path park was matched by exactly one resume
 *     and nothing is left queued (final asserts).
 *
 * NOT covered: spin explores sequentially consistent interleavings only.
 * The real park_state, outcome_ and timer state use acq_rel / acquire /
 * release / relaxed orders; that those suffice is argued beside each atomic
 * in the code and exercised under ThreadSanitizer, not here. Likewise the
 * visits count: the code orders a park's store of parked_on and its load of
 * the count with a compiler barrier only, against the visitor's membarrier
 * (sync/wait_visit.hpp argues it); here every step is ordered, so the
 * publish side's wait_lock (which matters only where a store can pass a
 * load) cannot be shown to be needed, only the clear side's. Also not
 * covered: more than one waiting fiber, selects over more than two lists,
 * what a wait list's owner keeps besides the node (a channel's buffer, a
 * mutex's state word and hand-off), plain-thread waiters (their futex word),
 * the deadlock detector and the live-fiber registry.
 *
 * Deliberately broken variants (spin -DBROKEN=n), each must be caught:
 *   1  park is published (running -> parked) before the switch away, as if
 *      a wait-list lock were released before the switch: a waker's worker
 *      resumes a fiber whose context is not saved yet
 *   2  settle_switched_out sets parked with a load and a store instead of the CAS: a
 *      wake-up that lands in between is lost (invalid end state)
 *   3  try_claim is a load and a store instead of the CAS: two winners
 *   4  shutdown reads parked_on without wait_lock: it claims a waiter
 *      whose fiber already left
 *   5  cancel_deadline does not wait for a running timer callback: the
 *      callback touches a waiter that is gone
 *   6  the woken fiber takes its node off the wait list without the list's
 *      lock: a waker that popped the node claims a waiter that is gone
 *   7  (SCOPE) the fiber reads its scope's flag before it publishes
 *      parked_on: a cancellation between the two is lost
 *   8  (SCOPE) the fiber joins the scope's members list only after it read
 *      the flag: the canceller's walk can miss it
 *   9  unpark_fiber, having loaded `running`, stores `notified` instead of
 *      exchanging it: a settle CAS in between is overwritten and the
 *      parked fiber never queued (invalid end state)
 *  10  clear_parked_on ignores the visits count: a resumed fiber leaves
 *      while shutdown, having read parked_on, is about to claim the waiter
 *  11  shutdown raises the visits count only after reading parked_on: the
 *      same, through the visitor's side
 *
 * PINNED=1: the count starts at 1 for good, as where the heavy barrier is
 * unavailable (prepare_wait_visits): every park takes wait_lock.
 *
 * EARLY_RETURN: a wait that arms its deadline and then returns without
 * parking, as TaskBase::wait_done_until, Mutex::lock_until and
 * WaitGroup::wait_until_ns can. EARLY_RETURN=1 is the code as it was: spin
 * finds that a deadline firing in that window leaves `notified` in
 * park_state, so the fiber's next park returns at once (the bug weft-soak
 * also found; docs/design/model_check.md). EARLY_RETURN=2 is the fix now in
 * ~Waiter (lib/sync/waiter.cpp): an owner whose waiter was claimed though it
 * never parked consumes that wake-up. It verifies; 1 is kept as a broken run.
 *
 * The runs of tests/model/check.sh (spin -D values; see that script): the
 * defaults (3 waits on one list, each with or without a deadline, 2
 * cancellation attempts), and a select over two lists with two wakers.
 * @verify
 * @verify SELECT=1
 * @verify EARLY_RETURN=2
 * @broken EARLY_RETURN=1 -- assertion violated (old==0)
 * @broken BROKEN=1 -- assertion violated (ctx_saved
 * @broken BROKEN=2 -- invalid end state
 * @broken BROKEN=3 -- assertion violated (unparks==1)
 * @broken BROKEN=4 -- assertion violated (gen==g)
 * @broken BROKEN=5 -- assertion violated (gen==g)
 * @broken BROKEN=6 -- assertion violated (gen==g)
 * @verify SCOPE=1
 * @verify SCOPE=1 SELECT=1
 * @broken SCOPE=1 BROKEN=7 -- invalid end state
 * @broken SCOPE=1 BROKEN=8 -- invalid end state
 * @broken BROKEN=9 -- invalid end state
 * @verify PINNED=1
 * @verify SCOPE=1 PINNED=1
 * @broken BROKEN=10 -- assertion violated (gen==g)
 * @broken BROKEN=11 -- assertion violated (gen==g)
 */

#ifndef ROUNDS
#define ROUNDS 3          /* waits in a row by the one fiber */
#endif
#ifndef SELECT
#define SELECT 0          /* 1: each wait is a select over two lists */
#endif
#ifndef DEADLINES
#define DEADLINES 1       /* 1: each wait may have a deadline */
#endif
#ifndef CANCEL
#define CANCEL 2          /* shutdown's claim attempts */
#endif
#ifndef EARLY_RETURN
#define EARLY_RETURN 0
#endif
#ifndef BROKEN
#define BROKEN 0
#endif
#ifndef SCOPE
#define SCOPE 0           /* 1: a scope canceller instead of wakers, timer and shutdown */
#endif
#ifndef PINNED
#define PINNED 0          /* 1: no heavy barrier, the visits count pinned at 1 */
#endif
#if SCOPE
#undef DEADLINES
#define DEADLINES 0
#endif

/* Fiber::park_state */
#define RUNNING 0
#define PARKED 1
#define NOTIFIED 2
/* Waiter::Outcome */
#define PENDING 0
#define O_NOTIFIED 1
#define O_CANCELLED 2
#define O_TIMED_OUT 3
/* Wait lists: one (a channel op) or two (a select over two channels) */
#if SELECT
#define NL 2
#else
#define NL 1
#endif
/* Timer::state */
#define T_IDLE 0
#define T_ARMED 1
#define T_FIRING 2

byte park_state = RUNNING;  /* Fiber::park_state */
bit wait_lock = 0;          /* Fiber::wait_lock */
byte parked_on = 0;         /* Fiber::parked_on: the live waiter's number, 0 = nullptr */
byte visits = PINNED;       /* g_wait_visits: WaitVisits in progress */

byte gen = 0;               /* the waiter alive on the fiber's stack (round number), 0 = none */
byte outcome = PENDING;     /* Waiter::outcome_ */
byte timer = T_IDLE;        /* the waiter's DeadlineTimer state */

bit list_lock[NL];          /* each channel's lock */
bool linked[NL];            /* the waiter's node is on that channel's wait list */
byte node_gen[NL];          /* which waiter that node belongs to */
byte value = 0;             /* what a waker handed over (ChanNode::slot/ok/fired) */

/* The switch and the run queues */
bool on_cpu = true;         /* the fiber runs on some worker */
bool ctx_saved = false;     /* its context is saved: it may be resumed */
byte runnable = 0;          /* times it sits in a deque / the injector */

/* Bookkeeping for the asserts */
byte unparks = 0;           /* unpark() calls for the live waiter */
byte resumes = 0;           /* resumes of the current park */
byte slow_parks = 0;        /* parks that switched away */
byte total_resumes = 0;
bool fiber_done = false;
byte finished = 0;          /* wakers, timer and canceller that have ended */

/* The fiber's cancellation scope (SCOPE) */
bit scope_flag = 0;         /* CancelState::cancelled_ */
bit scope_lock = 0;         /* CancelState::lock_ */
bit member = 0;             /* the fiber is on the scope's members list */
bool cancelled_before = false;  /* the flag was set before this wait began */

inline lock(l) { atomic { l == 0 -> l = 1 } }
inline unlock(l) { l = 0 }

/* Waiter::try_claim by someone holding waiter number g. */
inline try_claim(o, g, won) {
#if BROKEN == 3
  d_step { assert(gen == g); won = (outcome == PENDING) };
  if
  :: won -> outcome = o
  :: else -> skip
  fi
#else
  d_step {
    assert(gen == g);   /* the waiter is still alive */
    if
    :: outcome == PENDING -> outcome = o; won = 1
    :: else -> won = 0
    fi
  }
#endif
}

/* Waiter::unpark + unpark_fiber, by the winner of waiter number g. */
inline unpark(g, old) {
  d_step {
    assert(gen == g);   /* reads fiber_: the waiter is still alive */
    unparks++;
    assert(unparks == 1)
  };
  /* unpark_fiber: a load first; parked means switched out and ours (the
   * claim: nobody else unparks it), no RMW. Else the exchange races the
   * settle CAS. */
  old = park_state;                                     /* load, acquire */
  if
  :: old == PARKED -> skip
  :: else ->
#if BROKEN == 9
     park_state = NOTIFIED                               /* a plain store after the load */
#else
     d_step { old = park_state; park_state = NOTIFIED }  /* exchange, acq_rel */
#endif
  fi;
  if
  :: old == PARKED ->
     park_state = RUNNING;                               /* we own the parked fiber */
     runnable++                                          /* scheduler->schedule(f) */
  :: else -> assert(old == RUNNING)                      /* not switched out yet: it sees notified itself */
  fi;
  old = 0
}

/* dequeue_locked: takes the fiber's node of round r off list i, if it is
 * still there. */
inline dequeue(i) {
#if BROKEN != 6
  lock(list_lock[i]);
#endif
  d_step { if :: linked[i] && node_gen[i] == r -> linked[i] = false; node_gen[i] = 0 :: else -> skip fi };
#if BROKEN != 6
  unlock(list_lock[i])
#else
  skip
#endif
}

/* Waiter::cancel_deadline: TimerHeap::cancel disarms an armed timer, or
 * waits for a running callback to finish. */
inline cancel_deadline() {
  if
  :: armed ->
     atomic { if :: timer == T_ARMED -> timer = T_IDLE :: else -> skip fi };
#if BROKEN != 5
     timer == T_IDLE;                                    /* waits for a running callback */
#endif
     armed = 0
  :: else -> skip
  fi
}

/* Waiter::park for a fiber, with park_current_fiber and the part of
 * Worker::settle_switched_out that runs after the switch. Uses the fiber's r, ok, seen
 * and armed. */
inline waiter_park() {
#if SCOPE
#if BROKEN != 8
  /* join_scope_members: at the first park in the scope, before parked_on */
  if
  :: !member -> lock(scope_lock); member = 1; unlock(scope_lock)
  :: else -> skip
  fi;
#endif
#if BROKEN == 7
  seen = scope_flag;                                     /* read too early */
#endif
#endif
  /* publish_parked_on */
  parked_on = r;
  if
  :: visits != 0 -> lock(wait_lock); unlock(wait_lock)
  :: else -> skip
  fi;
#if SCOPE
#if BROKEN != 7
  seen = scope_flag;                                     /* after publishing parked_on (C2) */
#endif
#if BROKEN == 8
  if
  :: !member -> lock(scope_lock); member = 1; unlock(scope_lock)
  :: else -> skip
  fi;
#endif
  if
  :: seen ->
     try_claim(O_CANCELLED, r, ok);
     if
     :: ok -> unpark(r, seen)                            /* our own wake-up: no switch below */
     :: else -> skip
     fi;
     ok = 0
  :: else -> skip
  fi;
  seen = 0;
#endif
  /* park_current_fiber */
  if
  :: park_state == NOTIFIED ->                          /* woken before we switched: no switch */
     park_state = RUNNING
  :: else ->
#if BROKEN == 1
     d_step { seen = park_state; if :: seen == RUNNING -> park_state = PARKED; ok = 1 :: else -> ok = 0 fi };
     d_step { on_cpu = false; ctx_saved = true };
#else
     /* suspend_current_fiber: switch_context to the loop or the next fiber */
     d_step { on_cpu = false; ctx_saved = true };
     /* Worker::settle_switched_out, case park, on the landing context */
#if BROKEN == 2
     seen = park_state;
     if
     :: seen == RUNNING -> park_state = PARKED; ok = 1
     :: else -> ok = 0
     fi;
#else
     d_step { seen = park_state; if :: seen == RUNNING -> park_state = PARKED; ok = 1 :: else -> ok = 0 fi };
#endif
#endif
     if
     :: !ok ->
        assert(seen == NOTIFIED);                       /* expected == k_park_notified */
        park_state = RUNNING;                            /* ours again */
        runnable++                                       /* push_local(task) */
     :: else -> skip
     fi;
     ok = 0; seen = 0;
     slow_parks++;
     on_cpu                                             /* until a worker resumes us */
  fi;
  /* resumed (perhaps on another worker): the rest of Waiter::park */
  parked_on = 0;                                         /* clear_parked_on */
#if BROKEN != 10
  if
  :: visits != 0 -> lock(wait_lock); unlock(wait_lock)   /* a visitor may hold our waiter */
  :: else -> skip
  fi;
#endif
  cancel_deadline()
}

proctype fiber() {
  byte r = 1, out, seen;
  bit ok, armed;

  do
  :: r <= ROUNDS ->
     /* channel_op (select_cases: every lock, in address order): the
      * operation would block, so queue a node and park */
     lock(list_lock[0]);
#if SELECT
     lock(list_lock[1]);
#endif
     d_step { gen = r; outcome = PENDING; unparks = 0; resumes = 0; value = 0; cancelled_before = scope_flag };  /* Waiter waiter; */
#if DEADLINES
     if
     :: d_step { assert(timer == T_IDLE); timer = T_ARMED }; armed = 1  /* set_deadline: before the node is visible */
     :: skip
     fi;
#endif
#if EARLY_RETURN
     /* The wait turns out not to be needed after the deadline was armed,
      * and the function returns without parking: TaskBase::wait_done_until
      * when add_joiner() fails, Mutex::lock_until when the mutex is free,
      * WaitGroup::wait_until_ns when the count is zero. ~Waiter cancels the
      * deadline, but a timer that fired first has claimed the waiter and
      * unparked the fiber, leaving `notified` in park_state (1: the code
      * as it was). 2: the fix in ~Waiter, the owner takes that wake-up. */
     if
     :: armed ->
#if SELECT
        unlock(list_lock[1]);
#endif
        unlock(list_lock[0]);
        cancel_deadline();
#if EARLY_RETURN == 2
        if
        :: outcome != PENDING -> waiter_park()          /* claimed: consume the unpark owed to us */
        :: else -> skip                                 /* nobody can claim it now: not visible */
        fi;
        assert(unparks == (outcome != PENDING));
#endif
        d_step { gen = 0; r++ };                        /* ~Waiter */
        goto next_round
     :: true -> skip                                    /* or it parks after all */
     fi;
#endif
     /* enqueue_locked; no node of an earlier wait may be left behind */
     d_step { assert(!linked[0]); linked[0] = true; node_gen[0] = r };
#if SELECT
     d_step { assert(!linked[1]); linked[1] = true; node_gen[1] = r };
     unlock(list_lock[1]);
#endif
     unlock(list_lock[0]);

     waiter_park();

     d_step { out = outcome; assert(out != PENDING && unparks == 1) };
#if SCOPE
     assert(!cancelled_before || out == O_CANCELLED);  /* nothing else can end it */
#endif
     if
     :: out == O_NOTIFIED -> assert(value == r)        /* the completer set `ok` before waking us */
     :: else -> assert(value == 0)                     /* nothing was delivered */
     fi;
#if SELECT
     /* select_cases step 4: every node still queued comes off, one lock at a time */
     dequeue(0);
     dequeue(1);
#else
     if
     :: out == O_NOTIFIED ->
        assert(!(linked[0] && node_gen[0] == r))        /* the completer unlinked the node */
     :: else -> dequeue(0)                              /* channel_op: claimed by shutdown or our deadline */
     fi;
#endif
     d_step { gen = 0; out = 0; r++ };                  /* ~Waiter: the waiter is gone */
next_round:
     skip
  :: else -> break
  od;
  fiber_done = true
}

/* A sender on another worker, on list i: try_send_locked finds our node. */
proctype waker(byte i) {
  byte g, old;
  bit won;

end:
  do
  :: linked[i] ->
     lock(list_lock[i]);
     if
     :: linked[i] ->
        d_step { linked[i] = false; g = node_gen[i]; node_gen[i] = 0 };  /* claim_first: pop_front */
        try_claim(O_NOTIFIED, g, won);
        if
        :: won -> value = g                             /* hand the value over, under the lock */
        :: else -> skip                                 /* claimed elsewhere: dropped, skipped */
        fi
     :: else -> won = 0
     fi;
     unlock(list_lock[i]);
     if
     :: won -> unpark(g, old)
     :: else -> skip
     fi;
     g = 0; won = 0
  :: fiber_done -> break
  od;
  finished++
}

/* TimerHeap::fire_due on the waiter's DeadlineTimer, then fire_deadline. */
proctype timer_firer() {
  byte g, old;
  bit won;

end:
  do
  :: d_step { timer == T_ARMED -> timer = T_FIRING; g = gen };  /* taken out under the heap lock */
     try_claim(O_TIMED_OUT, g, won);
     if
     :: won -> unpark(g, old)
     :: else -> skip
     fi;
     d_step { assert(timer == T_FIRING); timer = T_IDLE; g = 0; won = 0 }  /* release: last access */
  :: fiber_done -> break
  od;
  finished++
}

/* Scheduler::shutdown's pass over the live fibers. */
proctype canceller() {
  byte g, old, tries = 0;
  bit won;

end:
  do
  :: tries < CANCEL ->
     tries++;
#if BROKEN != 11
     visits++;                                           /* WaitVisit */
#endif
#if BROKEN == 4
     g = parked_on;
     if
     :: g != 0 -> try_claim(O_CANCELLED, g, won)
     :: else -> won = 0
     fi;
#else
     lock(wait_lock);
     g = parked_on;
#if BROKEN == 11
     visits++;                                           /* too late */
#endif
     if
     :: g != 0 -> try_claim(O_CANCELLED, g, won)
     :: else -> won = 0
     fi;
     unlock(wait_lock);
#endif
     visits--;                                           /* ~WaitVisit */
     if
     :: won -> unpark(g, old)
     :: else -> skip
     fi;
     g = 0; won = 0
  :: tries >= CANCEL -> break
  od;
  finished++
}

/* CancelState::cancel on the fiber's scope: flag, then the members' waits. */
proctype scope_canceller() {
  byte g, old;
  bit won;

  visits++;                                              /* WaitVisit, before the flag */
  scope_flag = 1;                                        /* exchange, seq_cst */
  lock(scope_lock);
  if
  :: member ->
     lock(wait_lock);
     g = parked_on;
     if
     :: g != 0 -> try_claim(O_CANCELLED, g, won)
     :: else -> won = 0
     fi;
     unlock(wait_lock)
  :: else -> won = 0
  fi;
  unlock(scope_lock);
  visits--;                                              /* ~WaitVisit */
  if
  :: won -> unpark(g, old)                               /* after every lock */
  :: else -> skip
  fi;
  finished++
}

/* Worker::enter (run_task or a direct switch) on whichever worker pops the fiber. */
proctype runner() {
end:
  do
  :: d_step { runnable > 0 -> runnable-- };
     d_step {
       assert(park_state == RUNNING);       /* Worker::enter's assert */
       assert(ctx_saved && !on_cpu);        /* switched away, and not running elsewhere */
       assert(resumes == 0);                /* once per park */
       resumes++;
       total_resumes++;
       ctx_saved = false;
       on_cpu = true                        /* switch_context(loop, f->context) */
     }
  od
}

init {
#if SCOPE
  atomic {
    run fiber();
    run scope_canceller();
    run runner()
  };
  (fiber_done && finished == 1);
#else
  atomic {
    run fiber();
    run waker(0);
#if SELECT
    run waker(1);
#endif
    run timer_firer();
    run canceller();
    run runner()
  };
  (fiber_done && finished == NL + 2);
#endif
  assert(gen == 0 && parked_on == 0 && !linked[0] && !linked[NL - 1]);
  assert(visits == PINNED);
  assert(timer == T_IDLE);
  assert(park_state == RUNNING && on_cpu && !ctx_saved);
  assert(runnable == 0 && slow_parks == total_resumes)
}
