// Scheduler: the state one Runtime shares among its workers: the workers, the
// injection queue for work coming from outside, the idle protocol, the
// registry of live fibers, and shutdown.
//
// Submission paths:
//   from a fiber (or the loop) of this runtime  -> that worker's deque
//   from anywhere else                           -> injector_ (a GlobalQueue)
//   a fiber that yielded                         -> global_ (a GlobalQueue)
// then notify_work(), which wakes one sleeping worker if nobody searches.
//
// The injector is one FIFO for every thread outside the runtime: tasks
// submitted from plain threads start in the order they were submitted
// (with one worker exactly; with several, they are taken in that order), so
// no producer waits behind another's backlog. It replaced moodycamel's
// ConcurrentQueue, which is FIFO only per producer and served some
// producers' sub-queues ahead of others' (issue 16; docs/design/runtime.md,
// "Submission from outside").
//
// Allocation failure: the injector and global_ never allocate, so a woken
// fiber always finds a queue: one whose worker's deque cannot grow goes to
// global_, and no wake-up is ever lost. Only a spawn onto a worker's own
// deque that cannot grow fails, with std::bad_alloc to the spawner and
// nothing queued.
//
// Quiescence: the runtime is quiescent when every worker is asleep, no
// plain-thread call into it is in flight, and the injector is empty. Then
// every live fiber is parked, and nothing inside the runtime can wake one.
// Shutdown waits for that state; the last worker to fall asleep signals it.
//
// Contract: submit(), schedule(), push_injected(), notify_work() from any
// thread; the rest as noted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <vector>

#include "diagnostics/tracer.hpp"
#include "scheduling/blocking_pool.hpp"
#include "scheduling/global_queue.hpp"
#include "scheduling/idle_workers.hpp"
#include "scheduling/live_fibers.hpp"
#include "weft/runtime.hpp"
#include "scheduling/worker.hpp"

namespace weft::detail {

class SignalDump;

class Scheduler {
 public:
  // Validates options (std::invalid_argument) and starts the workers.
  explicit Scheduler(const Runtime::Options& options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Any thread: queues a new task (see the header comment for the path).
  // Throws RuntimeStopped when a caller from outside submits after shutdown
  // began.
  void submit(TaskBase* task);

  // Any thread: a parked fiber was unparked; queue it to run. Never fails.
  void schedule(Fiber* fiber) noexcept;

  // Any thread: injector push + notify_work(). Never fails, never
  // allocates; holds the injector's spin lock for a few instructions.
  void push_injected(TaskBase* task) noexcept;
  // Workers: the oldest task in the injector, or nullptr.
  TaskBase* pop_injected() noexcept { return injector_.pop(); }

  // Any thread, never fails: the shared FIFO (global_queue.hpp), then
  // notify_work(). For yielded fibers and for runnable tasks that could not
  // be queued elsewhere.
  void push_global(TaskBase* task) noexcept;
  // Workers: the oldest task of the shared FIFO, or nullptr.
  TaskBase* pop_global() noexcept { return global_.pop(); }

  // Any thread, estimates (the dump): tasks in the injector, the shared
  // FIFO of yielded fibers, and the urgent queue.
  std::size_t injected_approx() const noexcept { return injector_.size_approx(); }
  std::size_t yielded_approx() const noexcept { return global_.size_approx(); }
  std::size_t urgent_approx() const noexcept { return urgent_.size_approx(); }

  // Cancelled work first (issue: a cancelled subtree must unwind ahead of
  // fresh work). Fibers whose scope or task is cancelled are queued here
  // when they are woken (schedule) or, after a cancellation, moved here from
  // the global queue (promote_cancelled); workers look here before
  // anything else.
  TaskBase* pop_urgent() noexcept { return urgent_.pop(); }
  // Workers, when cancel_epoch() moved: moves cancelled fibers waiting in
  // the global queue (yielded CPU loops) to the urgent queue.
  void promote_cancelled(std::uint64_t epoch) noexcept;

  // Any thread, after making work visible: wakes a sleeping worker when
  // nobody is searching (IdleWorkers). Never fails.
  // Inline up to the common answer, nobody to wake (IdleWorkers).
  void notify_work() noexcept {
    if (idle_.may_need_notify_after_push()) [[unlikely]] notify_sleeper();
  }
  // notify_work() for a push that was one seq_cst read-modify-write (the
  // runnext slot's exchange): no barrier of its own
  // (IdleWorkers::may_need_notify_after_rmw). Inline as notify_work().
  void notify_work_after_rmw() noexcept {
    if (idle_.may_need_notify_after_rmw()) [[unlikely]] notify_sleeper();
  }
  // notify_work() for a worker's push onto its own deque: no barrier where
  // the heavy barrier is available (IdleWorkers, "Own pushes"). Inline.
  void notify_work_after_own_push() noexcept {
    if (idle_.may_need_notify_after_own_push()) [[unlikely]] notify_sleeper();
  }

  // Workers: is anything queued anywhere? (the last searcher's re-check)
  // `with_runnext` false leaves the workers' runnext slots out (a watching
  // sleeper's re-check: worker.hpp, "Watching").
  bool has_queued_work(bool with_runnext = true) const;

  // Workers, just after going to sleep: signals a shutdown waiting for
  // quiescence, and deadlock watchers (activity.hpp) when it was the last.
  void worker_went_idle();

  // Any thread: every worker asleep and nothing queued (deadlock detection;
  // meaningful only together with activity.hpp's epoch check).
  bool idle_and_empty() const;

  // Timer heap: kicks a sleeping worker so that it takes the timer driver
  // role; false if none sleeps. Under activity's registry lock.
  bool kick_sleeping_worker() noexcept;

  bool exiting() const noexcept { return exiting_.load(std::memory_order_acquire); }
  // Whether shutdown() has begun. relaxed: a hint for idle work (stack
  // trimming) that shutdown would otherwise wait for; nothing is read
  // through it.
  bool stopping_hint() const noexcept { return stopping_.load(std::memory_order_relaxed); }

  // Any thread: counters for Runtime::metrics() (scheduler_metrics.cpp).
  // Never blocks; allocates the per-worker vector.
  Runtime::Metrics metrics() const;

  // Plain threads only; see Runtime::shutdown() and shutdown_for().
  void shutdown();
  void shutdown_until(Nanos grace_deadline);

  // shutdown_for's grace period ran out: every fiber of the runtime is
  // cancelled (fiber_cancelled() reads this).
  bool cancelling_everything() const noexcept { return cancel_all_.load(std::memory_order_relaxed); }

  // The blocking pool's last in-flight job finished: shutdown may be waiting.
  void blocking_drained() { signal_quiescence_watchers(); }
  BlockingPool& blocking_pool() noexcept { return *blocking_; }
  const BlockingPool& blocking_pool() const noexcept { return *blocking_; }

  // The trace recorder, or nullptr when tracing is off (tracer.hpp). Set
  // before the workers start and kept until the Scheduler is destroyed.
  Tracer* tracer() const noexcept { return tracer_.get(); }

  // By each worker thread, once, when it has set itself up and before its
  // loop (Worker::run): the constructor returns only when every worker has.
  void worker_ready() noexcept;

  IdleWorkers& idle() noexcept { return idle_; }
  LiveFibers& live() noexcept { return live_; }
  Worker& worker(std::size_t i) noexcept { return *workers_[i]; }
  std::size_t num_workers() const noexcept { return workers_.size(); }
  const Runtime::Options& options() const noexcept { return options_; }

 private:
  // notify_work()'s rare part: a worker may sleep and nobody searches;
  // wakes the one IdleWorkers picks, if any.
  void notify_sleeper() noexcept;
  // Counts a call from outside the runtime (a plain thread, or a fiber of
  // another runtime) while it may still queue work, so that quiescence is not
  // declared under its feet. Throws RuntimeStopped once stopping.
  class ExternalCall {
   public:
    ExternalCall(Scheduler& s, const char* what);
    ~ExternalCall();
   private:
    Scheduler& s_;
  };

  bool quiescent() const;
  void wait_quiescent();
  bool wait_quiescent_until(Nanos deadline);  // false: the deadline came first
  void cancel_everything() noexcept;
  void signal_quiescence_watchers();
  void stop_workers() noexcept;

  Runtime::Options options_;
  GlobalQueue injector_;  // from outside the runtime, in submission order
  GlobalQueue global_;    // yielded fibers, and what a full deque could not take
  GlobalQueue urgent_;  // cancelled fibers, run first (pop_urgent)
  std::atomic<std::uint64_t> promoted_epoch_{0};  // the cancel_epoch() last acted on
  IdleWorkers idle_;
  LiveFibers live_;
  SlabStacks slab_stacks_;  // outlives the workers' pools, which return stacks to it
  std::unique_ptr<Tracer> tracer_;  // before workers_: outlives them
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<BlockingPool> blocking_;  // joined before the workers are destroyed

  // stopping_: set once (seq_cst) by shutdown(); read (seq_cst) by
  // ExternalCall after its increment of external_calls_. The pair is a
  // Dekker pattern: either the caller sees stopping_ and backs out, or
  // shutdown sees its count and waits for it.
  std::atomic<bool> stopping_{false};
  std::atomic<bool> exiting_{false};  // release by stop_workers, acquire by exiting()
  // Worker threads that have called worker_ready(); a futex word the
  // constructor waits on until it reaches the worker count.
  std::atomic<std::uint32_t> workers_ready_{0};
  // Set once (seq_cst) by cancel_everything(); read relaxed by
  // fiber_cancelled(), like a scope's flag (same pairing).
  std::atomic<bool> cancel_all_{false};
  std::atomic<std::size_t> external_calls_{0};
  // Threads waiting for quiescence. seq_cst with num_awake(): a worker that
  // reads 0 here has its sleep ordered before the watcher's check.
  std::atomic<std::size_t> quiescence_watchers_{0};
  std::mutex quiescence_lock_;
  std::condition_variable quiescence_cv_;
  std::mutex shutdown_lock_;  // serialises shutdown() callers
  bool stopped_ = false;      // guarded by shutdown_lock_
  std::unique_ptr<SignalDump> signal_dump_;  // Options::dump_signal; reset by ~Scheduler
};

}  // namespace weft::detail
