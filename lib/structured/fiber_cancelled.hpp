// fiber_cancelled() inlined, for the two places on every park and wake-up
// (Waiter::park, Scheduler::schedule): the call was four per pingpong
// round trip. Same answer as fiber_cancelled() (cancel_state.hpp), which
// calls this.
#pragma once

#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "structured/cancel_state.hpp"

namespace weft::detail {

// True when the fiber's waits must end with weft::Cancelled (see
// fiber_cancelled). relaxed loads, all three: a parking fiber reads them
// after publishing its wait under its wait_lock, which a canceller takes
// after setting its flag (cancel_state.hpp, C2), so the lock orders them;
// anywhere else the answer is a hint.
[[gnu::always_inline]] inline bool fiber_cancelled_inline(const Fiber* f) noexcept {
  return f->aborted.load(std::memory_order_relaxed) || (f->scope != nullptr && f->scope->cancelled()) ||
         f->scheduler->cancelling_everything();
}

}  // namespace weft::detail
