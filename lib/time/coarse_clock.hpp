// A coarse clock for timestamps only a human reads (the dump's "parked
// 3.2 s"): CLOCK_MONOTONIC_COARSE, the kernel's last timer tick (1-4 ms
// resolution), read from the vDSO page without a system call and without
// reading the TSC. Same epoch as now_ns() (CLOCK_MONOTONIC), but it may lag
// it by a tick. Defined in clock.cpp. Any thread; async-signal-safe.
#pragma once

#include "weft/detail/deadline.hpp"

namespace weft::detail {

Nanos coarse_now_ns() noexcept;

}  // namespace weft::detail
