// Soak scenarios for tasks and time: fork-join trees (with throwing leaves,
// detached children and timed joins) compute exact sums; spawns from plain
// threads all run; sleeps, timeouts, tickers and timed waits never end early;
// weft::blocking() returns each value (or exception) to its caller.
#include <stdexcept>

#include "soak.hpp"

namespace weft_soak {
namespace {

using Clock = std::chrono::steady_clock;

struct TreeResult {
  std::uint64_t sum = 0;     // Σ of the leaves that did not throw
  std::uint64_t thrown = 0;  // leaves that threw
};

bool leaf_throws(std::uint64_t lo, std::uint64_t salt) noexcept { return ((lo * 0x9E3779B97F4A7C15ull) ^ salt) % 23 == 0; }

std::uint64_t leaf_sum(std::uint64_t lo, std::uint64_t hi) noexcept {
  std::uint64_t s = 0;
  for (std::uint64_t i = lo; i < hi; ++i) s += i * i;
  return s;
}

// What the tree must compute, sequentially.
TreeResult expected_tree(std::uint64_t lo, std::uint64_t hi, std::uint64_t leaf, std::uint64_t salt) {
  TreeResult r;
  for (std::uint64_t a = lo; a < hi; a += leaf) {
    const std::uint64_t b = std::min(hi, a + leaf);
    if (leaf_throws(a, salt)) {
      ++r.thrown;
    } else {
      r.sum += leaf_sum(a, b);
    }
  }
  return r;
}

struct TreeShape {
  std::uint64_t leaf;
  std::uint64_t salt;
  weft::WaitGroup* detached;
  std::atomic<std::uint64_t>* detached_runs;
};

TreeResult tree(std::uint64_t lo, std::uint64_t hi, const TreeShape& shape, std::uint64_t seed) {
  auto& s = stats();
  if (hi - lo <= shape.leaf) {
    s.add(s.ops);
    if (leaf_throws(lo, shape.salt)) throw std::runtime_error("soak leaf");
    weft::this_fiber::maybe_yield();
    return TreeResult{leaf_sum(lo, hi), 0};
  }
  Rng rng(seed);
  // Split on a leaf boundary so that the leaves are the same as expected_tree's.
  const std::uint64_t leaves = (hi - lo + shape.leaf - 1) / shape.leaf;
  const std::uint64_t mid = lo + (leaves / 2) * shape.leaf;
  if (rng.chance(5)) {  // a detached child that reports through a WaitGroup
    shape.detached->add(1);
    s.add(s.fibers);
    weft::go([&shape] {
      shape.detached_runs->fetch_add(1, std::memory_order_relaxed);  // relaxed: read after wait()
      shape.detached->done();
    }).detach();
  }
  auto run_half = [&shape](std::uint64_t a, std::uint64_t b, std::uint64_t sd) {
    TreeResult r;
    try {
      r = tree(a, b, shape, sd);
    } catch (const std::runtime_error&) {
      r.thrown = 1;  // a leaf that threw
    }
    return r;
  };
  s.add(s.fibers);
  weft::JoinHandle<TreeResult> left =
      weft::go([lo, mid, &run_half, sd = rng.next()] { return run_half(lo, mid, sd); });
  const TreeResult right = run_half(mid, hi, rng.next());
  if (rng.chance(10)) {
    while (!left.join_for(std::chrono::microseconds(rng.below(100)))) {
    }
  } else if (rng.chance(10)) {
    while (!left.is_finished()) weft::this_fiber::yield();
  }
  const TreeResult l = left.join();
  return TreeResult{l.sum + right.sum, l.thrown + right.thrown};
}

}  // namespace

void spawn_tree(weft::Runtime& rt, Rng& rng) {
  const std::uint64_t n = scaled(rng.range(2000, 40000));
  const std::uint64_t leaf = rng.range(1, 64);
  const std::uint64_t salt = rng.next();
  weft::WaitGroup detached;
  std::atomic<std::uint64_t> detached_runs{0};
  const TreeShape shape{leaf, salt, &detached, &detached_runs};
  TreeResult got;
  try {
    got = tree(0, n, shape, rng.next());
  } catch (const std::runtime_error&) {
    got.thrown = 1;  // the whole range was one throwing leaf
  }
  detached.wait();
  const TreeResult want = expected_tree(0, n, leaf, salt);
  SOAK_CHECK(got.sum == want.sum, "fork-join tree: wrong sum");
  SOAK_CHECK(got.thrown == want.thrown, "fork-join tree: an exception was lost or reported twice");
  SOAK_CHECK(detached.count() == 0, "fork-join tree: detached children still counted");

  // Spawns from plain threads, joined there.
  const std::size_t threads = rng.range(1, 3);
  const std::size_t each = scaled(rng.range(50, 500));
  std::vector<std::uint64_t> sums(threads, 0);
  Crew crew;
  for (std::size_t t = 0; t < threads; ++t) {
    crew.start(true, [&, t] {
      std::vector<weft::JoinHandle<std::uint64_t>> hs;
      for (std::size_t i = 0; i < each; ++i) hs.push_back(rt.spawn([i] { return std::uint64_t{i}; }));
      for (auto& h : hs) sums[t] += h.join();
      stats().add(stats().fibers, each);
    });
  }
  crew.wait_all();
  for (std::uint64_t s : sums) SOAK_CHECK(s == each * (each - 1) / 2, "spawn from a plain thread: wrong sum");
  stats().add(stats().progress);
}

void timers_and_blocking(weft::Runtime&, Rng& rng) {
  auto& s = stats();
  const std::size_t sleepers = scaled(rng.range(20, 400));
  // relaxed: read after wg.wait(), which orders every sleeper's writes.
  std::atomic<std::uint64_t> blocking_sum{0};
  std::atomic<std::uint64_t> blocking_errors{0};
  std::uint64_t blocking_expected = 0;
  std::uint64_t errors_expected = 0;
  weft::WaitGroup wg;
  for (std::size_t i = 0; i < sleepers; ++i) {
    const unsigned what = static_cast<unsigned>(rng.below(6));
    const auto d = std::chrono::microseconds(rng.below(2000));
    if (what == 3) {
      if (i % 7 == 0) {
        ++errors_expected;
      } else {
        blocking_expected += i;
      }
    }
    wg.add(1);
    s.add(s.fibers);
    weft::go([&, i, what, d] {
      s.add(s.ops);
      const auto start = Clock::now();
      switch (what) {
        case 0: {  // sleep: never early
          const auto deadline = start + d;
          weft::this_fiber::sleep_until(deadline);
          SOAK_CHECK(Clock::now() >= deadline, "sleep_until returned before its deadline");
          break;
        }
        case 1: {  // select timeout over a channel nobody sends on
          weft::Channel<int> never;
          bool fired = false;
          weft::select(weft::on_recv(never, [](std::optional<int>) {}), weft::after(d, [&] { fired = true; }));
          SOAK_CHECK(fired && Clock::now() - start >= d, "select's after() fired early or not at all");
          break;
        }
        case 2: {  // a timeout channel closes after d
          weft::Channel<std::monostate> t = weft::timeout(d);
          SOAK_CHECK(!t.recv(), "a timeout channel delivered a value");
          SOAK_CHECK(Clock::now() - start >= d, "a timeout channel closed early");
          break;
        }
        case 3: {  // blocking(): values and exceptions come back
          try {
            const std::uint64_t v = weft::blocking([i] {
              if (i % 7 == 0) throw std::runtime_error("soak blocking");
              return std::uint64_t{i};
            });
            blocking_sum.fetch_add(v, std::memory_order_relaxed);
          } catch (const std::runtime_error&) {
            blocking_errors.fetch_add(1, std::memory_order_relaxed);
          }
          break;
        }
        case 4: {  // a ticker ticks, then stops
          weft::Ticker ticker(std::chrono::microseconds(100 + d.count() / 10));
          for (int k = 0; k < 3; ++k) SOAK_CHECK(ticker.channel().recv().has_value(), "a ticker stopped ticking");
          ticker.stop();
          break;
        }
        default: {  // a CPU loop with checkpoints, and a timed join of a sleeper
          auto sleeper = weft::go([d] { weft::this_fiber::sleep_for(d); });
          while (Clock::now() - start < std::chrono::microseconds(300)) weft::this_fiber::maybe_yield();
          (void)sleeper.join_for(std::chrono::microseconds(50));
          sleeper.join();
          break;
        }
      }
      wg.done();
    }).detach();
  }
  if (rng.chance(50)) {
    wg.wait();
  } else {
    while (!wg.wait_for(std::chrono::microseconds(rng.range(50, 500)))) {
    }
  }
  SOAK_CHECK(blocking_sum.load(std::memory_order_relaxed) == blocking_expected, "blocking(): a value was lost");
  SOAK_CHECK(blocking_errors.load(std::memory_order_relaxed) == errors_expected, "blocking(): an exception was lost");
  s.add(s.progress);
}

}  // namespace weft_soak
