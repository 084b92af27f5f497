// Spawning fibers: each runs exactly once, work spreads over the workers,
// plain threads and fibers spawn concurrently, yield and ids behave.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "support.hpp"

using weft_test::k_worker_counts;
using weft_test::scaled;

TEST_CASE("spawn: a million fibers each run exactly once, on more than one worker" * doctest::timeout(600)) {
  const std::size_t n = scaled(1'000'000);
  weft::Runtime rt({.workers = 4});
  std::vector<std::atomic<std::uint8_t>> runs(n);
  std::vector<std::atomic<std::size_t>> per_worker(rt.num_workers());
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> handles;
    handles.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      handles.push_back(weft::go([&, i] {
        runs[i].fetch_add(1, std::memory_order_relaxed);
        per_worker[weft::this_fiber::worker_index()].fetch_add(1, std::memory_order_relaxed);
      }));
    }
    for (auto& h : handles) h.join();
  });
  std::size_t not_once = 0;
  for (auto& r : runs) not_once += r.load() != 1;
  CHECK(not_once == 0);
  std::size_t total = 0, workers_used = 0;
  for (auto& c : per_worker) {
    total += c.load();
    workers_used += c.load() > 0;
  }
  CHECK(total == n);
  CHECK(workers_used > 1);
}

TEST_CASE("spawn: idle workers steal CPU-bound children from a busy one" * doctest::timeout(300)) {
  for (std::size_t workers : {std::size_t{2}, std::size_t{4}}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    std::vector<std::atomic<std::size_t>> done_on(workers);
    std::atomic<unsigned long long> sink{0};
    rt.block_on([&] {
      // All children go to this fiber's own deque; others must steal them.
      std::vector<weft::JoinHandle<void>> children;
      for (int i = 0; i < 1000; ++i) {
        children.push_back(weft::go([&, i] {
          sink.fetch_add(weft_test::burn(static_cast<unsigned long long>(i), 200), std::memory_order_relaxed);
          done_on[weft::this_fiber::worker_index()].fetch_add(1, std::memory_order_relaxed);
        }));
      }
      for (auto& c : children) c.join();
    });
    std::size_t total = 0;
    for (std::size_t w = 0; w < workers; ++w) {
      CAPTURE(w);
      CHECK(done_on[w].load() > 0);  // every worker completed some children
      total += done_on[w].load();
    }
    CHECK(total == 1000);
  }
}

TEST_CASE("spawn: plain threads and fibers spawn concurrently" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t per_thread = scaled(20'000);
    constexpr int k_threads = 4;
    std::atomic<std::size_t> ran{0};
    std::atomic<std::uint64_t> sum{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
      threads.emplace_back([&, t] {
        // Each plain thread spawns fibers that spawn fibers of their own.
        std::vector<weft::JoinHandle<std::uint64_t>> hs;
        for (std::size_t i = 0; i < per_thread; ++i) {
          const std::uint64_t v = static_cast<std::uint64_t>(t) * per_thread + i;
          hs.push_back(rt.spawn([&, v] {
            ran.fetch_add(1, std::memory_order_relaxed);
            auto child = weft::go([&, v] {
              ran.fetch_add(1, std::memory_order_relaxed);
              return v;
            });
            return child.join();
          }));
        }
        for (auto& h : hs) sum.fetch_add(h.join(), std::memory_order_relaxed);
      });
    }
    for (auto& th : threads) th.join();
    const std::uint64_t total = k_threads * per_thread;
    CHECK(ran.load() == 2 * total);
    CHECK(sum.load() == total * (total - 1) / 2);
  }
}

TEST_CASE("spawn: go() inside a fiber spawns on the same runtime") {
  weft::Runtime rt({.workers = 2});
  int v = rt.block_on([] { return weft::go([] { return 41; }).join() + 1; });
  CHECK(v == 42);
}

TEST_CASE("yield: lets other fibers run on a single worker") {
  weft::Runtime rt({.workers = 1});
  std::vector<int> order;  // one worker: no data race
  rt.block_on([&] {
    auto a = weft::go([&] {
      for (int i = 0; i < 3; ++i) {
        order.push_back(0);
        weft::this_fiber::yield();
      }
    });
    auto b = weft::go([&] {
      for (int i = 0; i < 3; ++i) {
        order.push_back(1);
        weft::this_fiber::yield();
      }
    });
    a.join();
    b.join();
  });
  // Without yield one fiber would finish all three steps first.
  REQUIRE(order.size() == 6);
  int switches = 0;
  for (std::size_t i = 1; i < order.size(); ++i) switches += order[i] != order[i - 1];
  CHECK(switches >= 4);
}

TEST_CASE("yield: with nothing else runnable it returns promptly") {
  weft::Runtime rt({.workers = 2});
  int n = rt.block_on([] {
    int k = 0;
    for (; k < 1000; ++k) weft::this_fiber::yield();
    return k;
  });
  CHECK(n == 1000);
}

TEST_CASE("this_fiber: ids are unique and stable across parks; 0 on a plain thread") {
  CHECK(weft::this_fiber::id() == 0);
  CHECK_FALSE(weft::this_fiber::in_fiber());
  weft::Runtime rt({.workers = 2});
  std::vector<weft::JoinHandle<std::pair<weft::FiberId, weft::FiberId>>> hs;
  for (int i = 0; i < 200; ++i) {
    hs.push_back(rt.spawn([] {
      CHECK(weft::this_fiber::in_fiber());
      auto before = weft::this_fiber::id();
      weft::this_fiber::yield();
      weft::go([] {}).join();
      return std::pair{before, weft::this_fiber::id()};
    }));
  }
  std::set<weft::FiberId> ids;
  for (auto& h : hs) {
    auto [before, after] = h.join();
    CHECK(before != 0);
    CHECK(before == after);
    ids.insert(before);
  }
  CHECK(ids.size() == 200);
}

TEST_CASE("this_fiber: worker_index is within range") {
  weft::Runtime rt({.workers = 3});
  auto idx = rt.block_on([] { return weft::this_fiber::worker_index(); });
  CHECK(idx < 3);
}
