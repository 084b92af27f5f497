// join() of a task that has not started yet, from a fiber of the worker that
// holds it at the bottom of its deque: the joiner runs the task itself, on
// its own stack, instead of parking while the worker pops the task, gives it
// a stack of its own, runs it, and wakes the joiner again. The task would
// have run next on this worker anyway (the owner pops the bottom first), so
// only the order of two fibers that could not run at the same time changes:
// the joiner waits for the task in both cases.
//
// Fork-join code (fib, parsum, skynet-style trees joined by handles) spawns
// a child, works, then joins the child; most children are still queued at
// the join, and running them here costs a call instead of a stack, two
// context switches, a park and an unpark (Cilk and TBB run such children
// inline for the same reason).
//
// What the task sees: it runs on the joiner's fiber, so this_fiber::id() is
// the joiner's, and if it parks, the joiner's fiber parks. A named task is
// never run inline (it keeps its own fiber, id and name). Limits: only when
// Runtime::Options::inline_join is on (the default), for an untimed join,
// and while at least half of the joiner's stack is free below this frame, so
// that a chain of inlined joins cannot use more than half of a stack.
#include <cstdint>

#include "diagnostics/tracer.hpp"
#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "weft/detail/task.hpp"
#include "scheduling/worker.hpp"

namespace weft::detail {

bool run_queued_task_inline(TaskBase* task) noexcept {
  // The thread read inline: nothing before it parks, and after the task's
  // run() (which may park, and the fiber migrate) it is not read again
  // (current.hpp).
  Worker* w = current_worker_at_entry();
  if (w == nullptr || w->current_ == nullptr) return false;  // a plain thread or the loop
  if (!w->inline_join_) return false;
  const Fiber* self = w->current_;
  // The stack pointer, read directly: __builtin_frame_address(0) made this
  // function keep a frame pointer (three instructions a join).
  std::uintptr_t sp;
#if defined(__x86_64__)
  asm("mov %%rsp, %0" : "=r"(sp));
#else
  sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
#endif
  const auto lo = reinterpret_cast<std::uintptr_t>(self->stack.lo);
  if (sp < lo || sp - lo < self->stack.size / 2) return false;
  // Taken only if it is the bottom item, and no thief wins it. Only this
  // runtime's tasks are in its workers' deques: a task of another runtime
  // fails this test.
  if (!w->deque_.pop_if_bottom(task)) return false;
  // Ours now (popped). Not for a fiber that started, parked and was woken
  // again (a runnable fiber, not a fresh task: only this thread pushed it
  // here, after its wake-up made fiber_ visible), nor for a task that must
  // run in another scope than the joiner's (inline, it would run in the
  // joiner's; go() children usually share it).
  // Nor for a named task: it was named to be seen (the dump,
  // this_fiber::name) and inline it would be its joiner. (Read only now: a
  // thief that took it before our pop moves the name to its fiber.)
  if (task->fiber_.load(std::memory_order_relaxed) != nullptr ||  // relaxed: see TaskBase::fiber_
      task->scope_ != self->scope || task->name_ != nullptr) {
    w->deque_.push(task);  // back where it was: the slot just freed, no growth
    return false;
  }
  // Counted started and finished at once, before it runs (metrics: not
  // queued from now on): it has no fiber of its own, so while it runs it is
  // its joiner's fiber, already counted alive. Both on this worker, so that
  // nothing is read from the thread after run(), which may end on another
  // worker (the fiber may migrate if the task parks).
  w->count_started();
  w->count_finished();
  if (w->trace_ != nullptr) [[unlikely]] trace_bind(*w->trace_, w->current_, task);  // the child's id: ours
  task->run();            // never throws; `w` may be stale after it
  task->finish_inline();  // done; the runtime's reference was the deque entry
  return true;
}

}  // namespace weft::detail
