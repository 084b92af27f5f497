// BlockingPool: the plain threads behind weft::blocking(f), one pool per
// runtime (Tokio's spawn_blocking pool).
//
// A fiber that calls blocking(f) queues a Job that lives on its own stack
// and parks; a pool thread runs the job and notifies the fiber's waiter.
// Threads are created on demand, up to Options::max_blocking_threads (more
// jobs queue, FIFO); a thread idle for Options::blocking_keep_alive exits.
// stop() joins every thread; shutdown calls it once no job can be in flight (Scheduler::quiescent counts them).
//
// In flight = queued or running. The count is seq_cst: shutdown's
// quiescence check reads it together with the workers' idle counters. A job
// also counts as activity for deadlock detection from submit until after it
// has woken its fiber (hand-off rule, activity.hpp).
//
// Contract: submit() from fibers of the owning runtime; the rest any thread.
// submit() never blocks beyond a short mutex; it may create a thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

class Scheduler;
class Waiter;

struct BlockingJob {
  enum class State { queued, running, done };
  void (*run)(void* ctx) noexcept = nullptr;  // must not throw: it stores the outcome in ctx
  void* ctx = nullptr;
  // Claimed (notified) by the pool thread once run() returned, under the
  // pool's lock, and unparked after; the job may be gone after that. The
  // caller may swap it (withdraw_or_rewait) under the same lock.
  Waiter* waiter = nullptr;
  State state = State::queued;  // guarded by the pool's lock
  BlockingJob* next = nullptr;
};

class BlockingPool {
 public:
  BlockingPool(Scheduler& scheduler, std::size_t max_threads, Nanos keep_alive);
  ~BlockingPool() { stop(); }
  // Stops and joins every thread; later submits would wait forever, so only
  // after shutdown. Idempotent.
  void stop();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `job` and makes sure a thread will run it. Throws
  // std::system_error when no thread exists and none can be started (the
  // job is then not queued and nothing was counted).
  void submit(BlockingJob* job);

  // The caller's wait for `job` was cancelled (its scope): takes the job off
  // the queue if no thread has started it (true: it will never run), else
  // makes `rewait` the waiter the pool thread notifies when it is done
  // (false: the caller must park on `rewait`, shielded; if the job is done
  // already, `rewait` is notified here). Never blocks beyond the lock.
  bool withdraw_or_rewait(BlockingJob* job, Waiter* rewait);

  std::size_t threads() const noexcept { return num_threads_.load(std::memory_order_relaxed); }
  std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_seq_cst); }
  // Jobs queued that no thread has started (metrics). relaxed: a statistic
  // written under lock_ only, read without it as an estimate.
  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }

 private:
  void thread_main();
  void reap_exited();  // under lock_: joins threads that have retired

  Scheduler& scheduler_;
  const std::size_t max_threads_;
  const Nanos keep_alive_;
  std::mutex lock_;
  std::condition_variable work_cv_;
  BlockingJob* head_ = nullptr;  // FIFO of queued jobs, guarded by lock_
  BlockingJob* tail_ = nullptr;
  std::size_t idle_ = 0;         // threads waiting and not yet claimed by a submit, guarded by lock_
  std::size_t wakeups_ = 0;      // submits that claimed an idle thread it has not seen yet, guarded by lock_
  bool stopping_ = false;        // guarded by lock_
  std::vector<std::thread> running_;  // guarded by lock_
  std::vector<std::thread::id> exited_;  // retired, to be joined; guarded by lock_
  std::atomic<std::size_t> num_threads_{0};  // relaxed: a statistic (metrics)
  std::atomic<std::size_t> in_flight_{0};    // seq_cst; see above
  std::atomic<std::size_t> queued_{0};       // written under lock_; see queued()
};

// Runs fn(ctx) on the blocking pool of the calling fiber's runtime and parks
// the fiber until it has returned; on a plain thread runs it inline.
// Exported: weft::blocking() calls it (weft/blocking.hpp declares it too).
WEFT_API void run_blocking(void (*fn)(void* ctx) noexcept, void* ctx);

}  // namespace weft::detail
