// weft::CondVar: a condition variable for weft::Mutex that parks fibers.
#pragma once

#include <mutex>

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
class CondVar {
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

  // Wakes the oldest waiter, if any. Never parks or blocks. Calling it with
  // or without the mutex held are both fine.
  void notify_one();
  // Wakes every current waiter. Never parks or blocks.
  void notify_all();

 private:
  detail::SpinLock lock_;  // guards waiters_; never held while parking
  detail::WaitList waiters_;
};

}  // namespace weft
