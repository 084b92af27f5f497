#include "weft/this_fiber.hpp"

#include <atomic>
#include <mutex>
#include <string>
#include <utility>

#include "scheduling/current.hpp"
#include "scheduling/fiber.hpp"
#include "weft/errors.hpp"
#include "weft/mutex.hpp"
#include "scheduling/scheduler.hpp"
#include "scheduling/worker.hpp"

namespace weft::detail {

std::uint64_t lock_holder_id() noexcept {
  Worker* w = current_worker();
  if (w == nullptr) return k_plain_thread_holder;
  const Fiber* f = w->current_fiber();
  return f != nullptr ? fiber_id(f) : 0;
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

void set_name(std::string_view name) {
  detail::Worker* w = detail::current_worker();
  detail::Fiber* f = w != nullptr ? w->current_fiber() : nullptr;
  if (f == nullptr) {
    throw NotInFiber("weft::this_fiber::set_name called outside a fiber (from a plain thread)");
  }
  char* copy = nullptr;
  if (!name.empty()) {
    copy = new char[name.size() + 1];  // may throw: nothing changed
    name.copy(copy, name.size());
    copy[name.size()] = '\0';
  }
  if (!f->live_listed) {
    // Listed from now on, so that the dump shows the name while the fiber
    // runs (as a fiber named at spawn: worker.cpp, bind_task). We run on w,
    // the shard's owner; not published yet, so no wait_lock for the name.
    f->name = copy;
    w->scheduler().live().insert(f, w->index());
    f->live_listed = true;
    return;
  }
  char* old;
  {
    // The dump reads the name under wait_lock (fiber.hpp).
    std::lock_guard<detail::SpinLock> guard(f->wait_lock);
    old = std::exchange(f->name, copy);
  }
  delete[] old;
}

std::string name() {
  const detail::Fiber* f = detail::current_fiber();
  // The fiber's own field: only the fiber (or its worker before it ran)
  // writes it.
  if (f == nullptr || f->name == nullptr) return {};
  return f->name;
}

std::size_t worker_index() {
  detail::Worker* w = detail::current_worker();
  if (w == nullptr || w->current_fiber() == nullptr) {
    throw NotInFiber("weft::this_fiber::worker_index called outside a fiber (from a plain thread)");
  }
  return w->index();
}

}  // namespace weft::this_fiber
