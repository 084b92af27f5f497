// JoinHandle<T>: the result of one spawned task.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <concepts>
#include <exception>
#include <functional>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <utility>

#include "detail/deadline.hpp"
#include "detail/task.hpp"

namespace weft {

class Runtime;

// Owns the right to collect a task's result. Move-only. Dropping a handle that
// was not joined detaches the task: it still runs to completion, and an
// exception escaping it goes to the unhandled-exception handler (errors.hpp).
//
// Threading: one handle is used by one thread or fiber at a time; different
// handles may be used concurrently. A handle may outlive its Runtime: after
// shutdown every task has finished or been cancelled, so join() never hangs.
template <class T>
class JoinHandle {
 public:
  JoinHandle() = default;
  explicit JoinHandle(detail::TaskWithResult<T>* task) noexcept : task_(task), state_(State::attached) {}
  JoinHandle(JoinHandle&& other) noexcept
      : task_(std::exchange(other.task_, nullptr)), state_(std::exchange(other.state_, State::moved_from)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      drop();
      task_ = std::exchange(other.task_, nullptr);
      state_ = std::exchange(other.state_, State::moved_from);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { drop(); }

  // Waits for the task and returns its value, or rethrows its exception.
  // Everything the task did happens-before join() returns.
  // From a fiber it parks the fiber (the worker runs other fibers meanwhile);
  // from a plain thread it blocks the thread. A task cancelled at shutdown
  // rethrows weft::RuntimeStopped. Throws std::logic_error if the handle was
  // already joined, detached, moved from, or default-constructed.
  // If the calling fiber is itself cancelled at shutdown while it waits,
  // weft::FiberCancelled propagates and the handle stays attached.
  T join() {
    check_attached("join");
    task_->wait_done();
    detail::TaskWithResult<T>* task = std::exchange(task_, nullptr);
    state_ = State::joined;
    struct Release {
      detail::TaskBase* t;
      ~Release() { t->release_joined(); }
    } release{task};
    task->rethrow_if_failed();
    return task->take_result();
  }

  // Waits for the task to finish, but gives up once `timeout` has passed
  // (join_for) or at `deadline` (join_until, any clock). True if it has
  // finished: join() then returns (or rethrows) at once. False: the handle
  // is unchanged and the task keeps running. Parks / blocks like join();
  // throws like join() for an unjoinable handle, and FiberCancelled if the
  // caller is cancelled at shutdown.
  template <class Rep, class Period>
  bool join_for(const std::chrono::duration<Rep, Period>& timeout) {
    check_attached("join_for");
    return task_->wait_done_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool join_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    check_attached("join_until");
    return task_->wait_done_until(detail::deadline_at(deadline));
  }

  // Gives up the result; the task runs to completion on its own. Throws
  // std::logic_error under the same conditions as join(). Never blocks.
  void detach() {
    check_attached("detach");
    state_ = State::detached;
    std::exchange(task_, nullptr)->release_handle(false);
  }

  // Hands the task's outcome to `callback` when the task ends, without
  // blocking anyone (a completion hook, like a future's continuation): once
  // the task is done, callback(JoinHandle<T>) is called exactly once with a
  // handle to it; that handle's join() returns the value or rethrows the
  // exception at once (a cancelled task: weft::Cancelled; one cancelled at
  // shutdown: weft::RuntimeStopped). If the callback drops the handle
  // without joining, the outcome is dropped as detach() drops it (an
  // exception goes to the unhandled-exception handler, errors.hpp).
  //
  // Where it runs: on the task's own fiber, right after the body (and its
  // FiberLocal values) ended, before the fiber is released; if the task has
  // already finished, at once on the calling thread or fiber, before then()
  // returns; for a task that could not start because no stack could be
  // allocated, on the worker's scheduler loop, where it must not wait (a
  // weft wait there stops the program). Keep it short: post the result to
  // an event loop (an eventfd, a queue), send on a buffered channel, or
  // spawn a task for longer work. An exception escaping the callback goes
  // to the unhandled-exception handler.
  //
  // Consumes the handle: afterwards it is no longer joinable (join() throws
  // std::logic_error). Throws std::logic_error for an unattached handle, and
  // std::bad_alloc (the handle is then unchanged) when the callback cannot
  // be stored. Never parks or blocks; any thread.
  template <class F>
    requires std::invocable<std::decay_t<F>&, JoinHandle<T>&&>
  void then(F&& callback) {
    check_attached("then");
    auto* c = new ThenCallback<std::decay_t<F>>(std::forward<F>(callback));
    detail::TaskWithResult<T>* task = std::exchange(task_, nullptr);
    state_ = State::continued;
    if (!task->set_continuation(c)) c->run(task);  // already done: run it here
  }

  // Cancels the task (Tokio's JoinHandle::abort): from now on every wait of
  // its fiber throws weft::Cancelled (the one it is parked in, at once),
  // this_fiber::cancelled() is true in it, and the CancelScopes and
  // TaskGroups it opened are cancelled with their fibers. A task that has
  // not started yet never runs. Fibers it started with go() outside scopes
  // of its own run in the scope it was spawned in, and keep running (as
  // Tokio's abort leaves tasks the aborted one spawned). The handle stays
  // attached: join() then returns the value if the task finished first, or
  // throws weft::Cancelled. Does nothing on a finished task or an
  // unattached handle. Never parks or blocks (a task that has a fiber costs
  // one membarrier system call, a few microseconds, that orders the cancel
  // with the fiber's parks).
  void cancel() noexcept {
    if (task_ != nullptr) task_->request_cancel();
  }

  // For select's on_join: a channel closed when the task finishes, with a
  // reference for the caller. Throws like join() for an unattached handle,
  // std::bad_alloc when memory runs out.
  detail::ChannelCore* done_channel() {
    check_attached("on_join");
    return task_->done_channel();
  }

  // True while the handle can still be joined or detached.
  bool joinable() const noexcept { return task_ != nullptr; }

  // True once the task has finished (value or exception). Never blocks.
  bool is_finished() const noexcept { return task_ != nullptr && task_->done(); }

 private:
  friend class Runtime;  // block_on waits on the task with deadlock detection
  enum class State { empty, attached, joined, detached, moved_from, continued };

  // then()'s callback, stored until the task finishes.
  template <class F>
  class ThenCallback final : public detail::TaskBase::Continuation {
   public:
    template <class G>
    explicit ThenCallback(G&& fn) : fn_(std::forward<G>(fn)) {}
    // From the task allocator (per-thread free lists and a shared depot):
    // made on the spawner's thread and freed on a worker, like a task.
    static void* operator new(std::size_t size) { return detail::TaskBase::operator new(size); }
    static void operator delete(void* p, std::size_t size) noexcept { detail::TaskBase::operator delete(p, size); }
    static void* operator new(std::size_t size, std::align_val_t align) {
      return detail::TaskBase::operator new(size, align);
    }
    static void operator delete(void* p, std::size_t size, std::align_val_t align) noexcept {
      detail::TaskBase::operator delete(p, size, align);
    }
    void run(detail::TaskBase* task) noexcept override {
      // The handle's reference passes to the handle given to the callback.
      JoinHandle<T> done(static_cast<detail::TaskWithResult<T>*>(task));
      try {
        std::invoke(fn_, std::move(done));
      } catch (...) {
        detail::report_unhandled(std::current_exception());
      }
      delete this;
    }

   private:
    F fn_;
  };
  void drop() noexcept {
    if (task_ != nullptr) std::exchange(task_, nullptr)->release_handle(false);
  }

  // The attached test inline (every join and detach makes it); the
  // error's message is built out of line.
  void check_attached(const char* op) const {
    if (state_ != State::attached) [[unlikely]] throw_not_attached(op);
  }
  [[noreturn]] __attribute__((noinline, cold)) void throw_not_attached(const char* op) const {
    switch (state_) {
      case State::attached: break;
      case State::joined: throw std::logic_error(std::string("weft::JoinHandle::") + op + ": the task was already joined");
      case State::detached: throw std::logic_error(std::string("weft::JoinHandle::") + op + ": the handle was detached");
      case State::moved_from: throw std::logic_error(std::string("weft::JoinHandle::") + op + ": the handle was moved from");
      case State::continued: throw std::logic_error(std::string("weft::JoinHandle::") + op + ": the handle was given to then()");
      case State::empty: break;
    }
    throw std::logic_error(std::string("weft::JoinHandle::") + op + ": the handle is empty (default-constructed)");
  }

  detail::TaskWithResult<T>* task_ = nullptr;
  State state_ = State::empty;
};

}  // namespace weft
