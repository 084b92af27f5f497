// The task depot's idle trim (task_memory.cpp): while the process is busy
// the depot keeps the task blocks a burst of spawns freed, for the next
// burst; once a worker has idled a while it gives the surplus back.
#pragma once

#include <cstddef>

namespace weft::detail {

// Whether the depot holds more blocks than it keeps at rest. Lock-free (a
// hint: relaxed loads); any thread.
bool task_depot_has_surplus() noexcept;

// Frees up to `max_batches` batches (64 blocks each) of the surplus, each
// under the depot's lock briefly; true if it freed any. Any thread; never
// blocks beyond that lock.
bool trim_task_depot(std::size_t max_batches) noexcept;

}  // namespace weft::detail
