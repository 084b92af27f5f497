// weft::RWMutex: a reader-writer lock that parks fibers instead of blocking
// their worker threads (Go's sync.RWMutex, std::shared_mutex's interface).
#pragma once

#include "detail/config.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"
#include "mutex.hpp"

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
// Cost: without contention every lock and unlock is one atomic
// read-modify-write on one word (docs/benchmarks.md: sync_uncontended).
// Parked waits are cancellable. At most 2^29 - 1 readers at once.
//
// Memory: an unlock() happens-before every later lock or lock_shared that
// acquires; an unlock_shared() happens-before the later lock() that
// acquires. An RWMutex may be destroyed once it is unlocked and nobody
// waits for it, even while the last unlock call is still returning.
class WEFT_API RWMutex {
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
  void lock() {
    std::uint32_t expected = 0;
    // acquire: pairs with the release of the previous unlock / unlock_shared.
    // relaxed on failure: the slow path rereads.
    if (state_.compare_exchange_strong(expected, k_writer, std::memory_order_acquire, std::memory_order_relaxed)) {
      acquired_exclusive();
      return;
    }
    static_cast<void>(lock_until(detail::k_never));
  }
  // Acquires it if nobody holds it and nobody waits. Never parks (may spin
  // for a few instructions while a slow path updates the queues).
  [[nodiscard]] bool try_lock() noexcept {
    // relaxed: the CAS below is what acquires.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s == k_queue) {  // only the queue bit: its holder may free the lock, wait and see
        detail::cpu_relax();
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      if (s != 0) return false;
      // acquire: as in lock().
      if (state_.compare_exchange_weak(s, k_writer, std::memory_order_acquire, std::memory_order_relaxed)) {
        acquired_exclusive();
        return true;
      }
    }
  }
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
  void unlock() {
    const bool plain = std::exchange(plain_writer_, false);
    std::uint32_t expected = k_writer;
    // release: publishes our critical section to the next acquirer.
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed)) {
      plain_writer_ = plain;  // the slow path decides (it may be a misuse)
      unlock_slow();
      return;
    }
    if (plain) detail::plain_holder_leave();
  }

  // ---- shared (reader) ----

  // Acquires the lock shared; parks (blocks a plain thread) while a writer
  // holds it or waits. Cancellation as lock().
  void lock_shared() {
    // relaxed: the CAS below is what acquires.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // acquire: pairs with the release of the last writer's unlock.
    if ((s & (k_writer | k_slow | k_queue)) == 0 &&
        state_.compare_exchange_strong(s, s + k_reader, std::memory_order_acquire, std::memory_order_relaxed)) {
      acquired_shared();
      return;
    }
    static_cast<void>(lock_shared_until(detail::k_never));
  }
  // Acquires it shared if no writer holds it and nobody waits. Never parks
  // (may spin for a few instructions while a slow path updates the queues).
  [[nodiscard]] bool try_lock_shared() noexcept {
    // relaxed: the CAS below is what acquires.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & (k_writer | k_slow)) == 0) {
      if ((s & k_queue) != 0) {  // a slow path is deciding: wait and see
        detail::cpu_relax();
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      // acquire: as in lock_shared().
      if (state_.compare_exchange_weak(s, s + k_reader, std::memory_order_acquire, std::memory_order_relaxed)) {
        acquired_shared();
        return true;
      }
    }
    return false;
  }
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
  void unlock_shared() {
    // relaxed: the CAS below is what releases.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & (k_slow | k_queue)) == 0 && s >= k_reader) {
      // release: publishes our reads' end to the next writer's acquire.
      if (state_.compare_exchange_weak(s, s - k_reader, std::memory_order_release, std::memory_order_relaxed)) {
        released_shared();
        return;
      }
    }
    unlock_shared_slow();  // waiters to wake, or a misuse
  }

  // Snapshots, for tests and diagnostics. Never park; any thread.
  std::size_t readers() const noexcept {
    // relaxed: a snapshot, ordered with nothing.
    return state_.load(std::memory_order_relaxed) / k_reader;
  }
  bool locked_exclusive() const noexcept {
    // relaxed: a snapshot.
    return (state_.load(std::memory_order_relaxed) & k_writer) != 0;
  }

 private:
  // state_ (rw_mutex.cpp has the protocol):
  //   k_writer  a writer holds the lock
  //   k_slow    the wait queues may be non-empty: every fast path fails
  //   k_queue   the queue lock (guards the queues); in the same word so
  //             that one store releases the lock and the queues together,
  //             as its last access (the RWMutex may be destroyed after it)
  //   bits 3..  the number of readers holding the lock (k_reader each)
  static constexpr std::uint32_t k_writer = 1;
  static constexpr std::uint32_t k_slow = 2;
  static constexpr std::uint32_t k_queue = 4;
  static constexpr std::uint32_t k_reader = 8;

  // The lock as the slow paths see it, decoded from state_ under k_queue.
  struct Holders {
    std::uint32_t readers;
    bool writer;
  };

  bool lock_until(detail::Nanos deadline);         // false: timed out
  bool lock_shared_until(detail::Nanos deadline);  // false: timed out
  void unlock_slow();
  void unlock_shared_slow();
  Holders lock_queue() noexcept;                 // takes k_queue
  void unlock_queue(const Holders& h) noexcept;  // stores the new word, freeing k_queue
  // Under k_queue: hands the lock to the waiters that may have it now and
  // chains the ones it claimed (to unpark after releasing k_queue).
  void grant_locked(Holders& h, bool readers_first, detail::WaitNode*& chain) noexcept;
  void admit_readers_locked(Holders& h, detail::WaitNode*& chain, bool& any) noexcept;

  // By the new holder (deadlock detection counts a plain thread that holds
  // the lock as able to act, as for Mutex).
  void acquired_exclusive() noexcept {
    plain_writer_ = detail::on_plain_thread();
    if (plain_writer_) detail::plain_holder_enter();
  }
  static void acquired_shared() noexcept {
    if (detail::on_plain_thread()) detail::plain_holder_enter();
  }
  // A plain thread unlocks what it locked itself, so this matches.
  static void released_shared() noexcept {
    if (detail::on_plain_thread()) detail::plain_holder_leave();
  }

  std::atomic<std::uint32_t> state_{0};
  bool plain_writer_ = false;  // written and read only by the writer holding the lock
  detail::WaitList read_waiters_;   // guarded by k_queue
  detail::WaitList write_waiters_;  // guarded by k_queue
};

}  // namespace weft
