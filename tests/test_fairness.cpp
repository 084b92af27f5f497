// Fairness: who gets to run, and which case a select commits, when several
// could. Regression tests for three bugs a port of Go's runtime tests found:
//  - a fiber that yielded sat on its worker's private FIFO, where an idle
//    worker could not steal it: it waited for whatever long fiber its worker
//    ran next (forever, when that fiber spun on a flag the yielder would set);
//  - a select that parked queued its cases in argument order, so a receiver
//    arriving later always took the first case (Go's TestPseudoRandomSend);
//  - sleep_for(1ns) found its deadline passed and returned without giving
//    up the worker, so a fiber sleeping in a loop starved every other fiber
//    of a one-worker runtime (Go's TestAfterStress).
// And one found by weft-bench (issue 17): a worker with nothing queued took
// a yielded fiber back before stealing, so a fiber polling with yield()
// kept that worker from helping. And one found by a cancellation stress
// test (test_cancel.cpp): a pick of cancelled work that fell on a fairness
// pick's turn skipped that turn for good.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "support.hpp"
#include "weft/detail/channel_core.hpp"

using namespace std::chrono_literals;

using weft_test::spin_for_flag;

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

TEST_CASE("fairness: an idle worker runs a fiber that yielded behind a long-running fiber" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  int starved = 0;
  for (int round = 0; round < 10; ++round) {
    std::atomic<bool> flag{false};
    bool spinner_saw_flag = false;
    rt.block_on([&] {
      // The spinner is queued on this worker; the yield below lets this
      // worker start it, and it never yields: only the other worker can
      // run us again, and only if it can find us.
      auto spinner = weft::go([&] { spinner_saw_flag = spin_for_flag(flag, 1000ms); });
      weft::this_fiber::yield();
      flag.store(true);
      spinner.join();
    });
    if (!spinner_saw_flag) ++starved;
  }
  CHECK(starved == 0);
}

TEST_CASE("fairness: a fiber polling with yield() lets the other worker take its share of the backlog" *
          doctest::timeout(120)) {
  // The spawner's children queue on its worker; it then yields until all
  // have run. Each yield let the other worker, its own deque empty, take the
  // yielder back from the global queue before trying to steal, so that
  // worker spun on the yielder (about five yields a child) while the first
  // ran every child alone. Stealing comes first now: the yielder runs again
  // only at a worker's periodic look at the global queue (every 61 picks) or
  // when nothing is left to steal.
  //
  // A round can still yield thousands of times when the OS deschedules the
  // worker that holds the last children (a loaded machine, a parallel test
  // run): the fewest over the rounds is what is checked. Before the change
  // every round took 4,700-98,000 yields, quiet or not; now a quiet round
  // takes about 60.
  weft::Runtime rt({.workers = 2});
  constexpr int k_children = 4000;
  long fewest = std::numeric_limits<long>::max();
  std::string counts;
  for (int round = 0; round < 9; ++round) {
    const long yields = rt.block_on([&] {
      std::atomic<int> started{0};
      weft::WaitGroup release;
      release.add(1);
      weft::WaitGroup done;
      done.add(k_children);
      for (int i = 0; i < k_children; ++i) {
        weft::go([&] {
          started.fetch_add(1);
          release.wait();  // parked, as the benchmark's fibers are
          done.done();
        }).detach();
      }
      long n = 0;
      while (started.load() != k_children) {
        weft::this_fiber::yield();
        ++n;
      }
      release.done();
      done.wait();
      return n;
    });
    counts += std::to_string(yields) + " ";
    fewest = std::min(fewest, yields);
  }
  INFO("yields per round for " << k_children << " children: " << counts);
  CHECK(fewest < k_children / 4);
}

TEST_CASE("fairness: a parked select over two sends on one channel commits either case about equally" *
          doctest::timeout(120)) {
  // Go's TestPseudoRandomSend: the selecting sender parks first, then the
  // receiver takes one value; over many rounds both cases must win.
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    constexpr int n = 200;
    int zeros = 0;
    rt.block_on([&] {
      weft::Channel<int> c;
      auto receiver = weft::go([&] {
        for (int i = 0; i < n; ++i) {
          // Wait until the sender's select has parked on c.
          // Both cases of the sender's current select are queued (a node
          // of the previous select may linger until its owner removes it).
          while (weft::detail::channel_waiting_senders(c.core("test")) != 2) weft::this_fiber::yield();
          if (*c.recv() == 0) ++zeros;
        }
      });
      for (int i = 0; i < n; ++i) {
        weft::select(weft::on_send(c, 1, [] {}), weft::on_send(c, 0, [] {}));
      }
      receiver.join();
    });
    CAPTURE(zeros);
    // Fair coin flips: 200 rounds give 100 +- 7 zeros; 60 .. 140 is > 8 sigma.
    CHECK(zeros >= 60);
    CHECK(zeros <= 140);
  }
}

TEST_CASE("fairness: a priority select that parks is served in argument order" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([&] {
    weft::Channel<int> c;
    int first = 0;
    auto receiver = weft::go([&] {
      for (int i = 0; i < 50; ++i) {
        while (weft::detail::channel_waiting_senders(c.core("test")) != 2) weft::this_fiber::yield();
        if (*c.recv() == 1) ++first;
      }
    });
    for (int i = 0; i < 50; ++i) {
      weft::select(weft::priority, weft::on_send(c, 1, [] {}), weft::on_send(c, 0, [] {}));
    }
    receiver.join();
    CHECK(first == 50);
  });
}

TEST_CASE("fairness: a fiber sleeping in a loop of tiny sleeps lets the others run" * doctest::timeout(60)) {
  // Go's TestAfterStress on one worker: the sleeper must give the worker up
  // at every sleep, however short, or the setter never runs.
  weft::Runtime rt({.workers = 1});
  bool saw_flag = false;
  rt.block_on([&] {
    std::atomic<bool> flag{false};
    auto sleeper = weft::go([&] {
      const auto until = Clock::now() + 2s;
      while (!flag.load() && Clock::now() < until) weft::this_fiber::sleep_for(1ns);
      saw_flag = flag.load();
    });
    weft::this_fiber::yield();  // the sleeper starts looping; we run again only if it gives way
    flag.store(true);
    sleeper.join();
  });
  CHECK(saw_flag);
}

TEST_CASE("fairness: sleep_until a time already passed yields too; sleep_for(0) does not park" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 1});
  rt.block_on([&] {
    std::atomic<bool> other_ran{false};
    auto other = weft::go([&] { other_ran.store(true); });
    weft::this_fiber::sleep_until(Clock::now() - 1s);
    CHECK(other_ran.load());
    other.join();
    // A zero or negative duration returns at once (Go's time.Sleep(0)).
    std::atomic<bool> second_ran{false};
    auto second = weft::go([&] { second_ran.store(true); });
    weft::this_fiber::sleep_for(0ns);
    weft::this_fiber::sleep_for(-5ms);
    CHECK_FALSE(second_ran.load());
    second.join();
  });
}

TEST_CASE("fairness: fibers unwinding a cancellation first do not take the yielders' turns away for good" *
          doctest::timeout(120)) {
  // A worker counts its picks and every 31st / 61st looks at the shared
  // queues first. A pick of cancelled work (which goes ahead of everything)
  // used to count as a pick and return before that test: when it fell on
  // a looking turn, the next turn was due only once the 32-bit count
  // wrapped, so a worker that always had work of its own never again ran a
  // fiber that yielded (or a task submitted from outside). 50 cancelled
  // fibers resumed in a row cover such a turn every time.
  weft::Runtime rt({.workers = 1});
  const std::uint64_t limit = 2'000'000;  // round trips the pair makes at most
  std::uint64_t trips_when_back = 0;
  rt.block_on([&] {
    for (int round = 0; round < 4; ++round) {
      weft::Channel<int> never;
      std::atomic<int> parked{0};
      weft::TaskGroup<void> group;
      for (int i = 0; i < 50; ++i) {
        group.spawn([&] {
          parked.fetch_add(1);
          (void)never.recv();
        });
      }
      while (parked.load() != 50) weft::this_fiber::yield();
      group.cancel();  // all 50 resume from the urgent queue, one pick each
      group.wait();
    }
    // A pair that hands a value back and forth keeps the worker busy with
    // work of its own; our yields must still come back while it runs.
    std::atomic<std::uint64_t> trips{0};
    std::atomic<bool> stop{false};
    weft::Channel<int> ping, pong;
    auto pinger = weft::go([&] {
      for (std::uint64_t i = 0; i < limit && !stop.load(); ++i) {
        ping.send(1);
        (void)pong.recv();
        trips.fetch_add(1);
      }
      ping.close();
    });
    auto ponger = weft::go([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    for (int i = 0; i < 50; ++i) weft::this_fiber::yield();
    trips_when_back = trips.load();
    stop.store(true);
    pinger.join();
    ponger.join();
  });
  // Each yield waits at most one looking turn: ~50 x 61 picks, not the
  // pair's whole run.
  CHECK(trips_when_back < limit / 4);
  MESSAGE("the pair made " << trips_when_back << " round trips while the main fiber yielded 50 times");
}
