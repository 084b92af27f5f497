// weft::RWMutex: a reader-writer lock that parks fibers instead of blocking
// their worker threads (Go's sync.RWMutex, std::shared_mutex's interface).
#pragma once

#include <chrono>
#include <cstddef>

#include "detail/deadline.hpp"
#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"

namespace weft {

// Any number of readers (lock_shared) or one writer (lock) at a time. Works
// from fibers of any runtime and from plain threads, and meets the standard
// SharedTimedLockable requirements, so std::unique_lock, std::shared_lock
// and std::scoped_lock work with it. Not recursive, and a reader must not
// upgrade (lock() while holding a read lock waits for itself: a deadlock,
// which the deadlock detector reports). As with Mutex, the owner is not a
// thread: a fiber may lock on one worker and unlock on another. A plain
// thread unlocks what it locked itself (std::shared_mutex's rule).
//
// Policy: writer-preferring, with turns.
//   - Once a writer waits, new readers queue behind it (no writer starves
//     behind a stream of overlapping readers).
//   - When a writer unlocks, every reader queued at that moment gets in
//     before the next writer (no reader starves behind a stream of writers).
//   - Writers are served in FIFO order among themselves. The lock is handed
//     to waiters directly (a woken waiter already holds it), so newcomers
//     never overtake a queued waiter.
// So under contention readers and writers alternate: one writer, then the
// batch of readers that queued during its turn, then the next writer.
//
// Cost: every call takes a short internal spin lock, so an uncontended
// lock_shared()/unlock_shared() pair is two atomic read-modify-writes and
// two stores (docs/benchmarks.md: rwmutex). Parked waits are cancellable.
//
// Memory: an unlock() happens-before every later lock or lock_shared that
// acquires; an unlock_shared() happens-before the later lock() that
// acquires. An RWMutex may be destroyed once it is unlocked and nobody
// waits for it, even while the last unlock call is still returning.
class RWMutex {
 public:
  RWMutex() noexcept = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  // ---- exclusive (writer) ----

  // Acquires the lock exclusively; parks the calling fiber (blocks a plain
  // thread) while readers or another writer hold it, or writers queued
  // earlier wait. Throws weft::Cancelled when the calling fiber's scope is
  // cancelled while it waits (weft::FiberCancelled at shutdown); the lock
  // is then not held and the waiters behind it are not held up.
  void lock() { static_cast<void>(lock_until(detail::k_never)); }
  // Acquires it if nobody holds it and no writer waits. Never parks.
  [[nodiscard]] bool try_lock() noexcept;
  // As lock(), giving up after `timeout` / at `deadline` (any clock): true
  // if acquired. Zero or negative: try_lock(). Throws as lock(), and
  // std::bad_alloc (the deadline's timer).
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return lock_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return lock_until(detail::deadline_at(deadline));
  }
  // Releases the exclusive lock: the readers queued now get in, else the
  // next writer. Never parks or blocks. Throws std::logic_error if no
  // writer holds the lock.
  void unlock();

  // ---- shared (reader) ----

  // Acquires the lock shared; parks (blocks a plain thread) while a writer
  // holds it or waits. Cancellation as lock().
  void lock_shared() { static_cast<void>(lock_shared_until(detail::k_never)); }
  // Acquires it shared if no writer holds it or waits. Never parks.
  [[nodiscard]] bool try_lock_shared() noexcept;
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) {
    return lock_shared_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return lock_shared_until(detail::deadline_at(deadline));
  }
  // Releases one shared hold; the last reader out lets the oldest writer
  // in. Never parks or blocks. Throws std::logic_error if no reader holds
  // the lock.
  void unlock_shared();

  // Snapshots, for tests and diagnostics.
  std::size_t readers() const noexcept;
  bool locked_exclusive() const noexcept;

 private:
  bool lock_until(detail::Nanos deadline);         // false: timed out
  bool lock_shared_until(detail::Nanos deadline);  // false: timed out
  // Under lock_: hands the lock to the waiters that may have it now and
  // chains the ones it claimed (to unpark after releasing lock_).
  void grant_locked(bool readers_first, detail::WaitNode*& chain) noexcept;
  std::size_t admit_readers_locked(detail::WaitNode*& chain) noexcept;

  mutable detail::SpinLock lock_;  // guards everything below; never parks under it
  std::size_t readers_ = 0;        // readers holding the lock
  bool writer_ = false;            // a writer holds the lock
  bool plain_writer_ = false;      // that writer is a plain thread (deadlock detection)
  detail::WaitList read_waiters_;
  detail::WaitList write_waiters_;
};

}  // namespace weft
