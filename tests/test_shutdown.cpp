// Shutdown: drains runnable fibers, cancels fibers parked forever (their
// stacks unwind), refuses new spawns, and is idempotent. block_on and run.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::CountsDestruction;
using weft_test::k_worker_counts;
using weft_test::scaled;

TEST_CASE("shutdown: runs every fiber still queued, and what they spawn" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    const std::size_t n = scaled(20'000);
    std::atomic<std::size_t> ran{0};
    weft::Runtime rt({.workers = workers});
    for (std::size_t i = 0; i < n; ++i) {
      rt.spawn([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        weft::this_fiber::yield();
        weft::go([&] { ran.fetch_add(1, std::memory_order_relaxed); }).detach();  // spawning while draining is allowed
      }).detach();
    }
    rt.shutdown();
    CHECK(ran.load() == 2 * n);
  }
}

TEST_CASE("shutdown: fibers parked forever are cancelled, unwound, and report RuntimeStopped" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    std::atomic<int> destroyed{0};
    std::atomic<bool> ready{false};
    auto a = std::make_shared<weft::JoinHandle<int>>();
    auto b = std::make_shared<weft::JoinHandle<int>>();
    weft::Runtime rt({.workers = workers});
    // A joins B and B joins A: both park forever.
    *a = rt.spawn([&, b] {
      CountsDestruction guard{&destroyed};
      auto big = std::make_unique<std::vector<int>>(1000, 1);  // freed by unwinding (ASan checks)
      while (!ready.load(std::memory_order_acquire)) weft::this_fiber::yield();
      return b->join() + static_cast<int>(big->size());
    });
    *b = rt.spawn([&, a] {
      CountsDestruction guard{&destroyed};
      while (!ready.load(std::memory_order_acquire)) weft::this_fiber::yield();
      return a->join();
    });
    // A third fiber joins its own handle (one joiner per handle: A's and B's
    // are taken) and guards its wait with catch (std::exception&).
    auto c = std::make_shared<weft::JoinHandle<int>>();
    *c = rt.spawn([&, c] {
      CountsDestruction guard{&destroyed};
      while (!ready.load(std::memory_order_acquire)) weft::this_fiber::yield();
      try {
        return c->join();
      } catch (const std::exception&) {
        return -1;  // FiberCancelled is not a std::exception: it passes through
      }
    });
    ready.store(true, std::memory_order_release);
    rt.shutdown();
    CHECK(destroyed.load() == 3);
    CHECK_THROWS_AS(a->join(), weft::RuntimeStopped);
    CHECK_THROWS_AS(b->join(), weft::RuntimeStopped);
    CHECK_THROWS_AS(c->join(), weft::RuntimeStopped);
  }
}

TEST_CASE("shutdown: from another thread, cancels a fiber that joins itself; a later join reports it") {
  weft::Runtime rt({.workers = 2});
  std::atomic<bool> ready{false};
  auto self = std::make_shared<weft::JoinHandle<void>>();
  // A fiber that joins its own handle waits forever.
  *self = rt.spawn([&, self] {
    while (!ready.load(std::memory_order_acquire)) weft::this_fiber::yield();
    self->join();
  });
  ready.store(true, std::memory_order_release);
  std::thread t([&] { rt.shutdown(); });
  t.join();
  // The fiber's own join threw FiberCancelled, so the handle is still
  // attached; the task ended cancelled.
  REQUIRE(self->joinable());
  CHECK_THROWS_AS(self->join(), weft::RuntimeStopped);
}

TEST_CASE("shutdown: spawning afterwards throws RuntimeStopped; shutdown is idempotent") {
  weft::Runtime rt({.workers = 2});
  rt.spawn([] {}).join();
  rt.shutdown();
  rt.shutdown();
  CHECK_THROWS_AS(rt.spawn([] {}), weft::RuntimeStopped);
  CHECK_THROWS_AS(rt.block_on([] { return 1; }), weft::RuntimeStopped);
  // ... also from a fiber of another runtime
  weft::Runtime other({.workers = 1});
  bool threw = other.block_on([&] {
    try {
      rt.spawn([] {}).detach();
    } catch (const weft::RuntimeStopped&) {
      return true;
    }
    return false;
  });
  CHECK(threw);
}

TEST_CASE("shutdown: concurrent callers all return after the runtime stopped") {
  weft::Runtime rt({.workers = 2});
  std::atomic<int> ran{0};
  for (int i = 0; i < 1000; ++i) rt.spawn([&] { ran.fetch_add(1); }).detach();
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) ts.emplace_back([&] { rt.shutdown(); });
  for (auto& t : ts) t.join();
  CHECK(ran.load() == 1000);
}

TEST_CASE("shutdown: plain threads spawning while it starts either get RuntimeStopped or run" *
          doctest::timeout(300)) {
  // Each round: three plain threads spawn in a loop; shutdown starts once
  // each has had a spawn accepted, while they keep going, and each stops a
  // little after its first RuntimeStopped. So in every round both outcomes
  // happen, with shutdown racing the spawns. Every attempt has its own run
  // counter: an accepted task runs exactly once (none of them parks, so
  // none is cancelled), a refused one never runs, and once a thread has been
  // refused it is refused from then on.
  constexpr int k_threads = 3;
  constexpr int k_rounds = 20;
  constexpr int k_after_refusal = 50;  // attempts after a thread's first refusal
  const int k_max_attempts = static_cast<int>(weft_test::scaled(1'000'000));  // only if refusal never came
  enum Outcome : unsigned char { k_not_tried, k_accepted, k_refused };
  for (int round = 0; round < k_rounds; ++round) {
    CAPTURE(round);
    auto rt = std::make_unique<weft::Runtime>(weft::Runtime::Options{.workers = 2});
    std::vector<std::vector<Outcome>> outcome(k_threads);
    std::vector<std::unique_ptr<std::atomic<int>[]>> runs;
    for (int t = 0; t < k_threads; ++t) {
      outcome[static_cast<std::size_t>(t)].assign(static_cast<std::size_t>(k_max_attempts), k_not_tried);
      runs.push_back(std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(k_max_attempts)));
    }
    std::atomic<int> spawning{0};  // threads that have had an attempt accepted
    std::atomic<bool> shutting_down{false};
    // Near the end of its record a thread not refused yet waits for the
    // shutdown to begin, then paces its attempts (CI's tsan run, on a loaded
    // machine, once ran one thread through all 100,000 attempts before the
    // main thread got to call shutdown()).
    const int k_wait_at = k_max_attempts - 10'000;
    std::vector<std::thread> ts;
    for (int t = 0; t < k_threads; ++t) {
      ts.emplace_back([&, t] {
        auto& mine = outcome[static_cast<std::size_t>(t)];
        std::atomic<int>* counters = runs[static_cast<std::size_t>(t)].get();
        int left_after_refusal = -1;  // attempts still to make; -1: not refused yet
        for (int i = 0; i < k_max_attempts && left_after_refusal != 0; ++i) {
          if (left_after_refusal > 0) --left_after_refusal;
          if (left_after_refusal < 0 && i >= k_wait_at) {
            while (!shutting_down.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
          try {
            rt->spawn([c = &counters[i]] { c->fetch_add(1, std::memory_order_relaxed); }).detach();
            mine[static_cast<std::size_t>(i)] = k_accepted;
            if (i == 0) spawning.fetch_add(1);
          } catch (const weft::RuntimeStopped&) {
            mine[static_cast<std::size_t>(i)] = k_refused;
            if (left_after_refusal < 0) left_after_refusal = k_after_refusal;
          }
        }
      });
    }
    weft_test::spin_until([&] { return spawning.load() == k_threads; });
    shutting_down.store(true);
    rt->shutdown();
    for (auto& t : ts) t.join();
    int accepted = 0, refused = 0, ran_twice_or_lost = 0, refused_but_ran = 0, accepted_after_refusal = 0;
    int threads_refused = 0;
    for (int t = 0; t < k_threads; ++t) {
      const auto& mine = outcome[static_cast<std::size_t>(t)];
      const std::atomic<int>* counters = runs[static_cast<std::size_t>(t)].get();
      bool seen_refusal = false;
      for (int i = 0; i < k_max_attempts; ++i) {
        const int ran = counters[i].load();
        switch (mine[static_cast<std::size_t>(i)]) {
          case k_accepted:
            ++accepted;
            if (ran != 1) ++ran_twice_or_lost;
            if (seen_refusal) ++accepted_after_refusal;
            break;
          case k_refused:
            ++refused;
            if (ran != 0) ++refused_but_ran;
            seen_refusal = true;
            break;
          case k_not_tried:
            if (ran != 0) ++refused_but_ran;
            break;
        }
      }
      threads_refused += seen_refusal;
    }
    CAPTURE(accepted);
    CAPTURE(refused);
    CHECK(ran_twice_or_lost == 0);  // every accepted task ran exactly once
    CHECK(refused_but_ran == 0);    // no refused (or untried) task ever ran
    CHECK(accepted_after_refusal == 0);
    // The race happened: every thread had spawns accepted and refused.
    CHECK(accepted >= k_threads);
    CHECK(threads_refused == k_threads);
    CHECK(refused == k_threads * (k_after_refusal + 1));
  }
}

TEST_CASE("block_on and run: values, exceptions, options") {
  CHECK(weft::Runtime::run([] { return weft::go([] { return 20; }).join() + 22; }) == 42);
  CHECK_THROWS_WITH_AS(weft::Runtime::run([]() -> int { throw std::runtime_error("from main"); }), "from main",
                       std::runtime_error);
  int workers = weft::Runtime::run(weft::Runtime::Options{.workers = 3}, [] {
    return static_cast<int>(weft::this_fiber::worker_index() < 3);
  });
  CHECK(workers == 1);
  weft::Runtime rt({.workers = 2});
  CHECK(rt.block_on([] { return 5; }) == 5);
  // From a fiber of another runtime block_on blocks that worker; allowed.
  weft::Runtime outer({.workers = 1});
  CHECK(outer.block_on([&] { return rt.block_on([] { return 6; }); }) == 6);
}
