// Workload "spawn_bursts" (not in BENCHMARKS.md's table): the spawn round
// of "spawn" (a burst of detached empty fibers, then a wait for all)
// repeated many times in one runtime, as a service that spawns bursts for
// hours does. "spawn" takes the median of three rounds in a fresh runtime;
// what changes over many bursts is where the tasks' blocks lie: when the
// task allocator handed a burst its blocks in the order the last burst's
// tasks ended, that order drifted at every burst and a task cost 4x after
// thirty (docs/benchmarks.md, "task blocks that scatter over many bursts").
// Figures: ns per task over the first three bursts and over the last three
// (medians), and their ratio. Then, in the same runtime, three bursts of a
// million after 50 ms of idleness each, as a service whose bursts come
// with gaps: ns per task, their median (ns_per_op_after_idle, param
// 1000000@workers). An idle worker used to give the depot's spare spans
// back after 5 ms, and every such burst took its page faults again
// (docs/benchmarks.md, "spans that rest before they go").
#include <weft/weft.hpp>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

double median3(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

void spawn_bursts_workload(const Settings& s, Reporter& out) {
  const std::size_t n = 100'000;
  const std::size_t bursts = s.quick ? 10 : 30;
  const std::size_t big = 1'000'000;
  struct Run {
    double first = 0;
    double last = 0;
    double after_idle = 0;
  };
  std::vector<Run> runs;
  median_of(s.repeat, [&] {
    weft::Runtime rt({.workers = s.workers});
    std::vector<double> per;
    for (std::size_t b = 0; b < bursts; ++b) {
      per.push_back(rt.block_on([&] { return spawn_round_ns(n, "spawn_bursts"); }));
    }
    std::vector<double> after_idle;
    for (int b = 0; b < 3; ++b) {
      rt.block_on([&] { return spawn_round_ns(big, "spawn_bursts"); });  // the burst before the gap
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      after_idle.push_back(rt.block_on([&] { return spawn_round_ns(big, "spawn_bursts"); }));
    }
    runs.push_back({median3({per[0], per[1], per[2]}),
                    median3({per[bursts - 3], per[bursts - 2], per[bursts - 1]}), median3(after_idle)});
    return 0.0;
  });
  const double first = median_of(runs, &Run::first);
  const double last = median_of(runs, &Run::last);
  out.add("weft", "spawn_bursts", param(n, s.workers), "ns_per_op_first", first);
  out.add("weft", "spawn_bursts", param(n, s.workers), "ns_per_op_last", last);
  out.add("weft", "spawn_bursts", param(n, s.workers), "last_first_ratio", last / first);
  out.add("weft", "spawn_bursts", param(big, s.workers), "ns_per_op_after_idle", median_of(runs, &Run::after_idle));
}

}  // namespace bench
