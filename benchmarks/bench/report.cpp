// Output of weft-bench: BENCHMARKS.md's line format, medians, wrong answers.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "bench.hpp"

namespace bench {

void Reporter::add(const std::string& peer, const std::string& workload, const std::string& param,
                   const std::string& metric, double value) {
  // One decimal, as BENCHMARKS.md shows; small values (a speedup below 1)
  // keep three so that they do not print as 0.0.
  std::printf(value < 1 ? "peer=%s workload=%s param=%s metric=%s value=%.3f\n"
                        : "peer=%s workload=%s param=%s metric=%s value=%.1f\n",
              peer.c_str(), workload.c_str(), param.c_str(), metric.c_str(), value);
  std::fflush(stdout);
  figures_.push_back({peer, workload, param, metric, value});
}

void add_against_single_core(Reporter& out, const std::string& workload, std::size_t size, std::size_t workers,
                             double weft_ms, double single_core_ms) {
  out.add("weft", workload, param(size, workers), "ms", weft_ms);
  out.add("single-core", workload, param(size), "ms", single_core_ms);
  out.add("weft", workload, param(size, workers), "speedup", single_core_ms / weft_ms);
}

void wrong(const std::string& workload, const std::string& what) {
  std::fprintf(stderr, "weft-bench: %s: wrong answer: %s\n", workload.c_str(), what.c_str());
  std::exit(1);
}

double median_of(std::size_t repeat, const std::function<double()>& fn) {
  std::vector<double> runs;
  for (std::size_t i = 0; i < std::max<std::size_t>(repeat, 1); ++i) runs.push_back(fn());
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

std::string param(std::size_t size, std::size_t workers) { return std::to_string(size) + "@" + std::to_string(workers); }

std::string param(std::size_t size) { return std::to_string(size); }

}  // namespace bench
