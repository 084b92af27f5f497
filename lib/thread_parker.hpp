// ThreadParker: blocks a plain OS thread until another thread unparks it.
// One per thread (this_thread_parker()); used by Waiter for plain threads.
//
// Contract: only the owning thread calls park(); any thread calls unpark().
// An unpark() that comes before park() is remembered (one token), so a
// wake-up is never lost. Spurious futex returns are absorbed here.
#pragma once

#include <atomic>
#include <cstdint>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

class ThreadParker {
 public:
  // Blocks the calling thread until a token is available, then consumes it.
  void park() noexcept;
  // As park(), but returns by `deadline` (steady clock ns) even without a
  // token. Returns whether it consumed a token.
  bool park_until(Nanos deadline) noexcept;
  // Makes a token available and wakes the owner if it is blocked.
  void unpark() noexcept;

 private:
  // 0 = no token, 1 = token. exchange(0, acquire) in park() pairs with the
  // release store in unpark(): what the unparker wrote before is visible.
  std::atomic<std::uint32_t> token_{0};
};

// The calling thread's parker. Not inlined: a fiber must not reuse one
// thread's answer after migrating (see current.hpp).
ThreadParker& this_thread_parker() noexcept;

}  // namespace weft::detail
