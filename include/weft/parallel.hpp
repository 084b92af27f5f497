// weft::parallel_for, parallel_reduce and parallel_invoke: fork-join loops
// over the runtime's workers (oneTBB's algorithms of the same names, Rayon's
// join), built on weft's structured concurrency (cancel.hpp).
//
//   weft::parallel_for(0, n, [&](std::size_t i) { out[i] = f(in[i]); });
//   double sum = weft::parallel_reduce(0, n, 0.0,
//       [&](std::size_t lo, std::size_t hi, double acc) {   // one chunk at a time
//         for (std::size_t i = lo; i < hi; ++i) acc += v[i];
//         return acc;
//       },
//       std::plus<>());                                     // neighbours, lower first
//   weft::parallel_invoke([&] { sort(left); }, [&] { sort(right); });
//
// Ranges. [first, last) is a range of integers (any integral type but bool;
// first and last may differ in type, their common type is used: 0 and
// v.size() is fine) or of random-access iterators. last < first throws
// std::invalid_argument; an empty range returns at once (parallel_reduce:
// the identity) and runs nothing.
//
// Chunks. The range is halved recursively; one half of each split is
// forked as a task that an idle worker may steal, the other runs on. With a
// grain, ranges longer than the grain are split (chunks hold grain/2 to
// grain elements); grain 0 throws std::invalid_argument. Without one, the
// grain is automatic: about 8 chunks per worker to start with; a part that
// another worker stole is split further (4 more chunks per steal); and a
// chunk runs in 16 pieces, between which it hands half of what is left to
// the thieves when they have emptied its worker's deque. So work moves
// where the demand is, and a loop nobody steals from stays in few chunks.
// Spawns are O(chunks), and nothing is allocated per element. Give a grain
// when elements are so uneven that this is wrong, or for chunks of a size
// you choose.
//
// Exceptions. A chunk (or combine_fn) that throws cancels the rest of the
// call: chunks not started are skipped, and waits in running ones throw
// weft::Cancelled, as in a TaskGroup. The call returns (or throws) only
// after every chunk has ended, so chunks may use the caller's locals, and
// then rethrows the first failure (by time); later ones are dropped.
//
// Cancellation. The call runs in a CancelScope of its own inside the
// caller's. When the caller's scope is cancelled, no new chunk starts
// (this_fiber::cancelled() is read once per chunk, and with the automatic
// grain once per piece, a 16th of a chunk), waits in running chunks
// throw weft::Cancelled, and the call throws weft::Cancelled once every
// chunk has ended, unless every chunk had completed: a completed call
// returns its result. A non-empty range in an already cancelled scope runs
// nothing and throws weft::Cancelled.
//
// Threading. From a fiber: runs on that fiber's runtime; the calling fiber
// runs chunks itself and parks only to wait for a stolen chunk (its worker
// runs other fibers meanwhile). From a plain thread, use the overloads that
// take a Runtime&: they run the call as a fiber of that runtime and block
// the thread until it ends (Runtime::block_on; from a fiber of that same
// runtime they throw std::logic_error, as block_on does). The forms without
// a Runtime& throw weft::NotInFiber from a plain thread. Chunks run
// concurrently on several workers: f, reduce_fn and combine_fn must be
// safe to call at the same time from several threads, on different
// elements.
#pragma once

#include "detail/config.hpp"

#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "detail/fork_join.hpp"
#include "errors.hpp"
#include "runtime.hpp"
#include "this_fiber.hpp"

namespace weft {

// What parallel_for and parallel_reduce range over: the common type of
// first and last, an integer (not bool) or a random-access iterator.
template <class First, class Last>
concept ParallelRange = requires { typename std::common_type_t<First, Last>; } &&
                        ((std::integral<std::common_type_t<First, Last>> &&
                          !std::same_as<std::common_type_t<First, Last>, bool>) ||
                         std::random_access_iterator<std::common_type_t<First, Last>>);

namespace detail {

template <class I>
std::size_t parallel_range_size(I first, I last, const char* caller) {
  if (last < first) throw std::invalid_argument(std::string(caller) + ": last < first (a reversed range)");
  if constexpr (std::integral<I>) {
    using U = std::make_unsigned_t<I>;
    return static_cast<std::size_t>(static_cast<U>(static_cast<U>(last) - static_cast<U>(first)));
  } else {
    return static_cast<std::size_t>(last - first);
  }
}

// first + k, k within the range.
template <class I>
I parallel_at(I first, std::size_t k) {
  if constexpr (std::integral<I>) {
    using U = std::make_unsigned_t<I>;
    return static_cast<I>(static_cast<U>(static_cast<U>(first) + static_cast<U>(k)));
  } else {
    return first + static_cast<std::iter_difference_t<I>>(k);
  }
}

inline void check_grain(std::size_t grain, const char* caller) {
  if (grain == 0) throw std::invalid_argument(std::string(caller) + ": grain must be at least 1");
}

inline Scheduler* parallel_scheduler(const char* caller) {
  if (!this_fiber::in_fiber()) {
    throw NotInFiber(std::string(caller) +
                     " called outside a fiber (from a plain thread); pass the Runtime& as the first argument");
  }
  return current_scheduler_or_throw(caller);
}

template <class I, class F>
void parallel_for_impl(I first, I last, std::size_t grain, F& f) {
  Scheduler* scheduler = parallel_scheduler("weft::parallel_for");
  const std::size_t n = parallel_range_size(first, last, "weft::parallel_for");
  if (n == 0) return;
  struct Body {
    F& f;
    I first;
    NoResult identity() const { return {}; }
    NoResult fold(std::size_t lo, std::size_t hi, NoResult) const {
      if constexpr (std::integral<I>) {
        for (I i = parallel_at(first, lo), end = parallel_at(first, hi); i != end; ++i) std::invoke(f, i);
      } else {
        for (I it = parallel_at(first, lo), end = parallel_at(first, hi); it != end; ++it) std::invoke(f, *it);
      }
      return {};
    }
    NoResult combine(NoResult, NoResult) const { return {}; }
  };
  run_fork_join<NoResult>(scheduler, n, grain, Body{f, first});
}

// R from the identity: a value of R, or a callable returning one.
template <class Identity>
struct ReduceResult {
  using type = std::decay_t<Identity>;
};
template <class Identity>
  requires std::invocable<Identity&>
struct ReduceResult<Identity> {
  using type = std::decay_t<std::invoke_result_t<Identity&>>;
};

template <class I, class Identity, class ReduceFn, class CombineFn>
auto parallel_reduce_impl(I first, I last, std::size_t grain, Identity& identity, ReduceFn& reduce_fn,
                          CombineFn& combine_fn) {
  using R = typename ReduceResult<Identity>::type;
  static_assert(std::move_constructible<R>, "weft::parallel_reduce: the result type must be movable");
  static_assert(std::is_convertible_v<std::invoke_result_t<ReduceFn&, I, I, R>, R>,
                "weft::parallel_reduce: reduce_fn must be callable as reduce_fn(first, last, R acc) and return R");
  static_assert(std::is_convertible_v<std::invoke_result_t<CombineFn&, R, R>, R>,
                "weft::parallel_reduce: combine_fn must be callable as combine_fn(R lower, R upper) and return R");
  struct Body {
    Identity& init;
    ReduceFn& reduce_fn;
    CombineFn& combine_fn;
    I first;
    R identity() const {
      if constexpr (std::invocable<Identity&>) {
        return std::invoke(init);
      } else {
        return init;
      }
    }
    R fold(std::size_t lo, std::size_t hi, R acc) const {
      return std::invoke(reduce_fn, parallel_at(first, lo), parallel_at(first, hi), std::move(acc));
    }
    R combine(R lower, R upper) const { return std::invoke(combine_fn, std::move(lower), std::move(upper)); }
  };
  const Body body{identity, reduce_fn, combine_fn, first};
  Scheduler* scheduler = parallel_scheduler("weft::parallel_reduce");
  const std::size_t n = parallel_range_size(first, last, "weft::parallel_reduce");
  if (n == 0) return body.identity();
  return run_fork_join<R>(scheduler, n, grain, body);
}

// parallel_invoke's chunks: chunk i calls the i-th function (grain 1).
template <class... F>
struct InvokeBody {
  std::tuple<F&...> fs;
  NoResult identity() const { return {}; }
  NoResult fold(std::size_t lo, std::size_t hi, NoResult) const {
    for (std::size_t i = lo; i < hi; ++i) call(i, std::index_sequence_for<F...>{});
    return {};
  }
  template <std::size_t... K>
  void call(std::size_t i, std::index_sequence<K...>) const {
    ((i == K ? (void)std::invoke(std::get<K>(fs)) : void()), ...);
  }
  NoResult combine(NoResult, NoResult) const { return {}; }
};

template <class... F>
void parallel_invoke_impl(F&... fs) {
  Scheduler* scheduler = parallel_scheduler("weft::parallel_invoke");
  run_fork_join<NoResult>(scheduler, sizeof...(F), 1, InvokeBody<F...>{std::tuple<F&...>(fs...)});
}

}  // namespace detail

// Calls f(i) for every integer i in [first, last), or f(*it) for every
// iterator it, in parallel chunks (the header comment has the rules). The
// grain form splits ranges longer than `grain` (std::invalid_argument if 0).
// From a fiber; parks it while it waits for stolen chunks. Rethrows the
// first exception of a chunk, after every chunk has ended; throws
// weft::Cancelled when the caller's scope was cancelled before the loop
// completed, NotInFiber from a plain thread, std::invalid_argument for a
// reversed range.
template <class First, class Last, class F>
  requires ParallelRange<First, Last>
void parallel_for(First first, Last last, F&& f) {
  using I = std::common_type_t<First, Last>;
  detail::parallel_for_impl<I>(I(first), I(last), 0, f);
}
template <class First, class Last, class F>
  requires ParallelRange<First, Last>
void parallel_for(First first, Last last, std::size_t grain, F&& f) {
  detail::check_grain(grain, "weft::parallel_for");
  using I = std::common_type_t<First, Last>;
  detail::parallel_for_impl<I>(I(first), I(last), grain, f);
}

// From any thread but a fiber of `runtime`: runs parallel_for as a fiber
// of `runtime` and blocks the calling thread (parks a fiber of another
// runtime) until it ends; rethrows as above. std::logic_error from a fiber
// of `runtime` (call the form without it there).
template <class First, class Last, class F>
  requires ParallelRange<First, Last>
void parallel_for(Runtime& runtime, First first, Last last, F&& f) {
  runtime.block_on([&] { parallel_for(first, last, f); });
}
template <class First, class Last, class F>
  requires ParallelRange<First, Last>
void parallel_for(Runtime& runtime, First first, Last last, std::size_t grain, F&& f) {
  runtime.block_on([&] { parallel_for(first, last, grain, f); });
}

// Reduces [first, last) in parallel chunks and returns the result, of type
// R: the identity's type (decayed), or what it returns when it is a
// callable; reduce_fn's and combine_fn's results are converted to it. Each
// chunk starts from the identity and folds a subrange at a time:
// reduce_fn(sub_first, sub_last, R acc) -> R (the loop is yours, so it
// runs at the speed of a plain loop); a chunk may call it on several
// consecutive subranges, passing the accumulator along. Neighbouring chunks' results are
// joined by combine_fn(R lower, R upper) -> R, lower first: an associative
// operation is enough, it need not commute. Values are moved, never copied,
// except the identity: `identity` is a value of R copied once per chunk, or
// (for results that cannot be copied) a callable with no arguments that
// returns a fresh R, called once per chunk (so an R that is itself callable
// must be given that way too: [=] { return fn; }). An empty range returns
// the identity. Grain, threading, exceptions and cancellation as
// parallel_for.
template <class First, class Last, class Identity, class ReduceFn, class CombineFn>
  requires ParallelRange<First, Last>
auto parallel_reduce(First first, Last last, Identity&& identity, ReduceFn&& reduce_fn, CombineFn&& combine_fn) {
  using I = std::common_type_t<First, Last>;
  return detail::parallel_reduce_impl<I>(I(first), I(last), 0, identity, reduce_fn, combine_fn);
}
template <class First, class Last, class Identity, class ReduceFn, class CombineFn>
  requires ParallelRange<First, Last>
auto parallel_reduce(First first, Last last, std::size_t grain, Identity&& identity, ReduceFn&& reduce_fn,
                     CombineFn&& combine_fn) {
  detail::check_grain(grain, "weft::parallel_reduce");
  using I = std::common_type_t<First, Last>;
  return detail::parallel_reduce_impl<I>(I(first), I(last), grain, identity, reduce_fn, combine_fn);
}

// From any thread but a fiber of `runtime`: as parallel_for's Runtime& form.
template <class First, class Last, class Identity, class ReduceFn, class CombineFn>
  requires ParallelRange<First, Last>
auto parallel_reduce(Runtime& runtime, First first, Last last, Identity&& identity, ReduceFn&& reduce_fn,
                     CombineFn&& combine_fn) {
  return runtime.block_on([&] { return parallel_reduce(first, last, identity, reduce_fn, combine_fn); });
}
template <class First, class Last, class Identity, class ReduceFn, class CombineFn>
  requires ParallelRange<First, Last>
auto parallel_reduce(Runtime& runtime, First first, Last last, std::size_t grain, Identity&& identity,
                     ReduceFn&& reduce_fn, CombineFn&& combine_fn) {
  return runtime.block_on([&] { return parallel_reduce(first, last, grain, identity, reduce_fn, combine_fn); });
}

// Calls every f() in parallel (each is one chunk: the caller runs the
// first, the others are forked, halving the list as parallel_for halves a
// range), and returns once all have ended. Values they return are dropped.
// Exceptions, cancellation and threading as parallel_for: the first
// failure cancels the others and is rethrown after all have ended.
template <class... F>
  requires(sizeof...(F) >= 1 && (std::invocable<F&> && ...))
void parallel_invoke(F&&... fs) {
  detail::parallel_invoke_impl(fs...);
}

// From any thread but a fiber of `runtime`: as parallel_for's Runtime& form.
template <class... F>
  requires(sizeof...(F) >= 1 && (std::invocable<F&> && ...))
void parallel_invoke(Runtime& runtime, F&&... fs) {
  runtime.block_on([&] { parallel_invoke(fs...); });
}

}  // namespace weft
