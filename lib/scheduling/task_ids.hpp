// Task ids (Go's goidcache): every task gets its id when it is spawned, from
// one process-wide counter, without an atomic read-modify-write per spawn.
// A worker takes k_task_id_batch ids at a time with one fetch_add and hands
// them out with a plain increment (Worker::take_task_id); a plain thread,
// which spawns rarely and has no worker to cache in, takes one id per spawn
// from the counter itself.
//
// Invariant: ids are unique in the process and never 0 (0 means "a plain
// thread" where an id names a spawner). They are not ordered by spawn time
// across workers (each worker hands out its own range).
//
// Contract: any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

inline constexpr std::uint64_t k_task_id_batch = 1024;

// The next id nobody has taken. relaxed: ids need only be unique, and the
// fetch_add's atomicity gives that; nothing is published through them.
inline std::atomic<std::uint64_t> g_next_task_id{1};

// Reserves `n` ids; returns the first one.
inline std::uint64_t reserve_task_ids(std::uint64_t n) noexcept {
  return g_next_task_id.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace weft::detail
