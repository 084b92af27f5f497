// weft-bench: the workloads of BENCHMARKS.md, each beside a plain
// single-core loop where the workload has one. This header is what every
// workload file sees: the run settings and the reporter.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

// Time since t0 on Clock, in milliseconds / nanoseconds.
inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
inline double ns_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

struct Settings {
  std::size_t workers = 1;  // for this run (a sweep calls each workload once per count)
  bool quick = false;       // sizes about 10x smaller
  std::size_t repeat = 3;   // median of this many runs
};

// One figure: printed at once in BENCHMARKS.md's line format and kept for
// --json and --report.
struct Figure {
  std::string peer, workload, param, metric;
  double value;
};

class Reporter {
 public:
  void add(const std::string& peer, const std::string& workload, const std::string& param, const std::string& metric,
           double value);
  const std::vector<Figure>& figures() const noexcept { return figures_; }

 private:
  std::vector<Figure> figures_;
};

// A workload with a single-core loop: weft's ms, the loop's ms and the
// speedup (loop / weft), in that order.
void add_against_single_core(Reporter& out, const std::string& workload, std::size_t size, std::size_t workers,
                             double weft_ms, double single_core_ms);

// From a fiber: spawns n detached fibers that each count themselves and
// waits for them; ns per spawn. A wrong count fails `workload`.
double spawn_round_ns(std::size_t n, const std::string& workload);

// From a fiber: two fibers pass a number back and forth over two unbuffered
// channels n times; ns per round trip. A wrong sum fails `workload`.
double pingpong_round_trip_ns(std::size_t n, const std::string& workload);

// Fails the whole program (exit code 1) with a message: a wrong answer.
[[noreturn]] void wrong(const std::string& workload, const std::string& what);

// Median of `repeat` calls of fn (each returns one measurement). fn is
// called exactly max(repeat, 1) times, one after another.
double median_of(std::size_t repeat, const std::function<double()>& fn);

// For a workload that measures several figures per run (a struct Run per
// run): the median of one figure over the runs, taken by median_of above
// (which hands them back one per call). runs must not be empty.
template <class Run>
double median_of(const std::vector<Run>& runs, double Run::*figure) {
  std::size_t next = 0;
  return median_of(runs.size(), [&] { return runs[next++].*figure; });
}

// v with three significant digits and no exponent ("1.95", "2.04", "0.0390",
// "12.3"): how a speedup prints in the lines, the --report table and --json.
// One decimal would print 1.95 and 2.04 both as 2.0.
std::string three_significant(double v);

// Metrics that are ratios (a speedup, scope_cost's *_ratio): they print
// with three significant digits.
inline bool is_ratio(const std::string& metric) {
  return metric == "speedup" || (metric.size() > 6 && metric.compare(metric.size() - 6, 6, "_ratio") == 0);
}

// What a run of this program in a fresh process ended with: its exit
// status (minus the signal number if a signal ended it) and everything it
// wrote to stdout and stderr.
struct FreshRun {
  int status = -1;
  std::string output;
};
// Runs this program again (/proc/self/exe) with args in a fresh process and
// waits for it. Throws std::system_error if it cannot be started.
FreshRun run_in_fresh_process(const std::vector<std::string>& args);

// The hidden --parked-rss-child P mode (parked.cpp): measures the RSS per
// parked fiber in this, a fresh process, and prints it for the parent.
int parked_rss_child(std::size_t parked, std::size_t workers);

// "size@workers" for weft lines, "size" for single-core lines.
std::string param(std::size_t size, std::size_t workers);
std::string param(std::size_t size);

// --report DIR: DIR/benchmarks.md (table) and DIR/speedup.{svg,png}
// through gnuplot. False (with a message) if something could not be made.
bool write_report(const std::string& dir, const Reporter& out, const std::string& command, const std::string& machine);

// The figures as a Markdown table: a row per workload, size and metric; a
// column for the single-core loop and one per worker count.
std::string report_table(const Reporter& out);

using Workload = void (*)(const Settings&, Reporter&);
struct Entry {
  const char* name;
  Workload run;
};
// Every workload, in BENCHMARKS.md's order.
const std::vector<Entry>& workloads();

}  // namespace bench
