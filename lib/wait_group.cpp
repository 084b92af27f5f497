// weft::WaitGroup (weft/wait_group.hpp).
//
// No lost wake-up: a waiter re-reads the counter under lock_ before queuing,
// and add() that brings it to zero takes lock_ afterwards to wake the queue;
// so either the waiter sees zero, or it is queued before the waker looks.
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

#include "activity.hpp"
#include "waiter.hpp"
#include "weft/errors.hpp"
#include "weft/wait_group.hpp"

namespace weft {

namespace {

void describe_wait_group(const void* ctx, std::string& out) {
  char buf[64];
  const auto* wg = static_cast<const WaitGroup*>(ctx);
  std::snprintf(buf, sizeof buf, "wait on weft::WaitGroup %p (count %lld)", ctx, static_cast<long long>(wg->count()));
  out += buf;
}

}  // namespace

void WaitGroup::add(std::int64_t delta) {
  detail::PlainCall plain;
  // relaxed initial load: the CAS below validates it.
  std::int64_t before = count_.load(std::memory_order_relaxed);
  std::int64_t after;
  do {
    after = before + delta;
    if (after < 0) {
      throw std::logic_error("weft::WaitGroup::add: the counter would become negative (" + std::to_string(after) +
                             "): more done() than add()");
    }
    // acq_rel: release publishes the finished task's work to wait()'s
    // acquire load (RMWs extend the release sequence, so the last one to
    // reach zero carries every earlier done()); acquire orders us after them.
  } while (!count_.compare_exchange_weak(before, after, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (after != 0 || delta == 0) return;
  detail::WaitNode* chain = nullptr;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    while (detail::WaitNode* n = detail::claim_first(waiters_)) {
      n->next = chain;
      chain = n;
    }
  }
  detail::unpark_chain(chain);
}

void WaitGroup::wait() {
  // acquire: pairs with add()'s release (see there).
  if (count_.load(std::memory_order_acquire) == 0) return;
  detail::PlainCall plain;
  detail::Waiter waiter;
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_wait_group, this);
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (count_.load(std::memory_order_acquire) == 0) return;
    waiters_.push_back(&node);
  }
  if (waiter.park() == detail::Waiter::Outcome::cancelled) {
    std::lock_guard<detail::SpinLock> guard(lock_);
    waiters_.remove(&node);
    throw FiberCancelled{};
  }
}

}  // namespace weft
