// weft-bench --report DIR: the figures as a Markdown table (one row per
// workload, size and metric; one column for the single-core loop and one per
// worker count) and a picture of two panels, rendered by gnuplot to SVG and
// PNG: speedup over the single-core loop, and the per-operation costs, each
// per workload and worker count.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

// "size@workers" -> {size, workers}; a single-core "size" -> {size, 0}.
std::pair<std::string, int> split_param(const std::string& param) {
  const auto at = param.find('@');
  if (at == std::string::npos) return {param, 0};
  return {param.substr(0, at), std::atoi(param.c_str() + at + 1)};
}

// Compact cells; speedups with three significant digits (bench.hpp).
std::string format(const std::string& metric, double v) {
  if (is_ratio(metric)) return three_significant(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : v >= 1 ? "%.1f" : "%.3f", v);
  return buf;
}

struct Table {
  using Row = std::tuple<std::string, std::string, std::string>;  // workload, size, metric
  std::vector<Row> rows;                                          // first-seen order
  std::map<Row, std::map<int, double>> cells;                     // column 0: single-core
  std::set<int> worker_counts;

  explicit Table(const std::vector<Figure>& figures) {
    for (const Figure& f : figures) {
      const auto [size, workers] = split_param(f.param);
      const Row row{f.workload, size, f.metric};
      if (cells.find(row) == cells.end()) rows.push_back(row);
      cells[row][f.peer == "single-core" ? 0 : workers] = f.value;
      if (f.peer != "single-core") worker_counts.insert(workers);
    }
  }

  std::string markdown() const {
    std::ostringstream md;
    md << "| workload | size | metric | single-core |";
    for (int w : worker_counts) md << " weft @" << w << " |";
    md << "\n|---|---|---|---|";
    for (std::size_t i = 0; i < worker_counts.size(); ++i) md << "---|";
    md << "\n";
    for (const Row& row : rows) {
      const auto& by = cells.at(row);
      md << "| " << std::get<0>(row) << " | " << std::get<1>(row) << " | " << std::get<2>(row) << " | ";
      auto single = by.find(0);
      md << (single == by.end() ? "" : format(std::get<2>(row), single->second)) << " |";
      for (int w : worker_counts) {
        auto it = by.find(w);
        md << " " << (it == by.end() ? "" : format(std::get<2>(row), it->second)) << " |";
      }
      md << "\n";
    }
    return md.str();
  }

  // One data row per (workload, metric) whose metric passes `keep`, a column
  // per worker count; false if there is none.
  template <class Keep>
  bool write_dat(const std::string& path, Keep keep) const {
    std::ofstream dat(path);
    bool any = false;
    dat << "# label";
    for (int w : worker_counts) dat << " " << w;
    dat << "\n";
    for (const Row& row : rows) {
      const auto& [workload, size, metric] = row;
      if (!keep(metric)) continue;
      any = true;
      std::string label = workload;
      if (metric != "speedup" && metric != "ns_per_op") {
        label.append(" (").append(metric, metric.rfind('_') + 1, std::string::npos).append(")");
      }
      if (workload == "parked") label.append(" ").append(size);
      dat << '"' << label << '"';
      for (int w : worker_counts) {
        auto it = cells.at(row).find(w);
        dat << " " << (it == cells.at(row).end() ? 0.0 : it->second);
      }
      dat << "\n";
    }
    return any;
  }
};

std::string plot_command(const std::string& dat, const std::set<int>& worker_counts) {
  std::string plot = "plot ";
  int column = 2;
  for (int w : worker_counts) {
    if (column > 2) plot += ", ";
    plot += "'" + dat + "' using " + std::to_string(column) + ":xtic(1) title '" + std::to_string(w) + "'";
    ++column;
  }
  return plot + "\n";
}

}  // namespace

std::string report_table(const Reporter& out) { return Table(out.figures()).markdown(); }

bool write_report(const std::string& dir, const Reporter& out, const std::string& command, const std::string& machine) {
  ::mkdir(dir.c_str(), 0755);
  const Table table(out.figures());
  {
    std::ofstream md(dir + "/benchmarks.md");
    md << "Command: `" << command << "`\n\nMachine: " << machine << "\n\n" << table.markdown();
    md << "\nPicture: speedup.svg / speedup.png (left: speedup over the single-core loop, log scale; right: "
          "nanoseconds per operation).\n";
    if (!md) {
      std::fprintf(stderr, "weft-bench: cannot write %s/benchmarks.md\n", dir.c_str());
      return false;
    }
  }
  const bool speedups = table.write_dat(dir + "/speedup.dat", [](const std::string& m) { return m == "speedup"; });
  const bool costs = table.write_dat(dir + "/costs.dat", [](const std::string& m) { return m.rfind("ns_per_op", 0) == 0; });
  if (!speedups && !costs) return true;  // a subset with nothing to draw
  {
    std::ofstream gp(dir + "/speedup.gp");
    const std::string panels =
        std::string("set multiplot layout 1,2\n") +
        "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
        "set key top left title 'workers'\nset grid ytics\nset xtics rotate by -30\n" +
        (speedups ? "set title 'speedup over the single-core loop'\nset logscale y\nset yrange [*:*]\n" +
                        plot_command("speedup.dat", table.worker_counts)
                  : std::string()) +
        (costs ? "set title 'cost per operation (ns)'\nunset logscale y\nset yrange [0:*]\n" +
                     plot_command("costs.dat", table.worker_counts)
               : std::string()) +
        "unset multiplot\n";
    gp << "set terminal svg size 1100,480 font 'sans,11'\nset output 'speedup.svg'\n" << panels;
    gp << "set terminal pngcairo size 1100,480 font 'sans,10'\nset output 'speedup.png'\n" << panels;
  }
  const std::string run = "cd '" + dir + "' && gnuplot speedup.gp";
  if (std::system(run.c_str()) != 0) {
    std::fprintf(stderr, "weft-bench: gnuplot failed or is missing (apt-get install gnuplot-nox); the table is in %s\n",
                 dir.c_str());
    return false;
  }
  return true;
}

}  // namespace bench
