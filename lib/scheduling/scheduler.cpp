#include "scheduling/scheduler.hpp"

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "diagnostics/activity.hpp"
#include "diagnostics/signal_dump.hpp"
#include "structured/cancel_state.hpp"
#include "structured/fiber_cancelled.hpp"
#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "diagnostics/stack_overflow.hpp"
#include "scheduling/stack_pool.hpp"
#include "scheduling/task_depot.hpp"
#include "time/timer_heap.hpp"
#include "sync/futex.hpp"
#include "sync/wait_visit.hpp"
#include "sync/waiter.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t k_max_workers = 1024;
constexpr std::size_t k_max_stack = std::size_t{1} << 30;
constexpr std::size_t k_max_blocking_threads = 65536;

void validate(const Runtime::Options& o) {
  if (o.workers == 0) throw std::invalid_argument("weft::Runtime::Options::workers must be at least 1");
  if (o.workers > k_max_workers) {
    throw std::invalid_argument("weft::Runtime::Options::workers must be at most " + std::to_string(k_max_workers) +
                                " (got " + std::to_string(o.workers) + ")");
  }
  if (o.stack_size < StackPool::page_size()) {
    throw std::invalid_argument("weft::Runtime::Options::stack_size must be at least one page (" +
                                std::to_string(StackPool::page_size()) + " bytes; got " +
                                std::to_string(o.stack_size) + ")");
  }
  if (o.stack_size > k_max_stack) {
    throw std::invalid_argument("weft::Runtime::Options::stack_size must be at most 1 GiB (got " +
                                std::to_string(o.stack_size) + ")");
  }
  if (o.time_slice.count() <= 0) {
    throw std::invalid_argument("weft::Runtime::Options::time_slice must be positive (got " +
                                std::to_string(o.time_slice.count()) + " ns)");
  }
  if (o.max_blocking_threads == 0 || o.max_blocking_threads > k_max_blocking_threads) {
    throw std::invalid_argument("weft::Runtime::Options::max_blocking_threads must be 1 .. " +
                                std::to_string(k_max_blocking_threads) + " (got " +
                                std::to_string(o.max_blocking_threads) + ")");
  }
  if (o.dump_signal != 0 &&
      (o.dump_signal < 1 || o.dump_signal >= NSIG || o.dump_signal == SIGKILL || o.dump_signal == SIGSTOP ||
       o.dump_signal == SIGSEGV || o.dump_signal == SIGBUS)) {
    throw std::invalid_argument("weft::Runtime::Options::dump_signal must be 0 or a catchable signal other than "
                                "SIGSEGV and SIGBUS (got " + std::to_string(o.dump_signal) + ")");
  }
  if (o.blocking_keep_alive.count() < 0) {
    throw std::invalid_argument("weft::Runtime::Options::blocking_keep_alive must not be negative");
  }
}

}  // namespace

Scheduler::Scheduler(const Runtime::Options& options)
    : options_((validate(options), options)),
      idle_(options.workers),
      live_(options.workers),
      slab_stacks_(StackPool::round_to_pages(options.stack_size)) {
  install_stack_overflow_handler();
  prepare_wait_visits();  // before any fiber of ours can park
  tracer_ = Tracer::make(options_, options_.workers);  // may throw (an uncreatable trace_file)
  blocking_ = std::make_unique<BlockingPool>(*this, options_.max_blocking_threads,
                                             static_cast<Nanos>(options_.blocking_keep_alive.count()));
  workers_.reserve(options_.workers);
  const std::size_t stack_size = StackPool::round_to_pages(options_.stack_size);
  for (std::size_t i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i, stack_size, options_.stack_cache, slab_stacks_,
                                                options_.measure_run_slices,
                                                static_cast<Nanos>(options_.time_slice.count())));
    if (tracer_ != nullptr) workers_.back()->set_trace_buffer(tracer_->worker_buffer(i));
  }
  std::size_t started = 0;
  try {
    for (; started < workers_.size(); ++started) workers_[started]->start();
  } catch (...) {
    stop_workers();
    throw;
  }
  // The runtime is handed out with every worker thread running: a thread's
  // start-up (its creation, an alternate signal stack, its name) is paid
  // here, not by the first tasks or inside a caller's first idle second.
  // acquire: pairs with worker_ready()'s release (nothing else is
  // published; it keeps the count and the wake in one order).
  for (std::uint32_t n; (n = workers_ready_.load(std::memory_order_acquire)) < workers_.size();) {
    futex_wait(workers_ready_, n);
  }
  activity::register_scheduler(this);
  if (options_.dump_signal != 0) {
    try {
      signal_dump_ = std::make_unique<SignalDump>(*this, options_.dump_signal);
    } catch (...) {
      shutdown();
      activity::unregister_scheduler(this);
      throw;
    }
  }
}

void Scheduler::worker_ready() noexcept {
  // release: see the constructor's wait. The last one wakes it.
  if (workers_ready_.fetch_add(1, std::memory_order_release) + 1 == workers_.size()) futex_wake(workers_ready_, 1);
}

Scheduler::~Scheduler() {
  shutdown();
  activity::unregister_scheduler(this);
  signal_dump_.reset();  // after shutdown: a dump of a runtime stuck shutting down is the useful one
}

Scheduler::ExternalCall::ExternalCall(Scheduler& s, const char* what) : s_(s) {
  // seq_cst, then seq_cst load of stopping_: see stopping_'s comment.
  s_.external_calls_.fetch_add(1, std::memory_order_seq_cst);
  if (s_.stopping_.load(std::memory_order_seq_cst)) {
    // Back out (the destructor will not run for a throwing constructor).
    if (s_.external_calls_.fetch_sub(1, std::memory_order_seq_cst) == 1) s_.signal_quiescence_watchers();
    throw RuntimeStopped(std::string(what) + ": the runtime is shutting down");
  }
}

Scheduler::ExternalCall::~ExternalCall() {
  // seq_cst: pairs with quiescent()'s load in the shutdown thread.
  if (s_.external_calls_.fetch_sub(1, std::memory_order_seq_cst) == 1) s_.signal_quiescence_watchers();
}

namespace {

// What every submit writes into the task before it is published: its
// identity (task_ids.hpp), from the calling worker's batch (any runtime's
// worker: ids are process-wide), else one from the shared counter; and, from
// a fiber, the spawner's id and scope (a TaskGroup sets its own): cancelling
// that scope reaches the child too.
void stamp_new_task(TaskBase* task, Worker* w, Fiber* f) {
  task->id_ = w != nullptr ? w->take_task_id() : reserve_task_ids(1);
  if (f != nullptr) {
    task->spawner_id_ = fiber_id(f);
    if (task->scope_ == nullptr && f->scope != nullptr) task->scope_ = spawn_reference(f);
  }
}

}  // namespace

// Here, not in worker.cpp: its one caller is push_spawned below, and
// inlined there the spawn path makes one call fewer (issue 17).
[[gnu::always_inline]] inline void Worker::push_local(TaskBase* task) {
  if (lone_) task->mark_lone_spawn();  // only this thread will run it (task.hpp)
  // Counted before the push, so that whoever starts the task was ordered
  // after the count (release; see spawned()); taken back if the push fails.
  spawned_.store(spawned_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  // The usual push has room by the cached top and makes no call; the rest
  // is a tail call, so the spawn path saves no registers (issue 17).
  if (!deque_.push_if_room(task)) [[unlikely]] return push_local_reloading(task);
  // A lone worker is awake (it is pushing): nobody else could take the task.
  if (!lone_) scheduler_.notify_work_after_own_push();
}

void Worker::push_local_reloading(TaskBase* task) {
  try {
    deque_.push_reloading(task);  // push_if_room just said no: skip its check
  } catch (...) {  // std::bad_alloc: nothing queued
    // relaxed: single writer, nothing published.
    spawned_.store(spawned_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    throw;
  }
  if (!lone_) scheduler_.notify_work_after_own_push();
}

namespace {

// push_spawned with tracing on: the spawn's record, then the push. Out of
// line, so that push_spawned's only calls are tail calls.
[[gnu::noinline, gnu::cold]] void push_spawned_traced(Worker& w, TaskBase* task) {
  trace_spawn(*w.trace_buffer(), task);
  w.push_local(task);
}

// A spawn by a worker of the task's own runtime: onto its deque.
void push_spawned(Worker& w, TaskBase* task) {
  if (w.trace_buffer() != nullptr) [[unlikely]] return push_spawned_traced(w, task);
  w.push_local(task);
}

}  // namespace

void Scheduler::submit(TaskBase* task) {
  Worker* w = current_worker();
  stamp_new_task(task, w, w != nullptr ? w->current_fiber() : nullptr);
  if (w != nullptr && &w->scheduler() == this) {
    push_spawned(*w, task);
    return;
  }
  PlainCall plain;  // a plain thread inside spawn may still wake a worker
  ExternalCall call(*this, "weft::Runtime::spawn");
  if (tracer_ != nullptr) [[unlikely]] trace_spawn_outside(*tracer_, task);  // after the stopping check
  injector_.push_new(task);  // as push_injected, counted as a spawn (metrics)
  notify_work();
}

void Scheduler::schedule(Fiber* fiber) noexcept {
  // A parked fiber: what it wrote (its scope) is visible to us through the
  // park handshake that handed it to us.
  if (fiber_cancelled(fiber)) {
    urgent_.push(fiber->task);
    notify_work();
    return;
  }
  Worker* w = current_worker_at_entry();  // nothing here parks (current.hpp)
  if (w != nullptr && &w->scheduler() == this) {
    w->push_woken(fiber->task, fiber->park_reason);  // LIFO: the woken fiber runs next, cache-hot
  } else {
    push_injected(fiber->task);
  }
}

void Scheduler::push_injected(TaskBase* task) noexcept {
  // Intrusive: nothing to allocate, so nothing can fail. The push's lock
  // and notify_work()'s barrier order it before a sleeping worker's
  // re-check (global_queue.hpp, "Ordering").
  injector_.push(task);
  notify_work();
}

void Scheduler::push_global(TaskBase* task) noexcept {
  global_.push(task);
  notify_work();
}

void Scheduler::notify_sleeper() noexcept {
  const std::optional<std::size_t> index = idle_.notify_locked();
  if (index) {
    // The worker is counted awake already; the epoch tells a deadlock
    // detector that read the counters before that increment (activity.hpp).
    activity::bump_epoch();
    workers_[*index]->wake();
  }
}

bool Scheduler::kick_sleeping_worker() noexcept {
  std::optional<std::size_t> index;
  try {
    index = idle_.peek_sleeper();
  } catch (...) {  // std::mutex::lock failing: nobody to kick
    return false;
  }
  if (!index) return false;
  workers_[*index]->timer_kick();
  return true;
}

void Scheduler::promote_cancelled(std::uint64_t epoch) noexcept {
  std::uint64_t seen = promoted_epoch_.load(std::memory_order_relaxed);
  // relaxed: only decides which worker does the scan; the scan itself runs
  // under the queues' locks.
  if (seen == epoch || !promoted_epoch_.compare_exchange_strong(seen, epoch, std::memory_order_relaxed)) return;
  global_.move_if(
      [](TaskBase* t) {
        Fiber* f = t->fiber_.load(std::memory_order_relaxed);  // queued: its worker handed it over
        return f != nullptr && fiber_cancelled(f);
      },
      urgent_);
}

bool Scheduler::has_queued_work(bool with_runnext) const {
  if (injector_.size_approx() != 0 || global_.size_approx() != 0 || urgent_.size_approx() != 0) return true;
  for (const auto& w : workers_) {
    if (w->has_queued_work(with_runnext)) return true;
  }
  return false;
}

void Scheduler::worker_went_idle() {
  if (idle_.num_awake() != 0) return;
  activity::signal_watchers();
  // seq_cst: pairs with wait_quiescent()'s increment (see its comment).
  if (quiescence_watchers_.load(std::memory_order_seq_cst) == 0) return;
  signal_quiescence_watchers();
}

bool Scheduler::idle_and_empty() const { return idle_.num_awake() == 0 && !has_queued_work(); }

void Scheduler::signal_quiescence_watchers() {
  if (quiescence_watchers_.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> guard(quiescence_lock_);
  quiescence_cv_.notify_all();
}

bool Scheduler::quiescent() const {
  // seq_cst loads: each pairs with the seq_cst RMW that changes the count
  // (begin_sleep, ExternalCall) and with the watcher registration.
  return idle_.num_awake() == 0 && external_calls_.load(std::memory_order_seq_cst) == 0 &&
         blocking_->in_flight() == 0 && injector_.size_approx() == 0 && global_.size_approx() == 0 &&
         urgent_.size_approx() == 0;
}

void Scheduler::wait_quiescent() { wait_quiescent_until(k_never); }

bool Scheduler::wait_quiescent_until(Nanos deadline) {
  // Register first, then check under the lock: a worker that falls asleep
  // after our check sees watchers > 0 and notifies under the same lock, so
  // the notification cannot slip between the check and the wait.
  quiescence_watchers_.fetch_add(1, std::memory_order_seq_cst);
  bool reached;
  {
    std::unique_lock<std::mutex> lock(quiescence_lock_);
    if (deadline == k_never) {
      quiescence_cv_.wait(lock, [this] { return quiescent(); });
      reached = true;
    } else {
      const auto until = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline));
      reached = quiescence_cv_.wait_until(lock, until, [this] { return quiescent(); });
    }
  }
  quiescence_watchers_.fetch_sub(1, std::memory_order_seq_cst);
  return reached;
}

void Scheduler::cancel_everything() noexcept {
  // From now on every fiber of this runtime counts as cancelled
  // (fiber_cancelled): running ones throw weft::Cancelled at their next
  // wait or maybe_yield(), woken ones run first (the urgent queue).
  // seq_cst: before the scan of the parked fibers below, as a scope's flag
  // before its members' scan (cancel_state.hpp, C2): a fiber parking
  // concurrently either sees the flag or is found.
  const WaitVisit visit;  // before the flag (wait_visit.hpp)
  cancel_all_.store(true, std::memory_order_seq_cst);
  bump_cancel_epoch();
  std::vector<Waiter*> claimed;
  try {
    live_.for_each([&](Fiber* f) {
      std::lock_guard<SpinLock> guard(f->wait_lock);
      // acquire: pairs with publish_parked_on's release store.
      Waiter* w = f->parked_on.load(std::memory_order_acquire);
      // Shielded waits (a group waiting for its cancelled children) end by
      // themselves once what they wait for unwinds.
      if (w != nullptr && w->cancellable() && w->try_claim(Waiter::Outcome::cancelled)) claimed.push_back(w);
    });
  } catch (...) {
    // No memory for the list: what was claimed is still woken below; the
    // rest see the flag at their next wait, and shutdown cancels them.
  }
  for (Waiter* w : claimed) w->unpark();
}

void Scheduler::shutdown() { shutdown_until(k_never); }

void Scheduler::shutdown_until(Nanos grace_deadline) {
  if (on_worker_of(this)) {
    throw std::logic_error("weft::Runtime::shutdown called from a fiber of the same runtime (it would wait for itself)");
  }
  std::lock_guard<std::mutex> guard(shutdown_lock_);
  if (stopped_) return;
  stopping_.store(true, std::memory_order_seq_cst);
  if (grace_deadline != k_never && !wait_quiescent_until(grace_deadline)) cancel_everything();
  for (;;) {
    wait_quiescent();
    // Quiescent: every live fiber is parked, and nothing in the runtime will
    // wake it. Cancel them; their waits throw FiberCancelled and unwind,
    // which may wake others (e.g. their joiners): drain again.
    // Claim every waiter first, then unpark: a claimed waiter's fiber cannot
    // resume (and free its waiter) until we unpark it, so no claim below
    // can touch a waiter whose fiber an earlier unpark already let go.
    std::vector<Waiter*> cancelled;
    {
      const WaitVisit visit;  // see Fiber::parked_on
      live_.for_each([&](Fiber* f) {
        std::lock_guard<SpinLock> guard(f->wait_lock);
        // acquire: pairs with publish_parked_on's release store.
        Waiter* w = f->parked_on.load(std::memory_order_acquire);
        if (w != nullptr && w->try_claim(Waiter::Outcome::cancelled)) cancelled.push_back(w);
      });
    }
    if (cancelled.empty()) {
      // A fiber someone else claimed is about to run: drain it first.
      if (live_.count() == 0) break;
      continue;
    }
    for (Waiter* w : cancelled) w->unpark();
  }
  stop_workers();
  // The workers' task caches went to the depot as their threads exited;
  // what it holds beyond its resting size goes now (as the stack pools'
  // destructors trim theirs), not in some other runtime's idle time.
  trim_task_depot(SIZE_MAX, false);  // all of the surplus, rested or not
  blocking_->stop();  // no job in flight (quiescent): stops and joins its threads
  stopped_ = true;
  // Every recording thread is joined: the lanes are ours to read. A write
  // failure is reported on stderr (Runtime::Options::trace_file).
  if (tracer_ != nullptr) tracer_->write();
}

void Scheduler::stop_workers() noexcept {
  exiting_.store(true, std::memory_order_release);  // pairs with exiting()'s acquire
  for (auto& w : workers_) w->wake();
  for (auto& w : workers_) w->join();
}

// ---- free functions declared in weft/detail/task.hpp ----

void submit(Scheduler* scheduler, TaskBase* task) { scheduler->submit(task); }

namespace {
[[noreturn]] void throw_not_in_fiber(const char* caller) {
  throw NotInFiber(std::string(caller) + " called outside a fiber (from a plain thread); use Runtime::spawn");
}
}  // namespace

Scheduler* current_scheduler_or_throw(const char* caller) {
  Worker* w = current_worker();
  if (w == nullptr || w->current_fiber() == nullptr) throw_not_in_fiber(caller);
  return &w->scheduler();
}

void submit_to_current(TaskBase* task, const char* caller) {
  // One read of the worker for the check and the push (Scheduler::submit
  // would read it again): the task can only go to this worker's runtime.
  // Nothing here parks: the inlined read (current.hpp).
  Worker* w = current_worker_at_entry();
  Fiber* f = w != nullptr ? w->current_fiber() : nullptr;
  if (f == nullptr) throw_not_in_fiber(caller);
  stamp_new_task(task, w, f);
  push_spawned(*w, task);
}

bool on_worker_of(const Scheduler* scheduler) noexcept {
  Worker* w = current_worker();
  return w != nullptr && &w->scheduler() == scheduler;
}

}  // namespace weft::detail
