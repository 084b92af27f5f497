// weft::CondVar (weft/cond_var.hpp).
//
// No lost notification: a waiter queues itself under lock_ *before*
// releasing the user's mutex, and a notifier that changed the state under
// that mutex then finds it queued. Waking claims the waiter (single claim,
// waiter.hpp), so a notification and a shutdown cancellation never both
// count, and notify_one never "wakes" a waiter that was already cancelled.
#include <mutex>
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "structured/cancel_state.hpp"
#include "sync/waiter.hpp"
#include "weft/cond_var.hpp"
#include "weft/errors.hpp"

namespace weft {

namespace {

void describe_cond_var(const void* ctx, std::string& out) { detail::describe_object(out, "wait on weft::CondVar", ctx); }

}  // namespace

void CondVar::wait(std::unique_lock<Mutex>& lock) { wait_until_ns(lock, detail::k_never); }

std::cv_status CondVar::wait_until_ns(std::unique_lock<Mutex>& lock, detail::Nanos deadline) {
  if (!lock.owns_lock()) throw std::logic_error("weft::CondVar::wait: the lock does not own its mutex");
  detail::PlainCall plain;
  detail::Waiter waiter(ParkReason::cond_var);
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_cond_var, this);
  waiter.set_deadline(deadline);  // before we are queued; may throw (the mutex is still held)
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    waiters_.push_back(&node);
  }
  lock.unlock();  // never parks (hands the mutex over at most)
  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome != detail::Waiter::Outcome::notified) {
    // Cancelled or timed out: nobody claimed us; we may still be queued.
    std::lock_guard<detail::SpinLock> guard(lock_);
    waiters_.remove(&node);
  }
  // Re-acquire before returning or unwinding, as std::condition_variable
  // does, even in a cancelled scope (the caller's lock_guard-style code
  // counts on holding it). Only shutdown can still cancel this lock(): then
  // `lock` stays unlocked (it knows it), and FiberCancelled propagates.
  {
    detail::ShieldCancel shield;
    lock.lock();
  }
  if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
  return outcome == detail::Waiter::Outcome::timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

void CondVar::notify_one() {
  detail::PlainCall plain;
  detail::WaitNode* n;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    n = detail::claim_first(waiters_);
  }
  if (n != nullptr) n->waiter->unpark();
}

void CondVar::notify_all() {
  detail::PlainCall plain;
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

}  // namespace weft
