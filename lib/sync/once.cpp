// weft::Once's slow path (weft/once.hpp).
//
// state_ moves idle -> running -> done, or running -> idle when f throws;
// every transition is made under lock_. Invariant, under lock_:
//   waiters_ non-empty => state_ == running
// A caller that finds running queues and parks; the runner, when f ends
// (either way), claims and wakes every queued caller under lock_. A woken
// caller re-examines the state: done, it returns; idle (f threw), it
// becomes the runner itself.
#include <mutex>
#include <string>

#include "diagnostics/activity.hpp"
#include "sync/waiter.hpp"
#include "weft/once.hpp"

namespace weft {

namespace {

void describe_once(const void* ctx, std::string& out) {
  detail::describe_object(out, "weft::Once (another caller runs its function)", ctx);
}

// Claims every waiter of `list`, chained for unpark_chain. Under the lock.
detail::WaitNode* claim_all(detail::WaitList& list) noexcept {
  detail::WaitNode* chain = nullptr;
  while (detail::WaitNode* n = detail::claim_first(list)) {
    n->next = chain;
    chain = n;
  }
  return chain;
}

}  // namespace

void Once::call_slow(void (*run)(void*), void* f) {
  detail::PlainCall plain;
  for (;;) {
    detail::Waiter waiter;
    detail::WaitNode node;
    node.waiter = &waiter;
    waiter.set_description(&describe_once, this);
    {
      std::lock_guard<detail::SpinLock> guard(lock_);
      // relaxed: every transition happens under lock_, whose acquire
      // ordered us after it (and after f's effects, for k_done).
      const std::uint32_t s = state_.load(std::memory_order_relaxed);
      if (s == k_done) return;
      if (s == k_idle) {
        // relaxed: read under lock_ only, until it becomes k_done.
        state_.store(k_running, std::memory_order_relaxed);
        break;
      }
      waiters_.push_back(&node);
    }
    if (waiter.park() == detail::Waiter::Outcome::cancelled) {
      {
        std::lock_guard<detail::SpinLock> guard(lock_);
        waiters_.remove(&node);
      }
      detail::throw_cancelled();
    }
    // Woken: f finished or threw. Look again.
  }

  // We are the runner.
  try {
    run(f);
  } catch (...) {
    detail::WaitNode* chain;
    {
      std::lock_guard<detail::SpinLock> guard(lock_);
      // relaxed: the waiters reread it under lock_.
      state_.store(k_idle, std::memory_order_relaxed);
      chain = claim_all(waiters_);
    }
    detail::unpark_chain(chain);
    throw;
  }
  detail::WaitNode* chain;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    // release: publishes f's effects to call()'s lock-free acquire load.
    state_.store(k_done, std::memory_order_release);
    chain = claim_all(waiters_);
  }
  detail::unpark_chain(chain);
}

}  // namespace weft
