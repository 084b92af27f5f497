// Cancellation scopes (weft/cancel.hpp): the rule, wait by wait.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <stop_token>
#include <thread>
#include <vector>

#include "cancel_support.hpp"
#include "support.hpp"
#include "weft/detail/channel_core.hpp"

using namespace std::chrono_literals;
using weft_test::scaled;

using weft_test::cancelled_while_parked;

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

TEST_CASE("cancel: the root scope is never cancelled; a scope's cancel is seen by cancelled() and check_cancelled()" *
          doctest::timeout(60)) {
  CHECK_FALSE(weft::this_fiber::cancelled());  // a plain thread
  CHECK_THROWS_AS(weft::CancelScope(), weft::NotInFiber);
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    CHECK_FALSE(weft::this_fiber::cancelled());
    CHECK_FALSE(weft::this_fiber::cancel_token().cancelled());
    weft::CancelScope scope;
    CHECK_FALSE(weft::this_fiber::cancelled());
    scope.cancel();
    CHECK(scope.cancelled());
    CHECK(weft::this_fiber::cancelled());
    CHECK_THROWS_AS(weft::this_fiber::check_cancelled(), weft::Cancelled);
    scope.cancel();  // idempotent
  });
  rt.block_on([] { CHECK_FALSE(weft::this_fiber::cancelled()); });  // the scope ended with its fiber
}

TEST_CASE("cancel: every kind of wait parked in a cancelled scope throws weft::Cancelled" * doctest::timeout(120)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    auto parks = [&rt, start = rt.metrics().parks]() mutable {
      return [&rt, start] { return rt.metrics().parks > start; };
    };
    weft::Channel<int> ch;
    SUBCASE("recv") {
      cancelled_while_parked(rt, [&] { (void)ch.recv(); }, [&] { return weft::detail::channel_waiting_receivers(ch.core("t")) == 1; });
    }
    SUBCASE("send") {
      cancelled_while_parked(rt, [&] { ch.send(1); }, [&] { return weft::detail::channel_waiting_senders(ch.core("t")) == 1; });
      CHECK_FALSE(ch.try_recv().has_value());  // nothing was sent
    }
    SUBCASE("recv_for") {
      cancelled_while_parked(rt, [&] { (void)ch.recv_for(10s); }, [&] { return weft::detail::channel_waiting_receivers(ch.core("t")) == 1; });
    }
    SUBCASE("select") {
      weft::Channel<int> other;
      cancelled_while_parked(
          rt,
          [&] {
            weft::select(weft::on_recv(ch, [](std::optional<int>) {}), weft::on_send(other, 5, [] {}),
                         weft::after(10s, [] {}));
          },
          [&] { return weft::detail::channel_waiting_receivers(ch.core("t")) == 1; });
      CHECK_FALSE(other.try_recv().has_value());
    }
    SUBCASE("sleep") { cancelled_while_parked(rt, [] { weft::this_fiber::sleep_for(10s); }, parks()); }
    SUBCASE("mutex") {
      weft::Mutex m;
      m.lock();
      cancelled_while_parked(rt, [&] { m.lock(); }, parks());
      CHECK(m.try_lock() == false);  // still ours, not the cancelled fiber's
      m.unlock();
      CHECK(m.try_lock());
      m.unlock();
    }
    SUBCASE("condvar") {
      weft::Mutex m;
      weft::CondVar cv;
      std::atomic<bool> relocked{false};
      cancelled_while_parked(
          rt,
          [&] {
            std::unique_lock<weft::Mutex> lock(m);
            try {
              cv.wait(lock);
            } catch (const weft::Cancelled&) {
              relocked.store(lock.owns_lock());  // re-acquired before unwinding
              throw;
            }
          },
          parks());
      CHECK(relocked.load());
    }
    SUBCASE("wait group") {
      weft::WaitGroup wg;
      wg.add(1);
      cancelled_while_parked(rt, [&] { wg.wait(); }, parks());
      wg.done();
    }
    SUBCASE("semaphore") {
      weft::Semaphore sem(0);
      cancelled_while_parked(rt, [&] { sem.acquire(); }, parks());
      sem.release();
      CHECK(sem.try_acquire());  // the permit was not taken by the cancelled fiber
    }
    SUBCASE("join") {
      weft::Channel<int> never;
      auto other = rt.spawn([&] { return never.recv().value_or(-1); });  // root scope: not cancelled
      cancelled_while_parked(rt, [&] { other.join(); }, parks());
      never.close();
      CHECK(other.join() == -1);
    }
  }
}

TEST_CASE("cancel: a wait in a scope already cancelled throws if it would park, and completes if it can" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::Channel<int> buffered(4);
    weft::Channel<int> empty;
    weft::Mutex m;
    weft::CancelScope scope;
    scope.cancel();
    CHECK(buffered.send(1));           // room: completes
    CHECK(buffered.recv() == std::optional<int>(1));  // a value: completes
    m.lock();                          // free: completes
    m.unlock();
    CHECK_THROWS_AS((void)empty.recv(), weft::Cancelled);
    CHECK_THROWS_AS(weft::this_fiber::sleep_for(1ms), weft::Cancelled);
    CHECK_FALSE(empty.try_recv().has_value());  // try_* forms are not affected
  });
}

TEST_CASE("cancel: scopes nest; cancelling the outer cancels the inner, not the other way" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::CancelScope outer;
    {
      weft::CancelScope inner;
      inner.cancel();
      CHECK(weft::this_fiber::cancelled());
      CHECK_FALSE(outer.cancelled());
    }
    CHECK_FALSE(weft::this_fiber::cancelled());  // back in the outer scope
    {
      weft::CancelScope inner;
      outer.cancel();
      CHECK(inner.cancelled());
      weft::CancelScope innermost;  // made after: starts cancelled
      CHECK(innermost.cancelled());
    }
  });
}

TEST_CASE("cancel: fibers spawned in a scope run in it, and a cancel reaches them while parked" *
          doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t n = scaled(500);
    std::atomic<std::size_t> cancelled{0};
    rt.block_on([&] {
      weft::Channel<int> never;
      std::vector<weft::JoinHandle<void>> children;
      {
        weft::CancelScope scope;
        for (std::size_t i = 0; i < n; ++i) {
          children.push_back(weft::go([&] {
            // The child's token is its scope's: a cancel only goes one way,
            // so the token's reading lies between two readings of the
            // fiber's own flag (the parent may cancel at any moment, and a
            // single comparison of two reads raced with it under TSan).
            const bool before = weft::this_fiber::cancelled();
            const bool token = weft::this_fiber::cancel_token().cancelled();
            const bool after = weft::this_fiber::cancelled();
            CHECK((!before || token));
            CHECK((!token || after));
            try {
              (void)never.recv();
            } catch (const weft::Cancelled&) {
              cancelled.fetch_add(1);
              throw;
            }
          }));
        }
        weft::this_fiber::yield();
        scope.cancel();
      }
      // Out of the scope again: these joins are not cancelled, and each
      // rethrows its child's weft::Cancelled.
      for (auto& c : children) CHECK_THROWS_AS(c.join(), weft::Cancelled);
    });
    CHECK(cancelled.load() == n);
  }
}

// A spawner takes its children's references on its scope in batches
// (spawn credits) and gives back what it did not use when it leaves the
// scope or ends. Children that outlive the scope object, spawners that leave
// mid-batch, nested scopes entered and left between spawns: every child is
// still in its scope (the cancel reaches it), and every scope is freed (the
// ASan build's leak check; a reference given back twice would be a
// use-after-free there).
TEST_CASE("cancel: spawn credits: children outlive their scope, spawners leave it mid-batch, nothing leaks" *
          doctest::timeout(60)) {
  for (std::size_t workers : weft_test::k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t n = scaled(300);  // not a multiple of the batch
    std::atomic<std::size_t> cancelled{0};
    std::atomic<std::size_t> finished{0};
    rt.block_on([&] {
      weft::Channel<int> never;
      weft::WaitGroup wg;
      auto child = [&] {
        try {
          (void)never.recv();
        } catch (const weft::Cancelled&) {
          cancelled.fetch_add(1);
        }
        finished.fetch_add(1);
        wg.done();
      };
      weft::CancelToken outer_token, inner_token;
      {
        weft::CancelScope outer;
        outer_token = outer.token();
        for (std::size_t i = 0; i < n; ++i) {
          wg.add(1);
          weft::go(child).detach();
          if (i % 97 == 5) {
            // Leave the outer scope's batch half used: an inner scope, its
            // own spawns, then back.
            weft::CancelScope inner;
            inner_token = inner.token();
            for (int k = 0; k < 3; ++k) {
              wg.add(1);
              weft::go(child).detach();
            }
          }
        }
        // A spawner that ends mid-batch with credits left.
        wg.add(1);
        weft::go([&] {
          for (int k = 0; k < 10; ++k) {
            wg.add(1);
            weft::go(child).detach();
          }
          wg.done();
        }).detach();
      }  // the scope object ends; its children live on in it
      weft::this_fiber::sleep_for(2ms);
      CHECK(finished.load() == 0);
      outer_token.cancel();  // reaches the inner scopes' children too
      wg.wait();
      CHECK(inner_token.cancelled());
    });
    const std::size_t inner_children = 3 * ((n - 6) / 97 + 1);
    CHECK(cancelled.load() == n + inner_children + 10);
    CHECK(finished.load() == n + inner_children + 10);
  }
}

TEST_CASE("cancel: JoinHandle::cancel stops a parked task, a running one at its next wait, an unstarted one before it runs" *
          doctest::timeout(60)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    rt.block_on([] {
      weft::Channel<int> never;
      // Parked.
      auto parked = weft::go([&] { return never.recv().value_or(-1); });
      while (weft::detail::channel_waiting_receivers(never.core("t")) == 0) weft::this_fiber::yield();
      parked.cancel();
      CHECK_THROWS_AS(parked.join(), weft::Cancelled);
      // Running a CPU loop: cancelled() turns true; its next wait throws.
      std::atomic<bool> saw{false};
      std::atomic<bool> started{false};
      auto busy = weft::go([&] {
        started.store(true);
        while (!weft::this_fiber::cancelled()) weft::this_fiber::yield();
        saw.store(true);
        weft::this_fiber::sleep_for(10s);
      });
      // Running, not merely queued (one yield was not enough on 2 workers:
      // the other worker ran us again first, and a task cancelled before it
      // starts never runs, as below).
      while (!started.load()) weft::this_fiber::yield();
      busy.cancel();
      CHECK_THROWS_AS(busy.join(), weft::Cancelled);
      CHECK(saw.load());
      // Not started (queued behind us on one worker): never runs.
      std::atomic<bool> ran{false};
      auto unstarted = weft::go([&] { ran.store(true); return 1; });
      unstarted.cancel();
      CHECK_THROWS_AS(unstarted.join(), weft::Cancelled);
      CHECK_FALSE(ran.load());
      // Finished first: the value stands.
      auto quick = weft::go([] { return 7; });
      CHECK(quick.join_for(5s));
      quick.cancel();
      CHECK(quick.join() == 7);
      // Siblings in the same scope are not affected.
      auto sibling = weft::go([] { weft::this_fiber::sleep_for(1ms); return 3; });
      CHECK(sibling.join() == 3);
    });
  }
}

// A task cancelled and then detached before it starts: the worker that
// starts it finds no handle left, so it attaches its fiber without the
// barrier that pairs with a racing cancel() (Worker::bind_task); the
// cancel that came first must still keep the body from running. On 1
// worker nothing starts before the spawner parks; on 2, detached tasks
// that nobody cancelled all run, through the same start.
TEST_CASE("cancel: a task cancelled and then detached before it starts never runs" * doctest::timeout(60)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    constexpr int n = 200;
    std::atomic<int> ran_cancelled{0};
    std::atomic<int> ran_kept{0};
    rt.block_on([&] {
      // On 2 workers the uncancelled "doomed" tasks count too, so the wait
      // covers every task; on 1, the sleep below lets the worker drain the
      // cancelled ones (it has nothing else to run).
      weft::WaitGroup kept;
      kept.add(workers == 1 ? n : 2 * n);
      for (int i = 0; i < n; ++i) {
        auto doomed = weft::go([&] {
          ran_cancelled.fetch_add(1);
          kept.done();
        });
        auto fine = weft::go([&] {
          ran_kept.fetch_add(1);
          kept.done();
        });
        if (workers == 1) doomed.cancel();  // on 2 workers it may have started: checked below
        doomed.detach();
        fine.detach();
      }
      kept.wait();
      if (workers == 1) weft::this_fiber::sleep_for(20ms);  // parks: the cancelled tasks left are taken
    });
    CHECK(ran_kept.load() == n);
    if (workers == 1) CHECK(ran_cancelled.load() == 0);
    if (workers == 2) CHECK(ran_cancelled.load() == n);
  }
}

TEST_CASE("cancel: JoinHandle::cancel reaches the groups and scopes the task opened" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  std::atomic<int> children_cancelled{0};
  rt.block_on([&] {
    auto h = weft::go([&] {
      weft::TaskGroup<> g;
      for (int i = 0; i < 10; ++i) {
        g.spawn([&] {
          try {
            weft::this_fiber::sleep_for(10s);
          } catch (const weft::Cancelled&) {
            children_cancelled.fetch_add(1);
            throw;
          }
        });
      }
      g.wait();  // shielded: returns once the children are cancelled
      weft::this_fiber::check_cancelled();
    });
    weft::this_fiber::sleep_for(5ms);
    h.cancel();
    CHECK_THROWS_AS(h.join(), weft::Cancelled);
  });
  CHECK(children_cancelled.load() == 10);
}

TEST_CASE("cancel: select waits for a join or a cancellation beside channel cases" * doctest::timeout(60)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    rt.block_on([] {
      weft::Channel<int> never;
      // A join commits when the task finishes; join() then returns at once.
      auto child = weft::go([] {
        weft::this_fiber::sleep_for(5ms);
        return 42;
      });
      bool joined = false;
      const std::size_t idx = weft::select(weft::on_recv(never, [](std::optional<int>) {}),
                                           weft::on_join(child, [&] { joined = true; }));
      CHECK(idx == 1);
      CHECK(joined);
      CHECK(child.is_finished());
      CHECK(child.join() == 42);
      // A finished task's join case is ready at once.
      auto done = weft::go([] { return 1; });
      CHECK(done.join_for(5s));
      CHECK(weft::select(weft::on_join(done, [] {}), weft::on_default([] {})) == 0);
      CHECK(done.join() == 1);
      // A cancellation commits when the scope is cancelled.
      weft::CancelScope scope;
      weft::CancelToken token = scope.token();
      auto canceller = weft::go([token] {
        weft::this_fiber::sleep_for(5ms);
        token.cancel();
      });
      // Shielded from our own cancellation by nothing: the select is a wait
      // of ours, and our scope is the one cancelled: it throws instead.
      CHECK_THROWS_AS(weft::select(weft::on_recv(never, [](std::optional<int>) {}), weft::on_cancel(token, [] {})),
                      weft::Cancelled);
      canceller.detach();
    });
    rt.block_on([] {
      // Watching another scope's cancellation from outside it.
      weft::Channel<weft::CancelToken> handoff(1);
      auto worker = weft::go([&] {
        weft::CancelScope scope;
        CHECK(handoff.send(scope.token()));
        weft::this_fiber::sleep_for(10s);
      });
      const weft::CancelToken token = *handoff.recv();
      bool seen = false;
      auto canceller = weft::go([&] { token.cancel(); });
      weft::select(weft::on_cancel(token, [&] { seen = true; }), weft::after(10s, [] {}));
      CHECK(seen);
      canceller.join();
      CHECK_THROWS_AS(worker.join(), weft::Cancelled);
      // A token of no scope never fires.
      CHECK(weft::select(weft::on_cancel(weft::CancelToken(), [] {}), weft::after(1ms, [] {})) == 1);
    });
  }
}

TEST_CASE("cancel: std::stop_token in and out" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    std::stop_source source;
    weft::CancelScope scope(source.get_token());
    std::stop_token out = scope.token().stop_token();
    bool callback_ran = false;
    std::stop_callback cb(out, [&] { callback_ran = true; });
    CHECK_FALSE(weft::this_fiber::cancelled());
    source.request_stop();
    CHECK(weft::this_fiber::cancelled());
    CHECK(out.stop_requested());
    CHECK(callback_ran);
    // A stop token asked for after the cancellation is stopped already.
    weft::CancelScope late;
    late.cancel();
    CHECK(late.token().stop_token().stop_requested());
    // A stop_source already stopped cancels the scope at once.
    std::stop_source stopped;
    stopped.request_stop();
    weft::CancelScope born_cancelled(stopped.get_token());
    CHECK(born_cancelled.cancelled());
  });
}

TEST_CASE("cancel: a deadline scope cancels its waits when it passes" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    const auto t0 = Clock::now();
    bool threw = false;
    try {
      weft::CancelScope scope(20ms);
      weft::this_fiber::sleep_for(10s);
    } catch (const weft::Cancelled&) {
      threw = true;
    }
    CHECK(threw);
    const auto took = Clock::now() - t0;
    CHECK(took >= 20ms);
    CHECK(took < 5s);
  });
}

TEST_CASE("cancel: shutdown_for cancels what is still running after the grace period" * doctest::timeout(60)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    std::atomic<int> unwound{0};
    weft::JoinHandle<void> spinner, sleeper, quick;
    const auto t0 = Clock::now();
    {
      weft::Runtime rt({.workers = workers, .time_slice = std::chrono::milliseconds(1)});
      spinner = rt.spawn([&] {
        weft_test::CountsDestruction guard{&unwound};
        for (;;) weft::this_fiber::maybe_yield();  // never ends by itself
      });
      sleeper = rt.spawn([&] {
        weft_test::CountsDestruction guard{&unwound};
        for (;;) weft::this_fiber::sleep_for(1ms);  // keeps a timer armed: never quiescent
      });
      quick = rt.spawn([] { weft::this_fiber::sleep_for(1ms); });
      rt.shutdown_for(30ms);
    }
    const auto took = Clock::now() - t0;
    CHECK(took >= 30ms);
    CHECK(took < 5s);
    CHECK(unwound.load() == 2);
    CHECK_THROWS_AS(spinner.join(), weft::Cancelled);
    CHECK_THROWS_AS(sleeper.join(), weft::Cancelled);
    quick.join();  // it finished within the grace period
  }
}

TEST_CASE("cancel: weft::blocking withdraws a job that has not started, and waits for one that has" *
          doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2, .max_blocking_threads = 1});
  rt.block_on([] {
    std::atomic<bool> release{false};
    std::atomic<bool> running{false};
    std::atomic<bool> second_ran{false};
    // Cancellers run outside the scopes they cancel; they get the tokens
    // over these channels.
    weft::Channel<weft::CancelToken> first_token(1), second_token(1);
    auto canceller = weft::go([&] {
      weft::CancelToken first = *first_token.recv();
      while (!running.load()) weft::this_fiber::yield();
      first.cancel();  // the first call's job is running: its caller must still wait for it
      weft::CancelToken second = *second_token.recv();
      weft::this_fiber::sleep_for(2ms);
      second.cancel();  // the second call's job is queued behind it: withdrawn
      weft::this_fiber::sleep_for(5ms);
      release.store(true);
    });
    // The pool's one thread runs this job until `release`.
    auto busy = weft::go([&] {
      weft::CancelScope scope;
      CHECK(first_token.send(scope.token()));
      const int v = weft::blocking([&] {
        running.store(true);
        while (!release.load()) std::this_thread::yield();
        return 7;
      });
      CHECK(v == 7);  // completed: the value came back
      weft::this_fiber::sleep_for(1ms);  // the next wait in the cancelled scope throws
      return v;
    });
    auto queued = weft::go([&] {
      while (!running.load()) weft::this_fiber::yield();
      weft::CancelScope scope;
      CHECK(second_token.send(scope.token()));
      weft::blocking([&] { second_ran.store(true); });
    });
    CHECK_THROWS_AS(queued.join(), weft::Cancelled);
    CHECK_THROWS_AS(busy.join(), weft::Cancelled);
    canceller.join();
    CHECK_FALSE(second_ran.load());
  });
  // Nothing left counted in flight (the withdrawn job uncounted). The pool
  // thread stops counting its job just after it wakes the caller, so give
  // it a moment (CI's opt run read 1 here once).
  for (int i = 0; i < 5000 && rt.metrics().blocking_in_flight != 0; ++i) std::this_thread::sleep_for(1ms);
  CHECK(rt.metrics().blocking_in_flight == 0);
}

TEST_CASE("cancel: a cancellation racing a send never loses or duplicates the value" * doctest::timeout(120)) {
  for (std::size_t workers : {1, 2, 4}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const std::size_t rounds = scaled(2000);
    std::size_t by_receiver = 0, by_drain = 0, cancelled = 0;
    rt.block_on([&] {
      for (std::size_t i = 0; i < rounds; ++i) {
        weft::Channel<std::size_t> ch;
        weft::Channel<weft::CancelToken> token_of(1);
        auto receiver = weft::go([&] {
          weft::CancelScope scope;
          CHECK(token_of.send(scope.token()));
          return ch.recv();  // Cancelled, or the value
        });
        const weft::CancelToken token = *token_of.recv();
        auto sender = weft::go([&, i] { return ch.send(i); });
        if (i % 2 == 0) weft::this_fiber::yield();
        token.cancel();
        std::optional<std::size_t> got;
        try {
          got = receiver.join();
        } catch (const weft::Cancelled&) {
          ++cancelled;
        }
        if (got) {
          CHECK(*got == i);
          ++by_receiver;
          CHECK(sender.join());  // taken: the send completed
        } else {
          // The receiver did nothing: the value is still the sender's, and
          // it goes to whoever receives next.
          CHECK(ch.recv() == std::optional<std::size_t>(i));
          ++by_drain;
          CHECK(sender.join());
        }
      }
    });
    CHECK(by_receiver + by_drain == rounds);
    CHECK(cancelled == by_drain);
    MESSAGE(workers << " workers: " << by_receiver << " received before the cancel, " << by_drain << " after");
  }
}

TEST_CASE("cancel: deadlock detection still sees a group whose children can never finish; cancelling it ends the wait" *
          doctest::timeout(60)) {
  CHECK_THROWS_AS(weft::Runtime::run({.workers = 2},
                                     [] {
                                       weft::Channel<int> never;
                                       weft::TaskGroup<> g;
                                       g.spawn([&] { (void)never.recv(); });
                                       g.wait();  // every fiber parked, nothing can wake one
                                     }),
                  weft::Deadlock);
  const int r = weft::Runtime::run({.workers = 2}, [] {
    weft::Channel<int> never;
    weft::TaskGroup<> g;
    g.spawn([&] { (void)never.recv(); });
    weft::this_fiber::sleep_for(std::chrono::milliseconds(2));
    g.cancel();
    g.wait();
    return 5;
  });
  CHECK(r == 5);
}

TEST_CASE("cancel: cancels and dumps racing fibers that park and wake all the time lose no cancellation and no value" *
          doctest::timeout(600)) {
  // Every park publishes its waiter for cancellers and dumps, which may
  // find it at any moment (lib/sync/wait_visit.hpp). Here pairs of fibers
  // ping-pong without pause, each pair a random number of round trips
  // before both park on a channel nobody sends to, while a plain thread
  // dumps the runtime over and over and the test cancels them, by their
  // group's scope or by their handles, at a random moment, over many
  // seeds. A cancellation that missed a park leaves a fiber parked for
  // ever (block_on reports the deadlock); a visit that touched a waiter its
  // fiber had left breaks a value or a count.
  for (unsigned seed = 0; seed < 12; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const std::size_t workers = 1 + seed % 4;
    weft::Runtime rt({.workers = workers});
    // A dumper thread for each round, joined once the cancel is made: while
    // the test waits for the cancelled fibers no outside thread is left,
    // so a lost one is reported as a deadlock (block_on throws
    // weft::Deadlock) instead of hanging the test.
    std::atomic<std::size_t> dumps{0};
    const std::size_t rounds = weft_test::scaled(150);
    std::atomic<std::size_t> bad_values{0}, trips{0};
    std::size_t fibers_total = 0, cancelled_total = 0;
    rt.block_on([&] {
      for (std::size_t round = 0; round < rounds; ++round) {
        const std::size_t pairs = 1 + rng() % 6;
        std::atomic<std::size_t> started{0}, cancelled{0};
        // One side of a pair: sends i, expects i + 1 back (or the reverse),
        // n_trips times, then waits on `never`; ends only by cancellation.
        weft::Channel<std::uint64_t> never;
        auto side = [&](weft::Channel<std::uint64_t> out, weft::Channel<std::uint64_t> in, bool first,
                               std::uint64_t n_trips) {
          started.fetch_add(1);
          try {
            for (std::uint64_t i = 0; i < 2 * n_trips; i += 2) {
              if (first) {
                out.send(i);
                const auto v = in.recv();
                if (!v || *v != i + 1) bad_values.fetch_add(1);
                trips.fetch_add(1, std::memory_order_relaxed);
              } else {
                const auto v = in.recv();
                if (!v || *v != i) bad_values.fetch_add(1);
                out.send(i + 1);
              }
            }
            (void)never.recv();
            bad_values.fetch_add(1);  // nothing is ever sent on it
          } catch (const weft::Cancelled&) {
            cancelled.fetch_add(1);
            throw;
          }
        };
        const std::uint32_t wait_us = rng() % 300;
        std::atomic<bool> stop_dumping{false};
        std::thread dumper([&] {
          while (!stop_dumping.load()) {
            (void)rt.dump();
            dumps.fetch_add(1);
          }
        });
        auto stop_dumper = [&] {
          stop_dumping.store(true);
          dumper.join();
        };
        auto let_them_run = [&] {
          while (started.load() != 2 * pairs) weft::this_fiber::yield();
          weft::this_fiber::sleep_for(std::chrono::microseconds(wait_us));
        };
        if (round % 2 == 0) {
          weft::TaskGroup<void> group;
          for (std::size_t p = 0; p < pairs; ++p) {
            weft::Channel<std::uint64_t> a, b;
            const std::uint64_t n = rng() % 400;
            group.spawn([=] { side(a, b, true, n); });
            group.spawn([=] { side(b, a, false, n); });
          }
          let_them_run();
          group.cancel();
          stop_dumper();
          group.wait();  // cancelled children are collected silently
        } else {
          std::vector<weft::JoinHandle<void>> handles;
          for (std::size_t p = 0; p < pairs; ++p) {
            weft::Channel<std::uint64_t> a, b;
            const std::uint64_t n = rng() % 400;
            handles.push_back(weft::go([=] { side(a, b, true, n); }));
            handles.push_back(weft::go([=] { side(b, a, false, n); }));
          }
          let_them_run();
          for (auto& h : handles) h.cancel();
          stop_dumper();
          for (auto& h : handles) CHECK_THROWS_AS(h.join(), weft::Cancelled);
        }
        CHECK(cancelled.load() == 2 * pairs);  // every fiber ended by its cancellation
        fibers_total += 2 * pairs;
        cancelled_total += cancelled.load();
      }
    });
    CHECK(bad_values.load() == 0);
    CHECK(cancelled_total == fibers_total);
    MESSAGE(workers << " workers: " << fibers_total << " fibers cancelled after " << trips.load() << " round trips, "
                    << dumps.load() << " dumps meanwhile");
  }
}
