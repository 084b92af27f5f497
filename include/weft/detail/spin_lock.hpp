// SpinLock: a test-and-test-and-set lock for critical sections of a few
// instructions (a wait list's head, a registry link).
//
// Contract: any thread may lock it; never park a fiber or block a thread while
// holding it. It satisfies BasicLockable, so std::lock_guard works.
#pragma once

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

class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      // acquire: pairs with unlock()'s release store, so the previous holder's
      // writes inside the critical section are visible to us.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      // relaxed: only a hint to retry; the exchange above re-establishes order.
      while (locked_.load(std::memory_order_relaxed)) cpu_relax();
    }
  }
  bool try_lock() noexcept {
    // acquire: as in lock(); relaxed pre-check avoids a write on a held lock.
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept {
    // release: publishes the critical section to the next lock()'s acquire.
    locked_.store(false, std::memory_order_release);
  }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
