// RunSlices: one worker's histogram of fiber run-slice lengths, for
// Runtime::Options::measure_run_slices (weft/metrics.hpp, RunSliceHistogram).
//
// The worker calls begin() when it switches a fiber in (Worker::enter, and
// when a finished fiber takes on its next task) and end() when the fiber
// switches out (suspend_current_fiber, the end of fiber_main), each on the
// cold side of the switch's one branch on Worker::instrumented_ (shared
// with tracing), so that with both off a switch reads no clock. Between a begin() and its end() exactly one fiber
// runs on the worker: the two always alternate (begin, end, begin, ...).
//
// Buckets: log2 of the length in microseconds, bucket i for
// [2^(i-1) us, 2^i us), bucket 0 for under 1 us, the last for 2^20 us
// (about 1.05 s) and more. An overrun is a slice longer than the runtime's
// time_slice: a fiber that ran that long without reaching a maybe_yield()
// that could give the worker away.
//
// Contract: begin() and end() by the owner worker's thread only;
// snapshot() from any thread. Every counter is single-writer: the owner
// stores load+1 (relaxed), readers load relaxed; a reader only needs each
// value to be one the owner wrote, not a consistent set.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

#include "weft/detail/deadline.hpp"
#include "weft/metrics.hpp"

namespace weft::detail {

class RunSlices {
 public:
  static constexpr std::size_t k_buckets = RunSliceHistogram::k_buckets;

  explicit RunSlices(Nanos overrun_after) noexcept : overrun_after_(overrun_after) {}

  // Out of line and cold (run_slices.cpp): the switch paths that call them
  // behind their branch keep their size, and so their inlining, when the
  // option is off.
  [[gnu::cold]] void begin() noexcept;
  [[gnu::cold]] void end() noexcept;

  // The bucket of a slice `ns` long (see the header comment).
  static constexpr std::size_t bucket_of(Nanos ns) noexcept {
    const auto us = static_cast<std::uint64_t>(ns < 0 ? 0 : ns) / 1000;
    const auto b = static_cast<std::size_t>(std::bit_width(us));  // 0 for us == 0
    return b < k_buckets ? b : k_buckets - 1;
  }

  // Any thread: adds this worker's figures to `h`.
  void add_to(RunSliceHistogram& h) const noexcept {
    for (std::size_t i = 0; i < k_buckets; ++i) h.buckets[i] += buckets_[i].load(std::memory_order_relaxed);
    h.count += count_.load(std::memory_order_relaxed);
    h.sum_ns += sum_ns_.load(std::memory_order_relaxed);
    h.overruns += overruns_.load(std::memory_order_relaxed);
  }

 private:
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t by) noexcept {
    // relaxed: single writer (this worker); readers want any recent value.
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  void record(Nanos now) noexcept {
    const Nanos took = now - start_;
    bump(buckets_[bucket_of(took)], 1);
    bump(count_, 1);
    bump(sum_ns_, static_cast<std::uint64_t>(took < 0 ? 0 : took));
    if (took > overrun_after_) bump(overruns_, 1);
  }

  const Nanos overrun_after_;
  Nanos start_ = 0;  // owner only
  std::array<std::atomic<std::uint64_t>, k_buckets> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> overruns_{0};
};

}  // namespace weft::detail
