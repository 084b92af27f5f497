// TimerHeap (lib/time/timer_heap.hpp), tested directly: the driver hand-off;
// the firing order; cancel against a running callback; arm/cancel/fire
// from three threads at once, in one shard and in several; and the
// earliest deadline across shards while one shard's earliest timer goes
// and another shard gains one.
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
#include "weft/runtime.hpp"
#include "weft/time.hpp"

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
namespace {

// A timer that counts its firings.
struct CountedTimer : weft::detail::Timer {
  CountedTimer() noexcept : Timer(&fire_counted) {}
  std::atomic<std::uint64_t> fired{0};
  static weft::detail::Nanos fire_counted(Timer* t, weft::detail::Nanos) noexcept {
    static_cast<CountedTimer*>(t)->fired.fetch_add(1, std::memory_order_relaxed);
    return weft::detail::k_never;
  }
};

// Two threads cancel and re-arm their own timers at random while a third
// fires whatever is due; every arm ends in exactly one firing or one
// cancel. `shards`: the two armers arm into shards 1 and 2 (as two
// workers), and the first also fires its own shard between arms;
// otherwise all three share shard 0 (plain threads).
void arm_cancel_fire_from_three_threads(bool shards) {
  using weft::detail::TimerHeap;
  TimerHeap heap;
  constexpr std::size_t per_thread = 64;
  constexpr int rounds = 4000;
  std::vector<CountedTimer> timers(2 * per_thread);
  std::atomic<bool> done{false};
  std::thread firer([&] {
    while (!done.load()) heap.fire_due(true);
  });
  std::uint64_t cancelled_total[2] = {0, 0}, armed_total[2] = {0, 0};
  auto run = [&](int who) {
    if (shards) TimerHeap::set_thread_shard(static_cast<std::uint32_t>(who) + 1);
    std::uint64_t rng = 0x1234567ull + static_cast<std::uint64_t>(who);
    CountedTimer* mine = timers.data() + static_cast<std::size_t>(who) * per_thread;
    for (int r = 0; r < rounds; ++r) {
      CountedTimer& t = mine[next_random(rng) % per_thread];
      if (heap.cancel(&t)) ++cancelled_total[who];
      // Idle now (fired or cancelled): arm it again, due within ~50 us.
      heap.arm(&t, weft::detail::now_ns() + static_cast<weft::detail::Nanos>(next_random(rng) % 50'000));
      ++armed_total[who];
      if (shards && who == 0 && r % 8 == 0) heap.fire_own_due();
    }
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  while (heap.armed() != 0) std::this_thread::yield();  // the firer drains the rest
  done.store(true);
  firer.join();
  std::uint64_t fired = 0;
  for (CountedTimer& t : timers) {
    CHECK_FALSE(heap.cancel(&t));
    fired += t.fired.load();
  }
  CHECK(fired + cancelled_total[0] + cancelled_total[1] == armed_total[0] + armed_total[1]);
  CHECK(heap.earliest() == weft::detail::k_never);
}

}  // namespace

TEST_CASE("timer heap: arming, cancelling and firing from three threads lose and repeat nothing" *
          doctest::timeout(120)) {
  arm_cancel_fire_from_three_threads(false);
}

// Timers armed from three shards: earliest() is the minimum over all of
// them whoever armed it, cancels from another thread find each timer in its
// own shard, and fire_due fires every shard; fire_own_due fires the calling
// thread's shard (and shard 0, which belongs to every worker) but leaves
// another shard's timers that are due but not yet k_foreign_late_ns late.
TEST_CASE("timer heap: shards: earliest over all of them, cancel from anywhere, who fires what" *
          doctest::timeout(60)) {
  using weft::detail::Nanos;
  using weft::detail::TimerHeap;
  TimerHeap heap;
  std::vector<CountedTimer> timers(30);
  const Nanos now = weft::detail::now_ns();
  const Nanos far = now + 3'600'000'000'000;  // an hour from now
  auto arm_in = [&](std::uint32_t shard, std::size_t first, Nanos base) {
    std::thread([&, shard, first, base] {
      TimerHeap::set_thread_shard(shard);
      for (std::size_t i = first; i < first + 10; ++i) heap.arm(&timers[i], base + static_cast<Nanos>(i));
    }).join();
  };
  arm_in(0, 0, far);    // plain threads' shard
  arm_in(1, 10, far);   // a worker's
  arm_in(2, 20, far - 100);  // another worker's, the earliest
  CHECK(heap.armed() == 30);
  CHECK(heap.earliest() == far - 100 + 20);
  // This thread is in shard 0; it cancels shard 2's earliest timers.
  for (std::size_t i = 20; i < 25; ++i) CHECK(heap.cancel(&timers[i]));
  CHECK(heap.earliest() == far - 100 + 25);
  for (std::size_t i = 25; i < 30; ++i) CHECK(heap.cancel(&timers[i]));
  CHECK(heap.earliest() == far + 0);  // shard 0's first
  CHECK(heap.armed() == 20);
  // Nothing is due: fire_due fires nothing.
  CHECK(heap.fire_due(true) == 0);
  for (std::size_t i = 0; i < 20; ++i) CHECK(heap.cancel(&timers[i]));
  CHECK(heap.earliest() == weft::detail::k_never);

  // Due timers: 3 in shard 1 and 2 in shard 0, due now; 4 in shard 2,
  // due 2 ms from now. The shard-1 thread waits for shard 2's deadline and
  // fires at once: shard 2's are then due but not k_foreign_late_ns late
  // (unless the thread was descheduled that long: then they are fired too).
  const Nanos due = weft::detail::now_ns();
  const Nanos due2 = due + 2'000'000;
  std::thread([&] {
    TimerHeap::set_thread_shard(1);
    for (std::size_t i = 0; i < 3; ++i) heap.arm(&timers[i], due);
  }).join();
  std::thread([&] {
    TimerHeap::set_thread_shard(2);
    for (std::size_t i = 3; i < 7; ++i) heap.arm(&timers[i], due2);
  }).join();
  for (std::size_t i = 7; i < 9; ++i) heap.arm(&timers[i], due);  // shard 0
  std::size_t fired_by_one = 0;
  std::thread([&] {
    TimerHeap::set_thread_shard(1);
    while (weft::detail::now_ns() < due2) {
    }
    fired_by_one = heap.fire_own_due();
  }).join();
  CHECK((fired_by_one == 5 || fired_by_one == 9));
  for (std::size_t i = 0; i < 3; ++i) CHECK(timers[i].fired.load() == 1);
  for (std::size_t i = 7; i < 9; ++i) CHECK(timers[i].fired.load() == 1);
  CHECK(heap.fire_due(true) == 9 - fired_by_one);
  for (std::size_t i = 0; i < 9; ++i) CHECK(timers[i].fired.load() == 1);
  CHECK(heap.armed() == 0);
  CHECK(heap.earliest() == weft::detail::k_never);
}

// The store-buffering pair that keeps earliest() from running past an
// armed deadline (timer_heap.cpp): one thread cancels shard 2's earliest
// timer (so the minimum rises) while another arms, in shard 1, a timer
// later than that one but earlier than everything else. Whichever way they
// interleave, earliest() must come out at the new timer's deadline.
TEST_CASE("timer heap: shards: a cancel that raises the earliest deadline never skips a new arm" *
          doctest::timeout(120)) {
  using weft::detail::Nanos;
  using weft::detail::TimerHeap;
  TimerHeap heap;
  const Nanos base = weft::detail::now_ns() + 3'600'000'000'000;  // never due here
  CountedTimer first, second, fresh;
  std::atomic<int> go{0};
  std::atomic<bool> stop{false};
  constexpr int rounds = 20'000;
  std::thread armer([&] {
    TimerHeap::set_thread_shard(1);
    for (int r = 1; r <= rounds; ++r) {
      while (go.load(std::memory_order_acquire) != r) {
        if (stop.load()) return;
      }
      heap.arm(&fresh, base + 200);
      go.store(-r, std::memory_order_release);
    }
  });
  TimerHeap::set_thread_shard(2);
  int bad = 0;
  for (int r = 1; r <= rounds; ++r) {
    heap.arm(&first, base + 100);
    heap.arm(&second, base + 300);
    go.store(r, std::memory_order_release);  // the armer goes...
    CHECK(heap.cancel(&first));              // ...while the minimum rises
    while (go.load(std::memory_order_acquire) != -r) {
    }
    if (heap.earliest() != base + 200) ++bad;
    CHECK(heap.cancel(&fresh));
    CHECK(heap.cancel(&second));
  }
  stop.store(true);
  armer.join();
  TimerHeap::set_thread_shard(0);
  CHECK(bad == 0);
  CHECK(heap.earliest() == weft::detail::k_never);
}

TEST_CASE("timer heap: shards: arming, cancelling and firing from three threads lose and repeat nothing" *
          doctest::timeout(120)) {
  arm_cancel_fire_from_three_threads(true);
}

namespace {
// For the next test: the hook holds the raiser between its read of the
// shards and its CAS until the other shard's removal is done.
std::atomic<bool> g_raiser_read{false}, g_other_removed{false};
thread_local bool t_hold_raise = false;
void hold_raise() noexcept {
  if (!t_hold_raise) return;
  t_hold_raise = false;  // once
  g_raiser_read.store(true);
  while (!g_other_removed.load()) std::this_thread::yield();
}
}  // namespace

// A deadline that no armed timer holds, left in earliest_ while every worker
// sleeps and nobody drives: a later arm from a plain thread (here a Ticker's)
// lowers nothing, and used to kick nobody, so it never fired. The stale
// deadline is made as it arises in a run: two shards' earliest timers
// removed at once, the first remover raising earliest_ to the second
// shard's deadline that the second remover is taking out (and, seeing
// earliest_ still below it, leaves to the first). The test seam holds the
// first remover in that window. Both workers are kept busy meanwhile (so
// the arms' kicks make no driver) and then go to sleep with nothing armed.
TEST_CASE("timer heap: a plain thread's arm behind a deadline nothing holds still gets its timer fired" *
          doctest::timeout(60)) {
  using weft::detail::Nanos;
  using weft::detail::TimerHeap;
  TimerHeap& heap = weft::detail::timers();
  weft::Runtime rt({.workers = 2});
  std::atomic<int> spinning{0};
  std::atomic<bool> release{false};
  std::vector<weft::JoinHandle<void>> spinners;
  for (int i = 0; i < 2; ++i) {
    spinners.push_back(rt.spawn([&] {
      spinning.fetch_add(1);
      while (!release.load()) {
      }
    }));
  }
  while (spinning.load() != 2) std::this_thread::yield();

  CountedTimer first, second;
  const Nanos base = weft::detail::now_ns() + 300'000'000;  // 300 ms: past before the Ticker starts
  std::thread([&] {
    TimerHeap::set_thread_shard(1);
    heap.arm(&first, base);
    TimerHeap::set_thread_shard(2);
    heap.arm(&second, base + 1);
  }).join();
  g_raiser_read = false;
  g_other_removed = false;
  weft::detail::testing::in_raise_earliest.store(&hold_raise);
  std::thread raiser([&] {
    t_hold_raise = true;
    CHECK(heap.cancel(&first));
  });
  std::thread other([&] {
    while (!g_raiser_read.load()) std::this_thread::yield();
    CHECK(heap.cancel(&second));
    g_other_removed = true;
  });
  raiser.join();
  other.join();
  weft::detail::testing::in_raise_earliest.store(nullptr);
  release = true;
  for (auto& h : spinners) h.join();
  // The stale deadline passes while both workers sleep, nothing armed.
  while (weft::detail::now_ns() < base + 50'000'000) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(heap.armed() == 0);
  REQUIRE(heap.earliest() == base + 1);  // the setup worked: a deadline nothing holds

  weft::Ticker ticker(std::chrono::milliseconds(1));
  CHECK(ticker.channel().recv_for(std::chrono::seconds(5)).ok());
}
