// weft-soak: shared pieces of the soak program (random source, counters, the
// failure path). Each scenario file holds one family of checks; soak_main.cpp
// runs them in seeded rounds and checks the process-wide invariants.
#pragma once

#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "../support.hpp"

namespace weft_soak {

// xoshiro-style generator: small, seedable, the same sequence everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() noexcept {
    s_ += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = s_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
  // Uniform in [lo, hi].
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) noexcept { return lo + below(hi - lo + 1); }
  bool chance(unsigned percent) noexcept { return below(100) < percent; }

 private:
  std::uint64_t s_;
};

// Totals over the whole run, for the closing summary. relaxed everywhere:
// plain statistics, read only after every round has been joined.
struct Stats {
  std::atomic<std::uint64_t> ops{0};            // channel, lock, spawn, timer and blocking operations
  std::atomic<std::uint64_t> accepted{0};       // values a channel accepted (send returned true)
  std::atomic<std::uint64_t> received{0};       // values received
  std::atomic<std::uint64_t> dropped{0};        // values discarded by dropping/sliding buffers
  std::atomic<std::uint64_t> fibers{0};         // fibers spawned
  std::atomic<std::uint64_t> scenarios{0};      // scenario instances checked
  std::atomic<std::uint64_t> progress{0};       // bumped as work completes; the watchdog reads it

  void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept { c.fetch_add(n, std::memory_order_relaxed); }
};

Stats& stats() noexcept;

// The seed of the round in progress (printed by fail() and the watchdog).
std::uint64_t current_seed() noexcept;

// Prints the reproducing seed and the broken invariant, then aborts.
[[noreturn]] void fail(const std::string& what);

#define SOAK_CHECK(cond, msg)                                                       \
  do {                                                                              \
    if (!(cond)) ::weft_soak::fail(std::string(msg) + " [" #cond "] at " __FILE__ ":" + std::to_string(__LINE__)); \
  } while (0)

// Gives the CPU to others from a fiber or a plain thread.
using weft_test::pause;
// How big one scenario is: full size in optimized builds, smaller under the
// sanitizers (meson option stress_scale).
using weft_test::scaled;

// One scenario: runs inside a fiber of `rt`, draws its shape from `rng`,
// checks its own invariants (fail() on any violation) and returns once
// everything it started has finished.
using Scenario = void (*)(weft::Runtime& rt, Rng& rng);

void channel_transfer(weft::Runtime& rt, Rng& rng);   // soak_channels.cpp
void select_fan_in(weft::Runtime& rt, Rng& rng);      // soak_channels.cpp
void mutex_counter(weft::Runtime& rt, Rng& rng);      // soak_sync.cpp
void condvar_queue(weft::Runtime& rt, Rng& rng);      // soak_sync.cpp
void semaphore_bound(weft::Runtime& rt, Rng& rng);    // soak_sync.cpp
void spawn_tree(weft::Runtime& rt, Rng& rng);         // soak_tasks.cpp
void timers_and_blocking(weft::Runtime& rt, Rng& rng);// soak_tasks.cpp
void cancel_transfer(weft::Runtime& rt, Rng& rng);    // soak_cancel.cpp

// Channel values (soak_channels.cpp) constructed and not yet destroyed; 0
// whenever no scenario is running and no channel of one is left.
std::int64_t live_channel_values() noexcept;

}  // namespace weft_soak

namespace weft_soak {

// The parties of one scenario: some run as fibers of the runtime, some as
// plain threads (which block instead of parking). wait_all() joins them all
// from a fiber; plain threads are joined through weft::blocking() so that the
// worker keeps running the fibers they may be waiting for.
class Crew {
 public:
  template <class F>
  void start(bool as_thread, F fn) {
    stats().add(stats().fibers);
    if (as_thread) {
      // The thread may wake parked fibers from outside any weft call (between
      // its calls): say so, or the deadlock detector could rightly give up.
      threads_.emplace_back([waker = weft::ExternalWaker(), fn = std::move(fn)]() mutable { fn(); });
    } else {
      fibers_.push_back(weft::go(std::move(fn)));
    }
  }
  void wait_all() {
    for (auto& f : fibers_) f.join();
    fibers_.clear();
    if (!threads_.empty()) {
      weft::blocking([this] {
        for (auto& t : threads_) t.join();
      });
      threads_.clear();
    }
  }
  ~Crew() {
    if (!fibers_.empty() || !threads_.empty()) fail("a scenario left parties unjoined");
  }

 private:
  std::vector<weft::JoinHandle<void>> fibers_;
  std::vector<std::thread> threads_;
};

}  // namespace weft_soak
