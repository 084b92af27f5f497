// weft::WaitGroup: wait for a collection of tasks to finish (Go's
// sync.WaitGroup).
#pragma once

#include <atomic>
#include <cstdint>

#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"

namespace weft {

// A counter: add(n) before starting n tasks, done() as each finishes, wait()
// until it is zero. Usable from fibers of any runtime and from plain threads.
// As in Go, a wait group may be reused once every wait() of the previous
// round has returned; an add() that raises the counter from zero must happen
// before the wait() it is meant to hold up.
class WaitGroup {
 public:
  WaitGroup() noexcept = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds delta (which may be negative) to the counter; when it reaches zero,
  // every waiter wakes. Throws std::logic_error, leaving the counter
  // unchanged, if it would go negative. Never parks or blocks.
  void add(std::int64_t delta);
  // add(-1).
  void done() { add(-1); }

  // Parks the calling fiber (blocks a plain thread) until the counter is
  // zero; returns at once if it is. Throws weft::FiberCancelled if the
  // runtime cancels the parked fiber at shutdown.
  void wait();

  // The counter now (a snapshot).
  std::int64_t count() const noexcept { return count_.load(std::memory_order_acquire); }

 private:
  // count_: changed by atomic RMW in add(); acq_rel there, see wait_group.cpp.
  std::atomic<std::int64_t> count_{0};
  detail::SpinLock lock_;  // guards waiters_; the wake-up at zero happens under it
  detail::WaitList waiters_;
};

}  // namespace weft
