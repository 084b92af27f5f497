// The fork-join engine under weft::parallel_for, parallel_reduce and
// parallel_invoke (parallel.hpp): a range of offsets [0, n) split in halves,
// the upper half handed to the runtime as a task that an idle worker may
// steal, the lower half run by the caller, then the two joined. The plan
// (grain, splitting, the exception rule) is in docs/design/parallel.md.
//
// Internal: users see it only through parallel.hpp.
#pragma once

#include "config.hpp"

#include <atomic>
#include <cstddef>
#include <exception>
#include <utility>

#include "../cancel.hpp"
#include "../errors.hpp"
#include "../this_fiber.hpp"
#include "task.hpp"

namespace weft::detail {

// Waits for `task` (a fork of the calling fiber) to finish. Not cut short
// by the caller's cancellation (the task is cancelled with it and ends; the
// caller must not leave while the task may use its frame): a task still
// queued at the bottom of this worker's deque runs right here, first,
// unshielded (inline_join.cpp), otherwise the fiber parks shielded. Only
// shutdown ends that park (weft::FiberCancelled): the wait then goes on
// until the task is done, and rethrows FiberCancelled. Defined in the
// library (lib/structured/fork_join.cpp).
WEFT_API void fork_join_wait(TaskBase* task);
// As fork_join_wait, but drops a FiberCancelled: for unwinding paths.
WEFT_API void fork_join_wait_quietly(TaskBase* task) noexcept;

// Worker threads of `scheduler`. Never blocks.
WEFT_API std::size_t worker_count(const Scheduler* scheduler) noexcept;

// What parallel_for's chunks return: nothing, as a value.
struct NoResult {};

// A task forked by the engine, as a JoinHandle with a shielded join: its
// destructor waits for the task if join() was not reached (an exception
// unwinds the parent), so no task outlives the frame it references.
template <class R>
class Forked {
 public:
  // Submits fn() to `scheduler` (the calling worker's own deque). Throws
  // std::bad_alloc; then nothing was submitted.
  template <class F>
  Forked(Scheduler* scheduler, F&& fn) : task_(submit_new_task<R>(scheduler, std::forward<F>(fn))) {}
  Forked(const Forked&) = delete;
  Forked& operator=(const Forked&) = delete;
  ~Forked() {
    if (task_ == nullptr) return;
    fork_join_wait_quietly(task_);
    // Its outcome is dropped on purpose: the parent is unwinding. The
    // exception, if any, is taken out and dropped here, on the thread that
    // waited for the task, so that no other thread's release of the task
    // touches the exception object (as rethrow_if_failed does for join()).
    std::exception_ptr dropped = task_->take_error();
    task_->release_handle(true);
  }

  // Waits (fork_join_wait) and returns the task's value or rethrows its
  // exception. Once.
  R join() {
    fork_join_wait(task_);
    TaskWithResult<R>* task = std::exchange(task_, nullptr);
    struct Release {
      TaskBase* t;
      ~Release() { t->release_joined(); }
    } release{task};
    task->rethrow_if_failed();
    return task->take_result();
  }

 private:
  TaskWithResult<R>* task_ = nullptr;
};

// What one parallel call shares among its chunks; it lives on the caller's
// frame, which outlives every chunk (each fork is joined before its parent
// returns or unwinds).
struct ForkJoinShared {
  Scheduler* scheduler;
  CancelScope* scope;     // the call's own scope: cancelled on the first failure
  std::size_t grain;      // split while a range is longer; 0: automatic (depth budget)
  bool split_on_demand;   // automatic mode may split a running chunk (more than one worker)
  // Claimed by the first chunk that fails: it alone writes first_failure,
  // which the caller reads after joining everything (the joins order it).
  std::atomic<bool> failed{false};
  std::exception_ptr first_failure;

  // A chunk failed with the exception in flight: the first one is kept,
  // and the rest of the call is cancelled. Never throws.
  void fail(std::exception_ptr error) noexcept {
    // relaxed: the RMW alone decides who writes first_failure (one winner);
    // the caller reads it only after the joins, which order the write.
    if (!failed.exchange(true, std::memory_order_relaxed)) {
      first_failure = std::move(error);
      scope->cancel();
    }
  }
  // A chunk ended with a cancellation (ours, the caller's, or shutdown's):
  // stop the others too, since the call cannot complete.
  void stop() noexcept {
    if (!scope->cancelled()) scope->cancel();
  }

  // Runs fn() and routes anything it throws through fail()/stop(), then
  // lets it propagate.
  template <class Fn>
  decltype(auto) guarded(Fn&& fn) {
    try {
      return std::forward<Fn>(fn)();
    } catch (const Cancelled&) {
      stop();
      throw;
    } catch (const FiberCancelled&) {
      stop();
      throw;
    } catch (...) {
      fail(std::current_exception());
      throw;
    }
  }
};

// Extra halvings a range gets when it runs on another worker than the one
// that forked it (it was stolen: that part of the range is where the
// demand is), in automatic mode (oneTBB's auto_partitioner and Rayon's
// adaptive splitter do the same).
inline constexpr int k_steal_extra_depth = 2;
// Chunks per worker that automatic mode starts from.
inline constexpr std::size_t k_auto_chunks_per_worker = 8;
// Automatic mode runs a chunk in this many pieces, and between two pieces
// looks for cancellation and for demand (below).
inline constexpr std::size_t k_auto_pieces_per_chunk = 16;

// True when the calling worker's deque is empty: everything this fiber
// forked has been taken (by thieves, or by its own joins). A snapshot;
// never blocks. Defined in the library.
WEFT_API bool local_queue_empty() noexcept;

// The recursion over [lo, hi) with `depth` halvings left (automatic mode).
// Body has: R identity(), R fold(lo, hi, R acc) (one subrange into the
// accumulator) and R combine(R lower, R upper), all const.
template <class R, class Body>
R fork_join(ForkJoinShared& sh, const Body& body, std::size_t lo, std::size_t hi, int depth);

// A chunk in automatic mode: folded a piece at a time. Between pieces it
// checks for cancellation, and for demand: when this worker's deque is
// empty, the thieves have taken everything it forked and are looking for
// more, so the rest of the chunk is halved and its upper half forked
// (lazy binary splitting, Tzannes et al., PPoPP 2010). A chunk nobody
// needs stays whole; the tail of a loop, where workers run dry, is cut
// finer.
template <class R, class Body>
R auto_chunk(ForkJoinShared& sh, const Body& body, std::size_t lo, std::size_t hi) {
  const std::size_t piece = (hi - lo) / k_auto_pieces_per_chunk > 0 ? (hi - lo) / k_auto_pieces_per_chunk : 1;
  R acc = body.identity();
  while (hi - lo > piece) {
    if (sh.split_on_demand && local_queue_empty()) {
      R rest = fork_join<R>(sh, body, lo, hi, 1);
      return body.combine(std::move(acc), std::move(rest));
    }
    acc = body.fold(lo, lo + piece, std::move(acc));
    lo += piece;
    if (this_fiber::cancelled()) throw Cancelled{};
  }
  return body.fold(lo, hi, std::move(acc));
}

template <class R, class Body>
R fork_join(ForkJoinShared& sh, const Body& body, std::size_t lo, std::size_t hi, int depth) {
  if (this_fiber::cancelled()) throw Cancelled{};  // between chunks: one relaxed load
  const std::size_t n = hi - lo;
  if (sh.grain != 0 ? n <= sh.grain : (depth <= 0 || n < 2)) {
    if (sh.grain != 0) return sh.guarded([&]() -> R { return body.fold(lo, hi, body.identity()); });
    return sh.guarded([&]() -> R { return auto_chunk<R>(sh, body, lo, hi); });
  }
  const std::size_t mid = lo + n / 2;
  const std::size_t home = sh.grain == 0 ? this_fiber::worker_index() : 0;  // automatic mode only
  Forked<R> upper(sh.scheduler, [&sh, &body, mid, hi, depth, home]() -> R {
    int d = depth - 1;
    if (sh.grain == 0 && this_fiber::worker_index() != home) d += k_steal_extra_depth;
    return fork_join<R>(sh, body, mid, hi, d);
  });
  R low = sh.guarded([&]() -> R { return fork_join<R>(sh, body, lo, mid, depth - 1); });
  R high = sh.guarded([&]() -> R { return upper.join(); });
  return sh.guarded([&]() -> R { return body.combine(std::move(low), std::move(high)); });
}

// The halvings that give about `chunks_per_worker` chunks per worker.
inline int initial_depth(std::size_t workers, std::size_t chunks_per_worker) noexcept {
  int d = 0;
  for (std::size_t c = 1; c < workers * chunks_per_worker; c *= 2) ++d;
  return d;
}

// One whole parallel call over offsets [0, n), n >= 1, from a fiber of
// `scheduler`: opens the call's scope, runs the recursion, and reports the
// first failure, or weft::Cancelled if the call was cut short without one.
template <class R, class Body>
R run_fork_join(Scheduler* scheduler, std::size_t n, std::size_t grain, const Body& body) {
  CancelScope scope;
  const std::size_t workers = worker_count(scheduler);
  ForkJoinShared sh{scheduler, &scope, grain, workers > 1, {}, {}};
  const int depth = grain != 0 ? 0 : initial_depth(workers, k_auto_chunks_per_worker);
  try {
    return fork_join<R>(sh, body, 0, n, depth);
  } catch (...) {
    // Every fork has been joined: first_failure is final.
    if (sh.first_failure) std::rethrow_exception(sh.first_failure);
    throw;
  }
}

}  // namespace weft::detail
