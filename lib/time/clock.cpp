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

Nanos stamp_age_ns(ParkStamp stamp) noexcept {
  const ParkStamp now_stamp = park_stamp();
  if (now_stamp <= stamp) return 0;
#if defined(__x86_64__)
  // TSC ticks per nanosecond, measured since the library was loaded.
  const Nanos ns = now_ns();
  const ParkStamp ticks = now_stamp - g_origin.stamp;
  const Nanos span = ns - g_origin.ns;
  if (ticks == 0 || span <= 0) return 0;
  return static_cast<Nanos>(static_cast<long double>(now_stamp - stamp) * span / ticks);
#else
  (void)g_origin;
  return static_cast<Nanos>(now_stamp - stamp);
#endif
}

}  // namespace weft::detail
