// weft::Mutex's slow paths (weft/mutex.hpp describes the policy).
//
// One word, state_, holds the mutex bit, the mode bits and the queue lock
// (k_queue, which guards waiters_). Who changes it:
//   fast lock        CAS s -> s|k_locked when neither k_locked nor
//                    k_starving is set (other bits kept: in normal mode a
//                    running locker may overtake the queue, as a spinner may)
//   spinning locker  CAS s -> s|k_locked when !(s & k_locked) and not
//                    starving; a woken waiter also clears its k_woken.
//                    While it spins on a locked mutex with waiters queued
//                    and k_queue clear, it may CAS in k_woken (Go's
//                    mutexWoken: unlock then wakes nobody, the spinner
//                    takes the mutex); it clears that bit when it acquires
//                    or queues
//   fast unlock      CAS s -> s & ~k_locked when k_queue and k_starving are
//                    clear and nobody needs waking: no k_waiters, or
//                    k_woken (a woken waiter or hinted spinner is on its way
//                    and takes the mutex, or pass_on_woken wakes for it)
//   queue holders    set k_queue by CAS; release it as noted below
// While k_locked and k_queue are both set, only the queue holder can change
// the word: spinners and fast lockers need k_locked clear (or, for the
// k_woken hint, k_queue clear), fast unlock needs k_queue clear, and
// everyone else needs k_queue. The queue
// holder may then write the whole word with a plain store, and in unlock
// that store frees the mutex and the queue together, as its last access.
//
// Invariants, whenever k_queue is clear:
//   W  waiters_ non-empty => k_waiters (so the holder's unlock takes the slow
//      path and wakes someone: no lost wake-up)
//   S  k_starving         => k_locked (hand-off keeps the mutex locked from
//      one holder to the next)
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "sync/bit_lock.hpp"
#include "sync/waiter.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/errors.hpp"
#include "weft/mutex.hpp"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;

// Spinning (lock_until's first phase) is bounded by time, not by a count:
// it is worth spinning only for about as long as parking and being woken
// would cost, since past that point parking is the cheaper bet (the
// ski-rental argument: spinning at most the price of a park is never worse
// than twice the best choice made in hindsight). Two measured quantities
// bound it:
//   park cost   process-wide: an exponential moving average (weight 1/8) of
//               what a wake-up costs the unlocker (the claim and unpark(),
//               a futex wake when the fiber's worker must be woken), times
//               two for what the parked side pays (queuing, two switches).
//               A property of the machine and its load, not of one mutex.
//   spin budget per mutex (Mutex::spin_budget_): how long spinning has
//               recently paid off on this mutex. A spin that succeeds after
//               t sets it to at least 2t; one that fails halves it. A
//               holder that re-takes the mutex from a hot cache line beats
//               a spinner on another core almost every time, and then the
//               spinner only steals the line from it: the budget shrinks
//               and lockers park early instead of slowing the holder.
// A spin waits the shorter of the two. Between looks at the word it pauses
// 1, 2, 4 .. k_max_pauses times, so that a spinner reads the holder's cache
// line rarely.
constexpr detail::Nanos k_initial_park_cost = 3'000;  // ~ the old fixed spin, until measured
constexpr detail::Nanos k_max_park_cost = 100'000;    // one sample is capped here (a preempted waker)
constexpr detail::Nanos k_min_spin = 256;             // never below: a few looks, so spinning can pay off again
constexpr int k_max_pauses = 64;                      // ~0.6 us between looks at most

// relaxed: an estimate; a racing update loses one sample at worst.
std::atomic<detail::Nanos> g_wake_cost_ns{k_initial_park_cost / 2};

detail::Nanos park_cost() noexcept { return 2 * g_wake_cost_ns.load(std::memory_order_relaxed); }

// Wakes `node`'s waiter and folds what that cost into the estimate.
void unpark_measured(detail::WaitNode* node) noexcept {
  const detail::Nanos t0 = detail::now_ns();
  node->waiter->unpark();  // the waiter may be gone after this
  const detail::Nanos cost = std::clamp<detail::Nanos>(detail::now_ns() - t0, 0, k_max_park_cost);
  const detail::Nanos old = g_wake_cost_ns.load(std::memory_order_relaxed);
  g_wake_cost_ns.store(old + (cost - old) / 8, std::memory_order_relaxed);  // relaxed: see g_wake_cost_ns
}

// A waiter that has waited this long turns on hand-off mode (Go's value).
constexpr auto k_starvation_threshold = std::chrono::milliseconds(1);

struct MutexNode : detail::WaitNode {
  bool handed = false;  // written by unlock_slow before the unpark: we own the mutex
};

void describe_mutex(const void* ctx, std::string& out) { detail::describe_object(out, "lock of weft::Mutex", ctx); }

}  // namespace

std::uint32_t Mutex::lock_queue() noexcept { return detail::lock_bit(state_, k_queue); }

bool Mutex::lock_until(detail::Nanos deadline) {
  detail::PlainCall plain;
  bool woken = false;     // the k_woken bit is ours to clear (we were woken, or set it spinning)
  bool requeue = false;   // we already waited our turn once: go back to the front
  bool starving = false;  // we have waited longer than the threshold
  Clock::time_point since{};
  for (;;) {
    const detail::Nanos limit = std::min(spin_budget_ns(), park_cost());
    detail::Nanos started = 0;
    for (int round = 0;; ++round) {
      // relaxed: a hint; the CAS below is what acquires.
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      if ((s & k_starving) != 0) break;  // hand-off mode: the queue goes first
      if ((s & k_locked) == 0) {
        const std::uint32_t want = (s | k_locked) & ~(woken ? k_woken : 0u);
        // acquire: pairs with unlock's release.
        if (state_.compare_exchange_weak(s, want, std::memory_order_acquire, std::memory_order_relaxed)) {
          if (round > 0) learn_spin(detail::now_ns() - started, true);
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
      // The clock is read only once the mutex was found held.
      const detail::Nanos now = detail::now_ns();
      if (round == 0) {
        started = now;
      } else if (now - started >= limit) {
        learn_spin(now - started, false);
        break;
      }
      for (int i = 0; i < std::min(1 << std::min(round, 16), k_max_pauses); ++i) detail::cpu_relax();
    }

    detail::Waiter waiter;
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

detail::Nanos Mutex::spin_budget_ns() const noexcept {
  // relaxed: an estimate (see the top); 0 means not learned yet.
  const std::uint16_t units = spin_budget_.load(std::memory_order_relaxed);
  return units == 0 ? park_cost() : detail::Nanos{units} * k_budget_unit_ns;
}

void Mutex::learn_spin(detail::Nanos spun, bool acquired_it) noexcept {
  const detail::Nanos budget = spin_budget_ns();
  detail::Nanos next = acquired_it ? std::max(budget, 2 * spun) : budget / 2;
  // Never above the park cost (nor what 16 bits hold), never below
  // k_min_spin, even where a park costs less than that.
  const detail::Nanos most = std::max(k_min_spin, std::min<detail::Nanos>(park_cost(), 0xFFFF * k_budget_unit_ns));
  next = std::clamp<detail::Nanos>(next, k_min_spin, most);
  // relaxed: see spin_budget_ns(). Stored only on change: spinners on
  // other cores read this line.
  const auto units = static_cast<std::uint16_t>(next / k_budget_unit_ns);
  if (units != spin_budget_.load(std::memory_order_relaxed)) spin_budget_.store(units, std::memory_order_relaxed);
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
  if (wake != nullptr) unpark_measured(wake);
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
  if (wake != nullptr) unpark_measured(wake);
}

}  // namespace weft
