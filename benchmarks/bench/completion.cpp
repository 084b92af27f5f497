// Workload "completion" (issue 16; not in BENCHMARKS.md's table): what a
// plain thread pays to learn that a task finished, per task. A producer
// thread spawns n small tasks into the runtime and learns of each one's end
//   ns_per_op       through JoinHandle::then (a callback counts it; the
//                   thread waits once, at the end, for the count);
//   ns_per_op_join  by joining each handle in order (the thread blocks per
//                   task: what then() exists to avoid);
//   ns_per_op_detach with no completion at all (spawn + detach; a
//                   WaitGroup at the end): the floor.
#include <weft/weft.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

std::uint64_t body(std::size_t i) { return i * 2654435761u; }

double with_then(weft::Runtime& rt, std::size_t n) {
  std::atomic<std::size_t> seen{0};
  std::atomic<std::uint64_t> sum{0};
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    rt.spawn([i] { return body(i); }).then([&](weft::JoinHandle<std::uint64_t> done) {
      sum.fetch_add(done.join(), std::memory_order_relaxed);
      seen.fetch_add(1, std::memory_order_release);
    });
  }
  while (seen.load(std::memory_order_acquire) != n) std::this_thread::yield();
  const double per = ns_since(t0) / static_cast<double>(n);
  std::uint64_t want = 0;
  for (std::size_t i = 0; i < n; ++i) want += body(i);
  if (sum.load() != want) wrong("completion", "then: wrong sum");
  return per;
}

double with_join(weft::Runtime& rt, std::size_t n) {
  std::uint64_t sum = 0, want = 0;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) sum += rt.spawn([i] { return body(i); }).join();
  const double per = ns_since(t0) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) want += body(i);
  if (sum != want) wrong("completion", "join: wrong sum");
  return per;
}

double with_detach(weft::Runtime& rt, std::size_t n) {
  std::atomic<std::uint64_t> sum{0};
  weft::WaitGroup wg;
  wg.add(static_cast<std::int64_t>(n));
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    rt.spawn([i, &sum, &wg] {
      sum.fetch_add(body(i), std::memory_order_relaxed);
      wg.done();
    }).detach();
  }
  wg.wait();
  const double per = ns_since(t0) / static_cast<double>(n);
  std::uint64_t want = 0;
  for (std::size_t i = 0; i < n; ++i) want += body(i);
  if (sum.load() != want) wrong("completion", "detach: wrong sum");
  return per;
}

}  // namespace

void completion_workload(const Settings& s, Reporter& out) {
  const std::size_t n = s.quick ? 20'000 : 200'000;
  weft::Runtime rt({.workers = s.workers});
  const double then_ns = median_of(s.repeat, [&] { return with_then(rt, n); });
  const double join_ns = median_of(s.repeat, [&] { return with_join(rt, n); });
  const double detach_ns = median_of(s.repeat, [&] { return with_detach(rt, n); });
  out.add("weft", "completion", param(n, s.workers), "ns_per_op", then_ns);
  out.add("weft", "completion", param(n, s.workers), "ns_per_op_join", join_ns);
  out.add("weft", "completion", param(n, s.workers), "ns_per_op_detach", detach_ns);
}

}  // namespace bench
