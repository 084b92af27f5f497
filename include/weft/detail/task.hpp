// TaskBase and Task<F, R>: what weft allocates for one spawn. A task that has
// not started yet is only this object (its closure and result slot); the
// fiber with its stack is attached by the worker that first runs it.
//
// Internal: users see tasks only through JoinHandle<T>.
#pragma once

#include "config.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "../errors.hpp"
#include "deadline.hpp"
#include "spin_lock.hpp"

namespace weft::detail {

struct Fiber;
class Scheduler;
class Waiter;
class CancelState;
class GroupCore;
class ChannelCore;

class TaskBase;

// Hands an exception nobody will see to the unhandled-exception handler
// (errors.hpp). Defined in the library.
WEFT_API void report_unhandled(std::exception_ptr error) noexcept;

// From a fiber joining `task` (lib/scheduling/inline_join.cpp): if the task
// has not started and is the next item of the calling worker's own deque,
// takes it and runs it to completion on the calling fiber's stack; true
// then. False, changing nothing, in every other case (a plain thread, the
// task started or was stolen, too little stack left). Never throws.
WEFT_API bool run_queued_task_inline(TaskBase* task) noexcept;

// Lifetime: two references, one held by the runtime until the body has
// finished and the fiber is gone, one held by the JoinHandle until it joins or
// detaches. The last release frees the task.
class WEFT_API TaskBase {
 public:
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;

  // Runs the body on the fiber's stack and stores its value or exception.
  // Called once, by the scheduler, on a worker. Never throws.
  virtual void run() noexcept = 0;

  // Destroys the closure without running it (a task that could not get a
  // stack): on the scheduler loop that failed to start it, at once, not
  // whenever the last reference goes. Called at most once, instead of run().
  virtual void discard_body() noexcept = 0;

  // Scheduler side: the body is done and the fiber has switched away for the
  // last time. Wakes the joiner, if any, and drops the runtime's reference.
  void finish() noexcept;

  // As finish(), for a task its joiner ran inline (inline_join.cpp): the
  // task was never visible to another thread, so no lock and no RMW.
  void finish_inline() noexcept {
    // relaxed, both: the task never left this thread. No joiner is
    // registered (the caller is the joiner, not parked), and the runtime's
    // reference was the deque entry the caller popped.
    done_.store(true, std::memory_order_relaxed);
    refs_.store(1, std::memory_order_relaxed);
    if (done_channel_ != nullptr) [[unlikely]] close_done_channel();
  }

  // Handle side: parks the calling fiber (or blocks the calling plain thread)
  // until the task has finished. Throws FiberCancelled if the calling fiber is
  // cancelled at shutdown while it waits. Inline: a task that is done, or
  // that the caller runs itself (run_queued_task_inline), costs no call
  // into the parking path.
  void wait_done() {
    if (done() || run_queued_task_inline(this)) return;
    park_until_done(k_never);
  }
  // As wait_done(), until `deadline` (deadline.hpp): true if done.
  bool wait_done_until(Nanos deadline);

  // Runtime::block_on's wait, from a plain thread: as wait_done(), but
  // throws weft::Deadlock when the task can never finish (deadlock.hpp);
  // `runtime` is the scheduler the task was submitted to (the one whose
  // fibers the deadlock check looks at). From a fiber (of another runtime)
  // it is wait_done().
  void wait_done_or_deadlock(Scheduler& runtime);

  // Handle side, non-blocking.
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

  // The id of the fiber running the task, or 0 when it has not started or
  // is done. Any thread that holds a reference on the task; never parks
  // (takes join_lock_, which keeps the fiber from ending meanwhile). For
  // descriptions of a join made while the task runs (a trace's park).
  std::uint64_t running_fiber_id() noexcept;

  // JoinHandle::cancel(), any thread, never blocks: the task's waits throw
  // weft::Cancelled from now on (the one it is parked in at once), the
  // scopes and groups it opened are cancelled, and a task that has not
  // started never runs. Nothing if it is done.
  void request_cancel() noexcept;
  // relaxed: a hint read by the task itself; request_cancel() orders the
  // rest (see task.cpp).
  bool cancel_requested() const noexcept { return cancel_requested_.load(std::memory_order_relaxed); }
  // The worker that starts the task (Worker::bind_task), before it runs:
  // true once only the runtime's reference is left (the handle was detached
  // or dropped; a group's child and a continuation hold it), so no
  // request_cancel() can come any more and what one did is visible.
  // acquire: as in finish() (task.cpp).
  bool handle_released() const noexcept { return refs_.load(std::memory_order_acquire) == 1; }

  // A channel that is closed when the task finishes (made on first
  // request), with a reference for the caller: how select waits for a join
  // (select.hpp's on_join). Handle side; throws std::bad_alloc.
  ChannelCore* done_channel();

  // Handle side, after wait_done(): rethrows the body's exception, if any,
  // moving it out of the task (as take_result() moves the value), so that
  // only the joiner touches the exception object from then on. Inline: the
  // usual task stored none.
  void rethrow_if_failed() {
    if (error_) [[unlikely]] rethrow_error();
  }

  // Scheduler side, instead of run(): the task could not start (no stack).
  void set_failure(std::exception_ptr error) noexcept { error_ = std::move(error); }

  // Handle side: gives up the handle's reference. `observed` says whether the
  // outcome was delivered to a joiner (if not, an exception is reported).
  void release_handle(bool observed) noexcept;
  // release_handle(true), after a join: the runtime has let go of its
  // reference by then, or is about to, so the handle's is usually the last
  // and the task is freed here, inline.
  void release_joined() noexcept {
    // acquire: as release()'s load (task.cpp): at 1 the runtime's reference
    // is gone, and what the task wrote before it let go is visible to the
    // destructor.
    if (refs_.load(std::memory_order_acquire) == 1) [[likely]] {
      observed_ = true;
      destroy();
      return;
    }
    release_handle(true);
  }
  // The spawner side, before the task is published: a lone worker queues it
  // on its own deque (see lone_spawn_).
  void mark_lone_spawn() noexcept { lone_spawn_ = true; }

  // What JoinHandle::then() registers: run(task) is called once the task is
  // done, and takes over the handle's reference. It must not throw.
  class Continuation {
   public:
    virtual void run(TaskBase* task) noexcept = 0;

   protected:
    ~Continuation() = default;  // run() deletes the object
  };
  // Handle side, instead of joining: hands the handle's reference to `c`.
  // If the task is not done, `c` runs in finish() (on the task's fiber, or
  // on the scheduler loop for a task that could not get a stack) and this
  // returns true; if it is done, returns false and the caller runs `c`.
  // Never blocks beyond join_lock_.
  bool set_continuation(Continuation* c) noexcept;

  // Tasks come from per-thread free lists by size class, refilled from and
  // drained to a shared depot a batch at a time (lib/scheduling/task_memory.cpp);
  // over-aligned tasks (a closure or result with alignas > 16) from the
  // aligned ::operator new. Any thread; never blocks beyond the depot's
  // short lock. Throws std::bad_alloc.
  static void* operator new(std::size_t size);
  static void* operator new(std::size_t size, std::align_val_t align);
  static void operator delete(void* p, std::size_t size) noexcept;
  static void operator delete(void* p, std::size_t size, std::align_val_t align) noexcept;

  // Attached by the worker that first runs the task (seq_cst store, paired
  // with request_cancel()'s seq_cst load: task.cpp; a release store once the
  // handle is gone); everyone else reads it relaxed, ordered by the queue
  // hand-offs that brought them the task.
  std::atomic<Fiber*> fiber_{nullptr};
  TaskBase* queue_next_ = nullptr;  // link in the runtime's GlobalQueue (lib/scheduling/global_queue.hpp)
  // The cancellation scope the task will run in (lib/structured/cancel_state.hpp),
  // holding a reference until its fiber starts and takes it over; nullptr:
  // the root. Set by submit() (the spawner's scope) or by a TaskGroup.
  CancelState* scope_ = nullptr;
  // The TaskGroup this task is a child of (group_core.hpp), or nullptr. A
  // child has no JoinHandle: the group holds the handle's reference and
  // finish() tells the group instead of waking a joiner.
  GroupCore* group_ = nullptr;
  // Identity, set once by submit() before the task is published (spawner
  // side, plain fields; the queue hand-off orders them for the worker that
  // starts the task, which copies them into its fiber: lib/scheduling/fiber.hpp).
  std::uint64_t id_ = 0;          // unique, never 0 (lib/scheduling/task_ids.hpp)
  std::uint64_t spawner_id_ = 0;  // the spawning fiber's id; 0: a plain thread
  // The name given at spawn (NUL-terminated, owned), or nullptr: unnamed
  // spawns cost nothing. The fiber takes it over when the task starts.
  char* name_ = nullptr;
  // Spawner side, before submit: names the task (a copy of `name`; an empty
  // name leaves it unnamed). Throws std::bad_alloc.
  void set_name(std::string_view name);

  // After done(): the task ended with an exception other than a
  // cancellation (Cancelled, or FiberCancelled at shutdown).
  bool failed() const noexcept { return error_ != nullptr && !cancelled_; }
  // After done(): the task ended because it was cancelled.
  bool was_cancelled() const noexcept { return cancelled_; }
  // After done(): takes the stored exception out (the failure is then
  // observed: never reported as unhandled).
  std::exception_ptr take_error() noexcept {
    observed_ = true;
    return std::exchange(error_, nullptr);
  }

 protected:
  friend class GroupCore;  // deletes a child it could not submit
  TaskBase() = default;
  // Inline: most tasks started (their fiber took the name and the scope's
  // reference) and made no done channel, and then there is nothing to do.
  virtual ~TaskBase() {
    if (name_ != nullptr || scope_ != nullptr || done_channel_ != nullptr) [[unlikely]] drop_leftovers();
  }
  // ~TaskBase's rare part: frees the name, drops the scope's reference and
  // the done channel's.
  void drop_leftovers() noexcept;

  // Called from run()'s catch block: stores the exception in flight, turning
  // FiberCancelled into RuntimeStopped for the joiner.
  void capture_current_exception() noexcept;
  // run() of a task cancelled before it started, or whose body ended with
  // weft::Cancelled: stores a weft::Cancelled for the joiner.
  void capture_cancel_before_start() noexcept { capture_cancelled(); }
  void capture_cancelled() noexcept;

 private:
  // wait_done_until's wait once the task is neither done nor run inline.
  bool park_until_done(Nanos deadline);
  // finish_inline()'s and finish()'s close of the done channel (a select
  // waits on the join).
  void close_done_channel() noexcept;
  // finish() of a task whose handle (or group, or continuation) still holds
  // a reference: under join_lock_, wakes the joiner, then drops the
  // runtime's reference.
  void finish_shared() noexcept;
  // finish() of a detached task with a done channel to close or a failure
  // to report: closes it, then destroy().
  void finish_detached_rare() noexcept;
  // rethrow_if_failed()'s throw, out of line.
  [[noreturn]] void rethrow_error();
  void release() noexcept;
  // The last reference is gone: reports an unobserved failure, frees the task.
  void destroy() noexcept {
    if (error_ && !observed_ && !cancelled_) [[unlikely]] report_unhandled(error_);
    delete this;
  }
  // Registers `waiter` as the joiner; false if the task is already done.
  bool add_joiner(Waiter& waiter);

  // refs_ counts the runtime's and the handle's references (see above).
  std::atomic<std::uint32_t> refs_{2};
  // done_ is set (release) by finish() under join_lock_, or without it once
  // no handle is left (nobody who could take the lock); read (acquire) by
  // done() and wait_done() to see the stored value or exception.
  std::atomic<bool> done_{false};
  // Set (seq_cst) by request_cancel(); see task.cpp for its pairing with
  // the fiber's start.
  std::atomic<bool> cancel_requested_{false};
  SpinLock join_lock_;          // guards joiner_ and the done_ transition
  bool observed_ = false;       // written by the handle before its release
  Waiter* joiner_ = nullptr;    // the one waiter parked in wait_done(), if any
  Continuation* continuation_ = nullptr;  // set_continuation(); guarded by join_lock_
  ChannelCore* done_channel_ = nullptr;  // done_channel(); guarded by join_lock_, held until ~TaskBase
  std::exception_ptr error_;    // written by run() before finish()
  bool cancelled_ = false;      // the body was cancelled (at shutdown, or its scope): never reported

 protected:
  // Task<F>: its closure is alive (constructed, not yet run or discarded).
  // Written by whoever owns the task at the time (its constructor, the
  // worker running it, the last releaser). Last, so that the closure of a
  // derived Task starts in this class's tail padding: with 1-2 captured
  // references a task fits 128 bytes, two cache lines.
  bool body_alive_ = false;

 private:
  // Queued by the lone worker of a one-worker runtime (Worker::push_local,
  // mark_lone_spawn): the task starts and ends on that worker's thread, so
  // while its spawning fiber holds the handle, refs_ changes on that thread
  // only, and release_handle() there needs no read-modify-write.
  // In what was padding, so a task of two cache lines stays two; after
  // body_alive_, not before it: placed between cancelled_ and body_alive_
  // it made spawn on 2 workers 25-35 % slower (docs/benchmarks.md).
  bool lone_spawn_ = false;
};

template <class R>
using TaskResultSlot = std::conditional_t<std::is_void_v<R>, std::monostate, std::optional<R>>;

// The part of a task that a JoinHandle<R> sees: the result slot.
template <class R>
class TaskWithResult : public TaskBase {
 public:
  // After wait_done() and rethrow_if_failed(): the value, moved out once.
  R take_result() {
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 protected:
  [[no_unique_address]] TaskResultSlot<R> result_;
};

template <class F, class R>
class Task final : public TaskWithResult<R> {
 public:
  template <class G>
  explicit Task(G&& fn) {
    ::new (static_cast<void*>(&fn_)) F(std::forward<G>(fn));
    this->body_alive_ = true;
  }
  ~Task() override { discard_body(); }

  void run() noexcept override {
    if (this->cancel_requested()) {  // JoinHandle::cancel() before the task started: it never runs
      this->capture_cancel_before_start();
      discard_body();
      return;
    }
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::move(fn_));
      } else {
        this->result_.emplace(std::invoke(std::move(fn_)));
      }
    } catch (const Cancelled&) {
      // Caught by type here rather than classified in
      // capture_current_exception (which rethrows to look): a cancelled
      // tree unwinds many fibers at once, and each rethrow is a full
      // unwind (about a microsecond).
      this->capture_cancelled();
    } catch (...) {
      this->capture_current_exception();
    }
    discard_body();  // what the closure captured dies with the body, not with the handle
  }

  void discard_body() noexcept override {
    if (!this->body_alive_) return;
    this->body_alive_ = false;
    fn_.~F();
  }

 private:
  union {
    F fn_;  // alive while body_alive_
  };
};

// Submits a task to a runtime: the calling worker's own deque when the caller
// is a fiber of that runtime, else the runtime's injection queue. Throws
// RuntimeStopped when a plain thread submits to a stopping runtime.
WEFT_API void submit(Scheduler* scheduler, TaskBase* task);

// Allocates a task running fn() with result type R, names it and hands it
// to submit(task); if naming or submit throws, deletes the task (nothing
// ran) and rethrows. The common part of submit_new_task and go_new_task.
template <class R, class F, class Submit>
TaskWithResult<R>* make_and_submit_task(Submit&& submit, F&& fn, std::string_view name) {
  auto* task = new Task<std::decay_t<F>, R>(std::forward<F>(fn));
  try {
    if (!name.empty()) task->set_name(name);  // the unnamed path: one untaken branch
    submit(task);
  } catch (...) {
    delete task;
    throw;
  }
  return task;
}

// Allocates a task running fn() with result type R and submits it to
// `scheduler`; if the submit throws, deletes the task and rethrows.
template <class R, class F>
TaskWithResult<R>* submit_new_task(Scheduler* scheduler, F&& fn, std::string_view name = {}) {
  return make_and_submit_task<R>([scheduler](TaskBase* task) { submit(scheduler, task); }, std::forward<F>(fn),
                                 name);
}

// The scheduler of the calling fiber; throws NotInFiber (naming `caller`)
// from a plain thread.
WEFT_API Scheduler* current_scheduler_or_throw(const char* caller);

// go()'s submit: as submit() to the calling fiber's runtime, onto its
// worker's deque, with one look at the calling thread instead of two (one to
// find the runtime, one in submit). Throws NotInFiber (naming `caller`) from
// a plain thread, and std::bad_alloc; nothing is queued then.
WEFT_API void submit_to_current(TaskBase* task, const char* caller);

// As submit_new_task, to the calling fiber's runtime (submit_to_current).
// From a plain thread the task is made, then deleted, and NotInFiber thrown:
// the callable was moved into the task and dies with it.
template <class R, class F>
TaskWithResult<R>* go_new_task(const char* caller, F&& fn, std::string_view name = {}) {
  return make_and_submit_task<R>([caller](TaskBase* task) { submit_to_current(task, caller); }, std::forward<F>(fn),
                                 name);
}

// True when the calling thread is a worker of `scheduler` (a fiber of it, or
// its scheduler loop).
WEFT_API bool on_worker_of(const Scheduler* scheduler) noexcept;

}  // namespace weft::detail
