// join: values, exceptions, fibers and plain threads, deep chains.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

using weft_test::k_worker_counts;

// Runtime::Options::inline_join on (the default) and off. With it on, a join
// of a child still queued on the joiner's worker runs the child in place and
// does not park: tests about parking joins run with it off too, where every
// such join parks.
constexpr bool k_inline_modes[] = {true, false};

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
  // Without inline joins the joiner parks (once: the child only yields);
  // with them the child runs on the joiner's fiber and nothing parks.
  for (bool inline_join : k_inline_modes) {
    CAPTURE(inline_join);
    weft::Runtime rt({.workers = 1, .inline_join = inline_join});
    int v = rt.block_on([] {
      auto child = weft::go([] {
        weft::this_fiber::yield();
        return 5;
      });
      return child.join();
    });
    CHECK(v == 5);
    CHECK(rt.metrics().parks == (inline_join ? 0u : 1u));
  }
}

static int nested(int depth) {
  if (depth == 0) return 0;
  return weft::go([depth] { return nested(depth - 1); }).join() + 1;
}

TEST_CASE("join: a chain of 10,000 nested spawn-and-join" * doctest::timeout(300)) {
  // Without inline joins every link parks in its join and stays parked
  // until the innermost returns: 10,000 live fibers. With them, runs of
  // links share a fiber (the half-stack rule starts a new one now and then).
  // (Sanitizer builds shrink it: TSan maps ~1 MiB of trace per live fiber.)
  const int depth = static_cast<int>(weft_test::scaled(10'000));
  for (std::size_t workers : k_worker_counts) {
    for (bool inline_join : k_inline_modes) {
      CAPTURE(workers);
      CAPTURE(inline_join);
      weft::Runtime rt({.workers = workers, .stack_size = 64 * 1024, .inline_join = inline_join});
      CHECK(rt.block_on([depth] { return nested(depth); }) == depth);
      const auto parks = rt.metrics().parks;
      CAPTURE(parks);
      if (!inline_join) {
        if (workers == 1) {
          // Each link's child can only run once the link has parked.
          CHECK(parks == static_cast<std::uint64_t>(depth));
        } else {
          // A thief may finish a child before its joiner gets to park, but
          // only a short tail of the chain can: each link waits for all below.
          CHECK(parks >= static_cast<std::uint64_t>(depth) / 2);
        }
      }
    }
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
  // Without inline joins each of the 500 joins below parks (unless a thief
  // already finished the child); with them the children run in place and
  // the fibers only yield.
  constexpr int k_fibers = 100, k_joins = 5;
  for (bool inline_join : k_inline_modes) {
    CAPTURE(inline_join);
    weft::Runtime rt({.workers = 4, .inline_join = inline_join});
    std::atomic<int> migrated{0};  // joins that resumed on another worker
    std::vector<weft::JoinHandle<bool>> hs;
    for (int i = 0; i < k_fibers; ++i) {
      hs.push_back(rt.spawn([i, &migrated] {
        try {
          throw std::runtime_error("outer " + std::to_string(i));
        } catch (const std::runtime_error&) {
          // Park while the exception is being handled; other fibers run and
          // throw on this thread meanwhile, and we may resume elsewhere.
          for (int k = 0; k < k_joins; ++k) {
            const std::size_t before = weft::this_fiber::worker_index();
            weft::go([] {
              try {
                throw 1;
              } catch (int) {
              }
            }).join();
            if (weft::this_fiber::worker_index() != before) migrated.fetch_add(1);
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
    const auto parks = rt.metrics().parks;
    MESSAGE("inline_join " << inline_join << ": " << parks << " parks and " << migrated.load() << " migrations in "
                           << k_fibers * k_joins << " joins");
    if (!inline_join) {
      // Most joins parked: a thief finishing a child (a throw and a catch)
      // before its joiner parks is rare.
      CHECK(parks >= static_cast<std::uint64_t>(k_fibers * k_joins / 2));
    }
  }
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

// ---- Inline join (Runtime::Options::inline_join) ---------------------------
//
// join() from a fiber of a task that has not started and is the bottom entry
// of the joiner's worker deque runs the task on the joiner's own stack (while
// at least half of that stack is free); join_for / join_until never do.

namespace {

long fib_join(int n) {
  if (n < 2) return n;
  auto h = weft::go([n] { return fib_join(n - 1); });
  const long b = fib_join(n - 2);
  return h.join() + b;
}

long fib_ref(int n) { return n < 2 ? n : fib_ref(n - 1) + fib_ref(n - 2); }

// Spawns both subtrees; leaves with n == 0 throw, leaves with n == 1 return
// 1. Joining the second child first and then the first makes each join (with
// one worker) that of the bottom deque entry. Returns fib(n) and counts the
// caught leaf exceptions (fib(n - 1) of them).
long tree_throwing(int n, std::atomic<long>& caught, std::atomic<long>& bad_message) {
  if (n == 0) throw std::runtime_error("leaf 0");
  if (n == 1) return 1;
  auto a = weft::go([n, &caught, &bad_message] { return tree_throwing(n - 1, caught, bad_message); });
  auto b = weft::go([n, &caught, &bad_message] { return tree_throwing(n - 2, caught, bad_message); });
  long sum = 0;
  for (auto* h : {&b, &a}) {
    try {
      sum += h->join();
    } catch (const std::runtime_error& e) {
      caught.fetch_add(1, std::memory_order_relaxed);
      if (std::string(e.what()) != "leaf 0") bad_message.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return sum;
}

}  // namespace

TEST_CASE("inline join: values and exceptions come back through recursive spawn-and-join" * doctest::timeout(300)) {
  const int n = weft_test::scaled(100) >= 100 ? 20 : 16;
  for (std::size_t workers : k_worker_counts) {
    for (bool inline_join : k_inline_modes) {
      CAPTURE(workers);
      CAPTURE(inline_join);
      weft::Runtime rt({.workers = workers, .inline_join = inline_join});
      CHECK(rt.block_on([n] { return fib_join(n); }) == fib_ref(n));

      std::atomic<long> caught{0}, bad_message{0};
      CHECK(rt.block_on([&, n] { return tree_throwing(n, caught, bad_message); }) == fib_ref(n));
      CHECK(caught.load() == fib_ref(n - 1));
      CHECK(bad_message.load() == 0);

      // An exception of a non-std type, straight out of a joined child.
      const bool got_int = rt.block_on([] {
        try {
          weft::go([]() -> int { throw 17; }).join();
        } catch (int v) {
          return v == 17;
        }
        return false;
      });
      CHECK(got_int);
      // Everything was joined: no fiber is left (each one leaves the live set
      // before its joiner is woken).
      CHECK(rt.metrics().fibers_alive == 0);
    }
  }
}

TEST_CASE("inline join: with one worker the joined child shares the joiner's fiber; without inline_join it does not" *
          doctest::timeout(60)) {
  for (bool inline_join : k_inline_modes) {
    CAPTURE(inline_join);
    weft::Runtime rt({.workers = 1, .inline_join = inline_join});
    struct Ids {
      weft::FiberId parent, child, void_child, first_of_two;
      bool child_in_fiber;
    };
    const Ids ids = rt.block_on([] {
      Ids r{};
      r.parent = weft::this_fiber::id();
      weft::FiberId seen = 0;
      r.child = weft::go([&seen] {
        seen = weft::this_fiber::id();
        return weft::this_fiber::id();
      }).join();
      r.child_in_fiber = seen == r.child;
      weft::go([&r] { r.void_child = weft::this_fiber::id(); }).join();
      // The first of two queued children is not the bottom entry when it is
      // joined, so it never runs inline.
      auto first = weft::go([] { return weft::this_fiber::id(); });
      auto second = weft::go([] { return weft::this_fiber::id(); });
      r.first_of_two = first.join();
      second.join();
      return r;
    });
    CHECK(ids.parent != 0);
    CHECK(ids.child != 0);
    CHECK(ids.child_in_fiber);
    CHECK(ids.first_of_two != ids.parent);
    if (inline_join) {
      CHECK(ids.child == ids.parent);
      CHECK(ids.void_child == ids.parent);
    } else {
      CHECK(ids.child != ids.parent);
      CHECK(ids.void_child != ids.parent);
    }
    CHECK(rt.metrics().fibers_alive == 0);
  }
}

TEST_CASE("inline join: an inlined child that parks (channel receive, sleep) completes and the joiner gets its value" *
          doctest::timeout(300)) {
  const int rounds = static_cast<int>(weft_test::scaled(300));
  const int sleep_rounds = static_cast<int>(weft_test::scaled(30));
  for (std::size_t workers : k_worker_counts) {
    for (bool inline_join : k_inline_modes) {
      CAPTURE(workers);
      CAPTURE(inline_join);
      weft::Runtime rt({.workers = workers, .inline_join = inline_join});
      struct Outcome {
        long wrong_values = 0;
        long shared_fiber = 0;  // children that ran on the joiner's fiber
      };
      const Outcome out = rt.block_on([rounds, sleep_rounds] {
        Outcome o;
        const weft::FiberId me = weft::this_fiber::id();
        weft::Channel<int> ch;  // unbuffered: the child's receive parks until the sender comes
        for (int r = 0; r < rounds; ++r) {
          // The sender is queued below the child: the child is the bottom
          // entry at the join, runs inline (one worker) and parks in recv;
          // then the sender runs and wakes it (and so the joiner).
          auto sender = weft::go([ch, r]() mutable {
            weft::this_fiber::yield();
            ch.send(r);
          });
          auto child = weft::go([ch]() mutable {
            const std::optional<int> v = ch.recv();
            return std::pair{v.value_or(-1) * 2 + 1, weft::this_fiber::id()};
          });
          const auto [value, id] = child.join();
          if (value != 2 * r + 1) ++o.wrong_values;
          if (id == me) ++o.shared_fiber;
          sender.join();
        }
        for (int r = 0; r < sleep_rounds; ++r) {
          auto child = weft::go([r] {
            weft::this_fiber::sleep_for(std::chrono::microseconds(500));
            return std::pair{r * 3, weft::this_fiber::id()};
          });
          const auto [value, id] = child.join();
          if (value != 3 * r) ++o.wrong_values;
          if (id == me) ++o.shared_fiber;
        }
        // A void child that parks.
        weft::Channel<int> done(1);
        auto v = weft::go([done]() mutable {
          weft::this_fiber::sleep_for(std::chrono::microseconds(200));
          done.send(1);
        });
        v.join();
        if (done.try_recv() != std::optional<int>(1)) ++o.wrong_values;
        return o;
      });
      CHECK(out.wrong_values == 0);
      if (workers == 1) {
        // One worker: nothing can steal the child, so every join is inline
        // exactly when inline_join is on.
        CHECK(out.shared_fiber == (inline_join ? rounds + sleep_rounds : 0));
      } else if (!inline_join) {
        CHECK(out.shared_fiber == 0);
      }
      CHECK(rt.metrics().fibers_alive == 0);
    }
  }
}

TEST_CASE("inline join: a started child that the joiner itself woke is resumed as its own fiber, not rerun inline" *
          doctest::timeout(120)) {
  // One worker. The child starts, parks in recv; the joiner's send wakes it,
  // which queues the child's task at the bottom of this worker's deque right
  // before the join: it is queued but has a fiber, so join must park.
  for (bool inline_join : k_inline_modes) {
    CAPTURE(inline_join);
    weft::Runtime rt({.workers = 1, .inline_join = inline_join});
    std::atomic<int> bodies{0};
    const int rounds = static_cast<int>(weft_test::scaled(200));
    const int wrong = rt.block_on([&] {
      int bad = 0;
      const weft::FiberId me = weft::this_fiber::id();
      for (int r = 0; r < rounds; ++r) {
        weft::Channel<int> ready(1), data;
        auto child = weft::go([&bodies, ready, data]() mutable {
          bodies.fetch_add(1, std::memory_order_relaxed);
          ready.send(1);
          const int v = data.recv().value_or(-1000);
          return std::pair{v + 1, weft::this_fiber::id()};
        });
        ready.recv();  // the child has started and goes on to park in data.recv()
        data.send(r);  // hands r over and wakes the child
        const auto [value, id] = child.join();
        if (value != r + 1 || id == me) ++bad;
      }
      return bad;
    });
    CHECK(wrong == 0);
    CHECK(bodies.load() == rounds);
    CHECK(rt.metrics().fibers_alive == 0);
  }
}

namespace {

// One level of a spawn-and-join chain with ~1 KiB of live stack per level.
// With inline joins each level sits on its parent's stack; the half-stack
// rule must move the chain onto a fresh fiber before the stack runs out.
int deep_chain(int depth, std::vector<weft::FiberId>& ids) {
  volatile char buf[1024];
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>(depth + static_cast<int>(i));
  ids[static_cast<std::size_t>(depth)] = weft::this_fiber::id();
  int below = 0;
  if (depth > 0) below = weft::go([depth, &ids] { return deep_chain(depth - 1, ids); }).join() + 1;
  // The buffer must still be intact after the whole chain below returned.
  for (std::size_t i = 0; i < sizeof buf; ++i) {
    if (buf[i] != static_cast<char>(depth + static_cast<int>(i))) return -1'000'000;
  }
  return below;
}

}  // namespace

TEST_CASE("inline join: a deep chain on small stacks switches to fresh fibers before half a stack is used" *
          doctest::timeout(300)) {
  // 2000 levels x ~1 KiB on 64 KiB stacks: inlined all the way down they
  // would need ~2 MiB on one stack and hit the guard page (SIGSEGV); the
  // half-stack rule gives the chain a fresh fiber every ~25 levels.
  constexpr int k_depth = 2000;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers, .stack_size = 64 * 1024, .inline_join = true});
    std::vector<weft::FiberId> ids(k_depth + 1);
    CHECK(rt.block_on([&] { return deep_chain(k_depth, ids); }) == k_depth);
    std::set<weft::FiberId> distinct(ids.begin(), ids.end());
    CAPTURE(distinct.size());
    CHECK(distinct.count(0) == 0);
    CHECK(distinct.size() > 1);  // not all on one stack
    if (workers == 1) {
      // Nothing steals: levels share fibers (inlining happened), several
      // levels per fiber, and each fiber holds a run of consecutive levels.
      CHECK(distinct.size() <= static_cast<std::size_t>(k_depth / 4));
    }
    CHECK(rt.metrics().fibers_alive == 0);
  }
}

TEST_CASE("inline join: join_for and join_until of an unstarted task wait for it, never run it inline" *
          doctest::timeout(120)) {
  using namespace std::chrono_literals;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers, .inline_join = true});
    struct R {
      bool for_done = false, until_done = false, timed_out_first = false;
      int v1 = 0, v2 = 0, v3 = 0;
      bool shared1 = false, shared2 = false;
    };
    const R r = rt.block_on([] {
      R out;
      const weft::FiberId me = weft::this_fiber::id();
      auto a = weft::go([] { return std::pair{7, weft::this_fiber::id()}; });
      out.for_done = a.join_for(30s);
      if (out.for_done) {
        auto [v, id] = a.join();
        out.v1 = v;
        out.shared1 = id == me;
      }
      auto b = weft::go([] { return std::pair{8, weft::this_fiber::id()}; });
      out.until_done = b.join_until(std::chrono::steady_clock::now() + 30s);
      if (out.until_done) {
        auto [v, id] = b.join();
        out.v2 = v;
        out.shared2 = id == me;
      }
      // A timed join that gives up, then an untimed one that gets the value.
      weft::Channel<int> ch;
      auto c = weft::go([ch]() mutable { return ch.recv().value_or(-1) + 1; });
      out.timed_out_first = !c.join_for(5ms);
      ch.send(8);
      out.v3 = c.join();
      return out;
    });
    CHECK(r.for_done);
    CHECK(r.until_done);
    CHECK(r.v1 == 7);
    CHECK(r.v2 == 8);
    CHECK(r.v3 == 9);
    CHECK(r.timed_out_first);
    CHECK_FALSE(r.shared1);
    CHECK_FALSE(r.shared2);
    CHECK(rt.metrics().fibers_alive == 0);
  }
}
