// weft's error types and the handler for exceptions nobody observes.
#pragma once

#include "detail/config.hpp"

#include <exception>
#include <functional>
#include <stdexcept>

namespace weft {

// Thrown by spawn() on a runtime that has begun shutting down, and by join()
// on a task that the runtime cancelled at shutdown because it was parked
// forever (see Runtime::shutdown()).
class WEFT_API RuntimeStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by Runtime::block_on() and Runtime::run() when the task they wait
// for can never finish: every fiber is parked and nothing can wake any of
// them (see deadlock.hpp for the exact rule). what() lists each parked fiber
// of the runtime that block_on()/run() was called on (not those of other
// runtimes in the process) and what it waits on, e.g.
//   weft::Deadlock: all fibers are asleep (2 parked):
//     fiber 1: recv on channel "jobs" (0x5581...)
//     fiber 7: join of fiber 1
class WEFT_API Deadlock : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by functions that only make sense inside a fiber (weft::go,
// this_fiber::yield, this_fiber::worker_index) when called from a plain thread.
class WEFT_API NotInFiber : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Thrown out of a parking call (join, and later channel and lock waits) in a
// fiber that the runtime is cancelling at shutdown, to unwind its stack so
// that destructors run and the stack can be released. It deliberately does
// not derive from std::exception, so `catch (const std::exception&)` lets it
// pass. Code that catches it with `catch (...)` should rethrow; a fiber that
// swallows it and parks again is cancelled again.
class WEFT_API FiberCancelled {
 public:
  const char* what() const noexcept { return "weft::FiberCancelled: runtime shutting down"; }
};

// Thrown out of a wait of a fiber whose cancellation scope (a CancelScope,
// a TaskGroup, a JoinHandle::cancel()) was cancelled: by any call that would
// park the fiber (channel operations, select, sleeps, locks, condition
// variables, wait groups, semaphores, joins, weft::blocking), as soon as the
// scope is cancelled while it waits, or at once when it was cancelled
// before; and by this_fiber::check_cancelled() and maybe_yield(). An
// operation that throws it did nothing (sent nothing, took nothing, holds
// no lock); one that completed returns normally. Like FiberCancelled it does
// not derive from std::exception, so that `catch (const std::exception&)`
// lets it pass on its way out of the cancelled work. A task that ends with
// it is cancelled, not failed: join() rethrows it, a TaskGroup does not
// count it as an error, and the unhandled-exception handler never sees it.
class WEFT_API Cancelled {
 public:
  const char* what() const noexcept { return "weft::Cancelled: the fiber's cancellation scope was cancelled"; }
};

// Called with the exception that escaped a task whose JoinHandle was dropped
// (detached) without join(): at the task's end if it was already detached,
// else when the handle is dropped. Tasks cancelled at shutdown are not
// reported. The handler may run on any thread, concurrently with itself;
// exceptions it throws are caught and printed. Tasks that ended with
// weft::Cancelled are not reported either. The default prints
// "weft: unhandled exception in a detached fiber: <what()>" to stderr.
using UnhandledExceptionHandler = std::function<void(std::exception_ptr)>;

// Replaces the process-wide handler and returns the previous one; an empty
// function restores the default. Thread-safe; never blocks a fiber for long.
WEFT_API UnhandledExceptionHandler set_unhandled_exception_handler(UnhandledExceptionHandler handler);

}  // namespace weft
