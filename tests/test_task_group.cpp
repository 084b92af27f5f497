// weft::TaskGroup (task_group.hpp): the nursery.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using weft_test::scaled;

namespace {

struct Boom : std::runtime_error {
  int id;
  explicit Boom(int i) : std::runtime_error("boom"), id(i) {}
};

}  // namespace

TEST_CASE("task group: wait joins every child, from fibers and plain threads" * doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const int n = static_cast<int>(scaled(2000));
    std::atomic<long> sum{0};
    rt.block_on([&] {
      weft::TaskGroup<> g;
      for (int i = 1; i <= n; ++i) g.spawn([&sum, i] { sum.fetch_add(i); });
      g.wait();
      CHECK(g.size() == 0);
    });
    CHECK(sum.load() == static_cast<long>(n) * (n + 1) / 2);
    sum = 0;
    {
      weft::TaskGroup<> g(rt);  // a plain thread
      for (int i = 1; i <= n; ++i) g.spawn([&sum, i] { sum.fetch_add(i); });
      g.wait();
    }
    CHECK(sum.load() == static_cast<long>(n) * (n + 1) / 2);
  }
  CHECK_THROWS_AS(weft::TaskGroup<>(), weft::NotInFiber);
}

TEST_CASE("task group: join_next returns values in completion order and then nothing" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::TaskGroup<int> g;
    // Children finish in the reverse of the order they were spawned.
    for (int i = 0; i < 5; ++i) {
      g.spawn([i] {
        weft::this_fiber::sleep_for(std::chrono::milliseconds(10 * (5 - i)));
        return i;
      });
    }
    std::vector<int> order;
    while (auto v = g.join_next()) order.push_back(*v);
    CHECK(order == std::vector<int>{4, 3, 2, 1, 0});
    CHECK_FALSE(g.join_next().has_value());
    weft::TaskGroup<> v;
    v.spawn([] {});
    CHECK(v.join_next());
    CHECK_FALSE(v.join_next());
  });
}

TEST_CASE("task group: the first failure cancels the siblings and wait rethrows it" * doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    std::atomic<int> siblings_cancelled{0};
    rt.block_on([&] {
      weft::TaskGroup<> g;
      weft::Channel<int> never;
      for (int i = 0; i < 20; ++i) {
        g.spawn([&] {
          try {
            (void)never.recv();
          } catch (const weft::Cancelled&) {
            siblings_cancelled.fetch_add(1);
            throw;
          }
        });
      }
      g.spawn([] {
        weft::this_fiber::sleep_for(5ms);
        throw Boom(7);
      });
      try {
        g.wait();
        FAIL("wait() did not rethrow");
      } catch (const Boom& b) {
        CHECK(b.id == 7);
      }
      CHECK(g.cancelled());
    });
    CHECK(siblings_cancelled.load() == 20);
  }
}

TEST_CASE("task group: later failures are dropped, cancelled children are not failures" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  std::atomic<int> reported{0};
  auto previous = weft::set_unhandled_exception_handler([&](std::exception_ptr) { reported.fetch_add(1); });
  rt.block_on([] {
    weft::TaskGroup<> g;
    for (int i = 0; i < 10; ++i) g.spawn([i] { throw Boom(i); });
    CHECK_THROWS_AS(g.wait(), Boom);
    weft::TaskGroup<> c;
    for (int i = 0; i < 10; ++i) c.spawn([] { weft::this_fiber::sleep_for(10s); });
    c.cancel();
    c.wait();  // nothing to rethrow
  });
  weft::set_unhandled_exception_handler(previous);
  CHECK(reported.load() == 0);
}

TEST_CASE("task group: destroyed during unwinding, it cancels its children and waits for them" *
          doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    std::atomic<int> finished{0};
    rt.block_on([&] {
      std::vector<int> owner_data(64, 1);  // children use the owner's locals
      try {
        weft::TaskGroup<> g;
        for (int i = 0; i < 64; ++i) {
          g.spawn([&, i] {
            try {
              weft::this_fiber::sleep_for(10s);
            } catch (const weft::Cancelled&) {
              owner_data[i] += 1;  // still alive: the group waits for us
              finished.fetch_add(1);
              throw;
            }
          });
        }
        weft::this_fiber::yield();
        throw std::runtime_error("the owner fails");
      } catch (const std::runtime_error&) {
      }
      CHECK(std::accumulate(owner_data.begin(), owner_data.end(), 0) == 128);
    });
    CHECK(finished.load() == 64);
  }
}

TEST_CASE("task group: nested groups are cancelled with the outer one" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  std::atomic<int> leaves_cancelled{0};
  rt.block_on([&] {
    weft::TaskGroup<> outer;
    for (int i = 0; i < 4; ++i) {
      outer.spawn([&] {
        weft::TaskGroup<> inner;
        for (int j = 0; j < 4; ++j) {
          inner.spawn([&] {
            try {
              weft::this_fiber::sleep_for(10s);
            } catch (const weft::Cancelled&) {
              leaves_cancelled.fetch_add(1);
              throw;
            }
          });
        }
        inner.wait();
      });
    }
    weft::this_fiber::sleep_for(5ms);
    outer.cancel();
    outer.wait();
  });
  CHECK(leaves_cancelled.load() == 16);
}

TEST_CASE("task group: a group inside a cancelled scope starts cancelled, and its wait is not cut short" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::CancelScope scope;
    std::atomic<int> done{0};
    {
      weft::TaskGroup<> g;
      for (int i = 0; i < 8; ++i) {
        g.spawn([&] {
          // Cancelled from the start; the cleanup below still runs, and the
          // owner's wait (in the same cancelled scope) waits for it.
          try {
            weft::this_fiber::sleep_for(10s);
          } catch (const weft::Cancelled&) {
            done.fetch_add(1);
          }
        });
      }
      scope.cancel();
      g.wait();
      CHECK(done.load() == 8);
    }
  });
}
