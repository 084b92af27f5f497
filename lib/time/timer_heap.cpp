// TimerHeap (timer_heap.hpp): the heap, firing, and the driver hand-off.
//
// Why nobody misses a deadline (no lost kick):
//   arm       armed_ + 1 (seq_cst), then, if the timer is the new earliest,
//             kick(): load driver_ (seq_cst) and kick it, or a sleeper.
//   release   driver_ = null (seq_cst), then load armed_ (seq_cst) and kick
//             if anything is armed.
// Both pairs are a store-then-load of the other's variable in seq_cst
// order, so at least one side sees the other: either the armer sees the
// old driver (which then sees armed_ and kicks on), or the releaser sees
// the timer. A worker going to sleep lists itself under IdleWorkers' lock
// before it looks at armed_/driver_, and kick() looks for sleepers under
// that lock after its own armed_ change, so a kick that finds no sleeper
// happened before that worker's look, which then sees the timer.
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

namespace {

constexpr std::size_t k_batch = 64;  // timers taken out per pass of fire_due

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

void TimerHeap::sift_up(std::size_t i) noexcept {
  const Entry e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!less(e, heap_[parent])) break;
    place(heap_[parent], i);
    i = parent;
  }
  place(e, i);
}

void TimerHeap::sift_down(std::size_t i) noexcept {
  const Entry e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && less(heap_[child + 1], heap_[child])) ++child;
    if (!less(heap_[child], e)) break;
    place(heap_[child], i);
    i = child;
  }
  place(e, i);
}

void TimerHeap::remove_at(std::size_t i) noexcept {
  const Entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;  // it was the last one
  place(last, i);
  sift_down(i);
  sift_up(last.timer->slot);
}

void TimerHeap::insert_locked(Timer* t, Nanos deadline) {
  t->deadline = deadline;
  t->seq = next_seq_++;
  heap_.push_back(Entry{deadline, t->seq, t});  // never grows the vector: arm() made room
  t->slot = heap_.size() - 1;
  sift_up(t->slot);
  // relaxed: written under lock_; readers of the state take the lock or
  // synchronise through earliest_ / the firer's release store.
  t->state.store(Timer::k_armed, std::memory_order_relaxed);
}

void TimerHeap::publish_earliest() noexcept {
  // release: pairs with earliest()'s acquire.
  earliest_.store(heap_.empty() ? k_never : heap_[0].deadline, std::memory_order_release);
}

void TimerHeap::arm(Timer* t, Nanos deadline) {
#ifndef NDEBUG
  // Arming may allocate, take the heap's lock and wake a thread: never
  // under another lock (channel_core.hpp's lock discipline).
  assert(spin_locks_held() == 0 && "weft: a timer armed under a SpinLock");
#endif
  // Counted as activity before anyone can see it armed (and before the
  // arming context stops being active): it will wake someone.
  activity::enter();
  bool first;
  {
    std::lock_guard<SpinLock> guard(lock_);
    try {
      // Room for this timer and for a whole batch of re-arms: fire_due
      // re-inserts periodic timers in a noexcept function, after others may
      // have armed into the room its batch left, so it must never have to
      // grow the vector (a failing allocation there would terminate).
      const std::size_t room = heap_.size() + 1 + k_batch;
      if (heap_.capacity() < room) heap_.reserve(std::max(2 * heap_.capacity(), room));
      insert_locked(t, deadline);
    } catch (...) {
      activity::leave();
      throw;
    }
    first = t->slot == 0;
    publish_earliest();
    // seq_cst: see the top of this file.
    armed_.fetch_add(1, std::memory_order_seq_cst);
  }
  if (first) kick();
}

bool TimerHeap::cancel(Timer* t) noexcept {
  for (int spins = 0;; ++spins) {
    // acquire: pairs with the firer's release store of k_idle (its callback's
    // writes are visible once we see it idle).
    const std::uint32_t s = t->state.load(std::memory_order_acquire);
    if (s == Timer::k_idle) return false;
    if (s == Timer::k_armed) {
      {
        std::lock_guard<SpinLock> guard(lock_);
        // relaxed: under lock_, where armed <-> firing changes happen.
        if (t->state.load(std::memory_order_relaxed) != Timer::k_armed) continue;
        remove_at(t->slot);
        t->state.store(Timer::k_idle, std::memory_order_relaxed);
        publish_earliest();
      }
      armed_.fetch_sub(1, std::memory_order_seq_cst);
      activity::leave();
      return true;
    }
    // Firing elsewhere: its callback is short (a claim and a wake-up).
    if (spins < 100) cpu_relax(); else sched_yield();
  }
}

std::size_t TimerHeap::fire_due(bool wait) noexcept {
  if (wait) {
    firing_.lock();
  } else if (!firing_.try_lock()) {
    return 0;
  }
  std::size_t fired = 0;
  for (;;) {
    Timer* batch[k_batch];
    std::size_t n = 0;
    const Nanos now = now_ns();
    {
      std::lock_guard<SpinLock> guard(lock_);
      while (n < k_batch && !heap_.empty() && heap_[0].deadline <= now) {
        Timer* t = heap_[0].timer;
        remove_at(0);
        t->state.store(Timer::k_firing, std::memory_order_relaxed);  // relaxed: under lock_
        batch[n++] = t;
      }
      if (n != 0) {
        publish_earliest();
        // Out of the heap: no longer armed (a driver must not claim the
        // role for timers that are already firing; see armed_). seq_cst:
        // as every change of armed_.
        armed_.fetch_sub(n, std::memory_order_seq_cst);
      }
    }
    fired += n;
    for (std::size_t i = 0; i < n; ++i) {
      Timer* t = batch[i];
      const Nanos next = t->fire(t, now);
      if (next != k_never) {
        bool first;
        {
          std::lock_guard<SpinLock> guard(lock_);
          // Cannot throw: every arm() leaves room for a batch (see there).
          insert_locked(t, next);
          first = t->slot == 0;
          publish_earliest();
          armed_.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: as in arm()
        }
        if (first) kick();  // a sleeping driver may be waiting for a later one
        continue;
      }
      // release: our last access to *t; cancel()'s acquire sees the callback done.
      t->state.store(Timer::k_idle, std::memory_order_release);
      // After the callback has woken its waiter (hand-off rule, activity.hpp).
      activity::leave();
    }
    if (n < k_batch) break;
  }
  firing_.unlock();
  return fired;
}

bool TimerHeap::try_claim_driver(std::atomic<std::uint32_t>* word) noexcept {
  if (armed_.load(std::memory_order_seq_cst) == 0) return false;
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
  if (armed_.load(std::memory_order_seq_cst) != 0) kick();
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
