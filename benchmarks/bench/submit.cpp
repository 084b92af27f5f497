// Workload "submit" (issue 16): is submission from plain threads fair?
//
// Four producer threads (standing in for an I/O library's threads) spawn
// tasks with Runtime::spawn at equal rates into a runtime whose workers are
// saturated: every task spins a fixed amount of CPU (about 50 us, calibrated
// once), and together the producers submit 1.2 times what the workers can
// run, for 1 s (100 ms with --quick), then wait for the backlog to drain.
// Each producer paces itself by the clock: every millisecond it brings its
// count up to rate x elapsed, so a late wake-up is made up at once and the
// four rates stay equal whatever the scheduler does.
//
// Each task records its start latency: from just before the spawn() call
// to the first line of its body. Figures per producer k (median over the
// runs): producer<k>_p50_us and producer<k>_p99_us, then
// p99_worst_best_ratio (worst producer's p99 over the best one's, per run;
// the goal is at most 1.5). Every task must run exactly once (a count per
// task), or the workload fails.
//
// Beside it, the plain cost of the path: one plain thread spawning N empty
// tasks into an idle runtime (plain_spawn_ns, per spawn() call), and four
// doing it at once (plain_spawn4_ns, wall time per spawn); N = 200,000
// (20,000 with --quick).
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

constexpr std::size_t k_producers = 4;
constexpr double k_task_us = 50;
constexpr double k_overload = 1.2;

std::uint64_t spin(std::uint64_t h, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) h = (h ^ (h >> 31)) * 0x9E3779B97F4A7C15ull + i;
  return h;
}

// Hash steps in about k_task_us of CPU on this machine (measured once).
std::uint64_t steps_per_task() {
  static const std::uint64_t steps = [] {
    constexpr std::uint64_t probe = 2'000'000;
    double best = 1e18;
    volatile std::uint64_t sink = 0;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = Clock::now();
      sink = sink + spin(static_cast<std::uint64_t>(i), probe);
      best = std::min(best, ns_since(t0));
    }
    return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(probe * (k_task_us * 1000.0) / best));
  }();
  return steps;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Run {
  double p50[k_producers];
  double p99[k_producers];
  double ratio;
};

// One saturated run; fails the workload if a task did not run exactly once.
Run saturated_run(const Settings& s, const std::string& workload) {
  const std::uint64_t steps = steps_per_task();
  const double duration_ms = s.quick ? 100 : 1000;
  // Tasks per millisecond for each producer: k_overload times what the
  // workers can run, shared out equally.
  const double per_ms = k_overload * static_cast<double>(s.workers) * (1000.0 / k_task_us) / k_producers;
  const std::size_t per_producer = static_cast<std::size_t>(per_ms * duration_ms);

  struct Slot {
    std::atomic<std::uint32_t> ran{0};
    double latency_us = 0;  // written by the one run of its task
  };
  std::vector<std::unique_ptr<Slot[]>> slots;
  for (std::size_t p = 0; p < k_producers; ++p) slots.push_back(std::make_unique<Slot[]>(per_producer));
  std::atomic<std::uint64_t> sink{0};

  {
    weft::Runtime rt{weft::Runtime::Options{.workers = s.workers}};
    weft::WaitGroup all;
    all.add(static_cast<std::int64_t>(k_producers * per_producer));
    std::atomic<std::size_t> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> producers;
    for (std::size_t p = 0; p < k_producers; ++p) {
      producers.emplace_back([&, p] {
        Slot* mine = slots[p].get();
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        const auto t0 = Clock::now();
        std::size_t sent = 0;
        for (std::size_t tick = 1; sent < per_producer; ++tick) {
          const auto due = std::min(per_producer, static_cast<std::size_t>(per_ms * ms_since(t0)) + 1);
          for (; sent < due; ++sent) {
            Slot* slot = &mine[sent];
            const auto at = Clock::now();
            rt.spawn([slot, at, steps, &sink, &all] {
              slot->latency_us = ns_since(at) / 1000.0;
              slot->ran.fetch_add(1, std::memory_order_relaxed);
              sink.fetch_add(spin(reinterpret_cast<std::uintptr_t>(slot), steps), std::memory_order_relaxed);
              all.done();
            }).detach();
          }
          std::this_thread::sleep_until(t0 + std::chrono::milliseconds(tick));
        }
      });
    }
    while (ready.load() != k_producers) std::this_thread::yield();
    go.store(true);
    for (auto& t : producers) t.join();
    all.wait();
  }

  Run r{};
  double best = 1e300, worst = 0;
  for (std::size_t p = 0; p < k_producers; ++p) {
    std::vector<double> lat(per_producer);
    for (std::size_t i = 0; i < per_producer; ++i) {
      if (slots[p][i].ran.load() != 1) {
        wrong(workload, "producer " + std::to_string(p) + "'s task " + std::to_string(i) + " ran " +
                            std::to_string(slots[p][i].ran.load()) + " times");
      }
      lat[i] = slots[p][i].latency_us;
    }
    r.p50[p] = percentile(lat, 0.50);
    r.p99[p] = percentile(lat, 0.99);
    best = std::min(best, r.p99[p]);
    worst = std::max(worst, r.p99[p]);
  }
  r.ratio = worst / std::max(best, 1e-3);
  return r;
}

// ns of wall time per spawn() when `threads` plain threads each spawn n
// empty tasks into an idle runtime at once (until all have run).
double plain_spawn_ns(const Settings& s, std::size_t threads, std::size_t n, const std::string& workload) {
  std::atomic<std::size_t> ran{0};
  double ns = 0;
  {
    weft::Runtime rt{weft::Runtime::Options{.workers = s.workers}};
    weft::WaitGroup all;
    all.add(static_cast<std::int64_t>(threads * n));
    std::vector<std::thread> spawners;
    const auto t0 = Clock::now();
    for (std::size_t t = 0; t < threads; ++t) {
      spawners.emplace_back([&] {
        for (std::size_t i = 0; i < n; ++i) {
          rt.spawn([&] {
            ran.fetch_add(1, std::memory_order_relaxed);
            all.done();
          }).detach();
        }
      });
    }
    for (auto& t : spawners) t.join();
    all.wait();
    ns = ns_since(t0) / static_cast<double>(threads * n);
  }
  if (ran.load() != threads * n) wrong(workload, "ran " + std::to_string(ran.load()) + " of " + std::to_string(threads * n));
  return ns;
}

}  // namespace

void submit_workload(const Settings& s, Reporter& out) {
  const std::string workload = "submit";
  const std::size_t size = s.quick ? 100 : 1000;  // ms of overload
  std::vector<Run> runs;
  for (std::size_t i = 0; i < std::max<std::size_t>(s.repeat, 1); ++i) runs.push_back(saturated_run(s, workload));
  const std::string p = param(size, s.workers);
  for (std::size_t k = 0; k < k_producers; ++k) {
    std::size_t next = 0;
    out.add("weft", workload, p, "producer" + std::to_string(k) + "_p50_us",
            median_of(runs.size(), [&] { return runs[next++].p50[k]; }));
    next = 0;
    out.add("weft", workload, p, "producer" + std::to_string(k) + "_p99_us",
            median_of(runs.size(), [&] { return runs[next++].p99[k]; }));
  }
  out.add("weft", workload, p, "p99_worst_best_ratio", median_of(runs, &Run::ratio));

  const std::size_t n = s.quick ? 20'000 : 200'000;
  const std::string pn = param(n, s.workers);
  out.add("weft", workload, pn, "plain_spawn_ns", median_of(s.repeat, [&] { return plain_spawn_ns(s, 1, n, workload); }));
  out.add("weft", workload, pn, "plain_spawn4_ns",
          median_of(s.repeat, [&] { return plain_spawn_ns(s, k_producers, n / k_producers, workload); }));
}

}  // namespace bench
