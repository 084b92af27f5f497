// Submission from plain threads (issue 16): Runtime::spawn called by threads
// that are not workers of the runtime. Every submitted task runs exactly
// once, whoever submitted it, and submissions from several threads start in
// the order they were made: a producer cannot be starved by others that keep
// submitting (the old injector, moodycamel's ConcurrentQueue, served the
// first-registered of four busy producers only when one of the other three
// ran dry).
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

// Holds the only worker of a runtime inside a task until release(), so that
// everything submitted meanwhile queues up behind it.
class WorkerHold {
 public:
  explicit WorkerHold(weft::Runtime& rt)
      : handle_(rt.spawn([this] {
          running_.store(true);
          while (!released_.load()) std::this_thread::yield();
        })) {
    while (!running_.load()) std::this_thread::yield();
  }
  void release() {
    released_.store(true);
    handle_.join();
  }

 private:
  std::atomic<bool> running_{false};
  std::atomic<bool> released_{false};
  weft::JoinHandle<void> handle_;
};

}  // namespace

TEST_CASE("fair submission: tasks submitted by several plain threads start in the order they were submitted" *
          doctest::timeout(120)) {
  // One worker, held while 4 producer threads submit K tasks each, taking
  // turns (a baton): producer p submits its j-th task once producer p-1 has
  // submitted its j-th. Every spawn() call returned before the next one
  // began, so the submission order is known, and a fair queue must run the
  // tasks in exactly that order once the worker is released.
  constexpr std::size_t k_producers = 4;
  const std::size_t per_producer = weft_test::scaled(500);
  for (int round = 0; round < 3; ++round) {
    weft::Runtime rt({.workers = 1});
    WorkerHold hold(rt);
    std::vector<std::uint32_t> started(k_producers * per_producer, 0);
    std::atomic<std::size_t> next_start{0};
    std::atomic<std::size_t> turn{0};
    std::vector<std::thread> producers;
    std::vector<weft::JoinHandle<void>> handles(k_producers * per_producer);
    for (std::size_t p = 0; p < k_producers; ++p) {
      producers.emplace_back([&, p] {
        for (std::size_t j = 0; j < per_producer; ++j) {
          const std::size_t mine = j * k_producers + p;  // the position in the submission order
          while (turn.load() != mine) std::this_thread::yield();
          handles[mine] = rt.spawn([&, mine] { started[next_start.fetch_add(1)] = static_cast<std::uint32_t>(mine); });
          turn.store(mine + 1);
        }
      });
    }
    for (auto& t : producers) t.join();
    hold.release();
    for (auto& h : handles) h.join();
    REQUIRE(next_start.load() == started.size());
    std::size_t first_out_of_order = started.size();
    for (std::size_t i = 0; i < started.size(); ++i) {
      if (started[i] != i) {
        first_out_of_order = i;
        break;
      }
    }
    INFO("round " << round << ": start #" << first_out_of_order << " was submission #"
                  << (first_out_of_order < started.size() ? started[first_out_of_order] : 0));
    CHECK(first_out_of_order == started.size());
  }
}

TEST_CASE("fair submission: the last task submitted starts last, whichever thread submits it" *
          doctest::timeout(120)) {
  // The same held worker, but the producers race freely (no baton): each
  // submits K tasks. Once they all have, a thread that never submitted
  // before submits one more. Every other task was submitted before it, so a
  // FIFO starts it last. (The old queue served a newly registered thread
  // ahead of the oldest ones' backlog: this task started after about 2K
  // others, before any task of the two oldest producers.)
  constexpr std::size_t k_producers = 4;
  const std::size_t per_producer = weft_test::scaled(300);
  for (int round = 0; round < 3; ++round) {
    weft::Runtime rt({.workers = 1});
    WorkerHold hold(rt);
    std::vector<int> order;  // producers' indices in start order; one worker runs them all
    std::vector<weft::JoinHandle<void>> handles[k_producers + 1];
    std::vector<std::thread> producers;
    for (std::size_t p = 0; p < k_producers; ++p) {
      producers.emplace_back([&, p] {
        for (std::size_t j = 0; j < per_producer; ++j) {
          handles[p].push_back(rt.spawn([&, p] { order.push_back(static_cast<int>(p)); }));
        }
      });
    }
    for (auto& t : producers) t.join();
    std::thread([&] { handles[k_producers].push_back(rt.spawn([&] { order.push_back(-1); })); }).join();
    hold.release();
    for (auto& hs : handles) {
      for (auto& h : hs) h.join();
    }
    REQUIRE(order.size() == k_producers * per_producer + 1);
    std::size_t marker_at = 0;
    while (marker_at < order.size() && order[marker_at] != -1) ++marker_at;
    INFO("round " << round << ": the last submission started as #" << marker_at << " of " << order.size());
    CHECK(marker_at == order.size() - 1);
  }
}

TEST_CASE("fair submission: every task from every plain thread runs exactly once" * doctest::timeout(300)) {
  // Across seeds: 1, 2 or 4 workers; 2 to 8 producer threads, some of them
  // short-lived (a thread per burst, so the runtime sees threads come and
  // go), each submitting a random number of tasks with random pauses; the
  // tasks do random amounts of work and some spawn a child from inside.
  // Every task counts itself in its own slot; every slot must read 1.
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    std::mt19937 rng(seed);
    const std::size_t workers = weft_test::k_worker_counts[seed % 3];
    const std::size_t producers = 2 + rng() % 7;
    CAPTURE(seed);
    CAPTURE(workers);
    CAPTURE(producers);
    weft::Runtime rt({.workers = workers});
    std::vector<std::size_t> counts(producers);
    for (auto& c : counts) c = weft_test::scaled(2000) + rng() % weft_test::scaled(2000);
    std::vector<std::unique_ptr<std::atomic<std::uint32_t>[]>> ran;
    std::vector<std::unique_ptr<std::atomic<std::uint32_t>[]>> child_ran;
    std::vector<std::vector<char>> has_child(producers);  // written by producer p only, read after join
    for (std::size_t p = 0; p < producers; ++p) {
      ran.push_back(std::make_unique<std::atomic<std::uint32_t>[]>(counts[p]));
      child_ran.push_back(std::make_unique<std::atomic<std::uint32_t>[]>(counts[p]));
      has_child[p].assign(counts[p], 0);
    }
    weft::WaitGroup done;
    std::vector<std::thread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
      threads.emplace_back([&, p, tseed = rng()] {
        std::mt19937 r(tseed);
        const bool short_lived = r() % 2 == 0;
        auto submit = [&](std::size_t from, std::size_t to) {
          for (std::size_t i = from; i < to; ++i) {
            const int work = static_cast<int>(r() % 4);
            const bool child = r() % 8 == 0;
            has_child[p][i] = child;
            done.add(child ? 2 : 1);
            rt.spawn([&, p, i, work, child] {
              ran[p][i].fetch_add(1, std::memory_order_relaxed);
              (void)weft_test::burn(i, work);
              if (child) {
                weft::go([&, p, i] {
                  child_ran[p][i].fetch_add(1, std::memory_order_relaxed);
                  done.done();
                }).detach();
              }
              done.done();
            }).detach();
            if (r() % 64 == 0) std::this_thread::yield();
          }
        };
        std::size_t at = 0;
        while (at < counts[p]) {
          const std::size_t burst = std::min<std::size_t>(counts[p] - at, 1 + r() % 500);
          if (short_lived) {
            std::thread([&, at, burst] { submit(at, at + burst); }).join();
          } else {
            submit(at, at + burst);
          }
          at += burst;
        }
      });
    }
    for (auto& t : threads) t.join();
    done.wait();
    for (std::size_t p = 0; p < producers; ++p) {
      std::size_t once = 0, children_right = 0;
      for (std::size_t i = 0; i < counts[p]; ++i) {
        if (ran[p][i].load() == 1) ++once;
        if (child_ran[p][i].load() == (has_child[p][i] ? 1u : 0u)) ++children_right;
      }
      CAPTURE(p);
      CHECK(once == counts[p]);
      CHECK(children_right == counts[p]);
    }
  }
}
