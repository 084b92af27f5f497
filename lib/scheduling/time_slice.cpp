// this_fiber::maybe_yield(): time slices without reading the clock on every
// call (weft/this_fiber.hpp).
//
// The running fiber's worker counts calls down from K; at zero it reads the
// clock, recalibrates K so that K calls of this fiber's loop take about
// k_read_interval, and yields once the slice (Options::time_slice) is
// spent. K lives in the Fiber (each loop has its own cost per call); the
// countdown and the slice start live in the Worker and are reset whenever
// it resumes a fiber, so a slice restarts after every yield or park. The
// slice starts at the first clock read after the resume, at most K calls
// (about 50 us) late.
//
// Per-thread state is reached only through current_worker() inside this
// out-of-line function, never cached across a yield (current.hpp).
#include <algorithm>
#include <cstdint>

#include "diagnostics/tracer.hpp"
#include "structured/cancel_state.hpp"
#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"
#include "scheduling/worker.hpp"
#include "structured/fiber_cancelled.hpp"

namespace weft::detail {

namespace {
constexpr Nanos k_read_interval = 50'000;          // read the clock about every 50 us
constexpr std::uint64_t k_max_calls_per_read = 1u << 24;
}  // namespace

void slice_checkpoint(Worker* w) {
  Fiber* f = w->current_;
  if (f == nullptr) {  // the scheduler loop itself: nothing to slice
    w->slice_countdown_ = k_max_calls_per_read;
    return;
  }
  // Cancellation is observed here, at most K calls (about 50 us) late.
  if (fiber_cancelled(f)) {
    w->slice_countdown_ = 1;  // look again at the next call if this one is caught
    trace_cancel_delivered();
    throw Cancelled{};
  }
  const Nanos now = now_ns();
  if (w->slice_start_ == 0) {
    w->slice_start_ = now;
    w->slice_last_read_ = now;
    w->slice_countdown_ = f->slice_calls_per_read;
    return;
  }
  // K calls took `took`: aim the next K at k_read_interval, halfway there
  // each time (a smoothed step, so one odd interval cannot swing it far).
  const Nanos took = std::max<Nanos>(now - w->slice_last_read_, 1);
  const auto aimed = static_cast<std::uint64_t>(
      std::clamp<long double>(static_cast<long double>(f->slice_calls_per_read) * k_read_interval / took, 1,
                              k_max_calls_per_read));
  f->slice_calls_per_read = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (f->slice_calls_per_read + aimed) / 2));
  w->slice_last_read_ = now;
  if (now - w->slice_start_ >= w->scheduler().options().time_slice.count()) {
    if (w->trace_ != nullptr) w->trace_->preempting = true;  // the slice ends as "preempt"
    suspend_current_fiber(SuspendReason::yield);  // `w` is stale after this
    if (fiber_cancelled(f)) {  // cancelled while it waited its turn
      trace_cancel_delivered();
      throw Cancelled{};
    }
    return;
  }
  w->slice_countdown_ = f->slice_calls_per_read;
}

}  // namespace weft::detail

namespace weft::this_fiber {

void maybe_yield() {
  detail::Worker* w = detail::current_worker();
  if (w == nullptr) return;  // a plain thread: nothing to give up
  if (--w->slice_countdown_ != 0) return;
  detail::slice_checkpoint(w);
}

}  // namespace weft::this_fiber
