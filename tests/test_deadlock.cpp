// Deadlock detection: block_on / run throw weft::Deadlock (naming what the
// parked fibers wait on) instead of hanging, never while progress is still
// possible, and the runtime shuts down cleanly afterwards.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::deadlock_message;
using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::spin_until;
using weft_test::waiting_receivers;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Index of the first line containing `needle`, or -1.
int line_with(const std::vector<std::string>& lines, const std::string& needle) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(needle) != std::string::npos) return static_cast<int>(i);
  }
  return -1;
}

// Lines that describe one parked fiber ("  fiber 7: ...").
int fiber_lines(const std::vector<std::string>& lines) {
  int n = 0;
  for (const auto& l : lines) {
    const auto start = l.find_first_not_of(" \t");
    if (start != std::string::npos && l.compare(start, 6, "fiber ") == 0) ++n;
  }
  return n;
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

struct CountsUnwinding {
  std::atomic<int>* counter;
  ~CountsUnwinding() { counter->fetch_add(1); }
};

}  // namespace

TEST_CASE("deadlock: a main fiber receiving on a channel nobody else holds gets weft::Deadlock naming it" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    // Runtime::run: the runtime it creates is destroyed (the fiber cancelled)
    // on the way out.
    std::optional<std::string> msg;
    try {
      weft::Runtime::run(weft::Runtime::Options{.workers = workers}, [] {
        weft::Channel<int> ch(0, "orphan");
        return ch.recv().value_or(-1);
      });
    } catch (const weft::Deadlock& e) {
      msg = e.what();
    }
    REQUIRE(msg.has_value());
    CAPTURE(*msg);
    CHECK(msg->find("orphan") != std::string::npos);
    CHECK(msg->find("recv") != std::string::npos);

    // block_on, with the channel created outside and only the fiber's copy
    // of the handle waiting on it.
    std::atomic<int> unwound{0};
    {
      weft::Runtime rt({.workers = workers});
      weft::Channel<int> outside(0, "orphan-outside");
      auto m = deadlock_message(rt, [&unwound, ch = outside]() mutable {
        CountsUnwinding guard{&unwound};
        return ch.recv().value_or(-1);
      });
      REQUIRE(m.has_value());
      CAPTURE(*m);
      CHECK(m->find("orphan-outside") != std::string::npos);
      CHECK(unwound.load() == 0);  // still parked until the runtime goes
    }
    CHECK(unwound.load() == 1);
  }
}

TEST_CASE("deadlock: two fibers each waiting for the other are both in the report" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    std::atomic<int> unwound{0};
    std::optional<std::string> msg;
    {
      weft::Runtime rt({.workers = workers});
      msg = deadlock_message(rt, [&unwound] {
        weft::Channel<int> left(0, "left-inbox"), right(0, "right-inbox");
        // Each receives first and would send to the other afterwards.
        auto a = weft::go([&unwound, left, right]() mutable {
          CountsUnwinding guard{&unwound};
          auto v = left.recv();
          right.send(v.value_or(0));
        });
        auto b = weft::go([&unwound, left, right]() mutable {
          CountsUnwinding guard{&unwound};
          auto v = right.recv();
          left.send(v.value_or(0));
        });
        a.join();
        b.join();
      });
      REQUIRE(msg.has_value());
    }
    // The runtime's destructor cancelled both fibers (and main): unwound.
    CHECK(unwound.load() == 2);
    CAPTURE(*msg);
    const auto lines = lines_of(*msg);
    const int left_line = line_with(lines, "left-inbox");
    const int right_line = line_with(lines, "right-inbox");
    CHECK(left_line >= 0);
    CHECK(right_line >= 0);
    CHECK(left_line != right_line);
    CHECK(fiber_lines(lines) >= 3);  // the two, and main joining one of them
  }
}

TEST_CASE("deadlock: two fibers locking two weft::Mutexes in opposite orders" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Mutex m1, m2;  // outlive the runtime: its destructor unwinds fibers that hold them
    std::atomic<int> unwound{0};
    std::optional<std::string> msg;
    {
      weft::Runtime rt({.workers = workers});
      msg = deadlock_message(rt, [&] {
        std::atomic<int> holding{0};
        auto a = weft::go([&] {
          CountsUnwinding guard{&unwound};
          std::lock_guard<weft::Mutex> g1(m1);
          holding.fetch_add(1);
          spin_until([&] { return holding.load() == 2; });
          std::lock_guard<weft::Mutex> g2(m2);
        });
        auto b = weft::go([&] {
          CountsUnwinding guard{&unwound};
          std::lock_guard<weft::Mutex> g2(m2);
          holding.fetch_add(1);
          spin_until([&] { return holding.load() == 2; });
          std::lock_guard<weft::Mutex> g1(m1);
        });
        a.join();
        b.join();
      });
      REQUIRE(msg.has_value());
    }
    CHECK(unwound.load() == 2);
    CAPTURE(*msg);
    CHECK(lowercase(*msg).find("mutex") != std::string::npos);
    CHECK(fiber_lines(lines_of(*msg)) >= 3);
    // Unwinding released both locks.
    CHECK(m1.try_lock());
    CHECK(m2.try_lock());
    m1.unlock();
    m2.unlock();
  }
}

TEST_CASE("deadlock: every kind of wait can be reported" * doctest::timeout(300)) {
  struct Kind {
    const char* name;
    void (*body)();
    const char* mentions;  // a channel name the report must contain, or nullptr
  };
  const Kind kinds[] = {
      {"a fiber locking a mutex it already holds",
       [] {
         weft::Mutex m;
         std::lock_guard<weft::Mutex> first(m);
         std::lock_guard<weft::Mutex> second(m);
       },
       nullptr},
      {"a condition variable nobody notifies",
       [] {
         weft::Mutex m;
         weft::CondVar cv;
         std::unique_lock<weft::Mutex> lk(m);
         cv.wait(lk);
       },
       nullptr},
      {"a wait group nobody finishes",
       [] {
         weft::WaitGroup wg;
         wg.add(1);
         wg.wait();
       },
       nullptr},
      {"a semaphore nobody releases",
       [] {
         weft::Semaphore s(0);
         s.acquire();
       },
       nullptr},
      {"a select on channels nobody else holds",
       [] {
         weft::Channel<int> a(0, "sel-a"), b(1, "sel-b");
         weft::select(weft::on_recv(a, [](std::optional<int>) {}), weft::on_recv(b, [](std::optional<int>) {}));
       },
       nullptr},
      {"a send nobody receives",
       [] {
         weft::Channel<int> full(1, "full-buffer");
         full.send(1);
         full.send(2);
       },
       "full-buffer"},
      {"a join of a fiber parked forever",
       [] {
         weft::go([] {
           weft::Channel<int> never(0, "never-sent");
           never.recv();
         }).join();
       },
       "never-sent"},
  };
  for (std::size_t workers : k_worker_counts) {
    for (const Kind& kind : kinds) {
      // The join kind twice: with inline joins the child may run on the
      // joiner's fiber, which then waits in the child's recv; without them
      // the joiner really waits in join() and the report says so.
      const bool is_join = std::string(kind.name).find("join") != std::string::npos;
      for (bool inline_join : {true, false}) {
        if (!inline_join && !is_join) continue;
        CAPTURE(workers);
        CAPTURE(kind.name);
        CAPTURE(inline_join);
        weft::Runtime rt({.workers = workers, .inline_join = inline_join});
        auto msg = deadlock_message(rt, kind.body);
        REQUIRE(msg.has_value());
        CAPTURE(*msg);
        if (kind.mentions != nullptr) CHECK(msg->find(kind.mentions) != std::string::npos);
        if (!inline_join) CHECK(msg->find("join of fiber") != std::string::npos);
      }
    }
  }
}

TEST_CASE("deadlock: no report while another fiber is still running or runnable" * doctest::timeout(600)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    {
      weft::Runtime rt({.workers = workers});
      INFO("a long CPU loop with yields, then a send");
      const int rounds = static_cast<int>(scaled(20'000));
      auto msg = deadlock_message(rt, [rounds] {
        weft::Channel<unsigned long long> ch(0, "late");
        auto worker = weft::go([ch, rounds]() mutable {
          unsigned long long h = 0;
          for (int i = 0; i < rounds; ++i) {
            h ^= weft_test::burn(static_cast<unsigned long long>(i), 2);
            weft::this_fiber::yield();
          }
          ch.send(h | 1);
        });
        const auto v = ch.recv();
        worker.join();
        if (!v.has_value() || *v == 0) throw std::runtime_error("no value");
      });
      CHECK_FALSE(msg.has_value());
    }
    {
      weft::Runtime rt({.workers = workers});
      INFO("a long CPU loop without yields, then a send");
      auto msg = deadlock_message(rt, [] {
        weft::Channel<unsigned long long> ch(0, "late");
        auto worker = weft::go([ch]() mutable { ch.send(weft_test::burn(7, 100'000) | 1); });  // ~0.1 s
        const auto v = ch.recv();
        worker.join();
        if (!v.has_value()) throw std::runtime_error("no value");
      });
      CHECK_FALSE(msg.has_value());
    }
    {
      weft::Runtime rt({.workers = workers});
      INFO("fibers parking and waking each other constantly");
      const int rounds = static_cast<int>(scaled(20'000));
      auto msg = deadlock_message(rt, [rounds] {
        weft::Channel<int> ping(0, "ping"), pong(0, "pong"), result(0, "result");
        weft::Mutex m;
        long long shared = 0;
        auto a = weft::go([=]() mutable {
          for (int i = 0; i < rounds; ++i) {
            ping.send(i);
            pong.recv();
          }
        });
        auto b = weft::go([=]() mutable {
          int last = -1;
          for (int i = 0; i < rounds; ++i) {
            last = ping.recv().value_or(-1);
            pong.send(last);
          }
          result.send(last);
        });
        std::vector<weft::JoinHandle<void>> lockers;
        for (int k = 0; k < 4; ++k) {
          lockers.push_back(weft::go([&m, &shared, rounds] {
            for (int i = 0; i < rounds / 4; ++i) {
              std::lock_guard<weft::Mutex> g(m);
              ++shared;
              if (i % 16 == 0) weft::this_fiber::yield();
            }
          }));
        }
        const int last = result.recv().value_or(-2);
        a.join();
        b.join();
        for (auto& h : lockers) h.join();
        if (last != rounds - 1 || shared != 4LL * (rounds / 4)) throw std::runtime_error("wrong result");
      });
      CHECK_FALSE(msg.has_value());
    }
  }
}

TEST_CASE("deadlock: no report while a fiber of another runtime will still send" * doctest::timeout(300)) {
  weft::Runtime rt1({.workers = 1}), rt2({.workers = 1});
  weft::Channel<int> ch(0, "cross");
  const int rounds = static_cast<int>(scaled(50'000));
  auto h = rt2.spawn([ch, rounds]() mutable {
    // rt1's fiber parks in recv first; then this one keeps running a while
    // (the detector must see it) before it sends.
    spin_until([&] { return waiting_receivers(ch) == 1; });
    for (int i = 0; i < rounds; ++i) weft::this_fiber::yield();
    ch.send(9);
  });
  int got = -1;
  CHECK_NOTHROW(got = rt1.block_on([ch]() mutable { return ch.recv().value_or(-1); }));
  h.join();
  CHECK(got == 9);
}

TEST_CASE("deadlock: no report while a plain thread holding an ExternalWaker sleeps, then sends" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> ch(0, "from-thread");
    weft::ExternalWaker waker;
    std::thread t([ch, w = std::move(waker)]() mutable {
      // The fiber parks in recv first; then this thread stays away a while
      // (the detector must not give up on it) before it sends.
      spin_until([&] { return waiting_receivers(ch) == 1; });
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      ch.send(5);
      weft::ExternalWaker done = std::move(w);  // released once the send is done
    });
    int got = -1;
    CHECK_NOTHROW(got = rt.block_on([ch]() mutable { return ch.recv().value_or(-1); }));
    t.join();
    CHECK(got == 5);
  }
}

// The newcomer's service (issue 16): the root fiber receives from a channel
// fed by a std::thread that sleeps 20 ms between sends. Before the
// outside-thread rule (deadlock.hpp, rule 6) this threw weft::Deadlock at
// the first sleep.
TEST_CASE("deadlock: a root fiber fed by a std::thread that sleeps between sends is never reported" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    // Buffered so that, on code that wrongly reports, the producer still
    // finishes and the test fails instead of hanging (the shape is the same).
    weft::Channel<int> ch(10, "requests");
    std::thread producer([ch]() mutable {
      for (int i = 1; i <= 10; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ch.send(i);
      }
      ch.close();
    });
    int sum = -1;
    CHECK_NOTHROW(sum = weft::Runtime::run({.workers = workers}, [ch]() mutable {
      int s = 0;
      for (int v : ch) s += v;
      return s;
    }));
    producer.join();
    CHECK(sum == 55);
  }
}

// Side by side with the test above: the same shape with no thread outside
// weft, where the root waits on a cycle among fibers, is still reported.
TEST_CASE("deadlock: the same shape with a cycle among fibers alone is reported" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    auto msg = deadlock_message(rt, []() {
      weft::Channel<int> a(0, "cycle-a"), b(0, "cycle-b");
      auto other = weft::go([a, b]() mutable {
        if (auto v = b.recv()) a.send(*v);
      });
      if (auto v = a.recv()) b.send(*v);
      other.join();
    });
    REQUIRE(msg.has_value());
    CAPTURE(*msg);
    CHECK(msg->find("cycle-a") != std::string::npos);
    CHECK(msg->find("cycle-b") != std::string::npos);
  }
}

TEST_CASE("deadlock: a thread outside weft delays the report until it has exited without sending" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  weft::Channel<int> ch(0, "abandoned");
  std::atomic<bool> thread_done{false};
  std::atomic<bool> reported_while_running{false};
  std::thread t([&, ch]() mutable {
    // Holds the channel but never sends: the detector must wait for it.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    thread_done.store(true);
  });
  auto msg = deadlock_message(rt, [ch]() mutable { (void)ch.recv(); });
  reported_while_running.store(!thread_done.load());
  t.join();
  REQUIRE(msg.has_value());
  CHECK(msg->find("abandoned") != std::string::npos);
  CHECK_FALSE(reported_while_running.load());
  ch.close();  // the reported fiber is still parked; let it finish
}

TEST_CASE("deadlock: a plain thread blocked in recv whose only sender is a parked fiber, waited on by main" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Channel<int> request(0, "request"), reply(0, "reply");
    // The plain thread answers a request; the only fiber that would send one
    // first waits on a channel nobody sends on.
    std::thread t([request, reply]() mutable {
      if (auto v = request.recv()) reply.send(*v);
    });
    REQUIRE(spin_until([&] { return waiting_receivers(request) == 1; }));
    auto msg = deadlock_message(rt, [request, reply]() mutable {
      auto asker = weft::go([request]() mutable {
        weft::Channel<int> never(0, "never-answered");
        if (never.recv()) request.send(1);
      });
      return reply.recv().value_or(-1);
    });
    REQUIRE(msg.has_value());
    CAPTURE(*msg);
    CHECK(msg->find("reply") != std::string::npos);
    CHECK(msg->find("never-answered") != std::string::npos);
    request.close();  // plain threads stay blocked after a report: release this one
    t.join();
  }
}

TEST_CASE("deadlock: the report lists the fibers of the runtime waited on, not of other runtimes" *
          doctest::timeout(120)) {
  weft::Runtime rt1({.workers = 1}), rt2({.workers = 2});
  weft::Channel<int> other(0, "other-runtime-channel");
  auto parked_elsewhere = rt2.spawn([other]() mutable { return other.recv().has_value(); });
  REQUIRE(spin_until([&] { return waiting_receivers(other) == 1; }));
  auto msg = deadlock_message(rt1, [] {
    weft::Channel<int> ch(0, "this-runtime-channel");
    return ch.recv().value_or(-1);
  });
  REQUIRE(msg.has_value());
  CAPTURE(*msg);
  CHECK(msg->find("this-runtime-channel") != std::string::npos);
  CHECK(msg->find("other-runtime-channel") == std::string::npos);
  other.close();
  CHECK_FALSE(parked_elsewhere.join());
}

TEST_CASE("deadlock: after a report the runtime still works, its parked fibers can be woken, and it shuts down "
          "cleanly" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    std::atomic<int> unwound{0};
    std::atomic<bool> woke{false};
    weft::Channel<int> late(0, "late");
    weft::Runtime rt({.workers = workers});
    auto first = deadlock_message(rt, [late, &woke]() mutable { woke.store(late.recv() == std::optional<int>(4)); });
    REQUIRE(first.has_value());
    // The reported fiber is still parked: a send from this thread wakes it.
    CHECK(late.send(4));
    spin_until([&] { return woke.load(); });
    CHECK(woke.load());
    // The runtime keeps running new work.
    CHECK(rt.block_on([] { return weft::go([] { return 7; }).join(); }) == 7);
    // A second deadlock, left in place for shutdown to cancel.
    auto second = deadlock_message(rt, [&unwound] {
      CountsUnwinding guard{&unwound};
      weft::go([&unwound] {
        CountsUnwinding inner{&unwound};
        weft::Channel<int> never(0, "never");
        never.recv();
      }).join();
    });
    REQUIRE(second.has_value());
    CHECK(unwound.load() == 0);
    rt.shutdown();
    CHECK(unwound.load() == 2);
    CHECK_THROWS_AS(rt.spawn([] {}), weft::RuntimeStopped);
  }
}
