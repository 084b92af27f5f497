// Worker: one OS thread running the scheduling loop
//     runnext (the fiber this worker's fibers woke last) -> own deque (LIFO)
//     -> injector
//     -> steal from random victims (their deques, then stale runnext slots)
//     -> global queue (yielded fibers) -> sleep
// and the fibers it finds, one at a time, each until it yields, parks or ends.
//
// A fiber that yields goes to the runtime's shared GlobalQueue, not to a
// queue of this worker's, and the yield notifies an idle worker: when this
// worker goes on to run a long fiber, another one takes the yielder (Go's
// Gosched puts the goroutine on its global run queue for the same reason).
//
// Fairness: every k_injector_interval-th pick looks at the shared injector
// and then at the global queue first (Go checks its global queue every 61
// ticks); right after a yield the injector goes first (a wake-up from
// outside must not wait behind a fiber yielding in a loop); and every
// k_fifo_interval-th pick takes the oldest item of the own deque instead of
// the newest, so neither a hot pair of fibers ping-ponging at the bottom of
// the deque nor a busy deque starves anyone.
//
// runnext (Go's runnext): a fiber woken by a fiber of this worker goes to a
// one-task slot and runs as soon as the waker switches out, on this core,
// with its data still in cache; the fiber it displaces goes to the deque.
// Guards: a thief takes a runnext task only once it has sat there for
// k_runnext_grace_ns while the owner kept running the same fiber (the
// waker did not switch out: it may be a long CPU loop), so a hand-off
// between two fibers stays on one core but a woken fiber never waits
// behind a busy waker for more than that; and every k_runnext_streak-th
// pick skips the slot once, so two fibers waking each other cannot keep
// the deque from running (Tokio's LIFO-slot starvation).
//
// Watching the runnext slots: a push into an empty runnext slot used to
// wake a sleeping worker every time (so that someone would take the task
// if the waker kept running). Two fibers handing off on one worker then
// woke the other worker about once every 15 round trips: it searched,
// found only a fresh runnext task, slept, and was woken again, a futex
// wake-up on the hand-off's path each time (pingpong on 2 workers 310 ns
// a round trip against 210 on 1). Now a worker whose last two searches in
// a row found only a fresh runnext task (its owner took it within the
// grace period; a hand-off seen once is no pattern) sleeps *watching*: it
// marks the other workers' slots watched and sleeps at most
// k_runnext_watch_ns; a push into an empty watched slot wakes nobody.
// When the watch runs out, the watcher first looks without unmarking
// (watch_on): if another worker has switched fibers since its last look,
// every task it sees in a slot belongs to a worker that switched since,
// and no deque holds work, the hand-off goes on and it watches again where
// it lies (no wake-up counted, no search, no line written). Otherwise, and
// when woken for any other reason, it unmarks the slots and looks at them
// again (a seq_cst store, then a seq_cst load; the pusher's seq_cst
// exchange, then its seq_cst load of the mark: one of the two sees the
// other), and searches if one is occupied. So a woken fiber behind a busy
// waker is taken within two watches (the push may come right after a look
// that saw its owner switch) plus the grace period.
//
// Fiber reuse: a fiber whose task has finished picks the next task itself
// (pick_local_task, the loop's own order) and, if that task has not started,
// runs it on the same fiber and stack: no stack from the pool, no new
// context, no switch to the loop and back (marl and Go's gogo on a cached
// g do the like). Not for a fiber that was ever parked (it is in the live
// registry, which others read) nor for one whose worker has nothing local.
// Its pick takes an unstarted task at the bottom of the deque before a
// fiber waiting in runnext, at most k_fresh_before_runnext times in a row
// (fresh_before_runnext): a parent collecting its children's results then
// wakes once for many of them instead of once per child
// (docs/design/runtime.md, "Fresh tasks before runnext").
//
// Contract: the loop and every private member belong to the worker's
// thread. Fibers call back into their current worker only through
// suspend_current_fiber(), which re-reads current_worker() every time (a
// fiber may resume on another worker). steal(), queued_approx() and wake()
// are for any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "diagnostics/park_counts.hpp"
#include "diagnostics/run_slices.hpp"
#include "scheduling/chase_lev_deque.hpp"
#include "scheduling/context_switch.hpp"
#include "scheduling/stack_pool.hpp"
#include "scheduling/task_ids.hpp"
#include "weft/detail/deadline.hpp"
#include "weft/this_fiber.hpp"  // maybe_yield(), declared once, exported (WEFT_API)

namespace weft::detail {

class CancelState;
class Scheduler;
class TraceBuffer;
enum class TraceEnd : std::uint8_t;  // diagnostics/trace_buffer.hpp
class TaskBase;
class TimerHeap;
struct Fiber;

enum class SuspendReason { yield, park, finish };

class Worker {
 public:
  Worker(Scheduler& scheduler, std::size_t index, std::size_t stack_size, std::size_t stack_cache,
         SlabStacks& slabs, bool measure_slices, Nanos time_slice);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts / joins the OS thread (by the Scheduler).
  void start();
  void join();

  // Owner thread: queues a new task on the own deque and lets an idle
  // worker know there is work. Throws std::bad_alloc when the deque cannot
  // grow (nothing queued). Defined inline in scheduler.cpp, the spawn path,
  // where its only callers are (push_spawned and its traced form).
  inline void push_local(TaskBase* task);
  // push_local's rest when the deque may be full (it reads top_ again, may
  // grow the ring): out of line, a tail call.
  [[gnu::noinline, gnu::cold]] void push_local_reloading(TaskBase* task);
  // As push_local, for a task that is already runnable (a woken fiber that
  // had parked for `why`): never fails; when the deque cannot grow it goes
  // to the global queue.
  void push_woken(TaskBase* task, ParkReason why) noexcept;

  // This worker's trace lane (tracer.hpp), or nullptr when tracing is off:
  // every trace hook on this worker is one test of it. Set by the
  // Scheduler before start(); read by this worker's thread.
  void set_trace_buffer(TraceBuffer* b) noexcept {
    trace_ = b;
    instrumented_ = instrumented_ || b != nullptr;
  }
  TraceBuffer* trace_buffer() const noexcept { return trace_; }

  Fiber* current_fiber() const noexcept { return current_; }
  Scheduler& scheduler() const noexcept { return scheduler_; }
  std::size_t index() const noexcept { return index_; }

  // Any thread.
  ChaseLevDeque<TaskBase>::StealResult steal() { return deque_.steal(); }
  std::size_t queued_approx() const { return deque_.size_approx(); }
  // Any thread (the dump): the deque and the runnext slot. relaxed: an
  // estimate.
  std::size_t queued_count() const {
    return deque_.size_approx() + (runnext_.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
  }
  // Any thread: the deque or the runnext slot holds something (the sleep
  // re-check and quiescence). relaxed load: the callers put a full barrier
  // before it (IdleWorkers' Dekker pair). `with_runnext` false: the deque
  // only (a watcher's re-check).
  bool has_queued_work(bool with_runnext = true) const {
    return deque_.size_approx() != 0 || (with_runnext && runnext_.load(std::memory_order_relaxed) != nullptr);
  }
  // A watcher ending its watch (stop_watching). seq_cst: after its seq_cst
  // store of this slot's mark; pairs with push_woken (see "Watching" at
  // the top).
  bool runnext_occupied_after_watch() const noexcept {
    return runnext_.load(std::memory_order_seq_cst) != nullptr;
  }
  // A thief: this worker's runnext task, if it stays there for
  // k_runnext_grace_ns while this worker runs the same fiber; else nullptr,
  // with `fresh` set if there was a task and the owner took it or moved on
  // meanwhile (a hand-off in progress: see "Watching" at the top).
  TaskBase* steal_stale_runnext(bool& fresh) noexcept;
  // Whether a sleeping worker watches this one's runnext slot (see the
  // top). Only the watcher stores; the owner reads it in push_woken.
  void set_runnext_watched(bool watched) noexcept {
    // seq_cst: the store that ends a watch pairs with push_woken's load
    // (see the top).
    runnext_watched_.store(watched, std::memory_order_seq_cst);
  }
  // Gives the sleeping worker its wake-up token (it was already removed from
  // the sleepers by IdleWorkers), or makes its next sleep return at once.
  void wake() noexcept;
  // Timer heap: makes a sleeping worker look at the timers (take the driver
  // role, or re-arm its timed sleep) without counting it awake.
  void timer_kick() noexcept;

  // Owner thread (Scheduler::submit): a fresh task id from this worker's
  // batch (task_ids.hpp): a plain increment, one atomic add per batch.
  std::uint64_t take_task_id() noexcept {
    if (next_task_id_ == task_id_limit_) [[unlikely]] {
      next_task_id_ = reserve_task_ids(k_task_id_batch);
      task_id_limit_ = next_task_id_ + k_task_id_batch;
    }
    return next_task_id_++;
  }
  // Any thread (the dump): the id of the fiber this worker runs now, or 0
  // between fibers. A snapshot: it may have moved on by the time it is read.
  std::uint64_t running_id() const noexcept { return running_id_.load(std::memory_order_relaxed); }

  // Statistics (Runtime::metrics), any thread, approximate.
  std::uint64_t steals() const noexcept { return steals_.load(std::memory_order_relaxed); }
  std::uint64_t parks() const noexcept { return park_counts_.parks(); }
  const ParkCounts& park_counts() const noexcept { return park_counts_; }
  const RunSlices& run_slices() const noexcept { return run_slices_; }
  bool runnext_occupied() const noexcept { return runnext_.load(std::memory_order_relaxed) != nullptr; }
  std::uint64_t run_slice_count() const noexcept { return switches_.load(std::memory_order_relaxed); }
  std::uint64_t sleeps() const noexcept { return sleeps_.load(std::memory_order_relaxed); }
  std::uint64_t wakeups() const noexcept { return wakeups_.load(std::memory_order_relaxed); }
  // Tasks spawned onto this worker's deque. acquire: pairs with push_local's
  // release store, so that a reader that saw a task's start (fibers_started,
  // read first) also sees its spawn.
  std::uint64_t spawned() const noexcept { return spawned_.load(std::memory_order_acquire); }
  // Fibers started / finished on this worker (a fiber may finish elsewhere).
  // acquire: pairs with the owner's release stores (start_fiber, finish_fiber).
  std::uint64_t fibers_started() const noexcept { return fibers_started_.load(std::memory_order_acquire); }
  std::uint64_t fibers_finished() const noexcept { return fibers_finished_.load(std::memory_order_acquire); }

 private:
  friend Worker* suspend_current_fiber(SuspendReason why);
  friend Worker* suspend_fiber_of(Worker* w, SuspendReason why);
  friend void park_current_fiber(Fiber* f);
  friend void slice_checkpoint(Worker* w);
  friend void weft::this_fiber::maybe_yield();
  friend void fiber_main(void* arg);
  friend inline void run_on_fiber(Fiber* f, TaskBase* task);  // defined in worker.cpp, its one user
  friend bool run_queued_task_inline(TaskBase* task) noexcept;

  static constexpr std::uint32_t k_injector_interval = 61;
  static constexpr std::uint32_t k_fifo_interval = 31;
  static std::uint32_t next_fair_tick(std::uint32_t tick) noexcept;
  // The fairness tick's pick, then (if it found nothing) the rest of the
  // pick: pick_after_fair.
  template <bool FreshFirst>
  [[gnu::noinline]] TaskBase* pick_fair();
  TaskBase* injected_after_yield() noexcept;
  static constexpr int k_steal_rounds = 2;
  static constexpr std::size_t k_steal_batch = 32;  // most tasks taken per successful steal
  // Most of a woken fiber's stack that warm() prefetches: 32 lines.
  static constexpr std::ptrdiff_t k_prefetch_stack_bytes = 2048;
  static constexpr std::size_t k_warm_batch = 16;  // tasks warmed at once from our own deque
  static constexpr std::uint32_t k_work_bit = 1;  // wake_token_: woken for work
  static constexpr std::size_t k_trim_batch = 8;  // stacks returned per idle pass
  static constexpr std::size_t k_trim_task_spans = 2;  // task depot spans (64 KiB) freed per idle pass
  static constexpr Nanos k_trim_quiet_ns = 2'000'000;  // trim only if no timer is due sooner
  // How long a worker must have slept, not woken by anyone, before it gets
  // up to trim stacks (run(), "real idleness").
  static constexpr Nanos k_trim_idle_ns = 5'000'000;
  static constexpr Nanos k_runnext_watch_ns = 50'000;  // a watcher's longest sleep
  // How long into a sleep a worker confirms it (IdleWorkers, "Own pushes"):
  // the longest a task pushed without a barrier can wait for a worker that
  // slept through its push. Sleeps shorter than this pay nothing.
  static constexpr Nanos k_confirm_ns = 100'000;
  static constexpr std::uint32_t k_fresh_searches_to_watch = 2;  // a hand-off seen this often
  static constexpr Nanos k_runnext_grace_ns = 3'000;    // a thief leaves a fresh runnext alone this long
  static constexpr std::uint32_t k_runnext_streak = 16; // runnext picks in a row before the deque goes first once
  static constexpr std::uint32_t k_fresh_before_runnext = 16;  // fresh tasks a finishing fiber runs before runnext

  void run();
  bool quiet_for_a_while(const TimerHeap& heap) noexcept;
  // One idle pass of giving back: a few surplus stacks and task depot
  // batches. True if it gave any back.
  bool trim_some() noexcept;
  TaskBase* next_task();
  TaskBase* pick_task();
  // pick_task() without searching other workers nor taking yielded fibers.
  // FreshFirst: a finishing fiber's pick (fresh_before_runnext).
  template <bool FreshFirst = false>
  TaskBase* pick_local_task();
  // pick_local_task()'s body, inlined into direct_successor (a park's
  // pick: the call and its frame were a tenth of what the pick cost).
  template <bool FreshFirst>
  [[gnu::always_inline]] inline TaskBase* pick_local_body();
  // Its parts (worker.cpp says why the pick is split): after the cancel
  // epoch's test; after the fairness tick's; the runnext slot and the deque.
  // The rare paths, out of line, each ending in the rest of the pick:
  // pick_promoting here; pick_fair, fresh_before_runnext and warm_own_batch
  // below.
  template <bool FreshFirst>
  [[gnu::always_inline]] inline TaskBase* pick_promoted();
  template <bool FreshFirst>
  [[gnu::always_inline]] inline TaskBase* pick_after_fair();
  [[gnu::always_inline]] inline TaskBase* pick_runnext_or_deque();
  template <bool FreshFirst>
  [[gnu::noinline, gnu::cold]] TaskBase* pick_promoting(std::uint64_t epoch);
  // A finishing fiber runs the unstarted task at the bottom of the deque
  // on its own stack before the fiber waiting in runnext, at most
  // k_fresh_before_runnext times in a row, and only if that fiber parked in
  // a channel receive (pick_local_task tests the slot, the reason and the
  // streak); if the bottom task has started or is gone, the rest of the
  // pick instead (pick_runnext_or_deque, a tail call).
  [[gnu::noinline]] TaskBase* fresh_before_runnext();
  // A fiber whose task has finished: the next task to run on this same
  // fiber and stack (bound to it), or nullptr (the fiber ends). A runnable
  // fiber found instead goes to handoff_, which the loop runs next.
  [[gnu::always_inline]] inline TaskBase* next_task_for_finished(Fiber* f) noexcept;  // one caller: fiber_main
  // the task starts on f; always inlined: it is on the spawn path (a call
  // there costs more than the body)
  [[gnu::always_inline]] inline void bind_task(Fiber* f, TaskBase* task) noexcept;
  TaskBase* take_runnext() noexcept;  // the runnext task, or nullptr; ends a fresh_streak_
  TaskBase* steal_from_others();
  // The watch (see the top): marks the others' runnext slots, or unmarks
  // them and says whether one is occupied.
  void start_watching() noexcept;
  bool stop_watching() noexcept;
  // A watch that ran out: whether to watch again without unmarking (the
  // hand-off goes on), from reads alone (see the top).
  bool watch_on() noexcept;
  // Calls try_victim(worker) for each other worker, from a random start,
  // until one returns a task.
  template <class TryVictim>
  TaskBase* visit_victims(TryVictim&& try_victim);
  // One task from v's deque plus up to half of the rest into ours; nullptr
  // when v's deque is empty.
  TaskBase* steal_half_from(Worker& v);
  // Prefetches what resuming these tasks' fibers will touch (the caller
  // owns the tasks; worker.cpp says why and how).
  static void warm(TaskBase* const* tasks, std::size_t n) noexcept;
  // Takes up to k_warm_batch tasks off the bottom of this worker's deque,
  // warms them and puts them back in the same order; returns `popped`, the
  // task the pick just took (pick_runnext_or_deque's tail call).
  [[gnu::noinline]] TaskBase* warm_own_batch(TaskBase* popped) noexcept;
  // A task of ours onto our deque, or onto the global queue, which
  // notifies, if the deque cannot grow (then false): push_woken's displaced
  // runnext task, a stolen batch, a warmed batch put back.
  bool push_or_global(TaskBase* task) noexcept;
  bool sleep();  // false when the runtime is exiting
  void run_task(TaskBase* task);
  Fiber* start_fiber(TaskBase* task);
  Fiber* make_fiber(TaskBase* task, Stack stack) noexcept;
  // Makes f the running fiber (a fresh time slice), from the loop.
  void enter(Fiber* f) noexcept;
  // Makes `in` the running fiber right after `out`'s slice ended on this
  // thread with nothing between (a finished task's fiber taking the next,
  // a parking fiber switching straight to the next): one instrumented_
  // test for both ends, and a trace begins the new slice at the old one's
  // end instead of reading the clock again. `in` may be `out` (a fiber
  // taking on its next task).
  void chain_slice(Fiber* out, TraceEnd end, Fiber* in) noexcept;
  // enter()'s part that is not instrumentation.
  void begin_slice(Fiber* f) noexcept;
  // The cold sides of the instrumented_ branch: a slice begins (f about to
  // run) or ends (f switches out, or finishes its task: `end`).
  [[gnu::cold, gnu::noinline]] void instrumented_switch_in(Fiber* f, bool chained) noexcept;
  [[gnu::cold, gnu::noinline]] void instrumented_switch_out(Fiber* f, TraceEnd end) noexcept;
  // Right after a switch lands on this thread (in the loop or in a fiber):
  // finishes the suspension of the fiber that switched out (switched_out_):
  // queues a yielder, completes a park (running -> parked), or disposes of a
  // finished fiber. Its context is saved only now, so only now may anyone
  // resume it (fiber.hpp's handshake, unchanged by who runs this step).
  void settle_switched_out();
  // Its body, inlined where a parked fiber resumes after a direct switch.
  [[gnu::always_inline]] inline void settle_body();
  // A parking fiber's successor: the next local task's fiber (started here
  // if new), or nullptr to go through the loop (nothing local, timers due,
  // exiting, or no stack).
  Fiber* direct_successor() noexcept;
  bool timers_due() const noexcept;
  void finish_fiber(Fiber* fiber);
  void fire_timers(TimerHeap& heap, bool wait) noexcept;  // fire_due() (driver) or fire_own_due(), traced
  // A finished fiber's references on its scope: held back and dropped
  // together, n at a time, when a fiber of another scope finishes here or
  // the worker runs out of work (flush_scope_references), so that children
  // of one scope finishing on two workers do not move the scope's count
  // between the cores once each.
  void drop_scope_references(CancelState* scope, std::uint32_t n) noexcept;
  void flush_scope_references() noexcept;
  std::uint64_t next_random() noexcept;

  Scheduler& scheduler_;
  const std::size_t index_;
  // The runtime has no other worker: nobody steals from us, so runnext_
  // needs no read-modify-write (push_woken, take_runnext), the deque's pop
  // no barrier (ChaseLevDeque's stealable), and a push wakes nobody.
  const bool lone_;
  // Options::inline_join, kept here: read at every join (inline_join.cpp).
  const bool inline_join_;
  // The process's timer heap (timers()), kept here: a direct switch asks it
  // whether timers are due (timers_due) at every park, and timers() is a
  // call with a guard on a function-local static. The loop and sleep()
  // use it too.
  TimerHeap& timer_heap_;
  ChaseLevDeque<TaskBase> deque_;
  StackPool stacks_;
  ExecContext loop_context_;       // this thread's own stack, running run()
  Fiber* current_ = nullptr;       // the fiber running now, if any
  TraceBuffer* trace_ = nullptr;   // set_trace_buffer(); nullptr: tracing off
  // Tracing or run-slice timing is on (trace_ != nullptr || measure_slices_):
  // the one predictable branch at each switch point, whose cold side
  // (instrumented_switch_in/out) does either or both. Set before start().
  bool instrumented_ = false;
  SuspendReason suspend_reason_ = SuspendReason::yield;  // set by the fiber before it switches out
  Fiber* switched_out_ = nullptr;  // the fiber settle_switched_out() settles next
  std::uint32_t tick_ = 0;  // picks past the urgent queue (pick_local_task), each tested against:
  // The next tick_ that is a multiple of k_injector_interval or of
  // k_fifo_interval: one compare per pick instead of two divisions. tick_
  // steps by one and meets it exactly; a step not followed by the test
  // would pass it for 2^32 picks.
  std::uint32_t next_fair_tick_ = k_fifo_interval;
  bool searching_ = false;         // counted in IdleWorkers' searching
  bool just_yielded_ = false;      // the last fiber yielded: the injector goes first
  CancelState* held_scope_ = nullptr;  // drop_scope_references(); this thread only
  std::uint32_t held_scope_refs_ = 0;  // references held back on held_scope_
  std::uint64_t seen_cancel_epoch_ = 0;  // cancel_epoch() when this worker last looked
  std::uint64_t rng_;
  std::uint32_t runnext_streak_ = 0;  // runnext picks in a row (pick_task)
  std::uint32_t fresh_streak_ = 0;    // fresh tasks run before a waiting runnext since it was last taken
  // The fiber in runnext parked in a channel receive, so a finishing fiber
  // may run fresh tasks first (fresh_before_runnext); owner only.
  bool runnext_after_fresh_ = false;
  std::uint32_t warm_left_ = 0;       // pops left before warm_own_batch() again
  TaskBase* handoff_ = nullptr;       // picked by a finishing fiber, run next by the loop
  // runnext: written (exchange) by this thread only, emptied by this thread
  // or by a thief's CAS (a lone worker's: a load and a store, lone_). Its
  // own cache line, with switches_, so that a searching thief reading them
  // does not slow the deque's owner.
  alignas(64) std::atomic<TaskBase*> runnext_{nullptr};
  // Fibers resumed by this worker so far; a thief reads it to tell whether
  // the owner is still in the fiber that filled runnext. Single writer.
  std::atomic<std::uint64_t> switches_{0};
  // A sleeping worker watches runnext_ (see the top); set and cleared by
  // watchers, read by push_woken. Its own line: the watchers' stores must
  // not take runnext_'s line away from its owner.
  alignas(64) std::atomic<bool> runnext_watched_{false};
  // This thread only: searches in a row that found nothing but a fresh
  // runnext task somewhere (from k_fresh_searches_to_watch on, the next
  // sleep watches: see the top); and whether our marks are set now.
  std::uint32_t fresh_searches_ = 0;
  bool watching_ = false;
  // This thread only, while watching: each worker's switches_ at our last
  // look (watch_on). Sized once, at construction.
  std::vector<std::uint64_t> watch_switches_;
  // Set when this worker slept k_trim_idle_ns without being woken and got
  // up to trim stacks; cleared when it runs a task. Only then does it trim:
  // a worker that is idle between two bursts of work no longer gives
  // stacks back (each MADV_DONTNEED stalls every other core running this
  // process for a TLB shoot-down, ~17 us here) only to fault them in again.
  bool trim_due_ = false;
  // Wake-up word: k_work_bit once a waker chose this worker, and
  // TimerHeap::k_kick_bit when the timer heap wants it to look at the
  // timers. exchange(0, acquire) in sleep() pairs with the release fetch_or
  // in wake() and timer_kick(). Also this worker's futex word as timer driver.
  alignas(64) std::atomic<std::uint32_t> wake_token_{0};
  // Time slice of the running fiber (time_slice.cpp); this thread only.
  std::uint32_t slice_countdown_ = 1;  // maybe_yield() calls before the next clock read
  Nanos slice_start_ = 0;              // 0: no read yet since the fiber resumed
  Nanos slice_last_read_ = 0;
  std::uint64_t next_task_id_ = 0;   // take_task_id(); this thread only
  std::uint64_t task_id_limit_ = 0;  // one past the batch's last id
  // The running fiber's id for the dump (running_id()). Single writer (this
  // thread, in enter() and when a fiber finishes or is reused): relaxed
  // stores, plain movs, and relaxed loads by the dump: a diagnostic
  // snapshot, nothing is read through it.
  std::atomic<std::uint64_t> running_id_{0};
  // Single-writer counters (this thread), read relaxed by metrics() unless
  // noted.
  std::atomic<std::uint64_t> steals_{0};
  std::atomic<std::uint64_t> sleeps_{0};
  std::atomic<std::uint64_t> wakeups_{0};
  std::atomic<std::uint64_t> spawned_{0};  // release store, see spawned()
  ParkCounts park_counts_;  // parks and resumes by reason (the parks metric is their sum)
  // Runtime::Options::measure_run_slices (tested on the cold side of
  // instrumented_).
  const bool measure_slices_;
  RunSlices run_slices_;
  // Tasks started and finished on this worker (metrics: fibers_started,
  // fibers_finished, and queued/alive from them); a task that ran without a
  // fiber of its own (inline join, a fiber that could not be made) counts
  // as both, at once. Bumped only by count_started/count_finished.
  std::atomic<std::uint64_t> fibers_started_{0};
  std::atomic<std::uint64_t> fibers_finished_{0};
  // release: single writer (this worker's thread); pairs with
  // fibers_started()/fibers_finished()' acquire loads in metrics().
  [[gnu::always_inline]] void count_started() noexcept {
    fibers_started_.store(fibers_started_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  [[gnu::always_inline]] void count_finished() noexcept {
    fibers_finished_.store(fibers_finished_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  std::thread thread_;
};

// On a fiber's stack: switches from the running fiber to the loop of the
// worker running it, telling the loop why. Returns when the fiber is resumed,
// possibly on another worker: that worker (valid until the next park).
Worker* suspend_current_fiber(SuspendReason why);

// Parks the running fiber, `f` (the caller's waiter knows it: no second
// read of the thread), until Waiter-based unpark_fiber() (see fiber.hpp
// for the handshake).
void park_current_fiber(Fiber* f);

}  // namespace weft::detail
