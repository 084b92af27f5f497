// weft::Timer (Go's time.Timer: one firing, with stop() and reset()) and
// weft::after_func (Go's time.AfterFunc: run a function in its own fiber
// after a delay).
#pragma once

#include "detail/config.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "cancel.hpp"
#include "channel.hpp"
#include "detail/deadline.hpp"
#include "errors.hpp"
#include "runtime.hpp"
#include "select.hpp"

namespace weft {

namespace detail {
struct OneShotTimer;
WEFT_API OneShotTimer* one_shot_create(ChannelCore* channel);  // not armed; throws std::bad_alloc
WEFT_API void one_shot_arm(OneShotTimer* t, Nanos deadline);   // t idle; throws std::bad_alloc
WEFT_API bool one_shot_stop(OneShotTimer* t) noexcept;         // true: disarmed before it fired
WEFT_API void one_shot_destroy(OneShotTimer* t) noexcept;      // stops it first
}  // namespace detail

// Sends the time once on channel() when `d` has passed (Go's time.NewTimer).
// The channel buffers that one value, so the timer never waits for a
// receiver. Uses the process's timer heap: a Timer costs nothing while it
// is not armed, and an armed one counts as an armed timer for deadlock
// detection (a fiber waiting on it is not deadlocked).
//
//   weft::Timer t(std::chrono::milliseconds(50));
//   weft::select(weft::on_recv(jobs, handle), weft::on_recv(t.channel(), give_up));
//
// stop() disarms it and says whether that prevented the firing:
//   true   the timer was armed and now never sends (this firing);
//   false  it had already fired (its value is in the channel or was
//          received; it is never lost) or was stopped before.
// reset(d) re-arms it to fire once `d` from now, after stop() and after
// discarding a value of an earlier firing that nobody received, so that a
// receive after reset() gets only the new firing. It returns what stop()
// returned: whether the timer was still armed (Go's Reset).
//
// Threading: construction, stop(), reset() and destruction by one owner at
// a time; channel() handles may be used anywhere (a fiber or thread
// receiving while the owner resets gets the old value or the new one, never
// both for one reset). Never parks or blocks (stop() may spin briefly while
// the timer's value is being sent). Do not close the channel: a timer that
// fires into a closed channel sends nothing.
class Timer {
 public:
  using Tick = std::chrono::steady_clock::time_point;

  // Armed to fire once `d` has passed (zero or negative: at once). Throws
  // std::bad_alloc.
  template <class Rep, class Period>
  explicit Timer(const std::chrono::duration<Rep, Period>& d) : channel_(1, "weft::Timer") {
    timer_ = detail::one_shot_create(channel_.core("Timer"));
    try {
      detail::one_shot_arm(timer_, detail::deadline_after(d));
    } catch (...) {
      detail::one_shot_destroy(timer_);
      throw;
    }
  }
  // Stops the timer (no value is sent after the destructor returns).
  ~Timer() { detail::one_shot_destroy(timer_); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // The channel the time is sent on. Copy the handle to use it elsewhere;
  // it outlives the Timer.
  Channel<Tick>& channel() noexcept { return channel_; }

  // See above. Never parks.
  bool stop() noexcept { return detail::one_shot_stop(timer_); }

  // See above. Never parks. Throws std::bad_alloc (the timer is then
  // stopped).
  template <class Rep, class Period>
  bool reset(const std::chrono::duration<Rep, Period>& d) {
    const bool was_armed = stop();
    static_cast<void>(channel_.try_recv());  // a stale value from the firing we replace
    detail::one_shot_arm(timer_, detail::deadline_after(d));
    return was_armed;
  }

 private:
  Channel<Tick> channel_;
  detail::OneShotTimer* timer_ = nullptr;
};

namespace detail {
// Shared by an after_func's handle and its fiber: who decides first, stop()
// or the fiber once the delay has passed.
struct AfterFuncState {
  static constexpr std::uint32_t k_pending = 0;
  static constexpr std::uint32_t k_started = 1;  // f runs or ran
  static constexpr std::uint32_t k_stopped = 2;  // stop() won, or the fiber was cancelled
  std::atomic<std::uint32_t> phase{k_pending};
  Channel<std::monostate> stop_signal{0, "weft::after_func stop"};  // closed by stop(): the fiber leaves early

  bool decide(std::uint32_t outcome) noexcept {
    std::uint32_t expected = k_pending;
    // acq_rel: one CAS decides; nothing else is published through it (f's
    // captures were published by the spawn). relaxed on failure.
    return phase.compare_exchange_strong(expected, outcome, std::memory_order_acq_rel, std::memory_order_relaxed);
  }
};

template <class F>
auto after_func_body(std::shared_ptr<AfterFuncState> state, Nanos deadline, F f) {
  return [state = std::move(state), deadline, f = std::move(f)]() mutable {
    try {
      weft::select(weft::on_recv(state->stop_signal, [](std::optional<std::monostate>) {}),
                   weft::after_until(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline)), [] {}));
    } catch (const Cancelled&) {
      state->decide(AfterFuncState::k_stopped);  // f will not run: stop() then says false
      return;
    } catch (const FiberCancelled&) {
      state->decide(AfterFuncState::k_stopped);
      throw;  // shutdown: let the fiber end as the runtime expects
    }
    if (state->decide(AfterFuncState::k_started)) f();
  };
}
}  // namespace detail

// The handle after_func returns. Dropping it does not stop anything.
class AfterFunc {
 public:
  explicit AfterFunc(std::shared_ptr<detail::AfterFuncState> state) noexcept : state_(std::move(state)) {}

  // Prevents f from running if it has not started: true if this call
  // prevented it; false if f has started (or finished), or the call was
  // already stopped or cancelled. Never parks; any thread.
  bool stop() noexcept {
    if (!state_->decide(detail::AfterFuncState::k_stopped)) return false;
    state_->stop_signal.close();  // the waiting fiber leaves at once
    return true;
  }

 private:
  std::shared_ptr<detail::AfterFuncState> state_;
};

// Runs f() in a fiber of its own once `d` has passed (Go's time.AfterFunc),
// unless stop() on the returned handle comes first. From a fiber: the fiber
// is spawned at once on the caller's runtime, in the caller's cancellation
// scope, and waits parked (a fiber's stack, no thread) for the delay;
// cancelling that scope before the delay has passed prevents f. From a
// plain thread, pass the runtime. What f throws goes to the
// unhandled-exception handler (errors.hpp), as for a detached fiber.
// Throws std::bad_alloc, and what weft::go / Runtime::spawn throw (no
// runtime, a stopped runtime).
template <class Rep, class Period, class F>
AfterFunc after_func(const std::chrono::duration<Rep, Period>& d, F&& f) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "weft::after_func: f takes no arguments");
  auto state = std::make_shared<detail::AfterFuncState>();
  go(detail::after_func_body(state, detail::deadline_after(d), std::decay_t<F>(std::forward<F>(f)))).detach();
  return AfterFunc(std::move(state));
}
template <class Rep, class Period, class F>
AfterFunc after_func(Runtime& rt, const std::chrono::duration<Rep, Period>& d, F&& f) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "weft::after_func: f takes no arguments");
  auto state = std::make_shared<detail::AfterFuncState>();
  rt.spawn(detail::after_func_body(state, detail::deadline_after(d), std::decay_t<F>(std::forward<F>(f)))).detach();
  return AfterFunc(std::move(state));
}

}  // namespace weft
