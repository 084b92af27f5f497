// weft::metrics_text(): a RuntimeMetrics snapshot in the Prometheus text
// exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// The rules it keeps: one line per sample, "\n" after every line including
// the last; each metric's "# HELP" and "# TYPE" once, before its samples,
// and all its samples together; names match [a-zA-Z_:][a-zA-Z0-9_:]* and
// start with weft_; counters end in _total; label values are quoted, with
// backslash, double quote and line feed escaped (ours never contain them:
// worker indices and park_reason_name()s); a histogram is its _bucket
// samples with ascending le, cumulative, the last le="+Inf" equal to
// _count, then _sum and _count. Numbers are integers, except le and _sum,
// which are seconds written as the shortest decimal that reads back the
// same (std::to_chars).
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "weft/metrics.hpp"
#include "weft/runtime.hpp"

namespace weft {

namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void header(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // our own text: no backslash or line feed to escape
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // name{label="value"} v   (no braces when label is empty)
  void sample(std::string_view name, std::string_view label, std::string_view value, std::uint64_t v) {
    out_ += name;
    if (!label.empty()) {
      out_ += '{';
      out_ += label;
      out_ += "=\"";
      out_ += value;
      out_ += "\"}";
    }
    out_ += ' ';
    number(v);
    out_ += '\n';
  }

  void gauge(std::string_view name, std::string_view help, std::uint64_t v) {
    header(name, "gauge", help);
    sample(name, {}, {}, v);
  }
  void counter(std::string_view name, std::string_view help, std::uint64_t v) {
    header(name, "counter", help);
    sample(name, {}, {}, v);
  }

  template <class Get>
  void per_worker(const RuntimeMetrics& m, std::string_view name, std::string_view type, std::string_view help,
                  Get get) {
    header(name, type, help);
    for (std::size_t i = 0; i < m.per_worker.size(); ++i) {
      char idx[24];
      const auto r = std::to_chars(idx, idx + sizeof idx, i);
      sample(name, "worker", std::string_view(idx, static_cast<std::size_t>(r.ptr - idx)), get(m.per_worker[i]));
    }
  }

  void number(std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  void seconds(double s) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, s);
    out_.append(buf, r.ptr);
  }
  std::string& out() { return out_; }

 private:
  std::string& out_;
};

void histogram(Writer& w, const RunSliceHistogram& h) {
  constexpr std::string_view name = "weft_run_slice_seconds";
  w.header(name, "histogram",
           "Lengths of fiber run slices (switch-in to switch-out on a worker); Options::measure_run_slices.");
  std::string& out = w.out();
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < RunSliceHistogram::k_buckets; ++i) {
    cumulative += h.buckets[i];
    out += "weft_run_slice_seconds_bucket{le=\"";
    if (i + 1 == RunSliceHistogram::k_buckets) {
      out += "+Inf";
    } else {
      w.seconds(static_cast<double>(RunSliceHistogram::bucket_upper_ns(i)) / 1e9);
    }
    out += "\"} ";
    w.number(cumulative);
    out += '\n';
  }
  out += "weft_run_slice_seconds_sum ";
  w.seconds(static_cast<double>(h.sum_ns) / 1e9);
  out += "\nweft_run_slice_seconds_count ";
  // The +Inf bucket, not h.count: the two are written separately and may
  // differ by a slice in a live snapshot; the format requires equality.
  w.number(cumulative);
  out += '\n';
}

}  // namespace

std::string metrics_text(const Runtime& rt) { return metrics_text(rt.metrics()); }

std::string metrics_text(const RuntimeMetrics& m) {
  std::string out;
  out.reserve(4096 + 1024 * m.per_worker.size());
  Writer w(out);
  w.gauge("weft_workers", "Worker threads.", m.workers);
  w.gauge("weft_fibers_alive", "Tasks started and not finished (running, runnable or parked).", m.fibers_alive);
  w.gauge("weft_fibers_queued", "Tasks spawned and not started yet.", m.fibers_queued);
  w.counter("weft_fibers_spawned_total", "Tasks spawned.", m.fibers_spawned);
  w.counter("weft_fibers_started_total", "Tasks that began running.", m.fibers_started);
  w.counter("weft_fibers_finished_total", "Tasks that ended.", m.fibers_finished);
  w.header("weft_fibers_parked", "gauge", "Fibers parked now, by what they wait for.");
  for (std::size_t r = 0; r < k_park_reasons; ++r) {
    w.sample("weft_fibers_parked", "reason", park_reason_name(static_cast<ParkReason>(r)), m.parked_by_reason[r]);
  }
  w.counter("weft_fiber_parks_total", "Times a fiber parked.", m.parks);
  w.counter("weft_fiber_wakeups_total", "Times a parked fiber was resumed.", m.fiber_wakeups);
  w.gauge("weft_runnable", "Runnable fibers and tasks not running: every deque, runnext slot and shared queue.",
          m.runnable);
  w.gauge("weft_injector_depth", "Tasks and wake-ups queued from outside the runtime.", m.injector_depth);
  w.gauge("weft_global_queue_depth", "Yielded fibers waiting for a worker.", m.global_queue_depth);
  w.gauge("weft_urgent_queue_depth", "Cancelled fibers waiting to unwind.", m.urgent_queue_depth);
  w.counter("weft_steals_total", "Tasks taken from another worker's deque.", m.steals);
  w.gauge("weft_armed_timers", "Timers armed in the process (all runtimes).", m.armed_timers);
  w.gauge("weft_blocking_threads", "Threads in the blocking pool.", m.blocking_threads);
  w.gauge("weft_blocking_in_flight", "weft::blocking() calls queued or running.", m.blocking_in_flight);
  w.gauge("weft_blocking_queue_depth", "weft::blocking() calls not started by a pool thread yet.",
          m.blocking_queue_depth);
  w.per_worker(m, "weft_worker_local_queue_depth", "gauge", "Tasks in the worker's own deque.",
               [](const WorkerMetrics& x) { return std::uint64_t{x.local_queue_depth}; });
  w.per_worker(m, "weft_worker_runnext", "gauge", "1 if the worker's runnext slot holds a woken fiber.",
               [](const WorkerMetrics& x) { return std::uint64_t{x.runnext}; });
  w.per_worker(m, "weft_worker_steals_total", "counter", "Tasks the worker took from other workers.",
               [](const WorkerMetrics& x) { return x.steals; });
  w.per_worker(m, "weft_worker_parks_total", "counter", "Times a fiber parked on the worker.",
               [](const WorkerMetrics& x) { return x.parks; });
  w.per_worker(m, "weft_worker_sleeps_total", "counter", "Times the worker thread went to sleep.",
               [](const WorkerMetrics& x) { return x.sleeps; });
  w.per_worker(m, "weft_worker_wakeups_total", "counter", "Times the worker thread woke from sleep.",
               [](const WorkerMetrics& x) { return x.wakeups; });
  w.per_worker(m, "weft_worker_run_slices_total", "counter", "Fiber run slices started on the worker.",
               [](const WorkerMetrics& x) { return x.run_slices; });
  w.per_worker(m, "weft_worker_spawned_total", "counter", "Tasks spawned by fibers running on the worker.",
               [](const WorkerMetrics& x) { return x.fibers_spawned; });
  if (m.run_slices.enabled) {
    w.counter("weft_run_slice_overruns_total",
              "Run slices longer than Options::time_slice (a loop missing maybe_yield).", m.run_slices.overruns);
    histogram(w, m.run_slices);
  }
  return out;
}

}  // namespace weft
