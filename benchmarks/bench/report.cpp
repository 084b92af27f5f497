// Output of weft-bench: BENCHMARKS.md's line format, medians, wrong answers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "bench.hpp"

namespace bench {

void Reporter::add(const std::string& peer, const std::string& workload, const std::string& param,
                   const std::string& metric, double value) {
  // One decimal, as BENCHMARKS.md shows; small values keep three so that
  // they do not print as 0.0. Speedups are compared with each other (1.95
  // against 2.04), so they keep three significant digits.
  char text[32];
  if (is_ratio(metric)) {
    std::snprintf(text, sizeof text, "%s", three_significant(value).c_str());
  } else {
    std::snprintf(text, sizeof text, value < 1 ? "%.3f" : "%.1f", value);
  }
  std::printf("peer=%s workload=%s param=%s metric=%s value=%s\n", peer.c_str(), workload.c_str(), param.c_str(),
              metric.c_str(), text);
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

std::string three_significant(double v) {
  char text[32];
  if (!std::isfinite(v) || v == 0) {
    std::snprintf(text, sizeof text, "%g", v);
    return text;
  }
  // Decimals for three significant digits at v's magnitude; printf's
  // rounding can carry into the next magnitude (9.996 -> "10.00"), in which
  // case one decimal fewer is right.
  const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  int decimals = std::max(0, 2 - magnitude);
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  if (decimals > 0 && std::fabs(std::strtod(text, nullptr)) >= std::pow(10.0, magnitude + 1)) {
    std::snprintf(text, sizeof text, "%.*f", decimals - 1, v);
  }
  return text;
}

std::string param(std::size_t size, std::size_t workers) { return std::to_string(size) + "@" + std::to_string(workers); }

std::string param(std::size_t size) { return std::to_string(size); }

}  // namespace bench
