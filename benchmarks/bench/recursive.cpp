// Workloads "fib" and "skynet" (BENCHMARKS.md): trees of fibers.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdint>

#include "bench.hpp"

namespace bench {

namespace {

// noinline, and the argument laundered through a volatile at the call site:
// the compiler must not fold or unroll the single-core loop away.
__attribute__((noinline)) std::uint64_t fib_serial(int n) {
  return n < 2 ? static_cast<std::uint64_t>(n) : fib_serial(n - 1) + fib_serial(n - 2);
}

std::uint64_t fib_fibers(int n) {
  if (n < 2) return static_cast<std::uint64_t>(n);
  auto left = weft::go([n] { return fib_fibers(n - 1); });
  const std::uint64_t right = fib_fibers(n - 2);
  return left.join() + right;
}

// A skynet node: `size` leaves numbered from `first`; sends its sum up.
void skynet_node(std::uint64_t first, std::uint64_t size, weft::Channel<std::uint64_t> up) {
  if (size == 1) {
    up.send(first);
    return;
  }
  weft::Channel<std::uint64_t> down(10);
  const std::uint64_t child = size / 10;
  for (int i = 0; i < 10; ++i) {
    weft::go([=] { skynet_node(first + i * child, child, down); }).detach();
  }
  std::uint64_t sum = 0;
  for (int i = 0; i < 10; ++i) sum += *down.recv();
  up.send(sum);
}

}  // namespace

void fib_workload(const Settings& s, Reporter& out) {
  volatile int size = s.quick ? 25 : 30;
  const int n = size;
  const std::uint64_t expect = fib_serial(size);
  const double serial_ms = median_of(s.repeat, [&] {
    const auto t0 = Clock::now();
    if (fib_serial(size) != expect) wrong("fib", "single-core");
    return ms_since(t0);
  });
  weft::Runtime rt({.workers = s.workers});
  const double weft_ms = median_of(s.repeat, [&] {
    return rt.block_on([&] {
      const auto t0 = Clock::now();
      const std::uint64_t got = fib_fibers(n);
      const double ms = ms_since(t0);
      if (got != expect) wrong("fib", std::to_string(got) + " != " + std::to_string(expect));
      return ms;
    });
  });
  add_against_single_core(out, "fib", static_cast<std::size_t>(n), s.workers, weft_ms, serial_ms);
}

void skynet_workload(const Settings& s, Reporter& out) {
  const std::uint64_t leaves = s.quick ? 100'000 : 1'000'000;
  const std::uint64_t expect = leaves * (leaves - 1) / 2;
  weft::Runtime rt({.workers = s.workers});
  const double ms = median_of(s.repeat, [&] {
    return rt.block_on([&] {
      weft::Channel<std::uint64_t> root(1);
      const auto t0 = Clock::now();
      weft::go([=] { skynet_node(0, leaves, root); }).detach();
      const std::uint64_t sum = *root.recv();
      const double took = ms_since(t0);
      if (sum != expect) wrong("skynet", std::to_string(sum) + " != " + std::to_string(expect));
      return took;
    });
  });
  out.add("weft", "skynet", param(leaves, s.workers), "ms", ms);
}

}  // namespace bench
