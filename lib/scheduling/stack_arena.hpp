// Fiber stacks carved from large arenas, each with a guard page that costs no
// mapping of its own (docs/design/stacks.md).
//
// An arena hands out stacks of one usable size. It reserves address space in
// chunks of many slots with one mmap(MAP_NORESERVE) each; a slot is one guard
// page followed by the usable stack. The guard is installed with
// madvise(MADV_GUARD_INSTALL) (Linux 6.13+) the first time the slot is
// carved, and never removed: it is a marker in the page table, not a
// mapping, so vm.max_map_count does not limit how many stacks are guarded,
// and MADV_DONTNEED, which gives a free stack's pages back, leaves it in
// place. Slots are never unmapped; the address space is the process's for
// good (MAP_NORESERVE: it costs no memory until touched).
//
// A free stack is in one of three sets, taken in this order, each its
// highest-numbered slot first (a slot's number grows with its address
// within a chunk: a burst takes its stacks in address order, whatever order
// they came back in; trims take the lowest first):
//   dirty  released and not trimmed yet: any of its pages may be resident;
//   warm   trimmed down to its top page (the page every fiber touches first:
//          the control block and the first frames live there), at most
//          k_warm_slots of them;
//   cold   trimmed entirely: no resident page; or, by a shutdown's trim
//          (trim_all()), freed lazily: MADV_FREE, its pages mapped until
//          the kernel needs the memory or a fiber writes them again
//          (WEFT_STACK_TRIM=eager: no resident page here either).
// Invariants (under lock_):
//   |dirty| + |warm| + |cold| + stacks handed out = slots carved
//   every set has room for every slot reserved  (so an insert never
//                                  allocates, and release/trim never throw)
//   |warm| ≤ k_warm_slots
// Memory held by free stacks after an idle trim is therefore at most
// k_warm_slots resident pages, whatever the fibers did; after a shutdown,
// the pages of the stacks it left cold are lazily freed: counted in the
// process's RSS until the kernel takes them (whenever it needs memory, with
// no I/O) or a later runtime reuses them. Dirty stacks are trimmed by idle
// workers (trim()) and by a runtime's shutdown (trim_all()).
//
// Arenas are process-wide, one per usable size, and live until the process
// ends, so a runtime reuses the stacks an earlier runtime warmed. Every
// member is thread-safe (one mutex; no system call is made while holding it
// except the mmap of a new chunk).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include "scheduling/slot_set.hpp"
#include "scheduling/stack_pool.hpp"

namespace weft::detail {

// Whether stacks come from arenas (MADV_GUARD_INSTALL works) or from the
// fallback (a mapping per guarded stack up to a budget, then canary slabs;
// stack_pool.hpp). Decided once per process, at the first call: the kernel
// is asked with a probe mapping, unless the environment variable
// WEFT_STACK_GUARDS=mapped forces the fallback (tests cover both paths).
bool stack_arenas_enabled() noexcept;

class StackArena {
 public:
  // Resident top pages kept by trimmed free stacks, per arena.
  static constexpr std::size_t k_warm_slots = 16384;

  // The process-wide arena for stacks of `usable_size` bytes (a whole number
  // of pages). Throws std::bad_alloc if a new arena cannot be recorded.
  static StackArena& for_size(std::size_t usable_size);

  // Appends `n` free stacks to `out` (which must have room: capacity, not
  // size), dirty first, then warm, cold, and freshly carved ones. Throws
  // StackAllocFailed when a chunk cannot be mapped or a guard cannot be
  // installed; `out` then holds whatever was taken before the failure.
  void acquire(std::vector<Stack>& out, std::size_t n);

  // Takes back free stacks (into the dirty set). Never blocks for long,
  // never allocates.
  void release(const Stack* stacks, std::size_t n) noexcept;

  // Trims up to `batch` dirty stacks: the first ones down to their top page
  // (warm) while fewer than k_warm_slots are warm, the rest entirely (cold).
  // True if dirty stacks remain.
  bool trim(std::size_t batch) noexcept;

  // Whether any stack waited in the dirty set a moment ago (a hint: a
  // release may follow at once; its releaser looks again before it
  // sleeps). Lock-free.
  bool has_dirty() const noexcept { return has_dirty_.load(std::memory_order_relaxed); }

  // Trims every dirty stack (a runtime's shutdown: no idle worker will),
  // 64 stacks to a system call where the kernel allows (process_madvise):
  // one TLB shoot-down per 64 stacks instead of one per stack. The stacks
  // it leaves cold are freed lazily (MADV_FREE), so that a runtime started
  // later in the process starts its fibers on them without a fault;
  // WEFT_STACK_TRIM=eager in the environment (read at each call) gives
  // their pages back at once instead. trim() keeps
  // one call per range on purpose: an idle worker that trimmed that fast
  // went to sleep sooner and had to be woken for the next burst (parked
  // release_ms 6-15 % slower, docs/benchmarks.md).
  void trim_all() noexcept;

  std::size_t usable_size() const noexcept { return usable_size_; }

  // For tests: the sizes of the three sets, the slots carved, the chunks.
  struct Counts {
    std::size_t dirty, warm, cold, carved, chunks;
  };
  Counts counts() noexcept;

 private:
  explicit StackArena(std::size_t usable_size);
  void add_chunk();  // with lock_ held
  // Carves up to n new slots (at least one) and appends them to out.
  std::size_t carve(std::vector<Stack>& out, std::size_t n);
  // The stack of slot number `slot`, whose slot (guard page first) starts
  // at slot_base; and the same found by number alone (with lock_ held).
  Stack stack_at(char* slot_base, std::size_t slot) const noexcept;
  Stack stack_of(std::size_t slot) const noexcept;
  // How a trim gives pages back: `idle`, one madvise per range (trim());
  // `at_once`, one process_madvise call per batch (trim_all() with
  // WEFT_STACK_TRIM=eager); `lazy`, the same, except that the stacks left
  // cold are freed lazily (MADV_FREE; trim_all()).
  enum class TrimWay { idle, at_once, lazy };
  bool trim_some(std::size_t batch, TrimWay way) noexcept;
  // Gives back the pages of stacks[0, n), taken out of the dirty set: the
  // first `shave` keep their top page (then warm), the rest none (cold).
  void trim_stacks(Stack* stacks, std::size_t n, std::size_t shave, TrimWay way) noexcept;

  const std::size_t usable_size_;
  const std::size_t slot_size_;  // guard page + usable size

  std::mutex lock_;  // guards everything below; held only for set moves and chunk mapping
  // The chunks in the order they were mapped; a chunk's slots are numbered
  // from `first` up, in address order.
  struct Chunk {
    char* base;
    std::size_t first;
  };
  std::vector<Chunk> chunks_;
  SlotSet dirty_, warm_, cold_;
  // !dirty_.empty(), stored under lock_ whenever dirty_ changes. relaxed:
  // a hint for idle workers deciding whether to time their sleep; nothing
  // is read through it.
  std::atomic<bool> has_dirty_{false};
  char* carve_next_ = nullptr;  // next uncarved slot of the newest chunk
  char* carve_end_ = nullptr;
  std::size_t reserved_slots_ = 0;  // in all chunks
  std::size_t carved_slots_ = 0;
  std::size_t warm_claimed_ = 0;  // warm places taken by trims in progress
};

}  // namespace weft::detail
