// Outside threads: the threads of the process that could still call into
// weft from outside any weft call, and so wake a parked fiber later (a
// std::thread that sleeps between sends to a channel). Deadlock detection
// (deadlock.cpp) reports nothing while one exists: that is what keeps the
// normal shape of a service (a runtime fed by its I/O threads) from being
// reported as deadlocked while those threads are between calls.
//
// A thread of the process is outside unless it is:
//   - one of weft's own threads: workers, blocking-pool threads and the
//     timer thread, all named "weft-..." (the prefix is reserved);
//   - a thread that already existed when weft was loaded (sanitizer and
//     runtime helper threads; main itself, which is counted as any plain
//     thread once it calls in). ThreadSanitizer starts its helper at the
//     first thread creation, so a TSan build of weft creates and joins one
//     thread at load to record it;
//   - a plain thread blocked in an untimed weft wait (it can only be woken
//     from inside weft; a timed wait keeps its thread active, activity.hpp).
// The threads are read from /proc/self/task; where that cannot be read,
// no thread counts as outside (the detector then works as without this
// file: a thread between calls is not seen).
//
// Contract: any thread. count() reads /proc (tens of microseconds; only the
// deadlock detector calls it, when the process is idle); the rest is one
// seq_cst RMW.
#pragma once

#include <cstddef>

namespace weft::detail::outside_threads {

// The number of outside threads now. Read it between two equal activity
// snapshots (deadlock.cpp): a blocked thread that is woken is counted
// active (and bumps the epoch) before it stops counting as blocked.
std::size_t count();

// Around a plain thread's untimed park: blocked_enter() before the thread
// stops counting as active, blocked_leave() after it was released.
void blocked_enter() noexcept;
void blocked_leave() noexcept;

}  // namespace weft::detail::outside_threads
