// Workloads "spawn" and "pingpong" (BENCHMARKS.md): the cost of a fiber and
// of a rendezvous on an unbuffered channel.
#include <weft/weft.hpp>

#include <chrono>

#include "bench.hpp"

namespace bench {

void spawn_workload(const Settings& s, Reporter& out) {
  const std::size_t n = s.quick ? 100'000 : 1'000'000;
  weft::Runtime rt({.workers = s.workers});
  const double ns = median_of(s.repeat, [&] {
    return rt.block_on([&] { return spawn_round_ns(n, "spawn"); });
  });
  out.add("weft", "spawn", param(n, s.workers), "ns_per_op", ns);
}

double spawn_round_ns(std::size_t n, const std::string& workload) {
  std::atomic<std::size_t> ran{0};
  weft::WaitGroup wg;
  wg.add(static_cast<std::int64_t>(n));
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    weft::go([&] {
      ran.fetch_add(1, std::memory_order_relaxed);
      wg.done();
    }).detach();
  }
  wg.wait();
  const double per = ns_since(t0) / static_cast<double>(n);
  if (ran.load() != n) wrong(workload, "ran " + std::to_string(ran.load()) + " of " + std::to_string(n));
  return per;
}

double pingpong_round_trip_ns(std::size_t n, const std::string& workload) {
  weft::Channel<std::size_t> ping, pong;
  auto echo = weft::go([ping, pong]() mutable {
    while (auto v = ping.recv()) pong.send(*v + 1);
  });
  std::size_t sum = 0;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    ping.send(i);
    sum += *pong.recv();
  }
  const double per = ns_since(t0) / static_cast<double>(n);
  ping.close();
  echo.join();
  if (sum != n * (n + 1) / 2) wrong(workload, "pingpong sum " + std::to_string(sum));
  return per;
}

void pingpong_workload(const Settings& s, Reporter& out) {
  const std::size_t n = s.quick ? 100'000 : 1'000'000;
  weft::Runtime rt({.workers = s.workers});
  const double ns =
      median_of(s.repeat, [&] { return rt.block_on([&] { return pingpong_round_trip_ns(n, "pingpong"); }); });
  out.add("weft", "pingpong", param(n, s.workers), "ns_per_op", ns);
}

}  // namespace bench
