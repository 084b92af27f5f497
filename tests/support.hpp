// Helpers shared by the test programs.
#pragma once

#include <sys/resource.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#ifndef WEFT_STRESS_SCALE
#define WEFT_STRESS_SCALE 100
#endif

namespace weft_test {

// Stress sizes shrink in sanitizer builds (meson option stress_scale, percent).
constexpr std::size_t scaled(std::size_t full) {
  std::size_t n = full * WEFT_STRESS_SCALE / 100;
  return n == 0 ? 1 : n;
}

// Spins without yielding (a CPU loop with no maybe_yield) until `flag` is
// set or `limit` has passed; true if the flag was set.
inline bool spin_for_flag(const std::atomic<bool>& flag, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > until) return false;
  }
  return true;
}

// Gives way once: yields the fiber inside a fiber, the thread otherwise.
inline void pause() {
  if (weft::this_fiber::in_fiber()) {
    weft::this_fiber::yield();
  } else {
    std::this_thread::yield();
  }
}

// Counts its own destruction: shows that a cancelled fiber's stack unwound.
struct CountsDestruction {
  std::atomic<int>* counter;
  ~CountsDestruction() { counter->fetch_add(1); }
};

// Worker counts every concurrency case runs with.
inline constexpr std::size_t k_worker_counts[] = {1, 2, 4};

// CPU time (user + system) the whole process has used so far.
inline std::chrono::microseconds process_cpu_time() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) { return std::chrono::microseconds(tv.tv_sec * 1'000'000LL + tv.tv_usec); };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

// The /proc/self/task entries of this process's worker threads: those
// whose name starts with "weft-w" (the workers name themselves before
// they report ready).
inline std::vector<std::filesystem::path> worker_thread_dirs() {
  std::vector<std::filesystem::path> dirs;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name.rfind("weft-w", 0) == 0) dirs.push_back(entry.path());
  }
  return dirs;
}

// About `units` microseconds of integer hashing the optimizer cannot drop.
inline unsigned long long burn(unsigned long long seed, int units) {
  unsigned long long h = seed | 1;
  for (int u = 0; u < units; ++u) {
    for (int i = 0; i < 300; ++i) h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull + i;
  }
  return h;
}

}  // namespace weft_test
