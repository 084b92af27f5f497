// weft::TaskGroup: structured concurrency (Trio's nursery, Go's errgroup,
// Tokio's JoinSet, oneTBB's task_group).
//
//   weft::TaskGroup<int> g;                  // in a fiber (or TaskGroup<int> g(rt) anywhere)
//   for (auto& shard : shards) g.spawn([&] { return search(shard); });
//   while (auto hit = g.join_next()) use(*hit);   // in completion order
//   // or: g.wait();  -- all of them; rethrows the first failure
//
// A group never detaches: its destructor waits for every child, also while
// an exception unwinds the owner's stack (then it cancels them first), so a
// child can safely use the owner's locals. Its children run in the group's
// cancellation scope (cancel.hpp), a child of the scope the group was
// created in: cancelling the owner's scope, or the group, cancels them, and
// so does the first child that fails (throws anything but weft::Cancelled).
// wait() then rethrows that first failure; failures after it are dropped,
// as Go's errgroup does (the first one usually caused them). Children that
// end with weft::Cancelled are cancelled, not failed.
//
// Threading: spawn(), wait(), join_next() and the destructor belong to the
// owner (one fiber or plain thread at a time); cancel(), cancelled(),
// token() and size() may be called from anywhere. wait(), join_next() and
// the destructor park a fiber (block a plain thread) while children run;
// they are not ended by the owner's scope being cancelled (the children
// are cancelled with it and finish), only by shutdown (weft::FiberCancelled).
#pragma once

#include "detail/config.hpp"

#include <exception>
#include <functional>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "cancel.hpp"
#include "detail/group_core.hpp"
#include "detail/task.hpp"
#include "runtime.hpp"

namespace weft {

template <class T = void>
class TaskGroup {
  static_assert(!std::is_reference_v<T>, "weft::TaskGroup<T>: T must be a value type, not a reference");

 public:
  // Children run on the calling fiber's runtime. Throws weft::NotInFiber
  // from a plain thread (use the Runtime& form there).
  TaskGroup() : TaskGroup(detail::current_scheduler_or_throw("weft::TaskGroup")) {}
  // Children run on `runtime`. Any thread.
  explicit TaskGroup(Runtime& runtime) : TaskGroup(runtime.scheduler()) {}
  // Named groups (a copy of `name`; empty: unnamed): each child is named
  // "<group>/<child name>", or "<group>/<n>" for the n-th child spawned
  // (from 1) without a name, in Runtime::dump() and deadlock reports.
  // Children of an unnamed group carry their own name, if any. Also throw
  // std::bad_alloc.
  explicit TaskGroup(std::string_view name)
      : TaskGroup(detail::current_scheduler_or_throw("weft::TaskGroup"), name) {}
  TaskGroup(Runtime& runtime, std::string_view name) : TaskGroup(runtime.scheduler(), name) {}

  // Waits for every child. If the group is being destroyed by an exception
  // (the owner's stack unwinds), it cancels them first. A failure nobody
  // collected goes to the unhandled-exception handler (errors.hpp): call
  // wait() to see it.
  ~TaskGroup() {
    if (std::uncaught_exceptions() > uncaught_at_start_) core_.cancel();
    std::exception_ptr lost;
    for (;;) {
      try {
        lost = core_.collect_all();
        break;
      } catch (...) {
        // Shutdown cancelled this wait (weft::FiberCancelled). It cancels
        // the children too, and they still report to this group as they
        // finish: keep waiting for them (shutdown cancels each wait it
        // finds parked, so this loops once per shutdown pass).
      }
    }
    if (lost) detail::report_unhandled(lost);
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Starts fn() as a child: a new fiber in the group's scope. Never parks.
  // Throws RuntimeStopped (the runtime is shutting down, from outside it)
  // or std::bad_alloc; the child then does not run.
  template <Spawnable F>
  void spawn(F&& fn) {
    spawn(std::string_view{}, std::forward<F>(fn));
  }

  // As spawn(fn), naming the child (see the named constructors for the
  // group's prefix).
  template <Spawnable F>
  void spawn(std::string_view name, F&& fn) {
    using R = task_result_t<F>;
    static_assert(std::is_same_v<R, T> || (std::is_void_v<T>),
                  "weft::TaskGroup<T>::spawn: the callable must return T (a TaskGroup<void> takes any callable)");
    if constexpr (std::is_void_v<T> && !std::is_void_v<R>) {
      // A TaskGroup<void> drops children's values.
      auto drop = [f = std::forward<F>(fn)]() mutable { (void)std::invoke(std::move(f)); };
      core_.spawn(new detail::Task<decltype(drop), void>(std::move(drop)), name);
    } else {
      core_.spawn(new detail::Task<std::decay_t<F>, T>(std::forward<F>(fn)), name);
    }
  }

  // Waits for every child, then rethrows the first failure among those it
  // collected, if any (after it had cancelled the others). The group may be
  // used again afterwards.
  void wait() {
    if (std::exception_ptr first = core_.collect_all()) std::rethrow_exception(first);
  }

  // Waits for the next child to finish and collects it, in completion order
  // (Tokio's JoinSet::join_next): its value (TaskGroup<void>: true), or its
  // exception rethrown. Cancelled children are collected silently and
  // skipped. std::nullopt (false) once no child is left.
  auto join_next() {
    for (;;) {
      detail::TaskBase* t = core_.next_finished();
      if (t == nullptr) {
        if constexpr (std::is_void_v<T>) return false; else return std::optional<T>();
      }
      struct Release {
        detail::TaskBase* t;
        ~Release() { t->release_joined(); }
      } release{t};
      if (t->was_cancelled()) continue;
      if (std::exception_ptr e = t->take_error()) std::rethrow_exception(e);
      if constexpr (std::is_void_v<T>) {
        return true;
      } else {
        return std::optional<T>(static_cast<detail::TaskWithResult<T>*>(t)->take_result());
      }
    }
  }

  // Cancels every child (their waits throw weft::Cancelled) and children
  // spawned afterwards (they start cancelled). Any thread; never parks.
  void cancel() noexcept { core_.cancel(); }
  bool cancelled() const noexcept { return core_.cancelled(); }
  // The group's scope: cancel() it, or hand it to code that checks it.
  CancelToken token() const noexcept { return detail::token_of(core_.scope()); }

  // Children spawned and not collected yet. Any thread; a snapshot.
  std::size_t size() const noexcept { return core_.pending(); }

 private:
  explicit TaskGroup(detail::Scheduler* scheduler, std::string_view name = {})
      : core_(scheduler, name), uncaught_at_start_(std::uncaught_exceptions()) {}

  detail::GroupCore core_;
  const int uncaught_at_start_;
};

}  // namespace weft
