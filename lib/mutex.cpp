// weft::Mutex's slow paths (weft/mutex.hpp describes the policy).
//
// Who changes state_ (all transitions are CAS loops or happen where no
// other transition can interleave):
//   fast lock        CAS k_free -> k_locked                    (no lock held)
//   spinning locker  CAS s -> s|k_locked when !(s & k_locked) and not
//                    starving; a woken waiter also clears k_woken (no lock)
//   fast unlock      CAS k_locked -> k_free                   (no lock held)
//   queuing locker   under queue_lock_: CAS s -> s|k_waiters while locked
//                    (or takes the mutex if it is free)
//   unlock_slow      under queue_lock_ and holding the mutex: a plain store.
//                    Nothing else can interleave: spinners and fast lockers
//                    need the mutex free, everyone else needs queue_lock_.
//
// Invariants, under queue_lock_:
//   W  waiters_ non-empty  => state_ has k_waiters (so its holder's unlock
//      takes the slow path and wakes someone: no lost wake-up)
//   S  k_starving          => k_locked, or the queue was just found empty
//      (hand-off keeps k_locked set from one holder to the next)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

#include "activity.hpp"
#include "waiter.hpp"
#include "weft/errors.hpp"
#include "weft/mutex.hpp"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;

// Spin rounds before queuing: each pauses 1, 2, 4 .. 16 times, then retries.
constexpr int k_spin_rounds = 10;
// A waiter that has waited this long turns on hand-off mode (Go's value).
constexpr auto k_starvation_threshold = std::chrono::milliseconds(1);

struct MutexNode : detail::WaitNode {
  bool handed = false;  // written by unlock_slow before the unpark: we own the mutex
};

void describe_mutex(const void* ctx, std::string& out) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "lock of weft::Mutex %p", ctx);
  out += buf;
}

}  // namespace

void Mutex::lock_slow() {
  detail::PlainCall plain;
  bool woken = false;     // we were woken by unlock_slow and k_woken is ours to clear
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
          return;
        }
        continue;
      }
      for (int i = 0; i < (1 << std::min(round, 4)); ++i) detail::cpu_relax();
    }

    detail::Waiter waiter;
    MutexNode node;
    node.waiter = &waiter;
    waiter.set_description(&describe_mutex, this);
    {
      std::lock_guard<detail::SpinLock> guard(queue_lock_);
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      for (;;) {
        const bool take = (s & k_locked) == 0;
        std::uint32_t want = take ? (s | k_locked) : (s | k_waiters);
        if (woken) want &= ~k_woken;
        if (take && waiters_.empty()) want &= ~(k_waiters | k_starving);
        if (!take && starving) want |= k_starving;
        // acquire: when we take the mutex, pairs with unlock's release.
        if (state_.compare_exchange_weak(s, want, std::memory_order_acquire, std::memory_order_relaxed)) {
          if (take) {
            acquired();
            return;
          }
          break;
        }
      }
      woken = false;
      if (requeue) waiters_.push_front(&node); else waiters_.push_back(&node);
    }
    if (since == Clock::time_point{}) since = Clock::now();
    if (waiter.park() == detail::Waiter::Outcome::cancelled) {
      std::lock_guard<detail::SpinLock> guard(queue_lock_);
      waiters_.remove(&node);
      throw FiberCancelled{};
    }
    const bool waited_long = Clock::now() - since > k_starvation_threshold;
    if (node.handed) {
      // Hand-off: we own the mutex (the claim's release, paired with park's
      // acquire, publishes the previous critical section). A short wait
      // means the queue is moving: leave hand-off mode (Go does the same).
      if (!waited_long) {
        std::lock_guard<detail::SpinLock> guard(queue_lock_);
        // relaxed: we hold the mutex and queue_lock_; nothing interleaves.
        state_.fetch_and(~k_starving, std::memory_order_relaxed);
      }
      acquired();
      return;
    }
    woken = true;
    requeue = true;
    starving = waited_long;
  }
}

void Mutex::unlock_slow() {
  detail::PlainCall plain;
  MutexNode* wake = nullptr;
  {
    std::lock_guard<detail::SpinLock> guard(queue_lock_);
    // relaxed: see the header comment; nothing interleaves with us here.
    const std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & k_locked) == 0) throw std::logic_error("weft::Mutex::unlock: the mutex is not locked");
    std::uint32_t next;
    if ((s & k_starving) != 0 && (wake = static_cast<MutexNode*>(detail::claim_first(waiters_))) != nullptr) {
      // Hand-off: the mutex stays locked, now held by `wake`.
      wake->handed = true;
      next = s | k_locked;
      if (waiters_.empty()) next &= ~(k_waiters | k_starving);
    } else {
      next = s & ~(k_locked | k_starving);
      if ((s & k_woken) == 0 && (wake = static_cast<MutexNode*>(detail::claim_first(waiters_))) != nullptr) {
        next |= k_woken;  // it will retry; no need to wake another meanwhile
      }
      if (waiters_.empty()) next &= ~k_waiters;
    }
    // release: publishes our critical section to the next holder's acquire.
    state_.store(next, std::memory_order_release);
  }
  if (wake != nullptr) wake->waiter->unpark();
}

}  // namespace weft
