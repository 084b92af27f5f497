// weft::blocking (the blocking pool: off the workers, results and exceptions,
// limits, keep-alive, shutdown, deadlock detection) and
// this_fiber::maybe_yield (time slices).
//
// Upper bounds on time appear only where the behaviour is about time (calls
// that overlap instead of queueing, a slice that ends) and are generous: the
// test machines are small and noisy.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::Actor;
using weft_test::k_sides;
using weft_test::k_worker_counts;
using weft_test::Side;
using weft_test::side_name;
using weft_test::spin_until;

using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration since(Clock::time_point t0) { return Clock::now() - t0; }

long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// Sleeps the calling (plain) thread until `flag` is set, for at most
// `limit`; returns whether it was set.
bool wait_for_flag(const std::atomic<bool>& flag, Clock::duration limit) {
  const auto deadline = Clock::now() + limit;
  while (!flag.load()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Raises `peak` to at least `value`.
void raise_to(std::atomic<int>& peak, int value) {
  int seen = peak.load();
  while (value > seen && !peak.compare_exchange_weak(seen, value)) {
  }
}

// Runs batches of short fibers on rt until fibers have run on every one of
// its `workers` workers, or `limit` has passed; returns the bit mask of the
// workers that ran one.
std::uint64_t workers_running_fibers(weft::Runtime& rt, std::size_t workers, Clock::duration limit) {
  const std::uint64_t all = (std::uint64_t{1} << workers) - 1;
  std::atomic<std::uint64_t> seen{0};
  const auto deadline = Clock::now() + limit;
  while (seen.load() != all && Clock::now() < deadline) {
    std::vector<weft::JoinHandle<void>> batch;
    for (int i = 0; i < 64; ++i) {
      batch.push_back(rt.spawn([&seen, i] {
        seen.fetch_or(std::uint64_t{1} << weft::this_fiber::worker_index());
        volatile unsigned long long sink = weft_test::burn(static_cast<unsigned long long>(i), 20);
        (void)sink;
      }));
    }
    for (auto& h : batch) h.join();
  }
  return seen.load();
}

struct Custom {
  int code;
};

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  int value;
};

}  // namespace

// ---- Off the workers ----

TEST_CASE("blocking: 200 calls sleeping 50 ms overlap, finishing far sooner than one after another" *
          doctest::timeout(300)) {
  constexpr int k_calls = 200;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    std::atomic<int> running{0}, peak{0}, finished{0};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> beats{0};
    // Fibers that keep beating (1 ms sleeps) while the calls are in flight.
    std::vector<weft::JoinHandle<void>> beaters;
    for (std::size_t w = 0; w < workers; ++w) {
      beaters.push_back(rt.spawn([&] {
        while (!stop.load()) {
          beats.fetch_add(1);
          weft::this_fiber::sleep_for(1ms);
        }
      }));
    }
    spin_until([&] { return beats.load() > 0; });
    const auto t0 = Clock::now();
    std::vector<weft::JoinHandle<void>> calls;
    for (int i = 0; i < k_calls; ++i) {
      calls.push_back(rt.spawn([&] {
        weft::blocking([&] {
          raise_to(peak, running.fetch_add(1) + 1);
          std::this_thread::sleep_for(50ms);
          running.fetch_sub(1);
        });
        finished.fetch_add(1);
      }));
    }
    spin_until([&] { return rt.metrics().blocking_in_flight > 0 || finished.load() == k_calls; });
    const std::uint64_t beats_at_start = beats.load();
    for (auto& h : calls) h.join();
    const auto took = since(t0);
    const std::uint64_t beats_during = beats.load() - beats_at_start;
    stop = true;
    for (auto& h : beaters) h.join();
    MESSAGE(workers << " workers: " << k_calls << " x 50 ms blocking calls took " << ms(took)
                    << " ms; at most " << peak.load() << " at once; " << beats_during << " beats meanwhile");
    CHECK(finished.load() == k_calls);
    CHECK(took < 5s);                                            // 200 x 50 ms one after another is 10 s
    CHECK(peak.load() > static_cast<int>(workers));              // not run on the workers
    CHECK(peak.load() <= 128);                                   // Options::max_blocking_threads (default)
    CHECK(rt.metrics().blocking_threads <= 128);
    CHECK(beats_during > 0);                                     // fibers kept running
    spin_until([&] { return rt.metrics().blocking_in_flight == 0; });
  }
}

TEST_CASE("blocking: every worker keeps running fibers while calls are blocked" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    // More calls than workers, each blocked until the test lets it go: run
    // on the workers, they would stop every one of them.
    const int n = static_cast<int>(4 * workers + 4);
    std::atomic<int> started{0};
    std::atomic<bool> gate{false};
    std::vector<weft::JoinHandle<bool>> calls;
    for (int i = 0; i < n; ++i) {
      calls.push_back(rt.spawn([&] {
        return weft::blocking([&] {
          started.fetch_add(1);
          return wait_for_flag(gate, 30s);
        });
      }));
    }
    spin_until([&] { return started.load() == n; });  // all running at once
    CHECK(rt.metrics().blocking_in_flight == static_cast<std::size_t>(n));
    CHECK(rt.metrics().blocking_threads >= static_cast<std::size_t>(n));
    const std::uint64_t seen = workers_running_fibers(rt, workers, 10s);
    CHECK(seen == (std::uint64_t{1} << workers) - 1);
    CHECK_FALSE(gate.load());
    CHECK(started.load() == n);
    gate = true;
    for (auto& h : calls) CHECK(h.join());  // each saw the gate open, none gave up
    spin_until([&] { return rt.metrics().blocking_in_flight == 0; });
  }
}

// ---- Results ----

TEST_CASE("blocking: returns f's value and rethrows its exception, from a fiber and from a plain thread" *
          doctest::timeout(120)) {
  for (Side side : k_sides) {
    CAPTURE(side_name(side));
    weft::Runtime rt({.workers = 2});
    Actor a(rt, side, [] {
      CHECK(weft::blocking([] { return 42; }) == 42);
      const std::string s = weft::blocking([] { return std::string(100, 'x'); });
      CHECK(s == std::string(100, 'x'));
      auto p = weft::blocking([] { return std::make_unique<int>(7); });  // move-only
      REQUIRE(p != nullptr);
      CHECK(*p == 7);
      CHECK(weft::blocking([] { return NoDefault(3); }).value == 3);
      bool ran = false;
      weft::blocking([&] { ran = true; });  // void
      CHECK(ran);
      // f is invoked by reference: a stateful callable keeps its state.
      auto counter = [n = 0]() mutable { return ++n; };
      CHECK(weft::blocking(counter) == 1);
      CHECK(weft::blocking(counter) == 2);
      CHECK(counter() == 3);
      // It may use the caller's locals, and what it wrote is visible after.
      std::vector<int> filled;
      weft::blocking([&] { filled.assign({1, 2, 3}); });
      CHECK(filled == std::vector<int>{1, 2, 3});
      // Exceptions of any type.
      CHECK_THROWS_WITH_AS(weft::blocking([]() -> int { throw std::runtime_error("from the pool"); }), "from the pool",
                           std::runtime_error);
      CHECK_THROWS_AS(weft::blocking([] { throw std::invalid_argument("bad"); }), std::invalid_argument);
      int code = 0;
      try {
        weft::blocking([] { throw Custom{5}; });
      } catch (const Custom& c) {
        code = c.code;
      }
      CHECK(code == 5);
      // Still usable after a throw.
      CHECK(weft::blocking([] { return 1; }) == 1);
    });
    a.join();
    spin_until([&] { return rt.metrics().blocking_in_flight == 0; });
  }
}

TEST_CASE("blocking: from a fiber f runs on another thread, not in a fiber; from a plain thread it runs inline" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    struct Seen {
      std::thread::id before, in_f, after;
      bool f_in_fiber = true;
      bool still_in_fiber = false;
    };
    const Seen seen = rt.block_on([] {
      Seen s;
      s.before = std::this_thread::get_id();
      s.in_f = weft::blocking([&] {
        s.f_in_fiber = weft::this_fiber::in_fiber();
        return std::this_thread::get_id();
      });
      s.after = std::this_thread::get_id();
      s.still_in_fiber = weft::this_fiber::in_fiber();
      return s;
    });
    CHECK(seen.in_f != seen.before);
    CHECK(seen.in_f != seen.after);
    CHECK(seen.in_f != std::this_thread::get_id());
    CHECK_FALSE(seen.f_in_fiber);
    CHECK(seen.still_in_fiber);
    // A plain thread, with this runtime alive.
    bool f_in_fiber = true;
    CHECK(weft::blocking([&] {
      f_in_fiber = weft::this_fiber::in_fiber();
      return std::this_thread::get_id();
    }) == std::this_thread::get_id());
    CHECK_FALSE(f_in_fiber);
    CHECK(rt.metrics().blocking_threads <= 1);  // the inline call used no pool thread
  }
  // A plain thread with no runtime anywhere.
  std::thread::id inner;
  std::thread t([&] { inner = weft::blocking([] { return std::this_thread::get_id(); }); });
  const std::thread::id outer = t.get_id();
  t.join();
  CHECK(inner == outer);
}

TEST_CASE("blocking: f may block its thread on weft channels and joins" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> ch(0, "to the pool");
    auto receiver = rt.spawn([&] { return weft::blocking([&] { return ch.recv().value_or(-1); }); });
    auto sender = rt.spawn([&] {
      spin_until([&] { return weft_test::waiting_receivers(ch) == 1; });  // the pool thread is blocked in recv
      ch.send(9);
    });
    CHECK(receiver.join() == 9);
    sender.join();
    auto task = rt.spawn([] {
      weft::this_fiber::sleep_for(10ms);
      return 4;
    });
    CHECK(rt.spawn([&] { return weft::blocking([&] { return task.join(); }); }).join() == 4);
  }
}

// ---- Pool limits and bookkeeping ----

TEST_CASE("blocking: blocking_in_flight counts queued and running calls and returns to 0; idle threads retire" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2, .max_blocking_threads = 2, .blocking_keep_alive = 50ms});
  CHECK(rt.metrics().blocking_in_flight == 0);
  CHECK(rt.metrics().blocking_threads == 0);  // threads are created on demand
  constexpr int n = 5;
  std::atomic<int> running{0}, peak{0};
  std::atomic<bool> gate{false};
  std::vector<weft::JoinHandle<bool>> calls;
  for (int i = 0; i < n; ++i) {
    calls.push_back(rt.spawn([&] {
      return weft::blocking([&] {
        raise_to(peak, running.fetch_add(1) + 1);
        const bool opened = wait_for_flag(gate, 30s);
        running.fetch_sub(1);
        return opened;
      });
    }));
  }
  spin_until([&] { return rt.metrics().blocking_in_flight == n && running.load() == 2; });
  CHECK(rt.metrics().blocking_threads == 2);
  std::this_thread::sleep_for(20ms);
  CHECK(running.load() == 2);  // the other three wait for a thread
  CHECK(rt.metrics().blocking_in_flight == n);
  gate = true;
  for (auto& h : calls) CHECK(h.join());
  CHECK(peak.load() == 2);
  spin_until([&] { return rt.metrics().blocking_in_flight == 0; });
  // Idle for blocking_keep_alive: the threads exit.
  spin_until([&] { return rt.metrics().blocking_threads == 0; });
  // And the pool starts one again when needed.
  CHECK(rt.block_on([] { return weft::blocking([] { return 5; }); }) == 5);
  CHECK(rt.metrics().blocking_threads <= 1);
}

TEST_CASE("blocking: pool threads stay for blocking_keep_alive before retiring" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 1});  // keep-alive 10 s
  CHECK(rt.block_on([] { return weft::blocking([] { return 1; }); }) == 1);
  std::this_thread::sleep_for(100ms);
  CHECK(rt.metrics().blocking_threads == 1);
}

TEST_CASE("blocking: with one pool thread, queued calls run one at a time in the order made" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2, .max_blocking_threads = 1});
  constexpr int n = 10;
  std::mutex order_lock;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::atomic<int> running{0}, peak{0};
  std::atomic<bool> gate{false};
  std::vector<weft::JoinHandle<void>> calls;
  for (int i = 0; i < n; ++i) {
    calls.push_back(rt.spawn([&, i] {
      weft::blocking([&, i] {
        raise_to(peak, running.fetch_add(1) + 1);
        if (i == 0) wait_for_flag(gate, 30s);
        {
          std::lock_guard<std::mutex> g(order_lock);
          order.push_back(i);
          threads.push_back(std::this_thread::get_id());
        }
        running.fetch_sub(1);
      });
    }));
    // Made in order: the next call only once this one is queued.
    spin_until([&] { return rt.metrics().blocking_in_flight == static_cast<std::size_t>(i + 1); });
  }
  gate = true;
  for (auto& h : calls) h.join();
  std::vector<int> expected(n);
  for (int i = 0; i < n; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(order == expected);
  CHECK(peak.load() == 1);
  CHECK(std::all_of(threads.begin(), threads.end(), [&](std::thread::id t) { return t == threads.front(); }));
  CHECK(rt.metrics().blocking_threads == 1);
}

// ---- Shutdown and deadlock detection ----

TEST_CASE("blocking: shutdown waits for calls in flight, and their fibers get the results" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    std::atomic<int> f_done{0}, delivered{0};
    // One pool thread: the second and third calls are queued when shutdown starts.
    weft::Runtime rt({.workers = workers, .max_blocking_threads = 1});
    std::vector<weft::JoinHandle<int>> hs;
    for (int i = 0; i < 3; ++i) {
      hs.push_back(rt.spawn([&, i] {
        const int v = weft::blocking([&, i] {
          std::this_thread::sleep_for(i == 0 ? 100ms : 10ms);
          f_done.fetch_add(1);
          return 40 + i;
        });
        delivered.fetch_add(1);
        return v;
      }));
    }
    spin_until([&] { return rt.metrics().blocking_in_flight == 3; });
    CHECK(f_done.load() == 0);
    rt.shutdown();
    CHECK(f_done.load() == 3);
    CHECK(delivered.load() == 3);
    for (int i = 0; i < 3; ++i) CHECK(hs[static_cast<std::size_t>(i)].join() == 40 + i);
    CHECK(rt.metrics().blocking_in_flight == 0);
  }
}

TEST_CASE("blocking: a call in flight is not a deadlock, and detection works again afterwards" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Channel<int> dead(0, "dead");
    weft::Runtime rt({.workers = workers});
    try {
      CHECK(rt.block_on([] {
        return weft::blocking([] {
          std::this_thread::sleep_for(50ms);
          return 1;
        });
      }) == 1);
      // Every fiber parked: the main one on a channel, the other in blocking().
      CHECK(rt.block_on([] {
        weft::Channel<int> ch;
        auto h = weft::go([ch]() mutable {
          const int v = weft::blocking([] {
            std::this_thread::sleep_for(50ms);
            return 8;
          });
          ch.send(v);
        });
        const int r = ch.recv().value_or(-1);
        h.join();
        return r;
      }) == 8);
    } catch (const weft::Deadlock& e) {
      FAIL_CHECK("reported a deadlock while a blocking call was in flight: " << e.what());
    }
    spin_until([&] { return rt.metrics().blocking_in_flight == 0; });
    bool threw = false;
    try {
      rt.block_on([&] { dead.recv(); });
    } catch (const weft::Deadlock&) {
      threw = true;
    }
    CHECK(threw);
  }
}

TEST_CASE("blocking: a call in flight holds a deadlock report back until it returns" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Channel<int> dead(0, "dead");
    weft::Runtime rt({.workers = workers});
    std::atomic<bool> returned{false};
    bool threw = false, returned_first = false;
    try {
      rt.block_on([&] {
        weft::go([&] {
          weft::blocking([&] {
            std::this_thread::sleep_for(200ms);
            returned = true;
          });
        }).detach();
        dead.recv();  // nobody will ever send: a deadlock, once the call is back
      });
    } catch (const weft::Deadlock&) {
      threw = true;
      returned_first = returned.load();
    }
    CHECK(threw);
    CHECK(returned_first);
  }
}

// ---- maybe_yield ----

TEST_CASE("maybe_yield: a fiber looping on one worker lets a sleeping fiber wake within a few slices" *
          doctest::timeout(120)) {
  for (std::chrono::nanoseconds slice : {std::chrono::nanoseconds(10ms), std::chrono::nanoseconds(1ms),
                                         std::chrono::nanoseconds(50ms)}) {
    CAPTURE(ms(slice));
    weft::Runtime rt({.workers = 1, .time_slice = slice});
    std::atomic<bool> sleeping{false}, woke{false};
    std::atomic<long long> slept_us{-1};
    auto sleeper = rt.spawn([&] {
      const auto t0 = Clock::now();
      sleeping = true;
      weft::this_fiber::sleep_for(1ms);
      slept_us = std::chrono::duration_cast<std::chrono::microseconds>(since(t0)).count();
      woke = true;
    });
    spin_until([&] { return sleeping.load(); });
    // The only worker runs this loop, which never parks; without
    // maybe_yield the sleeper would wait for the whole 10 s.
    auto spinner = rt.spawn([&] {
      const auto end = Clock::now() + 10s;
      unsigned long long h = 1;
      while (!woke.load(std::memory_order_relaxed) && Clock::now() < end) {
        h = weft_test::burn(h, 1);
        weft::this_fiber::maybe_yield();
      }
      return h;
    });
    spinner.join();
    sleeper.join();
    MESSAGE("slice " << ms(slice) << " ms: a 1 ms sleep took " << slept_us.load() << " us beside a looping fiber");
    CHECK(woke.load());
    CHECK(std::chrono::microseconds(slept_us.load()) < std::max<std::chrono::nanoseconds>(200ms, 4 * slice));
  }
}

TEST_CASE("maybe_yield: the time slice sets how often a looping fiber gives the worker away" *
          doctest::timeout(120)) {
  constexpr auto loop_time = 300ms;
  int turns_by_slice[2] = {0, 0};
  const std::chrono::nanoseconds slices[2] = {1ms, 50ms};
  for (int k = 0; k < 2; ++k) {
    CAPTURE(ms(slices[k]));
    weft::Runtime rt({.workers = 1, .time_slice = slices[k]});
    std::atomic<bool> stop{false}, other_started{false};
    std::atomic<int> turns{0};
    // Runs once each time the looping fiber gives the worker away.
    auto other = rt.spawn([&] {
      other_started = true;
      while (!stop.load()) {
        turns.fetch_add(1);
        weft::this_fiber::yield();
      }
    });
    spin_until([&] { return other_started.load(); });
    int during = -1;
    auto looper = rt.spawn([&] {
      const int at_start = turns.load();
      const auto t0 = Clock::now();
      unsigned long long h = 1;
      while (since(t0) < loop_time) {
        h = weft_test::burn(h, 1);
        weft::this_fiber::maybe_yield();
      }
      during = turns.load() - at_start;
      stop = true;
      return h;
    });
    looper.join();
    other.join();
    turns_by_slice[k] = during;
    MESSAGE("slice " << ms(slices[k]) << " ms: the looping fiber gave way " << during << " times in "
                     << ms(loop_time) << " ms");
  }
  // 1 ms: about 300 times. 50 ms: about 6, and never more often than once a slice.
  CHECK(turns_by_slice[0] >= 30);
  CHECK(turns_by_slice[1] <= static_cast<int>(loop_time / 50ms) + 3);
  CHECK(turns_by_slice[1] >= 1);
  CHECK(turns_by_slice[0] > turns_by_slice[1]);
}

TEST_CASE("maybe_yield: does nothing on a plain thread, and just returns in a fiber with nothing else to run" *
          doctest::timeout(60)) {
  // maybe_yield may throw weft::Cancelled (test_cancel.cpp), never anything else.
  for (int i = 0; i < 1'000'000; ++i) weft::this_fiber::maybe_yield();  // no runtime at all
  weft::Runtime rt({.workers = 1, .time_slice = 1ms});
  for (int i = 0; i < 1'000'000; ++i) weft::this_fiber::maybe_yield();  // a runtime, but not in it
  std::thread t([] {
    for (int i = 0; i < 1'000'000; ++i) weft::this_fiber::maybe_yield();
  });
  t.join();
  // The same loop on a plain thread, where maybe_yield does nothing: how
  // many passes 50 ms hold on this machine.
  const auto count_passes = [] {
    const auto t0 = Clock::now();
    unsigned long long n = 0;
    while (since(t0) < 50ms) {
      weft::this_fiber::maybe_yield();
      ++n;
    }
    return n;
  };
  const unsigned long long plain_calls = count_passes();
  // Alone on its worker, past many slices (50 of them): it keeps running.
  // At each slice's end it yields, and with nothing else to run it is
  // resumed at once: it never parks, and no call holds it up.
  const std::uint64_t parks_before = rt.metrics().parks;
  const unsigned long long calls = rt.block_on(count_passes);
  MESSAGE("passes in 50 ms: " << calls << " in a fiber alone on its worker (1 ms slices), " << plain_calls
                              << " on a plain thread");
  CHECK(rt.metrics().parks == parks_before);
  // Counting down to the next clock read costs next to nothing, and a read
  // comes about every 50 us: the fiber's loop runs at nearly the plain
  // thread's pace. A tenth of it (room for a noisy machine) means calls held
  // the fiber up.
  CHECK(calls * 10 >= plain_calls);
}
