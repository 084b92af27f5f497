// The classic races, on 1, 2 and 4 workers: shared counters under a
// weft::Mutex (also across a yield point), atomics, a single owner behind a
// channel, and producers x consumers with close racing the sends.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::Actor;
using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::Side;
using weft_test::side_name;
using weft_test::spin_until;

namespace {
constexpr int k_fibers = 1'000;
}

TEST_CASE("races: 1,000 fibers doing counter += 1 under a weft::Mutex end at exactly 1,000" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (int per_fiber : {1, 100}) {
      CAPTURE(workers);
      CAPTURE(per_fiber);
      weft::Runtime rt({.workers = workers});
      weft::Mutex m;
      long long counter = 0;
      rt.block_on([&] {
        std::vector<weft::JoinHandle<void>> hs;
        for (int i = 0; i < k_fibers; ++i) {
          hs.push_back(weft::go([&] {
            for (int k = 0; k < per_fiber; ++k) {
              std::lock_guard<weft::Mutex> g(m);
              counter += 1;
            }
          }));
        }
        for (auto& h : hs) h.join();
      });
      CHECK(counter == static_cast<long long>(k_fibers) * per_fiber);
    }
  }
}

TEST_CASE("races: read, yield, write back under a weft::Mutex ends at N" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    long long counter = 0;
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < k_fibers; ++i) {
        hs.push_back(weft::go([&] {
          std::lock_guard<weft::Mutex> g(m);
          const long long read = counter;
          weft::this_fiber::yield();  // other fibers run here; they must not get in
          counter = read + 1;
        }));
      }
      for (auto& h : hs) h.join();
    });
    CHECK(counter == k_fibers);
  }
}

TEST_CASE("races: without the mutex, the same read-yield-write loses updates (the yield is a real switch)" *
          doctest::timeout(120)) {
  // One worker, so the unprotected counter is only ever touched by one thread:
  // no data race, just the interleaving the mutex test above guards against.
  weft::Runtime rt({.workers = 1});
  long long counter = 0;
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> hs;
    for (int i = 0; i < k_fibers; ++i) {
      hs.push_back(weft::go([&] {
        const long long read = counter;
        weft::this_fiber::yield();
        counter = read + 1;
      }));
    }
    for (auto& h : hs) h.join();
  });
  CHECK(counter < k_fibers);
  CHECK(counter >= 1);
}

TEST_CASE("races: std::atomic fetch_add from fibers across yields ends at N" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    std::atomic<long long> counter{0};
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < k_fibers; ++i) {
        hs.push_back(weft::go([&] {
          for (int k = 0; k < 10; ++k) {
            weft::this_fiber::yield();
            counter.fetch_add(1);
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
    CHECK(counter.load() == 10LL * k_fibers);
  }
}

TEST_CASE("races: a single owner fiber behind a channel applies every increment" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{16}}) {
      CAPTURE(workers);
      CAPTURE(capacity);
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> increments(capacity, "increments");
      auto result = rt.block_on([&] {
        // Only the owner touches `counter`; everyone else sends to it.
        auto owner = weft::go([&] {
          long long counter = 0, messages = 0;
          for (int d : increments) {
            counter += d;
            ++messages;
          }
          return std::pair<long long, long long>(counter, messages);
        });
        std::vector<weft::JoinHandle<void>> hs;
        for (int i = 0; i < k_fibers; ++i) {
          hs.push_back(weft::go([&, i] {
            weft::this_fiber::yield();
            increments.send(1 + i % 3);
          }));
        }
        for (auto& h : hs) h.join();
        increments.close();
        return owner.join();
      });
      long long expected = 0;
      for (int i = 0; i < k_fibers; ++i) expected += 1 + i % 3;
      CHECK(result.first == expected);
      CHECK(result.second == k_fibers);
    }
  }
}

namespace {

struct PcConfig {
  std::size_t workers;
  std::size_t capacity;
  int producers;
  int consumers;
  int per_producer;
  // Close after this many receipts (>= producers * per_producer: only after
  // the last producer is done).
  std::uint64_t close_after;
  bool plain_threads;  // producer 0, consumer 0 and the closer run on plain threads
};

// Producers send unique ids (producer * K + i); consumers receive until the
// channel is closed and drained; a closer closes it at some point, racing
// the sends. Checks: every id whose send returned true is received exactly
// once; no id whose send returned false is ever received; once a producer's
// send returned false, all its later sends do too.
void run_producers_consumers(const PcConfig& cfg) {
  CAPTURE(cfg.workers);
  CAPTURE(cfg.capacity);
  CAPTURE(cfg.producers);
  CAPTURE(cfg.consumers);
  CAPTURE(cfg.per_producer);
  CAPTURE(cfg.close_after);
  CAPTURE(cfg.plain_threads);
  const auto total = static_cast<std::size_t>(cfg.producers) * static_cast<std::size_t>(cfg.per_producer);
  std::vector<std::atomic<std::uint8_t>> accepted(total), refused(total), received(total);
  std::atomic<std::uint64_t> received_count{0}, received_sum{0}, bad_ids{0};
  std::atomic<int> producers_done{0};
  weft::Runtime rt({.workers = cfg.workers});
  weft::Channel<std::uint64_t> ch(cfg.capacity, "pc");
  std::vector<Actor> actors;
  for (int p = 0; p < cfg.producers; ++p) {
    const Side side = cfg.plain_threads && p == 0 ? Side::thread : Side::fiber;
    actors.emplace_back(rt, side, [&, p] {
      for (int i = 0; i < cfg.per_producer; ++i) {
        const std::uint64_t id = static_cast<std::uint64_t>(p) * cfg.per_producer + i;
        if (ch.send(id)) {
          accepted[id].store(1, std::memory_order_relaxed);
        } else {
          refused[id].store(1, std::memory_order_relaxed);
        }
      }
      producers_done.fetch_add(1);
    });
  }
  for (int c = 0; c < cfg.consumers; ++c) {
    const Side side = cfg.plain_threads && c == 0 ? Side::thread : Side::fiber;
    actors.emplace_back(rt, side, [&] {
      std::uint64_t n = 0, s = 0;
      for (std::uint64_t id : ch) {
        if (id >= total) {
          bad_ids.fetch_add(1);
          continue;
        }
        received[id].fetch_add(1, std::memory_order_relaxed);
        ++n;
        s += id;
        received_count.fetch_add(1, std::memory_order_relaxed);
      }
      received_sum += s;
      (void)n;
    });
  }
  actors.emplace_back(rt, cfg.plain_threads ? Side::thread : Side::fiber, [&] {
    spin_until([&] {
      return received_count.load(std::memory_order_relaxed) >= cfg.close_after ||
             producers_done.load() == cfg.producers;
    });
    ch.close();
  });
  for (auto& a : actors) a.join();

  std::uint64_t accepted_count = 0, accepted_sum = 0;
  std::size_t not_exactly_once = 0, refused_but_received = 0, neither_or_both = 0, accepted_after_refused = 0;
  for (std::size_t id = 0; id < total; ++id) {
    const int acc = accepted[id].load(), ref = refused[id].load(), rec = received[id].load();
    neither_or_both += acc + ref != 1;
    if (acc) {
      ++accepted_count;
      accepted_sum += id;
      not_exactly_once += rec != 1;
    }
    if (ref) refused_but_received += rec != 0;
  }
  for (int p = 0; p < cfg.producers; ++p) {
    bool seen_refusal = false;
    for (int i = 0; i < cfg.per_producer; ++i) {
      const std::size_t id = static_cast<std::size_t>(p) * cfg.per_producer + i;
      if (refused[id].load()) seen_refusal = true;
      if (seen_refusal && accepted[id].load()) ++accepted_after_refused;
    }
  }
  CHECK(bad_ids.load() == 0);
  CHECK(neither_or_both == 0);
  CHECK(not_exactly_once == 0);
  CHECK(refused_but_received == 0);
  CHECK(accepted_after_refused == 0);
  CHECK(received_count.load() == accepted_count);
  CHECK(received_sum.load() == accepted_sum);
  if (cfg.close_after >= total) {
    CHECK(accepted_count == total);  // closed only after every send returned
  }
  CHECK(ch.is_closed());
  CHECK(ch.size() == 0);
}

}  // namespace

TEST_CASE("races: producers x consumers with close racing the sends, over many seeds" * doctest::timeout(900)) {
  const int base = static_cast<int>(scaled(10'000));
  for (unsigned seed = 0; seed < 20; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const int producers = 1 + static_cast<int>(rng() % 4);
    const int consumers = 1 + static_cast<int>(rng() % 4);
    const int per_producer = base / 2 + static_cast<int>(rng() % static_cast<unsigned>(base));
    const std::uint64_t total = static_cast<std::uint64_t>(producers) * per_producer;
    for (std::size_t workers : k_worker_counts) {
      for (std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{16}}) {
        std::uint64_t close_after = 0;
        switch (seed % 4) {
          case 0: close_after = total; break;          // only after every send
          case 1: close_after = 0; break;              // at once, racing the first sends
          default: close_after = rng() % total; break;  // somewhere in the middle
        }
        run_producers_consumers({workers, capacity, producers, consumers, per_producer, close_after, seed % 3 == 0});
      }
    }
  }
}
