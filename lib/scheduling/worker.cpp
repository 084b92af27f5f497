#include "scheduling/worker.hpp"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "structured/fiber_local.hpp"
#include "diagnostics/activity.hpp"
#include "structured/cancel_state.hpp"
#include "sync/futex.hpp"
#include "scheduling/idle_workers.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/task_depot.hpp"
#include "diagnostics/stack_overflow.hpp"
#include "diagnostics/tracer.hpp"
#include "time/timer_heap.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

Worker::Worker(Scheduler& scheduler, std::size_t index, std::size_t stack_size, std::size_t stack_cache,
               SlabStacks& slabs, bool measure_slices, Nanos time_slice)
    : scheduler_(scheduler),
      index_(index),
      lone_(scheduler.options().workers == 1),
      inline_join_(scheduler.options().inline_join),
      timer_heap_(timers()),
      // Only the other workers of this runtime steal (steal_from_others): a
      // lone worker's deque has no thief, and its pop() no barrier.
      deque_(ChaseLevDeque<TaskBase>::k_default_capacity, !lone_),
      stacks_(stack_size, stack_cache, slabs),
      instrumented_(measure_slices),
      rng_(0x9E3779B97F4A7C15ull * (index + 1)),
      watch_switches_(lone_ ? 0 : scheduler.options().workers),
      measure_slices_(measure_slices),
      run_slices_(time_slice) {}

Worker::~Worker() { assert(!thread_.joinable()); }

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::wake() noexcept {
  // release: pairs with sleep()'s acquire exchange. fetch_or: a timer kick
  // may be pending in the same word.
  wake_token_.fetch_or(k_work_bit, std::memory_order_release);
  futex_wake(wake_token_, 1);
}

void Worker::timer_kick() noexcept {
  // release: pairs with sleep()'s acquire exchange.
  wake_token_.fetch_or(TimerHeap::k_kick_bit, std::memory_order_release);
  futex_wake(wake_token_, 1);
}

void Worker::push_woken(TaskBase* task, ParkReason why) noexcept {
  // seq_cst: release publishes the task (and what its unparker wrote) to a
  // thief's acquire CAS in steal_stale_runnext(); seq_cst also makes this
  // exchange the producer's half of IdleWorkers' Dekker pair when it is the
  // whole push (notify_work_after_rmw). The displaced task is ours: we
  // wrote it, or a thief's CAS emptied the slot and we read nullptr.
  TaskBase* displaced;
  if (lone_) {
    // No thief (only other workers steal), and a wake-up from any other
    // thread goes to the injector (Scheduler::schedule): this thread alone
    // fills and empties the slot, so a load and a store will do. relaxed
    // load: our own last write; release store: as the exchange below, for
    // anyone who peeks (queued_count, has_queued_work: counts only).
    displaced = runnext_.load(std::memory_order_relaxed);
    runnext_.store(task, std::memory_order_release);
  } else {
    displaced = runnext_.exchange(task, std::memory_order_seq_cst);
  }
  // Only a receiver may wait behind fresh tasks (fresh_before_runnext): it
  // holds nothing that others wait for. A fiber woken by a lock's or a
  // semaphore's release may hold what it waited for (a hand-off), and
  // delaying it stalls every other waiter (mutex on 2 workers: 2x slower).
  runnext_after_fresh_ = why == ParkReason::channel_recv;
  // push_or_global's fallback, the global queue, notifies by itself.
  if (displaced != nullptr && !push_or_global(displaced)) return;
  // A lone worker is awake (it is pushing): nobody else could take the task.
  if (lone_) return;
  // Even for the slot: a searcher takes it if we keep running (see above),
  // and the wake-up is free while one searches. Not for the slot while a
  // sleeping worker watches it: it looks again soon (worker.hpp,
  // "Watching"). seq_cst: after the exchange, the pusher's half of the pair
  // with stop_watching().
  if (displaced == nullptr) {
    if (runnext_watched_.load(std::memory_order_seq_cst)) return;
    scheduler_.notify_work_after_rmw();
  } else {
    scheduler_.notify_work();
  }
}

bool Worker::push_or_global(TaskBase* task) noexcept {
  try {
    deque_.push(task);
    return true;
  } catch (...) {  // std::bad_alloc: the ring could not grow
    scheduler_.push_global(task);  // notifies
    return false;
  }
}

TaskBase* Worker::take_runnext() noexcept {
  // relaxed load first: an empty slot costs no read-modify-write. The
  // exchange races only with a thief's CAS; what the task's unparker wrote
  // reached this thread before the task entered the slot (push_woken runs
  // here).
  TaskBase* t = runnext_.load(std::memory_order_relaxed);
  if (t == nullptr) return nullptr;
  // A lone worker's slot has no thief (push_woken): a store empties it.
  // relaxed: nothing is published by emptying it.
  if (lone_) {
    runnext_.store(nullptr, std::memory_order_relaxed);
  } else {
    t = runnext_.exchange(nullptr, std::memory_order_relaxed);
  }
  if (t != nullptr) fresh_streak_ = 0;  // the waiting fiber runs: a new streak may begin
  return t;
}

TaskBase* Worker::steal_stale_runnext(bool& fresh) noexcept {
  // acquire: pairs with push_woken()'s release exchange.
  TaskBase* t = runnext_.load(std::memory_order_acquire);
  if (t == nullptr) return nullptr;
  // relaxed: switches_ only tells whether the owner moved on; the task
  // itself is published through runnext_.
  const std::uint64_t seen = switches_.load(std::memory_order_relaxed);
  const Nanos until = now_ns() + k_runnext_grace_ns;
  do {
    cpu_relax();
    // relaxed: a change means "not stale", nothing is read through it.
    if (runnext_.load(std::memory_order_relaxed) != t || switches_.load(std::memory_order_relaxed) != seen) {
      fresh = true;
      return nullptr;  // the owner took it or moved on: it was not stuck
    }
  } while (now_ns() < until);
  // acquire on success: as above (the slot may have been refilled with the
  // same task in between; that write is published the same way).
  if (runnext_.compare_exchange_strong(t, nullptr, std::memory_order_acquire, std::memory_order_relaxed)) return t;
  return nullptr;
}

std::uint64_t Worker::next_random() noexcept {
  // xorshift64: victim choice only needs to be cheap and spread out.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_;
}

void Worker::run() {
  const AltSignalStack signal_stack;  // the overflow handler runs on it
  set_current_worker(this);
  adopt_thread_context(loop_context_);
  std::string name = "weft-w" + std::to_string(index_);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  set_precise_timer_slack();
  TimerHeap::set_thread_shard(TimerHeap::shard_of_worker(index_));  // our timers go to our own shard
  TimerHeap& heap = timer_heap_;
  scheduler_.worker_ready();  // the Runtime's constructor waits for every worker to get here
  for (;;) {
    if (timers_due()) fire_timers(heap, false);  // due timers first
    if (TaskBase* task = handoff_ != nullptr ? std::exchange(handoff_, nullptr) : next_task()) {
      trim_due_ = false;
      run_task(task);
      continue;
    }
    // Nothing to run: the scope references held back go first (they may be
    // the last ones: a scope is freed, its deadline disarmed, before we
    // sleep).
    flush_scope_references();
    if (trim_due_ && quiet_for_a_while(heap) && !scheduler_.stopping_hint() && trim_some()) {
      // Idle for k_trim_idle_ns (sleep()): return surplus stacks and task
      // blocks a few at a time, looking for work and due timers again
      // between batches. Not once shutdown has begun: it waits for every
      // worker to sleep, and the stack pools' destructors trim what is left
      // much faster (trim_all, stack_arena.hpp).
      continue;
    }
    if (trace_ != nullptr) [[unlikely]] trace_->sleep_start = trace_ticks();
    const bool awake = sleep();
    if (trace_ != nullptr) [[unlikely]] {
      trace_sleep(*trace_, trace_->sleep_start);
      if (awake) trace_instant(*trace_, TraceKind::wake);
    }
    if (!awake) break;
  }
  flush_scope_references();
  TimerHeap::set_thread_shard(0);
  set_current_worker(nullptr);
}

bool Worker::trim_some() noexcept {
  const bool stacks = stacks_.trim(k_trim_batch);
  // The process's task depot: only spans that have rested (task_depot.hpp).
  const bool tasks = trim_task_depot(k_trim_task_spans, true);
  return stacks || tasks;
}

bool Worker::quiet_for_a_while(const TimerHeap& heap) noexcept {
  // munmap stalls the whole process for a moment (it takes the address
  // space's lock for writing and shoots down TLB entries on every core), so
  // a stack is unmapped only when no timer falls due soon (never between
  // two of a dense run of timers, where it delayed the next wake-ups).
  const Nanos due = heap.earliest();
  return due == k_never || due - now_ns() > k_trim_quiet_ns;
}

TaskBase* Worker::next_task() {
  TaskBase* t = pick_task();
  if (t != nullptr && searching_) {
    // Found work, by whatever path (a woken worker counts as searching and
    // often finds its work in the injector): stop searching, so producers
    // wake someone else again. The last searcher to find work wakes the next
    // one, since there may be more (Go's resetspinning).
    searching_ = false;
    if (scheduler_.idle().end_search()) scheduler_.notify_work();
  }
  return t;
}

TaskBase* Worker::pick_task() {
  if (TaskBase* t = pick_local_task()) return t;
  // Yielded fibers (the global queue) come after other workers' queued
  // ones: a yield lets every other fiber run first, and a fiber polling
  // with yield() must not keep this worker from taking a share of another
  // worker's backlog (it did: a spawner yielding until its 10,000 children
  // had started took 50,000 rounds on one worker while the other ran them
  // all). The every-k_injector_interval-th pick above still takes from the
  // global queue first, so a yielder waits at most that long. A lone worker
  // has nobody to steal from: the yielder at once, without the searching
  // transitions (18 ns of a 69 ns yield).
  if (lone_) {
    if (TaskBase* t = scheduler_.pop_global()) return t;
  }
  if (!searching_) {
    if (!scheduler_.idle().try_begin_search()) return scheduler_.pop_global();
    searching_ = true;
  }
  if (TaskBase* t = steal_from_others()) return t;
  if (TaskBase* t = scheduler_.pop_injected()) return t;
  return scheduler_.pop_global();
}

std::uint32_t Worker::next_fair_tick(std::uint32_t tick) noexcept {
  // The next multiple of either interval after `tick` (tick_ wraps at 2^32,
  // and so may this; a wrapped tick_ meets it again, as the divisions did).
  const std::uint32_t a = (tick / k_injector_interval + 1) * k_injector_interval;
  const std::uint32_t b = (tick / k_fifo_interval + 1) * k_fifo_interval;
  return a < b ? a : b;
}

// Right after a yield, once: wake-ups from outside (a timer, another
// runtime) go before the yielder, which waits in the global queue.
[[gnu::always_inline]] inline TaskBase* Worker::injected_after_yield() noexcept {
  if (!just_yielded_) return nullptr;
  just_yielded_ = false;
  return scheduler_.pop_injected();
}

// The fairness picks of every k_injector_interval-th and k_fifo_interval-th
// tick (worker.hpp), out of line: 1 pick in ~20. If they find nothing, the
// rest of the pick (a tail call: see pick_local_body).
template <bool FreshFirst>
[[gnu::noinline]] TaskBase* Worker::pick_fair() {
  next_fair_tick_ = next_fair_tick(tick_);
  if (tick_ % k_injector_interval == 0) {
    if (TaskBase* t = scheduler_.pop_injected()) return t;
    if (TaskBase* t = scheduler_.pop_global()) return t;
  }
  if (TaskBase* t = injected_after_yield()) return t;
  if (tick_ % k_fifo_interval == 0) {
    // The owner may steal from its own deque: it is not in push/pop now.
    if (TaskBase* t = deque_.steal().item) return t;
  }
  return pick_after_fair<FreshFirst>();
}

template <bool FreshFirst>
TaskBase* Worker::pick_local_task() {
  return pick_local_body<FreshFirst>();
}

// The pick in four parts: each test that leads to a rare call (a cancel
// epoch to promote, the fairness tick, a fresh task before runnext, a batch
// to warm) hands the rest of the pick to an out-of-line function with a
// tail call, so the common pick makes no call but tail calls and saves no
// register (the spawn path: fiber_main calls pick_local_task<true> once per
// task). The rare functions (pick_promoting, pick_fair,
// fresh_before_runnext, warm_own_batch) end in the parts after their own
// test, inlined.
template <bool FreshFirst>
[[gnu::always_inline]] inline TaskBase* Worker::pick_local_body() {
  // Cancelled work first: it only unwinds, and it must not wait behind
  // fresh work (see Scheduler::pop_urgent).
  if (const std::uint64_t epoch = cancel_epoch(); epoch != seen_cancel_epoch_) [[unlikely]] {
    return pick_promoting<FreshFirst>(epoch);
  }
  return pick_promoted<FreshFirst>();
}

template <bool FreshFirst>
[[gnu::noinline, gnu::cold]] TaskBase* Worker::pick_promoting(std::uint64_t epoch) {
  seen_cancel_epoch_ = epoch;
  scheduler_.promote_cancelled(epoch);
  return pick_promoted<FreshFirst>();
}

template <bool FreshFirst>
[[gnu::always_inline]] inline TaskBase* Worker::pick_promoted() {
  if (TaskBase* t = scheduler_.pop_urgent()) return t;
  // Counted only here, where the fairness test follows: a pick that
  // returned above and counted would step over that test's turn, and the
  // next would come only when tick_ wrapped (the yielders starved).
  ++tick_;
  if (tick_ == next_fair_tick_) [[unlikely]] return pick_fair<FreshFirst>();
  // (pick_fair looks itself, between its two picks)
  if (TaskBase* t = injected_after_yield()) return t;
  return pick_after_fair<FreshFirst>();
}

template <bool FreshFirst>
[[gnu::always_inline]] inline TaskBase* Worker::pick_after_fair() {
  // relaxed: only this thread fills the slot; a thief emptying it meanwhile
  // only makes us take the deque's task, which we would take next anyway.
  if (FreshFirst && runnext_after_fresh_ && fresh_streak_ < k_fresh_before_runnext &&
      runnext_.load(std::memory_order_relaxed) != nullptr) {
    return fresh_before_runnext();
  }
  return pick_runnext_or_deque();
}

[[gnu::always_inline]] inline TaskBase* Worker::pick_runnext_or_deque() {
  if (++runnext_streak_ < k_runnext_streak) {
    if (TaskBase* t = take_runnext()) return t;
  }
  runnext_streak_ = 0;  // the deque first this once (or the slot was empty)
  if (TaskBase* t = deque_.pop()) {
    // Draining a backlog of woken fibers (a broadcast, a batch of timers,
    // a producer that woke many): warm the next ones while this one runs.
    // Fresh tasks (no fiber yet) never trigger it: spawn-heavy work pays
    // nothing. relaxed: see TaskBase::fiber_.
    if (warm_left_ != 0) {
      --warm_left_;
    } else if (t->fiber_.load(std::memory_order_relaxed) != nullptr) {
      return warm_own_batch(t);
    }
    return t;
  }
  if (TaskBase* t = take_runnext()) return t;
  return scheduler_.pop_injected();  // the global queue: pick_task, after stealing
}

[[gnu::noinline]] TaskBase* Worker::fresh_before_runnext() {
  // Popped before it is read: a task merely peeked at may be stolen, run
  // and freed meanwhile (ThreadSanitizer saw exactly that).
  TaskBase* t = deque_.pop();
  if (t == nullptr) return pick_runnext_or_deque();
  // relaxed: see TaskBase::fiber_ (only unstarted tasks go first).
  if (t->fiber_.load(std::memory_order_relaxed) != nullptr) {
    push_or_global(t);  // a woken fiber: back where it was (the slot just freed, no growth)
    return pick_runnext_or_deque();
  }
  ++fresh_streak_;
  return t;
}

// always_inline: its one caller, fiber_main, is on the spawn path; GCC
// inlined it there until the run-slice branch below tipped its size limit.
[[gnu::always_inline]] inline TaskBase* Worker::next_task_for_finished(Fiber* f) noexcept {
  // Only a fiber nobody else can reach: never parked (not in the live
  // registry, no waiter), no scope membership, no locals left.
  if (f->live_listed || f->member_of != nullptr || f->locals != nullptr || f->cancel_shield != 0) return nullptr;
  if (scheduler_.exiting()) return nullptr;
  TaskBase* t = pick_local_task<true>();
  // The hints: GCC's guesses put the rest of this function, the spawn
  // path's binding of the next task, in fiber_main's cold section.
  if (t == nullptr) [[unlikely]] return nullptr;
  if (t->fiber_.load(std::memory_order_relaxed) != nullptr) [[unlikely]] {  // relaxed: see TaskBase::fiber_
    handoff_ = t;  // a runnable fiber: the loop switches to it next
    return nullptr;
  }
  // The finished task is done (finish() set done_, under its join_lock_
  // unless no handle was left to reach it), so nobody reaches this fiber
  // through it any more: its per-task fields can start afresh.
  // own_scope is read under wait_lock by abort_fiber, but no abort of the
  // finished task can still be running: request_cancel() holds its
  // join_lock_, which finish() took after it, or nobody could call it (no
  // handle: finish()'s lock-free path). The fiber itself is the only writer,
  // so the test needs no lock; most tasks never make a scope (one locked
  // instruction fewer per spawn).
  if (f->own_scope != nullptr) [[unlikely]] {
    std::lock_guard<SpinLock> guard(f->wait_lock);
    f->own_scope = nullptr;
  }
  // relaxed: no other thread reads them now (see above).
  f->aborted.store(false, std::memory_order_relaxed);
  f->slice_calls_per_read = k_initial_slice_calls;
  bind_task(f, t);
  // The old task's slice ends and the new one's begins: a fresh time slice,
  // and a new fiber as far as runnext thieves can tell. The trace's ending
  // slice keeps the old task's id, recorded at its switch-in. chain_slice's
  // body, here without its call.
  begin_slice(f);
  if (instrumented_) [[unlikely]] {
    instrumented_switch_out(f, TraceEnd::finish);
    instrumented_switch_in(f, true);
  }
  return t;
}

template <class TryVictim>
TaskBase* Worker::visit_victims(TryVictim&& try_victim) {
  const std::size_t n = scheduler_.num_workers();
  const std::size_t start = next_random() % n;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t victim = (start + i) % n;
    if (victim == index_) continue;
    if (TaskBase* t = try_victim(scheduler_.worker(victim))) return t;
  }
  return nullptr;
}

// A parked fiber resumed on a core that has not seen it for a while misses
// on its task, its control block and its saved frames, one after the other
// (each address is read from the line before): about 1 us a fiber when a
// worker drains a backlog of woken fibers. Prefetching a batch in passes,
// every task's line, then every control block, then every stack in use,
// overlaps those misses across the batch instead of paying them in turn as
// each runs (parked 100k release_ms: docs/benchmarks.md). The caller owns
// the tasks (no other thread can take them meanwhile), so reading fiber_
// and the saved context is safe: a queued fiber is suspended and its
// context was saved before it was queued (published by the deque's
// release / seq_cst pair).
void Worker::warm(TaskBase* const* tasks, std::size_t n) noexcept {
  static_assert(k_warm_batch <= k_steal_batch);
  assert(n <= k_steal_batch);
  Fiber* fibers[k_steal_batch];
  for (std::size_t i = 0; i < n; ++i) {
    // relaxed: see TaskBase::fiber_ (a queued task's fiber was set before
    // it was queued).
    fibers[i] = tasks[i]->fiber_.load(std::memory_order_relaxed);
    if (fibers[i] != nullptr) __builtin_prefetch(&fibers[i]->context);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (fibers[i] == nullptr) continue;  // not started: nothing of it is cold yet
    // The stack in use, from the saved frames up to and including the
    // control block at its top (about 1 KiB for a fiber parked in a
    // channel receive), at most k_prefetch_stack_bytes of it.
    const char* sp = static_cast<const char*>(fibers[i]->context.fctx);
    const char* top = reinterpret_cast<const char*>(fibers[i] + 1);
    if (sp == nullptr || sp >= top) continue;
    const char* end = top - sp > k_prefetch_stack_bytes ? sp + k_prefetch_stack_bytes : top;
    for (const char* p = sp; p < end; p += 64) __builtin_prefetch(p);
  }
}

[[gnu::noinline]] TaskBase* Worker::warm_own_batch(TaskBase* popped) noexcept {
  // The tasks are ours between the pops and the pushes. Pushing back into
  // the slots just vacated never grows the ring (push_or_global would keep
  // a task runnable anyway).
  TaskBase* batch[k_warm_batch];
  std::size_t n = 0;
  while (n < k_warm_batch) {
    TaskBase* t = deque_.pop();
    if (t == nullptr) break;
    __builtin_prefetch(t);
    batch[n++] = t;
  }
  warm(batch, n);
  for (std::size_t i = n; i-- > 0;) push_or_global(batch[i]);
  warm_left_ = static_cast<std::uint32_t>(n);
  return popped;
}

TaskBase* Worker::steal_half_from(Worker& v) {
  for (;;) {
    auto r = v.steal();
    if (r.status == ChaseLevDeque<TaskBase>::StealStatus::empty) return nullptr;
    if (r.status != ChaseLevDeque<TaskBase>::StealStatus::success) continue;  // lost_race: the next may be ours
    // Take up to half of what is left as well (Go and Tokio steal half): a
    // producer spawning in a loop would otherwise be robbed one task per
    // search, each paying the searching transitions on the shared
    // IdleWorkers word. The extras go to our own deque; we still count as
    // searching, so next_task()'s end_search() wakes another worker if
    // needed (I2).
    std::size_t extra = std::min(v.queued_approx() / 2, k_steal_batch - 1);
    if (trace_ != nullptr) [[unlikely]] trace_steal(*trace_, v.index_, r.item);
    // The stolen tasks are ours until we push them: warm them up (see
    // warm()) while no other thread can take them.
    TaskBase* got[k_steal_batch];
    std::size_t n = 0;
    got[n++] = r.item;
    __builtin_prefetch(r.item);
    while (extra-- > 0) {
      auto more = v.steal();
      if (more.status != ChaseLevDeque<TaskBase>::StealStatus::success) break;
      if (trace_ != nullptr) [[unlikely]] trace_steal(*trace_, v.index_, more.item);
      __builtin_prefetch(more.item);
      got[n++] = more.item;
    }
    warm(got, n);
    for (std::size_t i = 1; i < n; ++i) push_or_global(got[i]);
    // relaxed: a statistic, written by this thread only.
    steals_.store(steals_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return r.item;
  }
}

TaskBase* Worker::steal_from_others() {
  if (lone_) return nullptr;
  for (int round = 0; round < k_steal_rounds; ++round) {
    if (TaskBase* t = visit_victims([this](Worker& v) { return steal_half_from(v); })) {
      fresh_searches_ = 0;
      return t;
    }
  }
  // Nothing in any deque: a woken fiber stuck behind a busy waker? A fresh
  // one means a hand-off in progress; searches that see nothing else twice
  // in a row make the next sleep watch (worker.hpp, "Watching").
  bool fresh = false;
  TaskBase* got = visit_victims([this, &fresh](Worker& v) {
    TaskBase* t = v.steal_stale_runnext(fresh);
    if (t != nullptr) {
      if (trace_ != nullptr) [[unlikely]] trace_steal(*trace_, v.index_, t);
      // relaxed: a statistic, written by this thread only.
      steals_.store(steals_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    return t;
  });
  fresh_searches_ = got == nullptr && fresh ? fresh_searches_ + 1 : 0;
  return got;
}

void Worker::start_watching() noexcept {
  for (std::size_t i = 0; i < scheduler_.num_workers(); ++i) {
    if (i == index_) continue;
    Worker& w = scheduler_.worker(i);
    w.set_runnext_watched(true);
    watch_switches_[i] = w.run_slice_count();  // watch_on's first look compares with this
  }
  watching_ = true;
}

bool Worker::watch_on() noexcept {
  // Reads only: the owners keep their lines (a look every
  // k_runnext_watch_ns costs a busy owner one miss on each of its runnext
  // and deque lines). Relaxed reads suffice: whatever they miss, the next
  // look sees, or the end of the watch (stop_watching, seq_cst) does.
  bool switched_any = false;
  for (std::size_t i = 0; i < scheduler_.num_workers(); ++i) {
    if (i == index_) continue;
    Worker& w = scheduler_.worker(i);
    const std::uint64_t switches = w.run_slice_count();
    const bool switched = switches != watch_switches_[i];
    watch_switches_[i] = switches;
    switched_any = switched_any || switched;
    // A task behind an owner that has not switched since our last look
    // may be stuck behind a busy waker; work in a deque is for us to steal.
    if ((!switched && w.runnext_occupied()) || w.has_queued_work(false)) return false;
  }
  return switched_any;  // nobody switched: the hand-off is over
}

bool Worker::stop_watching() noexcept {
  watching_ = false;
  bool occupied = false;
  for (std::size_t i = 0; i < scheduler_.num_workers(); ++i) {
    if (i == index_) continue;
    Worker& w = scheduler_.worker(i);
    // Each slot read after its own mark is cleared: see worker.hpp, "Watching".
    w.set_runnext_watched(false);
    if (w.runnext_occupied_after_watch()) occupied = true;
  }
  return occupied;
}

bool Worker::sleep() {
  // relaxed: statistics, single writer (this thread).
  sleeps_.store(sleeps_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // A search that found only a hand-off in progress: watch the runnext
  // slots instead of being woken for each (worker.hpp, "Watching").
  if (fresh_searches_ >= k_fresh_searches_to_watch) start_watching();
  scheduler_.idle().begin_sleep(index_, searching_);
  searching_ = false;
  // See IdleWorkers (I2): every worker re-checks every queue after its
  // decrement, since a producer may have skipped waking anyone because it
  // saw a searcher, or saw every worker awake (this one, not searching,
  // about to sleep). If it finds work it notifies, which may pick this very
  // worker (the newest sleeper), whose wait below then returns at once. A
  // watcher leaves the runnext slots out: it looks at them again when its
  // watch ends, at most k_runnext_watch_ns from now.
  if (scheduler_.has_queued_work(!watching_)) scheduler_.notify_work();
  // Own pushes carry no barrier (IdleWorkers, "Own pushes"): one made by a
  // worker still awake may have escaped the re-check above. Confirm once,
  // k_confirm_ns into the sleep, if it lasts that long.
  Nanos confirm_at =
      scheduler_.idle().asymmetric() && scheduler_.idle().num_awake() != 0 ? now_ns() + k_confirm_ns : k_never;
  // relaxed: the test seam's switches (idle_workers.hpp) publish nothing.
  if (confirm_at != k_never && testing::lose_races_with_sleepers.load(std::memory_order_relaxed)) [[unlikely]] {
    testing::sleeper_unconfirmed.store(true, std::memory_order_relaxed);
  }
  scheduler_.worker_went_idle();
  TimerHeap& heap = timer_heap_;
  bool driving = false;  // we sleep until the earliest deadline (timer_heap.hpp)
  // Stacks or task blocks to give back: get up by ourselves once we have
  // slept this long unwoken (trim_due_), and for task spans not before the
  // oldest surplus one has rested (task_depot.hpp). The arena's and the
  // task depot's lock-free hints, once per sleep; the depot's lock only
  // when it has a surplus.
  const Nanos trim_at = [&] {
    const bool stacks = stacks_.has_trim_work();
    const bool spans = task_depot_has_surplus();
    if (!stacks && !spans) return k_never;
    const Nanos idle_until = now_ns() + k_trim_idle_ns;
    return stacks ? idle_until : std::max(idle_until, task_depot_rested_at());
  }();
  // Gets up by ourselves (a timed sleep ended). False if a waker took us
  // first: its token comes, and we wait for it.
  auto get_up = [&]() -> bool {
    if (!scheduler_.idle().wake_self(index_)) return false;
    activity::bump_epoch();  // counted awake again (activity.hpp)
    return true;
  };
  for (;;) {
    if (scheduler_.exiting()) {
      if (watching_) stop_watching();
      if (driving) heap.release_driver(&wake_token_);
      return false;
    }
    // acquire: pairs with wake()'s and timer_kick()'s release.
    const std::uint32_t bits = wake_token_.exchange(0, std::memory_order_acquire);
    if ((bits & k_work_bit) != 0) {
      if (watching_) stop_watching();  // awake and searching: it looks at the slots anyway
      if (driving) {
        heap.release_driver(&wake_token_);  // hands the role on if timers remain
      } else if ((bits & TimerHeap::k_kick_bit) != 0) {
        heap.kick();  // the kick was for us, and we are leaving: pass it on
      }
      searching_ = true;  // the waker counted us as searching
      break;
    }
    if (!driving) driving = heap.try_claim_driver(&wake_token_);
    if (watching_) {
      if (!driving) {
        futex_wait_until(wake_token_, 0, now_ns() + k_runnext_watch_ns);
        // relaxed: the exchange at the top reads the token with acquire.
        if (wake_token_.load(std::memory_order_relaxed) != 0) continue;  // woken: the top takes the token
        if (watch_on()) continue;  // the hand-off goes on: watch again, marks left as they are
      }
      // The watch ran out, or we drive timers now (a sleep until their
      // deadline, too long to watch): look at the slots again, and get up
      // to search if one holds a task.
      if (stop_watching()) {
        if (!get_up()) continue;  // a waker took us: its token comes
        if (driving) heap.release_driver(&wake_token_);  // we may now run a long fiber
        break;
      }
      continue;
    }
    Nanos deadline = k_never;
    if (driving) {
      deadline = heap.earliest();
      if (deadline == k_never) {  // everything was cancelled or fired elsewhere
        heap.release_driver(&wake_token_);
        driving = false;
        continue;
      }
    }
    if (confirm_at != k_never && now_ns() >= confirm_at) {
      confirm_at = k_never;
      testing::sleeper_unconfirmed.store(false, std::memory_order_relaxed);  // relaxed: as above
      scheduler_.idle().confirm_sleep();
      // As the re-check above: a notify may pick this very worker, whose
      // token the top of the loop then takes.
      if (scheduler_.has_queued_work()) scheduler_.notify_work();
      continue;
    }
    const Nanos wake_at = std::min({deadline, trim_at, confirm_at});
    if (now_ns() < wake_at) {
      if (wake_at == k_never) {
        futex_wait(wake_token_, 0);
      } else {
        futex_wait_until(wake_token_, 0, wake_at);
      }
      continue;
    }
    if (trim_at < deadline) {
      // Slept k_trim_idle_ns unwoken, no timer due first: get up to trim.
      if (!get_up()) {
        futex_wait(wake_token_, 0);  // a waker took us already; its token comes
        continue;
      }
      if (driving) heap.release_driver(&wake_token_);  // trimming takes a while
      trim_due_ = true;
      break;
    }
    // Due: get up by ourselves and fire.
    if (!get_up()) {
      futex_wait(wake_token_, 0);  // a waker took us already; its token comes
      continue;
    }
    fire_timers(heap, true);
    // We may now run a long fiber: someone else drives (kicked if needed).
    heap.release_driver(&wake_token_);
    break;
  }
  // Woken before the confirmation was due: the waker's push was seen.
  if (confirm_at != k_never) testing::sleeper_unconfirmed.store(false, std::memory_order_relaxed);  // relaxed: as above
  wakeups_.store(wakeups_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // relaxed: as sleeps_
  return true;
}

void Worker::run_task(TaskBase* task) {
  Fiber* f = task->fiber_.load(std::memory_order_relaxed);  // relaxed: see TaskBase::fiber_
  if (f == nullptr) {
    f = start_fiber(task);
    if (f == nullptr) return;
  }
  enter(f);
  switch_context(loop_context_, f->context);
  // Some fiber switched back to the loop (f, or one f switched to directly)
  // and its context is saved: settle it.
  current_ = nullptr;
  running_id_.store(0, std::memory_order_relaxed);  // relaxed: see running_id_
  settle_switched_out();
}

[[gnu::always_inline]] inline void Worker::begin_slice(Fiber* f) noexcept {
  assert(f->park_state.load(std::memory_order_relaxed) == k_park_running);
  current_ = f;
  running_id_.store(fiber_id(f), std::memory_order_relaxed);  // relaxed: see running_id_
  // relaxed: single writer; thieves only compare it (steal_stale_runnext).
  switches_.store(switches_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  slice_countdown_ = f->slice_calls_per_read;  // a fresh slice (time_slice.cpp)
  slice_start_ = 0;
}

void Worker::enter(Fiber* f) noexcept {
  begin_slice(f);
  if (instrumented_) [[unlikely]] instrumented_switch_in(f, false);  // tracing, Options::measure_run_slices
}

// Not inlined on purpose: inlined into fiber_main, GCC's guesses moved the
// spawn path's binding of the next task into the function's cold section.
// That path (next_task_for_finished) now writes this body out itself,
// behind its [[unlikely]] hints, which keep it hot: -7 instructions a spawn.
void Worker::chain_slice(Fiber* out, TraceEnd end, Fiber* in) noexcept {
  begin_slice(in);
  if (instrumented_) [[unlikely]] {
    instrumented_switch_out(out, end);
    instrumented_switch_in(in, true);
  }
}

void Worker::instrumented_switch_in(Fiber* f, bool chained) noexcept {
  if (trace_ != nullptr) trace_switch_in(*trace_, f, chained);
  if (measure_slices_) run_slices_.begin();
}

void Worker::instrumented_switch_out(Fiber* f, TraceEnd end) noexcept {
  if (trace_ != nullptr) trace_switch_out(*trace_, f, end);
  if (measure_slices_) run_slices_.end();
}

void Worker::settle_switched_out() { settle_body(); }

[[gnu::always_inline]] inline void Worker::settle_body() {
  Fiber* f = std::exchange(switched_out_, nullptr);
  if (f == nullptr) return;  // a plain resume of the loop's first switch
  // The fiber switched out and its context is saved (the switch saved it
  // before landing here). Only now may anyone else resume it.
  if (!stack_canary_intact(f->stack)) {
    std::fprintf(stderr, "weft: fiber stack overflow: a fiber overran its %zu-byte stack (unguarded slab stack)\n",
                 f->stack.size);
    std::abort();
  }
  TaskBase* task = f->task;
  switch (suspend_reason_) {
    case SuspendReason::yield:
      // Behind everything runnable here (pick_task), on the runtime's
      // shared FIFO, where an idle worker (told by push_global's notify)
      // takes it if this one goes on to run something long. Not the
      // injector: right after a yield, work from outside (a timer's
      // wake-up, say) goes ahead of the yielder (pick_task), which needs the
      // two apart.
      scheduler_.push_global(task);
      just_yielded_ = true;
      break;
    case SuspendReason::park: {
      park_counts_.parked(f->park_reason);  // by reason (park_counts.hpp); their sum is parks()
      if (!f->live_listed) {
        // Listed before the park is published below: shutdown and deadlock
        // reports must find every parked fiber (live_fibers.hpp).
        scheduler_.live().insert(f, index_);
        f->live_listed = true;
      }
      std::uint32_t expected = k_park_running;
      // acq_rel on success: release publishes the saved context to the
      // unparker's acquire exchange in unpark_fiber(). acquire on failure:
      // pairs with that exchange's release (the fiber was already notified).
      if (!f->park_state.compare_exchange_strong(expected, k_park_parked, std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
        assert(expected == k_park_notified);
        f->park_state.store(k_park_running, std::memory_order_relaxed);  // ours again
        push_woken(task, f->park_reason);
      }
      break;
    }
    case SuspendReason::finish:
      finish_fiber(f);
      break;
  }
}

bool Worker::timers_due() const noexcept {
  if (timer_heap_.earliest() == k_never) return false;  // one relaxed-cost load while none is armed
  return timer_heap_.own_due(now_ns());  // ours, or another worker's overdue (timer_heap.hpp)
}

Fiber* Worker::direct_successor() noexcept {
  // Due timers and idle duties belong to the loop.
  if (timers_due() || scheduler_.exiting()) return nullptr;
  TaskBase* t = pick_local_body<false>();
  if (t == nullptr) return nullptr;
  if (Fiber* g = t->fiber_.load(std::memory_order_relaxed)) return g;  // relaxed: see TaskBase::fiber_
  Stack stack;
  try {
    stack = stacks_.acquire();
  } catch (...) {
    // The loop ends the task with the error (start_fiber): not here, on a
    // fiber that is half switched out.
    handoff_ = t;
    return nullptr;
  }
  return make_fiber(t, stack);
}

// One task's body and end, on fiber f (fiber_main runs it for each task the
// fiber takes on).
[[gnu::always_inline]] inline void run_on_fiber(Fiber* f, TaskBase* task);

void fiber_main(void* arg) {
  Fiber* f = static_cast<Fiber*>(arg);
  // Landed: settle whatever switched to us (suspend_current_fiber).
  Worker* w = current_worker();
  w->settle_switched_out();
  for (TaskBase* task = f->task; task != nullptr;) {
    run_on_fiber(f, task);
    w = current_worker();  // re-read: the fiber may have migrated
    task = w->next_task_for_finished(f);  // ends the finished task's slice if it binds the next
  }
  w->suspend_reason_ = SuspendReason::finish;
  w->switched_out_ = f;  // its stack goes back once we have left it
  if (TaskBase* next = std::exchange(w->handoff_, nullptr)) {
    // A runnable fiber picked by next_task_for_finished: straight to it.
    Fiber* g = next->fiber_.load(std::memory_order_relaxed);  // relaxed: see TaskBase::fiber_
    w->chain_slice(f, TraceEnd::finish, g);
    exit_to(f->context, g->context);
  }
  if (w->instrumented_) [[unlikely]] w->instrumented_switch_out(f, TraceEnd::finish);
  exit_to(f->context, w->loop_context_);
}

[[gnu::always_inline]] inline void run_on_fiber(Fiber* f, TaskBase* task) {
  task->run();  // never throws
  // Its FiberLocal values go with the body, on the fiber (user destructors).
  // Tested here: most tasks make none, and the call is on every spawn.
  if (f->locals != nullptr) destroy_fiber_locals(f);
  // End the task here, on its own fiber, not in the loop: finish() wakes the
  // joiner and drops the runtime's reference, and when that was the last
  // one (a detached task) it frees the task, running the destructors of its
  // result and exception and, for an exception nobody observed, the
  // unhandled-exception handler. That is user code, which may use any weft
  // wait, and a wait needs a fiber.
  Worker* w = current_worker();  // re-read: the fiber may have migrated
  // Counted finished first, so that a joiner's metrics() no longer counts
  // the fiber.
  w->count_finished();
  // Leave the scope the fiber started in (CancelScope and TaskGroup restore
  // it when they end, so it is that one again).
  if (f->member_of != nullptr) leave_scope_members(f);
  // Its reference and its unused spawn credits, held back by the worker and
  // dropped with others of the same scope (drop_scope_references).
  if (CancelState* scope = std::exchange(f->scope, nullptr)) {
    w->drop_scope_references(scope, 1 + std::exchange(f->scope_credits, 0));
  }
  // task->fiber_ and f->task stay as they are: a destructor that parks in
  // there is woken through them (Scheduler::schedule, run_task). Nobody
  // reads them once the task is done and this fiber is gone.
  task->finish();  // may free the task; may park (a destructor that waits)
  if (f->locals != nullptr) destroy_fiber_locals(f);  // values those destructors may have made
}

Fiber* Worker::start_fiber(TaskBase* task) {
  Stack stack;
  try {
    stack = stacks_.acquire();
  } catch (...) {
    // No stack, no fiber: the task ends with the error instead of running.
    // Its closure dies here, on the loop, whoever drops the last reference
    // (Waiter's constructor stops the program if a destructor waits).
    task->set_failure(std::current_exception());
    task->discard_body();
    // Counted started and finished (it ended, with the error), so that it
    // is neither queued nor alive in metrics().
    count_started();
    count_finished();
    task->finish();
    return nullptr;
  }
  return make_fiber(task, stack);
}

Fiber* Worker::make_fiber(TaskBase* task, Stack stack) noexcept {
  // The control block sits at the top of the stack, cache-line aligned; the
  // fiber's frames grow down from just below it.
  const auto lo = reinterpret_cast<std::uintptr_t>(stack.lo);
  const auto block = (lo + stack.size - sizeof(Fiber)) & ~std::uintptr_t{63};
  Fiber* f = new (reinterpret_cast<void*>(block)) Fiber{};
  f->scheduler = &scheduler_;
  f->stack = stack;
  bind_task(f, task);
  make_context(f->context, stack.lo, block - lo, &fiber_main, f);
  return f;
}

namespace {
// A named task's fiber takes over the name and is listed from its start, so
// that the dump shows its name while it runs (live_fibers.hpp). Before anyone
// can reach the fiber: no wait_lock. Out of line and cold, so that
// bind_task stays small enough to inline into the spawn path.
[[gnu::noinline, gnu::cold]] void list_named_fiber(Scheduler& s, std::size_t shard, Fiber* f,
                                                   TaskBase* task) noexcept {
  f->name = std::exchange(task->name_, nullptr);
  s.live().insert(f, shard);
  f->live_listed = true;
}
}  // namespace

// always_inline: on the spawn path (next_task_for_finished, make_fiber), as GCC
// chose by itself before the metrics counters grew its callers.
[[gnu::always_inline]] inline void Worker::bind_task(Fiber* f, TaskBase* task) noexcept {
  f->task = task;
  // Identity (fiber.hpp): relaxed, see Fiber::id. A reused fiber is unnamed
  // (a named one is listed, and listed fibers are not reused).
  f->id.store(task->id_, std::memory_order_relaxed);
  f->spawner_id = task->spawner_id_;
  if (task->name_ != nullptr) [[unlikely]] list_named_fiber(scheduler_, index_, f, task);
  // seq_cst: TaskBase::request_cancel's pairing (task.cpp) while a handle
  // may still call it. Once the handle is gone nobody can, and what a call
  // did is visible here (handle_released's acquire), so a plain store
  // will do: a detached task starts with one locked instruction fewer.
  // release: for running_fiber_id's acquire load (task.cpp).
  if (task->handle_released()) {
    task->fiber_.store(f, std::memory_order_release);
  } else {
    task->fiber_.store(f, std::memory_order_seq_cst);
  }
  if (task->cancel_requested()) f->aborted.store(true, std::memory_order_relaxed);  // (the body will not even run)
  // The task's scope reference passes to the fiber (released at its end).
  f->scope = std::exchange(task->scope_, nullptr);  // joins its members list at its first park
  count_started();
}

void Worker::drop_scope_references(CancelState* scope, std::uint32_t n) noexcept {
  if (held_scope_ != scope) {
    flush_scope_references();
    held_scope_ = scope;
  }
  held_scope_refs_ += n;
}

void Worker::flush_scope_references() noexcept {
  if (held_scope_ == nullptr) return;
  // May free the scope (and its parents): no wait, only spin locks.
  std::exchange(held_scope_, nullptr)->release(std::exchange(held_scope_refs_, 0));
}

void Worker::fire_timers(TimerHeap& heap, bool wait) noexcept {
  // The driver (wait) fires every shard; between fibers, our own first.
  if (trace_ == nullptr) [[likely]] {
    if (wait) {
      heap.fire_due(true);
    } else {
      heap.fire_own_due();
    }
    return;
  }
  const std::uint64_t at = trace_ticks();
  trace_timers(*trace_, at, wait ? heap.fire_due(true) : heap.fire_own_due());
}

void Worker::finish_fiber(Fiber* f) {
  // The task itself was finished on the fiber (fiber_main); only the fiber
  // is left to dispose of.
  if (f->live_listed) scheduler_.live().remove(f);
  delete[] f->name;  // unlisted: nobody reads it any more
  const Stack stack = f->stack;
  release_context(f->context);
  f->~Fiber();
  stacks_.release(stack);
}

// suspend_current_fiber()'s body, forced inline into park_current_fiber as
// well, so that a park costs no call more than it did before tracing.
// Each way out tests instrumented_ once (chain_slice for a direct switch).
// Returns the worker the fiber resumed on.
[[gnu::always_inline]] inline Worker* suspend_fiber_of(Worker* w, SuspendReason why) {
  Fiber* f = w->current_;
  assert(f != nullptr);
  w->suspend_reason_ = why;
  w->switched_out_ = f;  // settled by whoever runs next here, once f's context is saved
  const TraceEnd end = why == SuspendReason::park ? TraceEnd::park : TraceEnd::yield;
  // A parking fiber switches straight to the next runnable one (one switch,
  // not two through the loop); a yield goes through the loop, which queues
  // the yielder behind the rest.
  if (why == SuspendReason::park) {
    if (Fiber* g = w->direct_successor()) {
      w->chain_slice(f, end, g);
      switch_context(f->context, g->context);
      Worker* now_on = current_worker();  // resumed, perhaps elsewhere
      now_on->settle_body();
      return now_on;
    }
  }
  if (w->instrumented_) [[unlikely]] w->instrumented_switch_out(f, end);
  switch_context(f->context, w->loop_context_);
  // Resumed, perhaps by another worker: `w` is stale from here on.
  Worker* now_on = current_worker();
  now_on->settle_switched_out();
  return now_on;
}

// Debug builds: a fiber must not switch out holding a SpinLock (another
// fiber on this worker could spin on it forever).
inline void assert_no_spin_locks() noexcept {
#ifndef NDEBUG
  assert(spin_locks_held() == 0 && "weft: a fiber switched out holding a SpinLock");
#endif
}

Worker* suspend_current_fiber(SuspendReason why) {
  assert_no_spin_locks();
  return suspend_fiber_of(current_worker(), why);
}

void park_current_fiber(Fiber* f) {
  // acquire: pairs with unpark_fiber()'s exchange; a wake-up that came before
  // we switched out lets us skip the switch.
  if (f->park_state.load(std::memory_order_acquire) == k_park_notified) {
    f->park_state.store(k_park_running, std::memory_order_relaxed);
    return;
  }
  assert_no_spin_locks();
  Worker* now_on = suspend_fiber_of(current_worker(), SuspendReason::park);
  now_on->park_counts_.resumed(f->park_reason);  // the worker we resumed on (park_counts.hpp)
}

namespace {
// unpark_fiber()'s traced path.
[[gnu::noinline]] void schedule_traced(Tracer& t, Scheduler& s, Fiber* f) noexcept {
  trace_unpark(t, s, f);
  s.schedule(f);
}
}  // namespace

void unpark_fiber(Fiber* f) noexcept {
  // Every caller holds the wait's claim (Waiter::unpark), so nobody else
  // unparks this park: once the worker's CAS running->parked is done, the
  // state stays parked until we change it, and a load tells us so without
  // a locked instruction (the usual case: the waiter switched out long
  // ago). acquire: pairs with that release CAS (the saved context is
  // visible before we queue the fiber). Still running: the exchange races
  // the CAS. acq_rel: acquire as above; release publishes what the waker
  // wrote to the fiber (and to the worker, if the CAS fails).
  if (f->park_state.load(std::memory_order_acquire) == k_park_parked ||
      f->park_state.exchange(k_park_notified, std::memory_order_acq_rel) == k_park_parked) {
    // We own the parked fiber now; the push below publishes this store.
    f->park_state.store(k_park_running, std::memory_order_relaxed);
    Scheduler* s = f->scheduler;
    // Traced only here, where the fiber is ours (a wake-up that races with
    // the park and finds it still running is not: docs/design/seeing-inside.md).
    // Both paths end in a tail call: the hook costs no register saves.
    if (Tracer* t = s->tracer()) [[unlikely]] return schedule_traced(*t, *s, f);
    s->schedule(f);
  }
}

}  // namespace weft::detail
