// SpinLock: a test-and-test-and-set lock for critical sections of a few
// instructions (a wait list's head, a registry link).
//
// Contract: any thread may lock it; never park a fiber, block a thread, or
// arm a timer while holding it. It satisfies BasicLockable, so
// std::lock_guard works. Builds with assertions count the SpinLocks each
// thread holds (spin_locks_held()), and the places that must not run under
// one assert that the count is 0: switching a fiber out, blocking a plain
// thread in a wait, arming a timer. A fiber holding a SpinLock never
// switches, so the count cannot follow it to another thread.
#pragma once

#include "config.hpp"

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace weft::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

#ifndef NDEBUG
// The number of SpinLocks the calling thread holds (defined in the library).
int& spin_locks_held() noexcept;
#endif

class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      // acquire: pairs with unlock()'s release store, so the previous holder's
      // writes inside the critical section are visible to us.
      if (!locked_.exchange(true, std::memory_order_acquire)) break;
      // relaxed: only a hint to retry; the exchange above re-establishes order.
      while (locked_.load(std::memory_order_relaxed)) cpu_relax();
    }
#ifndef NDEBUG
    ++spin_locks_held();
#endif
  }
  bool try_lock() noexcept {
    // acquire: as in lock(); relaxed pre-check avoids a write on a held lock.
    const bool got = !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
#ifndef NDEBUG
    if (got) ++spin_locks_held();
#endif
    return got;
  }
  void unlock() noexcept {
#ifndef NDEBUG
    --spin_locks_held();
#endif
    // release: publishes the critical section to the next lock()'s acquire.
    locked_.store(false, std::memory_order_release);
  }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
