#include "blocking_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "activity.hpp"
#include "current.hpp"
#include "scheduler.hpp"
#include "waiter.hpp"
#include "worker.hpp"

namespace weft::detail {

BlockingPool::BlockingPool(Scheduler& scheduler, std::size_t max_threads, Nanos keep_alive)
    : scheduler_(scheduler), max_threads_(max_threads), keep_alive_(keep_alive) {}

void BlockingPool::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> guard(lock_);
    stopping_ = true;
    threads.swap(running_);
  }
  work_cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

void BlockingPool::reap_exited() {
  for (std::thread::id id : exited_) {
    auto it = std::find_if(running_.begin(), running_.end(), [&](const std::thread& t) { return t.get_id() == id; });
    if (it == running_.end()) continue;
    it->join();  // it has left the lock for good and is returning
    running_.erase(it);
  }
  exited_.clear();
}

void BlockingPool::submit(BlockingJob* job) {
  std::unique_lock<std::mutex> lock(lock_);
  reap_exited();
  const bool wake_idle = idle_ > 0;
  if (wake_idle) {
    // Claim that idle thread for this job now, so that a second submit
    // before it wakes starts another thread instead of counting it again.
    --idle_;
    ++wakeups_;
  } else if (running_.size() < max_threads_) {
    try {
      running_.emplace_back([this] { thread_main(); });
      num_threads_.store(running_.size(), std::memory_order_relaxed);
    } catch (...) {
      if (running_.empty()) throw;  // nobody could ever run it
      // Otherwise a busy thread will take it when it is done.
    }
  }
  job->next = nullptr;
  (tail_ != nullptr ? tail_->next : head_) = job;
  tail_ = job;
  // seq_cst: read by Scheduler::quiescent() with the idle counters.
  in_flight_.fetch_add(1, std::memory_order_seq_cst);
  lock.unlock();
  if (wake_idle) work_cv_.notify_one();
}

void BlockingPool::thread_main() {
  pthread_setname_np(pthread_self(), "weft-blocking");
  std::unique_lock<std::mutex> lock(lock_);
  for (;;) {
    if (head_ == nullptr) {
      if (stopping_) return;  // the destructor joins us
      ++idle_;
      const bool woken = work_cv_.wait_for(lock, std::chrono::nanoseconds(keep_alive_),
                                           [this] { return wakeups_ != 0 || stopping_; });
      if (wakeups_ != 0) {
        --wakeups_;  // a submit already took us off idle_
      } else {
        --idle_;
      }
      if (!woken) {
        // Idle for keep_alive: retire (the next submit joins us).
        exited_.push_back(std::this_thread::get_id());
        num_threads_.store(running_.size() - exited_.size(), std::memory_order_relaxed);
        return;
      }
      continue;
    }
    BlockingJob* job = head_;
    head_ = job->next;
    if (head_ == nullptr) tail_ = nullptr;
    lock.unlock();
    Waiter* waiter = job->waiter;
    job->run(job->ctx);
    waiter->notify();  // the job and its fiber's frame may be gone from here on
    // After the wake-up: the woken fiber's worker is counted awake before
    // this call stops counting (activity.hpp), and shutdown may proceed
    // once the count is 0 (it will then join us in the destructor).
    if (in_flight_.fetch_sub(1, std::memory_order_seq_cst) == 1) scheduler_.blocking_drained();
    activity::leave();
    lock.lock();
  }
}

namespace {

void describe_blocking(const void*, std::string& out) { out += "weft::blocking call"; }

}  // namespace

void run_blocking(void (*fn)(void* ctx) noexcept, void* ctx) {
  Worker* w = current_worker();
  if (w == nullptr || w->current_fiber() == nullptr) {
    fn(ctx);  // a plain thread may block itself
    return;
  }
  Waiter waiter;
  waiter.set_description(&describe_blocking, nullptr);
  BlockingJob job;
  job.run = fn;
  job.ctx = ctx;
  job.waiter = &waiter;
  activity::enter();  // in flight: progress for deadlock detection
  try {
    w->scheduler().blocking_pool().submit(&job);
  } catch (...) {
    activity::leave();
    throw;
  }
  // Never cancelled: shutdown waits until no blocking call is in flight
  // (the job writes into this frame), so this always ends notified.
  waiter.park();
}

}  // namespace weft::detail
