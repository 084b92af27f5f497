// Workloads "timers" and "idlewait" (BENCHMARKS.md): sleeping fibers wake on
// time, and an idle process uses no CPU.
#include <weft/weft.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

double process_cpu_ms() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

}  // namespace

void timers_workload(const Settings& s, Reporter& out) {
  const std::size_t n = s.quick ? 10'000 : 100'000;
  weft::Runtime rt({.workers = s.workers});
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
        if (woke < deadline) wrong("timers", "a timer fired early");
        late[i] = std::chrono::duration<double, std::micro>(woke - deadline).count();
        wg.done();
      }).detach();
    }
    wg.wait();
  });
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (rt.metrics().armed_timers != 0) wrong("timers", "timers left armed");
  std::sort(late.begin(), late.end());
  out.add("weft", "timers", param(n, s.workers), "ms", ms);
  out.add("weft", "timers", param(n, s.workers), "late_p50_us", late[n / 2]);
  out.add("weft", "timers", param(n, s.workers), "late_p99_us", late[n * 99 / 100]);
}

void idlewait_workload(const Settings& s, Reporter& out) {
  weft::Runtime rt({.workers = s.workers});
  rt.block_on([] {});  // started and idle
  const double cpu0 = process_cpu_ms();
  const auto t0 = Clock::now();
  if (weft::timeout(std::chrono::seconds(1)).recv().has_value()) wrong("idlewait", "a value on a timeout channel");
  if (Clock::now() - t0 < std::chrono::seconds(1)) wrong("idlewait", "the timeout closed early");
  out.add("weft", "idlewait", param(1000, s.workers), "cpu_ms", process_cpu_ms() - cpu0);
}

}  // namespace bench
