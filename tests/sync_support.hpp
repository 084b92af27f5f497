// Helpers shared by the channel, select, sync, race and deadlock tests.
#pragma once

#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "support.hpp"

namespace weft_test {

// ThreadSanitizer maps about 1 MiB of trace per live fiber: tests that keep
// very many fibers alive at once shrink further under it.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool k_thread_sanitizer = true;
#else
inline constexpr bool k_thread_sanitizer = false;
#endif

// Spins (giving way each time) until pred() holds, and returns true. The
// conditions waited for hold within milliseconds unless something is broken;
// so that a broken one fails the test instead of hanging it, after 30 s this
// records a failed check and returns false (callers then carry on, usually
// into more failed checks).
template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL_CHECK("spin_until: the condition still does not hold after 30 s");
      return false;
    }
    pause();
  }
  return true;
}

// Senders / receivers parked on a channel right now (fibers and plain threads).
template <class T>
std::size_t waiting_senders(const weft::Channel<T>& ch) {
  return weft::detail::channel_waiting_senders(ch.core("test"));
}
template <class T>
std::size_t waiting_receivers(const weft::Channel<T>& ch) {
  return weft::detail::channel_waiting_receivers(ch.core("test"));
}

// Where a piece of a test runs: as a fiber of the runtime, or on a plain thread.
enum class Side { fiber, thread };
inline constexpr Side k_sides[] = {Side::fiber, Side::thread};
inline const char* side_name(Side s) { return s == Side::fiber ? "fiber" : "thread"; }

// Runs fn() as a fiber of `rt`, or on a new plain thread. The plain thread
// holds a weft::ExternalWaker from before it starts until fn() has returned:
// it may wake parked fibers from outside weft, so the deadlock detector must
// not report the fibers it will wake. join() waits for fn() (and rethrows a
// fiber's exception); the destructor joins too.
class Actor {
 public:
  template <class F>
  Actor(weft::Runtime& rt, Side side, F fn) {
    if (side == Side::fiber) {
      fiber_ = rt.spawn(std::move(fn));
    } else {
      thread_ = std::thread([waker = weft::ExternalWaker(), fn = std::move(fn)]() mutable {
        fn();
        weft::ExternalWaker released = std::move(waker);  // dies here, before the thread ends
      });
    }
  }
  Actor(Actor&&) = default;
  Actor& operator=(Actor&&) = delete;
  ~Actor() {
    try {
      join();
    } catch (...) {
    }
  }

  void join() {
    if (fiber_.joinable()) fiber_.join();
    if (thread_.joinable()) thread_.join();
  }

 private:
  weft::JoinHandle<void> fiber_;
  std::thread thread_;
};

// Runs fn through rt.block_on(); the what() of the weft::Deadlock it threw,
// or nullopt if it returned normally.
template <class F>
std::optional<std::string> deadlock_message(weft::Runtime& rt, F fn) {
  try {
    rt.block_on(std::move(fn));
  } catch (const weft::Deadlock& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace weft_test
