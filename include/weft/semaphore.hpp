// weft::Semaphore: a counting semaphore that parks fibers.
#pragma once

#include "detail/config.hpp"

#include <cstddef>

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
  // weft::FiberCancelled if the runtime cancels the parked fiber at shutdown.
  void acquire();
  // Takes one permit if one is available now and nobody is queued. Never
  // parks or blocks.
  [[nodiscard]] bool try_acquire() noexcept;
  // Returns n permits (default 1), waking up to n waiters. Throws
  // std::invalid_argument if n is negative. Never parks or blocks.
  void release(std::ptrdiff_t n = 1);

  // Permits available now (a snapshot).
  std::ptrdiff_t available() const noexcept;

 private:
  mutable detail::SpinLock lock_;  // guards permits_ and waiters_
  std::ptrdiff_t permits_;
  detail::WaitList waiters_;
};

}  // namespace weft
