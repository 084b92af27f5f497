// GroupCore (weft/detail/group_core.hpp): how a TaskGroup waits for its
// children.
//
// Each child is a task with two references, as for spawn(): the runtime's,
// dropped when the child finishes, and the group's (instead of a
// JoinHandle's), dropped when the group collects it. A finishing child
// (TaskBase::finish, on its own fiber) calls child_finished(): under the
// group's lock it leaves `running_`, joins the FIFO of finished children,
// and claims the owner's waiter if the owner is parked; it wakes the owner
// after unlocking and touches the group no more (the owner may return and
// destroy the group as soon as it has the lock). Invariants, under lock_:
//   uncollected_ = running_ + length of the finished FIFO
//   owner_ != nullptr => the FIFO is empty and running_ > 0
#include "weft/detail/group_core.hpp"

#include <mutex>

#include "diagnostics/activity.hpp"
#include "structured/cancel_state.hpp"
#include "scheduling/scheduler.hpp"
#include "sync/waiter.hpp"

namespace weft::detail {

namespace {

void describe_group(const void* ctx, std::string& out) {
  describe_object(out, "wait for the children of weft::TaskGroup", ctx);
  const std::string& name = static_cast<const GroupCore*>(ctx)->name();
  if (!name.empty()) out += " \"" + name + "\"";
}

}  // namespace

namespace {

// The scope a new group's scope hangs under: the calling fiber's own (made
// now if needed, so that cancelling the fiber's task reaches the group).
CancelState* parent_for_group() {
  ensure_own_scope();
  return current_scope();
}

}  // namespace

GroupCore::GroupCore(Scheduler* scheduler, std::string_view name)
    : scheduler_(scheduler), name_(name), scope_(CancelState::make(parent_for_group())) {}

GroupCore::~GroupCore() { scope_->release(); }

void GroupCore::spawn(TaskBase* task, std::string_view name) {
  ++spawned_;
  try {
    if (!name_.empty()) {
      std::string full = name_;
      full += '/';
      if (name.empty()) full += std::to_string(spawned_); else full += name;
      task->set_name(full);
    } else if (!name.empty()) {
      task->set_name(name);
    }
  } catch (...) {
    delete task;  // std::bad_alloc: the child does not run
    throw;
  }
  task->group_ = this;
  scope_->retain();
  task->scope_ = scope_;  // released by the task (its fiber, or ~TaskBase)
  {
    std::lock_guard<SpinLock> guard(lock_);
    ++running_;
    ++uncollected_;
  }
  try {
    scheduler_->submit(task);
  } catch (...) {
    {
      std::lock_guard<SpinLock> guard(lock_);
      --running_;
      --uncollected_;
    }
    delete task;
    throw;
  }
}

void GroupCore::child_finished(TaskBase* task) noexcept {
  const bool failed = task->failed();
  // Read while the group is surely alive: once we unlock, the owner may
  // collect us and destroy the group. The scope itself stays alive: the
  // child still holds a reference to it (its fiber's, or the task's own).
  CancelState* const scope = scope_;
  Waiter* owner = nullptr;
  {
    std::lock_guard<SpinLock> guard(lock_);
    --running_;
    task->queue_next_ = nullptr;
    if (done_tail_ != nullptr) done_tail_->queue_next_ = task; else done_head_ = task;
    done_tail_ = task;
    // Claim under the lock (waiter.hpp's lifetime rule).
    owner = std::exchange(owner_, nullptr);
    if (owner != nullptr && !owner->try_claim(Waiter::Outcome::notified)) owner = nullptr;
  }
  // The first failure cancels the siblings (errgroup, Trio's nursery).
  if (failed) scope->cancel();
  if (owner != nullptr) owner->unpark();
}

TaskBase* GroupCore::next_finished() {
  PlainCall plain;
  ShieldCancel shield;  // the children finish: they are cancelled with us
  for (;;) {
    Waiter waiter(ParkReason::join);
    waiter.set_description(&describe_group, this);
    {
      std::lock_guard<SpinLock> guard(lock_);
      if (TaskBase* t = done_head_) {
        done_head_ = t->queue_next_;
        if (done_head_ == nullptr) done_tail_ = nullptr;
        --uncollected_;
        return t;
      }
      if (running_ == 0) return nullptr;
      owner_ = &waiter;
    }
    if (waiter.park() == Waiter::Outcome::cancelled) {
      // Only shutdown cancels a shielded wait: unregister and unwind.
      {
        std::lock_guard<SpinLock> guard(lock_);
        if (owner_ == &waiter) owner_ = nullptr;
      }
      throw_cancelled();
    }
  }
}

std::exception_ptr GroupCore::collect_all() {
  std::exception_ptr first;
  while (TaskBase* t = next_finished()) {
    if (t->failed() && first == nullptr) {
      first = t->take_error();
    } else if (t->failed()) {
      t->take_error();  // later failures are dropped (Go's errgroup keeps the first)
    }
    t->release_handle(true);
  }
  return first;
}

void GroupCore::cancel() noexcept { scope_->cancel(); }

bool GroupCore::cancelled() const noexcept { return scope_->cancelled(); }

std::size_t GroupCore::pending() const noexcept {
  std::lock_guard<SpinLock> guard(lock_);
  return uncollected_;
}

}  // namespace weft::detail
