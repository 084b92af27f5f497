// CancelState: one node of the cancellation tree. Every CancelScope, every
// TaskGroup and every fiber that was cancelled by its JoinHandle has one; a
// fiber runs in exactly one (its innermost scope), or in none (the root, the
// default: nothing can cancel it but shutdown).
//
// Trio's design (its CancelStatus): cancellation propagates eagerly down the
// tree, so "is my scope cancelled?" is one relaxed load of the innermost
// node's flag, never a walk up to the root. Cancelling a node sets its flag
// and every descendant's, and claims (Waiter::try_claim(cancelled)) the wait
// of every fiber registered as a member of any of them, then wakes them.
//
// Structure, under each node's `lock_`:
//   children_  child nodes (a scope opened inside this one, a group's
//              scope, a fiber's own node under JoinHandle::cancel)
//   members_   fibers whose innermost scope is this node (Fiber::scope)
// A child holds a reference to its parent (so the parent outlives it); the
// parent's list only points at the child, and a child unlinks itself (under
// the parent's lock) before it dies.
//
// Invariants:
//   C1  cancelled(parent) => cancelled(child), for every linked child: a
//       child is created under the parent's lock from the parent's flag, and
//       cancel() sets a node's flag before it takes the node's lock to walk
//       the children.
//   C2  no lost cancellation of a wait: a fiber publishes its parked_on
//       and then reads its scope's flag; cancel() opens a WaitVisit, sets
//       the flag and then reads parked_on (under the fiber's wait_lock).
//       One of the two sees the other (sync/wait_visit.hpp says how): either
//       the fiber sees the flag and cancels its own wait, or cancel() finds
//       the waiter.
//
// Lock order: a node's lock, then its children's locks (cancel walks down),
// then a member fiber's wait_lock. Nobody takes a parent's lock while
// holding a child's (a child unlinking itself holds no lock of its own).
//
// Contract: every function is for any thread and never parks; cancel() runs
// the stop callbacks of a bridged std::stop_source (user code) after it has
// released every lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stop_token>

#include "scheduling/fiber.hpp"
#include "time/timer_heap.hpp"
#include "weft/detail/deadline.hpp"
#include "weft/detail/spin_lock.hpp"

namespace weft::detail {

struct Fiber;
class Waiter;
class ChannelCore;

class CancelState {
 public:
  // A new node with one reference, a child of `parent` (nullptr: a root).
  // Cancelled from the start if the parent is. Throws std::bad_alloc.
  static CancelState* make(CancelState* parent);

  void retain(std::uint32_t n = 1) noexcept {
    // relaxed: new references are made from an existing one.
    refs_.fetch_add(n, std::memory_order_relaxed);
  }
  // Drops `n` references. The last release unlinks the node from its
  // parent, disarms its deadline and frees it.
  void release(std::uint32_t n = 1) noexcept;
  // A reference unless the last one is already gone (the node is being
  // destroyed, and blocked unlinking itself from a parent we have locked).
  bool try_retain() noexcept {
    std::uint32_t n = refs_.load(std::memory_order_relaxed);
    // relaxed: as retain(); a zero count never rises again.
    while (n != 0 && !refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) {
    }
    return n != 0;
  }

  // One relaxed load: a hint that is exact once the canceller's effects are
  // visible (a wait learns it through its claimed Waiter, which is ordered).
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

  // Cancels this node and every descendant; wakes every member fiber's
  // cancellable wait. Idempotent. Never parks.
  void cancel() noexcept;

  // Cancels the node at `deadline` (a timer). Once per node. Throws
  // std::bad_alloc (timer heap growth).
  void cancel_at(Nanos deadline);

  // Membership of a fiber whose innermost scope this is (Fiber::scope).
  void add_member(Fiber* f) noexcept;
  void remove_member(Fiber* f) noexcept;

  // A std::stop_token that is stopped when this node is cancelled (made on
  // first request). Throws std::bad_alloc.
  std::stop_token stop_token();

  // A channel (of std::monostate) that is closed when this node is
  // cancelled, made on first request, with a reference for the caller: how
  // select waits for a cancellation (Go's ctx.Done()). Throws std::bad_alloc.
  ChannelCore* done_channel();

  CancelState* parent() const noexcept { return parent_; }

 private:
  explicit CancelState(CancelState* parent) noexcept : parent_(parent) {}
  ~CancelState();

  struct DeadlineTimer : Timer {
    DeadlineTimer() noexcept : Timer(&fire) {}
    static Nanos fire(Timer* t, Nanos now) noexcept;
    CancelState* state = nullptr;
  };

  // Sets the flags of this subtree and chains the claimed waiters (through
  // Waiter::cancel_next_) onto `chain`; `stops` collects nodes whose
  // stop_source must be requested once no lock is held.
  void cancel_subtree(Waiter*& chain, CancelState*& stops) noexcept;
  void link_child(CancelState* child) noexcept;
  void unlink_child(CancelState* child) noexcept;

  // cancelled_: set once (relaxed store is not enough for C1/C2: the
  // exchange is seq_cst so that it is ordered before the lock acquisitions
  // that follow it in cancel_subtree, and a reader under a lock sees it).
  std::atomic<bool> cancelled_{false};
  std::atomic<std::uint32_t> refs_{1};
  CancelState* const parent_;  // holds a reference

  SpinLock lock_;  // guards the lists below and stop_source_
  CancelState* first_child_ = nullptr;
  CancelState* prev_sibling_ = nullptr;  // guarded by the parent's lock
  CancelState* next_sibling_ = nullptr;  // guarded by the parent's lock
  Fiber* first_member_ = nullptr;
  std::unique_ptr<std::stop_source> stop_source_;
  ChannelCore* done_ = nullptr;       // done_channel(); the node holds a reference
  CancelState* next_stop_ = nullptr;  // cancel()'s list of nodes to stop and close

  DeadlineTimer deadline_timer_;
  bool deadline_armed_ = false;  // by cancel_at (the owner), read by release
};

// RAII, on a fiber: its waits meanwhile finish even if its scope is
// cancelled (a CondVar re-acquiring its mutex, a TaskGroup waiting for its
// children). Does nothing on a plain thread (never cancelled anyway).
class ShieldCancel {
 public:
  ShieldCancel() noexcept;
  ~ShieldCancel();
  ShieldCancel(const ShieldCancel&) = delete;
  ShieldCancel& operator=(const ShieldCancel&) = delete;

 private:
  Fiber* fiber_;
};

// Bumped (relaxed) by every cancellation; workers compare it with the
// value they last acted on to move cancelled fibers that wait in the global
// queue ahead of fresh work (Scheduler::promote_cancelled).
// Inline: every pick of a task reads it.
// relaxed: a hint to look; what the look finds is read under the queue's lock.
inline std::atomic<std::uint64_t> g_cancel_epoch{0};
inline std::uint64_t cancel_epoch() noexcept { return g_cancel_epoch.load(std::memory_order_relaxed); }
void bump_cancel_epoch() noexcept;

// fiber_cancelled(): structured/fiber_cancelled.hpp (inline; it needs the
// Scheduler).

// On a fiber: gives it a scope of its own (Fiber::own_scope) if it has none
// yet, so that the scopes and groups it opens are reachable from its task's
// JoinHandle::cancel(). Nothing on a plain thread. Throws std::bad_alloc.
void ensure_own_scope();

// TaskBase::request_cancel's part on a started fiber, under the task's
// join_lock_ (so the fiber is alive) and inside a WaitVisit
// (sync/wait_visit.hpp): marks it aborted, claims its
// cancellable wait (returned, to unpark after unlocking) and returns its
// own scope with a reference (to cancel after unlocking), each or nullptr.
Waiter* abort_fiber(Fiber* f, CancelState*& own) noexcept;

// The innermost scope of the calling fiber, or nullptr (a plain thread, or
// a fiber in the root scope). Not inlined (current.hpp's rule).
CancelState* current_scope() noexcept;

// Makes the calling fiber run in `scope` (which must be a descendant of its
// current scope, or its previous one when leaving). Returns the scope it ran
// in before. Fibers only; no lock (membership follows at the next park).
CancelState* switch_scope(CancelState* scope) noexcept;

// Waiter::park, before publishing parked_on: makes `f` a member of its
// current scope if it is not yet (C2 needs the canceller to find it).
inline void join_scope_members(Fiber* f) noexcept;

// Leaves whatever members list holds `f` (its end).
void leave_scope_members(Fiber* f) noexcept;
void move_scope_membership(Fiber* f) noexcept;  // join_scope_members' slow path

inline void join_scope_members(Fiber* f) noexcept {
  if (f->member_of != f->scope) move_scope_membership(f);
}

// A reference on the scope of `f` (not null) for a child it spawns, from
// the fiber's credits: a spawner in a scope pays one atomic add per
// k_spawn_credits children, not one per child (the add stalled behind the
// stores that built the new task: half of a scope's cost on spawn).
inline constexpr std::uint32_t k_spawn_credits = 64;
inline CancelState* spawn_reference(Fiber* f) noexcept {
  if (f->scope_credits == 0) {
    f->scope->retain(k_spawn_credits);
    f->scope_credits = k_spawn_credits;
  }
  --f->scope_credits;
  return f->scope;
}

}  // namespace weft::detail
