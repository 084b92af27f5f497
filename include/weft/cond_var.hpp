// weft::CondVar: a condition variable for weft::Mutex that parks fibers.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "detail/deadline.hpp"

#include "detail/spin_lock.hpp"
#include "detail/wait_list.hpp"
#include "mutex.hpp"

namespace weft {

// Like std::condition_variable, for weft::Mutex, from fibers and plain
// threads. Waiters are woken in FIFO order. There are no spurious wake-ups,
// but another fiber may change the state between notify and the waiter's
// re-lock, so wait in a loop on a predicate (or use the predicate overload).
// The state the predicate reads is protected by the mutex, which orders it.
// A CondVar may be destroyed once nobody is inside or waiting on it.
class WEFT_API CondVar {
 public:
  CondVar() noexcept = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Atomically releases `lock` and parks the calling fiber (blocks a plain
  // thread) until notified, then re-acquires `lock` before returning.
  // Throws std::logic_error if `lock` does not own its mutex. If the runtime
  // cancels the fiber at shutdown, the mutex is re-acquired and
  // weft::FiberCancelled propagates (so `lock` is consistent while unwinding).
  void wait(std::unique_lock<Mutex>& lock);

  // while (!pred()) wait(lock);
  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  // As wait(lock), but gives up once `timeout` has passed (wait_for) or at
  // `deadline` (wait_until, any clock). Returns std::cv_status::timeout if
  // it gave up, no_timeout if notified; `lock` is re-acquired either way
  // (so the call can return later than the deadline by the time it takes
  // to get the mutex back). A timeout of zero or less still releases and
  // re-acquires the mutex.
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock, const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until_ns(lock, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_until_ns(lock, detail::deadline_at(deadline));
  }
  // With a predicate: waits until pred() holds (true) or the time is up
  // with pred() still false (false). pred() is evaluated with `lock` held.
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<Mutex>& lock, const std::chrono::duration<Rep, Period>& timeout, Predicate pred) {
    return wait_until_pred(lock, detail::deadline_after(timeout), pred);
  }
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::unique_lock<Mutex>& lock, const std::chrono::time_point<Clock, Duration>& deadline,
                  Predicate pred) {
    return wait_until_pred(lock, detail::deadline_at(deadline), pred);
  }

  // Wakes the oldest waiter, if any. Never parks or blocks. Calling it with
  // or without the mutex held are both fine.
  void notify_one();
  // Wakes every current waiter. Never parks or blocks.
  void notify_all();

 private:
  std::cv_status wait_until_ns(std::unique_lock<Mutex>& lock, detail::Nanos deadline);
  template <class Predicate>
  bool wait_until_pred(std::unique_lock<Mutex>& lock, detail::Nanos deadline, Predicate& pred) {
    while (!pred()) {
      if (wait_until_ns(lock, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  detail::SpinLock lock_;  // guards waiters_; never held while parking
  detail::WaitList waiters_;
};

}  // namespace weft
