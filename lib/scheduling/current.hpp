// The calling thread's worker and fiber.
//
// A fiber that parks on one worker may resume on another. GCC and Clang may
// keep a thread_local's address in a register across a call, so code that
// cached it would read the old thread's copy after a migration (llvm#98479,
// boostorg/context#323). weft therefore reaches per-thread state only through
// these non-inlined accessors, which also hold a compiler barrier, and never
// keeps their results across a call that may park.
#pragma once

namespace weft::detail {

class Worker;
struct Fiber;

// The worker whose thread is calling, or nullptr on a plain thread.
Worker* current_worker() noexcept;
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
namespace current_detail {
// constinit: no dynamic initialisation, so no TLS init call at each use;
// hidden: a fixed thread-pointer offset, not one read from the GOT.
extern constinit __attribute__((tls_model("initial-exec"), visibility("hidden"))) thread_local Worker* t_worker;
}
[[gnu::always_inline]] inline Worker* current_worker_at_entry() noexcept { return current_detail::t_worker; }

}  // namespace weft::detail
