// CancelState (cancel_state.hpp): the cancellation tree.
#include "structured/cancel_state.hpp"
#include "sync/wait_visit.hpp"

#include <mutex>
#include <new>
#include <variant>

#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "sync/waiter.hpp"
#include "weft/detail/channel_core.hpp"

namespace weft::detail {

CancelState* CancelState::make(CancelState* parent) {
  auto* s = new CancelState(parent);
  if (parent != nullptr) {
    parent->retain();
    parent->link_child(s);
  }
  return s;
}

void CancelState::link_child(CancelState* child) noexcept {
  std::lock_guard<SpinLock> guard(lock_);
  // Under our lock: a cancel() that set our flag before we took the lock is
  // seen here (C1), and one that sets it later finds the child linked.
  // relaxed: ordered by lock_ (cancel_subtree sets the flag, then locks).
  if (cancelled_.load(std::memory_order_relaxed)) child->cancelled_.store(true, std::memory_order_relaxed);
  child->next_sibling_ = first_child_;
  if (first_child_ != nullptr) first_child_->prev_sibling_ = child;
  first_child_ = child;
}

void CancelState::unlink_child(CancelState* child) noexcept {
  std::lock_guard<SpinLock> guard(lock_);
  if (child->prev_sibling_ != nullptr) child->prev_sibling_->next_sibling_ = child->next_sibling_;
  else first_child_ = child->next_sibling_;
  if (child->next_sibling_ != nullptr) child->next_sibling_->prev_sibling_ = child->prev_sibling_;
  child->prev_sibling_ = child->next_sibling_ = nullptr;
}

CancelState::~CancelState() {
  if (done_ != nullptr) channel_release(done_);
}

ChannelCore* CancelState::done_channel() {
  bool close_now = false;
  ChannelCore* c;
  {
    std::lock_guard<SpinLock> guard(lock_);
    if (done_ == nullptr) {
      done_ = channel_create(&elem_ops_for<std::monostate>, ChannelBuffer{}, "cancellation");  // may throw
      // Made after the flag was set: cancel() will not close it.
      close_now = cancelled_.load(std::memory_order_relaxed);  // relaxed: ordered by lock_
    }
    c = done_;
    channel_retain(c);
  }
  if (close_now) channel_close(c);
  return c;
}

void CancelState::release(std::uint32_t n) noexcept {
  // acq_rel: the last releaser sees every other holder's writes.
  if (refs_.fetch_sub(n, std::memory_order_acq_rel) != n) return;
  if (deadline_armed_) timers().cancel(&deadline_timer_);  // waits for a running callback
  if (parent_ != nullptr) {
    parent_->unlink_child(this);
    parent_->release();
  }
  delete this;
}

void CancelState::add_member(Fiber* f) noexcept {
  std::lock_guard<SpinLock> guard(lock_);
  f->scope_prev = nullptr;
  f->scope_next = first_member_;
  if (first_member_ != nullptr) first_member_->scope_prev = f;
  first_member_ = f;
}

void CancelState::remove_member(Fiber* f) noexcept {
  std::lock_guard<SpinLock> guard(lock_);
  if (f->scope_prev != nullptr) f->scope_prev->scope_next = f->scope_next;
  else first_member_ = f->scope_next;
  if (f->scope_next != nullptr) f->scope_next->scope_prev = f->scope_prev;
  f->scope_prev = f->scope_next = nullptr;
}

void CancelState::cancel_subtree(Waiter*& chain, CancelState*& stops) noexcept {
  // seq_cst: before the lock below (C1, C2). A node already cancelled has
  // had its subtree cancelled by whoever set its flag (or is having it).
  if (cancelled_.exchange(true, std::memory_order_seq_cst)) return;
  std::lock_guard<SpinLock> guard(lock_);
  for (Fiber* f = first_member_; f != nullptr; f = f->scope_next) {
    // Under the fiber's wait_lock, inside cancel()'s WaitVisit
    // (wait_visit.hpp): its waiter cannot vanish during the claim.
    std::lock_guard<SpinLock> wait_guard(f->wait_lock);
    // acquire: pairs with publish_parked_on's release store.
    Waiter* w = f->parked_on.load(std::memory_order_acquire);
    if (w != nullptr && w->cancellable() && w->try_claim(Waiter::Outcome::cancelled)) {
      w->cancel_next_ = chain;
      chain = w;
    }
  }
  for (CancelState* c = first_child_; c != nullptr; c = c->next_sibling_) c->cancel_subtree(chain, stops);
  if ((stop_source_ != nullptr || done_ != nullptr) && try_retain()) {
    // Kept alive until its stop request and close have run (cancel()). A
    // node whose last reference is gone (it waits for our lock to unlink
    // itself) is skipped: nobody can watch it any more.
    next_stop_ = stops;
    stops = this;
  }
}

void bump_cancel_epoch() noexcept { g_cancel_epoch.fetch_add(1, std::memory_order_relaxed); }

void CancelState::cancel() noexcept {
  // Already cancelled: whoever set the flag cancels the subtree (or is
  // doing so); no need to pay for a visit. relaxed: a hint, as cancelled().
  if (cancelled()) return;
  Waiter* chain = nullptr;
  CancelState* stops = nullptr;
  {
    const WaitVisit visit;  // before any flag is set (wait_visit.hpp)
    cancel_subtree(chain, stops);
  }
  g_cancel_epoch.fetch_add(1, std::memory_order_relaxed);
  // No lock held from here: waking, and the user's stop callbacks.
  while (chain != nullptr) {
    Waiter* next = chain->cancel_next_;  // read before the unpark that may free it
    chain->unpark();
    chain = next;
  }
  while (stops != nullptr) {
    CancelState* next = stops->next_stop_;
    // Both made before the flag was set (or they would not be listed), and
    // never reassigned: no lock needed to read them.
    if (stops->stop_source_ != nullptr) stops->stop_source_->request_stop();
    if (stops->done_ != nullptr) channel_close(stops->done_);
    stops->release();
    stops = next;
  }
}

Nanos CancelState::DeadlineTimer::fire(Timer* t, Nanos) noexcept {
  // The node is alive: release() cancels this timer first, which waits for us.
  static_cast<DeadlineTimer*>(t)->state->cancel();
  return k_never;
}

void CancelState::cancel_at(Nanos deadline) {
  if (deadline == k_never) return;
  deadline_timer_.state = this;
  if (deadline <= now_ns()) {
    cancel();
    return;
  }
  timers().arm(&deadline_timer_, deadline);
  deadline_armed_ = true;
}

std::stop_token CancelState::stop_token() {
  bool already = false;
  std::stop_token token;
  {
    std::lock_guard<SpinLock> guard(lock_);
    if (stop_source_ == nullptr) {
      stop_source_ = std::make_unique<std::stop_source>();  // may throw; nothing changed then
      // Made after the flag was set: cancel() will not request it.
      already = cancelled_.load(std::memory_order_relaxed);  // relaxed: ordered by lock_
    }
    token = stop_source_->get_token();
  }
  if (already) stop_source_->request_stop();  // runs no callback yet: nobody has the token
  return token;
}

ShieldCancel::ShieldCancel() noexcept : fiber_(current_fiber()) {
  if (fiber_ != nullptr) ++fiber_->cancel_shield;
}

ShieldCancel::~ShieldCancel() {
  // The fiber may have migrated, but the Fiber is the same one.
  if (fiber_ != nullptr) --fiber_->cancel_shield;
}

void ensure_own_scope() {
  Fiber* f = current_fiber();
  if (f == nullptr || f->own_scope != nullptr) return;
  CancelState* own = CancelState::make(f->scope);  // holds its own reference to the old scope
  CancelState* old = switch_scope(own);
  {
    std::lock_guard<SpinLock> guard(f->wait_lock);
    f->own_scope = own;
  }
  // The fiber's reference moves to `own` (made with one, which is now the
  // fiber's); it drops the one it held on the scope it was spawned in.
  if (old != nullptr) old->release();
  // relaxed: the aborter sets the flag and then reads own_scope under
  // wait_lock; we set own_scope under it and read the flag after.
  if (f->aborted.load(std::memory_order_relaxed)) own->cancel();
}

Waiter* abort_fiber(Fiber* f, CancelState*& own) noexcept {
  // relaxed: published to the fiber by the wait_lock below (and its claim),
  // or by the caller's WaitVisit (wait_visit.hpp).
  f->aborted.store(true, std::memory_order_relaxed);
  g_cancel_epoch.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<SpinLock> guard(f->wait_lock);
  own = f->own_scope;
  if (own != nullptr) own->retain();
  // acquire: pairs with publish_parked_on's release store.
  Waiter* w = f->parked_on.load(std::memory_order_acquire);
  if (w != nullptr && w->cancellable() && w->try_claim(Waiter::Outcome::cancelled)) return w;
  return nullptr;
}

CancelState* current_scope() noexcept {
  Fiber* f = current_fiber();
  return f != nullptr ? f->scope : nullptr;
}

CancelState* switch_scope(CancelState* scope) noexcept {
  Fiber* f = current_fiber();
  CancelState* old = f->scope;
  // Credits are references on the scope we leave: give them back.
  if (f->scope_credits != 0) old->release(std::exchange(f->scope_credits, 0));
  // The fiber reads its own scope; others reach it only through the
  // members lists, under their locks, and it joins the new scope's list at
  // its next park, before that park is published (C2).
  f->scope = scope;
  return old;
}

void move_scope_membership(Fiber* f) noexcept {
  leave_scope_members(f);
  if (CancelState* s = f->scope) {
    s->retain();  // a members list keeps its scope alive while it lists us
    s->add_member(f);
    f->member_of = s;
  }
}

void leave_scope_members(Fiber* f) noexcept {
  if (CancelState* old = std::exchange(f->member_of, nullptr)) {
    old->remove_member(f);
    old->release();
  }
}

}  // namespace weft::detail
