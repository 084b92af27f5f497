// weft::Runtime: M worker threads running go-like tasks as stackful fibers.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <concepts>
#include <type_traits>
#include <utility>

#include "detail/task.hpp"
#include "errors.hpp"
#include "join_handle.hpp"
#include "metrics.hpp"

namespace weft {

// One per CPU this process may use: the number of CPUs in the calling
// thread's affinity mask (taskset, cpusets), capped by the CPU quota of the
// process's cgroup v2 (`cpu.max`, rounded up: 1.5 CPUs gives 2), and at least
// 1. Falls back to std::thread::hardware_concurrency() when the mask cannot
// be read. Reads the mask and a few small files under /proc and /sys on every
// call (Runtime::Options calls it once per Runtime); never blocks otherwise.
// Any thread may call it.
WEFT_API std::size_t default_worker_count() noexcept;

template <class F>
using task_result_t = std::invoke_result_t<std::decay_t<F>>;

// What spawn(), go() and TaskGroup::spawn() accept: a callable that can be
// moved into the task and called with no arguments, returning a value (or
// void), not a reference. A call with anything else fails to compile with
// this concept named in the error.
template <class F>
concept Spawnable = std::move_constructible<std::decay_t<F>> && std::is_invocable_v<std::decay_t<F>> &&
                    !std::is_reference_v<std::invoke_result_t<std::decay_t<F>>>;

namespace detail {
template <Spawnable F>
JoinHandle<task_result_t<F>> spawn_on(Scheduler* scheduler, F&& fn, std::string_view name = {}) {
  using R = task_result_t<F>;
  static_assert(!std::is_reference_v<R>,
                "a weft task must return a value, not a reference (return a pointer or std::ref)");
  return JoinHandle<R>(submit_new_task<R>(scheduler, std::forward<F>(fn), name));
}
}  // namespace detail

// A work-stealing executor. Each worker is an OS thread with its own
// Chase-Lev deque of runnable fibers; idle workers steal from random victims
// and then sleep without using CPU.
//
// Threading: every member may be called from any thread, including fibers of
// another runtime. spawn() from a fiber of this runtime pushes to that
// worker's own deque; from anywhere else it goes through a shared injection
// queue. Runtime is neither copyable nor movable.
class WEFT_API Runtime {
 public:
  struct Options {
    // Number of worker threads; must be 1 .. 1024.
    std::size_t workers = default_worker_count();
    // Bytes reserved for each fiber's stack (rounded up to whole pages; at
    // least one page). Pages are committed only when touched, and a guard
    // page below each stack turns an overflow into a fault, not corruption.
    std::size_t stack_size = 256 * 1024;
    // Finished fibers' stacks kept per worker for reuse. Stacks beyond it
    // are reused first as well, and their pages given back to the kernel a
    // few at a time whenever a worker has nothing to run (and at shutdown),
    // never while fibers wait. Where stacks come from process-wide arenas
    // (Linux 6.13+), up to 16,384 given-back stacks keep their top page, so
    // that a later fiber, of this runtime or a later one, starts on them
    // without a page fault; the address space they reserve stays reserved
    // until the process ends.
    std::size_t stack_cache = 64;
    // How long a fiber runs before this_fiber::maybe_yield() gives the
    // worker away; must be positive.
    std::chrono::nanoseconds time_slice = std::chrono::milliseconds(10);
    // Most threads weft::blocking() may run at once for this runtime (more
    // calls queue); 1 .. 65536. Threads are created on demand.
    std::size_t max_blocking_threads = 128;
    // A blocking-pool thread with nothing to do for this long exits.
    std::chrono::nanoseconds blocking_keep_alive = std::chrono::seconds(10);
    // JoinHandle::join() from a fiber, of a task that has not started and
    // is the next one queued on the joiner's worker, runs the task right
    // there on the joiner's stack (while at least half of that stack is
    // free) instead of parking until a worker starts it as a fiber of its
    // own. Fork-join code gets much cheaper; the task then shares the
    // joiner's fiber (this_fiber::id(), and its parks park the joiner).
    // A named task (spawn("name", fn)) is never run inline.
    // Turn it off if a task needs more than half of stack_size.
    bool inline_join = true;
    // A signal (e.g. SIGUSR1) on which the runtime writes dump() to stderr;
    // 0: off. The handler only writes to an eventfd (async-signal-safe); a
    // small thread of the runtime then formats and writes the dump. Installs
    // a process-wide handler for that signal while the runtime lives
    // (restoring the previous one after the last runtime using the signal
    // ends). Must be 0 or a catchable signal other than SIGSEGV and SIGBUS
    // (weft's stack-overflow report uses those); std::invalid_argument
    // otherwise.
    int dump_signal = 0;
    // Measure every fiber run slice (a clock read each time a fiber is
    // switched in and out) into metrics().run_slices: a histogram of their
    // lengths, and overruns, slices longer than time_slice (a loop missing
    // this_fiber::maybe_yield()). Off: no clock read, one branch per switch.
    bool measure_run_slices = false;
    // Tracing (docs/guide/seeing-inside.md): a path to write a Chrome
    // trace-event JSON timeline of this runtime to when it shuts down
    // (fiber run slices per worker, spawns, steals, parks with their reason,
    // wake-ups, timers, blocking jobs, worker sleeps, cancellations); Perfetto
    // and chrome://tracing open it. Empty (the default): the environment
    // variable WEFT_TRACE names the file instead; empty or unset too:
    // tracing is off. This option wins over WEFT_TRACE. The file is created
    // (truncated) when the runtime starts: the constructor throws
    // std::system_error when this option names a file that cannot be
    // created (a WEFT_TRACE path that cannot be is reported on stderr and
    // the runtime runs untraced). A failure to write at shutdown is reported
    // on stderr; shutdown does not throw for it. Memory: 32 bytes an event,
    // in 2 MiB chunks, at most 16 MiB per worker (and one more lane for
    // other threads); later events are dropped and counted in the file.
    std::string trace_file{};
  };

  // A snapshot of counters and queue depths, for monitoring and tests
  // (weft/metrics.hpp lists every field; the older ones keep their names).
  using Metrics = RuntimeMetrics;

  // Starts the workers, and returns once every worker thread is running
  // (blocks the calling thread, or a fiber's worker, for the threads'
  // start-up: tens of microseconds). Throws std::invalid_argument for bad
  // Options and std::system_error if a thread cannot be started.
  Runtime();
  explicit Runtime(Options options);

  // shutdown(), then frees everything.
  ~Runtime();

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs fn() as a new fiber and returns its handle. Never blocks or parks.
  // Throws weft::RuntimeStopped once shutdown() has begun, except from fibers
  // of this runtime, which may keep spawning while shutdown drains them.
  // [[nodiscard]]: dropping the handle detaches the task; say detach().
  template <Spawnable F>
  [[nodiscard]] JoinHandle<task_result_t<F>> spawn(F&& fn) {
    return detail::spawn_on(scheduler_.get(), std::forward<F>(fn));
  }

  // As spawn(fn), naming the fiber (a copy of `name`; empty: unnamed). The
  // name shows in dump() and in deadlock reports; this_fiber::name() reads
  // it and this_fiber::set_name() changes it. Also throws std::bad_alloc.
  // An unnamed spawn pays nothing for names.
  template <Spawnable F>
  [[nodiscard]] JoinHandle<task_result_t<F>> spawn(std::string_view name, F&& fn) {
    return detail::spawn_on(scheduler_.get(), std::forward<F>(fn), name);
  }

  // Runs fn() as a fiber and blocks the calling thread until it returns its
  // value (or rethrows its exception). Must be called from a plain thread or
  // from a fiber of another runtime: from a fiber or worker of this runtime it
  // throws std::logic_error (it would block the worker it needs).
  // From a plain thread it throws weft::Deadlock when fn() can never finish
  // because every fiber is parked and nothing can wake one (deadlock.hpp has
  // the exact rule); the fibers stay parked until shutdown cancels them.
  template <class F>
  task_result_t<F> block_on(F&& fn) {
    if (detail::on_worker_of(scheduler_.get())) {
      throw std::logic_error("weft::Runtime::block_on called from a fiber of the same runtime; use go() and join()");
    }
    JoinHandle<task_result_t<F>> handle = spawn(std::forward<F>(fn));
    handle.task_->wait_done_or_deadlock(*scheduler_);
    return handle.join();
  }

  // The one-line main(): starts a runtime with default Options (or the given
  // ones), runs fn() as a fiber, shuts down, and returns fn()'s value or
  // rethrows its exception (or weft::Deadlock, as block_on). Blocks the
  // calling thread.
  template <class F>
  static task_result_t<F> run(F&& fn) {
    Runtime rt;
    return rt.block_on(std::forward<F>(fn));
  }
  template <class F>
  static task_result_t<F> run(Options options, F&& fn) {
    Runtime rt(options);
    return rt.block_on(std::forward<F>(fn));
  }

  // Stops the runtime. Blocks the calling thread while it:
  //  1. refuses new spawns from outside (RuntimeStopped),
  //  2. runs every runnable fiber, and what they spawn, until every fiber has
  //     finished or is parked,
  //  3. cancels the fibers that are parked with nothing left to wake them:
  //     their waits throw weft::FiberCancelled, their stacks unwind (destructors
  //     run), and joining them throws weft::RuntimeStopped; repeats 2-3 until
  //     no fiber is left,
  //  4. stops and joins the worker threads and releases every stack.
  // Idempotent and thread-safe; a second caller waits for the first. Throws
  // std::logic_error from a fiber or worker of this runtime.
  void shutdown();

  // As shutdown(), with a grace period: the fibers get `grace` to finish
  // (steps 1-2 above); whatever is still running or waiting then is
  // cancelled, as if every fiber's scope were (cancel.hpp): their waits throw
  // weft::Cancelled, parked ones at once, running ones at their next wait
  // or maybe_yield(), and they run ahead of other work while they unwind.
  // Then shutdown() proceeds. A fiber in a loop that never waits and never
  // calls maybe_yield() still holds its worker until it ends. Same
  // threading rules as shutdown().
  template <class Rep, class Period>
  void shutdown_for(const std::chrono::duration<Rep, Period>& grace) {
    shutdown_until_ns(detail::deadline_after(grace));
  }

  std::size_t num_workers() const noexcept;
  const Options& options() const noexcept;

  // Counters and queue depths (see weft/metrics.hpp). Any thread, fibers of
  // this runtime included; never blocks or parks (relaxed loads, no lock).
  // Allocates the per_worker vector, so it is not noexcept: std::bad_alloc
  // reaches the caller rather than terminating a monitoring thread.
  Metrics metrics() const;

  // A listing of the runtime's fibers, one line each, in the format of Go's
  // goroutine dump and of weft::Deadlock's report:
  //   fiber 17 "fetch" [parked 3.2 s] recv on channel "jobs" (0x...); spawned by fiber 3 "main"
  //   fiber 4 [running on worker 1]
  // after a header with each worker's running fiber and queue length.
  // Listed: every fiber that has parked at least once (and not finished),
  // every named fiber from its start, and each worker's running fiber (id
  // only, if it is neither). Not listed, only counted in the header: tasks
  // queued that never ran, and unnamed fibers that never parked and are
  // queued after a yield. docs/guide/seeing-inside.md has the
  // details. A snapshot: states are read fiber by fiber while the runtime
  // runs. Any thread (also a fiber of this runtime); never parks; takes the
  // registry's and each listed fiber's spin locks briefly, after one
  // membarrier system call (a few microseconds). Throws std::bad_alloc.
  std::string dump() const;

 private:
  void shutdown_until_ns(detail::Nanos grace_deadline);
  template <class T>
  friend class TaskGroup;
  detail::Scheduler* scheduler() const noexcept { return scheduler_.get(); }

  std::unique_ptr<detail::Scheduler> scheduler_;
};

// Spawns fn() on the runtime of the calling fiber, on the calling worker's
// own deque (other workers steal it if they are idle). The calling fiber keeps
// running. Never blocks. Throws weft::NotInFiber from a plain thread (the
// callable, moved into the task by then, is destroyed with it).
// [[nodiscard]]: dropping the handle detaches the task; say detach().
template <Spawnable F>
[[nodiscard]] JoinHandle<task_result_t<F>> go(F&& fn) {
  return JoinHandle<task_result_t<F>>(detail::go_new_task<task_result_t<F>>("weft::go", std::forward<F>(fn)));
}

// As go(fn), naming the fiber (see Runtime::spawn(name, fn)).
template <Spawnable F>
[[nodiscard]] JoinHandle<task_result_t<F>> go(std::string_view name, F&& fn) {
  return JoinHandle<task_result_t<F>>(detail::go_new_task<task_result_t<F>>("weft::go", std::forward<F>(fn), name));
}

}  // namespace weft
