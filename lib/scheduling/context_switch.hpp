// ExecContext and the switch between two of them: the only place in weft that
// touches Boost.Context, and so the only place that tells AddressSanitizer
// and ThreadSanitizer that the stack changed under them.
//
// A context is either a fiber (its own mmap'd stack, made by make_context) or
// a worker thread's scheduler loop (the thread's own stack, adopted by
// adopt_thread_context). Switching saves the running context's registers in
// its ExecContext and restores the target's.
//
// Contract: switch_context(from, to) must be called by the thread running
// `from`; `to` must be suspended (or fresh) and not resumed by anyone else at
// the same time. When switch_context returns, `from` is running again,
// possibly on another OS thread.
#pragma once

#include <cstddef>

namespace weft::detail {

struct ExecContext {
  void* fctx = nullptr;              // Boost.Context handle while suspended
  void (*entry)(void*) = nullptr;    // fiber body, run on the first switch in
  void* entry_arg = nullptr;
  const void* stack_lo = nullptr;    // stack bounds, for AddressSanitizer
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;   // AddressSanitizer's fake-stack save slot
  void* tsan_fiber = nullptr;        // ThreadSanitizer's fiber handle
  // The C++ runtime keeps the "currently caught exceptions" list per thread.
  // A fiber may park inside a catch block and resume on another thread, so
  // each context carries its own copy, swapped in and out on every switch.
  void* eh_caught = nullptr;
  unsigned int eh_uncaught = 0;
};

// Prepares `ctx` to run entry(arg) on the stack [stack_lo, stack_lo + size)
// the first time it is switched to. entry must never return: it ends with
// exit_to().
void make_context(ExecContext& ctx, void* stack_lo, std::size_t size, void (*entry)(void*), void* arg);

// Makes `ctx` stand for the calling thread's own stack (a scheduler loop).
void adopt_thread_context(ExecContext& ctx);

// Suspends `from` (the running context) and runs `to`. Returns when some
// thread switches back to `from`.
void switch_context(ExecContext& from, ExecContext& to);

// Switches to `to` for the last time: `from` never runs again, and its stack
// may be reused as soon as `to` is running.
[[noreturn]] void exit_to(ExecContext& from, ExecContext& to);

// Releases sanitizer state for a context that ended with exit_to(), and
// clears stale AddressSanitizer poisoning from its stack before reuse.
void release_context(ExecContext& ctx);

}  // namespace weft::detail
