#include "diagnostics/deadlock.hpp"

#include <cstddef>
#include <mutex>
#include <vector>

#include "diagnostics/activity.hpp"
#include "diagnostics/fiber_dump.hpp"
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

  // The parked fibers, in the dump's line format (fiber_dump.hpp), with
  // the names of the fibers they refer to (a mutex's holder, a join target).
  const std::vector<FiberEntry> entries = collect_fibers(s, true);
  const FiberNames names = names_of(entries);
  std::string lines;
  std::size_t listed = 0;
  for (const FiberEntry& e : entries) {
    if (++listed > k_max_listed) break;
    lines += "\n  " + format_fiber_line(e, names);
  }
  const std::size_t parked = entries.size();
  std::string report = "weft::Deadlock: all fibers are asleep (" + std::to_string(parked) + " parked):";
  report += lines;
  if (parked > k_max_listed) report += "\n  ... and " + std::to_string(parked - k_max_listed) + " more";
  return {std::move(report), false};
}

}  // namespace weft::detail
