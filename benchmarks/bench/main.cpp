// weft-bench: runs the workloads of BENCHMARKS.md (all, or those named) and
// prints one line per figure in its format.
//
//   weft-bench [--quick] [--workers N | --workers 1,2,4] [--repeat K]
//              [--json FILE] [--report DIR] [--trace FILE] [workload ...]
//
// --trace FILE traces the weft runs (WEFT_TRACE=FILE for every runtime the
// workloads start; docs/guide/seeing-inside.md): each runtime
// rewrites FILE at its shutdown, so FILE ends up holding the last weft run
// of the last workload named. Use it with one workload, --repeat 1 and one
// worker count (`weft-bench --trace /tmp/t.json --quick --repeat 1 spawn`).
// Traced figures are not comparable with untraced ones.
//
// Exit status: 0, or 1 when a workload computed a wrong answer, or 2 for a
// bad command line.
#include <weft/weft.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench.hpp"

namespace bench {
void spawn_workload(const Settings&, Reporter&);
void spawn_bursts_workload(const Settings&, Reporter&);
void completion_workload(const Settings&, Reporter&);
void fib_workload(const Settings&, Reporter&);
void skynet_workload(const Settings&, Reporter&);
void pingpong_workload(const Settings&, Reporter&);
void parked_workload(const Settings&, Reporter&);
void timers_workload(const Settings&, Reporter&);
void timers_contended_workload(const Settings&, Reporter&);
void idlewait_workload(const Settings&, Reporter&);
void mutex_workload(const Settings&, Reporter&);
void imbalance_workload(const Settings&, Reporter&);
void parsum_workload(const Settings&, Reporter&);
void parsum_reduce_workload(const Settings&, Reporter&);
void cancel_workload(const Settings&, Reporter&);
void cancel_loaded_workload(const Settings&, Reporter&);
void scope_cost_workload(const Settings&, Reporter&);
void sync_uncontended_workload(const Settings&, Reporter&);
void submit_workload(const Settings&, Reporter&);
void trace_cost_workload(const Settings&, Reporter&);

const std::vector<Entry>& workloads() {
  static const std::vector<Entry> all = {
      {"spawn", &spawn_workload},
      {"spawn_bursts", &spawn_bursts_workload},  // not in BENCHMARKS.md: the spawn round, 30 times in one runtime
      {"fib", &fib_workload},
      {"skynet", &skynet_workload},
      {"pingpong", &pingpong_workload},
      {"parked", &parked_workload},
      {"timers", &timers_workload},
      {"timers_contended", &timers_contended_workload},  // not in BENCHMARKS.md: timers beside a CPU hog per core
      {"idlewait", &idlewait_workload},
      {"mutex", &mutex_workload},
      {"imbalance", &imbalance_workload},
      {"parsum", &parsum_workload},
      {"parsum_reduce", &parsum_reduce_workload},  // not in BENCHMARKS.md: parsum through weft::parallel_reduce
      {"cancel", &cancel_workload},
      {"cancel_loaded", &cancel_loaded_workload},
      {"scope_cost", &scope_cost_workload},
      {"completion", &completion_workload},  // not in BENCHMARKS.md: JoinHandle::then against join per task
      {"sync_uncontended", &sync_uncontended_workload},  // issue 16: RWMutex, Once, Timer, timed Semaphore
      {"submit", &submit_workload},
      {"trace_cost", &trace_cost_workload},  // issue 18: tracing on against off
  };
  return all;
}
}  // namespace bench

namespace {

int usage(const char* argv0, const std::string& why) {
  std::fprintf(stderr, "weft-bench: %s\nusage: %s [--quick] [--workers N|1,2,4] [--repeat K] [--json FILE] [--report DIR] [--trace FILE] [workload ...]\n",
               why.c_str(), argv0);
  return 2;
}

bool parse_count(const std::string& text, std::size_t& out) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v == 0) return false;
  out = v;
  return true;
}

void write_json(const std::string& path, const bench::Reporter& out) {
  std::ofstream f(path);
  f << "[\n";
  const auto& figs = out.figures();
  for (std::size_t i = 0; i < figs.size(); ++i) {
    const auto& g = figs[i];
    f << "  {\"peer\": \"" << g.peer << "\", \"workload\": \"" << g.workload << "\", \"param\": \"" << g.param
      << "\", \"metric\": \"" << g.metric << "\", \"value\": ";
    // Speedups as the lines print them (bench.hpp); other figures with the
    // stream's six significant digits.
    if (bench::is_ratio(g.metric)) {
      f << bench::three_significant(g.value);
    } else {
      f << g.value;
    }
    f << "}" << (i + 1 < figs.size() ? "," : "") << "\n";
  }
  f << "]\n";
}

// "N cores, <CPU model>" from /proc/cpuinfo.
std::string machine_description() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return std::to_string(weft::default_worker_count()) + " cores, " + model;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool repeat_given = false;
  std::size_t repeat = 3;
  std::vector<std::size_t> worker_counts = {weft::default_worker_count()};
  std::string json, report, trace;
  std::vector<bench::Entry> chosen;
  std::size_t parked_rss_child = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--repeat" || arg == "--workers" || arg == "--json" || arg == "--report" || arg == "--trace" ||
         arg == "--parked-rss-child") &&
        i + 1 == argc) {
      return usage(argv[0], arg + " needs a value");
    }
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--repeat") {
      if (!parse_count(argv[++i], repeat)) return usage(argv[0], "--repeat needs a positive number");
      repeat_given = true;
    } else if (arg == "--workers") {
      worker_counts.clear();
      const std::string list = argv[++i];
      for (std::size_t pos = 0; pos <= list.size();) {
        std::size_t end = list.find(',', pos);
        if (end == std::string::npos) end = list.size();
        std::size_t n = 0;
        if (!parse_count(list.substr(pos, end - pos), n)) return usage(argv[0], "--workers needs N or a list like 1,2,4");
        worker_counts.push_back(n);
        pos = end + 1;
      }
    } else if (arg == "--json") {
      json = argv[++i];
    } else if (arg == "--report") {
      report = argv[++i];
    } else if (arg == "--trace") {
      trace = argv[++i];
      if (trace.empty()) return usage(argv[0], "--trace needs a file name");
    } else if (arg == "--parked-rss-child") {
      // Not in the usage: how the parked workload measures its memory in a
      // fresh process (parked.cpp).
      if (!parse_count(argv[++i], parked_rss_child)) {
        return usage(argv[0], "--parked-rss-child needs a positive number");
      }
    } else {
      bool found = false;
      for (const auto& e : bench::workloads()) {
        if (arg == e.name) {
          chosen.push_back(e);
          found = true;
        }
      }
      if (!found) return usage(argv[0], "unknown workload or flag: " + arg);
    }
  }
  if (parked_rss_child != 0) return bench::parked_rss_child(parked_rss_child, worker_counts.front());
  if (chosen.empty()) chosen = bench::workloads();
  if (quick && !repeat_given) repeat = 1;
  // Every runtime the workloads start reads it (Runtime::Options::trace_file
  // is left empty by them).
  if (!trace.empty() && ::setenv("WEFT_TRACE", trace.c_str(), 1) != 0) return usage(argv[0], "--trace: setenv failed");

  bench::Reporter out;
  for (const auto& e : chosen) {
    for (std::size_t workers : worker_counts) {
      bench::Settings s;
      s.workers = workers;
      s.quick = quick;
      s.repeat = repeat;
      e.run(s, out);
    }
  }
  if (!json.empty()) write_json(json, out);
  if (!report.empty()) {
    std::string command;
    for (int i = 0; i < argc; ++i) {
      if (i != 0) command += ' ';
      command += argv[i];
    }
    std::printf("\n%s\n", bench::report_table(out).c_str());
    if (!bench::write_report(report, out, command, machine_description())) return 1;
    std::printf("report: %s/benchmarks.md; picture: %s/speedup.svg and %s/speedup.png\n", report.c_str(),
                report.c_str(), report.c_str());
  }
  return 0;
}
