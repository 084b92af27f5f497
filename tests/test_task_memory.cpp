// Task memory (lib/scheduling/task_memory.cpp, task_depot.cpp): the
// per-thread caches and the shared depot of spans that tasks are carved
// from. Two bugs found by review, each with its regression test:
//  - a thread's cache, handed to the shared depot by its thread-local
//    destructor, stayed usable: a task spawned or freed later on that thread
//    (by another thread_local's destructor, at thread exit) took or linked a
//    block the depot had already given to another thread, so two live tasks
//    shared one block;
//  - the class-scope operator new hid the aligned form, so a task whose
//    closure is over-aligned got 16-byte-aligned memory.
// The AddressSanitizer build bypasses the caches (ASan must see every
// block), so the first case bites in the optimized and ThreadSanitizer
// builds; there it is also caught by the per-block ownership marks that
// builds with assertions keep. The order test at the end is the third.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "diagnostics/sanitizers.hpp"
#include "scheduling/task_depot.hpp"
#include "support.hpp"

namespace {

// Whether every word of a closure holds the same id (the closures below
// carry theirs in every word: a task whose block was reused under it sees
// another id in some of them).
template <std::size_t Words>
bool words_agree(const std::array<std::uint64_t, Words>& words) {
  for (std::uint64_t w : words) {
    if (w != words[0]) return false;
  }
  return true;
}

// Every task of the thread-exit test has this closure, so that all of them
// come from one size class. The closure carries its id in every word and the
// task checks them: a task whose block was reused under it sees another id.
struct Stamped {
  std::array<std::uint64_t, 6> words;
  std::uint64_t operator()() const { return words_agree(words) ? words[0] : ~std::uint64_t{0}; }
};

Stamped stamp(std::uint64_t id) {
  Stamped s;
  s.words.fill(id);
  return s;
}

// Spawns `n` stamped tasks with ids from `first` and keeps their handles, so
// their blocks stay allocated until join_all().
struct Batch {
  std::vector<weft::JoinHandle<std::uint64_t>> handles;
  std::uint64_t first = 0;

  void spawn(weft::Runtime& rt, std::uint64_t from, std::size_t n) {
    first = from;
    for (std::size_t i = 0; i < n; ++i) handles.push_back(rt.spawn(stamp(from + i)));
  }
  std::size_t wrong() {
    std::size_t bad = 0;
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (handles[i].join() != first + i) ++bad;
    }
    handles.clear();
    return bad;
  }
};

std::atomic<int> g_phase{0};  // thread-exit test: 1 = the cache died, 2 = the depot was drained
std::atomic<std::size_t> g_late_wrong{0};

// Constructed before the thread's task cache (its constructor runs before
// the thread's first spawn), so destroyed after it: its destructor spawns on
// a thread whose cache is gone.
struct LateSpawner {
  weft::Runtime* rt = nullptr;
  ~LateSpawner() {
    if (rt == nullptr) return;
    g_phase.store(1);
    while (g_phase.load() != 2) std::this_thread::yield();
    Batch late;
    late.spawn(*rt, 1'000'000, 200);
    g_late_wrong.store(late.wrong());
  }
};

thread_local LateSpawner t_late;

struct alignas(128) Wide {
  unsigned char bytes[128] = {};
};

bool aligned_128(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 128 == 0; }

}  // namespace

// A task with a closure of one or two references fits two cache lines (the
// 128-byte class of task memory): the closure starts in TaskBase's tail
// padding (docs/benchmarks.md, "a task in two cache lines"). A field added
// to TaskBase that breaks this fails here, at compile time.
TEST_CASE("task memory: a closure of two references fits a task in 128 bytes") {
  int a = 0, b = 0;
  auto two = [&a, &b] { a += b; };
  auto one = [&a] { ++a; };
  static_assert(sizeof(weft::detail::Task<decltype(two), void>) <= 128);
  static_assert(sizeof(weft::detail::Task<decltype(one), void>) <= 128);
  static_assert(sizeof(weft::detail::Task<decltype(one), int>) <= 128);
  // And the tasks run: each closure once, its captures alive until then.
  weft::Runtime rt({.workers = 1});
  rt.block_on([&] {
    b = 2;
    weft::go(two).join();
    weft::go(one).join();
  });
  CHECK(a == 3);
}

TEST_CASE("task memory: spawning and freeing after the thread's cache was destroyed takes no shared block" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  std::thread exiting([&] {
    t_late.rt = &rt;  // constructs t_late first: it outlives the task cache
    // Fill this thread's cache: joined tasks are freed here, by the joiner.
    for (int round = 0; round < 4; ++round) {
      Batch b;
      b.spawn(rt, 0, 100);
      CHECK(b.wrong() == 0);
    }
  });
  // The exiting thread's cache went to the depot; take it from there, on a
  // fresh thread whose own cache starts empty, and keep the blocks in use.
  while (g_phase.load() != 1) std::this_thread::yield();
  Batch taker;
  std::thread drain([&] { taker.spawn(rt, 2'000'000, 400); });
  drain.join();
  g_phase.store(2);
  exiting.join();
  CHECK(g_late_wrong.load() == 0);
  CHECK(taker.wrong() == 0);
}

TEST_CASE("task memory: over-aligned closures get their alignment" * doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    auto closure_aligned = [] {
      Wide w;
      return [w] { return aligned_128(&w); };  // the capture lives in the task's block
    };
    std::vector<weft::JoinHandle<bool>> from_thread;
    for (int i = 0; i < 64; ++i) from_thread.push_back(rt.spawn(closure_aligned()));
    for (auto& h : from_thread) CHECK(h.join());
    rt.block_on([&] {
      std::vector<weft::JoinHandle<bool>> from_fiber;
      for (int i = 0; i < 64; ++i) from_fiber.push_back(weft::go(closure_aligned()));
      for (auto& h : from_fiber) CHECK(h.join());
    });
  }
}

// The depot keeps a burst's blocks while the process is busy (the next burst
// takes them instead of calling ::operator new) and gives back what it holds
// beyond its resting size once a worker has idled a while, or when the
// runtime ends.
namespace {

// On one worker every task is allocated before any runs (the spawner does
// not park until wait()), so all of them are freed afterwards: more than
// the 64 Ki blocks the depot keeps at rest. True if the depot held a
// surplus right after (this fiber still runs, so nobody trims meanwhile).
bool burst_leaves_surplus(weft::Runtime& rt, std::size_t n) {
  std::atomic<std::size_t> ran{0};
  const bool surplus = rt.block_on([&] {
    weft::WaitGroup wg;
    wg.add(static_cast<std::int64_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      weft::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      }).detach();
    }
    wg.wait();
    return weft::detail::task_depot_has_surplus();
  });
  CHECK(ran.load() == n);
  return surplus;
}

// Waits until the depot holds no surplus (an idle worker trims it a few
// spans a pass once they have rested); allows plenty on a loaded machine.
bool surplus_trimmed() {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (weft::detail::task_depot_has_surplus() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return !weft::detail::task_depot_has_surplus();
}

}  // namespace

// An idle worker gives back only spans that have sat full for
// k_task_span_rest_ns (1 s): a burst that comes after a shorter idle gap
// finds the last burst's spans, instead of taking every page fault again
// (docs/benchmarks.md, "spans that rest before they go": 71 against 30 ns
// a task after 50 ms gaps when the trim gave them back after 5 ms).
TEST_CASE("task memory: the depot keeps a burst's blocks while busy and through a short idle gap, and trims them at rest" *
          doctest::timeout(120)) {
  if (WEFT_ASAN) {
    MESSAGE("AddressSanitizer build: tasks use ::operator new, the depot stays empty");
    return;
  }
  REQUIRE_FALSE(weft::detail::task_depot_has_surplus());
  {
    weft::Runtime rt({.workers = 1});
    CHECK(burst_leaves_surplus(rt, 150'000));
    // 100 ms: twenty times the idle time after which the worker gets up to trim.
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const bool kept = weft::detail::task_depot_has_surplus();
    if (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(800)) {
      CHECK(kept);
    } else {
      MESSAGE("the sleep overran the rest; the check is skipped");
    }
    // The next burst runs on them and leaves the surplus again; at rest the
    // idle worker trims once the spans have rested.
    CHECK(burst_leaves_surplus(rt, 150'000));
    CHECK(surplus_trimmed());
  }
  {
    // A runtime that ends right after its burst trims as it shuts down.
    weft::Runtime rt({.workers = 1});
    CHECK(burst_leaves_surplus(rt, 150'000));
  }
  CHECK_FALSE(weft::detail::task_depot_has_surplus());
}

// A burst of spawns takes its tasks' blocks in address order, however the
// bursts before it ended (task_depot.cpp, "Why a bitmap"). On one worker
// every task of a burst is allocated before any runs, and the worker's FIFO
// turn (every 31st pick) ends them out of order; when the depot kept the
// blocks as chains in the order they were freed, that order came back as
// the next burst's allocation order and drifted further at every burst:
// the share of consecutive tasks in neighbouring blocks fell from 1.0 to
// 0.48 over 12 bursts of 100,000 (and a task's cost 4x, in docs/benchmarks.md).
TEST_CASE("task memory: a burst's tasks lie in address order however the bursts before it ended" *
          doctest::timeout(120)) {
  if (WEFT_ASAN) {
    MESSAGE("AddressSanitizer build: tasks use ::operator new, whose layout is its own");
    return;
  }
  constexpr std::size_t n = 100'000;
  constexpr std::size_t bursts = 12;
  weft::Runtime rt({.workers = 1});
  std::vector<std::uintptr_t> at(n);  // where task i's closure lies: in its block
  rt.block_on([&] {
    for (std::size_t burst = 0; burst < bursts; ++burst) {
      weft::WaitGroup wg;
      wg.add(static_cast<std::int64_t>(n));
      for (std::size_t i = 0; i < n; ++i) {
        weft::go([&at, &wg, i] {
          at[i] = reinterpret_cast<std::uintptr_t>(&i);
          wg.done();
        }).detach();
      }
      wg.wait();
      // Neighbours: task i + 1 lies just above task i (a block of at most
      // 512 bytes further on); a span boundary or a reused block breaks it.
      std::size_t near = 0;
      for (std::size_t i = 1; i < n; ++i) {
        if (at[i] > at[i - 1] && at[i] - at[i - 1] <= 512) ++near;
      }
      CAPTURE(burst);
      CHECK(static_cast<double>(near) / static_cast<double>(n - 1) > 0.9);
    }
  });
}

// When no memory can be mapped for a new region of spans, the spawn that
// needed it throws std::bad_alloc and nothing else goes wrong: every spawn
// that returned a handle runs once with its own closure, and spawning works
// again once memory can be mapped. (The seam fails the region's mmap: a
// process-wide limit on address space fails the fiber stacks' mappings
// first, which end the process by design.)
namespace {

// A closure of 384 bytes: its tasks come from one of the two largest
// classes (at most 145 blocks to a span), so the spare spans run out after
// tens of thousands of tasks.
struct Wide384 {
  std::array<std::uint64_t, 48> words{};
  std::uint64_t operator()() const { return words[0] + words[47]; }
};

}  // namespace

TEST_CASE("task memory: a spawn that cannot map a new region of spans throws bad_alloc; the rest run" *
          doctest::timeout(120)) {
  if (WEFT_ASAN) {
    MESSAGE("AddressSanitizer build: tasks use ::operator new");
    return;
  }
  static_assert(sizeof(weft::detail::Task<Wide384, std::uint64_t>) <= 512);
  static_assert(sizeof(weft::detail::Task<Wide384, std::uint64_t>) > 384);
  weft::Runtime rt({.workers = 2});
  constexpr std::size_t k_most = 400'000;  // far more than the spare spans and a region hold
  std::vector<weft::JoinHandle<std::uint64_t>> held;  // keeps every block in use
  held.reserve(k_most);
  weft::detail::testing::failing_task_regions.store(1);
  std::size_t refused = 0;
  for (std::size_t i = 0; i < k_most && refused == 0; ++i) {
    Wide384 w;
    w.words[0] = i;
    try {
      held.push_back(rt.spawn(w));
    } catch (const std::bad_alloc&) {
      ++refused;
    }
  }
  const int left = weft::detail::testing::failing_task_regions.exchange(0);
  CHECK(refused == 1);
  CHECK(left == 0);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (held[i].join() != i) ++wrong;
  }
  CHECK(wrong == 0);
  Wide384 again;
  again.words[47] = 7;
  CHECK(rt.spawn(again).join() == 7);
}

// The depot sets the bits of a run of neighbouring blocks a word at a time,
// with a stride pattern per size class (task_depot.cpp, give()). Blocks of
// every class are freed in runs going up, going down, and broken up, and
// taken again while the earlier ones are still in use: every task must run
// once with its own closure in every order (two live tasks in one block
// would overwrite one closure with the other's).
namespace {

std::vector<std::atomic<int>>* g_runs = nullptr;  // per task id: how often a task with that id ran
std::atomic<std::size_t> g_torn{0};               // closures whose words disagree

template <std::size_t Words>
struct Counted {
  std::array<std::uint64_t, Words> words;
  void operator()() const {
    if (!words_agree(words)) {
      g_torn.fetch_add(1);
      return;
    }
    (*g_runs)[words[0]].fetch_add(1);
  }
};

template <std::size_t Words>
constexpr std::size_t class_of_counted = weft::detail::task_class_of(sizeof(weft::detail::Task<Counted<Words>, void>));

// Spawns order.size() tasks of one class, then joins them (this thread
// frees each at its join) in `order`.
template <std::size_t Words>
void spawn_and_join(weft::Runtime& rt, const std::vector<std::size_t>& order) {
  std::vector<weft::JoinHandle<void>> handles;
  handles.reserve(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    Counted<Words> c;
    c.words.fill(i);
    handles.push_back(rt.spawn(c));
  }
  for (std::size_t i : order) handles[i].join();
}

template <std::size_t Words>
void every_free_order(weft::Runtime& rt) {
  constexpr std::size_t n = 3000;
  std::vector<std::size_t> up(n), down(n), broken(n);
  for (std::size_t i = 0; i < n; ++i) up[i] = i, down[i] = n - 1 - i;
  // Runs of 1 to 9 going up and down by turns.
  std::size_t at = 0;
  for (std::size_t start = 0, len = 1; start < n; start += len, len = len % 9 + 1) {
    const std::size_t end = std::min(n, start + len);
    for (std::size_t j = 0; j < end - start; ++j) broken[at++] = (len % 2 == 0) ? end - 1 - j : start + j;
  }
  std::vector<std::atomic<int>> runs(n);
  g_runs = &runs;
  for (int round = 0; round < 3; ++round) {
    for (const auto* order : {&up, &down, &broken}) {
      for (auto& r : runs) r.store(0);
      spawn_and_join<Words>(rt, *order);
      std::size_t wrong = 0;
      for (auto& r : runs) wrong += r.load() != 1;
      CAPTURE(Words);
      CAPTURE(round);
      CHECK(wrong == 0);
      CHECK(g_torn.load() == 0);
    }
  }
  g_runs = nullptr;
}

}  // namespace

TEST_CASE("task memory: blocks of every class freed in runs up, down and broken come back once each" *
          doctest::timeout(120)) {
  // Every size class but the first (a task's own fields take more than 64
  // bytes), whatever TaskBase's size: the closures below reach each.
  static_assert(class_of_counted<1> == 1);
  static_assert(class_of_counted<9> == 2);
  static_assert(class_of_counted<17> == 3);
  static_assert(class_of_counted<25> == 4);
  static_assert(class_of_counted<33> == 5);
  static_assert(class_of_counted<41> == 6);
  static_assert(class_of_counted<49> == 7);
  weft::Runtime rt({.workers = 2});
  every_free_order<1>(rt);
  every_free_order<9>(rt);
  every_free_order<17>(rt);
  every_free_order<25>(rt);
  every_free_order<33>(rt);
  every_free_order<41>(rt);
  every_free_order<49>(rt);
}
