// Workload "parked" (BENCHMARKS.md): parked fibers must cost nothing while
// others work. P fibers each park on a receive from their own channel; a
// pingpong runs beside them; then each gets its value. ns_per_op_unparked
// is the same pingpong in the same runtime before the fibers are spawned.
//
// Each repetition (--repeat K) is a whole run in a runtime of its own, and
// each figure is the median over the K runs: the P fibers need P stacks
// alive at once, and a runtime that has already run them has those stacks
// cached, so a second run in it would not measure what the first did.
#include <weft/weft.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

// Resident set size of the process in KiB (/proc/self/statm, field 2).
double rss_kib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1024.0 : 0;
}

// One run's figures.
struct ParkedRun {
  double spawn_ms, ns_per_op, ns_per_op_unparked, release_ms, rss_kib_per_parked;
};

ParkedRun parked_once(std::size_t parked, std::size_t rounds, std::size_t workers) {
  weft::Runtime rt({.workers = workers});
  ParkedRun run{};
  rt.block_on([&] {
    // The same pingpong in the same runtime before anything is parked: the
    // baseline that ns_per_op is compared with.
    run.ns_per_op_unparked = pingpong_round_trip_ns(rounds, "parked");
    std::vector<weft::Channel<std::size_t>> chans(parked);
    std::atomic<std::size_t> received{0}, started{0};
    weft::WaitGroup wg;
    wg.add(static_cast<std::int64_t>(parked));
    const double rss0 = rss_kib();
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < parked; ++i) {
      weft::go([&, i] {
        // relaxed: a progress count; the main fiber only polls it.
        started.fetch_add(1, std::memory_order_relaxed);
        if (auto v = chans[i].recv()) received.fetch_add(*v, std::memory_order_relaxed);
        wg.done();
      }).detach();
    }
    // Until every one has run up to its receive (each parks right there).
    while (started.load(std::memory_order_relaxed) != parked) weft::this_fiber::yield();
    run.spawn_ms = ms_since(t0);
    run.rss_kib_per_parked = (rss_kib() - rss0) / static_cast<double>(parked);
    run.ns_per_op = pingpong_round_trip_ns(rounds, "parked");
    t0 = Clock::now();
    for (std::size_t i = 0; i < parked; ++i) chans[i].send(1);
    wg.wait();
    run.release_ms = ms_since(t0);
    if (received.load() != parked) wrong("parked", "released " + std::to_string(received.load()));
  });
  return run;
}

}  // namespace

void parked_workload(const Settings& s, Reporter& out) {
  const std::size_t rounds = s.quick ? 20'000 : 200'000;
  for (std::size_t parked : {std::size_t{10'000}, std::size_t{100'000}}) {
    if (s.quick) parked /= 10;
    std::vector<ParkedRun> runs;
    for (std::size_t k = 0; k < std::max<std::size_t>(s.repeat, 1); ++k) {
      runs.push_back(parked_once(parked, rounds, s.workers));
    }
    const std::string p = param(parked, s.workers);
    out.add("weft", "parked", p, "spawn_ms", median_of(runs, &ParkedRun::spawn_ms));
    out.add("weft", "parked", p, "ns_per_op", median_of(runs, &ParkedRun::ns_per_op));
    out.add("weft", "parked", p, "ns_per_op_unparked", median_of(runs, &ParkedRun::ns_per_op_unparked));
    out.add("weft", "parked", p, "release_ms", median_of(runs, &ParkedRun::release_ms));
    out.add("weft", "parked", p, "rss_kib_per_parked", median_of(runs, &ParkedRun::rss_kib_per_parked));
  }
}

}  // namespace bench
