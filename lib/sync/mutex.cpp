// weft::Mutex's slow paths (weft/mutex.hpp describes the policy).
//
// One word, state_, holds the mutex bit, the mode bits and the queue lock
// (k_queue, which guards waiters_). Who changes it:
//   fast lock        CAS k_free -> k_locked                  (no bits held)
//   spinning locker  CAS s -> s|k_locked when !(s & k_locked) and not
//                    starving; a woken waiter also clears its k_woken.
//                    While it spins on a locked mutex with waiters queued
//                    and k_queue clear, it may CAS in k_woken (Go's
//                    mutexWoken: unlock then wakes nobody, the spinner
//                    takes the mutex); it clears that bit when it acquires
//                    or queues
//   fast unlock      CAS k_locked -> k_free                  (no other bits)
//   queue holders    set k_queue by CAS; release it as noted below
// While k_locked and k_queue are both set, only the queue holder can change
// the word: spinners and fast lockers need k_locked clear (or, for the
// k_woken hint, k_queue clear), fast unlock needs
// the exact value k_locked, and everyone else needs k_queue. The queue
// holder may then write the whole word with a plain store, and in unlock
// that store frees the mutex and the queue together, as its last access.
//
// Invariants, whenever k_queue is clear:
//   W  waiters_ non-empty => k_waiters (so the holder's unlock takes the slow
//      path and wakes someone: no lost wake-up)
//   S  k_starving         => k_locked (hand-off keeps the mutex locked from
//      one holder to the next)
#include <chrono>
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "sync/bit_lock.hpp"
#include "diagnostics/fiber_dump.hpp"
#include "sync/waiter.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/errors.hpp"
#include "weft/mutex.hpp"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;

// Spin rounds before queuing: each looks at the word once, then pauses
// k_spin_pauses times. 9 rounds are 270 pauses, the total of the earlier
// 20 rounds of 1, 2, 4 .. 16 (~2.7 us where a pause is 10 ns, ~6.5 us on the
// AMD VM where it is 24 ns): about the cost of a park and its wake-up.
// Fewer looks made a spinner on another core give up too often against a
// holder re-locking from a hot cache line; and every look pulls that line
// away from the holder, so the looks are spaced evenly, as Go's spinning
// locker does (30 pauses between looks), not packed at the start: the
// holder's next lock then pays for a cache-line transfer after each look
// (docs/design/channels.md, Mutex).
constexpr int k_spin_rounds = 9;
constexpr int k_spin_pauses = 30;
// A waiter that has waited this long turns on hand-off mode (Go's value).
constexpr auto k_starvation_threshold = std::chrono::milliseconds(1);

struct MutexNode : detail::WaitNode {
  bool handed = false;  // written by unlock_slow before the unpark: we own the mutex
};

}  // namespace

// "lock of weft::Mutex 0x... held by fiber 12": the holder as a fiber
// reference, which the dump writes out with its name (fiber_dump.hpp).
struct MutexDescriber {
  static void describe(const void* ctx, std::string& out) {
    const auto* m = static_cast<const Mutex*>(ctx);
    detail::describe_object(out, "lock of weft::Mutex", ctx);
    // relaxed, both: see Mutex::holder_. The mutex is alive: a waiter is
    // parked on it.
    if ((m->state_.load(std::memory_order_relaxed) & Mutex::k_locked) == 0) return;
    const std::uint64_t holder = m->holder_.load(std::memory_order_relaxed);
    if (holder == detail::k_plain_thread_holder) {
      out += " held by a plain thread";
    } else if (holder != 0) {
      out += " held by ";
      detail::append_fiber_ref(out, holder);
    }
  }
};

namespace {
void describe_mutex(const void* ctx, std::string& out) { MutexDescriber::describe(ctx, out); }
}  // namespace

std::uint32_t Mutex::lock_queue() noexcept { return detail::lock_bit(state_, k_queue); }

bool Mutex::lock_until(detail::Nanos deadline) {
  detail::PlainCall plain;
  bool woken = false;     // the k_woken bit is ours to clear (we were woken, or set it spinning)
  bool requeue = false;   // we already waited our turn once: go back to the front
  bool starving = false;  // we have waited longer than the threshold
  Clock::time_point since{};
  for (;;) {
    for (int round = 0; round < k_spin_rounds; ++round) {
      // relaxed: a hint; the CAS below is what acquires.
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      if ((s & k_starving) != 0) break;  // hand-off mode: the queue goes first
      if ((s & k_locked) == 0) {
        const std::uint32_t want = (s | k_locked) & ~(woken ? k_woken : 0u);
        // acquire: pairs with unlock's release.
        if (state_.compare_exchange_weak(s, want, std::memory_order_acquire, std::memory_order_relaxed)) {
          acquired();
          return true;
        }
        continue;
      }
      if (!woken && (s & (k_waiters | k_woken | k_queue)) == k_waiters) {
        // Tell unlock() not to wake a parked waiter: we are spinning and
        // will take the mutex ourselves (Go's mutexWoken). relaxed: a hint
        // that only changes whom unlock wakes; we clear it when we acquire
        // or queue. A failed CAS just means we spin without the hint.
        woken = state_.compare_exchange_weak(s, s | k_woken, std::memory_order_relaxed, std::memory_order_relaxed);
      }
      for (int i = 0; i < k_spin_pauses; ++i) detail::cpu_relax();
    }

    detail::Waiter waiter(ParkReason::mutex);
    MutexNode node;
    node.waiter = &waiter;
    waiter.set_description(&describe_mutex, this);
    const bool expired = deadline != detail::k_never && detail::now_ns() >= deadline;
    if (!expired) {
      try {
        waiter.set_deadline(deadline);  // may throw std::bad_alloc: nothing is queued yet
      } catch (...) {
        if (woken) pass_on_woken();  // unlock counts on the hint's holder: do not leave with it
        throw;
      }
    }
    std::uint32_t s = lock_queue();
    for (;;) {
      if ((s & k_locked) == 0) {
        // Free: take it (a spinner may beat us to it; then we queue).
        std::uint32_t want = s | k_locked;
        if (woken) want &= ~k_woken;
        if (waiters_.empty()) want &= ~(k_waiters | k_starving);
        // acquire: pairs with unlock's release.
        if (state_.compare_exchange_weak(s, want, std::memory_order_acquire, std::memory_order_relaxed)) {
          // We hold k_locked and k_queue: nothing interleaves (see top).
          // release: publishes waiters_ to the next queue holder.
          state_.store(want & ~k_queue, std::memory_order_release);
          acquired();
          return true;
        }
        continue;
      }
      if (expired) {
        // Give up. We hold k_locked and k_queue: plain store (see top). If
        // we owned the k_woken hint, drop it, so that the holder's unlock
        // wakes a queued waiter instead of counting on us.
        // release: frees the queue lock.
        state_.store(s & ~(k_queue | (woken ? k_woken : 0u)), std::memory_order_release);
        return false;
      }
      // Locked, and we hold k_queue: the word is ours until we store it.
      std::uint32_t next = s | k_waiters;
      if (woken) next &= ~k_woken;
      if (starving) next |= k_starving;
      if (requeue) waiters_.push_front(&node); else waiters_.push_back(&node);
      // release: publishes waiters_ to the next queue holder.
      state_.store(next & ~k_queue, std::memory_order_release);
      break;
    }
    woken = false;
    if (since == Clock::time_point{}) since = Clock::now();
    const detail::Waiter::Outcome outcome = waiter.park();
    if (outcome == detail::Waiter::Outcome::cancelled || outcome == detail::Waiter::Outcome::timed_out) {
      // Nobody claimed us (no hand-off, no wake-up owed to us): leave the queue.
      lock_queue();
      waiters_.remove(&node);
      // With the queue empty, clear k_waiters (and k_starving: no one left
      // to hand off to). release: publishes waiters_. fetch_and: the mutex
      // may be free and spinners may change the word meanwhile.
      state_.fetch_and(~(k_queue | (waiters_.empty() ? (k_waiters | k_starving) : 0u)), std::memory_order_release);
      if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
      return false;
    }
    const bool waited_long = Clock::now() - since > k_starvation_threshold;
    if (node.handed) {
      // Hand-off: we own the mutex (the claim's release, paired with park's
      // acquire, publishes the previous critical section). A short wait
      // means the queue is moving: leave hand-off mode (Go does the same).
      if (!waited_long) {
        const std::uint32_t q = lock_queue();
        // We hold k_locked and k_queue: plain store (see top).
        state_.store(q & ~(k_starving | k_queue), std::memory_order_release);
      }
      acquired();
      return true;
    }
    woken = true;
    requeue = true;
    starving = waited_long;
  }
}

void Mutex::pass_on_woken() noexcept {
  // We hold the k_woken hint, so unlock() woke nobody and counts on us to
  // take the mutex. Give the hint back; if the mutex is free and someone
  // waits, wake the oldest waiter in our place, as unlock() would have.
  std::uint32_t s = lock_queue();
  MutexNode* wake = nullptr;
  if ((s & k_locked) == 0) wake = static_cast<MutexNode*>(detail::claim_first(waiters_));
  for (;;) {
    std::uint32_t next = (s & ~(k_queue | k_woken)) | (wake != nullptr ? k_woken : 0u);
    if (waiters_.empty()) next &= ~(k_waiters | k_starving);
    // A CAS, not a store: with k_locked clear, a spinner may take the mutex
    // while we hold k_queue (see the top). release: publishes waiters_.
    if (state_.compare_exchange_weak(s, next, std::memory_order_release, std::memory_order_relaxed)) break;
  }
  if (wake != nullptr) wake->waiter->unpark();
}

void Mutex::unlock_slow() {
  detail::PlainCall plain;
  // relaxed pre-check of a misuse (the fast path failed, so bits are set).
  if ((state_.load(std::memory_order_relaxed) & k_locked) == 0) {
    throw std::logic_error("weft::Mutex::unlock: the mutex is not locked");
  }
  const std::uint32_t s = lock_queue();
  MutexNode* wake = nullptr;
  std::uint32_t next;
  if ((s & k_starving) != 0 && (wake = static_cast<MutexNode*>(detail::claim_first(waiters_))) != nullptr) {
    // Hand-off: the mutex stays locked, now held by `wake`.
    wake->handed = true;
    next = s;
    if (waiters_.empty()) next &= ~(k_waiters | k_starving);
  } else {
    next = s & ~(k_locked | k_starving);
    if ((s & k_woken) == 0 && (wake = static_cast<MutexNode*>(detail::claim_first(waiters_))) != nullptr) {
      next |= k_woken;  // it will retry; no need to wake another meanwhile
    }
    if (waiters_.empty()) next &= ~k_waiters;
  }
  // We hold k_locked and k_queue, so this store is the only write (see top).
  // release: publishes our critical section and waiters_. It frees the
  // mutex and the queue together and is our last access to *this; a waiter
  // we claimed is parked, inside lock(), so the mutex outlives its unpark.
  state_.store(next & ~k_queue, std::memory_order_release);
  if (wake != nullptr) wake->waiter->unpark();
}

}  // namespace weft
