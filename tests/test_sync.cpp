// weft::Mutex, CondVar, WaitGroup and Semaphore: semantics, misuse errors,
// fibers and plain threads mixed, fairness.
#include <doctest/doctest.h>
#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "sync_support.hpp"

using weft_test::Actor;
using weft_test::k_sides;
using weft_test::k_worker_counts;
using weft_test::scaled;
using weft_test::Side;
using weft_test::side_name;
using weft_test::spin_until;

// ---- Mutex ----

TEST_CASE("mutex: lock, try_lock and unlock") {
  weft::Mutex m;
  CHECK(m.try_lock());
  CHECK_FALSE(m.try_lock());
  m.unlock();
  m.lock();
  CHECK_FALSE(m.try_lock());
  m.unlock();
  CHECK(m.try_lock());
  m.unlock();
  // In a fiber as well.
  weft::Runtime rt({.workers = 1});
  CHECK(rt.block_on([&] {
    m.lock();
    const bool second = m.try_lock();
    m.unlock();
    const bool again = m.try_lock();
    m.unlock();
    return !second && again;
  }));
}

TEST_CASE("mutex: try_lock succeeds on a free mutex while a woken waiter has not run yet" * doctest::timeout(60)) {
  // One worker, so the woken fiber cannot run until this one parks or yields.
  // std::lock / std::scoped_lock rely on try_lock: one that fails on a free
  // mutex makes them spin for ever here.
  weft::Runtime rt({.workers = 1});
  const bool ok = rt.block_on([&rt] {
    weft::Mutex m;
    m.lock();
    const std::uint64_t parks_before = rt.metrics().parks;
    auto waiter = weft::go([&m] {
      m.lock();
      m.unlock();
    });
    spin_until([&] { return rt.metrics().parks > parks_before; });  // the waiter parks in lock()
    m.unlock();  // frees the mutex and wakes the waiter; it has not run yet
    const bool got = m.try_lock();
    if (got) m.unlock();
    waiter.join();
    return got;
  });
  CHECK(ok);
}

TEST_CASE("mutex: unlocking an unlocked mutex throws std::logic_error and leaves it usable") {
  weft::Mutex m;
  CHECK_THROWS_AS(m.unlock(), std::logic_error);
  m.lock();
  m.unlock();
  CHECK_THROWS_AS(m.unlock(), std::logic_error);
  CHECK(m.try_lock());
  m.unlock();
  weft::Runtime rt({.workers = 1});
  CHECK(rt.block_on([&] {
    try {
      m.unlock();
    } catch (const std::logic_error&) {
      return m.try_lock() && (m.unlock(), true);
    }
    return false;
  }));
}

TEST_CASE("mutex: std::lock_guard, std::unique_lock and std::scoped_lock work with it" * doctest::timeout(300)) {
  weft::Mutex m1, m2;
  {
    std::lock_guard<weft::Mutex> g(m1);
    CHECK_FALSE(m1.try_lock());
  }
  CHECK(m1.try_lock());
  m1.unlock();
  {
    std::unique_lock<weft::Mutex> lk(m1);
    CHECK(lk.owns_lock());
    lk.unlock();
    CHECK(m1.try_lock());
    m1.unlock();
    lk.lock();
    CHECK_FALSE(m1.try_lock());
    std::unique_lock<weft::Mutex> other(m2, std::try_to_lock);
    CHECK(other.owns_lock());
  }
  CHECK(m1.try_lock());
  CHECK(m2.try_lock());
  m1.unlock();
  m2.unlock();
  {
    std::scoped_lock both(m1, m2);
    CHECK_FALSE(m1.try_lock());
    CHECK_FALSE(m2.try_lock());
  }
  CHECK(m1.try_lock());
  CHECK(m2.try_lock());
  m1.unlock();
  m2.unlock();
  // Fibers taking the two locks in opposite orders through std::scoped_lock
  // neither deadlock nor lose updates.
  const int rounds = static_cast<int>(scaled(2'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    long long x = 0, y = 0;
    std::vector<Actor> actors;
    for (int f = 0; f < 6; ++f) {
      actors.emplace_back(rt, f == 5 ? Side::thread : Side::fiber, [&, f] {
        for (int i = 0; i < rounds; ++i) {
          if (f % 2 == 0) {
            std::scoped_lock lk(m1, m2);
            ++x;
            if (i % 8 == 0) weft_test::pause();
            ++y;
          } else {
            std::scoped_lock lk(m2, m1);
            ++y;
            if (i % 8 == 0) weft_test::pause();
            ++x;
          }
        }
      });
    }
    for (auto& a : actors) a.join();
    CHECK(x == 6LL * rounds);
    CHECK(y == 6LL * rounds);
  }
}

TEST_CASE("mutex: fibers and plain threads mixed never lose an update" * doctest::timeout(600)) {
  const int per_actor = static_cast<int>(scaled(20'000));
  constexpr int k_fibers = 6, k_threads = 2;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    long long counter = 0;  // plain: only the mutex protects it
    long long checksum = 0;
    std::vector<Actor> actors;
    for (int k = 0; k < k_fibers + k_threads; ++k) {
      actors.emplace_back(rt, k < k_fibers ? Side::fiber : Side::thread, [&, k] {
        for (int i = 0; i < per_actor; ++i) {
          std::lock_guard<weft::Mutex> g(m);
          const long long c = counter;
          if (i % 128 == 0) weft_test::pause();  // hold the lock across a yield now and then
          counter = c + 1;
          checksum += k;
        }
      });
    }
    for (auto& a : actors) a.join();
    CHECK(counter == static_cast<long long>(k_fibers + k_threads) * per_actor);
    CHECK(checksum == static_cast<long long>(per_actor) * (k_fibers + k_threads) * (k_fibers + k_threads - 1) / 2);
    CHECK(m.try_lock());
    m.unlock();
  }
}

TEST_CASE("mutex: every contending fiber keeps getting the lock (no starvation)" * doctest::timeout(300)) {
  // Each fiber takes the lock in a loop, holds it across yields (so the
  // others run and queue up behind it) and goes straight back for it. A lock
  // that always lets the releaser barge in ahead of its queue would starve
  // the others for ever; weft's hands off to the oldest waiter once it has
  // waited about 1 ms (mutex.hpp). The loop runs until every fiber has had
  // the lock k_each times; it gives up (and the test fails) after k_cap
  // acquisitions in all, far more than a starvation-free lock needs.
  constexpr int k_fibers = 8;
  constexpr int k_each = 20;
  constexpr long k_cap = 2'000'000;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    long total = 0;
    bool stop = false;
    std::vector<int> mine(k_fibers, 0);
    std::vector<weft::JoinHandle<void>> hs;
    for (int f = 0; f < k_fibers; ++f) {
      hs.push_back(rt.spawn([&, f] {
        for (;;) {
          std::lock_guard<weft::Mutex> g(m);
          if (stop) return;
          ++total;
          ++mine[static_cast<std::size_t>(f)];
          stop = total >= k_cap || *std::min_element(mine.begin(), mine.end()) >= k_each;
          for (int y = 0; y < 3; ++y) weft::this_fiber::yield();
        }
      }));
    }
    for (auto& h : hs) h.join();
    const int least = *std::min_element(mine.begin(), mine.end());
    CAPTURE(least);
    CAPTURE(total);
    CHECK(least >= k_each);
    CHECK(total < k_cap);
  }
}

TEST_CASE("mutex: may be destroyed right after its last unlock, while the releaser's unlock is returning" *
          doctest::timeout(300)) {
  // The releaser wakes a waiter that locks, unlocks and deletes the mutex,
  // possibly while the releaser is still inside unlock() on another worker
  // (AddressSanitizer builds catch a touch after that).
  const int rounds = static_cast<int>(scaled(3'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    int deleted = rt.block_on([rounds, &rt] {
      int n = 0;
      for (int r = 0; r < rounds; ++r) {
        auto* m = new weft::Mutex;
        m->lock();
        std::atomic<bool> started{false};
        const std::uint64_t parks_before = rt.metrics().parks;
        auto waiter = weft::go([m, &started] {
          started.store(true);
          m->lock();
          m->unlock();
          delete m;
          return 1;
        });
        while (!started.load()) weft::this_fiber::yield();
        if (r % 2 == 0) {
          // Parked in lock(): this unlock must wake it and hand over.
          spin_until([&] { return rt.metrics().parks > parks_before; });
        } else {
          // Any moment: not yet queued, queuing, or parked.
          for (int y = 0; y < r % 4; ++y) weft::this_fiber::yield();
        }
        m->unlock();
        n += waiter.join();
      }
      return n;
    });
    CHECK(deleted == rounds);
  }
}

// ---- CondVar ----

TEST_CASE("condvar: wait with a predicate returns once the predicate holds" * doctest::timeout(120)) {
  for (std::size_t workers : k_worker_counts) {
    for (Side waiter_side : k_sides) {
      CAPTURE(workers);
      CAPTURE(side_name(waiter_side));
      weft::Runtime rt({.workers = workers});
      weft::Mutex m;
      weft::CondVar cv;
      int stage = 0;
      int seen = -1;
      Actor waiter(rt, waiter_side, [&] {
        std::unique_lock<weft::Mutex> lk(m);
        cv.wait(lk, [&] { return stage == 3; });
        seen = stage;
        CHECK(lk.owns_lock());
      });
      Actor notifier(rt, Side::fiber, [&] {
        for (int s = 1; s <= 3; ++s) {
          {
            std::lock_guard<weft::Mutex> g(m);
            stage = s;
          }
          cv.notify_one();  // the first two wake the waiter only to re-check
          for (int y = 0; y < 20; ++y) weft::this_fiber::yield();
        }
      });
      waiter.join();
      notifier.join();
      CHECK(seen == 3);
    }
  }
}

TEST_CASE("condvar: wait throws std::logic_error when the lock does not own the mutex") {
  weft::Mutex m;
  weft::CondVar cv;
  std::unique_lock<weft::Mutex> lk(m, std::defer_lock);
  CHECK_THROWS_AS(cv.wait(lk), std::logic_error);
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE("condvar: notify_one wakes one waiter at a time, notify_all wakes them all" * doctest::timeout(300)) {
  constexpr int k_waiters = 6;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    weft::CondVar cv;
    int waiting = 0;  // under m
    std::atomic<int> woken{0};
    std::vector<Actor> actors;
    for (int k = 0; k < k_waiters; ++k) {
      actors.emplace_back(rt, k == 0 ? Side::thread : Side::fiber, [&] {
        std::unique_lock<weft::Mutex> lk(m);
        ++waiting;
        cv.wait(lk);  // no predicate: there are no spurious wake-ups
        woken.fetch_add(1);
      });
    }
    // Once `waiting` is full under the lock, every waiter has released the
    // mutex inside wait(), so it is on the condition variable's list.
    spin_until([&] {
      std::lock_guard<weft::Mutex> g(m);
      return waiting == k_waiters;
    });
    int extra_wakes = 0;
    for (int k = 1; k <= 3; ++k) {
      cv.notify_one();
      spin_until([&] { return woken.load() >= k; });
      for (int y = 0; y < 200; ++y) std::this_thread::yield();
      extra_wakes += woken.load() != k;
    }
    CHECK(extra_wakes == 0);
    CHECK(woken.load() == 3);
    cv.notify_all();
    for (auto& a : actors) a.join();
    CHECK(woken.load() == k_waiters);
    // Notifying with nobody waiting is harmless.
    cv.notify_one();
    cv.notify_all();
  }
}

TEST_CASE("condvar: notify_all wakes every waiter on a predicate" * doctest::timeout(300)) {
  const int n = static_cast<int>(scaled(1'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    weft::CondVar cv;
    bool go = false;
    int passed = 0;
    int waiting = 0;  // under m
    int done = rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < n; ++i) {
        hs.push_back(weft::go([&] {
          std::unique_lock<weft::Mutex> lk(m);
          ++waiting;
          cv.wait(lk, [&] { return go; });
          ++passed;
        }));
      }
      // Once `waiting` is full under the lock, every waiter has released the
      // mutex inside wait(): all of them are on the condition variable.
      spin_until([&] {
        std::lock_guard<weft::Mutex> g(m);
        return waiting == n;
      });
      {
        std::lock_guard<weft::Mutex> g(m);
        go = true;
      }
      cv.notify_all();
      for (auto& h : hs) h.join();
      return passed;
    });
    CHECK(done == n);
  }
}

TEST_CASE("condvar: a bounded producer/consumer queue delivers every item once" * doctest::timeout(600)) {
  constexpr int k_producers = 3, k_consumers = 3;
  const int per_producer = static_cast<int>(scaled(10'000));
  constexpr std::size_t k_bound = 8;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Mutex m;
    weft::CondVar not_empty, not_full;
    std::deque<int> queue;
    int producers_left = k_producers;
    std::size_t max_size = 0;
    std::atomic<long long> sum{0}, count{0};
    std::vector<Actor> actors;
    for (int p = 0; p < k_producers; ++p) {
      actors.emplace_back(rt, p == 0 ? Side::thread : Side::fiber, [&, p] {
        for (int i = 0; i < per_producer; ++i) {
          std::unique_lock<weft::Mutex> lk(m);
          not_full.wait(lk, [&] { return queue.size() < k_bound; });
          queue.push_back(p * per_producer + i + 1);
          max_size = std::max(max_size, queue.size());
          lk.unlock();
          not_empty.notify_one();
        }
        std::lock_guard<weft::Mutex> g(m);
        if (--producers_left == 0) not_empty.notify_all();
      });
    }
    for (int c = 0; c < k_consumers; ++c) {
      actors.emplace_back(rt, c == 0 ? Side::thread : Side::fiber, [&] {
        long long s = 0, n = 0;
        for (;;) {
          std::unique_lock<weft::Mutex> lk(m);
          not_empty.wait(lk, [&] { return !queue.empty() || producers_left == 0; });
          if (queue.empty()) break;
          s += queue.front();
          ++n;
          queue.pop_front();
          lk.unlock();
          not_full.notify_one();
        }
        sum += s;
        count += n;
      });
    }
    for (auto& a : actors) a.join();
    const long long total = static_cast<long long>(k_producers) * per_producer;
    CHECK(count.load() == total);
    CHECK(sum.load() == total * (total + 1) / 2);
    CHECK(max_size <= k_bound);
    CHECK(queue.empty());
  }
}

// ---- WaitGroup ----

TEST_CASE("waitgroup: wait returns after every done(), not before" * doctest::timeout(300)) {
  const int n = static_cast<int>(scaled(1'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::WaitGroup wg;
    std::atomic<int> finished{0};
    std::vector<int> results(static_cast<std::size_t>(n), 0);  // plain: ordered by done() -> wait()
    weft::Runtime rt({.workers = workers});
    long long sum_at_wait = 0;
    int seen_at_wait = rt.block_on([&] {
      wg.add(n);
      CHECK(wg.count() == n);
      for (int i = 0; i < n; ++i) {
        weft::go([&, i] {
          for (int y = 0; y < i % 5; ++y) weft::this_fiber::yield();
          results[static_cast<std::size_t>(i)] = i + 1;
          finished.fetch_add(1);
          wg.done();
        }).detach();  // detached
      }
      wg.wait();
      for (int r : results) sum_at_wait += r;
      return finished.load();
    });
    CHECK(seen_at_wait == n);
    CHECK(sum_at_wait == static_cast<long long>(n) * (n + 1) / 2);
    CHECK(wg.count() == 0);
  }
}

TEST_CASE("waitgroup: may be destroyed as soon as wait() returns" * doctest::timeout(300)) {
  // The last done() may still be returning when wait() returns; it must not
  // touch the group by then (AddressSanitizer builds catch it if it does).
  const int rounds = static_cast<int>(scaled(3'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    int completed = rt.block_on([rounds] {
      int ok = 0;
      for (int r = 0; r < rounds; ++r) {
        auto wg = std::make_unique<weft::WaitGroup>();
        auto flags = std::make_unique<int[]>(3);
        wg->add(3);
        for (int k = 0; k < 3; ++k) {
          weft::go([w = wg.get(), f = flags.get(), k] {
            f[k] = 1;
            w->done();
          }).detach();  // detached: they must not touch *w after done() lets wait() return
        }
        wg->wait();
        ok += flags[0] + flags[1] + flags[2] == 3;
        wg.reset();
      }
      return ok;
    });
    CHECK(completed == rounds);
  }
  // A plain thread waiting, fibers finishing.
  weft::Runtime rt({.workers = 2});
  for (int r = 0; r < rounds / 10 + 1; ++r) {
    auto wg = std::make_unique<weft::WaitGroup>();
    wg->add(2);
    auto a = rt.spawn([w = wg.get()] { w->done(); });
    auto b = rt.spawn([w = wg.get()] { w->done(); });
    wg->wait();
    wg.reset();
    a.join();
    b.join();
  }
}

TEST_CASE("waitgroup: a wait racing the last done() is always woken" * doctest::timeout(300)) {
  // Each round: add(1), a fiber calls done() while this one calls wait(). A
  // done() that lands while wait() is queuing itself must still wake it; if
  // it does not, the waiter parks with the counter at zero for ever, which
  // block_on reports as a weft::Deadlock.
  // (A spawn costs far more under TSan: a tenth of the rounds there.)
  const int rounds = static_cast<int>(scaled(1'000'000) / (weft_test::k_thread_sanitizer ? 10 : 1));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    int completed = -1;
    try {
      completed = rt.block_on([rounds] {
        int r = 0;
        for (; r < rounds; ++r) {
          weft::WaitGroup wg;
          wg.add(1);
          weft::go([&wg, r] {
            if (r % 8 == 0) weft::this_fiber::yield();
            wg.done();
          }).detach();  // detached; wg may go as soon as wait() returns
          wg.wait();
        }
        return r;
      });
    } catch (const weft::Deadlock& e) {
      FAIL_CHECK(std::string(e.what()));
    }
    CHECK(completed == rounds);
  }
}

TEST_CASE("waitgroup: wait returns at once when the counter is zero") {
  weft::WaitGroup wg;
  CHECK(wg.count() == 0);
  wg.wait();  // plain thread
  weft::Runtime rt({.workers = 1});
  CHECK(rt.block_on([&] {
    wg.wait();
    wg.add(2);
    wg.done();
    wg.done();
    wg.wait();
    return wg.count();
  }) == 0);
}

TEST_CASE("waitgroup: a counter going negative throws std::logic_error and stays unchanged") {
  weft::WaitGroup wg;
  CHECK_THROWS_AS(wg.done(), std::logic_error);
  CHECK(wg.count() == 0);
  wg.add(2);
  CHECK_THROWS_AS(wg.add(-3), std::logic_error);
  CHECK(wg.count() == 2);
  wg.add(-1);
  CHECK(wg.count() == 1);
  wg.done();
  CHECK(wg.count() == 0);
  CHECK_THROWS_AS(wg.done(), std::logic_error);
  CHECK(wg.count() == 0);
  wg.wait();
}

TEST_CASE("waitgroup: plain threads and fibers wait on fibers, and the group is reusable" * doctest::timeout(300)) {
  const int n = static_cast<int>(scaled(500));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::WaitGroup wg;
    for (int round = 0; round < 3; ++round) {
      CAPTURE(round);
      std::atomic<int> finished{0};
      std::atomic<int> waiters_saw_all{0};
      wg.add(n);
      std::vector<Actor> waiters;
      for (int w = 0; w < 4; ++w) {
        waiters.emplace_back(rt, w % 2 == 0 ? Side::thread : Side::fiber, [&] {
          wg.wait();
          if (finished.load() == n) waiters_saw_all.fetch_add(1);
        });
      }
      std::vector<weft::JoinHandle<void>> workers_h;
      for (int i = 0; i < n; ++i) {
        workers_h.push_back(rt.spawn([&] {
          weft::this_fiber::yield();
          finished.fetch_add(1);
          wg.done();
        }));
      }
      wg.wait();  // the main thread, too
      CHECK(finished.load() == n);
      for (auto& w : waiters) w.join();
      for (auto& h : workers_h) h.join();
      CHECK(waiters_saw_all.load() == 4);
      CHECK(wg.count() == 0);
    }
  }
}

// ---- Semaphore ----

TEST_CASE("semaphore: bounds how many fibers hold a permit at once" * doctest::timeout(300)) {
  constexpr int k_fibers = 50;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Semaphore sem(3);
    std::atomic<int> inside{0}, max_inside{0}, completed{0};
    rt.block_on([&] {
      std::vector<weft::JoinHandle<void>> hs;
      for (int i = 0; i < k_fibers; ++i) {
        hs.push_back(weft::go([&] {
          sem.acquire();
          const int now = inside.fetch_add(1) + 1;
          int seen = max_inside.load();
          while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
          }
          for (int y = 0; y < 10; ++y) weft::this_fiber::yield();
          inside.fetch_sub(1);
          completed.fetch_add(1);
          sem.release();
        }));
      }
      for (auto& h : hs) h.join();
    });
    CHECK(completed.load() == k_fibers);
    CHECK(max_inside.load() <= 3);
    CHECK(max_inside.load() >= 1);
    if (workers == 1) {
      // One worker: each holder yields with the others runnable behind it,
      // so all three permits are in use at once.
      CHECK(max_inside.load() == 3);
    }
    CHECK(sem.available() == 3);
  }
}

TEST_CASE("semaphore: a negative initial count throws std::invalid_argument") {
  CHECK_THROWS_AS(weft::Semaphore(-1), std::invalid_argument);
  CHECK_NOTHROW(weft::Semaphore(0));
  weft::Semaphore s(1);
  CHECK_THROWS_AS(s.release(-1), std::invalid_argument);
  CHECK(s.available() == 1);
}

TEST_CASE("semaphore: try_acquire takes a permit only when one is free") {
  weft::Semaphore s(2);
  CHECK(s.available() == 2);
  CHECK(s.try_acquire());
  CHECK(s.try_acquire());
  CHECK_FALSE(s.try_acquire());
  CHECK(s.available() == 0);
  s.release();
  CHECK(s.available() == 1);
  CHECK(s.try_acquire());
  s.release(2);
  CHECK(s.available() == 2);
  s.acquire();  // does not block: a permit is free
  CHECK(s.available() == 1);
}

TEST_CASE("semaphore: release(n) lets exactly n waiters through" * doctest::timeout(300)) {
  constexpr int k_waiters = 5;
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Semaphore sem(0);
    std::atomic<int> started{0}, through{0};
    std::vector<Actor> actors;
    for (int k = 0; k < k_waiters; ++k) {
      actors.emplace_back(rt, k == 0 ? Side::thread : Side::fiber, [&] {
        started.fetch_add(1);
        sem.acquire();
        through.fetch_add(1);
      });
    }
    spin_until([&] { return started.load() == k_waiters; });
    // The fibers have parked in acquire() (one park each); the plain thread
    // cannot be seen waiting, so it gets the same yields as before.
    spin_until([&] { return rt.metrics().parks >= k_waiters - 1; });
    for (int y = 0; y < 200; ++y) std::this_thread::yield();
    CHECK(through.load() == 0);
    sem.release(3);
    spin_until([&] { return through.load() >= 3; });
    for (int y = 0; y < 200; ++y) std::this_thread::yield();
    CHECK(through.load() == 3);
    CHECK(sem.available() == 0);
    CHECK_FALSE(sem.try_acquire());
    sem.release(2);
    for (auto& a : actors) a.join();
    CHECK(through.load() == k_waiters);
    CHECK(sem.available() == 0);
    sem.release(4);
    CHECK(sem.available() == 4);
  }
}

TEST_CASE("semaphore: fibers and plain threads share permits without exceeding them" * doctest::timeout(300)) {
  const int per_actor = static_cast<int>(scaled(2'000));
  for (std::size_t workers : k_worker_counts) {
    CAPTURE(workers);
    weft::Runtime rt({.workers = workers});
    weft::Semaphore sem(2);
    std::atomic<int> inside{0}, over{0}, total{0};
    std::vector<Actor> actors;
    for (int k = 0; k < 6; ++k) {
      actors.emplace_back(rt, k < 2 ? Side::thread : Side::fiber, [&, k] {
        for (int i = 0; i < per_actor; ++i) {
          if ((i + k) % 3 == 0) {
            if (!sem.try_acquire()) sem.acquire();
          } else {
            sem.acquire();
          }
          if (inside.fetch_add(1) + 1 > 2) over.fetch_add(1);
          if (i % 16 == 0) weft_test::pause();
          inside.fetch_sub(1);
          total.fetch_add(1);
          sem.release();
        }
      });
    }
    for (auto& a : actors) a.join();
    CHECK(over.load() == 0);
    CHECK(total.load() == 6 * per_actor);
    CHECK(sem.available() == 2);
  }
}
