// Cancellation: scopes that stop a tree of fibers (Trio's cancel scopes, Go's
// context, Tokio's CancellationToken), interoperable with std::stop_token.
//
//   weft::CancelScope scope(std::chrono::milliseconds(50));  // this fiber, until the scope ends
//   auto part = weft::go([] { return slow_lookup(); });       // runs in the scope too
//   ...                                                       // 50 ms later every wait in it throws
//
// The rule. Every fiber runs in a scope: the one it was spawned in (go() and
// Runtime::spawn from a fiber pass the spawner's innermost scope on; a
// TaskGroup's children run in the group's), or the root, which only
// shutdown cancels. Scopes nest; cancelling one cancels every scope inside
// it. Once a fiber's scope is cancelled:
//   - every call that would park it throws weft::Cancelled (errors.hpp)
//     instead of waiting: channel send/recv and their timed forms, select
//     without a default, sleeps, Mutex::lock, CondVar::wait, WaitGroup::wait,
//     Semaphore::acquire, joins, weft::blocking; a call parked when the
//     cancellation comes throws it at once. A call that can complete
//     without waiting still completes, and one that completed is never also
//     reported cancelled: a value is sent or received exactly once or not
//     at all. The non-parking forms (try_*) are unaffected;
//   - this_fiber::cancelled() returns true (one relaxed load: use it in CPU
//     loops), this_fiber::check_cancelled() and this_fiber::maybe_yield()
//     throw weft::Cancelled;
//   - a few waits finish even so, because they are part of unwinding: a
//     TaskGroup waiting for its children, a CondVar re-acquiring its mutex,
//     a weft::blocking call whose function is already running (it may use
//     the caller's stack; the OS call itself is not interrupted).
// Plain threads run in no scope: their waits are never cancelled.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <optional>
#include <stop_token>

#include "detail/deadline.hpp"

namespace weft {

class CancelToken;

namespace detail {
class CancelState;
class ChannelCore;
WEFT_API ChannelCore* cancel_done_channel(const CancelToken& token);
// A token that shares `state` (nullptr: the root's). Defined in the library.
WEFT_API CancelToken token_of(CancelState* state) noexcept;
}  // namespace detail

// A handle to a scope's cancellation state (Tokio's CancellationToken):
// cheap to copy, keeps the state alive, usable from any thread. A
// default-constructed token belongs to no scope: never cancelled, and
// cancel() does nothing.
class WEFT_API CancelToken {
 public:
  CancelToken() noexcept = default;
  CancelToken(const CancelToken& other) noexcept;
  CancelToken(CancelToken&& other) noexcept;
  CancelToken& operator=(CancelToken other) noexcept;
  ~CancelToken();

  // True once the scope (or one it is nested in) was cancelled. Any thread;
  // never blocks.
  bool cancelled() const noexcept;

  // Cancels the scope and every scope inside it: their fibers' waits throw
  // weft::Cancelled. Any thread; idempotent; never parks or blocks (beyond
  // short internal locks and, the first time, one membarrier system call of
  // a few microseconds that orders it with fibers parking at that moment),
  // and runs no user code except std::stop_callbacks registered on
  // stop_token().
  void cancel() const noexcept;

  // A std::stop_token that is stopped when the scope is cancelled (so code
  // written for std::jthread-style cancellation can follow a weft scope).
  // Throws std::bad_alloc the first time.
  std::stop_token stop_token() const;

  // Internal: adopts a reference.
  explicit CancelToken(detail::CancelState* state) noexcept : state_(state) {}

 private:
  friend detail::ChannelCore* detail::cancel_done_channel(const CancelToken& token);
  detail::CancelState* state_ = nullptr;
};

// A cancellation scope for the calling fiber, from construction to
// destruction (Trio's `with CancelScope()`; Go's context.WithCancel,
// WithTimeout, WithDeadline). It is a child of the fiber's current scope,
// and the fiber, and fibers it spawns meanwhile, run in it. cancel() (from
// any thread, or through token()) cancels it; so does its deadline, if it
// has one, and a std::stop_token it was given. Scopes must end in the
// reverse order they began (they are RAII objects on the fiber's stack).
// Fibers spawned inside stay in the scope after it ends, and its deadline
// still applies to them.
//
// Construction throws weft::NotInFiber on a plain thread, std::bad_alloc
// when memory runs out. Nothing here parks.
class WEFT_API CancelScope {
 public:
  CancelScope();
  template <class Rep, class Period>
  explicit CancelScope(const std::chrono::duration<Rep, Period>& timeout)
      : CancelScope(detail::deadline_after(timeout), nullptr) {}
  template <class Clock, class Duration>
  explicit CancelScope(const std::chrono::time_point<Clock, Duration>& deadline)
      : CancelScope(detail::deadline_at(deadline), nullptr) {}
  // Cancelled when `stop` is requested (at once if it already was).
  explicit CancelScope(std::stop_token stop);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  void cancel() noexcept;
  bool cancelled() const noexcept;
  CancelToken token() const noexcept;

 private:
  struct Canceller {
    detail::CancelState* state;
    void operator()() const noexcept;
  };
  CancelScope(detail::Nanos deadline, std::nullptr_t);

  detail::CancelState* state_;
  detail::CancelState* outer_;  // the fiber's scope before this one
  std::optional<std::stop_callback<Canceller>> on_stop_;
};

}  // namespace weft
