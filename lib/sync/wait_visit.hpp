// Reaching a parked fiber's waiter through the fiber (Fiber::parked_on),
// not through a wait list: what a canceller (a scope's cancel(),
// JoinHandle::cancel(), shutdown) and a dump or deadlock report do. The
// waiter lives on the parked fiber's stack, so such a visitor must know
// that the fiber cannot leave its wait while the visitor reads it, and a
// canceller must not miss a wait that is being published as it sets its
// flag (cancel_state.hpp, C2).
//
// The fiber's side runs on every park (twice: publish, then clear once
// resumed); visits are rare. So the pair is asymmetric (heavy_barrier.hpp):
//
//   fiber, publish: parked_on = w (release); light barrier;
//                   if visits_in_progress: lock+unlock wait_lock; read flags
//   fiber, clear:   parked_on = nullptr; light barrier;
//                   if visits_in_progress: lock+unlock wait_lock; return
//   visitor:        ++visits (WaitVisit); heavy barrier; [set flags];
//                   under each fiber's wait_lock: read parked_on, use it;
//                   --visits
//
// Why it holds: each fiber thread passes a full barrier at some point
// during the visitor's heavy barrier. If the fiber's load of the count
// came after that point, it sees the visit and takes wait_lock once,
// which orders it with the visitor's locked section exactly as the old
// protocol did (publish: the visitor's flag, set before its wait_lock
// section, is seen after ours; clear: we wait until a visitor holding
// wait_lock is done with the waiter). If the load came before that point,
// so did the store to parked_on before it, and every read the visitor
// makes after its heavy barrier sees it: the new waiter (it is found), or
// nullptr (it is not touched). A visit that ended before the fiber's load
// is seen through the count's release decrement (acquire load), with the
// flags it set. Checked in the park model (tests/model/park_unpark.pml).
//
// Where the heavy barrier is unavailable (a sandbox, ThreadSanitizer) the
// count holds a permanent 1 (prepare_wait_visits): every park takes the
// locked path, which is the old protocol.
//
// Threading: WaitVisit from any thread, never while holding a wait_lock
// (it blocks in the kernel for the heavy barrier: ~0.3 µs, ~10 µs while
// another of our threads runs). publish/clear by the parking fiber only.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "scheduling/fiber.hpp"
#include "scheduling/heavy_barrier.hpp"
#include "weft/detail/spin_lock.hpp"

namespace weft::detail {

// Visits in progress, process-wide (a visitor may reach fibers of any
// runtime), plus the permanent 1 where there is no heavy barrier. Written
// only by visitors; read by every park.
inline std::atomic<std::uint32_t> g_wait_visits{0};

// Once per process, before any fiber parks (every Scheduler calls it as it
// is built): registers for the heavy barrier, or pins the count at 1.
void prepare_wait_visits() noexcept;

// A visit: from construction to destruction, the fibers reached through
// parked_on keep their waiters (under wait_lock) and see the flags set.
class WaitVisit {
 public:
  WaitVisit() noexcept {
    // seq_cst: the visitor's store half of the Dekker pair; the heavy
    // barrier below is what orders it against the parks (see above).
    g_wait_visits.fetch_add(1, std::memory_order_seq_cst);
    if (heavy_barrier_available()) heavy_barrier();
  }
  ~WaitVisit() {
    // release: a park that reads the lowered count (acquire) sees what
    // this visit did, the flags it set included.
    g_wait_visits.fetch_sub(1, std::memory_order_release);
  }
  WaitVisit(const WaitVisit&) = delete;
  WaitVisit& operator=(const WaitVisit&) = delete;
};

// The parking fiber: publishes its waiter (and when the park began).
inline void publish_parked_on(Fiber* f, Waiter* w, std::uint64_t stamp) noexcept {
  f->park_stamp = stamp;
  // release: a visitor's acquire load sees the waiter's fields and the stamp.
  f->parked_on.store(w, std::memory_order_release);
  light_barrier();
  // acquire: pairs with ~WaitVisit's release (see above).
  if (g_wait_visits.load(std::memory_order_acquire) != 0) {
    std::lock_guard<SpinLock> guard(f->wait_lock);
  }
}

// The resumed fiber: once this returns, no visitor touches its waiter.
inline void clear_parked_on(Fiber* f) noexcept {
  // relaxed: nothing is published by clearing; the count's load below (and
  // the heavy barrier on the visitor's side) order it.
  f->parked_on.store(nullptr, std::memory_order_relaxed);
  light_barrier();
  // relaxed: only whether a visit is in progress; wait_lock orders the rest.
  if (g_wait_visits.load(std::memory_order_relaxed) != 0) {
    std::lock_guard<SpinLock> guard(f->wait_lock);
  }
}

}  // namespace weft::detail
