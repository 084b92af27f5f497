// weft::this_fiber: what a fiber can ask about, and do to, itself.
#pragma once

#include "detail/config.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cancel.hpp"
#include "detail/deadline.hpp"

namespace weft {

// A fiber's identity: unique for the life of the process, never 0.
using FiberId = std::uint64_t;

namespace detail {
WEFT_API void sleep_until_ns(Nanos deadline);
}  // namespace detail

namespace this_fiber {

// True when called from a fiber (of any weft runtime). Never blocks.
WEFT_API bool in_fiber() noexcept;

// Gives the worker to other runnable fibers: those queued on this worker and
// in the runtime's shared queue run before the calling fiber again (it waits
// on its worker's own FIFO of yielded fibers). Returns at
// once when nothing else is runnable. Throws weft::NotInFiber from a plain
// thread.
WEFT_API void yield();

// The calling fiber's id; 0 from a plain thread. Never blocks. Every task
// gets its id when it is spawned, so id() is the running task's id (a fiber
// reused for the next task takes that task's id), except for an unnamed task
// joined inline (Runtime::Options::inline_join), which runs on its joiner's
// fiber and shares its id.
WEFT_API FiberId id() noexcept;

// Names the calling fiber (a copy of `name`; empty: unnamed again), as
// spawn("name", fn) does at spawn time. The name shows in Runtime::dump()
// and in deadlock reports. An unnamed task joined inline (Runtime::Options::
// inline_join) runs on its joiner's fiber, so there it renames the joiner. Takes
// the fiber's wait lock briefly, allocates (std::bad_alloc, name unchanged);
// never parks. Throws weft::NotInFiber from a plain thread.
WEFT_API void set_name(std::string_view name);

// The calling fiber's name, or "" (unnamed, or a plain thread). A copy;
// never blocks. Throws std::bad_alloc.
WEFT_API std::string name();

// Index (0 .. workers-1) of the worker running the calling fiber right now.
// It may change after any call that parks or yields. Throws weft::NotInFiber
// from a plain thread.
WEFT_API std::size_t worker_index();

// Sleeps until `deadline` (any clock; steady_clock is exact, others are
// converted through their distance from now). From a fiber: parks it on the
// process's timer heap (its worker runs other fibers meanwhile) and resumes
// it at or after the deadline, never before. From a plain thread: sleeps
// the thread (clock_nanosleep). The rule for short sleeps: every sleep of a
// fiber gives the worker to the other runnable fibers at least once, so a
// deadline that has already passed yields (as yield()) and returns; only
// sleep_for with a zero or negative duration returns at once without
// yielding (as Go's time.Sleep(0)). Throws weft::FiberCancelled if the
// runtime shuts down while the fiber sleeps (shutdown does not wait for
// sleepers).
template <class Clock, class Duration>
void sleep_until(const std::chrono::time_point<Clock, Duration>& deadline) {
  detail::sleep_until_ns(detail::deadline_at(deadline));
}

// sleep_until(now + d): a positive duration, however short, always gives
// the worker away at least once; zero and negative durations return at
// once without yielding.
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& d) {
  if (d <= d.zero()) return;
  detail::sleep_until_ns(detail::deadline_after(d));
}

// True once the calling fiber's cancellation scope (cancel.hpp) is
// cancelled; false on a plain thread and in the root scope. One relaxed
// load and a call: cheap enough for the inner loop of CPU work. Never
// blocks.
WEFT_API bool cancelled() noexcept;

// Throws weft::Cancelled if cancelled(). Never blocks.
WEFT_API void check_cancelled();

// A token of the calling fiber's current scope (one that is never
// cancelled in the root scope or on a plain thread). Never blocks.
WEFT_API CancelToken cancel_token() noexcept;

// A checkpoint for long CPU loops (lesson 5 of the design): returns at once
// while the calling fiber's time slice (Runtime::Options::time_slice,
// default 10 ms) lasts, and yields (as yield()) once it is spent, so that
// other fibers, and the timers they wait on, get the worker. Cheap: it
// counts calls and reads the clock only every K calls, with K recalibrated
// at each read from the measured time per call so that the clock is read
// about every 50 us. The slice restarts whenever the fiber resumes. It also
// observes cancellation: at each clock read (about every 50 us of the loop)
// and after each yield it throws weft::Cancelled if the fiber's scope was
// cancelled. Does nothing on a plain thread. Never parks.
WEFT_API void maybe_yield();

}  // namespace this_fiber
}  // namespace weft
