// weft::select: wait on several channel operations, commit exactly one.
//
//   weft::select(
//       weft::on_recv(jobs, [](std::optional<Job> j) { ... }),
//       weft::on_send(results, r, [](bool sent) { ... }),
//       weft::after(std::chrono::milliseconds(50), [] { ... }),  // or on_default
//       ...);
//
// Go's select and core.async's alts!: the cases are checked; if some are
// ready one of them commits (chosen uniformly at random, or the first in
// argument order with weft::priority as the first argument) and its handler
// runs. If none is ready, the default case runs if there is one; otherwise
// the caller parks (a fiber) or blocks (a plain thread) on every channel at
// once until one case can commit, or until the deadline of an after() case
// passes (its handler then runs; with several, the earliest). When another
// case commits first, the after() case's timer is cancelled at once. Exactly one case commits: the others take
// no value, deliver nothing and leave nothing queued on their channels.
//
// A receive case is ready when a value is buffered or a sender waits, or the
// channel is closed (its handler then gets std::nullopt). A send case is
// ready when a receiver waits or the buffer has room (always, for dropping
// and sliding buffers), or the channel is closed (its handler then gets
// false, and the value is not sent).
//
// A send case owns its value from the moment the case is built: if another
// case commits, or the channel is closed, the value is destroyed with the
// case (unlike Channel::send, nothing is handed back). Send a pointer or an
// index if the value must survive a lost select.
//
// Disabled cases (Go's nil channel): `weft::on_recv(ch, h).when(flag)`
// switches a case off when flag is false, for this call only; on_send,
// after, on_join and on_cancel cases take .when() too. A disabled case is
// as if it were not written: it is never ready, its channel is not touched,
// and a send case's value is destroyed with the case. A select whose cases
// are all disabled and which has no on_default (and no enabled after())
// parks until its fiber's scope is cancelled (weft::Cancelled), like Go's
// `select {}`: it never returns on its own, and the deadlock detector sees
// it as a wait that nobody can end ("select with no channel cases").
//
// Returns the argument position (0-based, weft::priority not counted) of the
// case that committed. Handlers run after the commit, in the calling fiber or
// thread, with no weft lock held; their return values are ignored.
#pragma once

#include "detail/config.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "cancel.hpp"
#include "channel.hpp"
#include "detail/channel_core.hpp"
#include "join_handle.hpp"

namespace weft {

// Tag: poll the cases in argument order instead of at random.
struct priority_t {
  explicit priority_t() = default;
};
inline constexpr priority_t priority{};

// A receive case; `handler(std::optional<T>)` gets the value, or nullopt if
// the channel was closed and drained.
template <class T, class F>
class RecvCase {
  static_assert(std::is_invocable_v<F&, std::optional<T>>,
                "weft::on_recv: the handler must accept std::optional<T> (a closed channel gives nullopt)");

 public:
  static constexpr bool is_default = false;
  static constexpr bool is_after = false;
  RecvCase(const Channel<T>& ch, F handler) : core_(ch.core("select")), handler_(std::move(handler)) {}
  void fill(detail::SelectCase& c) { c = {core_, &slot_, false, false}; }
  void fire(const detail::SelectCase&) { handler_(std::move(slot_)); }
  // Switches the case off when `on` is false (Go's nil channel): see "Disabled cases" at the top.
  auto&& when(bool on) && noexcept {
    enabled_ = on;
    return std::move(*this);
  }
  bool enabled() const noexcept { return enabled_; }

 private:
  detail::ChannelCore* core_;
  std::optional<T> slot_;
  F handler_;
  bool enabled_ = true;
};

// A send case; `handler(bool sent)` (or `handler()`) runs if it commits.
template <class T, class F>
class SendCase {
 public:
  static constexpr bool is_default = false;
  static constexpr bool is_after = false;
  SendCase(const Channel<T>& ch, T value, F handler)
      : core_(ch.core("select")), value_(std::move(value)), handler_(std::move(handler)) {}
  void fill(detail::SelectCase& c) { c = {core_, &value_, true, false}; }
  // Switches the case off when `on` is false (Go's nil channel): see "Disabled cases" at the top.
  auto&& when(bool on) && noexcept {
    enabled_ = on;
    return std::move(*this);
  }
  bool enabled() const noexcept { return enabled_; }

  void fire(const detail::SelectCase& c) {
    if constexpr (std::is_invocable_v<F&, bool>) {
      handler_(c.ok);
    } else {
      static_assert(std::is_invocable_v<F&>, "weft::on_send: the handler must accept bool (sent) or nothing");
      handler_();
    }
  }

 private:
  detail::ChannelCore* core_;
  T value_;
  F handler_;
  bool enabled_ = true;
};

// A timeout case: commits when `deadline` (steady clock ns) passes with no
// other case committed.
template <class F>
class AfterCase {
  static_assert(std::is_invocable_v<F&>, "weft::after: the handler takes no arguments");

 public:
  static constexpr bool is_default = false;
  static constexpr bool is_after = true;
  AfterCase(detail::Nanos deadline, F handler) : deadline_(deadline), handler_(std::move(handler)) {}
  detail::Nanos deadline() const noexcept { return deadline_; }
  void fire() { handler_(); }
  // Switches the case off when `on` is false (Go's nil channel): see "Disabled cases" at the top.
  auto&& when(bool on) && noexcept {
    enabled_ = on;
    return std::move(*this);
  }
  bool enabled() const noexcept { return enabled_; }

 private:
  detail::Nanos deadline_;
  F handler_;
  bool enabled_ = true;
};

template <class F>
class DefaultCase {
  static_assert(std::is_invocable_v<F&>, "weft::on_default: the handler takes no arguments");

 public:
  static constexpr bool is_default = true;
  static constexpr bool is_after = false;
  explicit DefaultCase(F handler) : handler_(std::move(handler)) {}
  void fire() { handler_(); }

 private:
  F handler_;
};

// An event case: commits once an event has happened: a task finished
// (on_join) or a cancellation scope was cancelled (on_cancel). Underneath
// it is a receive on a channel the event closes (Go's ctx.Done()), so it
// combines with every other case and with after() and on_default.
template <class F>
class DoneCase {
  static_assert(std::is_invocable_v<F&>, "weft::on_join / on_cancel: the handler takes no arguments");

 public:
  static constexpr bool is_default = false;
  static constexpr bool is_after = false;
  // Adopts a reference to `core`.
  DoneCase(detail::ChannelCore* core, F handler) noexcept : core_(core), handler_(std::move(handler)) {}
  DoneCase(DoneCase&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)), handler_(std::move(other.handler_)), enabled_(other.enabled_) {}
  DoneCase(const DoneCase&) = delete;
  DoneCase& operator=(const DoneCase&) = delete;
  DoneCase& operator=(DoneCase&&) = delete;
  ~DoneCase() {
    if (core_ != nullptr) detail::channel_release(core_);
  }
  void fill(detail::SelectCase& c) { c = {core_, &slot_, false, false}; }
  void fire(const detail::SelectCase&) { handler_(); }
  // Switches the case off when `on` is false (Go's nil channel): see "Disabled cases" at the top.
  auto&& when(bool on) && noexcept {
    enabled_ = on;
    return std::move(*this);
  }
  bool enabled() const noexcept { return enabled_; }

 private:
  detail::ChannelCore* core_;
  std::optional<std::monostate> slot_;
  F handler_;
  bool enabled_ = true;
};

namespace detail {
// A channel that nobody closes: on_cancel of a token of no scope.
inline ChannelCore* never_closed_channel() {
  return channel_create(&elem_ops_for<std::monostate>, ChannelBuffer{}, "never");
}
WEFT_API ChannelCore* cancel_done_channel(const CancelToken& token);  // lib/structured/cancel_scope.cpp; nullptr: no scope
}  // namespace detail

// Commits once the task of `handle` has finished (value or exception): then
// handle.join() returns at once. The handle must be attached (else
// std::logic_error) and outlive the select. Throws std::bad_alloc.
template <class T, class F>
DoneCase<std::decay_t<F>> on_join(JoinHandle<T>& handle, F&& handler) {
  return DoneCase<std::decay_t<F>>(handle.done_channel(), std::forward<F>(handler));
}

// Commits once the scope of `token` is cancelled (never, for a token of no
// scope). Throws std::bad_alloc.
template <class F>
DoneCase<std::decay_t<F>> on_cancel(const CancelToken& token, F&& handler) {
  detail::ChannelCore* core = detail::cancel_done_channel(token);
  return DoneCase<std::decay_t<F>>(core != nullptr ? core : detail::never_closed_channel(), std::forward<F>(handler));
}

namespace detail {
struct NoHandler {
  void operator()() const noexcept {}
};
}  // namespace detail

// Case constructors. The channel handle must outlive the select call (it
// does when the cases are written inline, as above).
template <class T, class F>
RecvCase<T, std::decay_t<F>> on_recv(const Channel<T>& ch, F&& handler) {
  return RecvCase<T, std::decay_t<F>>(ch, std::forward<F>(handler));
}
template <class T, class U, class F>
SendCase<T, std::decay_t<F>> on_send(const Channel<T>& ch, U&& value, F&& handler) {
  return SendCase<T, std::decay_t<F>>(ch, T(std::forward<U>(value)), std::forward<F>(handler));
}
template <class T, class U>
SendCase<T, detail::NoHandler> on_send(const Channel<T>& ch, U&& value) {
  return SendCase<T, detail::NoHandler>(ch, T(std::forward<U>(value)), detail::NoHandler{});
}
template <class F>
DefaultCase<std::decay_t<F>> on_default(F&& handler) {
  return DefaultCase<std::decay_t<F>>(std::forward<F>(handler));
}
// A case that commits once `d` has passed (measured from when the case is
// built) and no other case committed first. Zero or negative: commits at
// once unless another case is ready now (a default with a name).
template <class Rep, class Period, class F>
AfterCase<std::decay_t<F>> after(const std::chrono::duration<Rep, Period>& d, F&& handler) {
  return AfterCase<std::decay_t<F>>(detail::deadline_after(d), std::forward<F>(handler));
}
// As after(), at a time point (any clock).
template <class Clock, class Duration, class F>
AfterCase<std::decay_t<F>> after_until(const std::chrono::time_point<Clock, Duration>& t, F&& handler) {
  return AfterCase<std::decay_t<F>>(detail::deadline_at(t), std::forward<F>(handler));
}

namespace detail {

template <bool Priority, class... Cases, std::size_t... I>
std::size_t run_select(std::index_sequence<I...>, Cases&... cases) {
  constexpr std::size_t n_default = (std::size_t{Cases::is_default} + ... + 0);
  static_assert(n_default <= 1, "weft::select: at most one on_default case");
  constexpr std::size_t n_after = (std::size_t{Cases::is_after} + ... + 0);
  constexpr std::size_t n = sizeof...(Cases) - n_default - n_after;
  std::array<SelectCase, n == 0 ? 1 : n> erased{};
  std::array<std::size_t, n == 0 ? 1 : n> position{};
  std::size_t k = 0;
  std::size_t default_position = 0;
  std::size_t after_position = 0;
  Nanos deadline = k_never;
  auto collect = [&](auto& c, std::size_t pos) {
    using Case = std::remove_reference_t<decltype(c)>;
    if constexpr (Case::is_default) {
      default_position = pos;
    } else if constexpr (Case::is_after) {
      // The earliest enabled one wins; the first among equals.
      if (c.enabled() && c.deadline() < deadline) {
        deadline = c.deadline();
        after_position = pos;
      }
    } else if (c.enabled()) {  // a disabled case is as if it were not there
      c.fill(erased[k]);
      position[k++] = pos;
    }
  };
  (collect(cases, I), ...);
  // k: the enabled channel cases. None, with no default and no enabled
  // after(): select_cases parks until cancelled (Go's empty select).
  const int r = select_cases(erased.data(), k, n_default == 1, Priority, deadline);
  const std::size_t fired = r == k_select_default      ? default_position
                            : r == k_select_timed_out ? after_position
                                                      : position[static_cast<std::size_t>(r)];
  auto fire = [&](auto& c, std::size_t pos) {
    if (pos != fired) return;
    if constexpr (std::remove_reference_t<decltype(c)>::is_default ||
                  std::remove_reference_t<decltype(c)>::is_after) {
      c.fire();
    } else {
      c.fire(erased[static_cast<std::size_t>(r)]);
    }
  };
  (fire(cases, I), ...);
  return fired;
}

}  // namespace detail

// Random choice among ready cases (Go). Blocking as described at the top.
// Throws weft::FiberCancelled if the runtime cancels the parked fiber at
// shutdown; whatever a handler throws propagates after the commit.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::select needs at least one case");
  return detail::run_select<false>(std::index_sequence_for<Cases...>{}, cases...);
}

// First ready case in argument order (core.async's :priority).
template <class... Cases>
std::size_t select(priority_t, Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::select needs at least one case");
  return detail::run_select<true>(std::index_sequence_for<Cases...>{}, cases...);
}

}  // namespace weft
