// Workloads "timers" and "idlewait" (BENCHMARKS.md): sleeping fibers wake on
// time, and an idle process uses no CPU. And "timers_contended" (not in
// BENCHMARKS.md): the timers workload again, with one CPU-bound process per
// core spinning beside it (cpu_hogs.hpp), as on a loaded machine: how late
// do sleepers wake when the workers must share every core?
//
// Each repetition (--repeat K) is a whole run in a runtime of its own, and
// each figure is the median over the K runs: a runtime that has already run
// the 100,000 timer fibers has their stacks cached, so a second run in it
// would not measure what the first did.
#include <weft/weft.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "cpu_hogs.hpp"

namespace bench {

namespace {

double process_cpu_ms() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

// One run of the timers workload: its three figures, and a fourth (not in
// BENCHMARKS.md): how long destroying the runtime takes afterwards, which
// gives back the stacks the sleepers used.
struct TimersRun {
  double ms, late_p50_us, late_p99_us, shutdown_ms;
};

// One run; `workload` names it in a wrong answer.
TimersRun timers_once(const std::string& workload, std::size_t n, std::size_t workers) {
  auto rt_owner = std::make_unique<weft::Runtime>(weft::Runtime::Options{.workers = workers});
  weft::Runtime& rt = *rt_owner;
  std::vector<double> late(n);
  const auto t0 = Clock::now();
  rt.block_on([&] {
    weft::WaitGroup wg;
    wg.add(static_cast<std::int64_t>(n));
    std::uint64_t seed = 0x2545F4914F6CDD1Dull;
    for (std::size_t i = 0; i < n; ++i) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;  // fixed-seed LCG
      const auto d = std::chrono::microseconds((seed >> 33) % 100'000);
      weft::go([&, i, d] {
        const auto deadline = Clock::now() + d;
        weft::this_fiber::sleep_until(deadline);
        const auto woke = Clock::now();
        if (woke < deadline) wrong(workload, "a timer fired early");
        late[i] = std::chrono::duration<double, std::micro>(woke - deadline).count();
        wg.done();
      }).detach();
    }
    wg.wait();
  });
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (rt.metrics().armed_timers != 0) wrong(workload, "timers left armed");
  const auto t1 = Clock::now();
  rt_owner.reset();
  const double shutdown_ms = std::chrono::duration<double, std::milli>(Clock::now() - t1).count();
  std::sort(late.begin(), late.end());
  return {ms, late[n / 2], late[n * 99 / 100], shutdown_ms};
}

std::size_t timers_count(const Settings& s) { return s.quick ? 10'000 : 100'000; }

void add_timers_figures(Reporter& out, const std::string& workload, const Settings& s,
                        const std::vector<TimersRun>& runs) {
  const std::string p = param(timers_count(s), s.workers);
  out.add("weft", workload, p, "ms", median_of(runs, &TimersRun::ms));
  out.add("weft", workload, p, "late_p50_us", median_of(runs, &TimersRun::late_p50_us));
  out.add("weft", workload, p, "late_p99_us", median_of(runs, &TimersRun::late_p99_us));
  out.add("weft", workload, p, "shutdown_ms", median_of(runs, &TimersRun::shutdown_ms));
}

}  // namespace

void timers_workload(const Settings& s, Reporter& out) {
  std::vector<TimersRun> runs;
  for (std::size_t k = 0; k < std::max<std::size_t>(s.repeat, 1); ++k) {
    runs.push_back(timers_once("timers", timers_count(s), s.workers));
  }
  add_timers_figures(out, "timers", s, runs);
}

void timers_contended_workload(const Settings& s, Reporter& out) {
  std::vector<TimersRun> runs;
  {
    // One spinning process per core, whatever --workers says: the machine
    // is loaded, not just the workers' share of it. Started before the
    // first run, killed (and reaped) after the last, before any figure is
    // printed; the hand-shake in the constructor means each is running
    // when the first timer is set.
    const CpuHogs hogs(weft::default_worker_count());
    for (std::size_t k = 0; k < std::max<std::size_t>(s.repeat, 1); ++k) {
      runs.push_back(timers_once("timers_contended", timers_count(s), s.workers));
    }
  }
  add_timers_figures(out, "timers_contended", s, runs);
}

void idlewait_workload(const Settings& s, Reporter& out) {
  const double cpu_ms = median_of(s.repeat, [&] {
    weft::Runtime rt({.workers = s.workers});
    rt.block_on([] {});  // started
    // And idle: block_on returns while its worker still ends the task (a
    // new worker thread's first free sets up glibc's per-thread cache, whose
    // first malloc sorts whatever earlier runtimes freed into that arena:
    // up to 2.5 ms, measured inside the second before this wait), and
    // another worker thread may not have started yet. 20 ms covers both.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const double cpu0 = process_cpu_ms();
    const auto t0 = Clock::now();
    if (weft::timeout(std::chrono::seconds(1)).recv().has_value()) wrong("idlewait", "a value on a timeout channel");
    if (Clock::now() - t0 < std::chrono::seconds(1)) wrong("idlewait", "the timeout closed early");
    return process_cpu_ms() - cpu0;
  });
  out.add("weft", "idlewait", param(1000, s.workers), "cpu_ms", cpu_ms);
}

}  // namespace bench
