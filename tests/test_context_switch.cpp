// The context switch (lib/scheduling/context_switch.hpp) below the scheduler:
// two contexts on one thread, switched back and forth by hand. What each
// context holds across a switch (locals, floating-point values, its own
// rounding mode, its exception state) must come back unchanged, returns up
// a call chain must land where they were called from whatever chain the
// other context switched from, and the handle and record handed over by
// each jump must reach the other side. The jump enters jump_fcontext
// without a call (the return-stack note in context_switch.cpp): these are
// the properties that must not change with it.
#include <doctest/doctest.h>

#include <cfenv>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "scheduling/context_switch.hpp"

using weft::detail::ExecContext;
using weft::detail::adopt_thread_context;
using weft::detail::exit_to;
using weft::detail::make_context;
using weft::detail::switch_context;

namespace {

constexpr std::size_t k_stack = 256 * 1024;

// A thread's context and one fiber's, with the fiber's stack.
struct Pair {
  ExecContext main, fiber;
  std::unique_ptr<unsigned char[]> stack{new unsigned char[k_stack]};
  explicit Pair(void (*entry)(void*), void* arg) {
    adopt_thread_context(main);
    make_context(fiber, stack.get(), k_stack, entry, arg);
  }
  void to_fiber() { switch_context(main, fiber); }
  void to_main() { switch_context(fiber, main); }
};

// The same arithmetic on both sides, so each can check the other's answer.
std::uint64_t mix(std::uint64_t x, std::uint64_t i) { return (x ^ i) * 0x9E3779B97F4A7C15ull + (x >> 29); }

struct Counting {
  Pair* pair = nullptr;
  int rounds = 0;
  std::uint64_t ints = 0;
  double sum = 0;
  bool done = false;
};

void counting_fiber(void* arg) {
  auto* c = static_cast<Counting*>(arg);
  // Locals live across every switch: in callee-saved registers or on this
  // stack, whatever the compiler chose.
  std::uint64_t x = 7, y = 11;
  double d = 0.5, e = 1.25;
  for (int i = 0; i < c->rounds; ++i) {
    x = mix(x, i);
    y = mix(y, x);
    d = d * 1.000001 + 0.25;
    e = e + d / 3.0;
    c->pair->to_main();
  }
  c->ints = x ^ y;
  c->sum = d + e;
  c->done = true;
  exit_to(c->pair->fiber, c->pair->main);
}

// Recurses `depth` calls deep, switches at the bottom, and returns a value
// built on the way back up: a wrong return address would skip a level or
// land elsewhere.
struct Chain {
  Pair* pair = nullptr;
  bool in_fiber = false;
};
int descend(Chain& ch, int depth) {
  if (depth == 0) {
    if (ch.in_fiber) ch.pair->to_main(); else ch.pair->to_fiber();
    return 1;
  }
  const int below = descend(ch, depth - 1);
  // Not a tail call, and the compiler cannot fold the levels together.
  return below * 3 % 1000003 + depth;
}
int expected_descend(int depth) {
  int v = 1;
  for (int d = 1; d <= depth; ++d) v = v * 3 % 1000003 + d;
  return v;
}

struct ChainRun {
  Pair* pair = nullptr;
  int rounds = 0;
  int fiber_depth = 0;
  int wrong = 0;
};

void chain_fiber(void* arg) {
  auto* r = static_cast<ChainRun*>(arg);
  Chain ch{r->pair, true};
  for (int i = 0; i < r->rounds; ++i) {
    // A different depth each round: the other side's chain never matches.
    const int depth = r->fiber_depth + i % 7;
    if (descend(ch, depth) != expected_descend(depth)) ++r->wrong;
  }
  exit_to(r->pair->fiber, r->pair->main);
}

struct Rounding {
  Pair* pair = nullptr;
  int seen_in_fiber = -1;
};

void rounding_fiber(void* arg) {
  auto* r = static_cast<Rounding*>(arg);
  std::fesetround(FE_DOWNWARD);
  r->pair->to_main();
  r->seen_in_fiber = std::fegetround();  // still ours after main ran with another mode
  exit_to(r->pair->fiber, r->pair->main);
}

struct Caught {
  Pair* pair = nullptr;
  std::string message;
};

void caught_fiber(void* arg) {
  auto* c = static_cast<Caught*>(arg);
  try {
    throw std::runtime_error("from the fiber");
  } catch (const std::exception&) {
    c->pair->to_main();  // switch out inside the handler
    try {
      throw;  // the exception being handled is still this context's
    } catch (const std::exception& again) {
      c->message = again.what();
    }
  }
  exit_to(c->pair->fiber, c->pair->main);
}

}  // namespace

TEST_CASE("context switch: locals and floating-point values survive 100,000 switches") {
  Counting c;
  c.rounds = 100'000;
  Pair pair(&counting_fiber, &c);
  c.pair = &pair;
  std::uint64_t x = 7, y = 11;
  double d = 0.5, e = 1.25;
  for (int i = 0; i < c.rounds; ++i) {
    pair.to_fiber();
    // The main side keeps its own copy of the work across the same switches.
    x = mix(x, i);
    y = mix(y, x);
    d = d * 1.000001 + 0.25;
    e = e + d / 3.0;
  }
  pair.to_fiber();  // let it finish
  REQUIRE(c.done);
  CHECK(c.ints == (x ^ y));
  CHECK(c.sum == d + e);
}

TEST_CASE("context switch: returns up chains of different depths land where they were called from") {
  ChainRun r;
  r.rounds = 20'000;
  r.fiber_depth = 3;
  Pair pair(&chain_fiber, &r);
  r.pair = &pair;
  Chain ch{&pair, false};
  int wrong = 0;
  for (int i = 0; i < r.rounds; ++i) {
    const int depth = 9 + i % 5;
    if (descend(ch, depth) != expected_descend(depth)) ++wrong;
  }
  pair.to_fiber();  // its last descent returns, and it exits to us
  CHECK(wrong == 0);
  CHECK(r.wrong == 0);
}

TEST_CASE("context switch: each context keeps its own rounding mode") {
  const int before = std::fegetround();
  std::fesetround(FE_UPWARD);
  Rounding r;
  Pair pair(&rounding_fiber, &r);
  r.pair = &pair;
  pair.to_fiber();  // the fiber sets FE_DOWNWARD and switches back
  CHECK(std::fegetround() == FE_UPWARD);
  std::fesetround(FE_TOWARDZERO);
  pair.to_fiber();
  CHECK(r.seen_in_fiber == FE_DOWNWARD);
  CHECK(std::fegetround() == FE_TOWARDZERO);
  std::fesetround(before);
}

TEST_CASE("context switch: an exception being handled stays with its context") {
  Caught c;
  Pair pair(&caught_fiber, &c);
  c.pair = &pair;
  pair.to_fiber();  // the fiber switches out inside its catch block
  CHECK(std::uncaught_exceptions() == 0);
  bool main_caught = false;
  try {
    throw std::logic_error("from main");
  } catch (const std::logic_error&) {
    main_caught = true;
  }
  CHECK(main_caught);
  pair.to_fiber();
  CHECK(c.message == "from the fiber");
}
