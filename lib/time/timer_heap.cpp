// TimerHeap (timer_heap.hpp): the shards, firing, and the driver hand-off.
//
// Why nobody misses a deadline (no lost kick):
//   arm       its shard's armed + 1 (seq_cst), then, if the timer is the
//             new earliest, kick(): load driver_ (seq_cst) and kick it, or a
//             sleeper.
//   release   driver_ = null (seq_cst), then load every shard's armed
//             (seq_cst; armed()) and kick if anything is armed.
// Both pairs are a store-then-load of the other's variable in seq_cst
// order, so at least one side sees the other: either the armer sees the
// old driver (which then sees the count and kicks on), or the releaser sees
// the timer. A worker going to sleep lists itself under IdleWorkers' lock
// before it looks at armed()/driver_, and kick() looks for sleepers under
// that lock after its own count's change, so a kick that finds no sleeper
// happened before that worker's look, which then sees the timer.
//
// Why earliest_ is never later than the earliest armed deadline:
//   arm       under the shard's lock: insert, store the shard's `earliest`
//             (seq_cst); then lower_earliest: load earliest_ (seq_cst),
//             CAS it down if the deadline is earlier.
//   raise     (after a removal) compute the minimum over the shards, CAS
//             earliest_ up to it (seq_cst RMW), then read the shards again
//             (seq_cst) and lower earliest_ to anything earlier found.
// The armer's shard store then earliest_ load, against the raiser's CAS
// then shard loads, is a store-buffering pair: in the single order of
// seq_cst operations either the armer's load comes after the raiser's CAS
// (it sees the raised value and lowers it), or the raiser's second read
// comes after the armer's store (it sees the shard's deadline and lowers
// earliest_ itself). shards_used_ is raised (seq_cst) before the armer's
// shard store, so that second read also scans the armer's shard.
//
// A deadline left behind: earliest_ may stay below every armed deadline,
// even with nothing armed. Two shards' earliest timers removed at once: the
// first remover reads the second shard's deadline, the second takes it out
// and, seeing earliest_ still below it, leaves the raise to the first, which
// then raises earliest_ to that deadline. Or an arm that lowers earliest_
// after its timer was already fired. Whoever looks next (a driver waking,
// a busy worker's fire_own_due) finds nothing due and raises it; but with
// nothing armed nobody drives, and while every worker sleeps nobody looks.
// So an arm that lowers nothing cannot assume a watcher: see arm().
#include "time/timer_heap.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <cassert>
#include <cstdio>
#include <mutex>
#include <thread>

#include "diagnostics/activity.hpp"
#include "sync/futex.hpp"

namespace weft::detail {

std::atomic<void (*)() noexcept> testing::in_raise_earliest{nullptr};

namespace {

constexpr std::size_t k_batch = 64;  // timers taken out per pass of fire_shard

// The calling thread's shard (0: plain threads). initial-exec: a fixed
// offset from the thread pointer. Read only by functions that never park,
// so a fiber cannot migrate between reading and using it.
__attribute__((tls_model("initial-exec"))) constinit thread_local std::uint32_t t_shard = 0;

// The fallback driver: a thread that exists only in a process where timers
// were armed while no runtime was running (plain threads waiting on a
// weft::timeout, say). It sleeps without a timeout when nothing is armed.
std::atomic<std::uint32_t> g_fallback_word{0};
std::once_flag g_fallback_started;

void fallback_loop() {
  pthread_setname_np(pthread_self(), "weft-timer");  // weft's own (outside_threads.hpp)
  set_precise_timer_slack();
  TimerHeap& heap = timers();
  for (;;) {
    // acquire: pairs with the kicker's release fetch_or.
    g_fallback_word.exchange(0, std::memory_order_acquire);
    if (!heap.is_driver(&g_fallback_word) && !heap.try_claim_driver(&g_fallback_word)) {
      futex_wait(g_fallback_word, 0);
      continue;
    }
    const Nanos e = heap.earliest();
    if (e == k_never) {
      heap.release_driver(&g_fallback_word);
    } else if (now_ns() >= e) {
      heap.fire_due(true);
    } else {
      futex_wait_until(g_fallback_word, 0, e);
    }
  }
}

void kick_word(std::atomic<std::uint32_t>* word) noexcept {
  // release: whatever the kicker armed is visible to the woken driver.
  word->fetch_or(TimerHeap::k_kick_bit, std::memory_order_release);
  futex_wake(*word, 1);
}

void kick_fallback() noexcept {
  try {
    std::call_once(g_fallback_started, [] { std::thread(fallback_loop).detach(); });
  } catch (...) {
    std::fputs("weft: cannot start the timer thread; timers fire only when a runtime runs\n", stderr);
    return;
  }
  kick_word(&g_fallback_word);
}

}  // namespace

void set_precise_timer_slack() noexcept {
  // Linux delays a thread's timed sleeps by up to its timer slack (50 us by
  // default) to batch wake-ups. A timer thread should wake on time.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
}

TimerHeap& timers() noexcept {
  // Never destroyed: fibers, detached fallback threads and static objects
  // may use it during exit.
  static TimerHeap* heap = new TimerHeap;
  return *heap;
}

void TimerHeap::set_thread_shard(std::uint32_t index) noexcept { t_shard = index % k_shards; }

void TimerHeap::Shard::sift_up(std::size_t i) noexcept {
  const Entry e = heap[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!less(e, heap[parent])) break;
    place(heap[parent], i);
    i = parent;
  }
  place(e, i);
}

void TimerHeap::Shard::sift_down(std::size_t i) noexcept {
  const Entry e = heap[i];
  const std::size_t n = heap.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && less(heap[child + 1], heap[child])) ++child;
    if (!less(heap[child], e)) break;
    place(heap[child], i);
    i = child;
  }
  place(e, i);
}

void TimerHeap::Shard::remove_at(std::size_t i) noexcept {
  const Entry last = heap.back();
  heap.pop_back();
  if (i == heap.size()) return;  // it was the last one
  place(last, i);
  sift_down(i);
  sift_up(last.timer->slot);
}

void TimerHeap::Shard::insert_locked(Timer* t, Nanos deadline) {
  t->deadline = deadline;
  t->seq = next_seq++;
  heap.push_back(Entry{deadline, t->seq, t});  // never grows the vector: arm() made room
  t->slot = heap.size() - 1;
  sift_up(t->slot);
  // relaxed: written under the shard's lock; readers of the state take the
  // lock or synchronise through the firer's release store.
  t->state.store(Timer::k_armed, std::memory_order_relaxed);
}

void TimerHeap::Shard::publish_earliest() noexcept {
  // seq_cst: the armer's half of the pair with raise_earliest() (top of file).
  earliest.store(heap.empty() ? k_never : heap[0].deadline, std::memory_order_seq_cst);
}

bool TimerHeap::lower_earliest(Nanos d) noexcept {
  // seq_cst: see the top of this file.
  Nanos cur = earliest_.load(std::memory_order_seq_cst);
  while (d < cur) {
    if (earliest_.compare_exchange_weak(cur, d, std::memory_order_seq_cst, std::memory_order_seq_cst)) return true;
  }
  return false;
}

Nanos TimerHeap::min_of_shards() const noexcept {
  // seq_cst: the raiser's reads of the pair at the top of this file.
  const std::uint32_t used = shards_used_.load(std::memory_order_seq_cst);
  Nanos m = k_never;
  for (std::uint32_t i = 0; i < used; ++i) m = std::min(m, shards_[i].earliest.load(std::memory_order_seq_cst));
  return m;
}

void TimerHeap::raise_earliest() noexcept {
  Nanos cur = earliest_.load(std::memory_order_seq_cst);
  for (;;) {
    const Nanos m = min_of_shards();
    // Not later than the shards' minimum already (an arm lowered it, or
    // another raiser got here first): nothing to raise.
    if (m <= cur) return;
    // relaxed: see testing::in_raise_earliest.
    if (auto hook = testing::in_raise_earliest.load(std::memory_order_relaxed)) [[unlikely]] hook();
    if (earliest_.compare_exchange_weak(cur, m, std::memory_order_seq_cst, std::memory_order_seq_cst)) break;
  }
  // An arm that published its shard after our read above, and read
  // earliest_ before our CAS, left it alone: look once more (top of file).
  lower_earliest(min_of_shards());
}

void TimerHeap::arm(Timer* t, Nanos deadline) {
#ifndef NDEBUG
  // Arming may allocate, take a shard's lock and wake a thread: never
  // under another lock (channel_core.hpp's lock discipline).
  assert(spin_locks_held() == 0 && "weft: a timer armed under a SpinLock");
#endif
  const std::uint32_t si = t_shard;
  Shard& s = shards_[si];
  // Scanned from now on (before the timer can be seen: top of file).
  std::uint32_t used = shards_used_.load(std::memory_order_seq_cst);
  while (used <= si && !shards_used_.compare_exchange_weak(used, si + 1, std::memory_order_seq_cst)) {
  }
  // Counted as activity before anyone can see it armed (and before the
  // arming context stops being active): it will wake someone.
  activity::enter();
  {
    std::lock_guard<SpinLock> guard(s.lock);
    try {
      // Room for this timer and for a whole batch of re-arms: fire_shard
      // re-inserts periodic timers in a noexcept function, after others may
      // have armed into the room its batch left, so it must never have to
      // grow the vector (a failing allocation there would terminate).
      const std::size_t room = s.heap.size() + 1 + k_batch;
      if (s.heap.capacity() < room) s.heap.reserve(std::max(2 * s.heap.capacity(), room));
    } catch (...) {
      activity::leave();
      throw;
    }
    // relaxed: cancel() reads it again under this lock (see Timer::shard).
    t->shard.store(si, std::memory_order_relaxed);
    s.insert_locked(t, deadline);
    if (t->slot == 0) s.publish_earliest();
    // seq_cst: see the top of this file.
    s.armed.fetch_add(1, std::memory_order_seq_cst);
  }
  // The new earliest: a driver may sleep past it. Not the new earliest:
  // whoever watches earliest_ wakes by our deadline, except when the value
  // is one nothing holds and nobody watches (a deadline left behind: see
  // the top of this file). A worker that arms looks itself before it
  // sleeps (Worker::sleep claims the driver role while anything is armed);
  // a plain thread (shard 0) never does, so it kicks unless someone drives.
  // seq_cst: the load is the armer's half of the pair with release_driver()
  // (top of this file), after the count's increment above.
  if (lower_earliest(deadline) || (si == 0 && driver_.load(std::memory_order_seq_cst) == nullptr)) kick();
}

bool TimerHeap::cancel(Timer* t) noexcept {
  for (int spins = 0;; ++spins) {
    // acquire: pairs with the firer's release store of k_idle (its callback's
    // writes are visible once we see it idle).
    const std::uint32_t st = t->state.load(std::memory_order_acquire);
    if (st == Timer::k_idle) return false;
    if (st == Timer::k_armed) {
      // relaxed: checked again under the lock it names. A timer moves to
      // another shard only when re-armed after being idle, and arming and
      // cancelling one timer at once is not allowed (the owner arms it).
      const std::uint32_t si = t->shard.load(std::memory_order_relaxed);
      Shard& s = shards_[si];
      bool was_first;
      Nanos deadline;
      {
        std::lock_guard<SpinLock> guard(s.lock);
        // relaxed: under the shard's lock, where armed <-> firing changes happen.
        if (t->state.load(std::memory_order_relaxed) != Timer::k_armed ||
            t->shard.load(std::memory_order_relaxed) != si) {
          continue;
        }
        was_first = t->slot == 0;
        deadline = t->deadline;
        s.remove_at(t->slot);
        t->state.store(Timer::k_idle, std::memory_order_relaxed);
        if (was_first) s.publish_earliest();
        s.armed.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as every change of it
      }
      // As in fire_shard: only if earliest_ may have been this timer's.
      // acquire: as in earliest().
      if (was_first && deadline <= earliest_.load(std::memory_order_acquire)) raise_earliest();
      activity::leave();
      return true;
    }
    // Firing elsewhere: its callback is short (a claim and a wake-up).
    if (spins < 100) cpu_relax(); else sched_yield();
  }
}

std::size_t TimerHeap::fire_shard(std::uint32_t si, bool wait) noexcept {
  Shard& s = shards_[si];
  if (wait) {
    s.firing.lock();
  } else if (!s.firing.try_lock()) {
    return 0;
  }
  std::size_t fired = 0;
  for (;;) {
    Timer* batch[k_batch];
    std::size_t n = 0;
    const Nanos now = now_ns();
    Nanos first = k_never;  // the shard's earliest before this batch
    {
      std::lock_guard<SpinLock> guard(s.lock);
      if (!s.heap.empty()) first = s.heap[0].deadline;
      while (n < k_batch && !s.heap.empty() && s.heap[0].deadline <= now) {
        Timer* t = s.heap[0].timer;
        s.remove_at(0);
        t->state.store(Timer::k_firing, std::memory_order_relaxed);  // relaxed: under the lock
        batch[n++] = t;
      }
      if (n != 0) {
        s.publish_earliest();
        // Out of the heap: no longer armed (a driver must not claim the
        // role for timers that are already firing; see Shard::armed).
        // seq_cst: as every change of it.
        s.armed.fetch_sub(n, std::memory_order_seq_cst);
      }
    }
    // Only if this shard held the earliest deadline: otherwise earliest_
    // belongs to another shard, whose remover raises it. (An earliest_
    // left early costs a look; fire_own_due/fire_due raise it then.)
    // acquire: as in earliest().
    if (n != 0 && first <= earliest_.load(std::memory_order_acquire)) raise_earliest();
    fired += n;
    for (std::size_t i = 0; i < n; ++i) {
      Timer* t = batch[i];
      const Nanos next = t->fire(t, now);
      if (next != k_never) {
        bool lowered;
        {
          std::lock_guard<SpinLock> guard(s.lock);
          // Cannot throw: every arm() leaves room for a batch (see there).
          // The same shard: t->shard stays.
          s.insert_locked(t, next);
          if (t->slot == 0) s.publish_earliest();
          s.armed.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: as in arm()
          // Under the lock: the timer is armed again from here, and a
          // cancel() waiting for this callback takes the lock next. Lowered
          // after unlocking, earliest_ could go down to `next` after that
          // cancel had removed the timer and raised earliest_, and stay there
          // with nothing armed (a driver's wake-up for nothing, and
          // earliest() != k_never on an empty heap).
          lowered = lower_earliest(next);
        }
        if (lowered) kick();  // a sleeping driver may be waiting for a later one
        continue;
      }
      // release: our last access to *t; cancel()'s acquire sees the callback done.
      t->state.store(Timer::k_idle, std::memory_order_release);
      // After the callback has woken its waiter (hand-off rule, activity.hpp).
      activity::leave();
    }
    if (n < k_batch) break;
  }
  s.firing.unlock();
  return fired;
}

std::size_t TimerHeap::armed() const noexcept {
  // seq_cst: the releaser's loads of the pair at the top of this file.
  const std::uint32_t used = shards_used_.load(std::memory_order_seq_cst);
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < used; ++i) n += shards_[i].armed.load(std::memory_order_seq_cst);
  return n;
}

std::size_t TimerHeap::fire_due(bool wait) noexcept {
  // acquire-or-stronger: the shards armed before the earliest_ we acted on.
  const std::uint32_t used = shards_used_.load(std::memory_order_seq_cst);
  const Nanos now = now_ns();
  std::size_t fired = 0;
  for (std::uint32_t i = 0; i < used; ++i) {
    // acquire: a reader that sees a deadline sees its timer in the shard.
    if (shards_[i].earliest.load(std::memory_order_acquire) <= now) fired += fire_shard(i, wait);
  }
  // Nothing was due after all: earliest_ was left early (see fire_shard).
  if (fired == 0) raise_earliest();
  return fired;
}

bool TimerHeap::own_due(Nanos now) const noexcept {
  // acquire: as in earliest().
  if (earliest_.load(std::memory_order_acquire) > now) return false;  // nothing due anywhere
  // Shard 0 (plain threads) belongs to every worker: nobody else runs it.
  return shards_[t_shard].earliest.load(std::memory_order_acquire) <= now ||
         shards_[0].earliest.load(std::memory_order_acquire) <= now ||
         earliest_.load(std::memory_order_acquire) <= now - k_foreign_late_ns;
}

std::size_t TimerHeap::fire_own_due() noexcept {
  const std::uint32_t own = t_shard;
  const Nanos now = now_ns();
  // acquire: as in fire_due().
  auto due_by = [&](std::uint32_t i, Nanos t) { return shards_[i].earliest.load(std::memory_order_acquire) <= t; };
  std::size_t fired = 0;
  if (due_by(own, now)) fired += fire_shard(own, false);
  if (own != 0 && due_by(0, now)) fired += fire_shard(0, false);  // plain threads' shard: ours too
  const Nanos late = now - k_foreign_late_ns;
  if (earliest_.load(std::memory_order_acquire) <= late) {
    // Another worker's timers, overdue: it is running a long fiber.
    const std::uint32_t used = shards_used_.load(std::memory_order_seq_cst);
    for (std::uint32_t i = 1; i < used; ++i) {
      if (i != own && due_by(i, late)) fired += fire_shard(i, false);
    }
    // Nothing was that late after all: earliest_ was left early (see
    // fire_shard); raise it, or every switch would look again.
    if (fired == 0) raise_earliest();
  }
  return fired;
}

bool TimerHeap::try_claim_driver(std::atomic<std::uint32_t>* word) noexcept {
  if (armed() == 0) return false;
  std::lock_guard<SpinLock> guard(driver_lock_);
  if (driver_.load(std::memory_order_seq_cst) != nullptr) return false;
  driver_.store(word, std::memory_order_seq_cst);
  return true;
}

void TimerHeap::release_driver(std::atomic<std::uint32_t>* word) noexcept {
  {
    std::lock_guard<SpinLock> guard(driver_lock_);
    if (driver_.load(std::memory_order_seq_cst) != word) return;
    // seq_cst: the releaser's half of the Dekker pair (top of the file).
    driver_.store(nullptr, std::memory_order_seq_cst);
  }
  if (armed() != 0) kick();
}

void TimerHeap::kick() noexcept {
  {
    // Under driver_lock_: a driver's word lives in its Worker, which may be
    // freed once it has released the role (which takes this lock).
    std::lock_guard<SpinLock> guard(driver_lock_);
    if (auto* d = driver_.load(std::memory_order_seq_cst)) {
      kick_word(d);
      return;
    }
  }
  switch (activity::kick_sleeping_worker()) {
    case activity::Kick::kicked:
    case activity::Kick::all_busy:  // busy workers fire due timers between fibers
      return;
    case activity::Kick::no_runtime:
      kick_fallback();
      return;
  }
}

}  // namespace weft::detail
