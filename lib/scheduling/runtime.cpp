#include "weft/runtime.hpp"

#include <cstdio>
#include <exception>

#include "diagnostics/fiber_dump.hpp"
#include "scheduling/cpu_budget.hpp"
#include "scheduling/scheduler.hpp"
#include "time/timer_heap.hpp"

namespace weft {

std::size_t default_worker_count() noexcept { return detail::usable_cpu_count(); }

Runtime::Runtime() : Runtime(Options{}) {}

Runtime::Runtime(Options options) : scheduler_(std::make_unique<detail::Scheduler>(options)) {}

Runtime::~Runtime() {
  try {
    scheduler_->shutdown();
  } catch (const std::exception& e) {
    // Only reachable when a fiber destroys its own runtime, which would
    // wait for itself forever.
    std::fprintf(stderr, "weft: %s\n", e.what());
    std::terminate();
  }
}

void Runtime::shutdown() { scheduler_->shutdown(); }

void Runtime::shutdown_until_ns(detail::Nanos grace_deadline) { scheduler_->shutdown_until(grace_deadline); }

std::size_t Runtime::num_workers() const noexcept { return scheduler_->num_workers(); }

const Runtime::Options& Runtime::options() const noexcept { return scheduler_->options(); }

Runtime::Metrics Runtime::metrics() const { return scheduler_->metrics(); }

std::string Runtime::dump() const { return detail::dump_runtime(*scheduler_); }

}  // namespace weft
