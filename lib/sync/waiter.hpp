// Waiter: THE parking primitive. Every blocking operation in weft (join,
// channels, select, locks, sleeps) puts a Waiter on the wait list of the
// thing it waits for and parks on it. The waiter records who waits: a fiber
// (woken by pushing it to a worker's deque) or a plain thread (woken through
// a futex on the waiter's own word, thread_word_).
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
// Plain threads and deadlock detection (activity.hpp): a plain thread parks
// only inside a PlainCall; park() stops counting it as active, and unpark()
// counts it again before waking it, so activity is handed over, never lost.
//
// Waking a plain thread touches nothing of the thread's: the waker's last
// access to the waiter is the RMW that sets k_released in thread_word_, and
// after it the waker only passes the word's address to FUTEX_WAKE (the
// thread may already have returned, exited, and had its stack and TLS
// unmapped; futex_wake_at explains why a stale address is harmless). So a
// plain thread waits on the word itself, never on thread-local state.
//
// Description: what the wait is for ("recv on channel \"jobs\""), for the
// deadlock report; set by the blocking operation before it parks.
//
// Deadlines (set_deadline): a fiber's waiter arms a Timer on the process's
// TimerHeap whose callback claims it as timed_out; the timer is cancelled as
// soon as the fiber resumes, so a wait that ended otherwise leaves nothing
// armed. A plain thread's waiter needs no timer: the thread sleeps on its
// futex with the deadline as timeout and claims itself when it passes.
// While it waits with a deadline a plain thread stays counted as active
// (it will certainly come back), so deadlock detection never fires on it.
//
// Contract: constructed and parked by the waiting context only; try_claim and
// unpark from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <type_traits>

#include "scheduling/fiber.hpp"  // Fiber, unpark_fiber()
#include "time/timer_heap.hpp"
#include "weft/detail/deadline.hpp"
#include "weft/detail/wait_list.hpp"
#include "weft/park_reason.hpp"

namespace weft::detail {


class Waiter {
 public:
  enum class Outcome : std::uint32_t { pending, notified, cancelled, timed_out };

  // Binds to the calling fiber, or to the calling plain thread. `reason`:
  // what the wait is for, counted in metrics() while a fiber parks on it
  // (parked fibers by reason; park_counts.hpp).
  explicit Waiter(ParkReason reason = ParkReason::other) noexcept;
  // Cancels the deadline's timer if park() did not. If the waiter was
  // claimed but its fiber never parked on it, waits for (and consumes) the
  // claimer's unpark, so that no wake-up is left over for a later wait.
  ~Waiter() {
    // Inline: a wait without a deadline that parked (the usual one) has
    // nothing left to do, and its waiter ends with two tests.
    if (timer_armed_ || (fiber_ != nullptr && !parked_)) end();
  }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // By the owner, before the waiter is put on any list (it may be claimed
  // as timed_out from then on, even before park()): park() ends with
  // timed_out once `deadline` has passed, unless someone claimed it first.
  // k_never does nothing. Throws std::bad_alloc (timer heap growth) with
  // nothing armed.
  void set_deadline(Nanos deadline) {
    deadline_ = deadline;
    // Plain threads time themselves (no timer); k_never needs none.
    if (deadline != k_never && fiber_ != nullptr) arm_deadline(deadline);
  }

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
  // this call the waiter may already be gone; do not touch it. Inline: a
  // channel's hand-off calls it for every value that wakes a fiber.
  void unpark() noexcept {
    if (fiber_ != nullptr) {
      unpark_fiber(fiber_);
    } else {
      unpark_thread();
    }
  }

  // try_claim(notified) + unpark(). True if this call woke the owner.
  bool notify() noexcept {
    if (!try_claim(Outcome::notified)) return false;
    unpark();
    return true;
  }

  // By the owner: parks the calling fiber, or blocks the calling thread,
  // until the waiter has been claimed and unparked. Returns how it ended.
  Outcome park() noexcept;

  // Plain-thread waiters: true once unpark() has finished with the waiter,
  // so that the owner may destroy it. A claimed but not yet unparked waiter
  // must not be destroyed (the winner still reads it), so owners wait for
  // this, not for the outcome.
  bool thread_unparked() const noexcept {
    // acquire: pairs with unpark()'s release RMW.
    return (thread_word_.load(std::memory_order_acquire) & k_released) != 0;
  }

  // Plain-thread waiters, for Runtime::block_on's deadlock watch
  // (activity.hpp's watchers): poke() wakes the owner without ending the
  // wait (any thread, while the waiter is registered as a watcher);
  // wait_released_or_poked() blocks the owner until unpark() or a poke and
  // says which (a poke is consumed; true: unparked).
  void poke() noexcept;
  bool wait_released_or_poked() noexcept;
  // As wait_released_or_poked(), but also returns false at `deadline`.
  bool wait_released_or_poked_until(Nanos deadline) noexcept;

  // Any thread; a snapshot.
  Outcome outcome() const noexcept { return outcome_.load(std::memory_order_acquire); }

  // Whether cancelling the owner fiber's scope ends this wait (the default).
  // A wait that must finish even in a cancelled scope (a TaskGroup waiting
  // for its cancelled children to unwind) turns it off before parking.
  // Shutdown cancels every wait regardless.
  bool cancellable() const noexcept { return cancellable_; }
  void set_cancellable(bool on) noexcept { cancellable_ = on; }

  // CancelState::cancel() chains the waiters it claimed through this link,
  // to wake them after releasing its locks.
  Waiter* cancel_next_ = nullptr;

  // The fiber that waits, or nullptr for a plain thread.
  Fiber* fiber() const noexcept { return fiber_; }

  // Appends to `out` what the wait is for. `ctx` must stay valid while the
  // waiter is parked (it usually is the object waited on, or a record on the
  // owner's stack).
  using DescribeFn = void (*)(const void* ctx, std::string& out);
  void set_description(DescribeFn fn, const void* ctx) noexcept {
    describe_ = fn;
    describe_ctx_ = ctx;
  }
  void describe(std::string& out) const {
    if (describe_ != nullptr) describe_(describe_ctx_, out); else out += "an unnamed wait";
  }

 private:
  struct DeadlineTimer : Timer {
    DeadlineTimer() noexcept : Timer(&fire_deadline) {}
    Waiter* waiter = nullptr;
  };
  static Nanos fire_deadline(Timer* t, Nanos now) noexcept;
  void wait_released() noexcept;  // plain-thread owner: until unpark() is done with us
  void arm_deadline(Nanos deadline);  // set_deadline's timer, for a fiber
  // Returns only once a running deadline callback has ended.
  void cancel_deadline() noexcept {
    if (timer_armed_) disarm_deadline();
  }
  void disarm_deadline() noexcept;
  void end() noexcept;  // ~Waiter's work, when it has any
  void unpark_thread() noexcept;  // unpark() for a plain thread's waiter

  std::atomic<Outcome> outcome_{Outcome::pending};
  Nanos deadline_ = k_never;
  bool timer_armed_ = false;  // the owner armed timer_ and has not cancelled it yet
  bool parked_ = false;       // a fiber owner called park() (and so consumed its wake-up)
  bool cancellable_;          // see cancellable(); false under ShieldCancel
  const ParkReason reason_;   // stored in the fiber by park()
  // Constructed by arm_deadline, only for a fiber's wait with a deadline:
  // most waits have none, and its seven fields were a third of what making
  // a Waiter cost. Trivially destructible: nothing to end.
  union {
    DeadlineTimer timer_;
  };
  static_assert(std::is_trivially_destructible_v<DeadlineTimer>);
  DescribeFn describe_ = nullptr;
  const void* describe_ctx_ = nullptr;
  Fiber* fiber_;
  // Plain threads' futex word: k_released, set (release RMW) by unpark()
  // as its last access to the waiter and read (acquire) by the owner; and
  // k_poked, set by poke() and cleared by the owner.
  static constexpr std::uint32_t k_released = 1;
  static constexpr std::uint32_t k_poked = 2;
  std::atomic<std::uint32_t> thread_word_{0};
};

namespace testing {
// Test seam (tests/test_thread_wakeup.cpp): when set, called by the waker of
// a plain thread right after the store that lets the thread go, to widen the
// window in which the thread may return and exit. nullptr in production.
// Atomic: the test sets it while workers wake plain threads. relaxed: the
// hook synchronizes with the test by itself.
extern std::atomic<void (*)() noexcept> after_thread_release;
}  // namespace testing

// Throws weft::Cancelled when the calling fiber's cancellation scope is
// cancelled, else weft::FiberCancelled (shutdown cancelled the wait): what
// a wait throws after park() returned Outcome::cancelled.
[[noreturn]] void throw_cancelled();

// Appends "0x..." (the address in hex) to out.
inline void append_address(std::string& out, const void* object) {
  // As printf's %p, without printf: a trace describes every park, and a
  // formatted print was most of what recording one cost.
  auto v = reinterpret_cast<std::uintptr_t>(object);
  if (v == 0) {
    out += "(nil)";
    return;
  }
  char digits[2 * sizeof v];
  std::size_t n = 0;
  for (; v != 0; v >>= 4) digits[n++] = "0123456789abcdef"[v & 0xf];
  out += "0x";
  while (n > 0) out += digits[--n];
}

// Appends "<what> 0x..." to out: the description of a wait on an unnamed
// object, for Waiter::set_description callbacks.
inline void describe_object(std::string& out, const char* what, const void* object) {
  out += what;
  out += ' ';
  append_address(out, object);
}

// The first node of `list` whose waiter this call claims (as notified),
// unlinked; nodes whose waiters were claimed elsewhere (a select that took
// another case, a cancellation) are unlinked and skipped: their owners find
// them unlinked and carry on. nullptr if none. Under the list owner's lock.
inline WaitNode* claim_first(WaitList& list) noexcept {
  while (WaitNode* n = list.pop_front()) {
    if (n->waiter->try_claim(Waiter::Outcome::notified)) return n;
  }
  return nullptr;
}

// Unparks a chain of claimed nodes linked through `next` (built under a
// lock, walked after releasing it). Reads each link before the unpark that
// may free the node.
inline void unpark_chain(WaitNode* chain) noexcept {
  while (chain != nullptr) {
    WaitNode* next = chain->next;
    chain->waiter->unpark();
    chain = next;
  }
}

}  // namespace weft::detail
