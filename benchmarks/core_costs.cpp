// Raw costs of the runtime core, one line per figure in the benchmark format
// of BENCHMARKS.md:
//   peer=weft workload=<name> param=<n>@<workers> metric=ns_per_op value=<v>
// Each figure is the median of --repeat runs (default 5). Sizes: --quick
// divides them by 10.
//
//   context_switch  a pair of raw switches (fiber -> loop -> fiber), no scheduler
//   yield           this_fiber::yield() with nothing else runnable: both switches
//                   plus a trip through the injection queue
//   spawn_join      a fiber spawns an empty fiber and joins it, sequentially
//   spawn_many      a fiber spawns n empty fibers, then joins them all (per fiber)
//   chan_roundtrip  two fibers pass an int back and forth over two unbuffered
//                   channels (per round trip: two rendezvous, two park/unpark)
//   chan_buffered   one fiber sends then receives on a buffered channel (per pair)
//   select_ready    a select over two ready buffered channels (per select)
//   mutex_free      lock + unlock of an uncontended weft::Mutex
//   mutex_contended 1000 fibers x n/1000 increments of one counter under a
//                   weft::Mutex (per increment)
//   select_after    a select of a ready channel against weft::after(1s): the
//                   channel wins, the timer is armed and cancelled (per select)
//   select_timeout  the same against on_recv(weft::timeout(1s)): a channel
//                   made and dropped per select (its timer is armed only if
//                   a fiber parks on it, so here never)
//   sleep_1us       this_fiber::sleep_for(1us): arm, fire, park, wake (per sleep)
//   timeout_1us     weft::timeout(1us).recv() in a fiber: a channel, its close
//                   timer armed as the fiber parks, fired, the fiber woken
//   maybe_yield     this_fiber::maybe_yield() inside the default 10 ms slice
//   blocking_call   weft::blocking(f) round trip to the pool with a trivial f
// The workloads of BENCHMARKS.md are weft-bench's (benchmarks/bench/).
#include <weft/weft.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <sys/mman.h>
#include <vector>

#include "scheduling/context_switch.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report(const char* workload, std::size_t n, std::size_t workers, double ns) {
  std::printf("peer=weft workload=%s param=%zu@%zu metric=ns_per_op value=%.1f\n", workload, n, workers, ns);
  std::fflush(stdout);
}

// Two contexts on one thread bouncing control back and forth.
struct Bounce {
  weft::detail::ExecContext loop, fiber;
  std::size_t left = 0;
};
Bounce* g_bounce = nullptr;

void bounce_entry(void*) {
  for (;;) weft::detail::switch_context(g_bounce->fiber, g_bounce->loop);
}

double context_switch_ns(std::size_t n) {
  constexpr std::size_t k_stack = 64 * 1024;
  void* stack = ::mmap(nullptr, k_stack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Bounce b;
  g_bounce = &b;
  weft::detail::adopt_thread_context(b.loop);
  weft::detail::make_context(b.fiber, stack, k_stack, &bounce_entry, nullptr);
  weft::detail::switch_context(b.loop, b.fiber);  // first entry
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) weft::detail::switch_context(b.loop, b.fiber);
  auto dt = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  // The fiber stays suspended forever; its stack is simply unmapped.
  ::munmap(stack, k_stack);
  return dt / static_cast<double>(n);
}

double timed(weft::Runtime& rt, std::size_t n, const std::function<void(std::size_t)>& body) {
  return rt.block_on([&] {
    auto t0 = Clock::now();
    body(n);
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(n);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t scale = 1, repeat = 5;
  std::vector<std::size_t> worker_counts = {1, weft::default_worker_count()};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) scale = 10;
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--workers") && i + 1 < argc) {
      worker_counts.clear();
      std::string list = argv[++i];
      for (std::size_t pos = 0; pos < list.size();) {
        std::size_t end = list.find(',', pos);
        if (end == std::string::npos) end = list.size();
        worker_counts.push_back(std::strtoul(list.substr(pos, end - pos).c_str(), nullptr, 10));
        pos = end + 1;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--repeat K] [--workers 1,2,4]\n", argv[0]);
      return 2;
    }
  }
  if (repeat == 0) repeat = 1;
  worker_counts.erase(std::unique(worker_counts.begin(), worker_counts.end()), worker_counts.end());

  {
    const std::size_t n = 10'000'000 / scale;
    std::vector<double> runs;
    for (std::size_t r = 0; r < repeat; ++r) runs.push_back(context_switch_ns(n));
    report("context_switch", n, 1, median(runs));
  }

  for (std::size_t workers : worker_counts) {
    weft::Runtime rt({.workers = workers});
    auto measure = [&](const char* name, std::size_t n, const std::function<void(std::size_t)>& body) {
      std::vector<double> runs;
      for (std::size_t r = 0; r < repeat; ++r) runs.push_back(timed(rt, n, body));
      report(name, n, workers, median(runs));
    };
    measure("yield", 2'000'000 / scale, [](std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) weft::this_fiber::yield();
    });
    measure("spawn_join", 1'000'000 / scale, [](std::size_t n) {
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) sum += weft::go([i] { return i; }).join();
      if (sum != n * (n - 1) / 2) std::abort();  // checks its own answer
    });
    measure("spawn_many", 1'000'000 / scale, [](std::size_t n) {
      std::vector<weft::JoinHandle<std::size_t>> hs;
      hs.reserve(n);
      for (std::size_t i = 0; i < n; ++i) hs.push_back(weft::go([i] { return i; }));
      std::size_t sum = 0;
      for (auto& h : hs) sum += h.join();
      if (sum != n * (n - 1) / 2) std::abort();
    });
    measure("chan_roundtrip", 1'000'000 / scale, [](std::size_t n) {
      weft::Channel<std::size_t> ping, pong;
      auto echo = weft::go([ping, pong]() mutable {
        while (auto v = ping.recv()) pong.send(*v + 1);
      });
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        ping.send(i);
        sum += *pong.recv();
      }
      ping.close();
      echo.join();
      if (sum != n * (n + 1) / 2) std::abort();
    });
    measure("chan_buffered", 2'000'000 / scale, [](std::size_t n) {
      weft::Channel<std::size_t> ch(64);
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        ch.send(i);
        sum += *ch.recv();
      }
      if (sum != n * (n - 1) / 2) std::abort();
    });
    measure("select_ready", 1'000'000 / scale, [](std::size_t n) {
      weft::Channel<std::size_t> a(1), b(1);
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        (void)a.try_send(1);
        (void)b.try_send(1);
        weft::select(weft::on_recv(a, [&](std::optional<std::size_t> v) { sum += *v; }),
                     weft::on_recv(b, [&](std::optional<std::size_t> v) { sum += *v; }));
      }
      if (sum != n) std::abort();
    });
    measure("mutex_free", 10'000'000 / scale, [](std::size_t n) {
      weft::Mutex m;
      std::size_t counter = 0;
      for (std::size_t i = 0; i < n; ++i) {
        m.lock();
        ++counter;
        m.unlock();
      }
      if (counter != n) std::abort();
    });
    measure("mutex_contended", 1'000'000 / scale, [](std::size_t n) {
      constexpr std::size_t k_fibers = 1000;
      const std::size_t each = n / k_fibers;
      weft::Mutex m;
      std::size_t counter = 0;
      weft::WaitGroup wg;
      wg.add(k_fibers);
      for (std::size_t f = 0; f < k_fibers; ++f) {
        weft::go([&] {
          for (std::size_t i = 0; i < each; ++i) {
            std::lock_guard<weft::Mutex> guard(m);
            ++counter;
          }
          wg.done();
        }).detach();
      }
      wg.wait();
      if (counter != each * k_fibers) std::abort();
    });
    measure("select_after", 1'000'000 / scale, [](std::size_t n) {
      weft::Channel<std::size_t> ready(1);
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        (void)ready.try_send(1);
        weft::select(weft::on_recv(ready, [&](std::optional<std::size_t> v) { sum += *v; }),
                     weft::after(std::chrono::seconds(1), [] { std::abort(); }));
      }
      if (sum != n) std::abort();
    });
    measure("select_timeout", 1'000'000 / scale, [](std::size_t n) {
      weft::Channel<std::size_t> ready(1);
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        (void)ready.try_send(1);
        weft::select(weft::on_recv(ready, [&](std::optional<std::size_t> v) { sum += *v; }),
                     weft::on_recv(weft::timeout(std::chrono::seconds(1)), [](auto) { std::abort(); }));
      }
      if (sum != n) std::abort();
    });
    measure("sleep_1us", 100'000 / scale, [](std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) weft::this_fiber::sleep_for(std::chrono::microseconds(1));
    });
    measure("timeout_1us", 100'000 / scale, [](std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) {
        if (weft::timeout(std::chrono::microseconds(1)).recv().has_value()) std::abort();
      }
    });
    measure("maybe_yield", 100'000'000 / scale, [](std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) weft::this_fiber::maybe_yield();
    });
    measure("blocking_call", 200'000 / scale, [](std::size_t n) {
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) sum += weft::blocking([i] { return i; });
      if (sum != n * (n - 1) / 2) std::abort();
    });
    if (rt.metrics().armed_timers != 0) std::abort();  // every select cancelled its timer
  }

  return 0;
}
