// Memory for tasks: TaskBase's operator new/delete, the per-thread half of
// task memory (the shared half, spans and the depot: task_depot.hpp).
//
// A spawn allocates one task and its end frees it, often on another worker
// (the thief ran it) or after a plain thread spawned it. malloc's per-thread
// caches hold only a few blocks per size, so a producer that only allocates
// and a consumer that only frees both fall through to the shared arena, its
// lock and its consolidation, on nearly every spawn. Instead:
//
//   - sizes up to k_task_max_small round up to a multiple of 64 bytes (a
//     class);
//   - each thread keeps a stack of free blocks per class, no atomics, of at
//     most 2 * k_task_batch: a free pushes, an allocation pops (the last
//     block freed, still warm);
//   - a full stack hands its older k_task_batch blocks to the depot; an
//     empty one takes k_task_batch from it, or a whole span, which the
//     thread then carves block by block in address order (a burst of spawns
//     takes its tasks from spans that way);
//   - a thread's blocks, and the rest of the span it carves, go to the depot
//     when the thread exits; the cache is then retired: tasks that other
//     thread_local destructors of that thread allocate or free afterwards
//     take or give one block at a time under the depot's lock (a retired
//     cache must not hand out or take back blocks the depot already owns);
//   - over-aligned tasks (alignof > __STDCPP_DEFAULT_NEW_ALIGNMENT__) use
//     the aligned ::operator new, never the caches; so does every task in
//     the AddressSanitizer build.
//
// Ownership marks: in builds with assertions, a block that is cached or in
// the depot holds k_free_mark in its second word, and an allocated block
// does not (a block not carved yet holds anything: carving clears it);
// handing out a cached block that is not marked free, or freeing one that
// is, asserts (and the depot asserts on a block given twice). So a block owned twice (two live
// tasks in one block) stops the program at the second owner instead of
// corrupting both tasks.
//
// So the common case is a thread-local pop or push, and the cross-thread
// flow costs one lock per k_task_batch tasks. Larger tasks use
// ::operator new.
#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>

#include "diagnostics/sanitizers.hpp"
#include "scheduling/task_depot.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t k_classes = k_task_classes;
constexpr std::uint32_t k_batch = k_task_batch;

// A free block's first words, as the ownership marks see them.
struct FreeBlock {
  std::uintptr_t unused;
  std::uintptr_t mark;  // k_free_mark while free (builds with assertions)
};
static_assert(sizeof(FreeBlock) <= k_task_granule);

constexpr std::uintptr_t k_free_mark = 0x7A5C'F4EE'B10C'0000ull;

// A cached block is handed out for a new task.
void mark_taken(FreeBlock* b) noexcept {
  assert(b->mark == k_free_mark && "weft: a task block handed out twice");
#ifndef NDEBUG
  b->mark = 0;
#else
  (void)b;
#endif
}

// A task's block is freed.
void mark_free(FreeBlock* b) noexcept {
#ifndef NDEBUG
  assert(b->mark != k_free_mark && "weft: a task block freed twice");
  b->mark = k_free_mark;
#else
  (void)b;
#endif
}

// Gives the blocks from `from` to `to` of a span being carved to the depot
// (a departing thread's rest), k_batch at a time.
void give_range(std::size_t cls, char* from, char* to) noexcept {
  const std::size_t step = task_block_bytes(cls);
  while (from != to) {
    void* blocks[k_batch];
    std::size_t n = 0;
    for (; from != to && n < k_batch; from += step) {
#ifndef NDEBUG
      // Never handed out, so not checked: it may hold any mark of an earlier life.
      reinterpret_cast<FreeBlock*>(from)->mark = k_free_mark;
#endif
      blocks[n++] = from;
    }
    give_task_blocks(cls, blocks, n);
  }
}

// Trivially constructed and destroyed, so that reaching it is one
// thread-pointer-relative load: a thread_local with a destructor gets a
// guard variable that the compiler reaches through __tls_get_addr on every
// access (whatever tls_model the variable itself has). Its destructor's
// work is done by CacheFlusher below, registered once per thread.
//
// A thread's free blocks are a stack of pointers per class, in an array
// allocated the first time the thread keeps a block (k_classes *
// k_cache_blocks pointers, 8 KiB: too large for initial-exec TLS, which a
// library loaded with dlopen draws from a small reserve). A stack of pointers, not a list linked
// through the blocks: handing the older half to the depot, or taking a
// batch from it, reads no block (a list's walks were dependent loads, a
// block each), and an allocation does not load the next block's address
// from the block it takes.
constexpr std::uint32_t k_cache_blocks = 2 * k_batch;

struct ThreadCache {
  void** slots;  // class cls: slots[cls * k_cache_blocks ..], count[cls] of them used
  std::uint32_t count[k_classes];
  // k_cache_blocks while the thread has slots, else 0: operator delete's one
  // test covers "no slots" and "full".
  std::uint32_t cap;
  // The span this thread carves, per class: its next block and the end of
  // its blocks (equal: none).
  char* carve[k_classes];
  char* carve_end[k_classes];
  bool retired;  // the thread is exiting: its blocks went to the depot
};

// initial-exec: see current.cpp. constinit: zero-initialised, no guard.
__attribute__((tls_model("initial-exec"))) constinit thread_local ThreadCache t_cache{};

// At thread exit: the cached blocks, and the rest of the spans being carved,
// go to the depot.
struct CacheFlusher {
  ~CacheFlusher() {
    ThreadCache& c = t_cache;
    for (std::size_t cls = 0; cls < k_classes; ++cls) {
      if (c.count[cls] != 0) give_task_blocks(cls, c.slots + cls * k_cache_blocks, c.count[cls]);
      c.count[cls] = 0;
      give_range(cls, c.carve[cls], c.carve_end[cls]);
      c.carve[cls] = c.carve_end[cls] = nullptr;
    }
    delete[] c.slots;
    c.slots = nullptr;
    c.cap = 0;
    c.retired = true;
  }
};

// The first time the thread keeps blocks: its slots, and the flusher (the
// first touch of a thread_local with a destructor registers it). False if
// the slots cannot be allocated (the thread then uses the depot directly,
// like a retired one).
[[gnu::noinline]] bool set_up(ThreadCache& c) noexcept {
  static thread_local CacheFlusher flusher;
  (void)&flusher;
  c.slots = new (std::nothrow) void*[k_classes * k_cache_blocks];
  if (c.slots == nullptr) return false;
  c.cap = k_cache_blocks;
  return true;
}

// Carves the next block of the thread's span. The block's memory is not
// touched here, so a burst's misses overlap (its task writes it first).
void* take_carved(ThreadCache& c, std::size_t cls) noexcept {
  char* p = c.carve[cls];
  c.carve[cls] = p + task_block_bytes(cls);
#ifndef NDEBUG
  reinterpret_cast<FreeBlock*>(p)->mark = 0;  // it may hold the mark of an earlier life
#endif
  return p;
}

// The slow halves of operator new and delete, out of line and cold: inlined,
// their calls and locals made every allocation and free save and restore
// six registers (issue 17: ~10 instructions each on the spawn path).

// operator new, one block straight from the depot: for a thread without
// slots (retired, or their allocation failed).
[[gnu::noinline, gnu::cold]] void* take_uncached(std::size_t cls) {
  void* block = nullptr;
  const TaskRefill r = take_task_blocks(cls, &block, 1);
  if (r.n == 1) {
    mark_taken(static_cast<FreeBlock*>(block));
    return block;
  }
  give_range(cls, r.carve + task_block_bytes(cls), r.carve_end);  // the rest goes back
  reinterpret_cast<FreeBlock*>(r.carve)->mark = 0;
  return r.carve;
}

// operator new with no cached block and nothing left to carve: k_batch
// blocks from the depot's partial spans (the first is the task's, the rest
// are cached, the lowest address on top), or a whole span to carve (a full
// one from the depot, else a new one).
[[gnu::noinline, gnu::cold]] void* refill_and_take(ThreadCache& c, std::size_t cls) {
  if (c.slots == nullptr && (c.retired || !set_up(c))) return take_uncached(cls);
  void** slots = c.slots + cls * k_cache_blocks;
  const TaskRefill r = take_task_blocks(cls, slots, k_batch);
  if (r.n > 0) {
    // slots[0] is the lowest: the first block the depot handed out.
    std::reverse(slots, slots + r.n);
    c.count[cls] = static_cast<std::uint32_t>(r.n - 1);
    void* block = slots[r.n - 1];
    mark_taken(static_cast<FreeBlock*>(block));
    return block;
  }
  c.carve[cls] = r.carve;
  c.carve_end[cls] = r.carve_end;
  return take_carved(c, cls);
}

// operator delete with a full stack: the older k_batch blocks (the bottom)
// go to the depot, the newer ones move down, and `p` goes on top.
void free_to_full(ThreadCache& c, void* p, std::size_t cls) noexcept {
  void** slots = c.slots + cls * k_cache_blocks;
  give_task_blocks(cls, slots, k_batch);
  std::copy(slots + k_batch, slots + k_cache_blocks, slots);
  slots[k_cache_blocks - k_batch] = p;
  c.count[cls] = k_cache_blocks - k_batch + 1;
}

// operator delete past its one test: a full stack, or a thread without
// slots (not set up yet, retired, or their allocation failed).
[[gnu::noinline, gnu::cold]] void free_slow(ThreadCache& c, void* p, std::size_t cls) noexcept {
  mark_free(static_cast<FreeBlock*>(p));
  if (c.slots != nullptr) return free_to_full(c, p, cls);
  if (!c.retired && set_up(c)) {
    c.slots[cls * k_cache_blocks] = p;
    c.count[cls] = 1;
    return;
  }
  give_task_blocks(cls, &p, 1);
}

}  // namespace

void* TaskBase::operator new(std::size_t size) {
  // The AddressSanitizer build keeps malloc, so ASan still sees a task used
  // after it was freed. (The ThreadSanitizer build uses the caches and the
  // depot, so that their threads are checked too.)
  if (WEFT_ASAN || size > k_task_max_small) return ::operator new(size);
  const std::size_t cls = task_class_of(size);
  ThreadCache& c = t_cache;
  const std::uint32_t n = c.count[cls];
  if (n == 0) [[unlikely]] {
    if (c.carve[cls] != c.carve_end[cls]) return take_carved(c, cls);
    return refill_and_take(c, cls);
  }
  c.count[cls] = n - 1;
  void* block = c.slots[cls * k_cache_blocks + n - 1];
  mark_taken(static_cast<FreeBlock*>(block));
  return block;
}

void TaskBase::operator delete(void* p, std::size_t size) noexcept {
  if (WEFT_ASAN || size > k_task_max_small) {
    ::operator delete(p, size);
    return;
  }
  const std::size_t cls = task_class_of(size);
  ThreadCache& c = t_cache;
  const std::uint32_t n = c.count[cls];
  if (n >= c.cap) [[unlikely]] return free_slow(c, p, cls);  // a tail call: no frame here
  mark_free(static_cast<FreeBlock*>(p));
  c.slots[cls * k_cache_blocks + n] = p;
  c.count[cls] = n + 1;
}

void* TaskBase::operator new(std::size_t size, std::align_val_t align) {
  return ::operator new(size, align);
}

void TaskBase::operator delete(void* p, std::size_t size, std::align_val_t align) noexcept {
  ::operator delete(p, size, align);
}

}  // namespace weft::detail
