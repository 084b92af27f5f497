// LiveFibers: every fiber that has parked at least once and not finished,
// sharded by the worker it first parked on (a fiber that never parks is not
// listed: whoever walks the list looks for parked fibers only). Nothing scans it while the runtime works (parked
// fibers cost nothing, DESIGN lesson 1); shutdown walks it once all workers
// are asleep, to cancel the fibers parked forever (and later, deadlock
// detection walks it to name what each one waits on).
//
// Contract: insert() by the worker that owns the shard, before the fiber's
// first park is published; remove() by any
// worker (a fiber may finish on another worker than it started on);
// for_each() by any thread. Each shard's SpinLock is held for a few
// pointer writes; nothing parks or blocks under it.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "scheduling/fiber.hpp"
#include "weft/detail/spin_lock.hpp"

namespace weft::detail {

class LiveFibers {
 public:
  explicit LiveFibers(std::size_t num_shards) : shards_(num_shards) {}

  void insert(Fiber* f, std::size_t shard) noexcept {
    Shard& s = shards_[shard];
    f->live_shard = static_cast<std::uint32_t>(shard);
    std::lock_guard<SpinLock> guard(s.lock);
    f->live_prev = nullptr;
    f->live_next = s.head;
    if (s.head != nullptr) s.head->live_prev = f;
    s.head = f;
    ++s.count;
  }

  void remove(Fiber* f) noexcept {
    Shard& s = shards_[f->live_shard];
    std::lock_guard<SpinLock> guard(s.lock);
    if (f->live_prev != nullptr) f->live_prev->live_next = f->live_next; else s.head = f->live_next;
    if (f->live_next != nullptr) f->live_next->live_prev = f->live_prev;
    f->live_prev = f->live_next = nullptr;
    --s.count;
  }

  // Calls fn(Fiber*) for every live fiber, one shard at a time under its lock.
  template <class Fn>
  void for_each(Fn&& fn) {
    for (Shard& s : shards_) {
      std::lock_guard<SpinLock> guard(s.lock);
      for (Fiber* f = s.head; f != nullptr; f = f->live_next) fn(f);
    }
  }

  std::size_t count() const {
    std::size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard<SpinLock> guard(s.lock);
      n += s.count;
    }
    return n;
  }

 private:
  struct alignas(64) Shard {
    mutable SpinLock lock;
    Fiber* head = nullptr;
    std::size_t count = 0;
  };
  std::vector<Shard> shards_;
};

}  // namespace weft::detail
