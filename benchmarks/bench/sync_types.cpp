// Workload "sync_uncontended" (issue 16): what Go's sync types cost when
// nobody contends, measured in one fiber, n = 1,000,000 operations (100,000
// with --quick), ns per operation:
//   rwmutex_read       lock_shared() + unlock_shared()
//   rwmutex_write      lock() + unlock()
//   mutex              weft::Mutex lock() + unlock(), for comparison
//   once_done          Once::call() on a Once already done (the fast path)
//   timer_reset_stop   Timer::reset(1 h) + stop() (arm and disarm in the heap);
//                      the timer is the earliest, so each arm kicks the timer
//                      driver (a futex wake, timer_heap.hpp)
//   timer_reset_stop_behind  the same behind an earlier armed timer (30 min):
//                      a heap insert and removal, no kick
//   sem_timed          Semaphore::try_acquire_for(1 s) with a permit free + release()
// single-core: std::shared_mutex's read pair and std::call_once's done path
// on a plain thread, for scale.
#include <weft/weft.hpp>

#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "bench.hpp"

namespace bench {

namespace {

// ns per call of body, over n calls; body returns something to count.
template <class Body>
double per_op_ns(std::size_t n, const char* what, Body body) {
  std::size_t count = 0;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) count += body();
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(n);
  if (count != n) wrong("sync_uncontended", std::string(what) + ": counted " + std::to_string(count));
  return ns;
}

}  // namespace

void sync_uncontended_workload(const Settings& s, Reporter& out) {
  const std::size_t n = s.quick ? 100'000 : 1'000'000;
  weft::Runtime rt({.workers = s.workers});
  const std::string p = param(n, s.workers);
  auto in_fiber = [&](auto body) { return median_of(s.repeat, [&] { return rt.block_on(body); }); };

  weft::RWMutex rw;
  const double read = in_fiber([&] {
    return per_op_ns(n, "rwmutex_read", [&] {
      rw.lock_shared();
      rw.unlock_shared();
      return 1;
    });
  });
  const double write = in_fiber([&] {
    return per_op_ns(n, "rwmutex_write", [&] {
      rw.lock();
      rw.unlock();
      return 1;
    });
  });
  weft::Mutex m;
  const double mutex = in_fiber([&] {
    return per_op_ns(n, "mutex", [&] {
      m.lock();
      m.unlock();
      return 1;
    });
  });
  weft::Once once;
  int runs = 0;
  const double once_done = in_fiber([&] {
    return per_op_ns(n, "once_done", [&] {
      once.call([&] { ++runs; });
      return 1;
    });
  });
  if (runs != 1) wrong("sync_uncontended", "Once ran " + std::to_string(runs) + " times");
  const double timer = in_fiber([&] {
    weft::Timer t(std::chrono::hours(1));
    return per_op_ns(n, "timer_reset_stop", [&] {
      static_cast<void>(t.reset(std::chrono::hours(1)));
      return t.stop() ? 1 : 0;  // disarmed before it fired: every time
    });
  });
  const double timer_behind = in_fiber([&] {
    weft::Timer earlier(std::chrono::minutes(30));
    weft::Timer t(std::chrono::hours(1));
    return per_op_ns(n, "timer_reset_stop_behind", [&] {
      static_cast<void>(t.reset(std::chrono::hours(1)));
      return t.stop() ? 1 : 0;
    });
  });
  weft::Semaphore sem(1);
  const double sem_timed = in_fiber([&] {
    return per_op_ns(n, "sem_timed", [&] {
      const bool got = sem.try_acquire_for(std::chrono::seconds(1));
      sem.release();
      return got ? 1 : 0;
    });
  });

  std::shared_mutex std_rw;
  const double std_read = median_of(s.repeat, [&] {
    return per_op_ns(n, "std::shared_mutex", [&] {
      std_rw.lock_shared();
      std_rw.unlock_shared();
      return 1;
    });
  });
  std::once_flag flag;
  int std_runs = 0;
  const double std_once = median_of(s.repeat, [&] {
    return per_op_ns(n, "std::call_once", [&] {
      std::call_once(flag, [&] { ++std_runs; });
      return 1;
    });
  });
  if (std_runs != 1) wrong("sync_uncontended", "std::call_once ran " + std::to_string(std_runs) + " times");

  out.add("weft", "sync_uncontended", p, "rwmutex_read_ns", read);
  out.add("weft", "sync_uncontended", p, "rwmutex_write_ns", write);
  out.add("weft", "sync_uncontended", p, "mutex_ns", mutex);
  out.add("weft", "sync_uncontended", p, "once_done_ns", once_done);
  out.add("weft", "sync_uncontended", p, "timer_reset_stop_ns", timer);
  out.add("weft", "sync_uncontended", p, "timer_reset_stop_behind_ns", timer_behind);
  out.add("weft", "sync_uncontended", p, "sem_timed_ns", sem_timed);
  out.add("single-core", "sync_uncontended", p, "rwmutex_read_ns", std_read);
  out.add("single-core", "sync_uncontended", p, "once_done_ns", std_once);
}

}  // namespace bench
