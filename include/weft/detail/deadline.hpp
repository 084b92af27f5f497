// Deadlines as weft keeps them: nanoseconds on std::chrono::steady_clock
// (CLOCK_MONOTONIC), saturating, so that "wait for a century" and "wait
// until time_point::max()" mean "never" instead of overflowing.
//
// Internal: the public timed calls take any std::chrono duration or time
// point and convert it here.
#pragma once

#include "config.hpp"

#include <chrono>
#include <cstdint>
#include <limits>

namespace weft::detail {

using Nanos = std::int64_t;
inline constexpr Nanos k_never = std::numeric_limits<Nanos>::max();

// steady_clock::now() in nanoseconds. Never blocks; any thread.
WEFT_API Nanos now_ns() noexcept;

inline Nanos saturating_add(Nanos base, long double ns) noexcept {
  if (ns <= 0) return base;
  if (ns >= static_cast<long double>(k_never - base)) return k_never;
  // Round up: a timer must never fire before the time it was asked for.
  const auto whole = static_cast<Nanos>(ns);
  return base + whole + (static_cast<long double>(whole) < ns ? 1 : 0);
}

// now + d. Zero and negative durations give "now" (already due).
template <class Rep, class Period>
Nanos deadline_after(const std::chrono::duration<Rep, Period>& d) noexcept {
  return saturating_add(now_ns(), std::chrono::duration<long double, std::nano>(d).count());
}

// A time point on any clock; steady_clock's converts exactly, other clocks'
// through "how far from their now" (as std::condition_variable does).
template <class Clock, class Duration>
Nanos deadline_at(const std::chrono::time_point<Clock, Duration>& t) noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    return saturating_add(0, std::chrono::duration<long double, std::nano>(t.time_since_epoch()).count());
  } else {
    return deadline_after(t - Clock::now());
  }
}

}  // namespace weft::detail
