// weft's clock (weft/detail/deadline.hpp): CLOCK_MONOTONIC in nanoseconds,
// the clock behind std::chrono::steady_clock on Linux and the one
// FUTEX_WAIT_BITSET measures absolute timeouts on. clock_gettime goes
// through the vDSO: no system call. coarse_now_ns() is CLOCK_MONOTONIC_COARSE:
// the kernel's last tick (1-4 ms resolution), a few loads from the vDSO page
// and no TSC read, for timestamps that only a human reads (the dump's
// "parked 3.2 s"; docs/design/seeing-inside-names.md has its cost).
#include <ctime>

#include "time/coarse_clock.hpp"
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

}  // namespace weft::detail
