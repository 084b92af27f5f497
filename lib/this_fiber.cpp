#include "weft/this_fiber.hpp"

#include <atomic>

#include "current.hpp"
#include "fiber.hpp"
#include "weft/errors.hpp"
#include "worker.hpp"

namespace weft::this_fiber {

namespace {
// relaxed: ids need only be unique, not ordered with anything.
std::atomic<FiberId> g_next_id{1};
}  // namespace

bool in_fiber() noexcept { return detail::current_fiber() != nullptr; }

void yield() {
  if (detail::current_fiber() == nullptr) {
    throw NotInFiber("weft::this_fiber::yield called outside a fiber (from a plain thread)");
  }
  detail::suspend_current_fiber(detail::SuspendReason::yield);
}

FiberId id() noexcept {
  detail::Fiber* f = detail::current_fiber();
  if (f == nullptr) return 0;
  if (f->id == 0) f->id = g_next_id.fetch_add(1, std::memory_order_relaxed);
  return f->id;
}

std::size_t worker_index() {
  detail::Worker* w = detail::current_worker();
  if (w == nullptr || w->current_fiber() == nullptr) {
    throw NotInFiber("weft::this_fiber::worker_index called outside a fiber (from a plain thread)");
  }
  return w->index();
}

}  // namespace weft::this_fiber
