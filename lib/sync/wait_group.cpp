// weft::WaitGroup (weft/wait_group.hpp).
//
// state_ = counter << 2 | k_waiters | k_queue, one word:
//   add()   changes the counter by CAS, leaving the flag bits as they are.
//           The add() that brings the counter to zero while k_waiters is set
//           must also take k_queue (in the same CAS: 0 | k_queue), wake every
//           queued waiter, then store 0: that store is its last access.
//   wait()  returns at once only on the exact value 0 (counter zero, no
//           waker holding k_queue). Otherwise it takes k_queue, re-checks the
//           counter, and either releases and returns, or sets k_waiters,
//           queues itself and parks.
// No lost wake-up: a waiter queues itself while holding k_queue and sets
// k_waiters in the same RMW that releases k_queue; the add() that would
// reach zero never does so while k_queue is held, so it either sees
// k_waiters (and takes k_queue to wake the queue), or reaches zero before the
// waiter takes k_queue, and the waiter then sees zero and does not park.
// (A first version let add() reach zero while a waiter held k_queue without
// k_waiters yet; the waiter then parked on a zero counter. The race test
// "a wait racing the last done()" caught it.)
// done()'s inline path (wait_group.hpp) is add(-1) for a counter of 2 or
// more: it cannot reach zero, so it neither looks at k_queue nor wakes
// anyone, and a plain thread calling it need not count as active
// (PlainCall): nothing becomes runnable by it.
// No use after free: nobody touches the WaitGroup after the store that lets
// a waiter return (an unparked waiter's node lives on the waiter's stack).
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "sync/bit_lock.hpp"
#include "sync/waiter.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/errors.hpp"
#include "weft/wait_group.hpp"

namespace weft {

namespace {

constexpr std::int64_t k_max_count = std::int64_t{1} << 61;

void describe_wait_group(const void* ctx, std::string& out) {
  char buf[64];
  const auto* wg = static_cast<const WaitGroup*>(ctx);
  std::snprintf(buf, sizeof buf, "wait on weft::WaitGroup %p (count %lld)", ctx, static_cast<long long>(wg->count()));
  out += buf;
}

}  // namespace

std::uint64_t WaitGroup::lock_queue() noexcept { return detail::lock_bit(state_, k_queue); }

void WaitGroup::add(std::int64_t delta) {
  detail::PlainCall plain;
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  std::uint64_t next;
  bool wake = false;
  for (;;) {
    const std::int64_t count = static_cast<std::int64_t>(s >> k_count_shift);
    const std::int64_t after = count + delta;
    if (after < 0) {
      throw std::logic_error("weft::WaitGroup::add: the counter would become negative (" + std::to_string(after) +
                             "): more done() than add()");
    }
    if (after > k_max_count) throw std::logic_error("weft::WaitGroup::add: the counter overflows");
    if (after == 0 && delta != 0 && (s & k_queue) != 0) {
      // Someone holds the queue: maybe a waiter that has queued itself but
      // sets k_waiters only as it releases the queue. Reaching zero now
      // could miss it; let it finish, then decide.
      detail::cpu_relax();
      s = state_.load(std::memory_order_relaxed);
      continue;
    }
    wake = after == 0 && delta != 0 && (s & k_waiters) != 0;
    next = wake ? k_queue : (static_cast<std::uint64_t>(after) << k_count_shift) | (s & (k_queue | k_waiters));
    // acq_rel: release publishes the finished task's work to wait()'s
    // acquire (RMWs extend the release sequence, so the one that reaches
    // zero carries every earlier done()); acquire, when we take k_queue,
    // makes waiters_ visible.
    if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
  }
  if (!wake) return;
  detail::WaitNode* chain = nullptr;
  while (detail::WaitNode* n = detail::claim_first(waiters_)) {
    n->next = chain;
    chain = n;
  }
  // The queue is empty. Other add()s may have changed the counter meanwhile
  // (the next round of a reused group), so clear only our bit. release: lets the
  // waiters' and others' acquires see the zero and waiters_. Last access.
  state_.fetch_and(~k_queue, std::memory_order_release);
  detail::unpark_chain(chain);
}

void WaitGroup::wait() { wait_until_ns(detail::k_never); }

bool WaitGroup::wait_until_ns(detail::Nanos deadline) {
  // acquire: pairs with add()'s release (see there).
  if (state_.load(std::memory_order_acquire) == 0) return true;
  detail::PlainCall plain;
  detail::Waiter waiter(ParkReason::wait_group);
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_wait_group, this);
  waiter.set_deadline(deadline);  // before we are queued; may throw (nothing held yet)
  const std::uint64_t s = lock_queue();
  if ((s >> k_count_shift) == 0) {
    // release: publishes nothing new, but frees k_queue. Last access.
    state_.fetch_and(~k_queue, std::memory_order_release);
    return true;
  }
  waiters_.push_back(&node);
  // Set k_waiters and free k_queue in one RMW (add() may change the counter
  // meanwhile, so no plain store). release: publishes waiters_.
  std::uint64_t cur = s;
  while (!state_.compare_exchange_weak(cur, (cur | k_waiters) & ~k_queue, std::memory_order_release,
                                       std::memory_order_relaxed)) {
  }
  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome == detail::Waiter::Outcome::notified) return true;
  // Cancelled or timed out: nobody claimed us, so we may still be queued.
  lock_queue();
  waiters_.remove(&node);
  // With the queue empty nobody needs waking: clear k_waiters too. release:
  // publishes waiters_. fetch_and: add() may change the counter meanwhile.
  state_.fetch_and(~(k_queue | (waiters_.empty() ? k_waiters : 0)), std::memory_order_release);
  if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
  return false;
}

}  // namespace weft
