// weft::parallel_for, parallel_reduce, parallel_invoke (parallel.hpp).
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using weft_test::scaled;

namespace {

struct Boom : std::runtime_error {
  int id;
  explicit Boom(int i) : std::runtime_error("boom " + std::to_string(i)), id(i) {}
};

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Sizes that hit the edges: empty, one, below and around a grain, primes, large.
std::vector<std::size_t> sizes() { return {0, 1, 2, 3, 7, 13, 64, 97, 1000, 4099, scaled(200'000)}; }
// 0: the automatic grain.
const std::size_t k_grains[] = {0, 1, 3, 64, 1000};

// Every index of [0, n) visited exactly once.
void check_each_once(const std::vector<std::atomic<int>>& seen) {
  std::size_t wrong = 0;
  for (const auto& s : seen) wrong += s.load() != 1;
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("parallel_for: every index is visited exactly once, for every size and grain" * doctest::timeout(300)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    weft::Runtime rt({.workers = workers});
    for (std::size_t n : sizes()) {
      for (std::size_t grain : k_grains) {
        CAPTURE(workers);
        CAPTURE(n);
        CAPTURE(grain);
        std::vector<std::atomic<int>> seen(n);
        rt.block_on([&] {
          auto visit = [&](std::size_t i) { seen[i].fetch_add(1, std::memory_order_relaxed); };
          if (grain == 0) {
            weft::parallel_for(std::size_t{0}, n, visit);
          } else {
            weft::parallel_for(std::size_t{0}, n, grain, visit);
          }
        });
        check_each_once(seen);
      }
    }
  }
}

TEST_CASE("parallel_for: signed, mixed and offset integer ranges, and random-access iterators" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    // Negative to positive, int.
    std::vector<std::atomic<int>> seen(300);
    weft::parallel_for(-150, 150, [&](int i) { seen[static_cast<std::size_t>(i + 150)].fetch_add(1); });
    check_each_once(seen);
    // int and std::size_t: their common type.
    std::vector<int> v(1000, 1);
    weft::parallel_for(0, v.size(), 7, [&](std::size_t i) { v[i] += static_cast<int>(i); });
    for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(v[i] == 1 + static_cast<int>(i));
    // Iterators: f gets the element.
    weft::parallel_for(v.begin(), v.end(), [](int& x) { x *= 2; });
    for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(v[i] == 2 * (1 + static_cast<int>(i)));
    const long total = weft::parallel_reduce(
        v.cbegin(), v.cend(), 0L,
        [](std::vector<int>::const_iterator lo, std::vector<int>::const_iterator hi, long acc) {
          for (; lo != hi; ++lo) acc += *lo;
          return acc;
        },
        std::plus<>());
    CHECK(total == 1000L * 1001);  // 2 * sum(1..1000)
  });
}

TEST_CASE("parallel_for and parallel_reduce: empty, reversed ranges and grain 0" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    int calls = 0;
    weft::parallel_for(5, 5, [&](int) { ++calls; });
    weft::parallel_for(5, 5, 3, [&](int) { ++calls; });
    CHECK(calls == 0);
    const int r = weft::parallel_reduce(
        9, 9, 42, [&](int, int, int acc) { ++calls; return acc; }, std::plus<>());
    CHECK(r == 42);
    CHECK(calls == 0);
    CHECK_THROWS_AS(weft::parallel_for(5, 4, [&](int) { ++calls; }), std::invalid_argument);
    CHECK_THROWS_AS(weft::parallel_reduce(
                        5, 4, 0, [&](int, int, int acc) { return acc; }, std::plus<>()),
                    std::invalid_argument);
    std::vector<int> v(3);
    CHECK_THROWS_AS(weft::parallel_for(v.end(), v.begin(), [](int&) {}), std::invalid_argument);
    CHECK_THROWS_AS(weft::parallel_for(0, 10, 0, [&](int) { ++calls; }), std::invalid_argument);
    CHECK_THROWS_AS(weft::parallel_reduce(
                        0, 10, 0, 0, [&](int, int, int acc) { return acc; }, std::plus<>()),
                    std::invalid_argument);
    CHECK(calls == 0);
  });
}

TEST_CASE("parallel_reduce: equals the serial loop over sizes, grains and seeds" * doctest::timeout(300)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    weft::Runtime rt({.workers = workers});
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      for (std::size_t n : sizes()) {
        std::vector<std::uint64_t> data(n);
        std::mt19937_64 gen(seed * 7919 + n);
        for (auto& x : data) x = gen();
        std::uint64_t serial = 0;
        for (auto x : data) serial += mix(x);
        for (std::size_t grain : k_grains) {
          CAPTURE(workers);
          CAPTURE(seed);
          CAPTURE(n);
          CAPTURE(grain);
          auto chunk = [&](std::size_t lo, std::size_t hi, std::uint64_t acc) {
            for (std::size_t i = lo; i < hi; ++i) acc += mix(data[i]);
            return acc;
          };
          const std::uint64_t got = rt.block_on([&] {
            return grain == 0 ? weft::parallel_reduce(std::size_t{0}, n, std::uint64_t{0}, chunk, std::plus<>())
                              : weft::parallel_reduce(std::size_t{0}, n, grain, std::uint64_t{0}, chunk,
                                                      std::plus<>());
          });
          CHECK(got == serial);
        }
      }
    }
  }
}

TEST_CASE("parallel_reduce: move-only results, combined lower first (order kept)" * doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    weft::Runtime rt({.workers = workers});
    for (std::size_t n : sizes()) {
      for (std::size_t grain : k_grains) {
        CAPTURE(workers);
        CAPTURE(n);
        CAPTURE(grain);
        using List = std::unique_ptr<std::vector<std::size_t>>;
        auto fresh = [] { return std::make_unique<std::vector<std::size_t>>(); };  // identity by factory
        auto chunk = [](std::size_t lo, std::size_t hi, List acc) {
          for (std::size_t i = lo; i < hi; ++i) acc->push_back(i);
          return acc;
        };
        auto concat = [](List lower, List upper) {  // associative, not commutative
          lower->insert(lower->end(), upper->begin(), upper->end());
          return lower;
        };
        List got = rt.block_on([&] {
          return grain == 0 ? weft::parallel_reduce(std::size_t{0}, n, fresh, chunk, concat)
                            : weft::parallel_reduce(std::size_t{0}, n, grain, fresh, chunk, concat);
        });
        REQUIRE(got != nullptr);
        REQUIRE(got->size() == n);
        bool in_order = true;
        for (std::size_t i = 0; i < n; ++i) in_order = in_order && (*got)[i] == i;
        CHECK(in_order);
      }
    }
  }
}

TEST_CASE("parallel_for: a failing chunk cancels the others, which end before the call rethrows the first failure" *
          doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    for (int round = 0; round < static_cast<int>(scaled(20)); ++round) {
      const std::size_t n = 64;
      std::atomic<int> active{0};        // elements running now
      std::atomic<int> visits{0};        // elements started
      std::atomic<int> saw_cancel{0};    // parked elements that were cancelled
      int caught = -1;
      rt.block_on([&] {
        try {
          weft::parallel_for(std::size_t{0}, n, 1, [&](std::size_t i) {
            active.fetch_add(1);
            visits.fetch_add(1);
            struct Leave {
              std::atomic<int>& a;
              ~Leave() { a.fetch_sub(1); }
            } leave{active};
            // Index 0 is the first chunk the caller runs: it fails at once.
            if (i == 0) throw Boom(0);
            // The others park until they are cancelled, then fail too; only
            // the first failure may come out.
            try {
              weft::this_fiber::sleep_for(10s);
            } catch (const weft::Cancelled&) {
              saw_cancel.fetch_add(1);
              throw Boom(static_cast<int>(i));
            }
          });
        } catch (const Boom& e) {
          caught = e.id;
        }
        // Nothing runs after the call returned.
        CHECK(active.load() == 0);
        const int after = visits.load();
        weft::this_fiber::sleep_for(5ms);
        CHECK(visits.load() == after);
      });
      CHECK(caught == 0);
      CHECK(saw_cancel.load() == visits.load() - 1);  // every other element that started was cancelled
    }
  }
}

TEST_CASE("parallel_reduce: a throwing combine_fn or reduce_fn propagates; the caller's scope is not cancelled" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 4});
  rt.block_on([] {
    auto sum = [](int lo, int hi, long acc) {
      for (int i = lo; i < hi; ++i) acc += i;
      return acc;
    };
    CHECK_THROWS_AS(weft::parallel_reduce(
                        0, 1000, 10, 0L, sum, [](long, long) -> long { throw Boom(7); }),
                    Boom);
    CHECK_THROWS_AS(weft::parallel_reduce(
                        0, 1000, 10, 0L,
                        [](int lo, int, long acc) -> long {
                          if (lo >= 500) throw std::out_of_range("upper half");
                          return acc;
                        },
                        std::plus<>()),
                    std::out_of_range);
    CHECK_FALSE(weft::this_fiber::cancelled());
    // The runtime is fine afterwards.
    CHECK(weft::parallel_reduce(0, 1000, 0L, sum, std::plus<>()) == 999L * 1000 / 2);
  });
}

TEST_CASE("parallel_for: nested loops visit every pair once, and a failure inside propagates out" *
          doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t rows = 50, cols = 130;
    std::vector<std::atomic<int>> seen(rows * cols);
    rt.block_on([&] {
      weft::parallel_for(std::size_t{0}, rows, [&](std::size_t r) {
        weft::parallel_for(std::size_t{0}, cols, 4, [&](std::size_t c) { seen[r * cols + c].fetch_add(1); });
      });
    });
    check_each_once(seen);
    std::atomic<int> active{0};
    rt.block_on([&] {
      CHECK_THROWS_AS(weft::parallel_for(0, 20, 1,
                                         [&](int r) {
                                           weft::parallel_for(0, 20, 1, [&](int c) {
                                             active.fetch_add(1);
                                             struct Leave {
                                               std::atomic<int>& a;
                                               ~Leave() { a.fetch_sub(1); }
                                             } leave{active};
                                             if (r == 3 && c == 5) throw Boom(35);
                                             weft::this_fiber::yield();
                                           });
                                         }),
                      Boom);
      CHECK(active.load() == 0);
    });
  }
}

TEST_CASE("parallel_for: a scope cancelled mid-loop stops it between chunks; the call throws Cancelled" *
          doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    for (std::size_t grain : {std::size_t{10}, std::size_t{0}}) {
      CAPTURE(grain);
      const std::size_t n = scaled(100'000);
      std::vector<std::atomic<int>> seen(n);
      bool threw = false;
      rt.block_on([&] {
        weft::CancelScope scope;
        weft::Channel<int> cancelled;  // closed once the scope is cancelled
        auto visit = [&](std::size_t i) {
          seen[i].fetch_add(1);
          if (i == 0) {  // the first chunk, from inside
            scope.cancel();
            cancelled.close();
          } else {
            // No other element finishes before the cancel: on a loaded
            // machine the chunks the other workers stole could otherwise
            // all end before element 0's chunk starts (seen under TSan),
            // and there would be nothing left to stop.
            (void)cancelled.recv();
          }
        };
        try {
          if (grain == 0) {
            weft::parallel_for(std::size_t{0}, n, visit);
          } else {
            weft::parallel_for(std::size_t{0}, n, grain, visit);
          }
        } catch (const weft::Cancelled&) {
          threw = true;
        }
      });
      CHECK(threw);
      std::size_t visited = 0, twice = 0;
      for (const auto& s : seen) {
        visited += s.load() != 0;
        twice += s.load() > 1;
      }
      CHECK(twice == 0);
      // Grain 10: 10,000 chunks, and those not started when the scope was
      // cancelled never ran. Automatic: the first chunk stops after its
      // first piece, the others at their next piece. Either way a chunk
      // that started before the cancel got no further than its first
      // element (it waited for the cancel there).
      CHECK(visited < n);
    }
  }
}

TEST_CASE("parallel_for: cancellation from another fiber ends parked chunks; nothing runs after the call" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    std::atomic<int> active{0}, cancelled_waits{0};
    weft::JoinHandle<void> canceller;
    {
      weft::CancelScope scope;
      weft::CancelToken token = scope.token();
      canceller = weft::go([token] {
        weft::this_fiber::sleep_for(20ms);
        token.cancel();
      });
      CHECK_THROWS_AS(weft::parallel_for(0, 16, 1,
                                         [&](int) {
                                           active.fetch_add(1);
                                           struct Leave {
                                             std::atomic<int>& a;
                                             ~Leave() { a.fetch_sub(1); }
                                           } leave{active};
                                           try {
                                             weft::this_fiber::sleep_for(10s);
                                           } catch (const weft::Cancelled&) {
                                             cancelled_waits.fetch_add(1);
                                             throw;
                                           }
                                         }),
                      weft::Cancelled);
      CHECK(active.load() == 0);
      CHECK(cancelled_waits.load() >= 1);
    }
    canceller.join();  // outside the cancelled scope
  });
}

TEST_CASE("parallel_for: an already cancelled scope runs nothing; a loop that completed returns" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    int calls = 0;
    {
      weft::CancelScope scope;
      scope.cancel();
      CHECK_THROWS_AS(weft::parallel_for(0, 100, [&](int) { ++calls; }), weft::Cancelled);
      CHECK_THROWS_AS(weft::parallel_invoke([&] { ++calls; }), weft::Cancelled);
      weft::parallel_for(0, 0, [&](int) { ++calls; });  // empty: nothing to stop
    }
    CHECK(calls == 0);
    {
      // One chunk (grain >= n); the scope is cancelled at its last element:
      // every element ran, so the call completed and returns.
      weft::CancelScope scope;
      weft::parallel_for(0, 100, 100, [&](int i) {
        ++calls;
        if (i == 99) scope.cancel();
      });
      CHECK(calls == 100);
      CHECK(scope.cancelled());
    }
  });
}

TEST_CASE("parallel algorithms from a plain thread: through a Runtime&, or NotInFiber" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  std::vector<std::atomic<int>> seen(1000);
  weft::parallel_for(rt, 0, 1000, [&](int i) { seen[static_cast<std::size_t>(i)].fetch_add(1); });
  check_each_once(seen);
  std::vector<std::atomic<int>> seen2(1000);
  weft::parallel_for(rt, 0, 1000, 33, [&](int i) { seen2[static_cast<std::size_t>(i)].fetch_add(1); });
  check_each_once(seen2);
  auto sum = [](int lo, int hi, long acc) {
    for (int i = lo; i < hi; ++i) acc += i;
    return acc;
  };
  CHECK(weft::parallel_reduce(rt, 0, 1000, 0L, sum, std::plus<>()) == 499'500L);
  CHECK(weft::parallel_reduce(rt, 0, 1000, 7, 0L, sum, std::plus<>()) == 499'500L);
  std::atomic<int> ran{0};
  weft::parallel_invoke(rt, [&] { ran.fetch_add(1); }, [&] { ran.fetch_add(10); });
  CHECK(ran.load() == 11);
  CHECK_THROWS_AS(weft::parallel_for(rt, 0, 10, [](int i) {
                    if (i == 4) throw Boom(4);
                  }),
                  Boom);
  // Without a runtime: a clear error, nothing runs.
  int calls = 0;
  CHECK_THROWS_AS(weft::parallel_for(0, 10, [&](int) { ++calls; }), weft::NotInFiber);
  CHECK_THROWS_AS(weft::parallel_reduce(0, 10, 0L, sum, std::plus<>()), weft::NotInFiber);
  CHECK_THROWS_AS(weft::parallel_invoke([&] { ++calls; }), weft::NotInFiber);
  CHECK(calls == 0);
  // The Runtime& form from a fiber of that runtime: block_on's error.
  rt.block_on([&] { CHECK_THROWS_AS(weft::parallel_for(rt, 0, 10, [](int) {}), std::logic_error); });
}

TEST_CASE("parallel_invoke: 1 to 8 functions each run once; the first failure cancels the rest" *
          doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    rt.block_on([] {
      std::atomic<int> bits{0};
      auto set = [&](int b) { return [&bits, b] { bits.fetch_or(1 << b); }; };
      weft::parallel_invoke(set(0));
      CHECK(bits.exchange(0) == 0x1);
      weft::parallel_invoke(set(0), set(1));
      CHECK(bits.exchange(0) == 0x3);
      weft::parallel_invoke(set(0), set(1), set(2));
      CHECK(bits.exchange(0) == 0x7);
      weft::parallel_invoke(set(0), set(1), set(2), set(3), set(4), set(5), set(6), set(7));
      CHECK(bits.exchange(0) == 0xff);
      // Values returned are dropped; mutable callables are fine.
      int counter = 0;
      weft::parallel_invoke([&] { return ++counter; }, [n = 0]() mutable { ++n; });
      CHECK(counter == 1);

      std::atomic<int> active{0}, cancelled_waits{0};
      auto sleeper = [&] {
        active.fetch_add(1);
        struct Leave {
          std::atomic<int>& a;
          ~Leave() { a.fetch_sub(1); }
        } leave{active};
        try {
          weft::this_fiber::sleep_for(10s);
        } catch (const weft::Cancelled&) {
          cancelled_waits.fetch_add(1);
          throw;
        }
      };
      // The first function runs on the caller, first: its failure is first.
      CHECK_THROWS_AS(weft::parallel_invoke([] { throw Boom(1); }, sleeper, sleeper, sleeper), Boom);
      CHECK(active.load() == 0);
      // A later failure, after the others parked.
      try {
        weft::parallel_invoke(sleeper, sleeper, [] {
          weft::this_fiber::sleep_for(2ms);
          throw Boom(3);
        });
        FAIL("no exception");
      } catch (const Boom& e) {
        CHECK(e.id == 3);
      }
      CHECK(active.load() == 0);
      CHECK(cancelled_waits.load() >= 2);
    });
  }
}

TEST_CASE("parallel_reduce: stress over random sizes, grains and seeds" * doctest::timeout(300)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    weft::Runtime rt({.workers = workers});
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      std::mt19937_64 gen(seed);
      for (int round = 0; round < static_cast<int>(scaled(50)); ++round) {
        const std::size_t n = gen() % scaled(50'000);
        const std::size_t grain = gen() % 2 == 0 ? 0 : 1 + gen() % 2000;
        CAPTURE(workers);
        CAPTURE(seed);
        CAPTURE(n);
        CAPTURE(grain);
        std::uint64_t serial = 0;
        for (std::size_t i = 0; i < n; ++i) serial += mix(i ^ seed);
        auto chunk = [seed](std::size_t lo, std::size_t hi, std::uint64_t acc) {
          for (std::size_t i = lo; i < hi; ++i) acc += mix(i ^ seed);
          return acc;
        };
        const std::uint64_t got = rt.block_on([&] {
          // Nested in a parallel_invoke beside a second copy, to mix the trees.
          std::uint64_t a = 0, b = 0;
          weft::parallel_invoke(
              [&] {
                a = grain == 0 ? weft::parallel_reduce(std::size_t{0}, n, std::uint64_t{0}, chunk, std::plus<>())
                               : weft::parallel_reduce(std::size_t{0}, n, grain, std::uint64_t{0}, chunk,
                                                       std::plus<>());
              },
              [&] { b = weft::parallel_reduce(std::size_t{0}, n, std::uint64_t{0}, chunk, std::plus<>()); });
          return a == b ? a : ~a;
        });
        CHECK(got == serial);
      }
    }
  }
}

TEST_CASE("parallel_reduce: uneven elements with the automatic grain (steals and splits on demand)" *
          doctest::timeout(300)) {
  // Every 16th element costs about 40 times the others, in runs, so that
  // some chunks take far longer than others and idle workers steal.
  auto cost = [](std::size_t i) { return (i / 64) % 16 == 0 ? 40 : 1; };
  const std::size_t n = scaled(20'000);
  unsigned long long serial = 0;
  for (std::size_t i = 0; i < n; ++i) serial += weft_test::burn(i, cost(i)) % 1000;
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    for (int round = 0; round < 3; ++round) {
      const unsigned long long got = rt.block_on([&] {
        return weft::parallel_reduce(
            std::size_t{0}, n, 0ull,
            [&](std::size_t lo, std::size_t hi, unsigned long long acc) {
              for (std::size_t i = lo; i < hi; ++i) acc += weft_test::burn(i, cost(i)) % 1000;
              return acc;
            },
            std::plus<>());
      });
      CHECK(got == serial);
    }
  }
}
