#include "waiter.hpp"

#include <mutex>

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
    thread_->unpark();
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
    // A token always follows a claim; loop in case a stale token is left
    // over from a wait that ended without one being consumed.
    do {
      thread_->park();
    } while (outcome_.load(std::memory_order_acquire) == Outcome::pending);
  }
  // acquire: pairs with try_claim()'s release.
  return outcome_.load(std::memory_order_acquire);
}

}  // namespace weft::detail
