// weft::Mutex: a mutual-exclusion lock that parks fibers instead of blocking
// their worker threads.
#pragma once

#include "detail/config.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/wait_list.hpp"

namespace weft {

namespace detail {
// Deadlock detection counts a plain thread that holds a weft::Mutex as able
// to act (deadlock.hpp); these record it. Defined in the library.
WEFT_API bool on_plain_thread() noexcept;
WEFT_API void plain_holder_enter() noexcept;
WEFT_API void plain_holder_leave() noexcept;
// Who takes a lock, for the dump and deadlock reports: the calling fiber's
// id, k_plain_thread_holder on a plain thread, 0 on a worker outside any
// fiber. Never blocks.
inline constexpr std::uint64_t k_plain_thread_holder = ~std::uint64_t{0};
WEFT_API std::uint64_t lock_holder_id() noexcept;
}  // namespace detail

// Works from fibers of any runtime and from plain threads, and meets the
// standard Lockable requirements, so std::lock_guard, std::unique_lock and
// std::scoped_lock work with it. Not recursive. The owner is not a thread:
// a fiber may lock on one worker and unlock on another after migrating.
//
// Policy (Go's sync.Mutex, two modes). Normal mode favours throughput:
// lock() spins briefly, then queues FIFO and parks; unlock() frees the mutex
// and wakes the oldest waiter, which competes with fibers arriving just then
// (they may "barge" ahead, which keeps the lock hot on a running worker). A
// woken waiter that loses goes back to the front of the queue. Starvation
// mode bounds the unfairness: once a waiter has waited more than 1 ms, the
// mutex switches to direct hand-off: unlock() gives the lock to the oldest
// waiter, newcomers queue behind, and nobody spins. It switches back when
// the queue empties or a waiter got the lock within 1 ms. So every waiter
// gets the lock: after about 1 ms it is at the head of a FIFO queue that is
// served strictly in order. Without contention lock() and unlock() are one
// atomic operation each.
//
// Memory: unlock() happens-before the next lock() that acquires. A Mutex
// may be destroyed as soon as it is unlocked and nobody waits for it, even
// while the last unlock() call is still returning (as std::mutex allows).
class WEFT_API Mutex {
 public:
  Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Acquires the lock; parks the calling fiber (blocks a plain thread) while
  // another holder has it. Throws weft::FiberCancelled if the runtime cancels
  // the parked fiber at shutdown (the lock is then not held).
  void lock() {
    std::uint32_t expected = k_free;
    // acquire: pairs with unlock()'s release, so the previous critical
    // section happens-before ours. relaxed on failure: the slow path rereads.
    if (state_.compare_exchange_strong(expected, k_locked, std::memory_order_acquire, std::memory_order_relaxed)) {
      acquired();
      return;
    }
    lock_slow();
  }

  // As lock(), but gives up once `timeout` has passed (try_lock_for) or at
  // `deadline` (try_lock_until, any clock): true if the lock was acquired.
  // A timeout of zero or less is try_lock() with a short spin. Satisfies
  // TimedLockable (std::unique_lock's try_lock_for works).
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return try_lock() || lock_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return try_lock() || lock_until(detail::deadline_at(deadline));
  }

  // Acquires the lock if it is free now (even if waiters are queued: like a
  // spinning lock() in normal mode, it may overtake them). Never parks or
  // blocks. std::lock and std::scoped_lock rely on it.
  [[nodiscard]] bool try_lock() noexcept {
    // relaxed: the CAS below is what acquires.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & k_locked) == 0) {
      // acquire: as in lock(). Keeps the other bits (queue lock, modes).
      if (state_.compare_exchange_weak(s, s | k_locked, std::memory_order_acquire, std::memory_order_relaxed)) {
        acquired();
        return true;
      }
    }
    return false;
  }

  // Releases the lock, handing it to the oldest queued waiter if there is
  // one. Never parks or blocks. Throws std::logic_error if the mutex is not
  // locked.
  void unlock() {
    const bool plain_holder = std::exchange(plain_holder_, false);
    std::uint32_t expected = k_locked;
    // release: publishes our critical section to the next lock()'s acquire.
    if (!state_.compare_exchange_strong(expected, k_free, std::memory_order_release, std::memory_order_relaxed)) {
      unlock_slow();
    }
    if (plain_holder) detail::plain_holder_leave();
  }

 private:
  // state_ bits (mutex.cpp has the protocol):
  //   k_locked    someone holds the mutex
  //   k_waiters   the queue may be non-empty: unlock() must take the slow path
  //   k_starving  hand-off mode
  //   k_woken     a woken waiter is on its way to retry: unlock() need not
  //               wake another one
  //   k_queue     the queue lock: guards waiters_. It lives in the same word
  //               so that unlock() can free the mutex and the queue with one
  //               store, its last access (the mutex may be destroyed the
  //               moment it is free, as a std::mutex may)
  static constexpr std::uint32_t k_free = 0;
  static constexpr std::uint32_t k_locked = 1;
  static constexpr std::uint32_t k_waiters = 2;
  static constexpr std::uint32_t k_starving = 4;
  static constexpr std::uint32_t k_woken = 8;
  static constexpr std::uint32_t k_queue = 16;

  void lock_slow() { lock_until(detail::k_never); }
  bool lock_until(detail::Nanos deadline);  // the slow path; false: timed out
  void unlock_slow();
  void pass_on_woken() noexcept;  // a locker gives up the k_woken hint it holds (mutex.cpp)
  std::uint32_t lock_queue() noexcept;  // sets k_queue; returns the state seen
  // By the new holder, right after it got the lock.
  void acquired() noexcept {
    const std::uint64_t holder = detail::lock_holder_id();
    // relaxed: a diagnostic. Only a waiter's description reads it (the dump,
    // a deadlock report), and nothing is read through it; a reader that
    // races with a hand-off sees the old or the new holder, both true a
    // moment apart, and a deadlock report reads it once nothing runs. A
    // plain store (a mov on x86), no read-modify-write.
    holder_.store(holder, std::memory_order_relaxed);
    plain_holder_ = holder == detail::k_plain_thread_holder;
    if (plain_holder_) detail::plain_holder_enter();
  }

  std::atomic<std::uint32_t> state_{k_free};
  bool plain_holder_ = false;    // written and read only by the holder
  // The last holder (acquired()): while the mutex is locked, who holds it.
  // Not cleared by unlock() (the describer checks k_locked instead), so
  // unlock() stays one CAS. Written relaxed by each new holder, read
  // relaxed by describe_mutex (mutex.cpp).
  std::atomic<std::uint64_t> holder_{0};
  friend struct MutexDescriber;
  detail::WaitList waiters_;  // guarded by the k_queue bit
};

}  // namespace weft
