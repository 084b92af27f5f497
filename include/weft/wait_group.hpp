// weft::WaitGroup: wait for a collection of tasks to finish (Go's
// sync.WaitGroup).
#pragma once

#include "detail/config.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

#include "detail/deadline.hpp"
#include "detail/wait_list.hpp"

namespace weft {

// A counter: add(n) before starting n tasks, done() as each finishes, wait()
// until it is zero. Usable from fibers of any runtime and from plain threads.
// A WaitGroup may be destroyed as soon as wait() has returned (the last
// add() no longer touches it then). As in Go, a wait group may be reused
// once every wait() of the previous round has returned; an add() that raises the counter from zero must happen
// before the wait() it is meant to hold up.
class WEFT_API WaitGroup {
 public:
  WaitGroup() noexcept = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds delta (which may be negative) to the counter; when it reaches zero,
  // every waiter wakes. Throws std::logic_error, leaving the counter
  // unchanged, if it would go negative (or past 2^61). Never parks or
  // blocks. Everything a task did before its done() is visible to whoever
  // returns from wait() (Go's guarantee).
  void add(std::int64_t delta);
  // add(-1). Never parks or blocks; any thread.
  void done() {
    // Inline fast path: a counter of 2 or more stays above zero, so nobody
    // is woken and nothing but the count changes (the flag bits stay as
    // they are); one CAS, no call. Anything else goes through add().
    // acq_rel: as add()'s CAS (release publishes this task's work to
    // wait(); RMWs extend the release sequence to the one that reaches 0).
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s >> k_count_shift) >= 2 && state_.compare_exchange_weak(s, s - (std::uint64_t{1} << k_count_shift),
                                                                  std::memory_order_acq_rel,
                                                                  std::memory_order_relaxed)) {
      return;
    }
    add(-1);
  }

  // Parks the calling fiber (blocks a plain thread) until the counter is
  // zero; returns at once if it is. Throws weft::FiberCancelled if the
  // runtime cancels the parked fiber at shutdown.
  void wait();

  // As wait(), but gives up once `timeout` has passed (wait_for) or at
  // `deadline` (wait_until, any clock): true if the counter reached zero.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until_ns(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_until_ns(detail::deadline_at(deadline));
  }

  // The counter now (a snapshot).
  std::int64_t count() const noexcept {
    // relaxed: a snapshot for diagnostics; wait() is what synchronizes.
    return static_cast<std::int64_t>(state_.load(std::memory_order_relaxed) >> k_count_shift);
  }

 private:
  bool wait_until_ns(detail::Nanos deadline);
  // state_ = counter << 2 | k_waiters | k_queue (wait_group.cpp). The queue
  // lock lives in the same word so that the last add() can wake the waiters
  // and release everything with one store, its last access: a WaitGroup may
  // be destroyed as soon as wait() returns.
  static constexpr std::uint64_t k_queue = 1;    // lock bit guarding waiters_
  static constexpr std::uint64_t k_waiters = 2;  // waiters_ may be non-empty
  static constexpr int k_count_shift = 2;
  std::uint64_t lock_queue() noexcept;

  std::atomic<std::uint64_t> state_{0};
  detail::WaitList waiters_;  // guarded by k_queue
};

}  // namespace weft
