#include "scheduling/blocking_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "diagnostics/activity.hpp"
#include "diagnostics/tracer.hpp"
#include "scheduling/fiber.hpp"
#include "scheduling/current.hpp"
#include "scheduling/scheduler.hpp"
#include "sync/waiter.hpp"
#include "scheduling/worker.hpp"

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
  queued_.store(queued_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // relaxed: see queued()
  // seq_cst: read by Scheduler::quiescent() with the idle counters.
  in_flight_.fetch_add(1, std::memory_order_seq_cst);
  lock.unlock();
  if (wake_idle) work_cv_.notify_one();
}

void BlockingPool::thread_main() {
  pthread_setname_np(pthread_self(), "weft-blocking");
  Tracer* tracer = scheduler_.tracer();
  if (tracer != nullptr) tracer->new_blocking_lane();
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
    queued_.store(queued_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);  // relaxed: see queued()
    job->state = BlockingJob::State::running;
    TraceEvent traced;
    if (tracer != nullptr) {
      // The waiter is alive until the job is done (and its fiber, parked on it).
      traced.kind = TraceKind::blocking;
      traced.a = job->waiter->fiber() != nullptr ? fiber_id(job->waiter->fiber()) : 0;
      traced.ts = trace_ticks();
    }
    lock.unlock();
    job->run(job->ctx);
    if (tracer != nullptr) {
      traced.b = trace_ticks() - traced.ts;
      tracer->add_outside(traced);
    }
    lock.lock();
    job->state = BlockingJob::State::done;
    // Claimed under the lock: the caller swaps or abandons its waiter only
    // under it (withdraw_or_rewait), so this one is alive.
    Waiter* waiter = job->waiter;
    const bool won = waiter->try_claim(Waiter::Outcome::notified);
    lock.unlock();
    if (won) waiter->unpark();  // the job and its fiber's frame may be gone from here on
    // After the wake-up: the woken fiber's worker is counted awake before
    // this call stops counting (activity.hpp), and shutdown may proceed
    // once the count is 0 (it will then join us in the destructor).
    if (in_flight_.fetch_sub(1, std::memory_order_seq_cst) == 1) scheduler_.blocking_drained();
    activity::leave();
    lock.lock();
  }
}

bool BlockingPool::withdraw_or_rewait(BlockingJob* job, Waiter* rewait) {
  bool withdrawn = false;
  bool done = false;
  {
    std::lock_guard<std::mutex> guard(lock_);
    switch (job->state) {
      case BlockingJob::State::queued: {
        BlockingJob* prev = nullptr;
        for (BlockingJob* j = head_; j != job; j = j->next) prev = j;
        (prev != nullptr ? prev->next : head_) = job->next;
        if (tail_ == job) tail_ = prev;
        queued_.store(queued_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);  // relaxed: see queued()
        withdrawn = true;
        break;
      }
      case BlockingJob::State::running:
        job->waiter = rewait;
        break;
      case BlockingJob::State::done:
        done = true;  // its thread claimed the old waiter (or failed to): nobody notifies `rewait`
        break;
    }
  }
  if (withdrawn) {
    if (in_flight_.fetch_sub(1, std::memory_order_seq_cst) == 1) scheduler_.blocking_drained();
    activity::leave();
    return true;
  }
  if (done) rewait->notify();  // our own: park() returns at once
  return false;
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
  Waiter waiter(ParkReason::blocking);
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
  // Shutdown never cancels this wait: it waits until no blocking call is in
  // flight. A cancelled scope does (cancel.hpp): a job no thread has
  // started is withdrawn and the call throws weft::Cancelled; a job already
  // running may use this frame, so we wait for it, shielded, and return its
  // result (it completed: a cancelled call never also completes).
  if (waiter.park() == Waiter::Outcome::notified) return;
  Waiter rewait(ParkReason::blocking);
  rewait.set_description(&describe_blocking, nullptr);
  rewait.set_cancellable(false);
  BlockingPool& pool = current_worker()->scheduler().blocking_pool();  // re-read: we may have migrated
  if (pool.withdraw_or_rewait(&job, &rewait)) throw_cancelled();
  rewait.park();
}

}  // namespace weft::detail
