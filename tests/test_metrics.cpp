// Runtime::metrics() and metrics_text(): queued work is counted (the user's
// case: work behind busy fibers), parked fibers by reason, task counts,
// steals, the run-slice histogram and its overruns, and the Prometheus text
// that a scraper reads. Everything is asserted as counts, never as times.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using weft::ParkReason;

namespace {

// Polls rt.metrics() from this plain thread until pred(m) holds; returns the
// last snapshot. A test's doctest::timeout ends a wait that never succeeds.
template <class Pred>
weft::Runtime::Metrics wait_for_metrics(const weft::Runtime& rt, Pred pred) {
  for (;;) {
    weft::Runtime::Metrics m = rt.metrics();
    if (pred(m)) return m;
    std::this_thread::sleep_for(1ms);
  }
}

std::size_t sum_local_depth(const weft::Runtime::Metrics& m) {
  std::size_t n = 0;
  for (const auto& w : m.per_worker) n += w.local_queue_depth + w.runnext;
  return n;
}

}  // namespace

TEST_CASE("metrics: work queued behind busy fibers is counted as runnable and queued" * doctest::timeout(120)) {
  // Two workers, each held by a fiber that never yields; 250 tasks go to one
  // busy fiber's own deque and 250 to the injector from outside.
  weft::Runtime rt({.workers = 2});
  std::atomic<bool> release{false};
  std::atomic<int> spinning{0};
  std::atomic<bool> spawned_inside{false};
  std::atomic<int> ran{0};
  auto a = rt.spawn([&] {
    spinning.fetch_add(1);
    weft_test::spin_for_flag(release, 60s);
  });
  auto b = rt.spawn([&] {
    spinning.fetch_add(1);
    while (spinning.load() < 2) {
    }  // both workers are busy from here on: nobody can steal
    std::vector<weft::JoinHandle<void>> children;
    for (int i = 0; i < 250; ++i) children.push_back(weft::go([&] { ran.fetch_add(1); }));
    spawned_inside.store(true);
    weft_test::spin_for_flag(release, 60s);
    for (auto& c : children) c.join();
  });
  while (!spawned_inside.load()) std::this_thread::sleep_for(1ms);
  std::vector<weft::JoinHandle<void>> outside;
  for (int i = 0; i < 250; ++i) outside.push_back(rt.spawn([&] { ran.fetch_add(1); }));

  const weft::Runtime::Metrics m = rt.metrics();
  CHECK(m.workers == 2);
  CHECK(m.per_worker.size() == 2);
  CHECK(m.fibers_alive == 2);  // the two busy ones: the rest has not started
  CHECK(m.fibers_spawned == 502);
  CHECK(m.fibers_started == 2);
  CHECK(m.fibers_queued == 500);
  CHECK(m.runnable == 500);
  CHECK(m.injector_depth == 250);
  CHECK(sum_local_depth(m) == 250);
  CHECK(m.per_worker[0].fibers_spawned + m.per_worker[1].fibers_spawned == 250);
  CHECK(m.parked == 0);

  release.store(true);
  a.join();
  b.join();
  for (auto& h : outside) h.join();
  CHECK(ran.load() == 500);
  const weft::Runtime::Metrics after = rt.metrics();
  CHECK(after.fibers_spawned == 502);
  CHECK(after.fibers_started == 502);
  CHECK(after.fibers_finished == 502);
  CHECK(after.fibers_queued == 0);
  CHECK(after.fibers_alive == 0);
  CHECK(after.runnable == 0);
}

TEST_CASE("metrics: parked fibers are counted by reason, and back to zero once woken" * doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> ch;  // unbuffered: recv parks until a send
    weft::Mutex mu;
    weft::WaitGroup wg;
    weft::Semaphore sem(0);
    std::vector<weft::JoinHandle<void>> handles;
    mu.lock();  // held by this plain thread (not a fiber: not counted)
    wg.add(1);
    for (int i = 0; i < 3; ++i) handles.push_back(rt.spawn([&] { CHECK(ch.recv() == 7); }));
    for (int i = 0; i < 2; ++i) {
      handles.push_back(rt.spawn([&] {
        mu.lock();
        mu.unlock();
      }));
    }
    auto sleeper = rt.spawn([] { weft::this_fiber::sleep_for(1h); });
    auto waits_group = rt.spawn([&] { wg.wait(); });
    auto joiner = rt.spawn([&] { waits_group.join(); });
    handles.push_back(rt.spawn([&] { sem.acquire(); }));

    const weft::Runtime::Metrics m = wait_for_metrics(rt, [](const auto& x) { return x.parked == 9; });
    CHECK(m.parked_with(ParkReason::channel_recv) == 3);
    CHECK(m.parked_with(ParkReason::mutex) == 2);
    CHECK(m.parked_with(ParkReason::sleep) == 1);
    CHECK(m.parked_with(ParkReason::wait_group) == 1);
    CHECK(m.parked_with(ParkReason::join) == 1);
    CHECK(m.parked_with(ParkReason::semaphore) == 1);
    CHECK(m.parked_with(ParkReason::channel_send) == 0);
    CHECK(m.parked_with(ParkReason::select) == 0);
    CHECK(m.parked_with(ParkReason::cond_var) == 0);
    CHECK(m.parked_with(ParkReason::blocking) == 0);
    CHECK(m.parked_with(ParkReason::other) == 0);
    CHECK(m.fibers_alive == 9);
    CHECK(m.runnable == 0);
    CHECK(m.parks >= 9);
    CHECK(m.armed_timers >= 1);  // the sleep

    for (int i = 0; i < 3; ++i) ch.send(7);
    mu.unlock();
    sleeper.cancel();  // ends the sleep (weft::Cancelled inside the fiber)
    wg.done();
    sem.release();
    for (auto& h : handles) h.join();
    joiner.join();
    CHECK_THROWS_AS(sleeper.join(), weft::Cancelled);

    const weft::Runtime::Metrics after = rt.metrics();
    CHECK(after.parked == 0);
    for (std::size_t r = 0; r < weft::k_park_reasons; ++r) CHECK(after.parked_by_reason[r] == 0);
    CHECK(after.fiber_wakeups >= 9);
    CHECK(after.fiber_wakeups == after.parks);  // every park was matched by one resume
  }
}

TEST_CASE("metrics: spawned, started and finished counts add up" * doctest::timeout(120)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t n = weft_test::scaled(200);
    std::vector<weft::JoinHandle<int>> handles;
    for (std::size_t i = 0; i < n; ++i) {
      handles.push_back(rt.spawn([] {
        auto x = weft::go([] { return 1; });
        auto y = weft::go([] { return 2; });
        return x.join() + y.join();  // often run inline by the joiner: still counted
      }));
    }
    for (auto& h : handles) CHECK(h.join() == 3);
    const weft::Runtime::Metrics m = rt.metrics();
    CHECK(m.fibers_spawned == 3 * n);
    CHECK(m.fibers_started == 3 * n);
    CHECK(m.fibers_finished == 3 * n);
    CHECK(m.fibers_queued == 0);
    CHECK(m.fibers_alive == 0);
    std::uint64_t inside = 0;
    for (const auto& w : m.per_worker) inside += w.fibers_spawned;
    CHECK(inside == 2 * n);
  }
}

TEST_CASE("metrics: a child its joiner runs inline counts as started and finished, and its joiner as the one alive" *
          doctest::timeout(60)) {
  // One worker: a child joined right after go() is the bottom of the deque,
  // so the join runs it on the joiner's fiber (runtime.hpp, inline_join).
  weft::Runtime rt({.workers = 1});
  struct Seen {
    weft::Runtime::Metrics before, inside;
    bool inline_run = false;
  };
  const Seen seen = rt.block_on([&rt] {
    Seen s;
    s.before = rt.metrics();
    const weft::FiberId parent = weft::this_fiber::id();
    s.inline_run = weft::go([&] {
                     s.inside = rt.metrics();
                     return weft::this_fiber::id();
                   }).join() == parent;
    return s;
  });
  REQUIRE(seen.inline_run);
  CHECK(seen.before.fibers_alive == 1);  // block_on's own task
  // While it runs, the child has no fiber of its own: one fiber is alive,
  // the joiner's, and the child already counts as started and finished.
  CHECK(seen.inside.fibers_alive == 1);
  CHECK(seen.inside.fibers_started == seen.before.fibers_started + 1);
  CHECK(seen.inside.fibers_finished == seen.before.fibers_finished + 1);
  CHECK(seen.inside.fibers_queued == 0);
  const weft::Runtime::Metrics after = rt.metrics();
  CHECK(after.fibers_started == after.fibers_finished);
  CHECK(after.fibers_alive == 0);
}

TEST_CASE("metrics: every task taken from a busy worker's deque counts as a steal" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  constexpr int k_children = 100;
  std::atomic<int> done{0};
  rt.block_on([&] {
    for (int i = 0; i < k_children; ++i) weft::go([&] { done.fetch_add(1); }).detach();
    // Never yields: the children can only run where the other worker took them.
    std::atomic<bool> never{false};
    while (done.load() < k_children) {
      if (weft_test::spin_for_flag(never, 1ms)) break;
    }
  });
  CHECK(done.load() == k_children);
  const weft::Runtime::Metrics m = rt.metrics();
  CHECK(m.steals == k_children);
  CHECK(m.per_worker[0].steals + m.per_worker[1].steals == k_children);
}

TEST_CASE("metrics: run slices are measured only when asked for, and an overrun is counted" * doctest::timeout(120)) {
  SUBCASE("off by default: nothing measured") {
    weft::Runtime rt({.workers = 1});
    rt.block_on([] {
      for (int i = 0; i < 10; ++i) weft::this_fiber::yield();
    });
    rt.shutdown();
    const weft::Runtime::Metrics m = rt.metrics();
    CHECK_FALSE(m.run_slices.enabled);
    CHECK(m.run_slices.count == 0);
    CHECK(m.run_slices.overruns == 0);
    CHECK(m.per_worker[0].run_slices >= 11);  // the slice count itself is always kept
    CHECK(weft::metrics_text(m).find("weft_run_slice_seconds") == std::string::npos);
  }
  SUBCASE("on: every slice lands in one bucket; a 3-slice CPU loop is an overrun") {
    weft::Runtime rt({.workers = 1, .time_slice = 2ms, .measure_run_slices = true});
    rt.block_on([] {
      for (int i = 0; i < 10; ++i) weft::this_fiber::yield();
      auto spinner = weft::go([] {
        // A loop with no maybe_yield, three time slices long.
        const auto until = std::chrono::steady_clock::now() + 6ms;
        while (std::chrono::steady_clock::now() < until) {
        }
      });
      spinner.join();
    });
    rt.shutdown();  // every slice has ended
    const weft::Runtime::Metrics m = rt.metrics();
    CHECK(m.run_slices.enabled);
    std::uint64_t in_buckets = 0, long_ones = 0;
    for (std::size_t i = 0; i < weft::RunSliceHistogram::k_buckets; ++i) {
      in_buckets += m.run_slices.buckets[i];
      if (i > 0 && weft::RunSliceHistogram::bucket_upper_ns(i - 1) >= 4'000'000) long_ones += m.run_slices.buckets[i];
    }
    CHECK(in_buckets == m.run_slices.count);
    CHECK(m.run_slices.count == m.per_worker[0].run_slices);  // one measurement per slice
    CHECK(m.run_slices.count >= 11);  // the main fiber yields 10 times (the spinner may run inline in its join)
    CHECK(m.run_slices.overruns >= 1);
    CHECK(long_ones >= 1);  // the spinner's slice, 6 ms or more: a bucket above 4 ms
    CHECK(m.run_slices.sum_ns >= 6'000'000);
  }
}

TEST_CASE("metrics: metrics_text is valid Prometheus text exposition" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2, .time_slice = 2ms, .measure_run_slices = true});
  weft::Channel<int> ch;
  auto parked = rt.spawn([&] { return ch.recv(); });
  wait_for_metrics(rt, [](const auto& x) { return x.parked_with(ParkReason::channel_recv) == 1; });
  rt.block_on([] {
    for (int i = 0; i < 5; ++i) weft::this_fiber::yield();
  });
  const std::string text = weft::metrics_text(rt);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');

  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  const std::regex sample(
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? ([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN))re");
  const std::regex le_label(R"re(\{le="([^"]+)"\})re");

  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  std::set<std::string> finished_groups;  // a metric's samples are contiguous
  std::string current;
  std::map<std::string, std::string> values;  // name+labels -> value
  std::vector<std::pair<double, std::uint64_t>> buckets;  // le, cumulative count
  std::size_t samples = 0;
  std::istringstream in(text);
  std::string line;
  std::smatch mt;
  while (std::getline(in, line)) {
    CAPTURE(line);
    if (line.rfind("# HELP ", 0) == 0) {
      REQUIRE(std::regex_match(line, mt, help));
      CHECK(helps.insert(mt[1]).second);  // once per metric
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      REQUIRE(std::regex_match(line, mt, type));
      CHECK(types.emplace(mt[1], mt[2]).second);
      CHECK(helps.count(mt[1]) == 1);
      if (mt[2] == "counter") CHECK(std::string(mt[1]).ends_with("_total"));
      continue;
    }
    REQUIRE(std::regex_match(line, mt, sample));
    ++samples;
    std::string name = mt[1];
    CHECK(name.rfind("weft_", 0) == 0);
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (name.ends_with(s) && types.count(name.substr(0, name.size() - s.size())) == 1 &&
          types[name.substr(0, name.size() - s.size())] == "histogram") {
        family = name.substr(0, name.size() - s.size());
      }
    }
    CHECK(types.count(family) == 1);  // TYPE (and so HELP) came before the sample
    if (family != current) {
      CHECK(finished_groups.count(family) == 0);
      if (!current.empty()) finished_groups.insert(current);
      current = family;
    }
    values[name + std::string(mt[2])] = mt[3];
    if (name == "weft_run_slice_seconds_bucket") {
      std::smatch le;
      const std::string labels = mt[2];
      REQUIRE(std::regex_match(labels, le, le_label));
      const double bound = le[1] == "+Inf" ? HUGE_VAL : std::stod(le[1]);
      buckets.emplace_back(bound, std::stoull(mt[3]));
    }
  }
  CHECK(samples > 40);
  // The histogram: ascending le, cumulative counts, ending in +Inf == _count.
  REQUIRE(buckets.size() == weft::RunSliceHistogram::k_buckets);
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    CHECK(buckets[i].first > buckets[i - 1].first);
    CHECK(buckets[i].second >= buckets[i - 1].second);
  }
  CHECK(buckets.back().first == HUGE_VAL);
  CHECK(std::to_string(buckets.back().second) == values["weft_run_slice_seconds_count"]);
  CHECK(buckets.back().second > 0);
  CHECK(values.count("weft_run_slice_seconds_sum") == 1);
  // A few figures through the text.
  CHECK(values["weft_workers"] == "2");
  CHECK(values["weft_fibers_parked{reason=\"channel_recv\"}"] == "1");
  CHECK(values["weft_fibers_parked{reason=\"mutex\"}"] == "0");
  CHECK(values.count("weft_worker_steals_total{worker=\"1\"}") == 1);
  CHECK(types["weft_fiber_parks_total"] == "counter");
  CHECK(types["weft_runnable"] == "gauge");

  ch.send(5);
  CHECK(parked.join() == 5);
}
