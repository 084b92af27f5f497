// JoinHandle::then(): a task's outcome handed to a callback when the task
// ends, without blocking any thread or worker (issue 16).
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using weft_test::k_worker_counts;
using weft_test::scaled;

namespace {

// Spins (yielding the thread) until pred() holds or 60 s pass.
template <class P>
bool wait_for(P pred) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// Captures what the unhandled-exception handler receives while alive.
struct CaptureUnhandled {
  std::mutex lock;
  std::vector<std::string> messages;
  weft::UnhandledExceptionHandler previous;
  CaptureUnhandled() {
    previous = weft::set_unhandled_exception_handler([this](std::exception_ptr e) {
      std::string what = "?";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        what = ex.what();
      } catch (...) {
      }
      std::lock_guard<std::mutex> g(lock);
      messages.push_back(what);
    });
  }
  ~CaptureUnhandled() { weft::set_unhandled_exception_handler(previous); }
  std::size_t count() {
    std::lock_guard<std::mutex> g(lock);
    return messages.size();
  }
};

}  // namespace

TEST_CASE("then: the callback gets the value of a running task, once, on a fiber of the runtime" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> go_on(0);
    std::atomic<int> calls{0}, value{0};
    std::atomic<bool> on_fiber{false};
    auto h = rt.spawn([go_on]() mutable { return go_on.recv().value_or(-1) * 2; });
    h.then([&](weft::JoinHandle<int> done) {
      on_fiber.store(weft::this_fiber::in_fiber());
      CHECK(done.is_finished());
      value.store(done.join());
      calls.fetch_add(1);
    });
    CHECK_FALSE(h.joinable());
    CHECK(calls.load() == 0);  // the task is parked: nothing ran yet
    go_on.send(21);
    REQUIRE(wait_for([&] { return calls.load() == 1; }));
    CHECK(value.load() == 42);
    CHECK(on_fiber.load());
    rt.shutdown();
    CHECK(calls.load() == 1);
  }
}

TEST_CASE("then: on a finished task the callback runs at once, on the caller, before then() returns" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  auto h = rt.spawn([] { return std::string("done"); });
  REQUIRE(wait_for([&] { return h.is_finished(); }));
  const auto caller = std::this_thread::get_id();
  std::string got;
  std::thread::id ran_on;
  h.then([&](weft::JoinHandle<std::string> done) {
    ran_on = std::this_thread::get_id();
    got = done.join();
  });
  CHECK(got == "done");
  CHECK(ran_on == caller);
}

TEST_CASE("then: exceptions, cancellation and shutdown reach the callback through join()" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  std::atomic<int> seen{0};
  std::string failure, cancelled, stopped;
  std::mutex lock;

  auto bad = rt.spawn([]() -> int { throw std::runtime_error("boom"); });
  bad.then([&](weft::JoinHandle<int> done) {
    try {
      (void)done.join();
    } catch (const std::runtime_error& e) {
      std::lock_guard<std::mutex> g(lock);
      failure = e.what();
    }
    seen.fetch_add(1);
  });

  weft::Channel<int> never(0, "never");
  auto cancel_me = rt.spawn([never]() mutable { return never.recv().value_or(0); });
  cancel_me.cancel();
  cancel_me.then([&](weft::JoinHandle<int> done) {
    try {
      (void)done.join();
    } catch (const weft::Cancelled&) {
      std::lock_guard<std::mutex> g(lock);
      cancelled = "cancelled";
    }
    seen.fetch_add(1);
  });

  weft::Channel<int> forever(0, "forever");
  auto parked = rt.spawn([forever]() mutable { return forever.recv().value_or(0); });
  parked.then([&](weft::JoinHandle<int> done) {
    try {
      (void)done.join();
    } catch (const weft::RuntimeStopped&) {
      std::lock_guard<std::mutex> g(lock);
      stopped = "stopped";
    }
    seen.fetch_add(1);
  });

  REQUIRE(wait_for([&] { return seen.load() == 2; }));
  rt.shutdown();  // cancels the parked task: its callback runs during shutdown
  CHECK(seen.load() == 3);
  CHECK(failure == "boom");
  CHECK(cancelled == "cancelled");
  CHECK(stopped == "stopped");
}

TEST_CASE("then: a failure the callback does not join, and an exception escaping the callback, are reported" *
          doctest::timeout(60)) {
  CaptureUnhandled capture;
  {
    weft::Runtime rt({.workers = 2});
    auto failing = rt.spawn([]() -> int { throw std::runtime_error("not joined"); });
    failing.then([](weft::JoinHandle<int>) {});  // drops it: as detach()
    auto fine = rt.spawn([] { return 1; });
    fine.then([](weft::JoinHandle<int> done) {
      (void)done.join();
      throw std::logic_error("from the callback");
    });
    REQUIRE(wait_for([&] { return capture.count() == 2; }));
  }
  std::sort(capture.messages.begin(), capture.messages.end());
  CHECK(capture.messages == std::vector<std::string>{"from the callback", "not joined"});
}

TEST_CASE("then: misuse is a std::logic_error" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 1});
  weft::JoinHandle<int> empty;
  CHECK_THROWS_AS(empty.then([](weft::JoinHandle<int>) {}), std::logic_error);
  auto h = rt.spawn([] { return 3; });
  std::atomic<int> got{0};
  h.then([&](weft::JoinHandle<int> d) { got.store(d.join()); });
  CHECK_THROWS_AS((void)h.join(), std::logic_error);
  CHECK_THROWS_AS(h.then([](weft::JoinHandle<int>) {}), std::logic_error);
  CHECK_THROWS_AS(h.detach(), std::logic_error);
  rt.shutdown();
  CHECK(got.load() == 3);
}

TEST_CASE("then: an over-aligned callback is stored aligned" * doctest::timeout(60)) {
  struct alignas(64) Wide {
    unsigned char bytes[64];
  };
  weft::Runtime rt({.workers = 2});
  std::atomic<int> aligned{0}, calls{0};
  for (int i = 0; i < 64; ++i) {
    Wide w{};
    auto h = rt.spawn([] { return 1; });
    h.then([&, w](weft::JoinHandle<int> d) {
      if (reinterpret_cast<std::uintptr_t>(&w) % 64 == 0) aligned.fetch_add(1);
      calls.fetch_add(d.join());
    });
  }
  rt.shutdown();
  CHECK(calls.load() == 64);
  CHECK(aligned.load() == 64);
}

TEST_CASE("then: void tasks and move-only results" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  std::atomic<int> calls{0};
  auto v = rt.spawn([] {});
  v.then([&](weft::JoinHandle<void> d) {
    d.join();
    calls.fetch_add(1);
  });
  auto m = rt.spawn([] { return std::make_unique<int>(7); });
  m.then([&](weft::JoinHandle<std::unique_ptr<int>> d) {
    if (*d.join() == 7) calls.fetch_add(1);
  });
  REQUIRE(wait_for([&] { return calls.load() == 2; }));
}

// Many plain threads register callbacks while their tasks finish: each
// callback runs exactly once with its own task's value, whichever side of
// the race (then() before or after the task ended) each one took.
TEST_CASE("then: stress, every callback exactly once with its own value, over seeds" * doctest::timeout(300)) {
  const std::size_t per_thread = scaled(5000);
  constexpr std::size_t k_threads = 4;
  for (unsigned seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    weft::Runtime rt({.workers = 2});
    std::vector<std::atomic<int>> hits(per_thread * k_threads);
    std::atomic<std::size_t> wrong{0}, total{0};
    std::vector<std::thread> producers;
    for (std::size_t p = 0; p < k_threads; ++p) {
      producers.emplace_back([&, p] {
        std::mt19937 rng(seed * 100 + static_cast<unsigned>(p));
        for (std::size_t i = 0; i < per_thread; ++i) {
          const std::size_t id = p * per_thread + i;
          const int spin = static_cast<int>(rng() % 3);
          auto h = rt.spawn([id, spin] {
            for (int k = 0; k < spin; ++k) weft::this_fiber::yield();
            return id;
          });
          if (rng() % 4 == 0) std::this_thread::yield();  // let some finish first
          h.then([&, id](weft::JoinHandle<std::size_t> d) {
            if (d.join() != id) wrong.fetch_add(1);
            hits[id].fetch_add(1);
            total.fetch_add(1);
          });
        }
      });
    }
    for (auto& t : producers) t.join();
    rt.shutdown();
    CHECK(total.load() == per_thread * k_threads);
    CHECK(wrong.load() == 0);
    std::size_t not_once = 0;
    for (auto& h : hits) not_once += h.load() != 1;
    CHECK(not_once == 0);
  }
}
