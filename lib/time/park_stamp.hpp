// Park timestamps: when a fiber's current park began, for the dump's
// "[parked 3.2 s]". Only a human reads them, so they need to be cheap on the
// park path, not precise.
//
// On x86-64 a stamp is the TSC (one rdtsc, 3 instructions with the
// shift-or: no call, no vDSO, no memory load); stamp_age_ns converts it at
// dump time with the TSC rate measured between the library's load and the
// dump (CLOCK_MONOTONIC over that span: the longer the process has run, the
// closer the rate). This relies on an invariant TSC, synchronised across
// cores, as every x86-64 CPU of the last fifteen years has (a VM without it
// only makes the dump's durations wrong). Elsewhere a stamp is
// CLOCK_MONOTONIC_COARSE (the kernel's last tick, 1-4 ms resolution, a few
// loads from the vDSO page). docs/design/seeing-inside.md has the
// instruction counts of both.
//
// Contract: any thread; park_stamp() is async-signal-safe.
#pragma once

#include <cstdint>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

using ParkStamp = std::uint64_t;

// CLOCK_MONOTONIC_COARSE in nanoseconds (clock.cpp).
Nanos coarse_now_ns() noexcept;

inline ParkStamp park_stamp() noexcept {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return static_cast<ParkStamp>(coarse_now_ns());
#endif
}

// Nanoseconds per stamp tick: on x86-64 the TSC's period, measured against
// CLOCK_MONOTONIC since the library was loaded (0 if no time has passed
// yet); 1 elsewhere. Also the trace's tick rate (trace_buffer.hpp). Any
// thread.
double stamp_ns_per_tick() noexcept;

// How long ago `stamp` was taken, in nanoseconds (0 if it seems to be in
// the future: another core's TSC may be a hair ahead). Any thread.
Nanos stamp_age_ns(ParkStamp stamp) noexcept;

}  // namespace weft::detail
