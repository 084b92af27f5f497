// The library side of the fork-join engine (weft/detail/fork_join.hpp):
// the join that a cancelled parent cannot skip.
#include <exception>

#include "scheduling/current.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/worker.hpp"
#include "structured/cancel_state.hpp"
#include "weft/detail/fork_join.hpp"

namespace weft::detail {

void fork_join_wait(TaskBase* task) {
  if (task->done()) return;
  // Still queued at the bottom of this deque: run it here, unshielded, so
  // that its own waits stay cancellable (it runs in the same scope).
  if (run_queued_task_inline(task)) return;
  ShieldCancel shield;  // the task is cancelled with us and ends: wait for it
  std::exception_ptr stopped;
  for (;;) {
    try {
      task->wait_done();
      break;
    } catch (...) {
      // Shutdown ended the wait (FiberCancelled): it cancels the task too;
      // keep waiting for it, since it may use our frame.
      if (!stopped) stopped = std::current_exception();
    }
  }
  if (stopped) std::rethrow_exception(stopped);
}

void fork_join_wait_quietly(TaskBase* task) noexcept {
  try {
    fork_join_wait(task);
  } catch (...) {
    // FiberCancelled after the task ended: the caller is unwinding already.
  }
}

std::size_t worker_count(const Scheduler* scheduler) noexcept { return scheduler->num_workers(); }

bool local_queue_empty() noexcept {
  const Worker* w = current_worker();  // not cached: the fiber may migrate between calls
  return w != nullptr && w->queued_approx() == 0;
}

}  // namespace weft::detail
