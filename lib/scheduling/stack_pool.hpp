// Fiber stacks: where a worker gets them and where they go back.
//
// Every stack has a guard page below it, so an overflow faults instead of
// corrupting a neighbour. Where the kernel has MADV_GUARD_INSTALL (Linux
// 6.13+), stacks are slots of the process-wide arenas (stack_arena.hpp):
// the guard is a page-table marker, adds no mapping, and so every stack has
// one however many there are.
//
// The fallback, decided once per process (stack_arenas_enabled()): a
// guarded stack is its own mapping with a PROT_NONE guard page below it. It
// costs the process two kernel memory maps, and Linux allows only
// vm.max_map_count of those (65530 by default) for everything, malloc
// included: 100,000 parked fibers cannot all have guarded stacks. So guarded
// stacks are handed out up to a process-wide budget of a quarter of
// vm.max_map_count; past it, stacks are carved from slabs of k_slab_stacks
// stacks sharing one mapping, with a canary word at the low end of each that
// the worker checks every time the fiber switches out (an overflow aborts
// with a message naming the stack size). The first unguarded stack prints a
// one-line notice.
//
// StackPool is per worker: only its worker thread calls acquire()/release().
// SlabStacks is per runtime and thread-safe (a mutex around a free list).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

namespace weft::detail {

struct Stack {
  void* lo = nullptr;      // lowest usable byte
  std::size_t size = 0;    // usable bytes
  bool guarded = false;    // has a guard page (else: slab stack with a canary)
  std::uint32_t slot = 0;  // an arena stack's slot number (stack_arena.hpp); else unused
};

// What a task whose fiber cannot get a stack fails with (join() rethrows it
// as a std::bad_alloc): the kernel refused the mapping (memory, address
// space or vm.max_map_count exhausted).
class StackAllocFailed : public std::bad_alloc {
 public:
  const char* what() const noexcept override {
    return "weft: cannot map a fiber stack (out of memory or address space)";
  }
};

inline constexpr std::uint64_t k_stack_canary = 0x5745465453544B21ull;  // "WEFTSTK!"

// True while an unguarded stack's canary is intact.
inline bool stack_canary_intact(const Stack& s) noexcept {
  return s.guarded || *static_cast<const std::uint64_t*>(s.lo) == k_stack_canary;
}

class SlabStacks {
 public:
  explicit SlabStacks(std::size_t usable_size) : usable_size_(usable_size) {}
  ~SlabStacks();  // unmaps every slab; all stacks must be back
  SlabStacks(const SlabStacks&) = delete;
  SlabStacks& operator=(const SlabStacks&) = delete;

  // Throws StackAllocFailed when no slab can be mapped.
  Stack acquire();
  // Returns the stack; its pages are given back to the kernel (MADV_DONTNEED).
  void release(Stack stack) noexcept;

 private:
  static constexpr std::size_t k_slab_stacks = 64;
  const std::size_t usable_size_;
  std::mutex lock_;              // guards free_ and slabs_
  std::vector<Stack> free_;
  std::vector<void*> slabs_;
};

class StackArena;

class StackPool {
 public:
  // Retired stacks kept at most, per worker (their touched pages stay
  // resident until trimmed: a few KiB each for most fibers).
  static constexpr std::size_t k_max_retired = std::size_t{1} << 20;

  // usable_size must already be a whole number of pages.
  StackPool(std::size_t usable_size, std::size_t max_cached, SlabStacks& slabs);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A cached stack, else (arenas) a batch of stacks from the arena, half a
  // cache's worth; (fallback) a new guarded mapping or a slab stack.
  // Throws StackAllocFailed if the kernel refuses memory.
  Stack acquire();

  // Back to the cache. When it is full: (arenas) half the cache goes back
  // to the arena in one batch, to be trimmed by whichever worker is idle;
  // (fallback) onto the retired list (reused by acquire() first, returned
  // to the kernel by trim()); past k_max_retired retired stacks, unmapped /
  // returned to the slabs at once.
  void release(Stack stack) noexcept;

  // Gives the pages of up to `batch` free stacks back to the kernel:
  // (arenas) the arena's dirty stacks, by MADV_DONTNEED; (fallback) this
  // worker's retired stacks, by munmap or to the slabs. The worker calls it
  // when it has nothing to run, so that these calls, which shoot down TLB
  // entries on every core running this process, stay off the path of
  // running fibers. True if stacks remain to trim.
  bool trim(std::size_t batch) noexcept;
  // Whether trim() has anything to give back (the worker arms its idle
  // trim timer only then).
  bool has_trim_work() noexcept;

  static std::size_t page_size() noexcept;
  static std::size_t round_to_pages(std::size_t bytes) noexcept;

 private:
  Stack map_guarded();
  void unmap_guarded(Stack stack) noexcept;
  void release_uncached(Stack stack) noexcept;

  std::size_t usable_size_;
  std::size_t max_cached_;
  StackArena* arena_;  // null: the fallback (mapped stacks and slabs)
  SlabStacks& slabs_;
  std::vector<Stack> cache_;
  std::vector<Stack> retired_;  // beyond the cache, waiting for trim()
};

}  // namespace weft::detail
