// Workload "mutex" (BENCHMARKS.md): 1000 fibers x 1000 increments of one
// counter under weft::Mutex, and the same with an atomic.
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <mutex>

#include "bench.hpp"

namespace bench {

namespace {

template <class Body>
double increments_ns(weft::Runtime& rt, std::size_t fibers, std::size_t each, Body body) {
  return rt.block_on([&] {
    weft::WaitGroup wg;
    wg.add(static_cast<std::int64_t>(fibers));
    const auto t0 = Clock::now();
    for (std::size_t f = 0; f < fibers; ++f) {
      weft::go([&] {
        for (std::size_t i = 0; i < each; ++i) body();
        wg.done();
      }).detach();
    }
    wg.wait();
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(fibers * each);
  });
}
}  // namespace

void mutex_workload(const Settings& s, Reporter& out) {
  const std::size_t fibers = 1000, each = s.quick ? 100 : 1000, n = fibers * each;
  weft::Runtime rt({.workers = s.workers});
  const double locked = median_of(s.repeat, [&] {
    weft::Mutex m;
    std::size_t counter = 0;
    const double ns = increments_ns(rt, fibers, each, [&] {
      std::lock_guard<weft::Mutex> guard(m);
      ++counter;
    });
    if (counter != n) wrong("mutex", "counter " + std::to_string(counter) + " != " + std::to_string(n));
    return ns;
  });
  const double atomic = median_of(s.repeat, [&] {
    std::atomic<std::size_t> counter{0};
    // relaxed: only the final count matters, read after every fiber ended.
    const double ns = increments_ns(rt, fibers, each, [&] { counter.fetch_add(1, std::memory_order_relaxed); });
    if (counter.load() != n) wrong("mutex", "atomic counter " + std::to_string(counter.load()));
    return ns;
  });
  out.add("weft", "mutex", param(n, s.workers), "ns_per_op", locked);
  out.add("weft", "mutex", param(n, s.workers), "ns_per_op_atomic", atomic);
}

}  // namespace bench
