// Workload "parked" (BENCHMARKS.md): parked fibers must cost nothing while
// others work. P fibers each park on a receive from their own channel; a
// pingpong runs beside them; then each gets its value. ns_per_op_unparked
// is the same pingpong in the same runtime before the fibers are spawned.
// spawn_ms_warm / release_ms_warm are a second round of the P fibers in the
// same runtime, spawn_ms_round10 / release_ms_round10 its tenth.
//
// Each repetition (--repeat K) is a whole run in a runtime of its own, and
// each figure is the median over the K runs: the P fibers need P stacks
// alive at once, and a runtime that has already run them has those stacks
// cached, so a second run in it would not measure what the first did.
//
// rss_kib_per_parked must count everything a parked fiber costs: its stack,
// its task block, its channel. Two things in a process that has already run
// fibers hide part of that: the task-block depot (lib/scheduling/task_memory.cpp: free
// lists of task memory, per thread and process-wide, that outlive a
// runtime) hands back blocks whose pages are already resident, and so does
// malloc for the channels' memory freed earlier. Any earlier spawn warms
// them: another workload, the smaller P, an earlier repetition, this run's
// own pingpong. So the RSS figure is measured in a fresh process every time
// (weft-bench re-executes itself with the hidden flag --parked-rss-child P,
// see parked_rss_child()), where the baseline is read with the runtime up
// and before the channels are made, and everything after it is new. The
// other figures are measured here, as before. Measuring the depot instead
// would need lib/ to expose it and would still miss malloc's share.
#include <weft/weft.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

struct ParkTimes {
  double spawn_ms, release_ms;
};

// From a fiber: spawns one fiber per channel in chans, each parked on a
// receive from its channel; once every one has run up to its receive, calls
// while_parked(); then sends each its value and waits for all to end.
template <class WhileParked>
ParkTimes park_and_release(std::vector<weft::Channel<std::size_t>>& chans, WhileParked while_parked) {
  const std::size_t parked = chans.size();
  std::atomic<std::size_t> received{0}, started{0};
  weft::WaitGroup wg;
  wg.add(static_cast<std::int64_t>(parked));
  ParkTimes times{};
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
  times.spawn_ms = ms_since(t0);
  while_parked();
  t0 = Clock::now();
  for (std::size_t i = 0; i < parked; ++i) chans[i].send(1);
  wg.wait();
  times.release_ms = ms_since(t0);
  if (received.load() != parked) wrong("parked", "released " + std::to_string(received.load()));
  return times;
}

// One run's figures.
struct ParkedRun {
  double spawn_ms, ns_per_op, ns_per_op_unparked, release_ms, rss_kib_per_parked;
  double spawn_ms_warm, release_ms_warm;  // a second round in the same runtime
  double spawn_ms_round10, release_ms_round10;  // its tenth round
  double spawn_ms_fresh_process;          // the first round of a fresh process
};

// Every figure but those of the fresh process, in a runtime of its own.
ParkedRun parked_once(std::size_t parked, std::size_t rounds, std::size_t workers) {
  weft::Runtime rt({.workers = workers});
  ParkedRun run{};
  rt.block_on([&] {
    // The same pingpong in the same runtime before anything is parked: the
    // baseline that ns_per_op is compared with.
    run.ns_per_op_unparked = pingpong_round_trip_ns(rounds, "parked");
    std::vector<weft::Channel<std::size_t>> chans(parked);
    const ParkTimes times = park_and_release(chans, [&] { run.ns_per_op = pingpong_round_trip_ns(rounds, "parked"); });
    run.spawn_ms = times.spawn_ms;
    run.release_ms = times.release_ms;
    // Again in the same runtime, nothing beside: what a long-lived runtime
    // pays for its next burst, with the stacks and task blocks the first
    // one left cached (and what Go's runs in one process measure).
    const ParkTimes warm = park_and_release(chans, [] {});
    run.spawn_ms_warm = warm.spawn_ms;
    run.release_ms_warm = warm.release_ms;
    // Eight more rounds: a long-lived runtime's bursts, after the stacks
    // and task blocks have come back in the order their fibers ended, round
    // after round, not the order they were taken in (docs/benchmarks.md,
    // "stacks handed out in address order").
    ParkTimes last{};
    for (int round = 3; round <= 10; ++round) last = park_and_release(chans, [] {});
    run.spawn_ms_round10 = last.spawn_ms;
    run.release_ms_round10 = last.release_ms;
  });
  return run;
}

// rss_kib_per_parked and spawn_ms_fresh_process, measured by a fresh
// weft-bench process (see the top): its round is the first of its process,
// so its spawn time is also what a program pays for its first burst.
void measure_in_fresh_process(ParkedRun& run, std::size_t parked, std::size_t workers) {
  const FreshRun child =
      run_in_fresh_process({"--workers", std::to_string(workers), "--parked-rss-child", std::to_string(parked)});
  const auto figure = [&](const std::string& key) {
    const auto at = child.output.rfind(key);
    if (child.status != 0 || at == std::string::npos) {
      wrong("parked", "the run in a fresh process ended with status " + std::to_string(child.status) +
                          " and no " + key + ", output:\n" + child.output);
    }
    return std::strtod(child.output.c_str() + at + key.size(), nullptr);
  };
  run.rss_kib_per_parked = figure("rss_kib_per_parked=");
  run.spawn_ms_fresh_process = figure("spawn_ms=");
}

}  // namespace

int parked_rss_child(std::size_t parked, std::size_t workers) {
  weft::Runtime rt({.workers = workers});
  double rss_per = 0, spawn_ms = 0;
  rt.block_on([&] {
    // The baseline with the runtime up (its threads and this root fiber are
    // not the parked fibers' cost), before the channels are made (they are).
    const double rss0 = rss_kib();
    std::vector<weft::Channel<std::size_t>> chans(parked);
    spawn_ms = park_and_release(chans, [&] { rss_per = (rss_kib() - rss0) / static_cast<double>(parked); }).spawn_ms;
  });
  std::printf("rss_kib_per_parked=%.17g spawn_ms=%.17g\n", rss_per, spawn_ms);
  return 0;
}

void parked_workload(const Settings& s, Reporter& out) {
  const std::size_t rounds = s.quick ? 20'000 : 200'000;
  for (std::size_t parked : {std::size_t{10'000}, std::size_t{100'000}}) {
    if (s.quick) parked /= 10;
    std::vector<ParkedRun> runs;
    for (std::size_t k = 0; k < std::max<std::size_t>(s.repeat, 1); ++k) {
      runs.push_back(parked_once(parked, rounds, s.workers));
      measure_in_fresh_process(runs.back(), parked, s.workers);
    }
    const std::string p = param(parked, s.workers);
    out.add("weft", "parked", p, "spawn_ms", median_of(runs, &ParkedRun::spawn_ms));
    out.add("weft", "parked", p, "ns_per_op", median_of(runs, &ParkedRun::ns_per_op));
    out.add("weft", "parked", p, "ns_per_op_unparked", median_of(runs, &ParkedRun::ns_per_op_unparked));
    out.add("weft", "parked", p, "release_ms", median_of(runs, &ParkedRun::release_ms));
    out.add("weft", "parked", p, "rss_kib_per_parked", median_of(runs, &ParkedRun::rss_kib_per_parked));
    out.add("weft", "parked", p, "spawn_ms_warm", median_of(runs, &ParkedRun::spawn_ms_warm));
    out.add("weft", "parked", p, "release_ms_warm", median_of(runs, &ParkedRun::release_ms_warm));
    out.add("weft", "parked", p, "spawn_ms_round10", median_of(runs, &ParkedRun::spawn_ms_round10));
    out.add("weft", "parked", p, "release_ms_round10", median_of(runs, &ParkedRun::release_ms_round10));
    out.add("weft", "parked", p, "spawn_ms_fresh_process", median_of(runs, &ParkedRun::spawn_ms_fresh_process));
  }
}

}  // namespace bench
