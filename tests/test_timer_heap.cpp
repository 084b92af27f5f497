// TimerHeap (lib/time/timer_heap.hpp), tested directly: the driver hand-off;
// the firing order; cancel against a running callback; and arm/cancel/fire
// from three threads at once.
// Regression test: a timer taken out of the heap to fire still counted as
// armed while its callback ran, though the heap already published "no
// deadline". A sleeping worker then claimed the driver role, found no
// deadline, released the role, saw the timer still counted and kicked a
// driver again (itself, often), round and round for as long as the batch
// of callbacks ran.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "time/timer_heap.hpp"

namespace {

// A timer whose callback waits until the test lets it finish.
struct HeldTimer : weft::detail::Timer {
  HeldTimer() noexcept : Timer(&fire_held) {}
  std::atomic<bool> running{false};
  std::atomic<bool> release{false};
  static weft::detail::Nanos fire_held(Timer* t, weft::detail::Nanos) noexcept {
    auto* self = static_cast<HeldTimer*>(t);
    self->running.store(true);
    while (!self->release.load()) std::this_thread::yield();
    return weft::detail::k_never;
  }
};

}  // namespace

TEST_CASE("timer heap: a timer whose callback is running is not armed, and there is no driver role to take" *
          doctest::timeout(60)) {
  weft::detail::TimerHeap heap;  // its own heap: no runtime's workers drive it
  HeldTimer timer;
  heap.arm(&timer, weft::detail::now_ns());  // due at once
  CHECK(heap.armed() == 1);
  std::thread firer([&] { heap.fire_due(true); });
  while (!timer.running.load()) std::this_thread::yield();
  // The callback runs: nothing is left in the heap to drive.
  CHECK(heap.earliest() == weft::detail::k_never);
  CHECK(heap.armed() == 0);
  std::atomic<std::uint32_t> word{0};
  CHECK_FALSE(heap.try_claim_driver(&word));
  CHECK(word.load() == 0);  // nobody was kicked
  timer.release.store(true);
  firer.join();
  CHECK(heap.armed() == 0);
  CHECK_FALSE(heap.cancel(&timer));  // fired, idle
}

namespace {

// A timer that records the order it fired in.
struct OrderTimer : weft::detail::Timer {
  OrderTimer() noexcept : Timer(&fire_order) {}
  std::vector<OrderTimer*>* log = nullptr;
  std::size_t armed_as = 0;  // its place in the arming order
  static weft::detail::Nanos fire_order(Timer* t, weft::detail::Nanos) noexcept {
    auto* self = static_cast<OrderTimer*>(t);
    self->log->push_back(self);  // capacity reserved by the test
    return weft::detail::k_never;
  }
};

std::uint64_t next_random(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

}  // namespace

// The heap's order, through arm, cancel and re-arm in a random order: every
// timer still armed fires once, by deadline, and timers with the same
// deadline fire in the order they were (last) armed. Many ties on purpose.
TEST_CASE("timer heap: timers fire by deadline, ties in arming order, after random cancels and re-arms" *
          doctest::timeout(60)) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    weft::detail::TimerHeap heap;
    std::uint64_t rng = seed * 0x9E3779B97F4A7C15ull;
    constexpr std::size_t n = 3000;
    std::vector<OrderTimer> timers(n);
    std::vector<OrderTimer*> log;
    log.reserve(n);
    std::vector<bool> armed(n, false);
    std::size_t arm_count = 0;
    const weft::detail::Nanos past = weft::detail::now_ns() - 1'000'000'000;  // all due
    for (std::size_t step = 0; step < 3 * n; ++step) {
      const std::size_t i = next_random(rng) % n;
      if (!armed[i]) {
        timers[i].log = &log;
        timers[i].armed_as = arm_count++;
        heap.arm(&timers[i], past + static_cast<weft::detail::Nanos>(next_random(rng) % 64));
        armed[i] = true;
      } else if (next_random(rng) % 3 == 0) {
        CHECK(heap.cancel(&timers[i]));
        armed[i] = false;
      }
    }
    const std::size_t still = static_cast<std::size_t>(std::count(armed.begin(), armed.end(), true));
    CHECK(heap.armed() == still);
    CHECK(heap.fire_due(true) == still);
    REQUIRE(log.size() == still);
    for (std::size_t k = 1; k < log.size(); ++k) {
      const bool ordered = log[k - 1]->deadline < log[k]->deadline ||
                           (log[k - 1]->deadline == log[k]->deadline && log[k - 1]->armed_as < log[k]->armed_as);
      CHECK(ordered);
    }
    for (OrderTimer* t : log) CHECK(armed[static_cast<std::size_t>(t - timers.data())]);
    CHECK(heap.armed() == 0);
    CHECK(heap.earliest() == weft::detail::k_never);
    for (OrderTimer& t : timers) CHECK_FALSE(heap.cancel(&t));  // all idle now
  }
}

// A cancel that meets a running callback waits for it, then reports "fired"
// (false) for a one-shot timer; for a periodic one, it removes what the
// callback re-armed and reports true.
TEST_CASE("timer heap: cancel waits for a running callback" * doctest::timeout(60)) {
  for (const bool periodic : {false, true}) {
    CAPTURE(periodic);
    weft::detail::TimerHeap heap;
    struct Held : weft::detail::Timer {
      explicit Held(bool p) noexcept : Timer(&fire_held), periodic(p) {}
      bool periodic;
      std::atomic<bool> running{false};
      std::atomic<bool> release{false};
      std::atomic<int> fired{0};
      static weft::detail::Nanos fire_held(Timer* t, weft::detail::Nanos now) noexcept {
        auto* self = static_cast<Held*>(t);
        self->running.store(true);
        while (!self->release.load()) std::this_thread::yield();
        self->fired.fetch_add(1);
        return self->periodic ? now + 3'600'000'000'000 : weft::detail::k_never;  // an hour on
      }
    } timer(periodic);
    heap.arm(&timer, weft::detail::now_ns());
    std::thread firer([&] { heap.fire_due(true); });
    while (!timer.running.load()) std::this_thread::yield();
    std::atomic<bool> cancelled{false};
    std::atomic<int> result{-1};
    std::thread canceller([&] {
      result.store(heap.cancel(&timer) ? 1 : 0);
      cancelled.store(true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK_FALSE(cancelled.load());  // still waiting for the callback
    timer.release.store(true);
    firer.join();
    canceller.join();
    CHECK(timer.fired.load() == 1);
    CHECK(result.load() == (periodic ? 1 : 0));
    CHECK(heap.armed() == 0);
    CHECK(heap.earliest() == weft::detail::k_never);
  }
}

// Two threads arm and cancel their own timers while a third fires due ones:
// every arming ends exactly once, fired or cancelled (cancel true), and
// nothing stays armed.
TEST_CASE("timer heap: arming, cancelling and firing from three threads lose and repeat nothing" *
          doctest::timeout(120)) {
  weft::detail::TimerHeap heap;
  struct Counted : weft::detail::Timer {
    Counted() noexcept : Timer(&fire_counted) {}
    std::atomic<std::uint64_t> fired{0};
    static weft::detail::Nanos fire_counted(Timer* t, weft::detail::Nanos) noexcept {
      static_cast<Counted*>(t)->fired.fetch_add(1, std::memory_order_relaxed);
      return weft::detail::k_never;
    }
  };
  constexpr std::size_t per_thread = 64;
  constexpr int rounds = 4000;
  std::vector<Counted> timers(2 * per_thread);
  std::atomic<bool> done{false};
  std::thread firer([&] {
    while (!done.load()) heap.fire_due(true);
  });
  std::uint64_t cancelled_total[2] = {0, 0}, armed_total[2] = {0, 0};
  auto run = [&](int who) {
    std::uint64_t rng = 0x1234567ull + static_cast<std::uint64_t>(who);
    Counted* mine = timers.data() + static_cast<std::size_t>(who) * per_thread;
    for (int r = 0; r < rounds; ++r) {
      Counted& t = mine[next_random(rng) % per_thread];
      if (heap.cancel(&t)) ++cancelled_total[who];
      // Idle now (fired or cancelled): arm it again, due within ~50 us.
      heap.arm(&t, weft::detail::now_ns() + static_cast<weft::detail::Nanos>(next_random(rng) % 50'000));
      ++armed_total[who];
    }
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  while (heap.armed() != 0) std::this_thread::yield();  // the firer drains the rest
  done.store(true);
  firer.join();
  std::uint64_t fired = 0;
  for (Counted& t : timers) {
    CHECK_FALSE(heap.cancel(&t));
    fired += t.fired.load();
  }
  CHECK(fired + cancelled_total[0] + cancelled_total[1] == armed_total[0] + armed_total[1]);
  CHECK(heap.earliest() == weft::detail::k_never);
}
