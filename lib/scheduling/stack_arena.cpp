#include "scheduling/stack_arena.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

// glibc 2.36's headers predate these (Linux 6.13, include/uapi/asm-generic/mman-common.h).
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

// process_madvise(2) on the calling process itself (Linux 6.13+ takes any
// advice for it; PIDFD_SELF since 6.14). Not in glibc 2.36's headers.
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef PIDFD_SELF
#define PIDFD_SELF (-10000)
#endif

namespace weft::detail {

namespace {

constexpr std::size_t k_max_chunk_bytes = std::size_t{256} << 20;  // address space per chunk, at most
constexpr std::size_t k_min_chunk_slots = 16;
constexpr std::size_t k_max_trim_batch = 64;

constexpr std::size_t k_max_ranges = 64;  // ranges per process_madvise call here

// Whether process_madvise(PIDFD_SELF) still looks usable with each advice.
// relaxed: hints only; a thread that reads a stale true makes one failing
// call and falls back, as the first did.
std::atomic<bool> g_vector_dontneed{true};
std::atomic<bool> g_vector_free{true};
std::atomic<bool> g_vector_guard{true};

// Applies `advice` to n ranges (at most k_max_ranges) with one
// process_madvise call on ourselves. True if the kernel did all of it;
// false otherwise, with nothing to assume about how much it did (every use
// here may be repeated or skipped safely). An error that says the kernel
// lacks the call, PIDFD_SELF or the advice clears `usable`.
bool advise_in_one_call(const iovec* ranges, std::size_t n, int advice, std::atomic<bool>& usable) noexcept {
  if (!usable.load(std::memory_order_relaxed)) return false;
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += ranges[i].iov_len;
  const long done = ::syscall(SYS_process_madvise, PIDFD_SELF, ranges, n, advice, 0u);
  if (done >= 0) return static_cast<std::size_t>(done) == total;
  if (errno == ENOSYS || errno == EINVAL || errno == EBADF || errno == EPERM) {
    usable.store(false, std::memory_order_relaxed);
  }
  return false;
}

// Gives back the pages of `n` ranges, with one madvise each, or, if
// `one_call`, with one process_madvise call where the kernel has it (short
// of the total: redone one by one; advising a page twice is harmless).
// MADV_DONTNEED at once, or, if `lazily`, MADV_FREE: the pages stay mapped
// and the kernel takes them only when it needs memory (counted as
// LazyFree, reclaimed like clean file pages, never swapped), while a write
// before that keeps a page with no fault; a range the kernel refuses
// MADV_FREE for is given back at once instead. A madvise that frees a
// resident page ends with a TLB shoot-down, an interrupt to every other
// CPU running this process, and process_madvise does one shoot-down for
// the whole vector (Linux 6.16+). On the 2-vCPU VM, with another thread of
// the process running: 17 us per stack one call each, 0.55 us per stack 64
// to a call (docs/benchmarks.md).
void discard_ranges(const iovec* ranges, std::size_t n, bool one_call, bool lazily = false) noexcept {
  if (n == 0) return;
  const int advice = lazily ? MADV_FREE : MADV_DONTNEED;
  if (one_call && n > 1 && advise_in_one_call(ranges, n, advice, lazily ? g_vector_free : g_vector_dontneed)) {
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (::madvise(ranges[i].iov_base, ranges[i].iov_len, advice) != 0 && lazily) {
      ::madvise(ranges[i].iov_base, ranges[i].iov_len, MADV_DONTNEED);
    }
  }
}

// Whether a shutdown's trim frees the stacks it leaves cold lazily (the
// default) or gives their pages back at once (WEFT_STACK_TRIM=eager in the
// environment). Read at every trim_all().
bool shutdown_frees_lazily() noexcept {
  const char* way = std::getenv("WEFT_STACK_TRIM");
  return way == nullptr || std::strcmp(way, "eager") != 0;
}

bool probe_guard_install() noexcept {
  const std::size_t page = StackPool::page_size();
  void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  // EINVAL on kernels before 6.13 (unknown advice).
  const bool ok = ::madvise(p, page, MADV_GUARD_INSTALL) == 0;
  ::munmap(p, 2 * page);
  return ok;
}

bool decide_stack_arenas() noexcept {
  const char* forced = std::getenv("WEFT_STACK_GUARDS");
  if (forced != nullptr && std::strcmp(forced, "mapped") == 0) return false;
  return probe_guard_install();
}

// The arenas, one per usable size; never destroyed (a runtime may be
// destroyed during static destruction and still return its stacks).
std::mutex g_arenas_lock;  // guards g_arenas
std::vector<StackArena*>* g_arenas = nullptr;

}  // namespace

bool stack_arenas_enabled() noexcept {
  static const bool enabled = decide_stack_arenas();
  return enabled;
}

StackArena& StackArena::for_size(std::size_t usable_size) {
  std::lock_guard<std::mutex> guard(g_arenas_lock);
  if (g_arenas == nullptr) g_arenas = new std::vector<StackArena*>();
  for (StackArena* a : *g_arenas) {
    if (a->usable_size_ == usable_size) return *a;
  }
  g_arenas->reserve(g_arenas->size() + 1);  // may throw before the arena exists
  auto* arena = new StackArena(usable_size);
  g_arenas->push_back(arena);
  return *arena;
}

StackArena::StackArena(std::size_t usable_size)
    : usable_size_(usable_size), slot_size_(usable_size + StackPool::page_size()) {}

void StackArena::add_chunk() {
  // Grows geometrically, so a program with a few fibers reserves little
  // address space and one with 100,000 maps a few hundred chunks.
  const std::size_t max_slots = std::max<std::size_t>(1, k_max_chunk_bytes / slot_size_);
  const std::size_t slots = std::min(max_slots, std::max(k_min_chunk_slots, reserved_slots_));
  const std::size_t total = reserved_slots_ + slots;
  // Slot numbers fit a Stack's 32-bit `slot` (2^32 slots of 8 KiB, the
  // least a slot takes, would be 32 TiB of address space).
  if (total > std::numeric_limits<std::uint32_t>::max()) throw StackAllocFailed();
  // Room in every set for every slot first, so that no insert ever
  // allocates.
  try {
    chunks_.reserve(chunks_.size() + 1);
    dirty_.grow(total);
    warm_.grow(total);
    cold_.grow(total);
  } catch (const std::bad_alloc&) {
    throw StackAllocFailed();
  }
  const std::size_t bytes = slots * slot_size_;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) throw StackAllocFailed();
  // A stack touches a page or two of its slot: a transparent huge page
  // would make it 2 MiB.
  ::madvise(base, bytes, MADV_NOHUGEPAGE);
  carve_next_ = static_cast<char*>(base);
  carve_end_ = carve_next_ + bytes;
  chunks_.push_back(Chunk{carve_next_, reserved_slots_});  // within capacity
  reserved_slots_ = total;
}

void StackArena::acquire(std::vector<Stack>& out, std::size_t n) {
  // Cold and new stacks are not prefaulted here: their fibers fault their
  // top page in on first touch. A batch populated in one
  // process_madvise(MADV_POPULATE_WRITE) call was cheaper alone (~1.0
  // against ~1.3 us a page), but the call holds the process's memory-map
  // lock across the batch, which a page fault does not take (Linux 6.4+
  // faults under the VMA's own lock), so every mprotect that grows a
  // worker thread's malloc arena (glibc grows those a page at a time) queued
  // behind it: a fresh process's first 100,000 parked fibers took 2.3x as
  // long on 2 workers (docs/benchmarks.md, "a first burst without
  // prefaulting").
  {
    // Each set's highest slot first: whatever order the stacks came back
    // in, a burst takes them in address order (within a chunk), so that
    // its fibers fault and walk their page tables in order (a long-lived
    // runtime's tenth round of 100,000 parked fibers: spawn 42.6 -> 22.1 ms
    // on 2 workers against the order they were released in,
    // docs/benchmarks.md).
    std::lock_guard<std::mutex> guard(lock_);
    for (SlotSet* set : {&dirty_, &warm_, &cold_}) {
      while (n > 0 && !set->empty()) {
        out.push_back(stack_of(set->take_highest()));  // within capacity: does not allocate
        --n;
      }
    }
    has_dirty_.store(!dirty_.empty(), std::memory_order_relaxed);  // relaxed: see has_dirty_
  }
  while (n > 0) n -= carve(out, n);
}

std::size_t StackArena::carve(std::vector<Stack>& out, std::size_t n) {
  char* carved = nullptr;
  std::size_t count = 0;
  std::size_t first = 0;  // the first carved slot's number
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (carve_next_ == carve_end_) add_chunk();  // throws StackAllocFailed
    count = std::min(n, static_cast<std::size_t>(carve_end_ - carve_next_) / slot_size_);
    carved = carve_next_;
    first = chunks_.back().first + static_cast<std::size_t>(carve_next_ - chunks_.back().base) / slot_size_;
    carve_next_ += count * slot_size_;
    carved_slots_ += count;
  }
  // Guards are installed outside the lock: the slots are ours alone now.
  // One call for them all where the kernel can (installing a guard twice is
  // harmless, so a short call is redone slot by slot below).
  const std::size_t page = StackPool::page_size();
  if (count > 1 && count <= k_max_ranges) {
    std::array<iovec, k_max_ranges> guards;
    for (std::size_t i = 0; i < count; ++i) guards[i] = iovec{carved + i * slot_size_, page};
    if (advise_in_one_call(guards.data(), count, MADV_GUARD_INSTALL, g_vector_guard)) {
      for (std::size_t i = 0; i < count; ++i) out.push_back(stack_at(carved + i * slot_size_, first + i));
      return count;
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    char* slot = carved + i * slot_size_;
    if (::madvise(slot, page, MADV_GUARD_INSTALL) != 0) {
      // Out of memory for page tables. The slots not yet guarded are lost
      // (address space only); the guarded ones go back as free stacks.
      release(out.data() + out.size() - i, i);
      out.resize(out.size() - i);
      throw StackAllocFailed();
    }
    out.push_back(stack_at(slot, first + i));
  }
  return count;
}

void StackArena::release(const Stack* stacks, std::size_t n) noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  for (std::size_t i = 0; i < n; ++i) dirty_.insert(stacks[i].slot);  // within room (add_chunk)
  has_dirty_.store(!dirty_.empty(), std::memory_order_relaxed);  // relaxed: see has_dirty_
}

bool StackArena::trim(std::size_t batch) noexcept { return trim_some(batch, TrimWay::idle); }

bool StackArena::trim_some(std::size_t batch, TrimWay way) noexcept {
  std::array<Stack, k_max_trim_batch> taken;
  std::size_t n = 0, shave = 0;
  bool more = false;
  {
    std::lock_guard<std::mutex> guard(lock_);
    batch = std::min(batch, k_max_trim_batch);
    // The lowest first: the ones acquire() would take last.
    while (n < batch && !dirty_.empty()) taken[n++] = stack_of(dirty_.take_lowest());
    // Room on the warm set is claimed now, so that two trimmers cannot
    // overfill it (past k_warm_slots).
    const std::size_t room = k_warm_slots - std::min(k_warm_slots, warm_.size() + warm_claimed_);
    shave = std::min(n, room);
    warm_claimed_ += shave;
    more = !dirty_.empty();
    has_dirty_.store(more, std::memory_order_relaxed);  // relaxed: see has_dirty_
  }
  if (n == 0) return more;
  trim_stacks(taken.data(), n, shave, way);
  return more;
}

void StackArena::trim_all() noexcept {
  const TrimWay way = shutdown_frees_lazily() ? TrimWay::lazy : TrimWay::at_once;
  while (trim_some(k_max_trim_batch, way)) {
  }
}

void StackArena::trim_stacks(Stack* stacks, std::size_t n, std::size_t shave, TrimWay way) noexcept {
  const std::size_t page = StackPool::page_size();
  static_assert(k_max_trim_batch <= k_max_ranges);
  assert(n <= k_max_trim_batch);
  // Every range first, then one call for them all (discard_ranges).
  std::array<iovec, k_max_trim_batch> ranges;
  std::size_t r = 0;
  // The first `shave` keep their top page.
  for (std::size_t i = 0; i < shave; ++i) {
    if (stacks[i].size > page) ranges[r++] = iovec{stacks[i].lo, stacks[i].size - page};
  }
  Stack* rest = stacks + shave;
  const std::size_t m = n - shave;
  std::sort(rest, rest + m, [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  // The rest go entirely, neighbours in one call: a run of adjacent slots
  // is one range (the guard pages between them keep their markers).
  const std::size_t shaved = r;
  for (std::size_t i = 0; i < m;) {
    char* lo = static_cast<char*>(rest[i].lo);
    char* hi = lo + rest[i].size;
    std::size_t j = i + 1;
    while (j < m && static_cast<char*>(rest[j].lo) == hi + page) {
      hi = static_cast<char*>(rest[j].lo) + rest[j].size;
      ++j;
    }
    ranges[r++] = iovec{lo, static_cast<std::size_t>(hi - lo)};
    i = j;
  }
  if (way == TrimWay::lazy) {
    // A shutdown's: the rest are freed lazily, so that a runtime started
    // later in the process finds their pages without a fault unless the
    // kernel needed the memory in between (docs/design/stacks.md, "Lazily
    // at shutdown").
    discard_ranges(ranges.data(), shaved, true);
    discard_ranges(ranges.data() + shaved, r - shaved, true, true);
  } else {
    discard_ranges(ranges.data(), r, way == TrimWay::at_once);
  }
  std::lock_guard<std::mutex> guard(lock_);
  warm_claimed_ -= shave;
  for (std::size_t i = 0; i < shave; ++i) warm_.insert(stacks[i].slot);  // within room
  for (std::size_t i = 0; i < m; ++i) cold_.insert(rest[i].slot);        // within room
}

Stack StackArena::stack_at(char* slot_base, std::size_t slot) const noexcept {
  return Stack{slot_base + StackPool::page_size(), usable_size_, true, static_cast<std::uint32_t>(slot)};
}

Stack StackArena::stack_of(std::size_t slot) const noexcept {
  // The last chunk whose first slot is at or below it.
  const auto after = std::upper_bound(chunks_.begin(), chunks_.end(), slot,
                                      [](std::size_t s, const Chunk& c) { return s < c.first; });
  assert(after != chunks_.begin());
  const Chunk& c = *(after - 1);
  return stack_at(c.base + (slot - c.first) * slot_size_, slot);
}

StackArena::Counts StackArena::counts() noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  return Counts{dirty_.size(), warm_.size(), cold_.size(), carved_slots_, chunks_.size()};
}

}  // namespace weft::detail
