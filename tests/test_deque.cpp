// The Chase-Lev deque on its own: owner order, and thieves racing the owner.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "scheduling/chase_lev_deque.hpp"
#include "support.hpp"

using weft::detail::ChaseLevDeque;
using Status = ChaseLevDeque<std::uint64_t>::StealStatus;

TEST_CASE("deque: owner push/pop is LIFO, steal is FIFO") {
  ChaseLevDeque<std::uint64_t> dq(4);
  std::vector<std::uint64_t> items(10);
  for (auto& x : items) dq.push(&x);
  CHECK(dq.size_approx() == 10);
  CHECK(dq.capacity() >= 10);  // grew from 4
  CHECK(dq.steal().item == &items[0]);
  CHECK(dq.steal().item == &items[1]);
  for (int i = 9; i >= 2; --i) CHECK(dq.pop() == &items[static_cast<std::size_t>(i)]);
  CHECK(dq.pop() == nullptr);
  CHECK(dq.steal().status == Status::empty);
}

TEST_CASE("deque: a deque nobody else steals from (a lone worker's) keeps the same order") {
  // stealable = false: pop() skips the barrier and the CAS on the last item.
  // The owner's own steal() (pick_task's FIFO turn) still takes the oldest;
  // a pop of the last item and of an empty deque leave it consistent.
  ChaseLevDeque<std::uint64_t> dq(4, false);
  std::vector<std::uint64_t> items(10);
  for (int round = 0; round < 3; ++round) {  // indices move on each round: wrap and reuse
    for (auto& x : items) dq.push(&x);
    CHECK(dq.size_approx() == 10);
    CHECK(dq.steal().item == &items[0]);
    CHECK(dq.pop() == &items[9]);
    CHECK(dq.steal().item == &items[1]);
    for (int i = 8; i >= 3; --i) CHECK(dq.pop() == &items[static_cast<std::size_t>(i)]);
    CHECK(dq.size_approx() == 1);
    CHECK(dq.pop() == &items[2]);  // the last one
    CHECK(dq.size_approx() == 0);
    CHECK(dq.pop() == nullptr);
    CHECK(dq.steal().status == Status::empty);
    CHECK(dq.size_approx() == 0);
    dq.push(&items[0]);  // and usable after an empty pop
    CHECK(dq.steal().item == &items[0]);
    CHECK(dq.pop() == nullptr);
  }
}

TEST_CASE("deque: pop_if_bottom takes the bottom item only if it is the one expected") {
  // An inline join's pop (run_queued_task_inline): both kinds of deque.
  for (bool stealable : {true, false}) {
    CAPTURE(stealable);
    ChaseLevDeque<std::uint64_t> dq(4, stealable);
    std::vector<std::uint64_t> items(6);
    std::uint64_t never_pushed = 0;
    CHECK_FALSE(dq.pop_if_bottom(&items[0]));  // empty
    for (int round = 0; round < 3; ++round) {  // indices move on each round: wrap and reuse
      for (auto& x : items) dq.push(&x);
      CHECK_FALSE(dq.pop_if_bottom(&items[4]));  // in the deque, not at the bottom
      CHECK_FALSE(dq.pop_if_bottom(&never_pushed));
      CHECK(dq.size_approx() == 6);  // a refusal changes nothing
      CHECK(dq.pop_if_bottom(&items[5]));
      CHECK_FALSE(dq.pop_if_bottom(&items[5]));  // taken already
      CHECK(dq.pop_if_bottom(&items[4]));
      CHECK(dq.steal().item == &items[0]);
      CHECK(dq.pop() == &items[3]);
      CHECK(dq.pop_if_bottom(&items[2]));
      CHECK(dq.size_approx() == 1);
      // The last item, stolen: it is no longer there to take.
      CHECK(dq.steal().item == &items[1]);
      CHECK_FALSE(dq.pop_if_bottom(&items[1]));
      CHECK(dq.size_approx() == 0);
      // The last item, taken by pop_if_bottom: empty and usable after.
      dq.push(&items[0]);
      CHECK(dq.pop_if_bottom(&items[0]));
      CHECK(dq.size_approx() == 0);
      CHECK(dq.pop() == nullptr);
      CHECK(dq.steal().status == Status::empty);
    }
  }
}

// Each item is an index into `seen`; every taker increments the item's
// counter. Nothing lost: every counter ends at 1. Nothing duplicated: none
// ends above 1.
static void race(std::size_t num_items, int thieves, std::size_t initial_capacity, std::uint32_t seed,
                 bool pop_if = false) {
  ChaseLevDeque<std::uint64_t> dq(initial_capacity);
  std::vector<std::uint64_t> ids(num_items);
  for (std::size_t i = 0; i < num_items; ++i) ids[i] = i;
  std::vector<std::atomic<std::uint32_t>> seen(num_items);
  std::atomic<bool> done{false};
  std::atomic<std::size_t> stolen{0};

  std::vector<std::thread> ts;
  for (int t = 0; t < thieves; ++t) {
    ts.emplace_back([&] {
      std::size_t mine = 0;
      for (;;) {
        auto r = dq.steal();
        if (r.status == Status::success) {
          seen[*r.item].fetch_add(1, std::memory_order_relaxed);
          ++mine;
        } else if (r.status == Status::empty && done.load(std::memory_order_acquire)) {
          break;
        }
      }
      stolen.fetch_add(mine);
    });
  }
  // The owner pushes in random bursts and pops some back.
  // With `pop_if`, each burst's last item is taken back first by
  // pop_if_bottom (an inline join of the newest child), unless stolen.
  std::mt19937 rng(seed);
  std::size_t next = 0, popped = 0;
  while (next < num_items) {
    std::size_t burst = 1 + rng() % 64;
    for (std::size_t k = 0; k < burst && next < num_items; ++k) dq.push(&ids[next++]);
    if (pop_if && dq.pop_if_bottom(&ids[next - 1])) {
      seen[next - 1].fetch_add(1, std::memory_order_relaxed);
      ++popped;
    }
    std::size_t pops = rng() % (burst + 1);
    for (std::size_t k = 0; k < pops; ++k) {
      if (std::uint64_t* x = dq.pop()) {
        seen[*x].fetch_add(1, std::memory_order_relaxed);
        ++popped;
      }
    }
  }
  while (std::uint64_t* x = dq.pop()) {
    seen[*x].fetch_add(1, std::memory_order_relaxed);
    ++popped;
  }
  done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();

  std::size_t lost = 0, duplicated = 0;
  for (auto& s : seen) {
    auto v = s.load();
    if (v == 0) ++lost;
    if (v > 1) ++duplicated;
  }
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(popped + stolen.load() == num_items);
}

TEST_CASE("deque: thieves racing the owner lose and duplicate nothing" * doctest::timeout(300)) {
  const std::size_t n = weft_test::scaled(2'000'000);
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    race(n, 3, 1024, seed);
  }
}

TEST_CASE("deque: thieves racing the owner's pop_if_bottom lose and duplicate nothing" * doctest::timeout(300)) {
  const std::size_t n = weft_test::scaled(2'000'000);
  for (std::uint32_t seed = 21; seed <= 24; ++seed) {
    CAPTURE(seed);
    race(n, 3, 1024, seed, true);
  }
}

TEST_CASE("deque: growth while being stolen from" * doctest::timeout(300)) {
  // A tiny initial ring forces many grow() calls with thieves mid-steal.
  for (std::uint32_t seed = 11; seed <= 14; ++seed) {
    CAPTURE(seed);
    race(weft_test::scaled(1'000'000), 3, 2, seed);
  }
}
