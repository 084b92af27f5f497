// Tracer: a runtime's timeline recorder (Runtime::Options::trace_file or
// WEFT_TRACE), written at shutdown as Chrome trace-event JSON in the format
// of docs/guide/seeing-inside.md (the renderer reads the same).
//
// Off: the Scheduler holds no Tracer and every Worker's trace_ is nullptr,
// so each hook below costs its caller one load and one never-taken branch
// ([[unlikely]]): the hooks are called only when tracing is on.
//
// On: each worker appends to its own TraceBuffer, with no lock and no
// atomic (the buffer is its thread's alone). Events from any other thread
// (a spawn or wake-up from a plain thread, a blocking-pool job, a worker of
// another runtime waking one of ours) go to one shared buffer under a
// mutex: none of them is on a hot path. Timestamps are trace_ticks() (the
// TSC on x86-64: no vDSO call per event); the writer subtracts the
// runtime's start and converts ticks to nanoseconds with the rate measured
// against CLOCK_MONOTONIC since the library was loaded.
//
// Ids: a slice carries its fiber's id (this_fiber::id(): its task's id,
// given at spawn). A spawn records the spawner's id and the new task's id,
// a steal the stolen task's id: the id its fiber has when it runs. A task
// joined inline runs with its joiner's id; a bind event records that, and
// the writer writes such a task's spawn and steal with the joiner's id.
//
// Names: a named fiber's name is copied into a name event the first time a
// lane runs it (and again after a rename), not per slice; the writer labels
// every slice of that id with it. Park reasons are Waiter descriptions with
// their fiber references written out (fiber_dump.hpp) before they are cut
// to TraceBuffer::k_max_text bytes on a UTF-8 boundary.
//
// Contract: make() and write() on the thread that constructs / shuts down
// the runtime; the hooks as each says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "diagnostics/trace_buffer.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {

struct Fiber;
class Scheduler;
class TaskBase;
class Worker;

class Tracer {
 public:
  // nullptr when tracing is off. Options::trace_file wins over WEFT_TRACE.
  // Creates (truncates) the file now: throws std::system_error when the
  // option's path cannot be created; for WEFT_TRACE's path, prints why on
  // stderr and returns nullptr (the runtime runs untraced).
  static std::unique_ptr<Tracer> make(const Runtime::Options& options, std::size_t workers);

  Tracer(std::FILE* file, std::string path, std::size_t workers, Nanos time_slice);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Worker i's buffer (the Scheduler hands it to the worker before start).
  TraceBuffer* worker_buffer(std::size_t i) noexcept { return workers_[i].get(); }

  // Any thread that is not a worker of this runtime: appends e on the
  // calling thread's lane (a blocking-pool lane, or a plain thread's).
  void add_outside(TraceEvent e) noexcept;
  // A blocking-pool thread of this runtime, at its start: its lane number.
  std::uint32_t new_blocking_lane() noexcept;

  // After every worker and pool thread has been joined: merges the lanes
  // and writes the file. A failure is reported on stderr ("weft: could not
  // write the trace to PATH: why") and returned as false; never throws.
  bool write() noexcept;

  const std::string& path() const noexcept { return path_; }

 private:
  std::uint32_t outside_lane_locked();  // under lock_
  bool write_json(std::FILE* f) const;

  std::FILE* file_;
  const std::string path_;
  const std::uint64_t origin_;  // trace_ticks() when made: the trace's time 0
  const Nanos time_slice_;
  std::vector<std::unique_ptr<TraceBuffer>> workers_;
  mutable std::mutex lock_;  // guards shared_, threads_ and next_blocking_; never held on a hot path
  TraceBuffer shared_{TraceBuffer::k_any_lane};
  std::vector<std::pair<std::thread::id, std::uint32_t>> threads_;  // plain threads' lanes
  std::uint32_t next_blocking_ = 0;
};

// ---- hooks: called only when tracing is on ----

// Owner worker, at a switch to f (f is about to run): opens f's slice, at
// the last slice's end when `chained` (it ended just now: no clock read).
void trace_switch_in(TraceBuffer& b, Fiber* f, bool chained) noexcept;
// Owner worker, as f switches out (or takes on its next task): closes its
// slice; a park also records what f waits for (f->parked_on, alive now).
void trace_switch_out(TraceBuffer& b, Fiber* f, TraceEnd end) noexcept;
// Owner worker: a steal from worker `victim` of `task`.
void trace_steal(TraceBuffer& b, std::size_t victim, TaskBase* task) noexcept;
// Owner worker: an instant event (timer, wake, cancel) about fiber id `a`.
void trace_instant(TraceBuffer& b, TraceKind kind, std::uint64_t a = 0) noexcept;
// Owner worker: `n` timers fired, from `at` (trace_ticks()) on.
void trace_timers(TraceBuffer& b, std::uint64_t at, std::size_t n) noexcept;
// Owner worker: it slept from `start` (trace_ticks()) until now.
void trace_sleep(TraceBuffer& b, std::uint64_t start) noexcept;
// Owner worker: `task` ran inline on the calling fiber (inline join).
void trace_bind(TraceBuffer& b, Fiber* f, TaskBase* task) noexcept;
// Owner worker: its fiber submitted `task` to this runtime (Scheduler::submit).
void trace_spawn(TraceBuffer& b, const TaskBase* task) noexcept;
// Any other thread: it submitted `task` to t's runtime.
void trace_spawn_outside(Tracer& t, const TaskBase* task) noexcept;
// Any thread, by the unparker that won a parked fiber: f is being woken.
void trace_unpark(Tracer& t, Scheduler& s, Fiber* f) noexcept;
// On a fiber about to throw weft::Cancelled / FiberCancelled: records the
// delivery if its runtime traces (looks the worker up itself; cold path).
void trace_cancel_delivered() noexcept;


}  // namespace weft::detail
