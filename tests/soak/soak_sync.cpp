// Soak scenarios for Mutex, CondVar and Semaphore: a counter guarded by a
// mutex is exact, a bounded queue guarded by a mutex and two condition
// variables delivers every item once, and a semaphore never admits more
// holders than it has permits.
#include <deque>
#include <mutex>

#include "soak.hpp"

namespace weft_soak {
namespace {
using namespace std::chrono_literals;
}

// counter = Σ increments, with a read-modify-write that spans a yield inside
// the critical section (safe only because the lock is held across it).
void mutex_counter(weft::Runtime&, Rng& rng) {
  auto& s = stats();
  weft::Mutex m;
  std::uint64_t counter = 0;  // guarded by m
  const std::size_t parties = rng.range(2, 16);
  const std::size_t each = scaled(rng.range(200, 3000));
  Crew crew;
  for (std::size_t i = 0; i < parties; ++i) {
    crew.start(rng.chance(10), [&, seed = rng.next()] {
      Rng mine(seed);
      for (std::size_t k = 0; k < each; ++k) {
        switch (mine.below(4)) {
          case 0: {
            std::lock_guard<weft::Mutex> hold(m);
            ++counter;
            break;
          }
          case 1:
            while (!m.try_lock()) pause();
            ++counter;
            m.unlock();
            break;
          case 2:
            while (!m.try_lock_for(std::chrono::microseconds(mine.below(100)))) pause();
            ++counter;
            m.unlock();
            break;
          default: {
            std::unique_lock<weft::Mutex> hold(m);
            const std::uint64_t seen = counter;
            pause();  // another party may run now, but cannot take the lock
            counter = seen + 1;
            break;
          }
        }
      }
      stats().add(stats().ops, each);
    });
  }
  crew.wait_all();
  std::lock_guard<weft::Mutex> hold(m);
  SOAK_CHECK(counter == parties * each, "a counter guarded by weft::Mutex lost an update");
  s.add(s.progress);
}

// A bounded queue (capacity 1..8) between producers and consumers, with
// CondVar waits of every kind; every item is taken exactly once.
void condvar_queue(weft::Runtime&, Rng& rng) {
  weft::Mutex m;
  weft::CondVar not_empty;
  weft::CondVar not_full;
  std::deque<std::uint32_t> queue;  // guarded by m
  bool finished = false;            // guarded by m: no more items will come
  const std::size_t capacity = rng.range(1, 8);
  const std::size_t producers = rng.range(1, 4);
  const std::size_t consumers = rng.range(1, 4);
  const std::uint32_t each = static_cast<std::uint32_t>(scaled(rng.range(200, 2000)));
  std::vector<std::vector<std::uint8_t>> seen(producers, std::vector<std::uint8_t>(each, 0));  // guarded by m
  std::uint64_t taken = 0;                                                                      // guarded by m

  Crew producing;
  Crew consuming;
  for (std::size_t p = 0; p < producers; ++p) {
    producing.start(rng.chance(10), [&, p, seed = rng.next()] {
      Rng mine(seed);
      for (std::uint32_t i = 0; i < each; ++i) {
        std::unique_lock<weft::Mutex> lock(m);
        if (mine.chance(50)) {
          not_full.wait(lock, [&] { return queue.size() < capacity; });
        } else {
          // A timed-out wait holds the lock again: let the consumers have it.
          while (!not_full.wait_for(lock, std::chrono::microseconds(mine.below(200)),
                                    [&] { return queue.size() < capacity; })) {
            lock.unlock();
            pause();
            lock.lock();
          }
        }
        queue.push_back(static_cast<std::uint32_t>(p) << 24 | i);
        lock.unlock();
        if (mine.chance(50)) {
          not_empty.notify_one();
        } else {
          not_empty.notify_all();
        }
      }
      stats().add(stats().ops, each);
    });
  }
  for (std::size_t c = 0; c < consumers; ++c) {
    consuming.start(rng.chance(10), [&, seed = rng.next()] {
      Rng mine(seed);
      std::unique_lock<weft::Mutex> lock(m);
      for (;;) {
        if (queue.empty() && !finished) {
          if (mine.chance(50)) {
            not_empty.wait(lock);
          } else {
            if (not_empty.wait_for(lock, std::chrono::microseconds(mine.below(300))) == std::cv_status::timeout) {
              lock.unlock();  // let the producers have the lock
              pause();
              lock.lock();
            }
          }
          continue;  // spurious and timed-out wake-ups re-check
        }
        if (queue.empty()) return;  // finished and drained
        const std::uint32_t item = queue.front();
        queue.pop_front();
        const std::size_t p = item >> 24;
        const std::uint32_t i = item & 0xFFFFFF;
        SOAK_CHECK(p < producers && i < each, "condvar queue: an item nobody produced");
        SOAK_CHECK(seen[p][i] == 0, "condvar queue: an item was taken twice");
        seen[p][i] = 1;
        ++taken;
        lock.unlock();
        not_full.notify_one();
        lock.lock();
      }
    });
  }
  producing.wait_all();
  {
    std::lock_guard<weft::Mutex> hold(m);
    finished = true;
  }
  not_empty.notify_all();
  consuming.wait_all();
  std::lock_guard<weft::Mutex> hold(m);
  SOAK_CHECK(taken == producers * each, "condvar queue: an item was lost");
  SOAK_CHECK(queue.empty(), "condvar queue: items left behind");
  stats().add(stats().progress);
}

// At most `permits` parties between acquire() and release() at any time.
void semaphore_bound(weft::Runtime&, Rng& rng) {
  const std::ptrdiff_t permits = static_cast<std::ptrdiff_t>(rng.range(1, 4));
  weft::Semaphore sem(permits);
  // relaxed: the semaphore's acquire/release order the holders; this only
  // counts them, and the check reads the value returned by the RMW itself.
  std::atomic<std::ptrdiff_t> holders{0};
  std::atomic<std::ptrdiff_t> peak{0};
  const std::size_t parties = rng.range(2, 12);
  const std::size_t each = scaled(rng.range(100, 1000));
  Crew crew;
  for (std::size_t i = 0; i < parties; ++i) {
    crew.start(rng.chance(10), [&, seed = rng.next()] {
      Rng mine(seed);
      for (std::size_t k = 0; k < each; ++k) {
        if (mine.chance(30)) {
          while (!sem.try_acquire()) pause();
        } else {
          sem.acquire();
        }
        const std::ptrdiff_t now = holders.fetch_add(1, std::memory_order_relaxed) + 1;
        SOAK_CHECK(now <= permits, "semaphore admitted more holders than permits");
        std::ptrdiff_t p = peak.load(std::memory_order_relaxed);
        while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
        }
        if (mine.chance(20)) pause();
        holders.fetch_sub(1, std::memory_order_relaxed);
        sem.release();
      }
      stats().add(stats().ops, each);
    });
  }
  crew.wait_all();
  SOAK_CHECK(sem.available() == permits, "semaphore permits were lost or created");
  stats().add(stats().progress);
}

}  // namespace weft_soak
