// serial_floor: what the instructions that no fast path can reorder cost
// this machine, alone, with no runtime (issue 17; docs/benchmarks.md, "Issue
// 17: the serialising floor"). Each figure is the median of 5 runs:
//   locked_rmw      a lock-prefixed read-modify-write (fetch_add) on a line
//                   only this thread touches, back to back
//   seq_cst_store   a seq_cst store (XCHG on x86), back to back
//   locked_in_work  one fetch_add among ~25 plain instructions (arithmetic,
//                   two stores, a load): what it adds to surrounding work
//                   (it waits for earlier stores to drain and stops later
//                   loads from passing it)
//   shared_rmw      two threads fetch_add one counter at once: the time per
//                   increment of either, the line moving between cores
//   raw_switch      a pair of Boost.Context switches (there and back), with
//                   nothing else: no scheduler, no exception state
//   membarrier_alone, membarrier_busy
//                   membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), the heavy
//                   side of an asymmetric fence (a fast path without its
//                   barrier pays this on the slow side instead), with no
//                   other thread of ours running, and with one spinning on
//                   another CPU (which the kernel must interrupt); 0 where
//                   the kernel refuses the command
// weft's figures are per operation of weft-bench's workloads; multiply the
// serialising instructions an operation executes (counted with
// scripts/serialising_count.py) by these to get its floor here.
// Prints weft-bench's line format with peer=floor.
#include <boost/context/detail/fcontext.hpp>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace ctx = boost::context::detail;

double ns_per(Clock::time_point t0, std::size_t n) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(n);
}

template <class F>
double median_of_5(F&& run) {
  std::array<double, 5> v{};
  for (double& x : v) x = run();
  std::sort(v.begin(), v.end());
  return v[2];
}

// One cache line per counter, so that nothing else shares it.
struct alignas(64) Line {
  std::atomic<std::uint64_t> value{0};
};

double locked_rmw(std::size_t n) {
  Line line;
  const auto t0 = Clock::now();
  // relaxed: the order does not matter here; x86 emits LOCK XADD for any.
  for (std::size_t i = 0; i < n; ++i) line.value.fetch_add(1, std::memory_order_relaxed);
  const double ns = ns_per(t0, n);
  if (line.value.load(std::memory_order_relaxed) != n) std::abort();
  return ns;
}

double seq_cst_store(std::size_t n) {
  Line line;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) line.value.store(i, std::memory_order_seq_cst);
  return ns_per(t0, n);
}

// ~25 plain instructions per step, arithmetic and two stores and a load
// (as a runtime's bookkeeping: fields written, a field read), with or
// without one locked RMW in the middle: the difference is what the RMW adds.
double mixed(std::size_t n, bool with_rmw) {
  Line line;
  std::uint64_t fields[16] = {};
  std::uint64_t a = 1, b = 2, c = 3, d = 4;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    a = a * 33 + i;
    b ^= a >> 7;
    fields[i & 15] = a;
    c += b * 5;
    d = (d << 1) ^ c;
    fields[(i + 5) & 15] = d;
    if (with_rmw) line.value.fetch_add(1, std::memory_order_relaxed);
    b += fields[(i + 9) & 15];
    a += d >> 3;
    b = b * 9 + c;
    c ^= a + d;
    d += b >> 11;
    asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d) : : "memory");
  }
  const double ns = ns_per(t0, n);
  if (a + b + c + d == 42) std::puts("");  // keeps the arithmetic alive
  return ns;
}

double shared_rmw(std::size_t n) {
  Line line;
  std::atomic<int> ready{0};
  auto work = [&] {
    // seq_cst: a start line for two threads, not on the measured path.
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    for (std::size_t i = 0; i < n; ++i) line.value.fetch_add(1, std::memory_order_relaxed);
  };
  const auto t0 = Clock::now();
  std::thread other(work);
  work();
  other.join();
  // Per increment of the pair: 2n increments in the elapsed time.
  const double ns = ns_per(t0, 2 * n);
  if (line.value.load(std::memory_order_relaxed) != 2 * n) std::abort();
  return ns;
}

// The far side of raw_switch: jumps back at once, for ever.
void bounce(ctx::transfer_t t) {
  for (;;) t = ctx::jump_fcontext(t.fctx, nullptr);
}

double raw_switch(std::size_t n) {
  constexpr std::size_t k_stack = 64 * 1024;
  auto stack = std::make_unique<char[]>(k_stack);
  ctx::fcontext_t other = ctx::make_fcontext(stack.get() + k_stack, k_stack, &bounce);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) other = ctx::jump_fcontext(other, nullptr).fctx;
  return ns_per(t0, n);
  // The bouncing context is left suspended; its stack is freed unused.
}

long membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

// Per call; 0 if the kernel refuses the command (too old, or filtered).
double membarrier_cost(std::size_t n, bool with_spinner) {
  static const bool registered = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  if (!registered) return 0;
  std::atomic<bool> stop{false};
  std::atomic<bool> spinning{false};
  std::thread spinner;
  if (with_spinner) {
    spinner = std::thread([&] {
      // relaxed: a flag polled in a loop; nothing else is published.
      spinning.store(true, std::memory_order_relaxed);
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
    while (!spinning.load(std::memory_order_relaxed)) {
    }
  }
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  const double ns = ns_per(t0, n);
  if (with_spinner) {
    stop.store(true, std::memory_order_relaxed);
    spinner.join();
  }
  return ns;
}

void print(const char* workload, std::size_t n, double v) {
  std::printf("peer=floor workload=%s param=%zu@1 metric=ns_per_op value=%.2f\n", workload, n, v);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (argc > 1 && !quick) {
    std::fprintf(stderr, "usage: serial_floor [--quick]\n");
    return 2;
  }
  const std::size_t n = quick ? 2'000'000 : 20'000'000;
  print("locked_rmw", n, median_of_5([&] { return locked_rmw(n); }));
  print("seq_cst_store", n, median_of_5([&] { return seq_cst_store(n); }));
  const double plain = median_of_5([&] { return mixed(n, false); });
  const double with = median_of_5([&] { return mixed(n, true); });
  print("locked_in_work", n, with - plain);
  print("shared_rmw", n, median_of_5([&] { return shared_rmw(n); }));
  print("raw_switch", n, median_of_5([&] { return raw_switch(n); }));
  const std::size_t calls = n / 1000;  // microseconds each: fewer calls
  print("membarrier_alone", calls, median_of_5([&] { return membarrier_cost(calls, false); }));
  print("membarrier_busy", calls, median_of_5([&] { return membarrier_cost(calls, true); }));
  return 0;
}
