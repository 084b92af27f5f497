// weft::Semaphore (weft/semaphore.hpp).
//
// Invariant, under lock_:  waiters_ non-empty => permits_ == 0.
// release() hands permits straight to queued waiters (claiming them) before
// adding any to permits_, and acquire() takes a permit only when nobody is
// queued, so a newcomer never overtakes a waiter.
#include <mutex>
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "sync/waiter.hpp"
#include "weft/errors.hpp"
#include "weft/semaphore.hpp"

namespace weft {

namespace {

void describe_semaphore(const void* ctx, std::string& out) { detail::describe_object(out, "acquire of weft::Semaphore", ctx); }

}  // namespace

Semaphore::Semaphore(std::ptrdiff_t permits) : permits_(permits) {
  if (permits < 0) {
    throw std::invalid_argument("weft::Semaphore: the initial number of permits must not be negative (got " +
                                std::to_string(permits) + ")");
  }
}

bool Semaphore::acquire_until(detail::Nanos deadline) {
  detail::PlainCall plain;
  detail::Waiter waiter(ParkReason::semaphore);
  detail::WaitNode node;
  node.waiter = &waiter;
  waiter.set_description(&describe_semaphore, this);
  const bool expired = deadline != detail::k_never && detail::now_ns() >= deadline;
  // Armed before taking lock_ (no timer is armed under a SpinLock); a wait
  // that ends otherwise cancels it in ~Waiter. Throws with nothing queued.
  if (!expired) waiter.set_deadline(deadline);
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    if (permits_ > 0) {
      --permits_;  // the invariant says nobody is queued
      return true;
    }
    if (expired) return false;
    waiters_.push_back(&node);
  }
  const detail::Waiter::Outcome outcome = waiter.park();
  if (outcome == detail::Waiter::Outcome::cancelled || outcome == detail::Waiter::Outcome::timed_out) {
    // Nobody claimed us, so no permit was handed to us: just leave.
    {
      std::lock_guard<detail::SpinLock> guard(lock_);
      waiters_.remove(&node);
    }
    if (outcome == detail::Waiter::Outcome::cancelled) detail::throw_cancelled();
    return false;
  }
  // release() gave us its permit along with the claim.
  return true;
}

bool Semaphore::try_acquire() noexcept {
  std::lock_guard<detail::SpinLock> guard(lock_);
  if (permits_ == 0) return false;
  --permits_;
  return true;
}

void Semaphore::release(std::ptrdiff_t n) {
  if (n < 0) {
    throw std::invalid_argument("weft::Semaphore::release: n must not be negative (got " + std::to_string(n) + ")");
  }
  detail::PlainCall plain;
  detail::WaitNode* chain = nullptr;
  {
    std::lock_guard<detail::SpinLock> guard(lock_);
    for (; n > 0; --n) {
      detail::WaitNode* w = detail::claim_first(waiters_);
      if (w == nullptr) break;
      w->next = chain;
      chain = w;
    }
    permits_ += n;
  }
  detail::unpark_chain(chain);
}

std::ptrdiff_t Semaphore::available() const noexcept {
  std::lock_guard<detail::SpinLock> guard(lock_);
  return permits_;
}

}  // namespace weft
