// weft::RuntimeMetrics: a snapshot of a runtime's counters and queue depths
// (Runtime::metrics()), and metrics_text(): the same in the Prometheus text
// exposition format, for a service's /metrics endpoint.
//
// Every figure is read separately (relaxed loads of counters that their
// owners write without read-modify-writes), so a snapshot taken while the
// runtime runs is not one instant: sums may be off by what moved during the
// read. Taken while nothing runs (every fiber parked or done), it is exact.
#pragma once

#include "detail/config.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "park_reason.hpp"

namespace weft {

class Runtime;

// One worker thread's figures.
struct WorkerMetrics {
  std::size_t local_queue_depth = 0;  // tasks in this worker's own deque
  std::size_t runnext = 0;            // 1 if its runnext slot holds a woken fiber, else 0
  std::uint64_t steals = 0;           // tasks this worker took from other workers
  std::uint64_t parks = 0;            // times a fiber parked on this worker
  std::uint64_t sleeps = 0;           // times this worker thread went to sleep (nothing to run)
  std::uint64_t wakeups = 0;          // times this worker thread woke up from such a sleep
  std::uint64_t run_slices = 0;       // fiber run slices started here (a fiber resumed or a task begun)
  std::uint64_t fibers_spawned = 0;   // tasks spawned by fibers running here (onto its deque)
};

// Run-slice lengths: how long a fiber ran on a worker before it yielded,
// parked or ended. Collected only with Runtime::Options::measure_run_slices
// (a clock read at every switch); all zero otherwise.
struct RunSliceHistogram {
  // Bucket i counts slices shorter than bucket_upper_ns(i) and at least as
  // long as bucket_upper_ns(i - 1): 1 us, 2 us, 4 us, ... 2^20 us (about
  // 1.05 s); the last bucket counts everything longer. Not cumulative.
  static constexpr std::size_t k_buckets = 22;
  static constexpr std::uint64_t bucket_upper_ns(std::size_t i) noexcept {
    return i + 1 >= k_buckets ? UINT64_MAX : std::uint64_t{1000} << i;
  }
  bool enabled = false;                        // Options::measure_run_slices
  std::array<std::uint64_t, k_buckets> buckets{};
  std::uint64_t count = 0;                     // slices measured
  std::uint64_t sum_ns = 0;                    // their total length
  std::uint64_t overruns = 0;                  // slices longer than Options::time_slice
};

struct RuntimeMetrics {
  // --- the fields Runtime::Metrics always had (same names, same meaning) ---
  std::size_t workers = 0;             // worker threads
  std::size_t fibers_alive = 0;        // started tasks not yet finished (running, runnable or parked)
  // timers armed in the process, all runtimes: sleeps, timed waits of
  // fibers, timeout channels a fiber has parked on, tickers
  std::size_t armed_timers = 0;
  std::uint64_t steals = 0;            // tasks taken from another worker's deque (sum over workers)
  std::uint64_t parks = 0;             // times a fiber of this runtime parked (sum over workers)
  std::size_t blocking_threads = 0;    // threads in this runtime's blocking pool
  std::size_t blocking_in_flight = 0;  // weft::blocking() calls queued or running

  // --- queues ---
  std::size_t injector_depth = 0;      // tasks and wake-ups queued from outside the runtime
  std::size_t global_queue_depth = 0;  // yielded fibers waiting for a worker
  std::size_t urgent_queue_depth = 0;  // cancelled fibers waiting to unwind
  // Everything runnable and not running: every deque, runnext slot and
  // shared queue. Work queued behind busy fibers shows here.
  std::size_t runnable = 0;
  std::size_t blocking_queue_depth = 0;  // weft::blocking() calls no pool thread has started yet

  // --- tasks and fibers ---
  std::uint64_t fibers_spawned = 0;   // tasks spawned so far (go, spawn, TaskGroup)
  std::uint64_t fibers_started = 0;   // of which began running
  std::uint64_t fibers_finished = 0;  // of which ended
  std::size_t fibers_queued = 0;      // spawned, not started: fibers_spawned - fibers_started

  // --- parked fibers ---
  // Fibers parked now, by what they wait for (index: ParkReason), and in all.
  std::array<std::size_t, k_park_reasons> parked_by_reason{};
  std::size_t parked = 0;
  std::uint64_t fiber_wakeups = 0;  // times a parked fiber was resumed
  std::size_t parked_with(ParkReason r) const noexcept { return parked_by_reason[static_cast<std::size_t>(r)]; }

  // --- run slices (Options::measure_run_slices) ---
  RunSliceHistogram run_slices;

  // One entry per worker, by index.
  std::vector<WorkerMetrics> per_worker;
};

// The runtime's metrics (rt.metrics()) in the Prometheus text exposition
// format, version 0.0.4: every metric with # HELP and # TYPE, names prefixed
// weft_, counters ending in _total, per-worker figures labelled
// worker="<index>", parked fibers labelled reason="<park_reason_name>", and
// the run-slice histogram as weft_run_slice_seconds_bucket{le=...} (cumulative,
// ending with le="+Inf"), _sum and _count. Serve it with the content type
// "text/plain; version=0.0.4".
// Any thread, including fibers of `rt`; never blocks or parks. Allocates
// (std::bad_alloc propagates).
WEFT_API std::string metrics_text(const Runtime& rt);
// The same for a snapshot already taken.
WEFT_API std::string metrics_text(const RuntimeMetrics& m);

}  // namespace weft
