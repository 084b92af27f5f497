// A helper shared by the tests of cancellable waits.
#pragma once

#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace weft_test {

// Runs `wait` in a fiber inside a CancelScope, cancels the scope once the
// fiber is parked (`parked()` says when; given up to 10 s), and checks that
// the wait threw weft::Cancelled and did not return.
template <class Wait, class Parked>
void cancelled_while_parked(weft::Runtime& rt, Wait wait, Parked parked) {
  using Clock = std::chrono::steady_clock;
  std::atomic<bool> threw{false};
  std::atomic<bool> returned{false};
  weft::CancelToken token;
  std::atomic<bool> ready{false};
  auto h = rt.spawn([&] {
    weft::CancelScope scope;
    token = scope.token();
    ready.store(true);
    try {
      wait();
      returned.store(true);
    } catch (const weft::Cancelled&) {
      threw.store(true);
    }
  });
  while (!ready.load()) std::this_thread::yield();
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (!parked() && Clock::now() < until) std::this_thread::yield();
  REQUIRE(parked());
  token.cancel();
  REQUIRE(h.join_for(std::chrono::seconds(10)));
  h.join();
  CHECK(threw.load());
  CHECK_FALSE(returned.load());
}

}  // namespace weft_test
