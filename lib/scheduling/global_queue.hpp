// GlobalQueue: a runtime-wide FIFO of runnable tasks that no worker's deque
// holds. A Scheduler keeps three:
//   - the injector: tasks spawned, and fibers woken, from outside the
//     runtime (plain threads, other runtimes' fibers, the timer and
//     blocking-pool threads). One FIFO for every such thread, so tasks
//     start in the order they were submitted, whichever thread submitted
//     them (issue 16: a queue with a sub-queue per producer starved some
//     producers behind others);
//   - the global queue: fibers that yielded (this_fiber::yield,
//     maybe_yield), Go's global run queue, where Gosched puts a goroutine.
//     Shared, so that an idle worker can take a yielder whose own worker is
//     busy with a long fiber (a private per-worker FIFO once left such a
//     fiber waiting for the whole of the other one); and the fallback for a
//     woken fiber whose worker's deque could not grow: a wake-up must never
//     be lost, and this queue never allocates;
//   - the urgent queue: cancelled fibers, run before anything else.
// Intrusive through TaskBase::queue_next_, which only these queues use (a
// task sits in at most one queue at a time).
//
// Ordering: pushers make the task visible under lock_ and then call
// Scheduler::notify_work(), whose barrier pairs with a sleeping worker's
// re-check of size_approx() (IdleWorkers' I2), as for the deques.
//
// Contract: any thread; push() and pop() hold a SpinLock for a few
// instructions; size_approx() never blocks. Nothing parks or allocates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "weft/detail/spin_lock.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

class GlobalQueue {
 public:
  void push(TaskBase* task) noexcept {
    std::lock_guard<SpinLock> guard(lock_);
    append_locked(task);
  }

  // push() of a task that was just spawned (the injector, from outside the
  // runtime), also counted in new_tasks() for metrics().
  void push_new(TaskBase* task) noexcept {
    std::lock_guard<SpinLock> guard(lock_);
    append_locked(task);
    // release: written under lock_ (one writer at a time); pairs with
    // new_tasks()' acquire, as Worker::spawned() (a reader that saw the
    // task start sees it counted here).
    new_tasks_.store(new_tasks_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  std::uint64_t new_tasks() const noexcept { return new_tasks_.load(std::memory_order_acquire); }

  // The oldest task, or nullptr. Cheap when empty (no lock).
  TaskBase* pop() noexcept {
    if (size_approx() == 0) return nullptr;
    std::lock_guard<SpinLock> guard(lock_);
    TaskBase* task = head_;
    if (task == nullptr) return nullptr;
    head_ = task->queue_next_;
    if (head_ == nullptr) tail_ = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);  // relaxed: as in push()
    return task;
  }

  // relaxed: an estimate, as ChaseLevDeque::size_approx().
  std::size_t size_approx() const noexcept { return size_.load(std::memory_order_relaxed); }

  // Moves every task for which pred(task) holds to `into`, keeping the
  // order of both. O(length), under this queue's lock (then `into`'s).
  template <class Pred>
  void move_if(Pred pred, GlobalQueue& into) noexcept {
    TaskBase* moved_head = nullptr;
    TaskBase* moved_tail = nullptr;
    std::size_t moved = 0;
    {
      std::lock_guard<SpinLock> guard(lock_);
      TaskBase* prev = nullptr;
      for (TaskBase* t = head_; t != nullptr;) {
        TaskBase* next = t->queue_next_;
        if (pred(t)) {
          (prev != nullptr ? prev->queue_next_ : head_) = next;
          if (tail_ == t) tail_ = prev;
          t->queue_next_ = nullptr;
          (moved_tail != nullptr ? moved_tail->queue_next_ : moved_head) = t;
          moved_tail = t;
          ++moved;
        } else {
          prev = t;
        }
        t = next;
      }
      size_.store(size_.load(std::memory_order_relaxed) - moved, std::memory_order_relaxed);  // relaxed: as push()
    }
    if (moved == 0) return;
    std::lock_guard<SpinLock> guard(into.lock_);
    if (into.tail_ != nullptr) into.tail_->queue_next_ = moved_head; else into.head_ = moved_head;
    into.tail_ = moved_tail;
    into.size_.store(into.size_.load(std::memory_order_relaxed) + moved, std::memory_order_relaxed);
  }

 private:
  void append_locked(TaskBase* task) noexcept {
    task->queue_next_ = nullptr;
    if (tail_ != nullptr) tail_->queue_next_ = task; else head_ = task;
    tail_ = task;
    // relaxed: written under lock_; readers outside it only estimate (see
    // the header comment for what orders the idle protocol).
    size_.store(size_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  SpinLock lock_;                // guards head_, tail_ and the links
  TaskBase* head_ = nullptr;
  TaskBase* tail_ = nullptr;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> new_tasks_{0};  // push_new() calls so far
};

}  // namespace weft::detail
