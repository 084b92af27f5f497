// Workloads "imbalance" and "parsum" (BENCHMARKS.md), and "parsum_reduce"
// (parsum through weft::parallel_reduce): CPU-bound work split into fibers,
// against the same work in one plain loop.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

// A cheap integer hash (splitmix64's finaliser).
inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One "unit" of imbalance work, about 1 ms on the machine the suite was
// calibrated on: a fixed number of dependent hashes.
constexpr std::uint64_t k_unit_hashes = 400'000;

std::uint64_t units(std::uint64_t seed, std::uint64_t count, std::uint64_t hashes_per_unit) {
  std::uint64_t h = seed;
  for (std::uint64_t i = 0; i < count * hashes_per_unit; ++i) h = mix(h + i);
  return h;
}

std::uint64_t imbalance_units(std::size_t i) { return i % 8 == 0 ? 64 : 1; }

std::uint64_t parsum_serial(std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t s = 0;
  for (std::uint64_t i = lo; i < hi; ++i) s += mix(i);
  return s;
}

std::uint64_t parsum_fibers(std::uint64_t lo, std::uint64_t hi, std::uint64_t leaf) {
  if (hi - lo <= leaf) return parsum_serial(lo, hi);
  const std::uint64_t mid = lo + (hi - lo) / 2;
  auto left = weft::go([=] { return parsum_fibers(lo, mid, leaf); });
  const std::uint64_t right = parsum_fibers(mid, hi, leaf);
  return left.join() + right;
}

}  // namespace

void imbalance_workload(const Settings& s, Reporter& out) {
  const std::size_t fibers = 64;
  const std::uint64_t per_unit = s.quick ? k_unit_hashes / 10 : k_unit_hashes;
  std::uint64_t expect = 0;
  const double serial = median_of(s.repeat, [&] {
    const auto t0 = Clock::now();
    std::uint64_t x = 0;
    for (std::size_t i = 0; i < fibers; ++i) x ^= units(i, imbalance_units(i), per_unit);
    expect = x;
    return ms_since(t0);
  });
  weft::Runtime rt({.workers = s.workers});
  const double par = median_of(s.repeat, [&] {
    return rt.block_on([&] {
      std::vector<weft::JoinHandle<std::uint64_t>> hs;
      const auto t0 = Clock::now();
      for (std::size_t i = 0; i < fibers; ++i) {
        hs.push_back(weft::go([i, per_unit] { return units(i, imbalance_units(i), per_unit); }));
      }
      std::uint64_t x = 0;
      for (auto& h : hs) x ^= h.join();
      const double ms = ms_since(t0);
      if (x != expect) wrong("imbalance", "checksum differs from the single-core loop");
      return ms;
    });
  });
  add_against_single_core(out, "imbalance", fibers, s.workers, par, serial);
}

namespace {

// parsum's input, answer check and single-core loop around `sum(n)`, a
// parallel sum of parsum_serial's terms over [0, n) run in a fiber.
template <class Sum>
void parsum_against_single_core(const Settings& s, Reporter& out, const std::string& workload, Sum sum) {
  const std::uint64_t n = std::uint64_t{1} << (s.quick ? 24 : 28);
  std::uint64_t expect = 0;
  const double serial = median_of(s.repeat, [&] {
    const auto t0 = Clock::now();
    expect = parsum_serial(0, n);
    return ms_since(t0);
  });
  weft::Runtime rt({.workers = s.workers});
  const double par = median_of(s.repeat, [&] {
    return rt.block_on([&] {
      const auto t0 = Clock::now();
      const std::uint64_t got = sum(n);
      const double ms = ms_since(t0);
      if (got != expect) wrong(workload, "sum differs from the single-core loop");
      return ms;
    });
  });
  add_against_single_core(out, workload, n, s.workers, par, serial);
}

}  // namespace

void parsum_workload(const Settings& s, Reporter& out) {
  const std::uint64_t leaf = std::uint64_t{1} << 14;
  parsum_against_single_core(s, out, "parsum", [&](std::uint64_t n) { return parsum_fibers(0, n, leaf); });
}

// parsum's input, answer and single-core loop, with the recursion left to
// weft::parallel_reduce and its automatic grain (issue 16: within 5 % of
// the hand-written one above).
void parsum_reduce_workload(const Settings& s, Reporter& out) {
  parsum_against_single_core(s, out, "parsum_reduce", [](std::uint64_t n) {
    return weft::parallel_reduce(
        std::uint64_t{0}, n, std::uint64_t{0},
        [](std::uint64_t lo, std::uint64_t hi, std::uint64_t acc) { return acc + parsum_serial(lo, hi); },
        std::plus<>());
  });
}

}  // namespace bench
