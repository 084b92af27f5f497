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
    park_current_fiber();  // returns once unpark_fiber() ran for this wait
    {
      std::lock_guard<SpinLock> guard(fiber_->wait_lock);
      fiber_->parked_on = nullptr;
    }
  } else {
    activity::leave();  // counted again by whoever wakes us
    // Tokens may be stale (left by an earlier wait, or a deadlock-watcher
    // signal): wait for unpark() itself.
    while (!thread_unparked()) thread_->park();
  }
  // acquire: pairs with try_claim()'s release.
  return outcome_.load(std::memory_order_acquire);
}

}  // namespace weft::detail
