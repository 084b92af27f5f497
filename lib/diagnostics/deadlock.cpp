#include "diagnostics/deadlock.hpp"

#include <cstddef>
#include <mutex>

#include "diagnostics/activity.hpp"
#include "diagnostics/outside_threads.hpp"
#include "scheduling/fiber.hpp"
#include "scheduling/scheduler.hpp"
#include "sync/waiter.hpp"

namespace weft::detail {

namespace {
// A report lists at most this many fibers, then counts the rest.
constexpr std::size_t k_max_listed = 64;
}  // namespace

DeadlockCheck find_deadlock(Scheduler& s) {
  const std::uint64_t before = activity::snapshot();
  if (activity::active_of(before) != 0) return {};
  if (!activity::all_runtimes_idle()) return {};
  const std::size_t outside = outside_threads::count();
  if (activity::snapshot() != before) return {};
  if (outside != 0) return {std::nullopt, true};

  std::string lines;
  std::size_t parked = 0;
  s.live().for_each([&](Fiber* f) {
    std::lock_guard<SpinLock> guard(f->wait_lock);  // keeps parked_on alive (fiber.hpp)
    if (f->parked_on == nullptr) return;
    if (++parked > k_max_listed) return;
    lines += "\n  fiber " + std::to_string(fiber_id(f)) + ": ";
    f->parked_on->describe(lines);
  });
  std::string report = "weft::Deadlock: all fibers are asleep (" + std::to_string(parked) + " parked):";
  report += lines;
  if (parked > k_max_listed) report += "\n  ... and " + std::to_string(parked - k_max_listed) + " more";
  return {std::move(report), false};
}

}  // namespace weft::detail
