// weft::Semaphore: a counting semaphore that parks fibers.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <cstddef>

#include "detail/deadline.hpp"
#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"

namespace weft {

// Holds a number of permits. acquire() takes one, parking the calling fiber
// (blocking a plain thread) while none is available; release(n) returns n.
// Waiters are served in FIFO order and a released permit goes straight to
// the oldest waiter, so nobody starves. Usable from fibers of any runtime
// and from plain threads. Typical use: bound how many fibers use a resource.
// Memory: a release() happens-before the acquire() that gets its permit. A
// Semaphore may be destroyed once nobody is inside or waiting on it.
class WEFT_API Semaphore {
 public:
  // Throws std::invalid_argument if `permits` is negative.
  explicit Semaphore(std::ptrdiff_t permits);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Takes one permit, parking / blocking until one is available. Throws
  // weft::Cancelled when the calling fiber's scope is cancelled while it
  // waits (no permit is then taken), weft::FiberCancelled if the runtime
  // cancels the parked fiber at shutdown.
  void acquire() { static_cast<void>(try_acquire() || acquire_until(detail::k_never)); }
  // As acquire(), but gives up once `timeout` has passed (try_acquire_for)
  // or at `deadline` (try_acquire_until, any clock): true if a permit was
  // taken, false (nothing taken) on time-out. A timeout of zero or less is
  // try_acquire(). A waiter that times out leaves the queue; a permit
  // released at the same moment goes to the next waiter, never lost. Throws
  // weft::Cancelled when the calling fiber's scope is cancelled while it
  // waits (weft::FiberCancelled at shutdown), std::bad_alloc (timer).
  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(const std::chrono::duration<Rep, Period>& timeout) {
    return try_acquire() || acquire_until(detail::deadline_after(timeout));  // no timer when a permit is free
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return try_acquire() || acquire_until(detail::deadline_at(deadline));
  }
  // Takes one permit if one is available now and nobody is queued. Never
  // parks or blocks.
  [[nodiscard]] bool try_acquire() noexcept;
  // Returns n permits (default 1), waking up to n waiters. Throws
  // std::invalid_argument if n is negative. Never parks or blocks.
  void release(std::ptrdiff_t n = 1);

  // Permits available now (a snapshot).
  std::ptrdiff_t available() const noexcept;

 private:
  bool acquire_until(detail::Nanos deadline);  // false: timed out

  mutable detail::SpinLock lock_;  // guards permits_ and waiters_
  std::ptrdiff_t permits_;
  detail::WaitList waiters_;
};

}  // namespace weft
