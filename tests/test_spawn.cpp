// Spawning fibers: each runs exactly once, work spreads over the workers,
// plain threads and fibers spawn concurrently, yield and ids behave.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

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

TEST_CASE("spawn: a child spawned just before its parent spins is run by another worker, round after round" *
          doctest::timeout(600)) {
  // The idle protocol's I2 (idle_workers.hpp): whether the other worker is
  // busy, searching or falling asleep when the child is queued, it must
  // take the child, because the parent keeps its own worker busy until the
  // child has run. Pauses of 0-200 us before each spawn put the other
  // worker in every one of those states.
  const std::size_t rounds = scaled(3000);
  weft::Runtime rt({.workers = 2});
  std::size_t late = 0;
  rt.block_on([&] {
    std::uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (std::size_t r = 0; r < rounds; ++r) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      const auto pause = std::chrono::microseconds((seed >> 33) % 200);
      const auto pause_until = std::chrono::steady_clock::now() + pause;
      while (std::chrono::steady_clock::now() < pause_until) {
      }
      std::atomic<bool> ran{false};
      auto child = weft::go([&] { ran.store(true, std::memory_order_release); });
      const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!ran.load(std::memory_order_acquire)) {
        if (std::chrono::steady_clock::now() > limit) {
          ++late;  // the join below runs it here
          break;
        }
      }
      child.join();
    }
  });
  CHECK(late == 0);
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

// ---- Task memory (lib/scheduling/task_memory.cpp) --------------------------------------
//
// Tasks come from per-thread free lists by size class (up to 512 bytes) with
// a shared depot; larger ones from ::operator new. These cases mix closure
// sizes below and above the small limit, allocate on one thread and free on
// another, and let a spawning thread exit while its tasks are still queued.

namespace {

// A closure payload of N bytes whose contents depend on the task index, so
// that a block handed out twice, or reused while still in use, shows up as a
// wrong checksum.
template <std::size_t N>
struct Payload {
  std::array<std::uint8_t, N> bytes;
  explicit Payload(std::uint64_t i) {
    for (std::size_t k = 0; k < N; ++k) bytes[k] = static_cast<std::uint8_t>(i * 31 + k * 7);
  }
  std::uint64_t checksum() const {
    std::uint64_t s = 0;
    for (std::size_t k = 0; k < N; ++k) s += bytes[k] * (k + 1);
    return s;
  }
};

template <std::size_t N>
std::uint64_t expected_checksum(std::uint64_t i) {
  return Payload<N>(i).checksum() + i;
}

// Shared by the tasks of one run: each task i bumps runs[i] once and returns
// (or, detached, adds) its checksum.
struct Ledger {
  explicit Ledger(std::size_t n) : runs(n) {}
  std::vector<std::atomic<std::uint8_t>> runs;
  std::atomic<std::size_t> ran{0};
  std::atomic<std::uint64_t> detached_sum{0};

  std::size_t not_once() const {
    std::size_t bad = 0;
    for (auto& r : runs) bad += r.load() != 1;
    return bad;
  }
};

// Task i: a closure of about 8, 100, 300 or 600 bytes (by i % 4); the last
// is above the 512-byte small limit. Returns the checksum, and adds it to
// the ledger if `detached`.
template <std::size_t N>
auto sized_task(Ledger& ledger, std::uint64_t i, bool detached) {
  return [&ledger, i, detached, payload = Payload<N>(i)] {
    ledger.runs[i].fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t sum = payload.checksum() + i;
    if (detached) ledger.detached_sum.fetch_add(sum, std::memory_order_relaxed);
    ledger.ran.fetch_add(1, std::memory_order_release);
    return sum;
  };
}

auto small_task(Ledger& ledger, std::uint64_t i, bool detached) {
  // Captures only what it must: the index (8 bytes) and the ledger.
  return [&ledger, i, detached] {
    ledger.runs[i].fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t sum = i * 3 + 1;
    if (detached) ledger.detached_sum.fetch_add(sum, std::memory_order_relaxed);
    ledger.ran.fetch_add(1, std::memory_order_release);
    return sum;
  };
}

std::uint64_t expected_for(std::uint64_t i) {
  switch (i % 4) {
    case 0: return i * 3 + 1;
    case 1: return expected_checksum<100>(i);
    case 2: return expected_checksum<300>(i);
    default: return expected_checksum<600>(i);
  }
}

// Spawns task i through `spawn` (Runtime::spawn or weft::go) with the closure
// size chosen by i % 4.
template <class SpawnFn>
weft::JoinHandle<std::uint64_t> spawn_sized(SpawnFn&& spawn, Ledger& ledger, std::uint64_t i, bool detached) {
  switch (i % 4) {
    case 0: return spawn(small_task(ledger, i, detached));
    case 1: return spawn(sized_task<100>(ledger, i, detached));
    case 2: return spawn(sized_task<300>(ledger, i, detached));
    default: return spawn(sized_task<600>(ledger, i, detached));
  }
}

// Spawns tasks [begin, end): every third is detached, the rest are joined
// in batches (so that blocks are freed by the joiner, by the worker, and
// reused while other tasks are in flight). Returns the joined tasks' sum and
// counts wrong values.
template <class SpawnFn>
std::uint64_t spawn_range(SpawnFn&& spawn, Ledger& ledger, std::uint64_t begin, std::uint64_t end,
                          std::size_t& wrong) {
  std::uint64_t sum = 0;
  std::vector<std::pair<std::uint64_t, weft::JoinHandle<std::uint64_t>>> batch;
  auto drain = [&] {
    for (auto& [i, h] : batch) {
      const std::uint64_t v = h.join();
      if (v != expected_for(i)) ++wrong;
      sum += v;
    }
    batch.clear();
  };
  for (std::uint64_t i = begin; i < end; ++i) {
    const bool detached = i % 3 == 0;
    auto h = spawn_sized(spawn, ledger, i, detached);
    if (detached) {
      h.detach();
    } else {
      batch.emplace_back(i, std::move(h));
      if (batch.size() == 64) drain();
    }
  }
  drain();
  return sum;
}

std::uint64_t expected_joined_sum(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t s = 0;
  for (std::uint64_t i = begin; i < end; ++i) {
    if (i % 3 != 0) s += expected_for(i);
  }
  return s;
}

std::uint64_t expected_detached_sum(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t s = 0;
  for (std::uint64_t i = begin; i < end; ++i) {
    if (i % 3 == 0) s += expected_for(i);
  }
  return s;
}

}  // namespace

TEST_CASE("task memory: closures of 8 to 600 bytes from plain threads and fibers each run once with intact captures" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    // Index ranges: [0, n) from two plain threads, [n, 2n) from fibers.
    const std::uint64_t per_source = scaled(25'000);
    const std::uint64_t n = 2 * per_source;
    constexpr std::uint64_t k_fibers = 8;
    Ledger ledger(2 * n);
    std::atomic<std::uint64_t> joined_sum{0};
    std::atomic<std::size_t> wrong{0};

    auto from_runtime = [&rt](auto&& fn) { return rt.spawn(std::forward<decltype(fn)>(fn)); };
    auto from_fiber = [](auto&& fn) { return weft::go(std::forward<decltype(fn)>(fn)); };

    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        std::size_t bad = 0;
        joined_sum.fetch_add(spawn_range(from_runtime, ledger, t * per_source, (t + 1) * per_source, bad));
        wrong.fetch_add(bad);
      });
    }
    // Meanwhile fibers spawn the other half, each a slice, from inside the runtime.
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> spawners;
      const std::uint64_t slice = n / k_fibers;
      for (std::uint64_t f = 0; f < k_fibers; ++f) {
        const std::uint64_t begin = n + f * slice;
        const std::uint64_t end = f + 1 == k_fibers ? 2 * n : begin + slice;
        spawners.push_back(weft::go([&, begin, end] {
          std::size_t bad = 0;
          joined_sum.fetch_add(spawn_range(from_fiber, ledger, begin, end, bad));
          wrong.fetch_add(bad);
        }));
      }
      for (auto& s : spawners) s.join();
    });
    for (auto& th : threads) th.join();
    // The detached tasks may still be finishing.
    weft_test::spin_until([&] { return ledger.ran.load(std::memory_order_acquire) == 2 * n; });
    CHECK(ledger.ran.load() == 2 * n);
    CHECK(ledger.not_once() == 0);
    CHECK(wrong.load() == 0);
    CHECK(joined_sum.load() == expected_joined_sum(0, 2 * n));
    CHECK(ledger.detached_sum.load() == expected_detached_sum(0, 2 * n));
  }
}

TEST_CASE("task memory: a thread that spawned tasks exits before they run; later spawns reuse its blocks" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::uint64_t warm = scaled(2'000);       // joined by the thread: freed into its own cache
    const std::uint64_t detached = scaled(10'000);  // still queued when the thread exits
    const std::uint64_t after = scaled(20'000);     // spawned once the thread is gone
    constexpr int k_rounds = 2;                     // two threads, one after the other
    const std::uint64_t per_round = warm + detached;
    Ledger ledger(k_rounds * per_round + after);
    std::size_t wrong = 0;
    std::uint64_t joined_sum = 0, expected_joined = 0, expected_detached = 0;

    for (int round = 0; round < k_rounds; ++round) {
      CAPTURE(round);
      const std::uint64_t base = static_cast<std::uint64_t>(round) * per_round;
      const std::size_t ran_before = ledger.ran.load();
      const std::uint64_t detached_sum_before = ledger.detached_sum.load();
      // Blockers keep every worker busy (spinning, not parked) so the
      // detached tasks stay queued until after the thread has exited.
      std::atomic<bool> gate{false};
      std::atomic<std::size_t> blocking{0};
      std::vector<weft::JoinHandle<void>> blockers;
      std::size_t thread_wrong = 0;
      std::uint64_t thread_joined = 0;
      std::thread spawner([&] {
        auto from_runtime = [&rt](auto&& fn) { return rt.spawn(std::forward<decltype(fn)>(fn)); };
        // Warm-up tasks: run now, joined only at the end, so that this
        // thread frees their blocks into its own cache just before it exits.
        std::vector<std::pair<std::uint64_t, weft::JoinHandle<std::uint64_t>>> hs;
        for (std::uint64_t i = base; i < base + warm; ++i) {
          hs.emplace_back(i, spawn_sized(from_runtime, ledger, i, false));
        }
        while (ledger.ran.load(std::memory_order_acquire) < ran_before + warm) std::this_thread::yield();
        for (std::size_t w = 0; w < workers; ++w) {
          blockers.push_back(rt.spawn([&] {
            blocking.fetch_add(1);
            while (!gate.load(std::memory_order_acquire)) std::this_thread::yield();
          }));
        }
        while (blocking.load() < workers) std::this_thread::yield();
        for (std::uint64_t i = base + warm; i < base + per_round; ++i) {
          spawn_sized(from_runtime, ledger, i, true).detach();
        }
        for (auto& [i, h] : hs) {
          const std::uint64_t v = h.join();  // finished already: no worker needed
          if (v != expected_for(i)) ++thread_wrong;
          thread_joined += v;
        }
        hs.clear();
        // Exits with its tasks still queued; its cache goes to the depot.
      });
      spawner.join();
      wrong += thread_wrong;
      joined_sum += thread_joined;
      expected_joined += expected_joined_sum(base, base + warm) + expected_detached_sum(base, base + warm);
      // Every worker is held by a blocker: none of the detached tasks ran yet.
      CHECK(ledger.ran.load() == ran_before + warm);
      gate.store(true, std::memory_order_release);
      for (auto& b : blockers) b.join();
      weft_test::spin_until([&] { return ledger.ran.load(std::memory_order_acquire) == ran_before + per_round; });
      CHECK(ledger.ran.load() == ran_before + per_round);
      std::uint64_t round_detached = 0;
      for (std::uint64_t i = base + warm; i < base + per_round; ++i) round_detached += expected_for(i);
      CHECK(ledger.detached_sum.load() - detached_sum_before == round_detached);
      expected_detached += round_detached;
    }

    // More spawns, from this thread and from fibers, on the blocks the
    // exited threads left behind.
    const std::uint64_t base = k_rounds * per_round;
    auto from_runtime = [&rt](auto&& fn) { return rt.spawn(std::forward<decltype(fn)>(fn)); };
    auto from_fiber = [](auto&& fn) { return weft::go(std::forward<decltype(fn)>(fn)); };
    const std::uint64_t half = base + after / 2;
    joined_sum += spawn_range(from_runtime, ledger, base, half, wrong);
    std::size_t fiber_wrong = 0;
    joined_sum += rt.block_on([&] { return spawn_range(from_fiber, ledger, half, base + after, fiber_wrong); });
    wrong += fiber_wrong;
    expected_joined += expected_joined_sum(base, base + after);
    expected_detached += expected_detached_sum(base, base + after);
    weft_test::spin_until([&] { return ledger.ran.load(std::memory_order_acquire) == base + after; });

    CHECK(ledger.ran.load() == base + after);
    CHECK(ledger.not_once() == 0);
    CHECK(wrong == 0);
    // The warm-up tasks were all joined (none detached), so their checksums
    // are in joined_sum; expected_joined counts them whole.
    CHECK(joined_sum == expected_joined);
    CHECK(ledger.detached_sum.load() == expected_detached);
  }
}
