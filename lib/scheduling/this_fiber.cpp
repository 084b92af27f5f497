#include "weft/this_fiber.hpp"

#include <atomic>

#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "weft/errors.hpp"
#include "scheduling/worker.hpp"

namespace weft::detail {

namespace {
// relaxed: ids need only be unique, not ordered with anything.
std::atomic<std::uint64_t> g_next_id{1};
}  // namespace

std::uint64_t fiber_id(Fiber* f) noexcept {
  std::uint64_t id = f->id.load(std::memory_order_relaxed);
  if (id != 0) return id;
  std::uint64_t fresh = g_next_id.fetch_add(1, std::memory_order_relaxed);
  // relaxed: see Fiber::id. A loser adopts the winner's id (and wastes one).
  return f->id.compare_exchange_strong(id, fresh, std::memory_order_relaxed) ? fresh : id;
}

}  // namespace weft::detail

namespace weft::this_fiber {

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
  return detail::fiber_id(f);
}

std::size_t worker_index() {
  detail::Worker* w = detail::current_worker();
  if (w == nullptr || w->current_fiber() == nullptr) {
    throw NotInFiber("weft::this_fiber::worker_index called outside a fiber (from a plain thread)");
  }
  return w->index();
}

}  // namespace weft::this_fiber
