// Workloads "cancel" and "scope_cost" (issue 15): how fast a cancelled tree
// of fibers stops, and what a cancellation scope costs when nothing is
// cancelled.
//
// cancel: a TaskGroup of N fibers (10,000; 1,000 with --quick), half parked
// (on a channel receive, a sleep, a mutex held elsewhere, a join of a task
// that never ends), half in CPU loops that call maybe_yield(). Once every
// fiber is in place, the group is cancelled and waited for. Each fiber
// records when its Cancelled reached it (relative to the cancel), and the
// owner when wait() returned. 20 rounds (3 with --quick); p50 and p99 over
// all of them of: the parked half's latency, the CPU half's, and wait()'s.
// Also unwind_floor_us: N/2 weft::Cancelled thrown and caught one frame
// deep on as many plain threads as workers, no scheduler involved (median
// of the rounds): no stop that unwinds each parked fiber can bring the
// parked half's p99 under it.
// Run once on an otherwise idle runtime ("cancel") and once while two
// other groups keep every worker busy with fresh CPU fibers
// ("cancel_loaded"): cancelled work must not wait behind new work.
//
// scope_cost: spawn (as the spawn workload) and an unbuffered pingpong,
// each with and without a CancelScope around it: the price of running in a
// scope when nothing is cancelled, as a ratio (1.00 = free).
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "bench.hpp"

namespace bench {

namespace {

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

unsigned long long churn(unsigned long long h) {
  for (int i = 0; i < 64; ++i) h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull + static_cast<unsigned>(i);
  return h;
}

// The floor under any stop that unwinds: `throws` weft::Cancelled thrown and
// caught one frame deep, spread over `threads` plain threads, with no
// scheduler involved. Returns the wall time in microseconds.
__attribute__((noinline)) void throw_cancelled_once() { throw weft::Cancelled(); }

double unwind_floor_us(std::size_t throws, std::size_t threads) {
  std::vector<std::thread> pool;
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, share = throws / threads] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      for (std::size_t i = 0; i < share; ++i) {
        try {
          throw_cancelled_once();
        } catch (const weft::Cancelled&) {
        }
      }
    });
  }
  while (ready.load() != threads) std::this_thread::yield();
  const auto t0 = Clock::now();  // threads started: time the throws alone
  go.store(true);
  for (auto& t : pool) t.join();
  return us_between(t0, Clock::now());
}

struct Latencies {
  std::vector<double> parked_us, cpu_us, wait_us;
};

// One round: builds the group, cancels it, records the latencies.
void cancel_round(std::size_t n, const std::string& workload, Latencies& out) {
  std::vector<Clock::time_point> reached(n);
  std::atomic<std::size_t> in_place{0};
  std::atomic<std::size_t> cancelled{0};
  weft::Channel<int> never;
  weft::Mutex held;
  held.lock();
  Clock::time_point t0;
  {
    weft::TaskGroup<> g;
    for (std::size_t i = 0; i < n; ++i) {
      g.spawn([&, i] {
        // Records when the cancellation reached this fiber: as it unwinds,
        // without catching (a catch-and-rethrow would unwind twice).
        struct Record {
          Clock::time_point* at;
          std::atomic<std::size_t>* count;
          ~Record() {
            *at = Clock::now();
            count->fetch_add(1, std::memory_order_relaxed);
          }
        } record{&reached[i], &cancelled};
        {
          if (i % 2 == 0) {
            in_place.fetch_add(1, std::memory_order_relaxed);
            switch ((i / 2) % 4) {
              case 0: (void)never.recv(); break;
              case 1: weft::this_fiber::sleep_for(std::chrono::hours(1)); break;
              case 2: held.lock(); held.unlock(); break;
              default: {  // a join of a child that never ends by itself (cancelled with us)
                auto child = weft::go([never]() mutable { (void)never.recv(); });
                child.join();
                break;
              }
            }
          } else {
            in_place.fetch_add(1, std::memory_order_relaxed);
            unsigned long long h = i;
            for (;;) {
              h = churn(h);
              weft::this_fiber::maybe_yield();
            }
          }
        }
      });
    }
    while (in_place.load(std::memory_order_relaxed) != n) weft::this_fiber::sleep_for(std::chrono::microseconds(200));
    weft::this_fiber::sleep_for(std::chrono::milliseconds(2));  // the parked half parks
    t0 = Clock::now();
    g.cancel();
    g.wait();
    out.wait_us.push_back(us_between(t0, Clock::now()));
  }
  held.unlock();
  if (cancelled.load() != n) wrong(workload, "cancelled " + std::to_string(cancelled.load()) + " of " + std::to_string(n));
  for (std::size_t i = 0; i < n; ++i) (i % 2 == 0 ? out.parked_us : out.cpu_us).push_back(us_between(t0, reached[i]));
}

void cancel_run(const Settings& s, Reporter& out, bool loaded) {
  const std::string workload = loaded ? "cancel_loaded" : "cancel";
  const std::size_t n = s.quick ? 1'000 : 10'000;
  const std::size_t rounds = s.quick ? 3 : 20;
  // A 1 ms time slice: a CPU fiber holds its worker at most that long
  // before maybe_yield() gives it up (the CPU half's target is one slice +
  // 2 ms), and 5,000 of them take turns quickly enough to start every round.
  weft::Runtime rt({.workers = s.workers, .time_slice = std::chrono::milliseconds(1)});
  Latencies lat;
  rt.block_on([&] {
    std::atomic<bool> stop{false};
    weft::TaskGroup<> load;
    if (loaded) {
      // Two groups that keep every worker busy: each keeps spawning fresh
      // CPU fibers of about 2 ms each.
      for (int k = 0; k < 2; ++k) {
        load.spawn([&] {
          weft::TaskGroup<> fresh;
          while (!stop.load(std::memory_order_relaxed)) {
            for (std::size_t w = 0; w < s.workers; ++w) {
              fresh.spawn([] {
                const auto until = Clock::now() + std::chrono::milliseconds(2);
                unsigned long long h = 1;
                while (Clock::now() < until) {
                  h = churn(h);
                  weft::this_fiber::maybe_yield();
                }
              });
            }
            while (fresh.size() > 4 * s.workers) (void)fresh.join_next();
          }
          fresh.wait();
        });
      }
    }
    for (std::size_t r = 0; r < rounds; ++r) cancel_round(n, workload, lat);
    stop.store(true);
    load.wait();
  });
  // The parked half's floor: its n/2 fibers each unwind at least one throw.
  std::vector<double> floor_us;
  for (std::size_t r = 0; r < rounds; ++r) floor_us.push_back(unwind_floor_us(n / 2, s.workers));
  const std::string p = param(n, s.workers);
  out.add("weft", workload, p, "parked_p50_us", percentile(lat.parked_us, 0.50));
  out.add("weft", workload, p, "parked_p99_us", percentile(lat.parked_us, 0.99));
  out.add("weft", workload, p, "cpu_p50_us", percentile(lat.cpu_us, 0.50));
  out.add("weft", workload, p, "cpu_p99_us", percentile(lat.cpu_us, 0.99));
  out.add("weft", workload, p, "wait_p50_us", percentile(lat.wait_us, 0.50));
  out.add("weft", workload, p, "wait_p99_us", percentile(lat.wait_us, 0.99));
  out.add("weft", workload, p, "unwind_floor_us", percentile(floor_us, 0.50));
}

}  // namespace

void cancel_workload(const Settings& s, Reporter& out) { cancel_run(s, out, false); }
void cancel_loaded_workload(const Settings& s, Reporter& out) { cancel_run(s, out, true); }

void scope_cost_workload(const Settings& s, Reporter& out) {
  const std::size_t spawns = s.quick ? 100'000 : 1'000'000;
  const std::size_t trips = s.quick ? 100'000 : 1'000'000;
  weft::Runtime rt({.workers = s.workers});
  auto spawn_ns = [&](bool scoped) {
    return rt.block_on([&] {
      std::optional<weft::CancelScope> scope;
      if (scoped) scope.emplace();
      return spawn_round_ns(spawns, "scope_cost");
    });
  };
  auto pingpong_ns = [&](bool scoped) {
    return rt.block_on([&] {
      std::optional<weft::CancelScope> scope;
      if (scoped) scope.emplace();
      return pingpong_round_trip_ns(trips, "scope_cost");
    });
  };
  // Alternate, so that drift on a shared machine hits both alike, and swap
  // which goes first every other round (ABBA): a run that follows another
  // inherits its cached stacks and tasks, which favoured the second one.
  std::vector<double> plain_spawn, scoped_spawn, plain_pp, scoped_pp;
  for (std::size_t r = 0; r < std::max<std::size_t>(s.repeat, 1); ++r) {
    for (bool scoped : {r % 2 == 1, r % 2 == 0}) {
      (scoped ? scoped_spawn : plain_spawn).push_back(spawn_ns(scoped));
    }
    for (bool scoped : {r % 2 == 1, r % 2 == 0}) {
      (scoped ? scoped_pp : plain_pp).push_back(pingpong_ns(scoped));
    }
  }
  const double ps = percentile(plain_spawn, 0.5), ss = percentile(scoped_spawn, 0.5);
  const double pp = percentile(plain_pp, 0.5), sp = percentile(scoped_pp, 0.5);
  out.add("weft", "scope_cost", param(spawns, s.workers), "spawn_ns", ps);
  out.add("weft", "scope_cost", param(spawns, s.workers), "spawn_ns_in_scope", ss);
  out.add("weft", "scope_cost", param(spawns, s.workers), "spawn_ratio", ss / ps);
  out.add("weft", "scope_cost", param(trips, s.workers), "pingpong_ns", pp);
  out.add("weft", "scope_cost", param(trips, s.workers), "pingpong_ns_in_scope", sp);
  out.add("weft", "scope_cost", param(trips, s.workers), "pingpong_ratio", sp / pp);
}

}  // namespace bench
