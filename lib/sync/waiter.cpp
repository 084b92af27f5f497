#include "sync/waiter.hpp"

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "diagnostics/activity.hpp"
#include "diagnostics/tracer.hpp"
#include "diagnostics/outside_threads.hpp"
#include "structured/cancel_state.hpp"
#include "structured/fiber_cancelled.hpp"
#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "sync/futex.hpp"
#include "sync/wait_visit.hpp"
#include "time/park_stamp.hpp"
#include "weft/errors.hpp"
#include "scheduling/worker.hpp"

namespace weft::detail {

std::atomic<void (*)() noexcept> testing::after_thread_release{nullptr};

Waiter::Waiter(ParkReason reason) noexcept : cancellable_(true), reason_(reason) {
  // current_fiber(), keeping the worker for the test below; inlined: the
  // constructor's first thing, and nothing in it parks (current.hpp).
  Worker* w = current_worker_at_entry();
  fiber_ = w != nullptr ? w->current_fiber() : nullptr;
  if (fiber_ != nullptr && fiber_->cancel_shield != 0) cancellable_ = false;
  if (fiber_ == nullptr && w != nullptr) {
    // A worker's scheduler loop, not a fiber: only a destructor of a task
    // that could not get a stack runs here (worker.cpp, start_fiber). A
    // wait would block the worker thread itself, which may be the one the
    // wait needs.
    std::fputs("weft: a weft wait was called on a worker thread outside any fiber (from the destructor of a "
               "task that could not get a stack); waits need a fiber or a plain thread\n",
               stderr);
    std::abort();
  }
}

void Waiter::end() noexcept {
  cancel_deadline();  // returns only once a running deadline callback has ended
  // A fiber that armed a deadline and then left without parking (what it
  // waited for turned up before it queued the waiter) may have been claimed
  // by its timer in between, and that timer's unpark then found the fiber
  // running and left `notified` in its park_state. Consume that wake-up
  // here (park_current_fiber returns at once on it; for a claimer that has
  // not unparked yet, it waits for that unpark), or the fiber's next park,
  // on some unrelated waiter, would return before that wait had ended.
  // acquire: pairs with try_claim()'s release.
  if (fiber_ != nullptr && !parked_ && outcome_.load(std::memory_order_acquire) != Outcome::pending) {
    park_current_fiber(fiber_);
  }
}

void throw_cancelled() {
  trace_cancel_delivered();
  Fiber* f = current_fiber();
  if (f != nullptr && fiber_cancelled(f)) throw Cancelled{};
  throw FiberCancelled{};
}

void Waiter::arm_deadline(Nanos deadline) {
  new (&timer_) DeadlineTimer();  // idle here: never armed, or disarmed (timer_armed_ is false)
  timer_.waiter = this;
  timers().arm(&timer_, deadline);
  timer_armed_ = true;
}

Nanos Waiter::fire_deadline(Timer* t, Nanos) noexcept {
  Waiter* w = static_cast<DeadlineTimer*>(t)->waiter;
  // The owner cannot leave before this callback ends (it cancels the timer,
  // which waits for us), so the waiter is alive here.
  if (w->try_claim(Outcome::timed_out)) w->unpark();
  return k_never;
}

void Waiter::disarm_deadline() noexcept {
  timers().cancel(&timer_);  // waits for a callback that is running
  timer_armed_ = false;
}

void Waiter::unpark_thread() noexcept {
  activity::enter();  // on the woken thread's behalf (see waiter.hpp)
  const void* word = &thread_word_;
  // Last access to the waiter: the owner may return, exit and have its
  // stack unmapped at once. release: publishes the outcome and whatever
  // the claimer handed over to the owner's acquire load. An RMW, not a
  // store: a poke may set its bit at the same time.
  thread_word_.fetch_or(k_released, std::memory_order_release);
  // relaxed: see the declaration.
  if (auto hook = testing::after_thread_release.load(std::memory_order_relaxed)) hook();
  futex_wake_at(word, 1);  // the address only (futex.hpp)
}

void Waiter::poke() noexcept {
  // relaxed: the bit only makes the owner look again; what it looks at
  // (activity's counters) has its own ordering. The waiter is alive: it is
  // registered as a watcher until its owner leaves (activity.hpp).
  thread_word_.fetch_or(k_poked, std::memory_order_relaxed);
  futex_wake(thread_word_, 1);
}

void Waiter::wait_released() noexcept {
  for (;;) {
    // acquire: pairs with unpark()'s release RMW.
    const std::uint32_t w = thread_word_.load(std::memory_order_acquire);
    if ((w & k_released) != 0) return;
    futex_wait(thread_word_, w);
  }
}

bool Waiter::wait_released_or_poked() noexcept { return wait_released_or_poked_until(k_never); }

bool Waiter::wait_released_or_poked_until(Nanos deadline) noexcept {
  for (;;) {
    // acquire: pairs with unpark()'s release RMW.
    const std::uint32_t w = thread_word_.load(std::memory_order_acquire);
    if ((w & k_released) != 0) return true;
    if ((w & k_poked) != 0) {
      thread_word_.fetch_and(~k_poked, std::memory_order_relaxed);  // relaxed: see poke()
      return false;
    }
    if (deadline == k_never) {
      futex_wait(thread_word_, w);
    } else {
      if (now_ns() >= deadline) return false;  // as a poke: look again
      futex_wait_until(thread_word_, w, deadline);
    }
  }
}

Waiter::Outcome Waiter::park() noexcept {
#ifndef NDEBUG
  assert(spin_locks_held() == 0 && "weft: a wait parked holding a SpinLock");
#endif
  if (fiber_ != nullptr) {
    if (cancellable_) join_scope_members(fiber_);  // before parked_on is published (C2)
    publish_parked_on(fiber_, this, park_stamp());  // the stamp: for the dump (fiber.hpp)
    // After publishing parked_on (cancel_state.hpp, C2; wait_visit.hpp): a
    // scope cancelled before now is seen here, one cancelled later finds
    // the waiter.
    if (cancellable_ && fiber_cancelled(fiber_) && try_claim(Outcome::cancelled)) {
      unpark();  // our own wake-up: park_current_fiber() below returns at once
    }
    parked_ = true;
    fiber_->park_reason = reason_;  // counted by reason when the park completes (park_counts.hpp)
    park_current_fiber(fiber_);  // returns once unpark_fiber() ran for this wait
    clear_parked_on(fiber_);
    cancel_deadline();  // at once: a wait that ended otherwise leaves no timer
  } else if (deadline_ == k_never) {
    outside_threads::blocked_enter();  // before we stop counting as active (outside_threads.hpp)
    activity::leave();  // counted again by whoever wakes us
    wait_released();
    outside_threads::blocked_leave();
  } else {
    // Timed: we stay active (we will come back by ourselves).
    for (;;) {
      if (thread_unparked()) {
        activity::leave();  // the waker entered on our behalf: undo the extra count
        break;
      }
      if (now_ns() >= deadline_) {
        if (try_claim(Outcome::timed_out)) return Outcome::timed_out;
        // Someone claimed us just before the deadline: it unparks us soon.
        wait_released();
        activity::leave();
        break;
      }
      // acquire: pairs with unpark()'s release RMW (rechecked at the top).
      futex_wait_until(thread_word_, thread_word_.load(std::memory_order_acquire), deadline_);
    }
  }
  // acquire: pairs with try_claim()'s release.
  return outcome_.load(std::memory_order_acquire);
}

}  // namespace weft::detail
