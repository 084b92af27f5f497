// Stack arenas (lib/scheduling/stack_arena.hpp): every stack has a guard page
// below it that faults, trimming gives pages back and keeps the guard, at
// most k_warm_slots trimmed stacks keep a resident page, and stacks add no
// mapping each. Skipped where the kernel lacks MADV_GUARD_INSTALL or the
// fallback is forced (WEFT_STACK_GUARDS=mapped).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "diagnostics/sanitizers.hpp"
#include "scheduling/stack_arena.hpp"

using weft::detail::Stack;
using weft::detail::StackArena;
using weft::detail::StackPool;

namespace {

std::size_t page() { return StackPool::page_size(); }

// True if writing the byte at p kills a child process with SIGSEGV.
bool write_faults(void* p) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGSEGV, SIG_DFL);
    *static_cast<volatile char*>(p) = 1;
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

std::size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

// Whether the page holding p is resident.
bool resident(const void* p) {
  unsigned char v = 0;
  const auto a = reinterpret_cast<std::uintptr_t>(p) & ~(page() - 1);
  REQUIRE(::mincore(reinterpret_cast<void*>(a), page(), &v) == 0);
  return (v & 1) != 0;
}

// Lazily freed memory of this process in KiB (MADV_FREE'd pages not yet
// taken by the kernel or written again): /proc/self/smaps_rollup, LazyFree.
std::size_t lazy_free_kib() {
  std::ifstream rollup("/proc/self/smaps_rollup");
  std::string key;
  std::size_t kib = 0;
  while (rollup >> key) {
    if (key == "LazyFree:") {
      rollup >> kib;
      return kib;
    }
  }
  FAIL("no LazyFree line in /proc/self/smaps_rollup");
  return 0;
}

std::vector<Stack> take(StackArena& arena, std::size_t n) {
  std::vector<Stack> out;
  out.reserve(n);
  arena.acquire(out, n);
  REQUIRE(out.size() == n);
  return out;
}

}  // namespace

// Each case uses a stack size of its own, so that it has an arena of its own.

TEST_CASE("stack arena: every stack is usable to its ends and has a guard page just below" *
          doctest::timeout(60) * doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  StackArena& arena = StackArena::for_size(3 * page());
  const std::vector<Stack> stacks = take(arena, 40);  // more than one chunk
  for (const Stack& s : stacks) {
    CHECK(s.guarded);
    CHECK(s.size == 3 * page());
    std::memset(s.lo, 0x5a, s.size);
  }
  for (const std::size_t i : {std::size_t{0}, std::size_t{17}, std::size_t{39}}) {
    CAPTURE(i);
    CHECK(write_faults(static_cast<char*>(stacks[i].lo) - 1));
    CHECK(!write_faults(stacks[i].lo));
  }
  arena.release(stacks.data(), stacks.size());
}

// Dirties 8 stacks of the arena, trims them with trim(arena), and checks
// that the same stacks come back (nothing else uses the arena's size)
// trimmed to at most their top page, zero below it, still guarded.
template <class Trim>
void check_trimming_gives_pages_back(StackArena& arena, Trim trim) {
  std::vector<Stack> stacks = take(arena, 8);
  for (const Stack& s : stacks) std::memset(s.lo, 0x5a, s.size);
  arena.release(stacks.data(), stacks.size());
  trim(arena);
  const StackArena::Counts c = arena.counts();
  CHECK(c.dirty == 0);
  CHECK(c.warm + c.cold == 8);
  stacks = take(arena, 8);
  for (const Stack& s : stacks) {
    char* top_page = static_cast<char*>(s.lo) + s.size - page();
    CHECK(!resident(s.lo));
    CHECK(!resident(top_page - 1));
    CHECK(static_cast<unsigned char>(*static_cast<volatile char*>(s.lo)) == 0);
    CHECK(*static_cast<volatile char*>(top_page - 1) == 0);
    CHECK(write_faults(static_cast<char*>(s.lo) - 1));
  }
  arena.release(stacks.data(), stacks.size());
}

// trim_all() gives a whole batch back in one process_madvise call where
// the kernel has it.
TEST_CASE("stack arena: trimming gives the pages back and keeps the guard" * doctest::timeout(60) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  check_trimming_gives_pages_back(StackArena::for_size(5 * page()), [](StackArena& a) { a.trim_all(); });
}

// trim() (an idle worker's few at a time) makes one madvise call per range.
TEST_CASE("stack arena: trimming a few at a time gives the pages back too" * doctest::timeout(60) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  check_trimming_gives_pages_back(StackArena::for_size(6 * page()), [](StackArena& a) {
    while (a.trim(3)) {
    }
  });
}

// The arena hands free stacks out in address order, whatever order they
// came back in, so that a burst's fibers fault and walk their page tables
// in order (docs/benchmarks.md, "stacks handed out in address order"):
// released in a scrambled order and trimmed, they come back from acquire()
// highest slot first, the k_warm_slots warm ones (the lowest: trims take
// the lowest first) before the cold ones; a slot's number follows its
// address within a chunk. Touches no page, so it runs under the sanitizers
// too.
TEST_CASE("stack arena: free stacks come back in slot order, whatever order they were released in" *
          doctest::timeout(60) * doctest::skip(!weft::detail::stack_arenas_enabled())) {
  StackArena& arena = StackArena::for_size(11 * page());  // an arena of this case's own
  const std::size_t slot_bytes = 12 * page();
  constexpr std::size_t n = StackArena::k_warm_slots + 300;
  std::vector<Stack> stacks = take(arena, n);
  // A fixed scramble: every 7th, starting at each offset in turn.
  std::vector<Stack> scrambled;
  for (std::size_t start = 0; start < 7; ++start) {
    for (std::size_t i = start; i < n; i += 7) scrambled.push_back(stacks[i]);
  }
  REQUIRE(scrambled.size() == n);
  arena.release(scrambled.data(), scrambled.size());
  arena.trim_all();
  const StackArena::Counts c = arena.counts();
  CHECK(c.dirty == 0);
  CHECK(c.warm == StackArena::k_warm_slots);
  CHECK(c.cold == 300);
  stacks = take(arena, n);
  std::vector<std::size_t> rises;  // where a slot number is above the one before
  std::size_t apart = 0;           // consecutive stacks not one slot apart in memory
  for (std::size_t i = 1; i < n; ++i) {
    if (stacks[i].slot > stacks[i - 1].slot) rises.push_back(i);
    if (static_cast<char*>(stacks[i].lo) + slot_bytes != stacks[i - 1].lo) ++apart;
  }
  CHECK(rises == std::vector<std::size_t>{StackArena::k_warm_slots});  // from the warm ones to the cold
  CHECK(apart <= c.chunks + 1);  // only between chunks, and from the warm ones to the cold
  // Released again in the order taken, then a scramble of a part of them:
  // dirty ones come back highest slot first too.
  arena.release(stacks.data(), stacks.size());
  std::vector<Stack> some = take(arena, 700);
  for (std::size_t i = 1; i < some.size(); ++i) CHECK(some[i].slot < some[i - 1].slot);
  std::vector<Stack> mixed;
  for (std::size_t i = 0; i < some.size(); i += 2) mixed.push_back(some[i]);
  for (std::size_t i = 1; i < some.size(); i += 2) mixed.push_back(some[i]);
  arena.release(mixed.data(), mixed.size());
  const std::vector<Stack> again = take(arena, 700);
  for (std::size_t i = 0; i < again.size(); ++i) CHECK(again[i].slot == some[i].slot);
  arena.release(again.data(), again.size());
  arena.trim_all();
}

TEST_CASE("stack arena: trimmed stacks keep at most k_warm_slots resident pages" * doctest::timeout(120) *
          doctest::skip(!weft::detail::stack_arenas_enabled())) {
  StackArena& arena = StackArena::for_size(2 * page());
  const std::size_t n = StackArena::k_warm_slots + 1000;
  const std::vector<Stack> stacks = take(arena, n);
  arena.release(stacks.data(), stacks.size());
  arena.trim_all();
  const StackArena::Counts c = arena.counts();
  CHECK(c.dirty == 0);
  CHECK(c.warm == StackArena::k_warm_slots);
  CHECK(c.cold == 1000);
  CHECK(c.carved == n);
}

TEST_CASE("stack arena: 20,000 stacks add a few mappings, not one per stack" * doctest::timeout(120) *
          doctest::skip(!weft::detail::stack_arenas_enabled())) {
  StackArena& arena = StackArena::for_size(16 * page());
  const std::size_t before = mapping_count();
  const std::vector<Stack> stacks = take(arena, 20'000);
  CHECK(mapping_count() < before + 100);
  arena.release(stacks.data(), stacks.size());
}

namespace {

// Runs `fibers` fibers on `rt` that all hold a stack at once, then lets them
// all end. Fiber i runs body(i, park); park() returns once every fiber has
// started, so whatever body keeps on its stack across park() is there while
// all the other stacks are in use.
template <class Body>
void hold_stacks_then_end(weft::Runtime& rt, std::size_t fibers, Body body) {
  rt.block_on([&] {
    weft::Channel<int> go_on;
    weft::WaitGroup started, wg;
    started.add(static_cast<std::int64_t>(fibers));
    wg.add(static_cast<std::int64_t>(fibers));
    for (std::size_t i = 0; i < fibers; ++i) {
      weft::go([&, i] {
        body(i, [&] {
          started.done();
          (void)go_on.recv();
        });
        wg.done();
      }).detach();
    }
    started.wait();  // all of them hold a stack at once
    for (std::size_t i = 0; i < fibers; ++i) go_on.send(1);
    wg.wait();
  });
}

// hold_stacks_then_end() with fibers that each touch a few pages below
// their top one.
void hold_deep_stacks_then_end(weft::Runtime& rt, std::size_t fibers) {
  hold_stacks_then_end(rt, fibers, [](std::size_t, const auto& park) {
    volatile char deep[3 * 4096];  // resident pages below the top one
    std::memset(const_cast<char*>(deep), 1, sizeof deep);
    park();
  });
}

}  // namespace

// Through the public API: a runtime's shutdown leaves no stack dirty (idle
// workers stop trimming once shutdown begins; the stack pools' destructors
// trim the rest), and the pages the fibers used below their top page are
// given back.
TEST_CASE("stack arena: after a runtime's shutdown every stack it used is trimmed" * doctest::timeout(120) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  constexpr std::size_t stack_pages = 7;  // an arena of this case's own
  constexpr std::size_t fibers = 300;     // beyond the workers' caches of 64 stacks
  {
    weft::Runtime rt({.workers = 2, .stack_size = stack_pages * page()});
    hold_deep_stacks_then_end(rt, fibers);
  }
  StackArena& arena = StackArena::for_size(stack_pages * page());
  const StackArena::Counts c = arena.counts();
  CHECK(c.carved >= fibers);
  CHECK(c.dirty == 0);
  CHECK(c.warm + c.cold == c.carved);
  const std::vector<Stack> stacks = take(arena, c.carved);
  for (const Stack& s : stacks) {
    char* top_page = static_cast<char*>(s.lo) + s.size - page();
    CHECK(!resident(top_page - 1));
    CHECK(!resident(top_page - 2 * page()));
  }
  arena.release(stacks.data(), stacks.size());
}

// An idle runtime gives its stacks back by itself: once its workers have
// slept a few milliseconds unwoken, they trim the dirty stacks (not at
// once: a worker idle only between two bursts keeps them, worker.hpp).
TEST_CASE("stack arena: a runtime's idle workers trim the stacks its fibers left" * doctest::timeout(120) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  constexpr std::size_t stack_pages = 13;  // an arena of this case's own
  constexpr std::size_t fibers = 300;     // beyond the workers' caches of 64 stacks
  StackArena& arena = StackArena::for_size(stack_pages * page());
  weft::Runtime rt({.workers = 2, .stack_size = stack_pages * page()});
  hold_deep_stacks_then_end(rt, fibers);
  // The runtime lives on, idle. Its workers' caches keep up to 64 stacks
  // each; the rest went to the arena dirty, and must come back trimmed.
  CHECK(arena.counts().carved >= fibers);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (arena.counts().dirty != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const StackArena::Counts c = arena.counts();
  CHECK(c.dirty == 0);
  CHECK(c.warm + c.cold > 0);
}

// acquire() touches no page of a stack: a carved one (or a cold one: the
// same path) has nothing resident until its fiber runs on it, so taking
// stacks never faults in the caller (no prefaulting that would hold the
// memory map's lock: stack_arena.cpp). A warm stack keeps its top page as
// trimming left it, and only that page.
TEST_CASE("stack arena: a new stack has no page resident until it is used; a warm one keeps its top page" *
          doctest::timeout(60) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  StackArena& arena = StackArena::for_size(9 * page());
  std::vector<Stack> stacks = take(arena, 20);  // carved
  for (const Stack& s : stacks) {
    char* top_page = static_cast<char*>(s.lo) + s.size - page();
    CHECK(!resident(top_page));
    CHECK(!resident(s.lo));
    CHECK(*static_cast<volatile char*>(top_page + page() - 1) == 0);  // zero-filled on first touch
    CHECK(resident(top_page));
    CHECK(!resident(top_page - 1));  // that page only
  }
  // Used, trimmed (warm: this arena has far fewer than k_warm_slots), taken
  // back: the top page is still there, the one below it is not.
  for (const Stack& s : stacks) std::memset(static_cast<char*>(s.lo) + s.size - 2 * page(), 0x5a, 2 * page());
  arena.release(stacks.data(), stacks.size());
  arena.trim_all();
  CHECK(arena.counts().warm == 20);
  stacks = take(arena, 20);
  for (const Stack& s : stacks) {
    char* top_page = static_cast<char*>(s.lo) + s.size - page();
    CHECK(resident(top_page));
    CHECK(!resident(top_page - 1));
  }
  arena.release(stacks.data(), stacks.size());
}

namespace {

// Takes k_warm_slots + `cold` stacks from `arena`, writes their two top
// pages, releases them and trims them all as a shutdown does, with
// WEFT_STACK_TRIM=eager set if `eager`. Returns the stacks, highest slot
// first, and how much LazyFree grew (KiB).
std::pair<std::vector<Stack>, std::size_t> shutdown_trim(StackArena& arena, std::size_t cold, bool eager) {
  std::vector<Stack> stacks = take(arena, StackArena::k_warm_slots + cold);
  for (const Stack& s : stacks) std::memset(static_cast<char*>(s.lo) + s.size - 2 * page(), 0x5a, 2 * page());
  arena.release(stacks.data(), stacks.size());
  const std::size_t lazy_before = lazy_free_kib();
  if (eager) ::setenv("WEFT_STACK_TRIM", "eager", 1);
  arena.trim_all();
  if (eager) ::unsetenv("WEFT_STACK_TRIM");
  const std::size_t lazy_after = lazy_free_kib();
  std::sort(stacks.begin(), stacks.end(), [](const Stack& a, const Stack& b) { return a.slot > b.slot; });
  return {stacks, lazy_after > lazy_before ? lazy_after - lazy_before : 0};
}

}  // namespace

// A shutdown's trim (trim_all()) keeps the top page of k_warm_slots stacks
// (the lowest slots) and gives the rest of their pages back at once; the
// stacks it leaves cold it frees lazily (MADV_FREE): what their fibers
// wrote stays mapped and resident until the kernel needs the memory,
// counted as LazyFree. With WEFT_STACK_TRIM=eager they go back at once
// too. (Assumes the kernel does not reclaim memory during the case: a
// machine with memory to spare. LazyFree is checked at half the expected
// size: the kernel files lazily freed pages in per-CPU batches.)
TEST_CASE("stack arena: a shutdown frees the stacks it leaves cold lazily, or at once with WEFT_STACK_TRIM=eager" *
          doctest::timeout(120) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  StackArena& arena = StackArena::for_size(4 * page());  // an arena of this case's own
  constexpr std::size_t cold = 600;
  const std::size_t page_kib = page() / 1024;
  for (const bool eager : {false, true}) {
    CAPTURE(eager);
    const auto [stacks, lazy_grew] = shutdown_trim(arena, cold, eager);
    const StackArena::Counts c = arena.counts();
    CHECK(c.dirty == 0);
    CHECK(c.warm == StackArena::k_warm_slots);
    CHECK(c.cold == cold);
    std::size_t tops_resident = 0, lower_resident = 0, bottoms_resident = 0;
    for (std::size_t i = 0; i < cold; ++i) {  // the highest slots: the cold ones
      const char* top_page = static_cast<const char*>(stacks[i].lo) + stacks[i].size - page();
      tops_resident += resident(top_page) ? 1 : 0;
      lower_resident += resident(top_page - 1) ? 1 : 0;
      bottoms_resident += resident(stacks[i].lo) ? 1 : 0;
    }
    CHECK(bottoms_resident == 0);  // never written
    if (eager) {
      CHECK(tops_resident == 0);
      CHECK(lower_resident == 0);
      CHECK(lazy_grew < cold * page_kib);
    } else {  // both written pages still there, lazily freed
      CHECK(tops_resident == cold);
      CHECK(lower_resident == cold);
      CHECK(lazy_grew >= cold * page_kib);  // half of two pages a stack
    }
    // The guards stay, whichever way the pages went.
    CHECK(write_faults(static_cast<char*>(stacks[0].lo) - 1));
    CHECK(write_faults(static_cast<char*>(stacks[cold / 2].lo) - 1));
    std::size_t warm_tops = 0, warm_lower = 0;
    for (std::size_t i = cold; i < stacks.size(); ++i) {
      const char* top_page = static_cast<const char*>(stacks[i].lo) + stacks[i].size - page();
      warm_tops += resident(top_page) ? 1 : 0;
      warm_lower += resident(top_page - 1) ? 1 : 0;
    }
    CHECK(warm_tops == StackArena::k_warm_slots);
    CHECK(warm_lower == 0);
  }
}

// Through the public API: a runtime that ran more fibers at once than
// k_warm_slots leaves the rest of their stacks cold and lazily freed at its
// shutdown, and a runtime started after it runs its fibers on those stacks
// (whatever the pages hold: old contents, or zeros if the kernel took
// them), each keeping what it wrote on its stack across a park.
TEST_CASE("stack arena: a runtime started after a shutdown runs its fibers on the stacks it freed lazily" *
          doctest::timeout(120) *
          doctest::skip(!weft::detail::stack_arenas_enabled() || WEFT_ASAN || WEFT_TSAN)) {
  constexpr std::size_t stack_pages = 5;  // an arena of this case's own
  constexpr std::size_t words = 600;      // a page and a bit below the top of the stack
  const std::size_t fibers = StackArena::k_warm_slots + 2000;
  StackArena& arena = StackArena::for_size(stack_pages * page());
  // Runs `fibers` fibers at once in a new runtime, each filling `words`
  // words of its stack from `seed` and summing them after a park; returns
  // the sum of the sums once the runtime has shut down.
  const auto round = [&](std::uint64_t seed) {
    std::atomic<std::uint64_t> sum{0};
    weft::Runtime rt({.workers = 2, .stack_size = stack_pages * page()});
    hold_stacks_then_end(rt, fibers, [&](std::size_t i, const auto& park) {
      volatile std::uint64_t local[words];
      for (std::size_t k = 0; k < words; ++k) local[k] = seed + i + k;
      park();  // with every other fiber's stack in use
      std::uint64_t s = 0;
      for (std::size_t k = 0; k < words; ++k) s += local[k];
      sum.fetch_add(s, std::memory_order_relaxed);  // relaxed: read after the runtime's block_on returned
    });
    return sum.load(std::memory_order_relaxed);  // relaxed: block_on returned after every fiber ended
  };
  const auto expected = [&](std::uint64_t seed) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < fibers; ++i) {
      for (std::size_t k = 0; k < words; ++k) total += seed + i + k;
    }
    return total;
  };
  const std::size_t lazy_before = lazy_free_kib();
  CHECK(round(1) == expected(1));
  const StackArena::Counts c = arena.counts();
  CHECK(c.dirty == 0);
  CHECK(c.warm == StackArena::k_warm_slots);
  CHECK(c.cold + c.warm == c.carved);
  CHECK(c.cold >= 2000);
  const std::size_t lazy_after = lazy_free_kib();
  CHECK(lazy_after >= lazy_before + c.cold * (page() / 1024) / 2);
  CHECK(round(2) == expected(2));  // on the warm stacks, then the lazily freed ones
  // The same stacks again: new slots only for what the two workers' caches
  // (64 stacks each) may hold beyond the first round's peak.
  CHECK(arena.counts().carved <= c.carved + 2 * 64);
}
