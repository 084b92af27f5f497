// Waiter: THE parking primitive. Every blocking operation in weft (join now;
// channels, locks and timers next) puts a Waiter on the wait list of the thing
// it waits for and parks on it. The waiter records who waits: a fiber (woken
// by pushing it to a worker's deque) or a plain thread (woken through its
// futex-based ThreadParker).
//
// One wait, one winner: whoever first claims the waiter (try_claim) decides
// how the wait ended (notified, cancelled, and later timed out) and must then
// call unpark() exactly once. Everyone else who finds the waiter on a list
// sees it claimed and skips it. This is what lets one waiter sit on several
// lists at once (select) and lets a timeout or a shutdown race a wake-up.
//
// Lifetime rule: a Waiter lives on the waiting fiber's or thread's stack.
// Anyone who may still try_claim it must do so under the lock of the list it
// was found on, and the owner, once resumed, unlinks it under that same lock
// before returning. So nobody touches a waiter after its owner has left.
//
// Contract: constructed and parked by the waiting context only; try_claim and
// unpark from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

struct Fiber;
class ThreadParker;

class Waiter {
 public:
  enum class Outcome : std::uint32_t { pending, notified, cancelled };

  // Binds to the calling fiber, or to the calling plain thread.
  Waiter() noexcept;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Any thread. Atomically ends the wait with `outcome`; true if this call
  // won. The winner must call unpark() next.
  bool try_claim(Outcome outcome) noexcept {
    Outcome expected = Outcome::pending;
    // acq_rel: release publishes what the claimer wrote before (a value
    // handed over) to the owner's acquire load in park(); acquire orders the
    // claim after earlier claims' effects. relaxed on failure: a loser only
    // learns it lost.
    return outcome_.compare_exchange_strong(expected, outcome, std::memory_order_acq_rel,
                                            std::memory_order_relaxed);
  }

  // By the winner of try_claim, once: makes the owner runnable again. After
  // this call the waiter may already be gone; do not touch it.
  void unpark() noexcept;

  // try_claim(notified) + unpark(). True if this call woke the owner.
  bool notify() noexcept {
    if (!try_claim(Outcome::notified)) return false;
    unpark();
    return true;
  }

  // By the owner: parks the calling fiber, or blocks the calling thread,
  // until the waiter has been claimed and unparked. Returns how it ended.
  Outcome park() noexcept;

  // Any thread; a snapshot.
  Outcome outcome() const noexcept { return outcome_.load(std::memory_order_acquire); }

  // The fiber that waits, or nullptr for a plain thread.
  Fiber* fiber() const noexcept { return fiber_; }

 private:
  std::atomic<Outcome> outcome_{Outcome::pending};
  Fiber* fiber_;
  ThreadParker* thread_;
};

}  // namespace weft::detail
