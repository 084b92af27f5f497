// weft's clock (weft/detail/deadline.hpp): CLOCK_MONOTONIC in nanoseconds,
// the clock behind std::chrono::steady_clock on Linux and the one
// FUTEX_WAIT_BITSET measures absolute timeouts on. clock_gettime goes
// through the vDSO: no system call. coarse_now_ns() and the park stamps:
// time/park_stamp.hpp.
#include <ctime>

#include "time/park_stamp.hpp"
#include "weft/detail/deadline.hpp"

namespace weft::detail {

Nanos now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Nanos coarse_now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {
// The calibration start for stamp_age_ns: both clocks read at load time.
// Written once, before main (dynamic initialisation of the library), read
// only afterwards.
struct StampOrigin {
  ParkStamp stamp = park_stamp();
  Nanos ns = now_ns();
};
const StampOrigin g_origin;
}  // namespace

double stamp_ns_per_tick() noexcept {
#if defined(__x86_64__)
  // Measured since the library was loaded: the longer the span, the closer.
  const ParkStamp now = park_stamp();
  const Nanos span = now_ns() - g_origin.ns;
  if (now <= g_origin.stamp || span <= 0) return 0;  // (another core's TSC may be a hair behind)
  const ParkStamp ticks = now - g_origin.stamp;
  return static_cast<double>(span) / static_cast<double>(ticks);
#else
  (void)g_origin;
  return 1.0;
#endif
}

Nanos stamp_age_ns(ParkStamp stamp) noexcept {
  const ParkStamp now_stamp = park_stamp();
  if (now_stamp <= stamp) return 0;
  return static_cast<Nanos>(static_cast<double>(now_stamp - stamp) * stamp_ns_per_tick());
}

}  // namespace weft::detail
