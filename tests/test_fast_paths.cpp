// The scheduler's fast paths (issue 17) keep every promise of the slow ones:
//  - runnext: a woken fiber runs next on its waker's worker, but a waker that
//    goes on computing without ever switching out does not hold it up: an
//    idle worker takes it;
//  - direct switches: a parking fiber switches straight to the next local
//    fiber, yet due timers still fire while two fibers hand work back and
//    forth on one worker for ever;
//  - fiber reuse: a finished fiber runs the next queued task on its own
//    stack, yet each task still gets its own id and its own cancellation
//    state.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"
#include "weft/detail/channel_core.hpp"

using namespace std::chrono_literals;

using weft_test::spin_for_flag;

namespace {

// A fiber parked in a receive on its own channel until wake() sends to it;
// `woke` says it ran after that. The constructor returns once it is about
// to park.
struct ParkedSleeper {
  std::atomic<bool> woke{false};
  weft::Channel<int> ch{1};
  weft::JoinHandle<void> fiber;
  ParkedSleeper() {
    weft::WaitGroup parked;
    parked.add(1);
    fiber = weft::go([this, &parked] {
      parked.done();
      (void)ch.recv();  // parked until wake()
      woke = true;
    });
    parked.wait();
  }
  void wake() { ch.send(1); }  // into the waker's worker's runnext slot
};

// Voluntary context switches of this process's worker threads (each wait
// on a futex that blocks is one), from /proc.
std::uint64_t worker_voluntary_switches() {
  std::uint64_t n = 0;
  for (const auto& dir : weft_test::worker_thread_dirs()) {
    std::ifstream status(dir / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) n += std::stoull(line.substr(line.find(':') + 1));
    }
  }
  return n;
}

}  // namespace

TEST_CASE("fast paths: a fiber woken by a fiber that then computes without switching out runs on the idle worker" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    const bool ok = rt.block_on([] {
      ParkedSleeper sleeper;
      weft::this_fiber::sleep_for(1ms);  // let the sleeper park for sure
      auto waker = weft::go([&] {
        sleeper.wake();                           // into this worker's runnext slot
        return spin_for_flag(sleeper.woke, 10s);  // and never switches out meanwhile
      });
      const bool seen = waker.join();
      sleeper.fiber.join();
      return seen;
    });
    CHECK(ok);
  }
}

// The same, while the idle worker watches the runnext slots instead of
// being woken for each push (a hand-off between two fibers has been going
// on: worker.hpp, "Watching"): the watcher still takes the stuck fiber.
// The watch is on at the moment of the push in a few tries per thousand
// (a watcher that never got up missed 3 of 1,000), hence many short ones.
TEST_CASE("fast paths: a fiber woken during a hand-off by a waker that then computes runs on the watching worker" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  const int failed = rt.block_on([] {
    weft::Channel<int> ping, pong;
    auto echo = weft::go([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    int misses = 0;
    for (int trial = 0; trial < 2000; ++trial) {
      ParkedSleeper sleeper;
      // Hand off for a while: the other worker searches, finds only fresh
      // runnext tasks, and sleeps watching. (The sleeper parks meanwhile.)
      const auto until = std::chrono::steady_clock::now() + 300us;
      while (std::chrono::steady_clock::now() < until) {
        ping.send(1);
        (void)pong.recv();
      }
      sleeper.wake();                                   // into this worker's runnext slot
      if (!spin_for_flag(sleeper.woke, 10s)) ++misses;  // and never switches out meanwhile
      sleeper.fiber.join();
    }
    ping.close();
    echo.join();
    return misses;
  });
  CHECK(failed == 0);
}

// The watcher lies down once for a whole hand-off: when its watch runs
// out while the hand-off goes on, it watches again without getting up (it
// used to get up, search and lie down again every 50 us, and whenever it
// found the slot empty it slept unwatched, so the next push woke it).
TEST_CASE("fast paths: the idle worker stays asleep while two fibers hand off on the other one" *
          doctest::timeout(120)) {
  if (weft_test::k_thread_sanitizer) return;  // a hand-off there outlasts the grace period: thieves take it
  weft::Runtime rt({.workers = 2});
  const auto wakeups = [&rt] {
    std::uint64_t n = 0;
    for (const auto& w : rt.metrics().per_worker) n += w.wakeups;
    return n;
  };
  const auto [woken, trips] = rt.block_on([&] {
    weft::Channel<int> ping, pong;
    auto echo = weft::go([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    for (int i = 0; i < 1000; ++i) {  // long enough for the other worker to start watching
      ping.send(1);
      (void)pong.recv();
    }
    const std::uint64_t before = wakeups();
    // 100 ms of hand-offs: the old watcher got up 3,844 times in one run.
    long n = 0;
    for (const auto until = std::chrono::steady_clock::now() + 100ms; std::chrono::steady_clock::now() < until;) {
      ping.send(1);
      (void)pong.recv();
      ++n;
    }
    const std::uint64_t woke = wakeups() - before;
    ping.close();
    echo.join();
    return std::pair{woke, n};
  });
  MESSAGE("wake-ups of a worker during " << trips << " round trips: " << woken);
  CHECK(woken < 100);
}

// ... and stops watching once it is over: an idle runtime's workers sleep
// until woken, not in 50 us watches for ever.
TEST_CASE("fast paths: a watch ends when the hand-off does" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::Channel<int> ping, pong;
    auto echo = weft::go([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    for (const auto until = std::chrono::steady_clock::now() + 50ms; std::chrono::steady_clock::now() < until;) {
      ping.send(1);
      (void)pong.recv();
    }
    ping.close();
    echo.join();
  });
  std::this_thread::sleep_for(50ms);  // the watch, and the idle trim after 5 ms, are over
  const std::uint64_t before = worker_voluntary_switches();
  std::this_thread::sleep_for(200ms);  // a watch that never ended: ~4,000 more
  const std::uint64_t blocked = worker_voluntary_switches() - before;
  MESSAGE("worker futex sleeps in 200 ms idle: " << blocked);
  CHECK(blocked < 40);
}

TEST_CASE("fast paths: timers fire while two fibers hand off to each other on one worker without end" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 1});
  const long trips = rt.block_on([] {
    std::atomic<bool> done{false};
    weft::Channel<int> ping, pong;
    auto echo = weft::go([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    auto timer = weft::go([&] {
      weft::this_fiber::sleep_for(5ms);
      done = true;
    });
    long n = 0;
    while (!done.load()) {  // each round trip parks both fibers: direct switches only
      ping.send(1);
      (void)pong.recv();
      ++n;
    }
    ping.close();
    echo.join();
    timer.join();
    return n;
  });
  CHECK(trips > 0);
}

TEST_CASE("fast paths: a queued task run on a finished fiber's stack has its own id" * doctest::timeout(120)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t n = 2000;
    std::vector<weft::FiberId> ids(n);
    rt.block_on([&] {
      weft::WaitGroup wg;
      wg.add(static_cast<std::int64_t>(n));
      for (std::size_t i = 0; i < n; ++i) {
        weft::go([&, i] {
          ids[i] = weft::this_fiber::id();
          wg.done();
        }).detach();
      }
      wg.wait();
    });
    std::sort(ids.begin(), ids.end());
    CHECK(ids.front() != weft::FiberId{});
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  }
}

TEST_CASE("fast paths: a task that follows a cancelled one on the same worker is not cancelled" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 1, .inline_join = false});
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    std::atomic<bool> started{false};
    std::atomic<bool> next_cancelled{true};
    std::atomic<bool> next_slept{false};
    // From a plain thread both go through the injector, in this order: the
    // second waits until the first ends, then runs on the first's fiber.
    auto first = rt.spawn([&] {
      started = true;
      while (!weft::this_fiber::cancelled()) {
      }
    });
    auto next = rt.spawn([&] {
      next_cancelled = weft::this_fiber::cancelled();
      weft::this_fiber::sleep_for(1ms);  // throws weft::Cancelled if it inherited the flag
      next_slept = true;
    });
    std::thread canceller([&] {
      while (!started.load()) std::this_thread::yield();
      first.cancel();
    });
    canceller.join();
    try {
      first.join();
    } catch (const weft::Cancelled&) {
      // Either way: it was cancelled while it ran.
    }
    next.join();
    CHECK_FALSE(next_cancelled.load());
    CHECK(next_slept.load());
  }
}

// A finishing fiber runs queued tasks that have not started on its own
// stack before a fiber it (or an earlier task) woke, so a parent that
// collects its children's results over a channel wakes once for many of
// them (skynet); but the woken fiber waits behind at most 16 of them.
TEST_CASE("fast paths: a woken fiber waits behind at most 16 fresh tasks of a finishing fiber" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 1});
  for (const int children : {4, 40}) {
    CAPTURE(children);
    const std::vector<int> order = rt.block_on([&] {
      std::vector<int> ran;  // one worker: no lock needed
      weft::Channel<int> results(static_cast<std::size_t>(children));
      for (int i = 0; i < children; ++i) {
        weft::go([&ran, results, i]() mutable {
          ran.push_back(i);
          results.send(i);  // the first send wakes the parent (runnext)
        }).detach();
      }
      (void)results.recv();  // parks: the children run, the newest first
      ran.push_back(-1);     // the parent again
      for (int i = 1; i < children; ++i) (void)results.recv();
      return ran;
    });
    const auto parent = std::find(order.begin(), order.end(), -1);
    REQUIRE(parent != order.end());
    REQUIRE(order.size() == static_cast<std::size_t>(children) + 1);
    // The child that woke the parent, then up to 16 more before it (and
    // perhaps one more: every 31st pick takes the deque's oldest task).
    const auto before = parent - order.begin();
    if (children <= 17) {
      CHECK(before == children);
    } else {
      CHECK(before >= 17);
      CHECK(before <= 18);
    }
  }
}

// A lone worker's runnext slot is filled and emptied without atomics
// (nobody steals on one worker: Worker::push_woken): the fiber woken last
// runs next, and the ones it displaced into the deque all run after it.
TEST_CASE("fast paths: on one worker the fiber woken last runs first, and those it displaced still run" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 1});
  for (const int woken : {1, 2, 5}) {
    CAPTURE(woken);
    const std::vector<int> order = rt.block_on([&] {
      std::vector<int> ran;  // one worker: no lock needed
      std::vector<weft::Channel<int>> wake(static_cast<std::size_t>(woken));
      std::vector<weft::JoinHandle<void>> sleepers;
      for (int i = 0; i < woken; ++i) {
        sleepers.push_back(weft::go([&ran, c = wake[static_cast<std::size_t>(i)]]() mutable {
          ran.push_back(*c.recv());
        }));
      }
      for (auto& c : wake) {  // until every sleeper has parked on its recv
        while (weft::detail::channel_waiting_receivers(c.core("t")) != 1) weft::this_fiber::yield();
      }
      for (int i = 0; i < woken; ++i) wake[static_cast<std::size_t>(i)].send(i);  // never parks: a receiver waits
      for (auto& h : sleepers) h.join();
      return ran;
    });
    REQUIRE(order.size() == static_cast<std::size_t>(woken));
    CHECK(order.front() == woken - 1);  // the last woken, from the slot
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < woken; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);  // each exactly once
  }
}

// Not a fiber woken by a semaphore's (or a lock's) release: it may hold
// what it waited for, and every other waiter would wait behind the fresh
// tasks too.
TEST_CASE("fast paths: a fiber woken by a semaphore's release runs before a finishing fiber's fresh tasks" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 1, .inline_join = false});
  const std::vector<int> order = rt.block_on([&] {
    weft::Semaphore permits(0);
    std::vector<int> ran;  // one worker: no lock needed
    auto waiter = weft::go([&] {
      permits.acquire();  // parks until the releaser below
      ran.push_back(-1);
    });
    weft::this_fiber::yield();  // the waiter runs and parks
    // Never parks, so its fiber picks the next task when it ends; detached,
    // so its end wakes nobody (a joiner would take the runnext slot).
    weft::go([&] {
      for (int i = 0; i < 20; ++i) weft::go([&ran, i] { ran.push_back(i); }).detach();
      permits.release();  // the waiter into runnext
    }).detach();  // ends with the waiter in runnext and 20 fresh tasks queued
    while (ran.size() < 21) weft::this_fiber::yield();  // behind every queued task
    waiter.join();
    return ran;
  });
  REQUIRE(order.size() == 21);
  CHECK(order.front() == -1);
}

namespace {
std::atomic<int> g_results_alive{0};
std::atomic<int> g_results_made{0};
struct CountedResult {
  CountedResult() {
    ++g_results_alive;
    ++g_results_made;
  }
  CountedResult(const CountedResult&) { ++g_results_alive; }
  CountedResult(CountedResult&&) noexcept { ++g_results_alive; }
  ~CountedResult() { --g_results_alive; }
};
}  // namespace

// A task whose handle is gone ends without its join lock (nobody can join
// it any more): it must still free its result and close the done channel
// that a select on its join made while the handle was alive (ASan: no
// leak, no use after free).
TEST_CASE("fast paths: a detached task watched by a select before frees its result and done channel" *
          doctest::timeout(120)) {
  for (std::size_t workers : {1, 2}) {
    g_results_made = 0;
    weft::Runtime rt({.workers = workers});
    const bool freed = rt.block_on([&] {
      weft::Channel<int> gate;
      auto h = weft::go([gate]() mutable {
        (void)gate.recv();
        return CountedResult{};
      });
      // The select makes the task's done channel; the task is blocked, so
      // the timeout wins.
      const std::size_t won = weft::select(weft::on_join(h, [] {}), weft::after(1ms, [] {}));
      CHECK(won == 1);
      h.detach();  // only the runtime's reference is left
      gate.send(1);
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (g_results_made.load() == 0 || g_results_alive.load() != 0) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        weft::this_fiber::yield();
      }
      return true;
    });
    CHECK(freed);
    CHECK(g_results_alive.load() == 0);
  }
}

// A one-worker runtime lets the fiber that spawned a task give up its handle
// without a read-modify-write (TaskBase::release_handle): the task can only
// run on that thread. Every other holder still races with the task's end,
// and each way must free the task (and its result) exactly once.
TEST_CASE("fast paths: on one worker a handle let go by its spawner, another fiber or a plain thread frees its "
          "task once" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 1});
  g_results_alive = 0;
  g_results_made = 0;
  rt.block_on([] {
    // Before the task starts: the task frees itself when it ends.
    for (int i = 0; i < 100; ++i) weft::go([] { return CountedResult{}; }).detach();
    while (g_results_made.load() < 100) weft::this_fiber::yield();
    CHECK(g_results_alive.load() == 0);
    // After it ended: the handle's release frees it, at once.
    auto h = weft::go([] { return CountedResult{}; });
    while (g_results_made.load() < 101) weft::this_fiber::yield();
    CHECK(g_results_alive.load() == 1);  // the result waits in the task
    h.detach();
    CHECK(g_results_alive.load() == 0);
    // Joined, in the spawner: the join's release frees it.
    (void)weft::go([] { return CountedResult{}; }).join();
    CHECK(g_results_alive.load() == 0);
    // Let go by another fiber, before the task starts.
    auto h2 = weft::go([] { return CountedResult{}; });
    weft::go([h2 = std::move(h2)]() mutable { h2.detach(); }).join();
    while (g_results_made.load() < 103) weft::this_fiber::yield();
    CHECK(g_results_alive.load() == 0);
  });
  CHECK(g_results_made.load() == 103);
  CHECK(g_results_alive.load() == 0);

  // Let go by a plain thread while the task ends on the worker: the
  // decrement races with the end, many times over.
  const std::size_t n = weft_test::scaled(20'000);
  weft::Channel<weft::JoinHandle<CountedResult>> handles(64);
  std::thread dropper([&] {
    while (auto h = handles.recv()) h->detach();
  });
  rt.block_on([&] {
    for (std::size_t i = 0; i < n; ++i) {
      handles.send(weft::go([] { return CountedResult{}; }));
      if (i % 3 == 0) weft::this_fiber::yield();  // some end before they are let go, some after
    }
    handles.close();
  });
  dropper.join();
  // The last tasks may not have started when block_on returns (its root
  // fiber ends first on the one worker): wait until every one has made its
  // result and every result is gone. A task lost on the way ends the wait
  // at the deadline, and the checks below fail.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((g_results_made.load() != 103 + static_cast<int>(n) || g_results_alive.load() != 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  CHECK(g_results_made.load() == 103 + static_cast<int>(n));
  CHECK(g_results_alive.load() == 0);

  // An exception nobody joined is still reported once, by the task's end.
  static std::atomic<int> reported{0};
  auto old = weft::set_unhandled_exception_handler([](std::exception_ptr) noexcept { ++reported; });
  rt.block_on([] {
    weft::go([]() -> int { throw std::runtime_error("x"); }).detach();
    auto h = weft::go([]() -> int { throw std::runtime_error("y"); });
    while (!h.is_finished() || reported.load() == 0) weft::this_fiber::yield();
    CHECK(reported.load() == 1);  // the detached one, at its end
    h.detach();  // after its end: reported now
    CHECK(reported.load() == 2);
  });
  weft::set_unhandled_exception_handler(old);
  CHECK(reported.load() == 2);
}
