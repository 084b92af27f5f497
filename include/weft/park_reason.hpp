// weft::ParkReason: what a parked fiber waits for, as Runtime::metrics()
// counts it (parked fibers by reason) and metrics_text() labels it.
#pragma once

#include "detail/config.hpp"

#include <cstddef>
#include <cstdint>

namespace weft {

// Set where each wait is set up (the Waiter of a channel op, a lock, a
// sleep...), stored in the fiber when it parks. Values are dense from 0
// (an index into RuntimeMetrics::parked_by_reason).
enum class ParkReason : std::uint8_t {
  channel_send,  // Channel::send on a full (or unbuffered) channel
  channel_recv,  // Channel::recv on an empty channel
  select,        // weft::select over several cases
  sleep,         // this_fiber::sleep_for / sleep_until
  mutex,         // Mutex and RwMutex (either side)
  cond_var,      // CondVar::wait
  wait_group,    // WaitGroup::wait
  semaphore,     // Semaphore::acquire
  join,          // JoinHandle::join, TaskGroup waiting for its children
  blocking,      // weft::blocking(), waiting for the blocking pool
  other,         // anything else (Once, internal waits)
};

inline constexpr std::size_t k_park_reasons = 11;

// The reason's label in metrics_text() ("channel_recv", "mutex", ...).
// Never fails; an out-of-range value gives "unknown".
constexpr const char* park_reason_name(ParkReason r) noexcept {
  switch (r) {
    case ParkReason::channel_send: return "channel_send";
    case ParkReason::channel_recv: return "channel_recv";
    case ParkReason::select: return "select";
    case ParkReason::sleep: return "sleep";
    case ParkReason::mutex: return "mutex";
    case ParkReason::cond_var: return "cond_var";
    case ParkReason::wait_group: return "wait_group";
    case ParkReason::semaphore: return "semaphore";
    case ParkReason::join: return "join";
    case ParkReason::blocking: return "blocking";
    case ParkReason::other: return "other";
  }
  return "unknown";
}

}  // namespace weft
