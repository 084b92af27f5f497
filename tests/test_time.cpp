// Time: sleeps, timeout channels, select's after(), timed channel and sync
// operations (from fibers and from plain threads), Ticker, the timer heap's
// bookkeeping (metrics().armed_timers), CPU use while waiting on timers,
// deadlock detection with timers, and bad arguments.
//
// Timing assertions are one-sided wherever the API promises something: a
// timed wait never returns "timed out" before its deadline. Upper bounds
// appear only where a behaviour needs one (a wait that must end, a poll that
// must not spin) and are generous: the test machines are small and noisy.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::Actor;
using weft_test::k_sides;
using weft_test::deadlock_message;
using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::Side;
using weft_test::side_name;
using weft_test::spin_until;
using weft_test::waiting_receivers;
using weft_test::waiting_senders;

using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

// A timeout meant to expire.
constexpr auto k_short = 30ms;
// A timeout meant not to expire: the wait is ended by the other side long
// before. If the wake-up is broken the wait still ends (and the check on its
// status fails) instead of hanging the test.
constexpr auto k_long = 10s;
// Deadlines on a clock other than steady_clock are converted through "how far
// from now" when the call starts, which can fall due a hair earlier than the
// same instant measured on steady_clock.
constexpr auto k_clock_slack = 2ms;

Clock::duration since(Clock::time_point t0) { return Clock::now() - t0; }

long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

std::size_t armed_timers(const weft::Runtime& rt) { return rt.metrics().armed_timers; }

// Waits up to `limit` for no timer to be armed in the process (a timer that
// has just fired may still be counted for a moment while it wakes its
// fiber). A timer left armed after its wait ended records a failed check and
// returns false.
bool no_timers_within(const weft::Runtime& rt, Clock::duration limit = 2s) {
  const auto deadline = Clock::now() + limit;
  while (armed_timers(rt) != 0) {
    if (Clock::now() > deadline) {
      FAIL_CHECK("timers still armed after " << ms(limit) << " ms: " << armed_timers(rt));
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Runs fn() as a fiber of rt or on a plain thread, and waits for it.
template <class F>
void on_side(weft::Runtime& rt, Side side, F fn) {
  Actor a(rt, side, std::move(fn));
  a.join();
}

// Sleeps the fiber or the thread.
void nap(Clock::duration d) {
  if (weft::this_fiber::in_fiber()) {
    weft::this_fiber::sleep_for(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

// A well-spread pseudo-random number for i (splitmix64).
std::uint64_t mix(std::uint64_t i) {
  std::uint64_t z = i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

// ---- Sleeping ----

TEST_CASE("time: sleeping fibers wake in deadline order, never before their deadline" * doctest::timeout(300)) {
  // Spawned in an order unrelated to their deadlines, 30 ms apart.
  constexpr int k_fibers = 8;
  constexpr int rank[k_fibers] = {5, 2, 7, 0, 3, 6, 1, 4};
  constexpr auto spacing = 30ms;
  for (std::size_t workers : k_worker_counts) {
    for (bool use_sleep_for : {false, true}) {
      CAPTURE(workers);
      CAPTURE(use_sleep_for);
      weft::Runtime rt({.workers = workers});
      std::atomic<int> next{0};
      int order[k_fibers];
      bool early[k_fibers];
      const auto base = Clock::now() + 20ms;
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < k_fibers; ++i) {
        hs.push_back(rt.spawn([&, i] {
          const auto deadline = base + rank[i] * spacing;
          if (use_sleep_for) {
            weft::this_fiber::sleep_for(deadline - Clock::now());
          } else {
            weft::this_fiber::sleep_until(deadline);
          }
          early[i] = Clock::now() < deadline;
          order[i] = next.fetch_add(1);
        }));
      }
      for (auto& h : hs) h.join();
      for (int i = 0; i < k_fibers; ++i) {
        CAPTURE(i);
        CHECK(order[i] == rank[i]);
        CHECK_FALSE(early[i]);
      }
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: sleep_for and sleep_until wait at least the time asked, from a fiber and from a plain thread" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      on_side(rt, side, [] {
        auto t0 = Clock::now();
        weft::this_fiber::sleep_for(k_short);
        CHECK(since(t0) >= k_short);
        t0 = Clock::now();
        weft::this_fiber::sleep_for(std::chrono::duration<double, std::milli>(12.5));  // rounds up, never down
        CHECK(since(t0) >= std::chrono::microseconds(12'500));
        t0 = Clock::now();
        weft::this_fiber::sleep_until(t0 + k_short);
        CHECK(since(t0) >= k_short);
        t0 = Clock::now();
        weft::this_fiber::sleep_until(SysClock::now() + k_short);
        CHECK(since(t0) >= k_short - k_clock_slack);
        weft::this_fiber::sleep_for(1ns);  // the shortest real sleep ends too
      });
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: sleep_for(0) and negative durations return at once; past deadlines only yield" *
          doctest::timeout(120)) {
  auto non_positive_sleeps = [] {
    weft::this_fiber::sleep_for(0ms);
    weft::this_fiber::sleep_for(-1ns);
    weft::this_fiber::sleep_for(-5s);
    weft::this_fiber::sleep_for(std::chrono::hours(-1'000'000));
  };
  auto past_deadlines = [] {
    weft::this_fiber::sleep_until(Clock::now());
    weft::this_fiber::sleep_until(Clock::now() - 1h);
    weft::this_fiber::sleep_until(Clock::time_point::min());
    weft::this_fiber::sleep_until(SysClock::now() - 1h);
  };
  // Plain thread, no runtime anywhere.
  {
    const auto t0 = Clock::now();
    for (int i = 0; i < 1'000; ++i) {
      non_positive_sleeps();
      past_deadlines();
    }
    MESSAGE("plain thread: 1,000 rounds of past sleeps took " << ms(since(t0)) << " ms");
    CHECK(since(t0) < 2s);  // generous: a real sleep of even 1 ms per call would take 8 s
  }
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const auto t0 = Clock::now();
    rt.block_on([&] {
      for (int i = 0; i < 1'000; ++i) {
        non_positive_sleeps();
        past_deadlines();
      }
    });
    CHECK(since(t0) < 2s);
    CHECK(armed_timers(rt) == 0);  // nothing was armed for them
  }
  // On one worker, a fiber spawned onto it runs only once the caller gives
  // the worker up: a zero or negative sleep_for does not, a sleep_until a
  // passed deadline does (every other sleep of a fiber gives way once:
  // this_fiber.hpp's rule for short sleeps).
  weft::Runtime rt({.workers = 1});
  const auto [ran_in_zero_sleeps, ran_in_past_sleeps] = rt.block_on([&] {
    std::atomic<bool> ran{false};
    auto h = weft::go([&] { ran.store(true); });
    non_positive_sleeps();
    const bool during_zero = ran.load();
    past_deadlines();
    const bool during_past = ran.load();
    h.join();
    return std::pair{during_zero, during_past};
  });
  CHECK_FALSE(ran_in_zero_sleeps);
  CHECK(ran_in_past_sleeps);
}

TEST_CASE("time: 100,000 sleeping fibers all wake, none before its deadline" * doctest::timeout(900)) {
  // 10,000 in sanitizer builds; 1,000 under TSan (see k_thread_sanitizer).
  const std::size_t n = scaled(100'000) / (weft_test::k_thread_sanitizer ? 10 : 1);
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers, .stack_size = 64 * 1024, .stack_cache = 4096});
    std::atomic<std::size_t> woke{0}, early{0};
    std::atomic<long long> latest_us{0};
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      hs.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        hs.push_back(weft::go([&, i] {
          // 10 .. 250 ms, in 100 us steps: many deadlines shared, all interleaved.
          const auto offset = 10ms + std::chrono::microseconds(100 * (mix(i) % 2'400));
          const auto deadline = Clock::now() + offset;
          if (i % 2 == 0) {
            weft::this_fiber::sleep_until(deadline);
          } else {
            weft::this_fiber::sleep_for(offset);
          }
          const auto now = Clock::now();
          if (now < deadline) early.fetch_add(1, std::memory_order_relaxed);
          const long long late =
              std::chrono::duration_cast<std::chrono::microseconds>(now - deadline).count();
          long long seen = latest_us.load(std::memory_order_relaxed);
          while (late > seen && !latest_us.compare_exchange_weak(seen, late, std::memory_order_relaxed)) {
          }
          woke.fetch_add(1, std::memory_order_relaxed);
        }));
      }
      for (auto& h : hs) h.join();
    });
    MESSAGE(workers << " workers, " << n << " sleepers: latest wake-up " << latest_us.load() << " us late");
    CHECK(woke.load() == n);
    CHECK(early.load() == 0);
    CHECK(no_timers_within(rt));
  }
}

TEST_CASE("time: shutdown cancels a sleeping fiber instead of waiting for its timer" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    std::atomic<int> unwound{0};
    std::atomic<bool> sleeping{false}, woke{false};
    weft::Runtime rt({.workers = workers});
    struct Unwinds {
      std::atomic<int>* n;
      ~Unwinds() { n->fetch_add(1); }
    };
    auto h = rt.spawn([&] {
      Unwinds u{&unwound};
      sleeping.store(true);
      weft::this_fiber::sleep_for(1h);
      woke.store(true);
    });
    spin_until([&] { return sleeping.load() && armed_timers(rt) >= 1; });
    const auto t0 = Clock::now();
    rt.shutdown();
    CHECK(since(t0) < 30s);  // not the hour
    CHECK_THROWS_AS(h.join(), weft::RuntimeStopped);
    CHECK_FALSE(woke.load());
    CHECK(unwound.load() == 1);
    CHECK(armed_timers(rt) == 0);  // its timer went with it
  }
}

// ---- timeout() channels ----

TEST_CASE("time: timeout(d) closes after d and not before, from a fiber and from a plain thread" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      on_side(rt, side, [] {
        constexpr auto d = 60ms;
        // Polled while it runs: whenever it reads closed, d must have passed.
        auto t0 = Clock::now();
        weft::Channel<std::monostate> ch = weft::timeout(d);
        bool closed_early = false;
        for (;;) {
          const bool closed = ch.is_closed();
          const auto at = since(t0);
          if (closed && at < d) closed_early = true;
          if (closed || at > 10s) break;
          nap(5ms);
        }
        CHECK_FALSE(closed_early);
        CHECK(ch.is_closed());
        CHECK(ch.capacity() == 0);
        CHECK_FALSE(ch.try_recv().has_value());
        // Parked on it: woken by the close, with nullopt, not before d.
        t0 = Clock::now();
        auto ch2 = weft::timeout(d);
        CHECK_FALSE(ch2.is_closed());
        CHECK_FALSE(ch2.recv().has_value());
        CHECK(since(t0) >= d);
        CHECK(ch2.is_closed());
        CHECK_FALSE(ch2.recv().has_value());  // stays closed
        CHECK_FALSE(ch2.send(std::monostate{}));
        // A shorter wait on a longer timeout times out; the channel stays open.
        auto ch3 = weft::timeout(1h);
        CHECK(ch3.recv_for(k_short).timed_out());
        CHECK_FALSE(ch3.is_closed());
        // timeout_at, on steady_clock and on system_clock.
        t0 = Clock::now();
        CHECK_FALSE(weft::timeout_at(t0 + d).recv().has_value());
        CHECK(since(t0) >= d);
        t0 = Clock::now();
        CHECK_FALSE(weft::timeout_at(SysClock::now() + d).recv().has_value());
        CHECK(since(t0) >= d - k_clock_slack);
      });
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: timeout of zero, a negative duration or a past time point is closed at once") {
  weft::Runtime rt({.workers = 1});
  CHECK(weft::timeout(0ms).is_closed());
  CHECK(weft::timeout(-1ns).is_closed());
  CHECK(weft::timeout(-5s).is_closed());
  CHECK(weft::timeout_at(Clock::now() - 1s).is_closed());
  CHECK(weft::timeout_at(SysClock::now() - 1s).is_closed());
  CHECK_FALSE(weft::timeout(0ms).recv().has_value());  // does not wait
  CHECK(weft::timeout(-1s).recv_for(1h).closed());
  CHECK(armed_timers(rt) == 0);
}

TEST_CASE("time: a timeout channel arms a timer only once a fiber parks on it, and dropping it disarms that" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  {
    auto a = weft::timeout(1h);
    auto b = weft::timeout_at(Clock::now() + 1h);
    auto a2 = a;
    CHECK(armed_timers(rt) == 0);  // nobody waits on them: nothing armed (Go 1.23's timer channels)
    CHECK_FALSE(a.is_closed());
    CHECK_FALSE(a.try_recv().has_value());
    CHECK(armed_timers(rt) == 0);
    // A fiber parks on a (in a select that another case then wins): a's
    // timer is armed, and stays armed while a handle to a is left.
    weft::Channel<int> trigger(0, "trigger");
    std::atomic<int> won{-1};
    auto waiter = rt.spawn([&] {
      won = weft::select(weft::on_recv(a, [](std::optional<std::monostate>) {}),
                         weft::on_recv(trigger, [](std::optional<int>) {}));
    });
    spin_until([&] { return waiting_receivers(trigger) == 1; });
    CHECK(armed_timers(rt) == 1);
    trigger.send(1);
    waiter.join();
    CHECK(won.load() == 1);
    CHECK(armed_timers(rt) == 1);
    // A fiber's own short wait on b arms b's timer beside its own deadline's.
    rt.block_on([&] { CHECK(b.recv_for(k_short).timed_out()); });
    CHECK(armed_timers(rt) == 2);
    a = weft::Channel<std::monostate>();
    CHECK(armed_timers(rt) == 2);  // a2 still holds it
    a2 = weft::Channel<std::monostate>();
    CHECK(armed_timers(rt) == 1);
  }
  CHECK(armed_timers(rt) == 0);
}

TEST_CASE("time: a plain thread waiting on a timeout channel times itself and arms no timer" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  for (int variant = 0; variant < 4; ++variant) {
    CAPTURE(variant);
    constexpr auto d = 150ms;
    auto ch = weft::timeout(d);
    const auto t0 = Clock::now();
    std::atomic<bool> done{false};
    std::thread t([&, variant] {
      if (variant == 0) {
        CHECK_FALSE(ch.recv().has_value());
      } else if (variant == 1) {
        CHECK_FALSE(ch.send(std::monostate{}));  // a parked sender sees the close too
      } else if (variant == 2) {
        CHECK(ch.recv_for(1h).closed());  // closed, not timed out: the close comes first
      } else {
        weft::Channel<int> other(0, "other");
        CHECK(weft::select(weft::on_recv(other, [](std::optional<int>) {}),
                           weft::on_recv(ch, [](std::optional<std::monostate> v) { CHECK_FALSE(v.has_value()); })) == 1);
      }
      CHECK(since(t0) >= d);
      done = true;
    });
    spin_until([&] { return waiting_receivers(ch) + waiting_senders(ch) == 1; });
    CHECK(armed_timers(rt) == 0);  // checked while it waits
    t.join();
    CHECK(done.load());
    CHECK(ch.is_closed());
    CHECK(armed_timers(rt) == 0);
  }
  // The thread's own shorter deadline still ends its wait first, and leaves
  // the channel open.
  auto later = weft::timeout(1h);
  CHECK(later.recv_for(k_short).timed_out());
  CHECK(weft::select(weft::on_recv(later, [](std::optional<std::monostate>) {}), weft::after(k_short, [] {})) == 1);
  CHECK_FALSE(later.is_closed());
  CHECK(armed_timers(rt) == 0);
}

TEST_CASE("time: fibers and plain threads waiting on one timeout channel are all woken by its close" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    constexpr auto d = 100ms;
    constexpr int k_each = 3;
    auto ch = weft::timeout(d);
    const auto t0 = Clock::now();
    std::atomic<int> woke{0}, early{0};
    auto wait_on_it = [&] {
      if (ch.recv().has_value()) FAIL_CHECK("a timeout channel delivered");
      if (since(t0) < d) early.fetch_add(1);
      woke.fetch_add(1);
    };
    std::vector<weft::JoinHandle<void>> fibers;
    std::vector<std::thread> threads;
    for (int i = 0; i < k_each; ++i) {
      fibers.push_back(rt.spawn(wait_on_it));
      threads.emplace_back(wait_on_it);
    }
    for (auto& f : fibers) f.join();
    for (auto& t : threads) t.join();
    CHECK(woke.load() == 2 * k_each);
    CHECK(early.load() == 0);
    CHECK(no_timers_within(rt));
  }
}

TEST_CASE("time: 10,000 fibers waiting on their own timeout channels are all woken, none early" *
          doctest::timeout(600)) {
  const std::size_t n = scaled(10'000) / (weft_test::k_thread_sanitizer ? 10 : 1);
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers, .stack_size = 64 * 1024});
    std::atomic<std::size_t> woke{0}, early{0}, got_value{0};
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      hs.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        hs.push_back(weft::go([&, i] {
          const auto d = 5ms + std::chrono::microseconds(mix(i) % 150'000);
          const auto t0 = Clock::now();
          if (weft::timeout(d).recv().has_value()) got_value.fetch_add(1);
          if (since(t0) < d) early.fetch_add(1);
          woke.fetch_add(1);
        }));
      }
      for (auto& h : hs) h.join();
    });
    CHECK(woke.load() == n);
    CHECK(early.load() == 0);
    CHECK(got_value.load() == 0);
    CHECK(no_timers_within(rt));
  }
}

// ---- select with after() / on_recv(timeout()) ----

TEST_CASE("time: select returns a ready channel's value over a timeout case and leaves no timer armed" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> ch(1, "ready");
      on_side(rt, side, [&] {
        int got = -1;
        bool timed_out = false;
        // Ready before the select: after().
        CHECK(ch.send(1));
        std::size_t idx = weft::select(weft::on_recv(ch, [&](std::optional<int> v) { got = v.value_or(-2); }),
                                       weft::after(1h, [&] { timed_out = true; }));
        CHECK(idx == 0);
        CHECK(got == 1);
        CHECK_FALSE(timed_out);
        CHECK(armed_timers(rt) == 0);
        // Ready before the select: on_recv(timeout()). The timeout channel
        // (and its timer) dies with the select's full expression.
        CHECK(ch.send(2));
        idx = weft::select(weft::on_recv(ch, [&](std::optional<int> v) { got = v.value_or(-2); }),
                           weft::on_recv(weft::timeout(1h), [&](std::optional<std::monostate>) { timed_out = true; }));
        CHECK(idx == 0);
        CHECK(got == 2);
        CHECK_FALSE(timed_out);
        CHECK(armed_timers(rt) == 0);
        // A ready case wins over an after() that is already due.
        CHECK(ch.send(3));
        idx = weft::select(weft::after(0ms, [&] { timed_out = true; }),
                           weft::on_recv(ch, [&](std::optional<int> v) { got = v.value_or(-2); }));
        CHECK(idx == 1);
        CHECK(got == 3);
        CHECK_FALSE(timed_out);
        // Priority mode, timeout channel listed first but not ready.
        CHECK(ch.send(4));
        idx = weft::select(weft::priority,
                           weft::on_recv(weft::timeout(1h), [&](std::optional<std::monostate>) { timed_out = true; }),
                           weft::on_recv(ch, [&](std::optional<int> v) { got = v.value_or(-2); }));
        CHECK(idx == 1);
        CHECK(got == 4);
        CHECK_FALSE(timed_out);
        CHECK(armed_timers(rt) == 0);
      });
      // Parked first, then a value arrives: the timer armed for the wait is
      // cancelled at once.
      for (int variant = 0; variant < 2; ++variant) {
        CAPTURE(variant);
        weft::Channel<int> later(0, "later");
        std::atomic<int> got{-1};
        std::atomic<bool> timed_out{false};
        std::atomic<std::size_t> idx{99};
        Actor selector(rt, side, [&] {
          if (variant == 0) {
            idx = weft::select(weft::on_recv(later, [&](std::optional<int> v) { got = v.value_or(-2); }),
                               weft::after(1h, [&] { timed_out = true; }));
          } else {
            idx = weft::select(weft::on_recv(later, [&](std::optional<int> v) { got = v.value_or(-2); }),
                               weft::on_recv(weft::timeout(1h), [&](std::optional<std::monostate>) { timed_out = true; }));
          }
        });
        spin_until([&] { return waiting_receivers(later) == 1; });
        CHECK(later.send(7));
        selector.join();
        CHECK(idx.load() == 0);
        CHECK(got.load() == 7);
        CHECK_FALSE(timed_out.load());
        CHECK(armed_timers(rt) == 0);
      }
    }
  }
}

TEST_CASE("time: select's timeout cases commit after their time, not before, and the earliest wins" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> silent(0, "silent");
      on_side(rt, side, [&] {
        int fired = -1;
        auto t0 = Clock::now();
        std::size_t idx = weft::select(weft::on_recv(silent, [&](std::optional<int>) { fired = 0; }),
                                       weft::after(k_short, [&] { fired = 1; }));
        CHECK(idx == 1);
        CHECK(fired == 1);
        CHECK(since(t0) >= k_short);
        // Two after() cases: the earlier one, whichever position it has.
        t0 = Clock::now();
        idx = weft::select(weft::after(3 * k_short, [&] { fired = 10; }),
                           weft::on_recv(silent, [&](std::optional<int>) { fired = 11; }),
                           weft::after(k_short, [&] { fired = 12; }));
        CHECK(idx == 2);
        CHECK(fired == 12);
        CHECK(since(t0) >= k_short);
        // after_until on steady_clock and system_clock.
        t0 = Clock::now();
        idx = weft::select(weft::on_recv(silent, [&](std::optional<int>) { fired = 20; }),
                           weft::after_until(t0 + k_short, [&] { fired = 21; }));
        CHECK(idx == 1);
        CHECK(fired == 21);
        CHECK(since(t0) >= k_short);
        t0 = Clock::now();
        idx = weft::select(weft::on_recv(silent, [&](std::optional<int>) { fired = 30; }),
                           weft::after_until(SysClock::now() + k_short, [&] { fired = 31; }));
        CHECK(idx == 1);
        CHECK(fired == 31);
        CHECK(since(t0) >= k_short - k_clock_slack);
        // A timeout channel as a receive case: its handler gets nullopt.
        t0 = Clock::now();
        bool got_nullopt = false;
        idx = weft::select(weft::on_recv(silent, [&](std::optional<int>) { fired = 40; }),
                           weft::on_recv(weft::timeout(k_short), [&](std::optional<std::monostate> v) {
                             fired = 41;
                             got_nullopt = !v.has_value();
                           }));
        CHECK(idx == 1);
        CHECK(fired == 41);
        CHECK(got_nullopt);
        CHECK(since(t0) >= k_short);
        // Zero and negative: at once when nothing else is ready.
        idx = weft::select(weft::on_recv(silent, [&](std::optional<int>) { fired = 50; }),
                           weft::after(0ms, [&] { fired = 51; }));
        CHECK(idx == 1);
        CHECK(fired == 51);
        idx = weft::select(weft::on_recv(silent, [&](std::optional<int>) { fired = 60; }),
                           weft::after(-1s, [&] { fired = 61; }));
        CHECK(idx == 1);
        CHECK(fired == 61);
      });
      CHECK(waiting_receivers(silent) == 0);  // the timed-out selects left nothing queued
      CHECK_FALSE(silent.try_send(1));        // so a send finds no stale receiver
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: a million selects with a timeout case that a channel wins leave no timer armed" *
          doctest::timeout(900)) {
  // 100,000 in sanitizer builds; 10,000 under TSan.
  const std::size_t n = scaled(1'000'000) / (weft_test::k_thread_sanitizer ? 10 : 1);
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    // Half of them: the value is there before the select (buffered).
    std::size_t ready_wins = 0, ready_timeouts = 0;
    std::size_t peak_armed = 0;
    rt.block_on([&] {
      weft::Channel<std::size_t> ch(1);
      for (std::size_t i = 0; i < n / 2; ++i) {
        CHECK(ch.try_send(i));
        std::size_t got = n;
        bool timed_out = false;
        if (i % 2 == 0) {
          weft::select(weft::on_recv(ch, [&](std::optional<std::size_t> v) { got = v.value_or(n); }),
                       weft::after(1h, [&] { timed_out = true; }));
        } else {
          weft::select(weft::on_recv(ch, [&](std::optional<std::size_t> v) { got = v.value_or(n); }),
                       weft::on_recv(weft::timeout(1h), [&](std::optional<std::monostate>) { timed_out = true; }));
        }
        if (got == i) ++ready_wins;
        if (timed_out) ++ready_timeouts;
        if (i % 1024 == 0) peak_armed = std::max(peak_armed, armed_timers(rt));
      }
    });
    CHECK(ready_wins == n / 2);
    CHECK(ready_timeouts == 0);
    CHECK(peak_armed == 0);
    CHECK(armed_timers(rt) == 0);
    // The other half: a producer fiber feeds an unbuffered channel, so the
    // selects often park (arming the timer) before the value arrives.
    std::size_t parked_wins = 0, parked_timeouts = 0, in_order = 0;
    rt.block_on([&] {
      weft::Channel<std::size_t> ch(0, "fed");
      auto producer = weft::go([&] {
        for (std::size_t i = 0; i < n / 2; ++i) ch.send(i);
      });
      for (std::size_t i = 0; i < n / 2; ++i) {
        std::optional<std::size_t> got;
        bool timed_out = false;
        if (i % 2 == 0) {
          weft::select(weft::on_recv(ch, [&](std::optional<std::size_t> v) { got = v; }),
                       weft::after(1h, [&] { timed_out = true; }));
        } else {
          weft::select(weft::on_recv(ch, [&](std::optional<std::size_t> v) { got = v; }),
                       weft::on_recv(weft::timeout(1h), [&](std::optional<std::monostate>) { timed_out = true; }));
        }
        if (got) ++parked_wins;
        if (got == i) ++in_order;
        if (timed_out) ++parked_timeouts;
        if (i % 1024 == 0) peak_armed = std::max(peak_armed, armed_timers(rt));
      }
      producer.join();
    });
    CHECK(parked_wins == n / 2);
    CHECK(in_order == n / 2);
    CHECK(parked_timeouts == 0);
    CHECK(peak_armed == 0);  // sampled between selects: each one's timer is gone when it returns
    CHECK(no_timers_within(rt));
  }
}

// ---- Timed channel operations ----

TEST_CASE("time: recv_for and recv_until time out on an empty channel, never early, and leave no waiter" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> unbuffered(0, "unbuffered"), buffer(4, "empty buffer");
      on_side(rt, side, [&] {
        for (weft::Channel<int>* ch : {&unbuffered, &buffer}) {
          auto t0 = Clock::now();
          weft::RecvResult<int> r = ch->recv_for(k_short);
          CHECK(since(t0) >= k_short);
          CHECK(r.timed_out());
          CHECK_FALSE(r.ok());
          CHECK_FALSE(r.closed());
          CHECK_FALSE(static_cast<bool>(r));
          CHECK_FALSE(r.value.has_value());
          CHECK(r.status == weft::OpStatus::timed_out);
          t0 = Clock::now();
          r = ch->recv_until(t0 + k_short);
          CHECK(since(t0) >= k_short);
          CHECK(r.timed_out());
          t0 = Clock::now();
          r = ch->recv_until(SysClock::now() + k_short);
          CHECK(since(t0) >= k_short - k_clock_slack);
          CHECK(r.timed_out());
          // Zero and negative never park: "would wait".
          CHECK(ch->recv_for(0ms).timed_out());
          CHECK(ch->recv_for(-1s).timed_out());
          CHECK(ch->recv_until(Clock::now() - 1h).timed_out());
        }
      });
      // A timed-out receiver is gone: a send finds nobody waiting.
      CHECK(waiting_receivers(unbuffered) == 0);
      CHECK(waiting_receivers(buffer) == 0);
      CHECK_FALSE(unbuffered.try_send(1));
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: recv_for and recv_until take a value, or a close, that comes while they wait" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side recv_side : k_sides) {
      for (Side send_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(recv_side));
        CAPTURE(side_name(send_side));
        weft::Runtime rt({.workers = workers});
        weft::Channel<std::unique_ptr<int>> ch(0, "timed");
        std::vector<weft::RecvResult<std::unique_ptr<int>>> results(4);
        Actor receiver(rt, recv_side, [&] {
          results[0] = ch.recv_for(k_long);
          results[1] = ch.recv_until(Clock::now() + k_long);
          results[2] = ch.recv_until(SysClock::now() + k_long);
          results[3] = ch.recv_for(k_long);  // the channel is closed meanwhile
        });
        Actor sender(rt, send_side, [&] {
          for (int i = 0; i < 3; ++i) {
            spin_until([&] { return waiting_receivers(ch) == 1; });
            CHECK(ch.send(std::make_unique<int>(10 + i)));
          }
          spin_until([&] { return waiting_receivers(ch) == 1; });
          ch.close();
        });
        receiver.join();
        sender.join();
        for (int i = 0; i < 3; ++i) {
          CAPTURE(i);
          CHECK(results[i].ok());
          REQUIRE(results[i].value.has_value());
          REQUIRE(*results[i] != nullptr);
          CHECK(**results[i] == 10 + i);
        }
        CHECK(results[3].closed());
        CHECK_FALSE(results[3].value.has_value());
        CHECK(no_timers_within(rt));
      }
    }
  }
}

TEST_CASE("time: recv_for takes what is there without waiting, and reports a closed, drained channel" *
          doctest::timeout(60)) {
  for (Side side : k_sides) {
    CAPTURE(side_name(side));
    weft::Runtime rt({.workers = 2});
    on_side(rt, side, [] {
      weft::Channel<int> ch(2);
      CHECK(ch.send(1));
      CHECK(ch.send(2));
      auto r = ch.recv_for(0ms);
      CHECK(r.ok());
      CHECK(*r == 1);
      ch.close();
      r = ch.recv_for(1h);  // buffered values are still received after close
      CHECK(r.ok());
      CHECK(*r == 2);
      const auto t0 = Clock::now();
      r = ch.recv_for(1h);
      CHECK(r.closed());
      CHECK(since(t0) < 10s);  // did not wait for the hour
      CHECK(ch.recv_until(Clock::now() - 1s).closed());
      CHECK(ch.recv_for(std::chrono::hours::max()).closed());  // saturates, no overflow
    });
  }
}

TEST_CASE("time: send_for and send_until time out without a receiver or room, leaving the value with the caller" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<std::unique_ptr<int>> unbuffered(0, "unbuffered");
      weft::Channel<std::unique_ptr<int>> full(1, "full");
      CHECK(full.try_send(std::make_unique<int>(0)));
      on_side(rt, side, [&] {
        for (auto* ch : {&unbuffered, &full}) {
          auto p = std::make_unique<int>(5);
          auto t0 = Clock::now();
          CHECK(ch->send_for(std::move(p), k_short) == weft::OpStatus::timed_out);
          CHECK(since(t0) >= k_short);
          REQUIRE(p != nullptr);  // untouched
          CHECK(*p == 5);
          t0 = Clock::now();
          CHECK(ch->send_until(std::move(p), t0 + k_short) == weft::OpStatus::timed_out);
          CHECK(since(t0) >= k_short);
          REQUIRE(p != nullptr);
          t0 = Clock::now();
          CHECK(ch->send_until(std::move(p), SysClock::now() + k_short) == weft::OpStatus::timed_out);
          CHECK(since(t0) >= k_short - k_clock_slack);
          REQUIRE(p != nullptr);
          // Zero and negative never park.
          CHECK(ch->send_for(std::move(p), 0ms) == weft::OpStatus::timed_out);
          CHECK(ch->send_for(std::move(p), -1s) == weft::OpStatus::timed_out);
          REQUIRE(p != nullptr);
          CHECK(*p == 5);
        }
        // Copying overloads.
        weft::Channel<std::string> strings(0, "strings");
        const std::string text = "a string longer than the small-string buffer";
        CHECK(strings.send_for(text, k_short) == weft::OpStatus::timed_out);
        CHECK(strings.send_until(text, Clock::now() + k_short) == weft::OpStatus::timed_out);
        CHECK(text == "a string longer than the small-string buffer");
      });
      CHECK(waiting_senders(unbuffered) == 0);
      CHECK(waiting_senders(full) == 0);
      CHECK_FALSE(unbuffered.try_recv().has_value());  // nothing was left behind
      auto first = full.try_recv();
      REQUIRE(first.has_value());
      CHECK(**first == 0);
      CHECK_FALSE(full.try_recv().has_value());
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: send_for and send_until deliver to a receiver that comes while they wait, and report a close" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side send_side : k_sides) {
      for (Side recv_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(send_side));
        CAPTURE(side_name(recv_side));
        weft::Runtime rt({.workers = workers});
        weft::Channel<std::unique_ptr<int>> ch(0, "timed");
        weft::Channel<std::unique_ptr<int>> buffer(1, "buffer");
        std::vector<weft::OpStatus> statuses(5, weft::OpStatus::closed);
        std::vector<bool> moved_from(5, false);
        CHECK(buffer.try_send(std::make_unique<int>(99)));  // full before the sender gets there
        Actor sender(rt, send_side, [&] {
          auto send = [&](int i, weft::Channel<std::unique_ptr<int>>& c, auto deadline_kind) {
            auto p = std::make_unique<int>(20 + i);
            if constexpr (std::is_same_v<decltype(deadline_kind), int>) {
              statuses[i] = c.send_for(std::move(p), k_long);
            } else {
              statuses[i] = c.send_until(std::move(p), decltype(deadline_kind)::clock::now() + k_long);
            }
            moved_from[i] = p == nullptr;
          };
          send(0, ch, 0);
          send(1, ch, Clock::time_point{});
          send(2, ch, SysClock::time_point{});
          send(3, buffer, 0);  // the buffer has room only once a value is taken
          send(4, ch, 0);      // closed while it waits
        });
        Actor receiver(rt, recv_side, [&] {
          for (int i = 0; i < 3; ++i) {
            spin_until([&] { return waiting_senders(ch) == 1; });
            auto v = ch.recv();
            CHECK((v && *v && **v == 20 + i));
          }
          spin_until([&] { return waiting_senders(buffer) == 1; });
          auto v = buffer.recv();
          CHECK((v && *v && **v == 99));
          spin_until([&] { return waiting_senders(ch) == 1; });
          ch.close();
        });
        sender.join();
        receiver.join();
        for (int i = 0; i < 4; ++i) {
          CAPTURE(i);
          CHECK(statuses[i] == weft::OpStatus::ok);
          CHECK(moved_from[i]);
        }
        CHECK(statuses[4] == weft::OpStatus::closed);
        CHECK_FALSE(moved_from[4]);  // a failed send leaves the value with the caller
        auto buffered = buffer.try_recv();
        CHECK((buffered && *buffered && **buffered == 23));
        CHECK(no_timers_within(rt));
      }
    }
  }
}

TEST_CASE("time: send_for with no time to wait sends when it can, and reports closed") {
  for (Side side : k_sides) {
    CAPTURE(side_name(side));
    weft::Runtime rt({.workers = 2});
    weft::Channel<int> unbuffered(0, "unbuffered"), roomy(1, "roomy"), closed(1, "closed");
    closed.close();
    std::atomic<int> got{-1};
    Actor receiver(rt, side == Side::fiber ? Side::thread : Side::fiber,
                   [&] { got = unbuffered.recv().value_or(-2); });
    spin_until([&] { return waiting_receivers(unbuffered) == 1; });
    on_side(rt, side, [&] {
      CHECK(unbuffered.send_for(1, 0ms) == weft::OpStatus::ok);  // a receiver waits
      CHECK(roomy.send_for(2, 0ms) == weft::OpStatus::ok);       // the buffer has room
      CHECK(roomy.send_for(3, 0ms) == weft::OpStatus::timed_out);
      CHECK(closed.send_for(4, 0ms) == weft::OpStatus::closed);
      CHECK(closed.send_for(4, 1h) == weft::OpStatus::closed);
      CHECK(closed.send_until(4, Clock::now() + 1h) == weft::OpStatus::closed);
    });
    receiver.join();
    CHECK(got.load() == 1);
    CHECK(roomy.try_recv() == std::optional<int>(2));
  }
}

// ---- Timed sync operations ----

TEST_CASE("time: CondVar wait_for and wait_until time out, never early, with the lock held again" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Mutex m;
      weft::CondVar cv;
      on_side(rt, side, [&] {
        std::unique_lock<weft::Mutex> lk(m);
        auto t0 = Clock::now();
        CHECK(cv.wait_for(lk, k_short) == std::cv_status::timeout);
        CHECK(since(t0) >= k_short);
        CHECK(lk.owns_lock());
        CHECK_FALSE(m.try_lock());  // really held again
        t0 = Clock::now();
        CHECK(cv.wait_until(lk, t0 + k_short) == std::cv_status::timeout);
        CHECK(since(t0) >= k_short);
        CHECK(lk.owns_lock());
        t0 = Clock::now();
        CHECK(cv.wait_until(lk, SysClock::now() + k_short) == std::cv_status::timeout);
        CHECK(since(t0) >= k_short - k_clock_slack);
        // With a predicate that stays false.
        int pred_calls = 0;
        t0 = Clock::now();
        CHECK_FALSE(cv.wait_for(lk, k_short, [&] {
          ++pred_calls;
          return false;
        }));
        CHECK(since(t0) >= k_short);
        CHECK(pred_calls >= 1);
        CHECK(lk.owns_lock());
        t0 = Clock::now();
        CHECK_FALSE(cv.wait_until(lk, t0 + k_short, [] { return false; }));
        CHECK(since(t0) >= k_short);
        CHECK(lk.owns_lock());
        // Zero and negative still release and re-acquire the lock.
        CHECK(cv.wait_for(lk, 0ms) == std::cv_status::timeout);
        CHECK(cv.wait_for(lk, -1s) == std::cv_status::timeout);
        CHECK(lk.owns_lock());
        // A predicate that already holds: true without waiting.
        t0 = Clock::now();
        CHECK(cv.wait_for(lk, 1h, [] { return true; }));
        CHECK(cv.wait_until(lk, Clock::now() + 1h, [] { return true; }));
        CHECK(since(t0) < 10s);
        CHECK(lk.owns_lock());
      });
      CHECK(m.try_lock());  // released by the unique_lock
      m.unlock();
      CHECK(no_timers_within(rt));
    }
  }
}

TEST_CASE("time: CondVar wait_for and wait_until return when notified while they wait" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side waiter_side : k_sides) {
      for (Side notifier_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(waiter_side));
        CAPTURE(side_name(notifier_side));
        weft::Runtime rt({.workers = workers});
        weft::Mutex m;
        weft::CondVar cv;
        constexpr int k_rounds = 4;
        std::atomic<int> waiting_round{-1};  // set with m held, just before the wait
        int ready = -1;                       // guarded by m
        std::cv_status plain[2] = {std::cv_status::timeout, std::cv_status::timeout};
        bool with_pred[2] = {false, false};
        Actor waiter(rt, waiter_side, [&] {
          std::unique_lock<weft::Mutex> lk(m);
          waiting_round = 0;
          plain[0] = cv.wait_for(lk, k_long);
          waiting_round = 1;
          plain[1] = cv.wait_until(lk, Clock::now() + k_long);
          waiting_round = 2;
          with_pred[0] = cv.wait_for(lk, k_long, [&] { return ready >= 2; });
          waiting_round = 3;
          with_pred[1] = cv.wait_until(lk, SysClock::now() + k_long, [&] { return ready >= 3; });
          CHECK(lk.owns_lock());
        });
        Actor notifier(rt, notifier_side, [&] {
          for (int round = 0; round < k_rounds; ++round) {
            spin_until([&] { return waiting_round.load() == round; });
            // The waiter holds m until its wait releases it.
            std::lock_guard<weft::Mutex> g(m);
            ready = round;
            cv.notify_one();
          }
        });
        waiter.join();
        notifier.join();
        // No spurious wake-ups: a plain wait that returned early was notified.
        CHECK(plain[0] == std::cv_status::no_timeout);
        CHECK(plain[1] == std::cv_status::no_timeout);
        CHECK(with_pred[0]);
        CHECK(with_pred[1]);
        CHECK(no_timers_within(rt));
      }
    }
  }
}

TEST_CASE("time: a CondVar waiter that timed out does not swallow a later notify_one" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Mutex m;
      weft::CondVar cv;
      std::atomic<bool> second_waiting{false};
      std::cv_status first = std::cv_status::no_timeout, second = std::cv_status::timeout;
      on_side(rt, side, [&] {
        std::unique_lock<weft::Mutex> lk(m);
        first = cv.wait_for(lk, k_short);
      });
      Actor waiter(rt, side, [&] {
        std::unique_lock<weft::Mutex> lk(m);
        second_waiting = true;
        second = cv.wait_for(lk, k_long);
      });
      spin_until([&] { return second_waiting.load(); });
      {
        std::lock_guard<weft::Mutex> g(m);  // the waiter is inside wait_for
      }
      cv.notify_one();
      waiter.join();
      CHECK(first == std::cv_status::timeout);
      CHECK(second == std::cv_status::no_timeout);
    }
  }
}

TEST_CASE("time: Mutex try_lock_for and try_lock_until give up while another holds it, never early" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side waiter_side : k_sides) {
      for (Side holder_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(waiter_side));
        CAPTURE(side_name(holder_side));
        weft::Runtime rt({.workers = workers});
        weft::Mutex m;
        weft::Channel<int> release(0, "release");
        std::atomic<bool> held{false};
        Actor holder(rt, holder_side, [&] {
          std::lock_guard<weft::Mutex> g(m);
          held = true;
          release.recv();
        });
        spin_until([&] { return held.load(); });
        on_side(rt, waiter_side, [&] {
          auto t0 = Clock::now();
          CHECK_FALSE(m.try_lock_for(k_short));
          CHECK(since(t0) >= k_short);
          t0 = Clock::now();
          CHECK_FALSE(m.try_lock_until(t0 + k_short));
          CHECK(since(t0) >= k_short);
          t0 = Clock::now();
          CHECK_FALSE(m.try_lock_until(SysClock::now() + k_short));
          CHECK(since(t0) >= k_short - k_clock_slack);
          {
            // TimedLockable: std::unique_lock's timed constructor.
            t0 = Clock::now();
            std::unique_lock<weft::Mutex> lk(m, k_short);
            CHECK_FALSE(lk.owns_lock());
            CHECK(since(t0) >= k_short);
          }
          CHECK_FALSE(m.try_lock_for(0ms));
          CHECK_FALSE(m.try_lock_for(-1s));
        });
        release.send(1);
        holder.join();
        // The timed-out waiters are gone: the lock was not handed to one of them.
        CHECK(m.try_lock());
        m.unlock();
        CHECK(no_timers_within(rt));
      }
    }
  }
}

TEST_CASE("time: Mutex try_lock_for gets the lock when it is released while it waits" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side waiter_side : k_sides) {
      for (Side holder_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(waiter_side));
        CAPTURE(side_name(holder_side));
        weft::Runtime rt({.workers = workers});
        weft::Mutex m;
        std::atomic<int> trying{-1};
        std::atomic<bool> held{false};
        bool got[3] = {false, false, false};
        long counter = 0;  // guarded by m
        const std::uint64_t parks_before = rt.metrics().parks;
        Actor holder(rt, holder_side, [&] {
          for (int round = 0; round < 3; ++round) {
            m.lock();
            held = true;
            spin_until([&] { return trying.load() == round; });
            if (waiter_side == Side::fiber) {
              // A fiber waiter parks once a round, in its timed lock; nothing
              // else here parks (the holder does not sleep in this case).
              spin_until([&] { return rt.metrics().parks >= parks_before + round + 1; });
            } else {
              nap(10ms);  // a plain thread's wait cannot be seen: give it time
            }
            ++counter;
            held = false;
            m.unlock();
            spin_until([&] { return trying.load() == round + 10; });  // it got it, and let go
          }
        });
        Actor waiter(rt, waiter_side, [&] {
          for (int round = 0; round < 3; ++round) {
            spin_until([&] { return held.load(); });
            trying = round;
            if (round == 0) got[round] = m.try_lock_for(k_long);
            if (round == 1) got[round] = m.try_lock_until(Clock::now() + k_long);
            if (round == 2) got[round] = m.try_lock_until(SysClock::now() + k_long);
            if (got[round]) {
              ++counter;
              m.unlock();
            }
            trying = round + 10;
          }
        });
        holder.join();
        waiter.join();
        CHECK(got[0]);
        CHECK(got[1]);
        CHECK(got[2]);
        CHECK(counter == 6);
        // A free mutex: at once, even with no time to wait.
        CHECK(m.try_lock_for(0ms));
        m.unlock();
        CHECK(m.try_lock_for(-1s));
        m.unlock();
        CHECK(no_timers_within(rt));
      }
    }
  }
}

TEST_CASE("time: WaitGroup wait_for and wait_until time out while the count is up, and return once it is zero" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side waiter_side : k_sides) {
      for (Side worker_side : k_sides) {
        CAPTURE(workers);
        CAPTURE(side_name(waiter_side));
        CAPTURE(side_name(worker_side));
        weft::Runtime rt({.workers = workers});
        weft::WaitGroup wg;
        wg.add(1);
        on_side(rt, waiter_side, [&] {
          auto t0 = Clock::now();
          CHECK_FALSE(wg.wait_for(k_short));
          CHECK(since(t0) >= k_short);
          t0 = Clock::now();
          CHECK_FALSE(wg.wait_until(t0 + k_short));
          CHECK(since(t0) >= k_short);
          t0 = Clock::now();
          CHECK_FALSE(wg.wait_until(SysClock::now() + k_short));
          CHECK(since(t0) >= k_short - k_clock_slack);
          CHECK_FALSE(wg.wait_for(0ms));
          CHECK_FALSE(wg.wait_for(-1s));
          CHECK(wg.count() == 1);
        });
        // Done while it waits: for, until (steady), until (system).
        std::atomic<int> waiting{-1};
        bool returned[3] = {false, false, false};
        const std::uint64_t parks_before = rt.metrics().parks;
        Actor waiter(rt, waiter_side, [&] {
          for (int round = 0; round < 3; ++round) {
            spin_until([&] { return wg.count() == 1; });
            waiting = round;
            if (round == 0) returned[round] = wg.wait_for(k_long);
            if (round == 1) returned[round] = wg.wait_until(Clock::now() + k_long);
            if (round == 2) returned[round] = wg.wait_until(SysClock::now() + k_long);
            waiting = round + 10;
          }
        });
        Actor worker(rt, worker_side, [&] {
          for (int round = 0; round < 3; ++round) {
            if (round > 0) {
              spin_until([&] { return waiting.load() == round - 1 + 10; });
              wg.add(1);  // a new round, once every wait of the last one returned
            }
            spin_until([&] { return waiting.load() == round; });
            if (waiter_side == Side::fiber) {
              // A fiber waiter parks once a round, in its timed wait; nothing
              // else here parks (this side does not sleep in this case).
              spin_until([&] { return rt.metrics().parks >= parks_before + round + 1; });
            } else {
              nap(10ms);  // a plain thread's wait cannot be seen: give it time
            }
            wg.done();
          }
        });
        waiter.join();
        worker.join();
        CHECK(returned[0]);
        CHECK(returned[1]);
        CHECK(returned[2]);
        CHECK(wg.count() == 0);
        CHECK(wg.wait_for(0ms));  // zero: at once
        CHECK(wg.wait_for(-1s));
        CHECK(no_timers_within(rt));
      }
    }
  }
}

TEST_CASE("time: JoinHandle join_for and join_until give up while the task runs, and succeed once it finishes" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> gate(0, "gate");
      auto h = rt.spawn([&] { return gate.recv().value_or(-1) * 2; });
      spin_until([&] { return waiting_receivers(gate) == 1; });
      on_side(rt, side, [&] {
        auto t0 = Clock::now();
        CHECK_FALSE(h.join_for(k_short));
        CHECK(since(t0) >= k_short);
        t0 = Clock::now();
        CHECK_FALSE(h.join_until(t0 + k_short));
        CHECK(since(t0) >= k_short);
        t0 = Clock::now();
        CHECK_FALSE(h.join_until(SysClock::now() + k_short));
        CHECK(since(t0) >= k_short - k_clock_slack);
        CHECK_FALSE(h.join_for(0ms));
        CHECK_FALSE(h.join_for(-1s));
        CHECK(h.joinable());  // unchanged
        CHECK_FALSE(h.is_finished());
      });
      // Finishes while it waits.
      std::atomic<bool> joining{false};
      bool finished = false;
      int value = -1;
      const std::uint64_t parks_before = rt.metrics().parks;
      Actor joiner(rt, side, [&] {
        joining = true;
        finished = h.join_for(k_long);
        CHECK(h.is_finished());
        CHECK(h.join_for(0ms));  // true at once from now on
        CHECK(h.join_until(Clock::now() - 1s));
        value = h.join();
      });
      spin_until([&] { return joining.load(); });
      if (side == Side::fiber) {
        spin_until([&] { return rt.metrics().parks > parks_before; });  // parked in join_for
      } else {
        std::this_thread::sleep_for(10ms);  // a plain thread's wait cannot be seen: give it time
      }
      CHECK(gate.send(21));
      joiner.join();
      CHECK(finished);
      CHECK(value == 42);
      CHECK_FALSE(h.joinable());
      CHECK_THROWS_AS(h.join_for(1ms), std::logic_error);  // already joined
      // A task that throws: join_for says finished, join rethrows.
      auto failing = rt.spawn([]() -> int {
        weft::this_fiber::sleep_for(5ms);
        throw std::runtime_error("failed task");
      });
      on_side(rt, side, [&] {
        CHECK(failing.join_for(k_long));
        CHECK_THROWS_WITH_AS(failing.join(), "failed task", std::runtime_error);
      });
      CHECK(no_timers_within(rt));
    }
  }
}

// ---- Ticker ----

TEST_CASE("time: a Ticker ticks about once per period, never early, from a fiber and from a plain thread" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(side));
      weft::Runtime rt({.workers = workers});
      on_side(rt, side, [&] {
        constexpr auto period = 20ms;
        const auto t0 = Clock::now();
        weft::Ticker ticker(period);
        CHECK_FALSE(ticker.stopped());
        CHECK(armed_timers(rt) >= 1);
        auto& ch = ticker.channel();
        // Tick k (k = 1, 2, ...) is sent at construction + k periods or later.
        std::vector<weft::Ticker::Tick> ticks;
        while (since(t0) < 400ms) {
          auto r = ch.recv_for(1s);
          if (!r.ok()) break;
          ticks.push_back(*r);
        }
        const auto elapsed = since(t0);
        const auto periods = elapsed / period;
        MESSAGE(ticks.size() << " ticks in " << ms(elapsed) << " ms, " << ch.dropped() << " dropped");
        // Never more ticks than whole periods have passed, and not far fewer.
        CHECK(static_cast<long long>(ticks.size()) <= periods);
        CHECK(ticks.size() >= 5);
        for (std::size_t k = 0; k < ticks.size(); ++k) {
          CAPTURE(k);
          CHECK(ticks[k] >= t0 + static_cast<long long>(k + 1) * period);
          if (k > 0) CHECK(ticks[k] > ticks[k - 1]);
          CHECK(ticks[k] <= Clock::now());
        }
        ticker.stop();
        CHECK(ticker.stopped());
      });
      CHECK(armed_timers(rt) == 0);
    }
  }
}

TEST_CASE("time: a Ticker drops ticks for a slow receiver instead of queueing them" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  const auto t0 = Clock::now();
  weft::Ticker ticker(2ms);
  auto ch = ticker.channel();  // a copy of the handle
  CHECK(ch == ticker.channel());
  CHECK(ch.capacity() == 1);
  CHECK(ch.policy() == weft::BufferPolicy::drop_newest);
  std::this_thread::sleep_for(100ms);  // about 50 ticks, nobody receiving
  CHECK(ch.size() == 1);               // one buffered, never a backlog
  CHECK(ch.dropped() > 0);
  MESSAGE("dropped " << ch.dropped() << " ticks in " << ms(since(t0)) << " ms");
  auto first = ch.try_recv();
  REQUIRE(first.has_value());
  CHECK(*first >= t0 + 2ms);
  CHECK(*first <= Clock::now());
  // Fresh ticks keep coming after the receiver catches up.
  auto next = ch.recv_for(10s);
  CHECK(next.ok());
  if (next.ok()) CHECK(*next > *first);
}

TEST_CASE("time: stopping a Ticker disarms it at once and sends nothing more" * doctest::timeout(60)) {
  for (Side side : k_sides) {
    CAPTURE(side_name(side));
    weft::Runtime rt({.workers = 2});
    on_side(rt, side, [&] {
      // (No wait of this fiber times out before the exact counts below: a
      // timer that has just fired may be counted for a moment longer.)
      weft::Ticker ticker(1ms);
      auto ch = ticker.channel();
      CHECK(armed_timers(rt) == 1);
      CHECK(ch.recv_for(10s).ok());  // it runs
      ticker.stop();
      CHECK(ticker.stopped());
      CHECK(armed_timers(rt) == 0);
      ticker.stop();  // idempotent
      CHECK(ticker.stopped());
      // The destructor stops it too, and the channel handle outlives it.
      weft::Channel<weft::Ticker::Tick> kept(0);
      {
        weft::Ticker t2(1ms);
        kept = t2.channel();
        CHECK(armed_timers(rt) == 1);
        CHECK(kept.recv_for(10s).ok());
      }
      CHECK(armed_timers(rt) == 0);
      // Nothing is sent after the stop.
      const auto dropped = ch.dropped();
      (void)ch.try_recv();  // a tick buffered before the stop, if any
      (void)kept.try_recv();
      nap(20ms);
      CHECK_FALSE(ch.try_recv().has_value());
      CHECK_FALSE(kept.try_recv().has_value());
      CHECK(ch.dropped() == dropped);
      // As in Go, stopping does not close the channel: a receiver keeps waiting.
      CHECK_FALSE(ch.is_closed());
      CHECK_FALSE(kept.is_closed());
      CHECK(ch.recv_for(k_short).timed_out());
    });
  }
}

TEST_CASE("time: a Ticker with a period of zero or less throws std::invalid_argument") {
  weft::Runtime rt({.workers = 1});
  CHECK_THROWS_AS(weft::Ticker(0ms), std::invalid_argument);
  CHECK_THROWS_AS(weft::Ticker(0ns), std::invalid_argument);
  CHECK_THROWS_AS(weft::Ticker(-1ns), std::invalid_argument);
  CHECK_THROWS_AS(weft::Ticker(-1s), std::invalid_argument);
  CHECK_THROWS_AS(weft::Ticker(std::chrono::duration<double, std::nano>(0.5)), std::invalid_argument);
  CHECK(armed_timers(rt) == 0);
}

// ---- Bad options ----

TEST_CASE("time: Runtime options with a non-positive time slice or no blocking threads throw std::invalid_argument") {
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .time_slice = 0ns}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .time_slice = -1ms}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .max_blocking_threads = 0}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .max_blocking_threads = 65'537}), std::invalid_argument);
  CHECK_THROWS_AS(weft::Runtime({.workers = 1, .blocking_keep_alive = -1ns}), std::invalid_argument);
  CHECK_NOTHROW(weft::Runtime({.workers = 1, .time_slice = 1ns}));
  CHECK_NOTHROW(weft::Runtime({.workers = 1, .max_blocking_threads = 1}));
  CHECK_NOTHROW(weft::Runtime({.workers = 1, .max_blocking_threads = 65'536}));
  CHECK_NOTHROW(weft::Runtime({.workers = 1, .blocking_keep_alive = 0ns}));
  weft::Runtime rt({.workers = 1, .time_slice = 3ms, .max_blocking_threads = 7, .blocking_keep_alive = 5s});
  CHECK(rt.options().time_slice == 3ms);
  CHECK(rt.options().max_blocking_threads == 7);
  CHECK(rt.options().blocking_keep_alive == 5s);
}

// ---- CPU while waiting ----

TEST_CASE("time: a plain thread blocked on timeout(500ms) uses almost no CPU" * doctest::timeout(60)) {
  for (bool with_runtime : {false, true}) {
    CAPTURE(with_runtime);
    std::optional<weft::Runtime> rt;
    if (with_runtime) rt.emplace(weft::Runtime::Options{.workers = 4});
    std::this_thread::sleep_for(50ms);  // let the workers fall asleep
    const auto before = weft_test::process_cpu_time();
    const auto t0 = Clock::now();
    CHECK_FALSE(weft::timeout(500ms).recv().has_value());
    const auto took = since(t0);
    const auto used = weft_test::process_cpu_time() - before;
    MESSAGE("CPU used while blocked " << ms(took) << " ms on timeout(500ms): " << used.count() << " us");
    CHECK(took >= 500ms);
    CHECK(used < 50ms);  // generous: behaviour (nobody polls the timer), not a speed target
  }
}

TEST_CASE("time: fibers sleeping on long timers use almost no CPU" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 4});
  std::vector<weft::JoinHandle<void>> hs;
  for (int i = 0; i < 100; ++i) hs.push_back(rt.spawn([i] { weft::this_fiber::sleep_for(700ms + i * 1ms); }));
  spin_until([&] { return rt.metrics().parks >= 100; });  // all parked
  std::this_thread::sleep_for(100ms);                       // and the workers asleep
  const auto before = weft_test::process_cpu_time();
  std::this_thread::sleep_for(500ms);
  const auto used = weft_test::process_cpu_time() - before;
  MESSAGE("CPU used over 500 ms with 100 sleeping fibers: " << used.count() << " us");
  CHECK(used < 50ms);
  for (auto& h : hs) h.join();
}

TEST_CASE("time: an idle runtime uses almost no CPU, also after timers and a Ticker were used" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 4});
  auto idle_cpu = [] {
    std::this_thread::sleep_for(50ms);
    const auto before = weft_test::process_cpu_time();
    std::this_thread::sleep_for(500ms);
    return weft_test::process_cpu_time() - before;
  };
  const auto fresh = idle_cpu();
  MESSAGE("CPU used over 500 ms idle (no timers ever): " << fresh.count() << " us");
  CHECK(fresh < 50ms);
  rt.block_on([] {
    std::vector<weft::JoinHandle<void>> hs;
    for (int i = 0; i < 50; ++i) hs.push_back(weft::go([i] { weft::this_fiber::sleep_for(i * 100us); }));
    for (auto& h : hs) h.join();
    weft::Ticker t(1ms);
    for (int i = 0; i < 5; ++i) t.channel().recv();
    weft::Channel<int> silent;
    silent.recv_for(5ms);
    weft::select(weft::on_recv(silent, [](std::optional<int>) {}), weft::after(5ms, [] {}));
  });
  CHECK(no_timers_within(rt));
  const auto after = idle_cpu();
  MESSAGE("CPU used over 500 ms idle after timers: " << after.count() << " us");
  CHECK(after < 50ms);
}

// ---- Deadlock detection with timers ----

TEST_CASE("time: block_on of a fiber that sleeps is not a deadlock" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (bool inline_join : {true, false}) {
      CAPTURE(workers);
      CAPTURE(inline_join);
      weft::Runtime rt({.workers = workers, .inline_join = inline_join});
      try {
        CHECK(rt.block_on([] {
          weft::this_fiber::sleep_for(50ms);
          return 7;
        }) == 7);
        // Every fiber parked: the main one on a join, the other on a sleep.
        // (With inline joins the child may run on the main fiber instead,
        // which then parks in the sleep itself: one park, not two.)
        const std::uint64_t parks_before = rt.metrics().parks;
        CHECK(rt.block_on([] {
          auto h = weft::go([] {
            weft::this_fiber::sleep_for(50ms);
            return 3;
          });
          return h.join();
        }) == 3);
        if (!inline_join) CHECK(rt.metrics().parks - parks_before == 2);
        // ... and on a channel that a sleeper sends to once it wakes.
        CHECK(rt.block_on([] {
          weft::Channel<int> ch;
          auto h = weft::go([ch]() mutable {
            weft::this_fiber::sleep_for(50ms);
            ch.send(5);
          });
          const int v = ch.recv().value_or(-1);
          h.join();
          return v;
        }) == 5);
        // A Ticker wakes its receiver.
        CHECK(rt.block_on([] {
          weft::Ticker t(10ms);
          int n = 0;
          for (; n < 3; ++n) t.channel().recv();
          return n;
        }) == 3);
      } catch (const weft::Deadlock& e) {
        FAIL_CHECK("reported a deadlock while a timer was armed: " << e.what());
      }
    }
  }
}

TEST_CASE("time: timed waits on a channel nobody will use are not deadlocks" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Channel<int> dead(0, "dead");
    weft::Runtime rt({.workers = workers});
    try {
      CHECK(rt.block_on([&] { return dead.recv_for(50ms).status; }) == weft::OpStatus::timed_out);
      CHECK(rt.block_on([&] { return dead.recv_until(Clock::now() + 50ms).status; }) == weft::OpStatus::timed_out);
      CHECK(rt.block_on([&] { return dead.send_for(1, 50ms); }) == weft::OpStatus::timed_out);
      CHECK(rt.block_on([&] {
        return weft::select(weft::on_recv(dead, [](std::optional<int>) {}), weft::after(50ms, [] {}));
      }) == 1);
      CHECK(rt.block_on([&] {
        return weft::select(weft::on_recv(dead, [](std::optional<int>) {}),
                            weft::on_recv(weft::timeout(50ms), [](std::optional<std::monostate>) {}));
      }) == 1);
      CHECK_FALSE(rt.block_on([] { return weft::timeout(50ms).recv().has_value(); }));
      // A fiber parked for good, and the main fiber waiting on it with a timeout.
      CHECK(rt.block_on([&] {
        auto h = weft::go([&] { dead.recv(); });
        const bool finished = h.join_for(50ms);
        h.detach();  // stays parked until shutdown cancels it
        return finished;
      }) == false);
    } catch (const weft::Deadlock& e) {
      FAIL_CHECK("reported a deadlock while a timed wait was pending: " << e.what());
    }
    CHECK(waiting_senders(dead) == 0);
  }
}

TEST_CASE("time: timed sync waits nobody will end are not deadlocks" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Mutex m;
    weft::CondVar cv;
    weft::WaitGroup wg;
    weft::Channel<int> dead(0, "dead");
    weft::Runtime rt({.workers = workers});
    try {
      CHECK(rt.block_on([&] {
        std::unique_lock<weft::Mutex> lk(m);
        return cv.wait_for(lk, 50ms);
      }) == std::cv_status::timeout);
      CHECK_FALSE(rt.block_on([&] {
        std::unique_lock<weft::Mutex> lk(m);
        return cv.wait_until(lk, Clock::now() + 50ms, [] { return false; });
      }));
      wg.add(1);
      CHECK_FALSE(rt.block_on([&] { return wg.wait_for(50ms); }));
      wg.done();
      // The mutex is held by a fiber parked for good.
      CHECK_FALSE(rt.block_on([&] {
        std::atomic<bool> held{false};
        weft::go([&] {
          std::lock_guard<weft::Mutex> g(m);
          held = true;
          dead.recv();
        }).detach();
        while (!held.load()) weft::this_fiber::yield();
        return m.try_lock_for(50ms);
      }));
    } catch (const weft::Deadlock& e) {
      FAIL_CHECK("reported a deadlock while a timed wait was pending: " << e.what());
    }
    rt.shutdown();  // cancels the holder: its lock_guard unlocks
    CHECK(m.try_lock());
    m.unlock();
  }
}

TEST_CASE("time: a fiber receiving on a channel nobody sends to is a deadlock, also after timers were used" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Channel<int> dead(0, "nobody sends here");
    weft::Runtime rt({.workers = workers});
    auto before = deadlock_message(rt, [&] { dead.recv(); });
    REQUIRE(before.has_value());
    CHECK(before->find("nobody sends here") != std::string::npos);
    // Every kind of timer, each ended by its deadline or cancelled.
    rt.block_on([] {
      weft::this_fiber::sleep_for(5ms);
      CHECK_FALSE(weft::timeout(5ms).recv().has_value());
      { auto unused = weft::timeout(1h); }
      weft::Channel<int> ch(0, "fed");
      auto feeder = weft::go([ch]() mutable {
        for (int i = 0; i < 3; ++i) {
          weft::this_fiber::sleep_for(5ms);
          ch.send(i);
        }
      });
      CHECK(ch.recv_for(1h).ok());
      CHECK(weft::select(weft::on_recv(ch, [](std::optional<int>) {}), weft::after(1h, [] {})) == 0);
      CHECK(weft::select(weft::on_recv(ch, [](std::optional<int>) {}),
                         weft::on_recv(weft::timeout(1h), [](std::optional<std::monostate>) {})) == 0);
      feeder.join();
      CHECK(ch.recv_for(5ms).timed_out());
      CHECK(weft::select(weft::on_recv(ch, [](std::optional<int>) {}), weft::after(5ms, [] {})) == 1);
      {
        weft::Ticker t(1ms);
        t.channel().recv();
      }
    });
    // A timer left armed would hold the report below back (for an hour).
    if (!no_timers_within(rt, 5s)) continue;
    auto after = deadlock_message(rt, [&] { dead.recv(); });
    REQUIRE(after.has_value());
    CHECK(after->find("nobody sends here") != std::string::npos);
  }
}

TEST_CASE("time: an armed timer holds a deadlock report back until it has fired" * doctest::timeout(120)) {
  // The main fiber waits on a channel nobody will ever send to; something
  // else holds a timer. Nothing is woken by it, but until it fires nobody
  // can know that: the report must come, and not before the deadline.
  for (std::size_t workers : k_worker_counts) {
    for (int variant = 0; variant < 5; ++variant) {
      CAPTURE(workers);
      CAPTURE(variant);
      weft::Channel<int> dead(0, "dead"), other(0, "other");
      weft::Runtime rt({.workers = workers});
      const auto deadline = Clock::now() + 200ms;
      auto msg = deadlock_message(rt, [&, deadline] {
        weft::Channel<std::monostate> kept;
        switch (variant) {
          case 0: weft::go([deadline] { weft::this_fiber::sleep_until(deadline); }).detach(); break;
          case 1: weft::go([&, deadline] { other.recv_until(deadline); }).detach(); break;
          case 2:
            weft::go([&, deadline] {
              weft::select(weft::on_recv(other, [](std::optional<int>) {}), weft::after_until(deadline, [] {}));
            }).detach();
            break;
          case 3: weft::go([deadline] { weft::timeout_at(deadline).recv(); }).detach(); break;
          // Nobody waits on it, so it arms nothing and wakes nobody: it
          // does not hold the report back.
          default: kept = weft::timeout_at(deadline + 1h); break;
        }
        dead.recv();
      });
      const auto reported_at = Clock::now();
      REQUIRE(msg.has_value());
      if (variant == 4) {
        CHECK(reported_at < deadline + 1h);  // it came at all: the test would time out otherwise
      } else {
        CHECK(reported_at >= deadline);
      }
      CHECK(msg->find("dead") != std::string::npos);
    }
  }
}

TEST_CASE("time: a plain thread in a timed wait holds a deadlock report back until it returns" *
          doctest::timeout(120)) {
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    weft::Channel<int> dead(0, "dead"), other(0, "other");
    weft::Runtime rt({.workers = 2});
    const auto deadline = Clock::now() + 300ms;
    auto closing = weft::timeout_at(deadline);  // variant 2: a timeout channel, which the thread times itself
    std::atomic<bool> entering{false};
    std::thread t([&] {
      entering = true;
      if (variant == 0) {
        weft::this_fiber::sleep_until(deadline);
      } else if (variant == 1) {
        CHECK(other.recv_until(deadline).timed_out());
      } else {
        CHECK_FALSE(closing.recv().has_value());
      }
    });
    spin_until([&] { return entering.load(); });
    if (variant == 1) {
      spin_until([&] { return waiting_receivers(other) == 1; });
    } else if (variant == 2) {
      spin_until([&] { return waiting_receivers(closing) == 1; });
    } else {
      // A plain thread's sleep cannot be seen; if it has not started yet the
      // report comes early and the check below fails (it cannot pass wrongly).
      std::this_thread::sleep_for(50ms);
    }
    auto msg = deadlock_message(rt, [&] { dead.recv(); });
    const auto reported_at = Clock::now();
    t.join();
    REQUIRE(msg.has_value());
    CHECK(reported_at >= deadline);
  }
}

TEST_CASE("time: a fiber sleeping forever is a deadlock" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    auto msg = deadlock_message(rt, [] { weft::this_fiber::sleep_until(Clock::time_point::max()); });
    REQUIRE(msg.has_value());
    CHECK(msg->find("sleep") != std::string::npos);
    CHECK(armed_timers(rt) == 0);
    msg = deadlock_message(rt, [] { weft::this_fiber::sleep_for(std::chrono::hours::max()); });
    CHECK(msg.has_value());
    CHECK(armed_timers(rt) == 0);
  }
}
