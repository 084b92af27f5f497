// GroupCore: the untyped state of a weft::TaskGroup (task_group.hpp): its
// cancellation scope, the count of children still running, the children
// that finished and were not collected yet (in completion order), the
// first failure, and the one owner waiting. lib/structured/group_core.cpp has the
// protocol.
//
// Internal: users see it only through TaskGroup.
#pragma once

#include "config.hpp"

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>

#include "deadline.hpp"
#include "spin_lock.hpp"
#include "task.hpp"

namespace weft::detail {

class CancelState;
class Scheduler;
class Waiter;

class WEFT_API GroupCore {
 public:
  // A group on `scheduler`, whose scope is a child of the calling fiber's
  // current scope (a root on a plain thread). Throws std::bad_alloc.
  // `name`: the prefix of the children's names (empty: none).
  explicit GroupCore(Scheduler* scheduler, std::string_view name = {});
  // All children must have been collected (collect_all).
  ~GroupCore();
  GroupCore(const GroupCore&) = delete;
  GroupCore& operator=(const GroupCore&) = delete;

  // Owner: submits `task` as a child (it runs in the group's scope and is
  // collected here, never joined through a handle). Throws what submit()
  // throws (RuntimeStopped, std::bad_alloc), with the task deleted.
  // `name`: the child's name (task_group.hpp says how the group's prefix
  // joins it).
  void spawn(TaskBase* task, std::string_view name = {});

  // Owner: waits until a child has finished and is not collected yet, and
  // returns it (its handle reference passes to the caller: release it with
  // TaskBase::release_handle), or nullptr once no child is left. Parks the
  // calling fiber (blocks a plain thread); never cancelled (shielded), since
  // the group's children are cancelled with the owner's scope and finish.
  TaskBase* next_finished();

  // Owner: collects every child (waiting for those still running), and
  // returns the first failure among them (by completion order), or null.
  // Cancelled children are not failures. Shielded, as next_finished().
  std::exception_ptr collect_all();

  // Any thread.
  void cancel() noexcept;
  bool cancelled() const noexcept;
  CancelState* scope() const noexcept { return scope_; }
  // The children's prefix; set at construction, immutable: any thread.
  const std::string& name() const noexcept { return name_; }
  std::size_t pending() const noexcept;  // spawned and not collected yet

  // Scheduler side (TaskBase::finish, on the child's fiber): the child is
  // done. Cancels the group on its first failure, and wakes the owner.
  void child_finished(TaskBase* task) noexcept;

 private:
  Scheduler* const scheduler_;
  const std::string name_;         // the children's prefix (name())
  std::size_t spawned_ = 0;        // children spawned so far (their ordinals); owner only
  CancelState* const scope_;
  mutable SpinLock lock_;          // guards everything below
  std::size_t running_ = 0;        // submitted and not finished
  std::size_t uncollected_ = 0;    // submitted and not collected
  TaskBase* done_head_ = nullptr;  // finished, not collected; FIFO through queue_next_
  TaskBase* done_tail_ = nullptr;
  Waiter* owner_ = nullptr;        // the owner parked for a child to finish
};

}  // namespace weft::detail
