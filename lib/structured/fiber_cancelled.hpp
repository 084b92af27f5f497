// fiber_cancelled(), inline: a park and a wake-up both ask it (four calls
// per pingpong round trip when it was out of line). Its own header because
// it reads the Scheduler, which cancel_state.hpp does not include.
#pragma once

#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "structured/cancel_state.hpp"

namespace weft::detail {

// True when the fiber's waits must end with weft::Cancelled: its scope is
// cancelled, its task was (JoinHandle::cancel), or shutdown cancels
// everything. The fiber's own view. relaxed loads, all three: a parking
// fiber reads them after publishing its wait, and the canceller's
// WaitVisit orders them with that (cancel_state.hpp, C2;
// sync/wait_visit.hpp); anywhere else the answer is a hint.
[[gnu::always_inline]] inline bool fiber_cancelled(const Fiber* f) noexcept {
  return f->aborted.load(std::memory_order_relaxed) || (f->scope != nullptr && f->scope->cancelled()) ||
         f->scheduler->cancelling_everything();
}

}  // namespace weft::detail
