// Deadlock detection: when Runtime::block_on() or Runtime::run() can never
// return, they throw weft::Deadlock (errors.hpp) instead of hanging.
//
// The rule. A plain thread waiting in block_on()/run() throws Deadlock when,
// at one moment, all of these hold (block_on() called from a fiber of
// another runtime parks that fiber instead, without detection):
//   1. in every weft runtime of the process, every worker is idle and no
//      fiber is runnable: every live fiber is parked (on a channel, mutex,
//      condition variable, wait group, semaphore, join, or select);
//   2. no plain thread is inside a weft call, except blocked in one of those
//      waits (a plain thread blocked in recv() waits like a fiber does),
//      and no plain thread holds a weft::Mutex;
//   3. no weft::ExternalWaker exists;
//   4. no timer is armed anywhere in the process (a sleeping fiber, a timed
//      wait of a fiber, a weft::timeout channel or a Ticker will still wake
//      someone), and no plain thread is in a timed wait (it comes back by
//      itself);
//   5. no weft::blocking() call is in flight;
//   6. no thread outside weft exists: every thread of the process is one of
//      weft's own (workers, blocking-pool threads, the timer thread: named
//      "weft-..."), or existed already when the weft library was loaded
//      (sanitizer and runtime helper threads, and main), or is a plain
//      thread blocked in an untimed weft wait. Any other thread (a
//      std::thread between two sends, an I/O library's thread) could still
//      call in and wake a fiber, so while one exists nothing is reported;
//      once it has exited, the report follows within about 100 ms.
// Then nothing inside weft can ever wake any fiber, and the task waited for
// cannot finish. Hence a runtime fed by the service's own threads is never
// reported while they live, and a cycle among fibers alone always is. What
// rule 6 cannot see: a thread that existed before weft was loaded (main,
// or a thread started by a static constructor) and is outside every weft
// call. If such a thread will later wake a parked fiber, create an
// ExternalWaker for it. Rule 6 reads /proc/self/task; where /proc is not
// mounted it is skipped (threads outside weft calls are then not seen).
//
// What happens after the throw: the parked fibers stay parked; destroying
// the runtime (which Runtime::run() does) cancels them, so their stacks
// unwind. Only the block_on()/run() caller is told; plain threads blocked in
// weft calls stay blocked.
#pragma once

#include "detail/config.hpp"

namespace weft {

// While at least one ExternalWaker exists in the process, no weft::Deadlock
// is reported: its holder promises it may still wake a parked fiber (send on
// a channel, unlock a mutex, ...) from outside weft. Threads started after
// weft was loaded are seen without one (rule 6 above); a waker is for main
// and other threads that predate the library, or to say it explicitly. Cheap: one atomic
// increment and decrement. Construct and destroy from any thread; it may
// also be moved between threads.
class WEFT_API ExternalWaker {
 public:
  ExternalWaker() noexcept;
  ~ExternalWaker();
  ExternalWaker(ExternalWaker&& other) noexcept : active_(other.active_) { other.active_ = false; }
  ExternalWaker& operator=(ExternalWaker&&) = delete;
  ExternalWaker(const ExternalWaker&) = delete;
  ExternalWaker& operator=(const ExternalWaker&) = delete;

 private:
  bool active_ = true;
};

}  // namespace weft
