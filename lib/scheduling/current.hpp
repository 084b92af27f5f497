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

}  // namespace weft::detail
