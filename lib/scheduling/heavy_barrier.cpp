#include "scheduling/heavy_barrier.hpp"

#include <cstdio>
#include <cstdlib>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diagnostics/sanitizers.hpp"

namespace weft::detail {

namespace {

long membarrier(int cmd) noexcept { return syscall(__NR_membarrier, cmd, 0U, 0); }

bool register_process() noexcept {
#if WEFT_TSAN
  return false;
#else
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
#endif
}

}  // namespace

bool heavy_barrier_available() noexcept {
  // A function-local static: registered once, by whichever thread asks
  // first; the others wait for that answer (the C++ runtime's guard).
  static const bool available = register_process();
  return available;
}

void heavy_barrier() noexcept {
  // After a successful registration the call has no documented failure;
  // if it failed anyway, the light side's pushes could go unseen by a
  // sleeping worker for good. Say so and stop rather than lose work.
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    std::perror("weft: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration");
    std::abort();
  }
}

}  // namespace weft::detail
