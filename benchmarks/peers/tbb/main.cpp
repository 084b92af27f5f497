// weft-peer-tbb: the weft-bench workloads that oneTBB can express (spawn,
// fib, mutex; BENCHMARKS.md), written the way oneTBB's documentation writes
// fork-join code, printing weft-bench's lines with peer=tbb. mutex's
// ns_per_op is tbb::mutex (it spins, then blocks the thread: the counterpart
// of weft::Mutex, which parks); ns_per_op_spin is tbb::spin_mutex (it never
// blocks, and its unlock is a plain store). Not part of the
// build or of CI: benchmarks/peers/run.sh builds it against Debian's
// libtbb-dev. --workers sets tbb::global_control's max_allowed_parallelism
// (a list runs each workload once per value); each figure is the median of
// --repeat runs.
#include <oneapi/tbb/mutex.h>
#include <tbb/global_control.h>
#include <tbb/spin_mutex.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

bool quick = false;
int repeat = 5;
std::size_t workers = 1;

[[noreturn]] void wrong(const char* workload, const std::string& what) {
  std::fprintf(stderr, "weft-peer-tbb: %s: wrong result: %s\n", workload, what.c_str());
  std::exit(1);
}

double median(const std::function<double()>& fn) {
  std::vector<double> runs;
  for (int i = 0; i < repeat; ++i) runs.push_back(fn());
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

void emit(const char* workload, std::size_t n, const char* metric, double v) {
  std::printf("peer=tbb workload=%s param=%zu@%zu metric=%s value=%.6g\n", workload, n, workers, metric, v);
}

double ns_since(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

void spawn() {
  const std::size_t n = quick ? 100'000 : 1'000'000;
  emit("spawn", n, "ns_per_op", median([&] {
         std::atomic<std::size_t> ran{0};
         tbb::task_group tg;
         const auto t0 = Clock::now();
         for (std::size_t i = 0; i < n; ++i) tg.run([&] { ran.fetch_add(1, std::memory_order_relaxed); });
         tg.wait();
         const double per = ns_since(t0) / static_cast<double>(n);
         if (ran.load() != n) wrong("spawn", std::to_string(ran.load()));
         return per;
       }));
}

__attribute__((noinline)) std::uint64_t fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

std::uint64_t fib_tbb(int n) {
  if (n < 2) return static_cast<std::uint64_t>(n);
  std::uint64_t left = 0;
  tbb::task_group tg;
  tg.run([&] { left = fib_tbb(n - 1); });
  const std::uint64_t right = fib_tbb(n - 2);
  tg.wait();
  return left + right;
}

void fib() {
  volatile int size = quick ? 25 : 30;
  const int n = size;
  const std::uint64_t expect = fib_serial(n);
  emit("fib", static_cast<std::size_t>(n), "ms", median([&] {
         const auto t0 = Clock::now();
         const std::uint64_t got = fib_tbb(n);
         const double ms = ns_since(t0) / 1e6;
         if (got != expect) wrong("fib", std::to_string(got));
         return ms;
       }));
}

template <class Body>
double increments_ns(std::size_t tasks, std::size_t each, Body body) {
  tbb::task_group tg;
  const auto t0 = Clock::now();
  for (std::size_t t = 0; t < tasks; ++t) {
    tg.run([&] {
      for (std::size_t i = 0; i < each; ++i) body();
    });
  }
  tg.wait();
  return ns_since(t0) / static_cast<double>(tasks * each);
}

// ns per increment of a counter under a Mutex (tbb::mutex or spin_mutex).
template <class Mutex>
double locked_increments_ns(std::size_t tasks, std::size_t each) {
  Mutex m;
  std::size_t counter = 0;
  const double ns = increments_ns(tasks, each, [&] {
    typename Mutex::scoped_lock guard(m);
    ++counter;
  });
  if (counter != tasks * each) wrong("mutex", std::to_string(counter));
  return ns;
}

void mutex() {
  const std::size_t tasks = 1000, each = quick ? 100 : 1000, n = tasks * each;
  emit("mutex", n, "ns_per_op", median([&] { return locked_increments_ns<tbb::mutex>(tasks, each); }));
  emit("mutex", n, "ns_per_op_spin", median([&] { return locked_increments_ns<tbb::spin_mutex>(tasks, each); }));
  emit("mutex", n, "ns_per_op_atomic", median([&] {
         std::atomic<std::size_t> counter{0};
         const double ns = increments_ns(tasks, each, [&] { counter.fetch_add(1, std::memory_order_relaxed); });
         if (counter.load() != n) wrong("mutex", std::to_string(counter.load()));
         return ns;
       }));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> counts{std::max(1u, std::thread::hardware_concurrency())};
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
      if (repeat < 1) {
        std::fprintf(stderr, "weft-peer-tbb: --repeat: must be at least 1\n");
        return 2;
      }
    } else if (a == "--workers" && i + 1 < argc) {
      counts.clear();
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 1) {
          std::fprintf(stderr, "weft-peer-tbb: --workers: not a list of positive numbers\n");
          return 2;
        }
        counts.push_back(static_cast<std::size_t>(v));
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      names.push_back(a);
    }
  }
  if (names.empty()) names = {"spawn", "fib", "mutex"};
  for (const auto& name : names) {
    void (*fn)() = name == "spawn" ? &spawn : name == "fib" ? &fib : name == "mutex" ? &mutex : nullptr;
    if (fn == nullptr) {
      std::fprintf(stderr, "weft-peer-tbb: unknown workload %s\n", name.c_str());
      return 2;
    }
    for (std::size_t w : counts) {
      workers = w;
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, w);
      fn();
    }
  }
}
