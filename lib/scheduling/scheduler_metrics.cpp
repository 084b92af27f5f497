// Scheduler::metrics(): Runtime::metrics()'s snapshot (weft/metrics.hpp),
// assembled from counters that each have one writer (a worker, or a queue
// under its lock) and from queue sizes, all read without a lock. How each
// figure is counted and what it costs: docs/design/seeing-inside.md.
//
// Read order: for each pair "b happens after a" (a task's finish after its
// start after its spawn; a fiber's resume after its park), the later count
// is read first and both with acquire against their writers' release
// stores, so that whatever the snapshot counts as finished (resumed) it
// also counts as started (parked): the differences are never negative.
#include <algorithm>
#include <cstdint>

#include "scheduling/scheduler.hpp"
#include "time/timer_heap.hpp"

namespace weft::detail {

Runtime::Metrics Scheduler::metrics() const {
  Runtime::Metrics m;
  m.workers = workers_.size();
  m.per_worker.resize(workers_.size());  // the only allocation
  m.armed_timers = timers().armed();

  // Tasks: finished, then started, then spawned (see the header comment).
  std::uint64_t finished = 0, started = 0, spawned = 0;
  for (const auto& w : workers_) finished += w->fibers_finished();
  for (const auto& w : workers_) started += w->fibers_started();
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const std::uint64_t s = workers_[i]->spawned();
    m.per_worker[i].fibers_spawned = s;
    spawned += s;
  }
  spawned += injector_.new_tasks();
  m.fibers_finished = finished;
  m.fibers_started = started;
  m.fibers_spawned = spawned;
  m.fibers_alive = static_cast<std::size_t>(started - finished);
  m.fibers_queued = static_cast<std::size_t>(spawned - started);

  // Parked fibers by reason: resumes first, then parks.
  std::array<std::uint64_t, k_park_reasons> resumed{};
  for (const auto& w : workers_) {
    for (std::size_t r = 0; r < k_park_reasons; ++r) {
      resumed[r] += w->park_counts().resumed_total(static_cast<ParkReason>(r));
    }
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = *workers_[i];
    std::uint64_t parks = 0;
    for (std::size_t r = 0; r < k_park_reasons; ++r) {
      const std::uint64_t p = w.park_counts().parked_total(static_cast<ParkReason>(r));
      parks += p;
      // Accumulated as parks here, resumes subtracted below.
      m.parked_by_reason[r] += static_cast<std::size_t>(p);
    }
    m.per_worker[i].parks = parks;
    m.parks += parks;
  }
  for (std::size_t r = 0; r < k_park_reasons; ++r) {
    // Never negative with the read order above; the guard keeps a torn
    // reading (a counter that wrapped) from showing as a huge number.
    const std::uint64_t p = m.parked_by_reason[r];
    m.parked_by_reason[r] = static_cast<std::size_t>(p >= resumed[r] ? p - resumed[r] : 0);
    m.parked += m.parked_by_reason[r];
    m.fiber_wakeups += resumed[r];
  }

  // Queues and the rest of each worker's figures.
  m.injector_depth = injector_.size_approx();
  m.global_queue_depth = global_.size_approx();
  m.urgent_queue_depth = urgent_.size_approx();
  m.runnable = m.injector_depth + m.global_queue_depth + m.urgent_queue_depth;
  m.run_slices.enabled = options_.measure_run_slices;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = *workers_[i];
    WorkerMetrics& wm = m.per_worker[i];
    wm.local_queue_depth = w.queued_approx();
    wm.runnext = w.runnext_occupied() ? 1 : 0;
    wm.steals = w.steals();
    wm.sleeps = w.sleeps();
    wm.wakeups = w.wakeups();
    wm.run_slices = w.run_slice_count();
    m.steals += wm.steals;
    m.runnable += wm.local_queue_depth + wm.runnext;
    w.run_slices().add_to(m.run_slices);
  }

  m.blocking_threads = blocking_->threads();
  m.blocking_in_flight = blocking_->in_flight();
  m.blocking_queue_depth = blocking_->queued();
  return m;
}

}  // namespace weft::detail
