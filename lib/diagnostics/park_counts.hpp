// ParkCounts: one worker's count of fiber parks and resumptions by
// ParkReason, from which Runtime::metrics() derives how many fibers are
// parked now for each reason without walking any registry:
//
//   parked_now(r) = Σ_workers parked(r) - Σ_workers resumed(r)
//
// A fiber's wait stores its reason in Fiber::park_reason before parking
// (Waiter::park). The worker that completes the park (settle_switched_out,
// the park case) counts parked(reason); the worker the fiber later resumes
// on counts resumed(reason) right after the switch back (park_current_fiber,
// on the worker suspend_current_fiber returns). The fiber does not write
// park_reason in between (it is not running), so both sides count the same
// reason, and every counted park is matched by exactly one counted resume.
// A wait whose wake-up came before the fiber switched out
// (park_current_fiber's fast path) counts neither. A fiber cancelled at
// shutdown resumes (to unwind) and is counted resumed like any other.
//
// Cost on the park path: two plain increments (a load and a store each),
// no read-modify-write, no lock, no clock read.
//
// Contract: parked() and resumed() by the owner worker's thread only; the
// readers from any thread. Single-writer counters: the owner stores load+1
// with release (a plain store on x86 and ARMv8's stlr), readers load with
// acquire. Every resume happens after its park (the park handshake and the
// queue hand-off order them), so a reader that sums all the resumes first
// and then all the parks sees every park whose resume it counted: the
// difference is never negative. It may still miss parks made during the
// read (a snapshot, not an instant).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "weft/park_reason.hpp"

namespace weft::detail {

class ParkCounts {
 public:
  void parked(ParkReason r) noexcept { bump(parked_[index(r)]); }
  void resumed(ParkReason r) noexcept { bump(resumed_[index(r)]); }

  // Any thread (see the header comment).
  std::uint64_t parked_total(ParkReason r) const noexcept {
    return parked_[index(r)].load(std::memory_order_acquire);  // pairs with bump()'s release
  }
  std::uint64_t resumed_total(ParkReason r) const noexcept {
    return resumed_[index(r)].load(std::memory_order_acquire);  // pairs with bump()'s release
  }
  std::uint64_t parks() const noexcept {
    std::uint64_t n = 0;
    for (const auto& c : parked_) n += c.load(std::memory_order_relaxed);
    return n;
  }

 private:
  static std::size_t index(ParkReason r) noexcept { return static_cast<std::size_t>(r); }  // always < k_park_reasons
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    // Single writer (this worker's thread): relaxed load of our own value;
    // release store pairs with the readers' acquire (header comment).
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  std::array<std::atomic<std::uint64_t>, k_park_reasons> parked_{};
  std::array<std::atomic<std::uint64_t>, k_park_reasons> resumed_{};
};

}  // namespace weft::detail
