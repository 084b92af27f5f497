// weft's clock (weft/detail/deadline.hpp): CLOCK_MONOTONIC in nanoseconds,
// the clock behind std::chrono::steady_clock on Linux and the one
// FUTEX_WAIT_BITSET measures absolute timeouts on. clock_gettime goes
// through the vDSO: no system call.
#include <ctime>

#include "weft/detail/deadline.hpp"

namespace weft::detail {

Nanos now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace weft::detail
