// join: values, exceptions, fibers and plain threads, deep chains.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using weft_test::k_worker_counts;

TEST_CASE("join: returns values from a plain thread") {
  weft::Runtime rt({.workers = 2});
  auto h = rt.spawn([] { return std::string("forty-two"); });
  CHECK(h.join() == "forty-two");
  auto v = rt.spawn([] {});
  v.join();
  CHECK_FALSE(v.joinable());
}

TEST_CASE("join: rethrows the task's exception, in a fiber and in a plain thread") {
  weft::Runtime rt({.workers = 2});
  auto h = rt.spawn([]() -> int { throw std::runtime_error("boom"); });
  CHECK_THROWS_WITH_AS(h.join(), "boom", std::runtime_error);
  bool caught_in_fiber = rt.block_on([] {
    auto child = weft::go([] { throw std::out_of_range("deep"); });
    try {
      child.join();
    } catch (const std::out_of_range& e) {
      return std::string(e.what()) == "deep";
    }
    return false;
  });
  CHECK(caught_in_fiber);
}

TEST_CASE("join: move-only results") {
  weft::Runtime rt({.workers = 2});
  auto h = rt.spawn([] { return std::make_unique<int>(7); });
  CHECK(*h.join() == 7);
}

TEST_CASE("join: a fiber joining parks instead of blocking its worker") {
  // One worker: if join blocked the thread, the child could never run.
  weft::Runtime rt({.workers = 1});
  int v = rt.block_on([] {
    auto child = weft::go([] {
      weft::this_fiber::yield();
      return 5;
    });
    return child.join();
  });
  CHECK(v == 5);
}

static int nested(int depth) {
  if (depth == 0) return 0;
  return weft::go([depth] { return nested(depth - 1); }).join() + 1;
}

TEST_CASE("join: a chain of 10,000 nested spawn-and-join" * doctest::timeout(300)) {
  // Every link stays parked until the innermost returns: 10,000 live fibers.
  // (Sanitizer builds shrink it: TSan maps ~1 MiB of trace per live fiber.)
  const int depth = static_cast<int>(weft_test::scaled(10'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers, .stack_size = 64 * 1024});
    CHECK(rt.block_on([depth] { return nested(depth); }) == depth);
  }
}

TEST_CASE("join: many plain threads join fibers of one runtime") {
  weft::Runtime rt({.workers = 2});
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto h = rt.spawn([t, i] {
          weft::this_fiber::yield();
          return t * 1000 + i;
        });
        if (h.join() == t * 1000 + i) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : ts) th.join();
  CHECK(ok.load() == 8 * 200);
}

TEST_CASE("join: a fiber parked inside a catch block keeps its exception across a migration") {
  weft::Runtime rt({.workers = 4});
  std::vector<weft::JoinHandle<bool>> hs;
  for (int i = 0; i < 100; ++i) {
    hs.push_back(rt.spawn([i] {
      try {
        throw std::runtime_error("outer " + std::to_string(i));
      } catch (const std::runtime_error&) {
        // Park while the exception is being handled; other fibers run and
        // throw on this thread meanwhile, and we may resume elsewhere.
        for (int k = 0; k < 5; ++k) {
          weft::go([] {
            try {
              throw 1;
            } catch (int) {
            }
          }).join();
          weft::this_fiber::yield();
        }
        try {
          throw;  // rethrows the exception being handled by this fiber
        } catch (const std::runtime_error& again) {
          return std::string(again.what()) == "outer " + std::to_string(i);
        }
      }
    }));
  }
  for (auto& h : hs) CHECK(h.join());
}

TEST_CASE("join: a handle outlives its runtime") {
  weft::JoinHandle<int> h;
  {
    weft::Runtime rt({.workers = 2});
    h = rt.spawn([] { return 9; });
  }
  CHECK(h.is_finished());
  CHECK(h.join() == 9);
}

TEST_CASE("join: is_finished reports completion without blocking") {
  weft::Runtime rt({.workers = 2});
  auto h = rt.spawn([] { return 1; });
  while (!h.is_finished()) std::this_thread::yield();
  CHECK(h.join() == 1);
}
