// Spawns fibers on every core and prints what ran where: how many of them each
// worker ran, and a few that were stolen (started on one worker, finished on
// another after yielding).
//
//   ./build/examples/hello_workers [fibers]
#include <weft/weft.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const std::size_t fibers = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10000;
  weft::Runtime rt;  // one worker per core
  const std::size_t workers = rt.num_workers();
  std::vector<std::atomic<std::size_t>> ran_on(workers);
  std::atomic<std::size_t> migrated{0};

  const std::uint64_t checksum = rt.block_on([&] {
    std::vector<weft::JoinHandle<std::uint64_t>> handles;
    handles.reserve(fibers);
    for (std::size_t i = 0; i < fibers; ++i) {
      handles.push_back(weft::go([&, i] {
        const std::size_t before = weft::this_fiber::worker_index();
        std::uint64_t h = i;
        for (int k = 0; k < 2000; ++k) h = h * 6364136223846793005ull + 1442695040888963407ull;  // some work
        weft::this_fiber::yield();  // may resume on another worker
        const std::size_t after = weft::this_fiber::worker_index();
        ran_on[after].fetch_add(1, std::memory_order_relaxed);
        if (before != after) migrated.fetch_add(1, std::memory_order_relaxed);
        return h;
      }));
    }
    std::uint64_t sum = 0;
    for (auto& h : handles) sum += h.join();
    return sum;
  });

  std::printf("weft: %zu fibers on %zu workers (checksum %llx)\n", fibers, workers,
              static_cast<unsigned long long>(checksum));
  std::size_t total = 0;
  for (std::size_t w = 0; w < workers; ++w) {
    const std::size_t n = ran_on[w].load();
    total += n;
    std::printf("  worker %2zu finished %7zu fibers\n", w, n);
  }
  std::printf("  %zu fibers resumed on a different worker after yield()\n", migrated.load());
  if (total != fibers) {
    std::printf("error: %zu fibers finished, expected %zu\n", total, fibers);
    return 1;
  }
  return 0;
}
