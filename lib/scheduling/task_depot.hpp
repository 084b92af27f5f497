// The task depot (task_depot.cpp): where the blocks that tasks are made of
// come from, and wait between the threads that free and allocate them.
//
// Task memory has two halves. task_memory.cpp is TaskBase's operator
// new/delete: a stack of free blocks per thread and size class, no atomics.
// This is the shared half: blocks are carved from 64 KiB spans of one class
// each; a thread whose stack overflows hands k_batch blocks here, and one
// whose stack is empty takes k_batch from here, or a whole span to carve.
// The depot remembers a block as a bit in its span's bitmap, not as a link
// in a list, so it hands blocks out in address order whatever order they
// came back in. While the process is busy it keeps the spans whose blocks
// are all back; a worker that idles gives back those that have sat unused
// for k_task_span_rest_ns.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <weft/detail/deadline.hpp>

namespace weft::detail {

constexpr std::size_t k_task_granule = 64;  // the size classes' step
constexpr std::size_t k_task_classes = 8;   // 64 .. 512 bytes
constexpr std::size_t k_task_max_small = k_task_granule * k_task_classes;
constexpr std::uint32_t k_task_batch = 64;  // blocks per hand-over

constexpr std::size_t task_class_of(std::size_t size) noexcept { return (size - 1) / k_task_granule; }
constexpr std::size_t task_block_bytes(std::size_t cls) noexcept { return (cls + 1) * k_task_granule; }

// What a thread gets from the depot: `n` blocks, or (n == 0) a span's
// blocks to carve in order, from `carve` to `carve_end`.
struct TaskRefill {
  std::size_t n = 0;
  char* carve = nullptr;
  char* carve_end = nullptr;
};

// Up to `want` (1 .. k_task_batch) blocks of class `cls` into `out`, the
// lowest address first: from spans that have some blocks out (they cannot
// be freed until those are back), one span after another; if none has, a
// span whose blocks are all free, whole, else a new span. Takes the depot's
// lock (and maps memory for a new span); throws std::bad_alloc when no
// memory can be mapped. Any thread.
TaskRefill take_task_blocks(std::size_t cls, void** out, std::size_t want);

// Returns `n` blocks of class `cls` (each handed out by take_task_blocks,
// none in use). Takes the depot's lock; never throws. Any thread.
void give_task_blocks(std::size_t cls, void* const* blocks, std::size_t n) noexcept;

// Whether the depot holds more spans with all their blocks free than it
// keeps at rest. Lock-free (a hint: relaxed loads); any thread.
bool task_depot_has_surplus() noexcept;

// How long a span must have sat with all its blocks free before an idle
// worker's trim may give it back: bursts of spawns with idle gaps shorter
// than this keep their memory (a burst after a gap would otherwise take
// every page fault again: docs/benchmarks.md, "spans that rest before
// they go"). jemalloc's decay and Go's scavenger make the same trade over
// longer times.
constexpr Nanos k_task_span_rest_ns = 1'000'000'000;

// Gives back up to `max_spans` spans of the surplus (their memory returns to
// the kernel), each taken under the depot's lock briefly; true if it gave
// any. `rested` true: only spans that have sat full for k_task_span_rest_ns
// (an idle worker's trim); false: any (a runtime shutting down). Any
// thread; never blocks beyond that lock.
bool trim_task_depot(std::size_t max_spans, bool rested) noexcept;

// When trim_task_depot(_, true) will next find a span to give back: now or
// earlier if it would find one already, k_never if the depot has no
// surplus. Takes the depot's lock; any thread.
Nanos task_depot_rested_at() noexcept;

namespace testing {
// Test seam (tests/test_task_memory.cpp): while positive, each mapping of
// a new region of spans fails as if mmap had (std::bad_alloc) and counts
// it down. 0 in production. relaxed: the test sets it before the spawns
// that should fail, on the thread that makes them.
extern std::atomic<int> failing_task_regions;
}  // namespace testing

}  // namespace weft::detail
