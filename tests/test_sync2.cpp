// Go's sync types beside the others: weft::RWMutex, weft::Once, weft::Timer
// and after_func, disabled select cases, timed Semaphore acquire.
// Behaviour, ordering policies, cancellation of every parked wait, deadlock
// reports, and stress with invariants over seeds.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cancel_support.hpp"
#include "support.hpp"
#include "sync_support.hpp"

using namespace std::chrono_literals;
using weft_test::Actor;
using weft_test::k_sides;
using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::Side;
using weft_test::spin_until;

using weft_test::cancelled_while_parked;

namespace {

// "parks went up since now", for cancelled_while_parked.
auto parks_since(weft::Runtime& rt) {
  return [&rt, start = rt.metrics().parks] { return rt.metrics().parks > start; };
}

}  // namespace

// ---- RWMutex ----

TEST_CASE("rwmutex: readers share, a writer excludes, try forms say so") {
  weft::RWMutex m;
  CHECK(m.try_lock_shared());
  CHECK(m.try_lock_shared());
  CHECK(m.readers() == 2);
  CHECK_FALSE(m.try_lock());
  m.unlock_shared();
  m.unlock_shared();
  CHECK(m.try_lock());
  CHECK(m.locked_exclusive());
  CHECK_FALSE(m.try_lock_shared());
  CHECK_FALSE(m.try_lock());
  m.unlock();
  {
    std::shared_lock<weft::RWMutex> r1(m);
    std::shared_lock<weft::RWMutex> r2(m);
    CHECK(m.readers() == 2);
  }
  {
    std::unique_lock<weft::RWMutex> w(m);
    CHECK(m.locked_exclusive());
  }
  std::scoped_lock both(m);
  CHECK(m.locked_exclusive());
}

TEST_CASE("rwmutex: unlocking what is not held throws std::logic_error and leaves it usable") {
  weft::RWMutex m;
  CHECK_THROWS_AS(m.unlock(), std::logic_error);
  CHECK_THROWS_AS(m.unlock_shared(), std::logic_error);
  m.lock_shared();
  CHECK_THROWS_AS(m.unlock(), std::logic_error);
  m.unlock_shared();
  m.lock();
  CHECK_THROWS_AS(m.unlock_shared(), std::logic_error);
  m.unlock();
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("rwmutex: a waiting writer holds back new readers, and gets in when the readers leave" *
          doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::RWMutex m;
    std::vector<std::string> order;  // appended under m (exclusive) or by one reader at a time
    std::mutex order_lock;
    auto note = [&](const char* s) {
      std::lock_guard<std::mutex> g(order_lock);
      order.push_back(s);
    };
    m.lock_shared();  // the first reader: this thread
    auto parks = parks_since(rt);
    auto writer = rt.spawn([&] {
      m.lock();
      note("writer");
      m.unlock();
    });
    REQUIRE(spin_until(parks));
    CHECK_FALSE(m.try_lock_shared());  // writer preference: a writer waits
    auto parks2 = parks_since(rt);
    auto reader = rt.spawn([&] {
      m.lock_shared();
      note("late reader");
      m.unlock_shared();
    });
    REQUIRE(spin_until(parks2));
    note("first reader leaves");
    m.unlock_shared();
    writer.join();
    reader.join();
    REQUIRE(order.size() == 3);
    CHECK(order[0] == "first reader leaves");
    CHECK(order[1] == "writer");
    CHECK(order[2] == "late reader");
  }
}

TEST_CASE("rwmutex: readers queued during a writer's turn get in before the next writer" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::RWMutex m;
    std::atomic<int> readers_in{0};
    std::atomic<bool> second_writer_in{false};
    std::atomic<int> readers_before_second_writer{-1};
    m.lock();  // writer 1: this thread
    constexpr int k_readers = 3;
    std::vector<weft::JoinHandle<void>> readers;
    for (int i = 0; i < k_readers; ++i) {
      auto parks = parks_since(rt);
      readers.push_back(rt.spawn([&] {
        m.lock_shared();
        readers_in.fetch_add(1);
        weft::this_fiber::sleep_for(2ms);  // overlap: all must be inside together
        m.unlock_shared();
      }));
      REQUIRE(spin_until(parks));
    }
    auto parks = parks_since(rt);
    auto writer2 = rt.spawn([&] {
      m.lock();
      readers_before_second_writer.store(readers_in.load());
      second_writer_in.store(true);
      m.unlock();
    });
    REQUIRE(spin_until(parks));
    m.unlock();
    for (auto& r : readers) r.join();
    writer2.join();
    CHECK(second_writer_in.load());
    CHECK(readers_before_second_writer.load() == k_readers);
  }
}

TEST_CASE("rwmutex: timed locks time out, and a reader behind a writer that gave up gets in" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  for (Side side : k_sides) {
    CAPTURE(weft_test::side_name(side));
    weft::RWMutex m;
    m.lock_shared();
    std::atomic<bool> writer_timed_out{false};
    std::atomic<bool> late_reader_in{false};
    {
      Actor writer(rt, side, [&] { writer_timed_out.store(!m.try_lock_for(100ms)); });
      spin_until([&] {  // until the writer waits (new readers are then refused), or already gave up
        if (writer_timed_out.load()) return true;
        if (!m.try_lock_shared()) return true;
        m.unlock_shared();
        return false;
      });
      // A reader queued behind the waiting writer; the writer's time-out lets it in.
      Actor reader(rt, side, [&] {
        m.lock_shared();
        late_reader_in.store(true);
        m.unlock_shared();
      });
    }
    CHECK(writer_timed_out.load());
    CHECK(late_reader_in.load());
    CHECK(m.readers() == 1);
    m.unlock_shared();
    m.lock();
    bool shared_timed_out = false;
    rt.block_on([&] { shared_timed_out = !m.try_lock_shared_until(std::chrono::system_clock::now() + 10ms); });
    CHECK(shared_timed_out);
    CHECK_FALSE(m.try_lock_for(0ms));
    m.unlock();
    CHECK(m.try_lock_for(0ms));
    m.unlock();
  }
}

TEST_CASE("rwmutex: parked lock and lock_shared throw weft::Cancelled and leave the lock consistent" *
          doctest::timeout(120)) {
  for (std::size_t workers : {1, 2}) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::RWMutex m;
    SUBCASE("writer behind a reader; a reader queued behind it gets in once it is gone") {
      m.lock_shared();
      std::atomic<bool> reader_in{false};
      auto parks = parks_since(rt);
      std::optional<weft::JoinHandle<void>> reader;
      cancelled_while_parked(
          rt, [&] { m.lock(); },
          [&] {
            if (!parks()) return false;
            if (!reader) {
              auto parks2 = parks_since(rt);
              reader = rt.spawn([&] {
                m.lock_shared();
                reader_in.store(true);
                m.unlock_shared();
              });
              spin_until(parks2);
            }
            return true;
          });
      reader->join();
      CHECK(reader_in.load());
      m.unlock_shared();
      CHECK(m.try_lock());
      m.unlock();
    }
    SUBCASE("reader behind a writer") {
      m.lock();
      cancelled_while_parked(rt, [&] { m.lock_shared(); }, parks_since(rt));
      CHECK(m.readers() == 0);
      m.unlock();
      CHECK(m.try_lock_shared());
      m.unlock_shared();
    }
  }
}

TEST_CASE("rwmutex: a fiber waiting for a write lock that can never come is in the deadlock report" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  auto msg = weft_test::deadlock_message(rt, [] {
    weft::RWMutex m;
    m.lock_shared();
    m.lock();  // upgrade: waits for itself
  });
  REQUIRE(msg.has_value());
  CAPTURE(*msg);
  CHECK(msg->find("write lock of weft::RWMutex") != std::string::npos);
}

TEST_CASE("rwmutex: readers never see a half-written structure; fibers and plain threads mixed (stress)" *
          doctest::timeout(600)) {
  for (std::size_t workers : k_worker_counts) {
    for (std::uint32_t seed : {1u, 2u, 3u}) {
      CAPTURE(workers);
      CAPTURE(seed);
      weft::Runtime rt({.workers = workers});
      weft::RWMutex m;
      // Invariant under m: a == b, and sum == the number of completed writes.
      std::uint64_t a = 0, b = 0, writes = 0;
      std::atomic<int> torn{0};
      std::atomic<int> readers_inside{0};
      std::atomic<int> max_readers_inside{0};
      std::atomic<int> writers_inside{0};
      std::atomic<int> overlap{0};
      const int rounds = static_cast<int>(scaled(2000));
      std::atomic<std::uint64_t> writes_done{0};
      auto worker = [&](std::uint32_t id, bool is_writer) {
        std::mt19937 rng(seed * 7919 + id);
        for (int i = 0; i < rounds; ++i) {
          const bool write = is_writer && rng() % 4 != 0;
          if (write) {
            std::unique_lock<weft::RWMutex> g(m);
            if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) overlap.fetch_add(1);
            ++a;
            if (rng() % 8 == 0) weft_test::pause();
            ++b;
            ++writes;
            writes_done.fetch_add(1);
            writers_inside.fetch_sub(1);
          } else {
            std::shared_lock<weft::RWMutex> g(m);
            const int in = readers_inside.fetch_add(1) + 1;
            int seen = max_readers_inside.load();
            while (in > seen && !max_readers_inside.compare_exchange_weak(seen, in)) {
            }
            if (writers_inside.load() != 0) overlap.fetch_add(1);
            if (a != b || a != writes) torn.fetch_add(1);
            if (rng() % 8 == 0) weft_test::pause();
            if (a != b) torn.fetch_add(1);
            readers_inside.fetch_sub(1);
          }
        }
      };
      {
        std::vector<Actor> actors;
        actors.reserve(8);
        for (std::uint32_t id = 0; id < 8; ++id) {
          const Side side = id % 4 == 3 ? Side::thread : Side::fiber;
          actors.emplace_back(rt, side, [&worker, id] { worker(id, id % 2 == 0); });
        }
      }
      CHECK(torn.load() == 0);
      CHECK(overlap.load() == 0);
      CHECK(a == writes);
      CHECK(writes == writes_done.load());
      CHECK(m.readers() == 0);
      CHECK_FALSE(m.locked_exclusive());
    }
  }
}

TEST_CASE("rwmutex: may be destroyed right after its last unlock, while the releaser's unlock is returning" *
          doctest::timeout(300)) {
  // The releaser (a writer, or the last reader) hands the lock to a waiter
  // that unlocks and deletes it, possibly while the releaser is still
  // inside its unlock on another worker (ASan builds catch a touch after).
  const int rounds = static_cast<int>(scaled(2'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    const int deleted = rt.block_on([rounds, &rt] {
      int n = 0;
      for (int r = 0; r < rounds; ++r) {
        auto* m = new weft::RWMutex;
        const bool release_shared = r % 3 == 0;
        const bool wait_shared = r % 2 == 0 && !release_shared;  // a reader cannot wait behind a reader
        if (release_shared) m->lock_shared(); else m->lock();
        std::atomic<bool> started{false};
        const std::uint64_t parks_before = rt.metrics().parks;
        auto waiter = weft::go([m, &started, wait_shared] {
          started.store(true);
          if (wait_shared) {
            m->lock_shared();
            m->unlock_shared();
          } else {
            m->lock();
            m->unlock();
          }
          delete m;
          return 1;
        });
        while (!started.load()) weft::this_fiber::yield();
        if (r % 4 < 2) {
          spin_until([&] { return rt.metrics().parks > parks_before; });  // parked: a hand-off
        } else {
          for (int y = 0; y < r % 3; ++y) weft::this_fiber::yield();  // any moment
        }
        if (release_shared) m->unlock_shared(); else m->unlock();
        n += waiter.join();
      }
      return n;
    });
    CHECK(deleted == rounds);
  }
}

// ---- Once ----

TEST_CASE("once: many concurrent callers, f runs once, and every caller sees its effect" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    for (int round = 0; round < static_cast<int>(scaled(20)); ++round) {
      weft::Once once;
      int value = 0;  // plain: Once orders it
      std::atomic<int> runs{0};
      std::atomic<int> saw_value{0};
      const int callers = 50;
      rt.block_on([&] {
        std::vector<weft::JoinHandle<void>> hs;
        for (int i = 0; i < callers; ++i) {
          hs.push_back(weft::go([&] {
            once.call([&] {
              runs.fetch_add(1);
              weft::this_fiber::sleep_for(1ms);  // parks: the others must wait, parked
              value = 42;
            });
            if (value == 42) saw_value.fetch_add(1);
          }));
        }
        for (auto& h : hs) h.join();
      });
      CHECK(runs.load() == 1);
      CHECK(saw_value.load() == callers);
      CHECK(once.done());
    }
  }
}

TEST_CASE("once: an exception reaches the caller that ran f, and a later call runs f again") {
  weft::Once once;
  int attempts = 0;
  CHECK_THROWS_AS(once.call([&] {
    ++attempts;
    throw std::runtime_error("first");
  }), std::runtime_error);
  CHECK_FALSE(once.done());
  const auto again = [&] { ++attempts; };  // a const lvalue works too
  once.call(again);
  CHECK(once.done());
  once.call([&] { ++attempts; });
  CHECK(attempts == 2);
}

TEST_CASE("once: concurrent callers while f throws: one success, each failure reported to its own caller" *
          doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Once once;
    std::atomic<int> attempts{0};
    std::atomic<int> failures_seen{0};
    constexpr int k_failures = 3;  // the first three runs throw
    constexpr int k_callers = 40;
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < k_callers; ++i) {
        hs.push_back(weft::go([&] {
          try {
            once.call([&] {
              const int n = attempts.fetch_add(1);
              weft::this_fiber::sleep_for(1ms);
              if (n < k_failures) throw std::runtime_error("not yet");
            });
          } catch (const std::runtime_error&) {
            failures_seen.fetch_add(1);
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
    CHECK(attempts.load() == k_failures + 1);
    CHECK(failures_seen.load() == k_failures);
    CHECK(once.done());
  }
}

TEST_CASE("once: a caller parked while another runs f throws weft::Cancelled when cancelled" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  weft::Once once;
  weft::Channel<int> go_on;
  auto runner = rt.spawn([&] { once.call([&] { (void)go_on.recv(); }); });
  REQUIRE(spin_until([&] { return weft_test::waiting_receivers(go_on) == 1; }));
  cancelled_while_parked(rt, [&] { once.call([] { FAIL("a second f ran"); }); }, parks_since(rt));
  go_on.send(1);
  runner.join();
  CHECK(once.done());
}

TEST_CASE("once: from plain threads and fibers together" * doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  weft::Once once;
  std::atomic<int> runs{0};
  {
    std::vector<Actor> actors;
    for (int i = 0; i < 8; ++i) {
      actors.emplace_back(rt, i % 2 == 0 ? Side::fiber : Side::thread, [&] {
        once.call([&] {
          runs.fetch_add(1);
          std::this_thread::sleep_for(1ms);
        });
      });
    }
  }
  CHECK(runs.load() == 1);
}

// ---- Timer and after_func ----

TEST_CASE("timer: fires once on its channel; stop() after the firing says false" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    const auto start = std::chrono::steady_clock::now();
    weft::Timer t(5ms);
    auto tick = t.channel().recv();
    REQUIRE(tick.has_value());
    CHECK(*tick >= start + 5ms);
    CHECK(std::chrono::steady_clock::now() >= start + 5ms);
    CHECK_FALSE(t.stop());
    weft::this_fiber::sleep_for(10ms);
    CHECK_FALSE(t.channel().try_recv().has_value());  // one firing only
  });
}

TEST_CASE("timer: stop() before the firing says true and nothing is ever sent") {
  weft::Runtime rt({.workers = 1});
  rt.block_on([] {
    weft::Timer t(1h);
    CHECK(t.stop());
    CHECK_FALSE(t.stop());  // already stopped
    weft::this_fiber::sleep_for(5ms);
    CHECK_FALSE(t.channel().try_recv().has_value());
  });
}

TEST_CASE("timer: reset re-arms, reports whether it was armed, and drops a stale value" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::Timer t(1h);
    CHECK(t.reset(2ms));  // it was armed
    CHECK(t.channel().recv().has_value());
    CHECK_FALSE(t.reset(2ms));  // it had fired
    CHECK(t.channel().recv().has_value());
    // Fired but not received: reset discards that value.
    CHECK_FALSE(t.reset(0ms));
    weft::this_fiber::sleep_for(5ms);  // it fires at once (its value waits in the channel), or soon
    const auto before_reset = std::chrono::steady_clock::now();
    static_cast<void>(t.reset(3ms));
    auto tick = t.channel().recv();
    REQUIRE(tick.has_value());
    CHECK(*tick >= before_reset + 3ms);  // the new firing, not the stale one
    CHECK(t.stop() == false);
  });
  // From a plain thread as well.
  weft::Timer t(1ms);
  CHECK(t.channel().recv().has_value());
}

TEST_CASE("timer: stop racing the firing: true means never delivered, false means delivered (stress)" *
          doctest::timeout(300)) {
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    weft::Runtime rt({.workers = 2});
    std::atomic<int> stopped{0}, fired{0}, wrong{0};
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (int f = 0; f < 8; ++f) {
        hs.push_back(weft::go([&, f] {
          std::mt19937 rng(seed * 131 + static_cast<std::uint32_t>(f));
          weft::Timer t(1h);
          for (int i = 0; i < static_cast<int>(scaled(300)); ++i) {
            t.reset(std::chrono::microseconds(rng() % 200));
            if (rng() % 2 == 0) weft::this_fiber::sleep_for(std::chrono::microseconds(rng() % 200));
            if (t.stop()) {
              stopped.fetch_add(1);
              weft::this_fiber::sleep_for(300us);  // past the deadline: it must stay silent
              if (t.channel().try_recv().has_value()) wrong.fetch_add(1);
            } else {
              fired.fetch_add(1);
              // Delivered already: the value is there at once.
              if (!t.channel().try_recv().has_value()) wrong.fetch_add(1);
            }
          }
        }));
      }
      for (auto& h : hs) h.join();
    });
    CHECK(wrong.load() == 0);
    CHECK(stopped.load() + fired.load() == static_cast<int>(8 * scaled(300)));
  }
}

TEST_CASE("after_func: runs f in its own fiber after the delay; stop() before prevents it" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  rt.block_on([] {
    weft::Channel<int> done(1);
    const auto start = std::chrono::steady_clock::now();
    auto ran_at = std::make_shared<std::chrono::steady_clock::time_point>();
    auto h = weft::after_func(5ms, [done, ran_at]() mutable {
      *ran_at = std::chrono::steady_clock::now();
      done.send(1);
    });
    CHECK(done.recv() == 1);
    CHECK(*ran_at >= start + 5ms);
    CHECK_FALSE(h.stop());  // f ran

    std::atomic<bool> ran{false};
    auto h2 = weft::after_func(20ms, [&ran] { ran.store(true); });
    CHECK(h2.stop());
    CHECK_FALSE(h2.stop());
    weft::this_fiber::sleep_for(40ms);
    CHECK_FALSE(ran.load());
  });
  // From a plain thread, on a given runtime.
  weft::Channel<int> done(1);
  auto h = weft::after_func(rt, 1ms, [done]() mutable { done.send(7); });
  CHECK(done.recv() == 7);
  CHECK_FALSE(h.stop());
}

TEST_CASE("after_func: stop racing the start: f runs exactly when stop() says false (stress)" * doctest::timeout(300)) {
  weft::Runtime rt({.workers = 2});
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const int n = static_cast<int>(scaled(500));
    std::atomic<int> ran{0};
    int stop_false = 0;
    rt.block_on([&] {
      std::vector<weft::AfterFunc> hs;
      for (int i = 0; i < n; ++i) {
        hs.push_back(weft::after_func(std::chrono::microseconds(rng() % 300), [&ran] { ran.fetch_add(1); }));
        if (rng() % 4 == 0) weft::this_fiber::sleep_for(std::chrono::microseconds(rng() % 100));
      }
      for (auto& h : hs) {
        if (!h.stop()) ++stop_false;
      }
    });
    spin_until([&] { return ran.load() == stop_false; });
    std::this_thread::sleep_for(5ms);
    CHECK(ran.load() == stop_false);
  }
}

TEST_CASE("after_func: cancelling the caller's scope before the delay prevents f" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  std::atomic<bool> ran{false};
  std::optional<weft::AfterFunc> h;
  rt.block_on([&] {
    weft::CancelScope scope;
    h.emplace(weft::after_func(30ms, [&ran] { ran.store(true); }));
    scope.cancel();
  });
  std::this_thread::sleep_for(60ms);
  CHECK_FALSE(ran.load());
  CHECK_FALSE(h->stop());  // already stopped, by the cancellation
}

// ---- select with disabled cases ----

TEST_CASE("select: a disabled case is never chosen, even when its channel is ready" * doctest::timeout(60)) {
  weft::Channel<int> a(1), b(1);
  a.send(1);
  b.send(2);
  for (int i = 0; i < 50; ++i) {
    int got = 0;
    const std::size_t fired = weft::select(weft::on_recv(a, [&](std::optional<int> v) { got = *v; }).when(false),
                                           weft::on_recv(b, [&](std::optional<int> v) { got = *v; }).when(true));
    CHECK(fired == 1);
    CHECK(got == 2);
    b.send(2);
  }
  CHECK(a.try_recv() == 1);  // untouched
  // A disabled send case sends nothing; a disabled after() never fires.
  weft::Channel<int> c(1);
  bool defaulted = false;
  CHECK(weft::select(weft::on_send(c, 5).when(false), weft::after(0ms, [] {}).when(false),
                     weft::on_default([&] { defaulted = true; })) == 2);
  CHECK(defaulted);
  CHECK_FALSE(c.try_recv().has_value());
}

TEST_CASE("select: a disabled after() leaves the select waiting for its channels" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  weft::Channel<int> ch;
  auto sender = rt.spawn([ch]() mutable {
    weft::this_fiber::sleep_for(10ms);
    ch.send(3);
  });
  int got = 0;
  CHECK(weft::select(weft::on_recv(ch, [&](std::optional<int> v) { got = *v; }), weft::after(0ms, [] {}).when(false)) == 0);
  CHECK(got == 3);
  sender.join();
}

TEST_CASE("select: every case disabled and no default parks until cancelled, and is in the deadlock report" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  weft::Channel<int> ch(1);
  ch.send(1);
  cancelled_while_parked(
      rt, [&] { weft::select(weft::on_recv(ch, [](std::optional<int>) {}).when(false)); }, parks_since(rt));
  CHECK(ch.try_recv() == 1);
  auto msg = weft_test::deadlock_message(rt, [ch] {
    weft::select(weft::on_recv(ch, [](std::optional<int>) {}).when(false), weft::after(1ms, [] {}).when(false));
  });
  REQUIRE(msg.has_value());
  CAPTURE(*msg);
  CHECK(msg->find("select with no channel cases") != std::string::npos);
}

// ---- Semaphore: timed acquire ----

TEST_CASE("semaphore: try_acquire_for / until time out without a permit, and succeed when one comes" *
          doctest::timeout(120)) {
  weft::Runtime rt({.workers = 2});
  for (Side side : k_sides) {
    CAPTURE(weft_test::side_name(side));
    weft::Semaphore sem(0);
    std::atomic<int> result{-1};
    { Actor a(rt, side, [&] { result.store(sem.try_acquire_for(10ms) ? 1 : 0); }); }
    CHECK(result.load() == 0);
    { Actor a(rt, side, [&] { result.store(sem.try_acquire_until(std::chrono::system_clock::now() + 5ms) ? 1 : 0); }); }
    CHECK(result.load() == 0);
    CHECK(sem.available() == 0);
    {
      Actor a(rt, side, [&] { result.store(sem.try_acquire_for(30s) ? 1 : 0); });
      std::this_thread::sleep_for(2ms);
      sem.release();
    }
    CHECK(result.load() == 1);
    CHECK(sem.available() == 0);
    sem.release();
    CHECK(sem.try_acquire_for(0ms));
    CHECK_FALSE(sem.try_acquire_for(-1s));
  }
}

TEST_CASE("semaphore: a parked try_acquire_for throws weft::Cancelled and takes nothing" * doctest::timeout(60)) {
  weft::Runtime rt({.workers = 2});
  weft::Semaphore sem(0);
  cancelled_while_parked(rt, [&] { (void)sem.try_acquire_for(30s); }, parks_since(rt));
  sem.release();
  CHECK(sem.available() == 1);
}

TEST_CASE("semaphore: timed acquires racing releases never lose or invent a permit (stress)" * doctest::timeout(300)) {
  for (std::size_t workers : k_worker_counts) {
    for (std::uint32_t seed : {1u, 2u}) {
      CAPTURE(workers);
      CAPTURE(seed);
      weft::Runtime rt({.workers = workers});
      weft::Semaphore sem(0);
      std::atomic<int> taken{0};
      const int releases = static_cast<int>(scaled(2000));
      rt.block_on([&] {
        std::vector<weft::JoinHandle<void>> hs;
        for (int f = 0; f < 6; ++f) {
          hs.push_back(weft::go([&, f] {
            std::mt19937 rng(seed * 31 + static_cast<std::uint32_t>(f));
            for (int i = 0; i < releases / 3; ++i) {
              if (sem.try_acquire_for(std::chrono::microseconds(rng() % 50))) taken.fetch_add(1);
            }
          }));
        }
        std::mt19937 rng(seed);
        for (int i = 0; i < releases; ++i) {
          sem.release();
          if (rng() % 8 == 0) weft::this_fiber::yield();
        }
        for (auto& h : hs) h.join();
      });
      CHECK(taken.load() + sem.available() == releases);
    }
  }
}
