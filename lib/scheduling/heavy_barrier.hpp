// An asymmetric barrier pair: a light side that costs nothing at run time
// (a compiler barrier) on a path taken millions of times a second, and a
// heavy side, on a rare path, that makes every running thread of the
// process execute a full barrier before it returns (Linux membarrier,
// MEMBARRIER_CMD_PRIVATE_EXPEDITED: an interrupt to each CPU running one of
// our threads; a thread that is not running passes a full barrier when it is
// switched back in). Folly's asymmetric_thread_fence and userspace RCU use
// the same pair.
//
// What it orders: a store-buffering (Dekker) pair with the light side on
// one thread, [store A; light_barrier(); load B], and the heavy side on
// another, [store B; heavy_barrier(); load C-that-reads-A]. Each thread of
// the light side passes a full barrier at some point during the heavy call:
// if its store of A came before that point, A is visible to every load
// after the heavy call; if after, its load of B comes after that point too
// and sees B (stored before the call). So at least one side sees the other,
// as with a barrier on both sides. The C++ memory model does not describe
// membarrier; this argument is the kernel's (Documentation/ and
// membarrier(2)).
//
// Where it is used: IdleWorkers, a worker's push onto its own deque (light)
// against a worker about to sleep (heavy; see idle_workers.hpp).
//
// Availability: Linux 4.14+, and the process must register first; a
// sandbox may refuse the call (seccomp). heavy_barrier_available() tells,
// and callers fall back to a full barrier on both sides. Never under
// ThreadSanitizer, which does not model the kernel's barrier (it would
// report the light side's accesses as races): that build keeps the
// barriers.
//
// Threading: all three from any thread; heavy_barrier() only after
// heavy_barrier_available() returned true. heavy_barrier() blocks in the
// kernel for the time of the interrupts (~0.3 µs on this VM with no other
// of our threads running, ~10 µs with one spinning: serial_floor's
// membarrier figures).
#pragma once

#include <atomic>

namespace weft::detail {

// Registers the process for the heavy side on the first call (thread-safe;
// later calls read the cached answer). False where the kernel or a
// sandbox refuses, and always under ThreadSanitizer.
bool heavy_barrier_available() noexcept;

// The heavy side. Only after heavy_barrier_available() said true.
void heavy_barrier() noexcept;

// The light side: keeps the compiler from moving memory accesses across it;
// the processor's reordering is the heavy side's to undo.
inline void light_barrier() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

}  // namespace weft::detail
