// Workload "trace_cost" (issue 18): what tracing costs spawn and an
// unbuffered pingpong when it is on, as a ratio traced / untraced (1.00 =
// free). Each measurement runs on a runtime of its own, started for it: a
// traced one writes its trace to a temporary file when it shuts down
// (outside the timed part) and starts with empty buffers, so no round
// records into buffers already near their cap (a full buffer stops
// recording, which would make tracing look cheaper than it is). Rounds are
// small enough for every event to fit (50,000 spawns or round trips; 10,000
// with --quick; a spawn records about 6 events), and the workload checks
// that the trace dropped none.
// Rounds alternate ABBA, as scope_cost. What tracing costs when off is not
// measured here: that needs a build without it (docs/benchmarks.md).
//
// Also record_floor_ns: what a traced spawn must record, alone, on one
// thread, with no scheduler: the two events every spawn leaves (its spawn
// mark and its fiber's run slice), each with one read of the trace clock,
// appended to a fresh lane (lib/diagnostics/trace_buffer.hpp, so fresh
// memory as a traced runtime's lane gets it). spawn_floor_ratio is
// (spawn_ns + record_floor_ns) / spawn_ns: the least spawn_ratio any trace
// that timestamps both events can reach on this machine.
#include <weft/weft.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench.hpp"
#include "diagnostics/trace_buffer.hpp"

namespace bench {

namespace {

// The trace's count of events dropped at a full buffer (trace-format's
// otherData.dropped_events), or -1 if the file does not say.
long dropped_events(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const std::string key = "\"dropped_events\":";
  const std::size_t at = s.find(key);
  if (at == std::string::npos) return -1;
  return std::strtol(s.c_str() + at + key.size(), nullptr, 10);
}

// Nanoseconds per spawn to record its two events alone (see above).
double record_floor_ns(std::size_t n) {
  using weft::detail::TraceBuffer;
  using weft::detail::TraceEvent;
  using weft::detail::TraceKind;
  auto lane = std::make_unique<TraceBuffer>(0);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    TraceEvent spawn;
    spawn.ts = weft::detail::trace_ticks();
    spawn.kind = TraceKind::spawn;
    spawn.a = 1;
    spawn.b = i + 2;
    lane->add(spawn);
    TraceEvent slice;
    slice.ts = weft::detail::trace_ticks();
    slice.kind = TraceKind::slice;
    slice.a = i + 2;
    slice.b = 40;
    lane->add(slice);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  if (lane->size() != 2 * n) wrong("trace_cost", "the floor's lane lost events");
  return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(n);
}

}  // namespace

void trace_cost_workload(const Settings& s, Reporter& out) {
  const std::size_t n = s.quick ? 10'000 : 50'000;
  const std::string path = "/tmp/weft-bench-trace-cost-" + std::to_string(::getpid()) + ".json";
  auto measure = [&](bool traced, bool spawn) {
    weft::Runtime::Options options{.workers = s.workers};
    if (traced) options.trace_file = path;
    double ns = 0;
    {
      weft::Runtime rt(options);
      ns = rt.block_on([&] { return spawn ? spawn_round_ns(n, "trace_cost") : pingpong_round_trip_ns(n, "trace_cost"); });
    }
    if (traced) {
      const long dropped = dropped_events(path);
      if (dropped != 0) wrong("trace_cost", "the trace dropped events (" + std::to_string(dropped) + "): rounds too big");
    }
    return ns;
  };
  std::vector<double> plain_spawn, traced_spawn, plain_pp, traced_pp, floor;
  for (std::size_t r = 0; r < std::max<std::size_t>(s.repeat, 1); ++r) {
    floor.push_back(record_floor_ns(n));
    for (bool traced : {r % 2 == 1, r % 2 == 0}) (traced ? traced_spawn : plain_spawn).push_back(measure(traced, true));
    for (bool traced : {r % 2 == 1, r % 2 == 0}) (traced ? traced_pp : plain_pp).push_back(measure(traced, false));
  }
  std::remove(path.c_str());
  std::size_t next = 0;
  auto median = [&](std::vector<double>& v) {
    next = 0;
    return median_of(v.size(), [&] { return v[next++]; });
  };
  const double ps = median(plain_spawn), ts = median(traced_spawn);
  const double pp = median(plain_pp), tp = median(traced_pp);
  const double fl = median(floor);
  out.add("weft", "trace_cost", param(n, s.workers), "spawn_ns", ps);
  out.add("weft", "trace_cost", param(n, s.workers), "spawn_ns_traced", ts);
  out.add("weft", "trace_cost", param(n, s.workers), "spawn_ratio", ts / ps);
  out.add("weft", "trace_cost", param(n, s.workers), "record_floor_ns", fl);
  out.add("weft", "trace_cost", param(n, s.workers), "spawn_floor_ratio", (ps + fl) / ps);
  out.add("weft", "trace_cost", param(n, s.workers), "pingpong_ns", pp);
  out.add("weft", "trace_cost", param(n, s.workers), "pingpong_ns_traced", tp);
  out.add("weft", "trace_cost", param(n, s.workers), "pingpong_ratio", tp / pp);
}

}  // namespace bench
