// The calling thread's worker and fiber.
//
// A fiber that parks on one worker may resume on another. GCC and Clang may
// keep a thread_local's address in a register across a call, so code that
// cached it would read the old thread's copy after a migration (llvm#98479,
// boostorg/context#323). weft therefore reaches per-thread state only through
// these accessors, which are either not inlined or (current_worker() on
// x86-64) an asm load through %fs that the compiler cannot cache, and hold a
// compiler barrier; and never keeps their results across a call that may
// park.
#pragma once

namespace weft::detail {

class Worker;
struct Fiber;

namespace current_detail {
// constinit: no dynamic initialisation, so no TLS init call at each use;
// hidden: a fixed thread-pointer offset, not one read from the GOT.
extern constinit __attribute__((tls_model("initial-exec"), visibility("hidden"))) thread_local Worker* t_worker;
}

// Whether current_worker() is the inline read below (x86-64 Linux, unless
// WEFT_NO_INLINE_TLS forces the out-of-line one of current.cpp).
#if defined(__x86_64__) && defined(__linux__) && !defined(WEFT_NO_INLINE_TLS)
#define WEFT_INLINE_WORKER_READ 1
#else
#define WEFT_INLINE_WORKER_READ 0
#endif

// The worker whose thread is calling, or nullptr on a plain thread.
#if WEFT_INLINE_WORKER_READ
// Inline on x86-64: the %fs-relative load itself, in an asm. What the
// compiler may keep in a register across a call is t_worker's offset from
// the thread pointer, which is the same in every thread (initial-exec);
// never an address inside one thread's TLS block: every call loads through
// %fs again, on whichever thread runs it then. asm volatile: never merged
// with another such read nor moved across a call; "memory": nor across any
// other memory access (the barrier the out-of-line version holds).
// Instead of a call per read (one per task start, two per task end, one
// per park: docs/benchmarks.md, "the worker read inline").
[[gnu::always_inline]] inline Worker* current_worker() noexcept {
  Worker* w;
  asm volatile(
      "movq _ZN4weft6detail14current_detail8t_workerE@gottpoff(%%rip), %0\n\t"
      "movq %%fs:(%0), %0"
      : "=r"(w)
      :
      : "memory");
  return w;
}
#else
Worker* current_worker() noexcept;
#endif
void set_current_worker(Worker* worker) noexcept;

// The fiber running on the calling thread, or nullptr (plain thread, or a
// worker's scheduler loop).
Fiber* current_fiber() noexcept;

// current_worker() inlined: one thread-pointer-relative load, no call. Only
// where the thread cannot change between this read and every use of its
// result, and only as the first per-thread access of a function that is not
// inlined into others (a library entry point that reads the worker once,
// before anything that may park): there, no thread_local address can have
// been kept from before a migration. Everywhere else, current_worker().
// (weft is built without link-time optimisation, which could inline such
// an entry point into a caller; a build that adds it must check these uses
// again.)
[[gnu::always_inline]] inline Worker* current_worker_at_entry() noexcept { return current_detail::t_worker; }

}  // namespace weft::detail
