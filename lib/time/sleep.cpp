// weft::this_fiber::sleep_until / sleep_for (weft/this_fiber.hpp).
#include <cerrno>
#include <ctime>
#include <string>

#include "diagnostics/activity.hpp"
#include "diagnostics/fiber_dump.hpp"
#include "scheduling/current.hpp"
#include "sync/waiter.hpp"
#include "scheduling/worker.hpp"
#include "weft/errors.hpp"
#include "weft/this_fiber.hpp"

namespace weft::detail {

namespace {

// ctx: the sleeper's deadline, on its stack while it is parked.
void describe_sleep(const void* ctx, std::string& out) {
  const Nanos deadline = *static_cast<const Nanos*>(ctx);
  if (deadline == k_never) {
    out += "sleep forever";
    return;
  }
  out += "sleep, ";
  append_duration(out, deadline - now_ns());
  out += " to its deadline";
}

}  // namespace

void sleep_until_ns(Nanos deadline) {
  if (deadline <= now_ns()) {
    // Passed already (a tiny sleep_for, or a deadline computed late): a
    // fiber still gives the worker away once, so that a loop of short
    // sleeps never starves the fibers queued behind it (Go's
    // TestAfterStress). this_fiber.hpp states the rule.
    if (current_fiber() != nullptr) suspend_current_fiber(SuspendReason::yield);
    return;
  }
  if (current_fiber() == nullptr) {
    // Counted active while it sleeps: it comes back by itself (deadlock.hpp, rule 4).
    PlainCall plain;
    if (deadline == k_never) deadline = now_ns() + (Nanos{1} << 62);  // "forever", in a form timespec holds
    const timespec ts{static_cast<time_t>(deadline / 1'000'000'000), static_cast<long>(deadline % 1'000'000'000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    return;
  }
  Waiter waiter(ParkReason::sleep);
  waiter.set_description(&describe_sleep, &deadline);
  if (deadline == k_never) {
    // Nothing will ever wake it: park with no timer, so deadlock detection
    // sees a fiber that can only be cancelled.
    if (waiter.park() == Waiter::Outcome::cancelled) throw_cancelled();
    return;
  }
  waiter.set_deadline(deadline);
  if (waiter.park() == Waiter::Outcome::cancelled) throw_cancelled();
}

}  // namespace weft::detail
