#include "waiter.hpp"

#include <mutex>

#include "activity.hpp"
#include "current.hpp"
#include "fiber.hpp"
#include "thread_parker.hpp"
#include "worker.hpp"

namespace weft::detail {

Waiter::Waiter() noexcept
    : fiber_(current_fiber()), thread_(fiber_ != nullptr ? nullptr : &this_thread_parker()) {}

Waiter::~Waiter() {
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
    park_current_fiber();
  }
}

void Waiter::set_deadline(Nanos deadline) {
  deadline_ = deadline;
  if (deadline == k_never || fiber_ == nullptr) return;  // plain threads time themselves
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

void Waiter::cancel_deadline() noexcept {
  if (!timer_armed_) return;
  timers().cancel(&timer_);  // waits for a callback that is running
  timer_armed_ = false;
}

void Waiter::unpark() noexcept {
  if (fiber_ != nullptr) {
    unpark_fiber(fiber_);
  } else {
    ThreadParker* parker = thread_;
    activity::enter();  // on the woken thread's behalf (see waiter.hpp)
    // Last access to the waiter: the owner may return and free it at once.
    thread_unparked_.store(true, std::memory_order_release);
    parker->unpark();
  }
}

Waiter::Outcome Waiter::park() noexcept {
  if (fiber_ != nullptr) {
    {
      std::lock_guard<SpinLock> guard(fiber_->wait_lock);
      fiber_->parked_on = this;
    }
    parked_ = true;
    park_current_fiber();  // returns once unpark_fiber() ran for this wait
    {
      std::lock_guard<SpinLock> guard(fiber_->wait_lock);
      fiber_->parked_on = nullptr;
    }
    cancel_deadline();  // at once: a wait that ended otherwise leaves no timer
  } else if (deadline_ == k_never) {
    activity::leave();  // counted again by whoever wakes us
    // Tokens may be stale (left by an earlier wait, or a deadlock-watcher
    // signal): wait for unpark() itself.
    while (!thread_unparked()) thread_->park();
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
        while (!thread_unparked()) thread_->park();
        activity::leave();
        break;
      }
      thread_->park_until(deadline_);
    }
  }
  // acquire: pairs with try_claim()'s release.
  return outcome_.load(std::memory_order_acquire);
}

}  // namespace weft::detail
