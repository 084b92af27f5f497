#include "sync/wait_visit.hpp"

namespace weft::detail {

void prepare_wait_visits() noexcept {
  // A function-local static: done once, by whichever Scheduler is built
  // first; the others wait for it (the C++ runtime's guard), and so does
  // every fiber, which exists only once a Scheduler does.
  static const bool done = [] {
    // relaxed: published to the fibers by the thread creation and queue
    // hand-offs that come after (every park happens after this).
    if (!heavy_barrier_available()) g_wait_visits.fetch_add(1, std::memory_order_relaxed);
    return true;
  }();
  (void)done;
}

}  // namespace weft::detail
