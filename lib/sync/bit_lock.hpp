// lock_bit: takes a spin lock that is one bit of a larger atomic state word
// (Mutex and WaitGroup keep their queue lock there, so that one store can
// release the object and its queue together).
//
// Contract: any thread; spins (never parks) while another holder has the
// bit, so the holder must only do a few instructions before releasing it.
// The caller releases the bit itself, with a release store or RMW.
#pragma once

#include <atomic>

#include "weft/detail/spin_lock.hpp"

namespace weft::detail {

// Sets `bit` in `word` once it is clear; returns the word as we set it.
template <class U>
U lock_bit(std::atomic<U>& word, U bit) noexcept {
  // relaxed: a hint; the CAS below is what acquires.
  U s = word.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & bit) == 0) {
      // acquire: pairs with the release that cleared the bit, so what the
      // previous holder wrote under it is visible.
      if (word.compare_exchange_weak(s, s | bit, std::memory_order_acquire, std::memory_order_relaxed)) {
        return s | bit;
      }
    } else {
      cpu_relax();
      s = word.load(std::memory_order_relaxed);
    }
  }
}

}  // namespace weft::detail
