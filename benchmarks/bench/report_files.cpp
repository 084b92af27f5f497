// weft-bench --report DIR: the figures as a Markdown table and a picture
// (speedup over the single-core loop per workload and worker count),
// rendered by gnuplot to SVG and PNG.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "bench.hpp"

namespace bench {

namespace {

std::string workers_of(const std::string& param) {
  const auto at = param.find('@');
  return at == std::string::npos ? "" : param.substr(at + 1);
}

}  // namespace

bool write_report(const std::string& dir, const Reporter& out, const std::string& command, const std::string& machine) {
  ::mkdir(dir.c_str(), 0755);
  {
    std::ofstream md(dir + "/benchmarks.md");
    md << "Command: `" << command << "`\n\nMachine: " << machine << "\n\n";
    md << "| peer | workload | param | metric | value |\n|---|---|---|---|---|\n";
    for (const Figure& f : out.figures()) {
      md << "| " << f.peer << " | " << f.workload << " | " << f.param << " | " << f.metric << " | " << f.value
         << " |\n";
    }
    if (!md) return false;
  }
  // speedup.dat: one row per workload with a speedup, one column per worker count.
  std::map<std::string, std::map<std::string, double>> speedup;
  std::set<int> worker_counts;
  for (const Figure& f : out.figures()) {
    if (f.metric != "speedup") continue;
    const std::string w = workers_of(f.param);
    speedup[f.workload][w] = f.value;
    worker_counts.insert(std::atoi(w.c_str()));
  }
  if (speedup.empty()) return true;  // nothing to draw (a subset without speedups)
  {
    std::ofstream dat(dir + "/speedup.dat");
    dat << "# workload";
    for (int w : worker_counts) dat << " " << w;
    dat << "\n";
    for (const auto& [workload, by_workers] : speedup) {
      dat << workload;
      for (int w : worker_counts) {
        auto it = by_workers.find(std::to_string(w));
        dat << " " << (it == by_workers.end() ? 0.0 : it->second);
      }
      dat << "\n";
    }
  }
  {
    std::ofstream gp(dir + "/speedup.gp");
    gp << "set style data histograms\nset style histogram clustered\nset style fill solid 0.8\n"
          "set key top left title 'workers'\nset ylabel 'speedup over the single-core loop'\n"
          "set yrange [0:*]\nset offsets 0, 0, 0.3, 0\nset grid ytics\n";
    std::string plot = "plot ";
    int column = 2;
    for (int w : worker_counts) {
      if (column > 2) plot += ", ";
      plot += "'speedup.dat' using " + std::to_string(column) + ":xtic(1) title '" + std::to_string(w) + "'";
      ++column;
    }
    gp << "set terminal svg size 800,450\nset output 'speedup.svg'\n" << plot << "\n";
    gp << "set terminal pngcairo size 800,450\nset output 'speedup.png'\n" << plot << "\n";
  }
  const std::string run = "cd '" + dir + "' && gnuplot speedup.gp";
  const int status = std::system(run.c_str());
  if (status != 0) {
    std::fprintf(stderr, "weft-bench: gnuplot failed or is missing (apt-get install gnuplot-nox); the table is in %s\n",
                 dir.c_str());
    return false;
  }
  return true;
}

}  // namespace bench
