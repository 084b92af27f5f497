#include "diagnostics/tracer.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "diagnostics/fiber_dump.hpp"
#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/worker.hpp"
#include "sync/waiter.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

namespace {

constexpr std::uint32_t k_plain_lane = 1000;
constexpr std::uint32_t k_blocking_lane = 2000;

// A blocking-pool thread's lane (set once, at its start, when tracing);
// 0 for every other thread.
thread_local std::uint32_t t_blocking_lane = 0;

}  // namespace

std::unique_ptr<Tracer> Tracer::make(const Runtime::Options& options, std::size_t workers) {
  std::string path = options.trace_file;
  const bool from_env = path.empty();
  if (from_env) {
    const char* env = std::getenv("WEFT_TRACE");
    if (env == nullptr || *env == '\0') return nullptr;
    path = env;
  }
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    const int err = errno;
    if (!from_env) {
      throw std::system_error(err, std::generic_category(),
                              "weft::Runtime::Options::trace_file: cannot create \"" + path + "\"");
    }
    std::fprintf(stderr, "weft: WEFT_TRACE: cannot create \"%s\": %s; tracing is off\n", path.c_str(),
                 std::strerror(err));
    return nullptr;
  }
  try {
    return std::make_unique<Tracer>(f, std::move(path), workers, static_cast<Nanos>(options.time_slice.count()));
  } catch (...) {
    std::fclose(f);
    throw;
  }
}

Tracer::Tracer(std::FILE* file, std::string path, std::size_t workers, Nanos time_slice)
    : file_(file), path_(std::move(path)), origin_(trace_ticks()), time_slice_(time_slice) {
  workers_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<TraceBuffer>(static_cast<std::uint32_t>(i)));
  }
}

Tracer::~Tracer() {
  if (file_ != nullptr) std::fclose(file_);
}

std::uint32_t Tracer::outside_lane_locked() {
  if (t_blocking_lane != 0) return t_blocking_lane;
  const std::thread::id me = std::this_thread::get_id();
  for (const auto& [id, lane] : threads_) {
    if (id == me) return lane;
  }
  const auto lane = k_plain_lane + static_cast<std::uint32_t>(threads_.size());
  try {
    threads_.emplace_back(me, lane);
  } catch (...) {  // no memory: share the first plain lane
    return k_plain_lane;
  }
  return lane;
}

void Tracer::add_outside(TraceEvent e) noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  e.lane = outside_lane_locked();
  shared_.add(e);
}

std::uint32_t Tracer::new_blocking_lane() noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  t_blocking_lane = k_blocking_lane + next_blocking_++;
  return t_blocking_lane;
}

// ---- hooks ----

namespace {

// A named fiber's name, copied into the trace the first time this lane runs
// it (and again after a rename): the trace is written after the fiber is
// gone, and its slices are labelled with it then (trace_writer.cpp).
[[gnu::cold, gnu::noinline]] void trace_name(TraceBuffer& b, std::uint64_t id, const char* name) noexcept {
  try {
    auto [it, fresh] = b.named.try_emplace(id, name);
    if (!fresh) {
      if (it->second == name) return;
      it->second = name;
    }
  } catch (...) {  // no memory for the set: record it (again) anyway
  }
  TraceEvent e;
  e.ts = trace_ticks();
  e.kind = TraceKind::name;
  e.a = id;
  b.add_text(e, name, std::strlen(name));
}

}  // namespace

void trace_switch_in(TraceBuffer& b, Fiber* f, bool chained) noexcept {
  b.slice_fiber = fiber_id(f);
  // The fiber is about to run on this worker: only it (or this worker,
  // binding its task) writes its name, so the name is ours to read.
  if (f->name != nullptr) [[unlikely]] trace_name(b, b.slice_fiber, f->name);
  b.slice_start = chained ? b.slice_end : trace_ticks();
}

void trace_switch_out(TraceBuffer& b, Fiber* f, TraceEnd end) noexcept {
  const std::uint64_t now = trace_ticks();
  if (end == TraceEnd::yield && b.preempting) end = TraceEnd::preempt;
  b.preempting = false;
  TraceEvent e;
  e.ts = b.slice_start;
  e.kind = TraceKind::slice;
  e.a = b.slice_fiber;
  e.flag = static_cast<std::uint8_t>(end);
  e.b = now - b.slice_start;
  b.slice_end = now;
  b.add(e);
  if (end != TraceEnd::park) return;
  TraceEvent p;
  p.ts = now;
  p.kind = TraceKind::park;
  p.a = b.slice_fiber;
  // The fiber is running and its waiter lives on its stack: parked_on is
  // ours to read (only this fiber writes it), and the waiter is alive.
  if (Waiter* w = f->parked_on.load(std::memory_order_relaxed)) {  // relaxed: our own write
    std::string& text = b.park_text;  // reused: no allocation once it has grown
    text.clear();
    try {
      w->describe(text);
      // Fiber references are marker bytes (fiber_dump.hpp): written out
      // here, before the cut to the event's size, so that neither a whole
      // nor a truncated marker reaches the trace. No names: the trace
      // names fibers by their slices.
      if (has_fiber_refs(text)) {
        text = resolve_fiber_refs(text, {});
        strip_fiber_ref_markers(text);  // a stray one (a user's name may hold the bytes)
      }
    } catch (...) {  // no memory for the text: keep what there is, without markers
      strip_fiber_ref_markers(text);
    }
    b.add_text(p, text.data(), text.size());
  } else {
    b.add_text(p, "a wait", 6);
  }
}

void trace_steal(TraceBuffer& b, std::size_t victim, TaskBase* task) noexcept {
  TraceEvent e;
  e.ts = trace_ticks();
  e.kind = TraceKind::steal;
  e.a = victim;
  // The task's id is its fiber's id once it runs (bind_task copies it);
  // set by submit() before the task was published, so the steal's hand-off
  // made it visible to us.
  e.b = task->id_;
  b.add(e);
}

void trace_instant(TraceBuffer& b, TraceKind kind, std::uint64_t a) noexcept {
  TraceEvent e;
  e.ts = trace_ticks();
  e.kind = kind;
  e.a = a;
  b.add(e);
}

void trace_timers(TraceBuffer& b, std::uint64_t at, std::size_t n) noexcept {
  TraceEvent e;
  e.ts = at;
  e.kind = TraceKind::timer;
  for (std::size_t i = 0; i < n; ++i) b.add(e);
}

void trace_sleep(TraceBuffer& b, std::uint64_t start) noexcept {
  TraceEvent e;
  e.ts = start;
  e.kind = TraceKind::sleep;
  e.b = trace_ticks() - start;
  b.add(e);
}

void trace_bind(TraceBuffer& b, Fiber* f, TaskBase* task) noexcept {
  TraceEvent e;
  e.ts = trace_ticks();
  e.kind = TraceKind::bind;
  e.a = fiber_id(f);
  e.b = task->id_;
  b.add(e);
}

namespace {
TraceEvent spawn_event(const TaskBase* task) noexcept {
  TraceEvent e;
  e.ts = trace_ticks();
  e.kind = TraceKind::spawn;
  // submit() set both before calling us: the parent is the spawner's id
  // (0: a plain thread; a fiber of another runtime keeps its id, ids are
  // process-wide), the child the id its fiber will have.
  e.a = task->spawner_id_;
  e.b = task->id_;
  return e;
}
}  // namespace

void trace_spawn(TraceBuffer& b, const TaskBase* task) noexcept { b.add(spawn_event(task)); }

void trace_spawn_outside(Tracer& t, const TaskBase* task) noexcept { t.add_outside(spawn_event(task)); }

void trace_unpark(Tracer& t, Scheduler& s, Fiber* f) noexcept {
  TraceEvent e;
  e.ts = trace_ticks();
  e.kind = TraceKind::unpark;
  e.a = fiber_id(f);
  Worker* w = current_worker();
  Fiber* me = w != nullptr ? w->current_fiber() : nullptr;
  e.b = me != nullptr ? fiber_id(me) : 0;
  if (w != nullptr && &w->scheduler() == &s) {
    w->trace_buffer()->add(e);
  } else {
    t.add_outside(e);
  }
}

void trace_cancel_delivered() noexcept {
  Worker* w = current_worker();
  if (w == nullptr || w->trace_buffer() == nullptr) return;
  Fiber* f = w->current_fiber();
  trace_instant(*w->trace_buffer(), TraceKind::cancel, f != nullptr ? fiber_id(f) : 0);
}

}  // namespace weft::detail
