// Memory for tasks: TaskBase's operator new/delete.
//
// A spawn allocates one task and its end frees it, often on another worker
// (the thief ran it) or after a plain thread spawned it. malloc's per-thread
// caches hold only a few blocks per size, so a producer that only allocates
// and a consumer that only frees both fall through to the shared arena, its
// lock and its consolidation, on nearly every spawn. Instead:
//
//   - sizes up to k_max_small round up to a multiple of 64 bytes (a class);
//   - each thread keeps a free list per class, no atomics;
//   - a list that grows past 2 * k_batch hands k_batch blocks to a
//     process-wide depot (a mutex and a vector of batches per class); a
//     thread whose list is empty takes a whole batch from the depot, and
//     only when the depot is empty does it call ::operator new;
//   - while the process is busy, the depot keeps what it is given, up to
//     k_max_depot_bytes per class (frees the rest): a burst of spawns (every
//     task allocated before any ends) then takes its blocks from the depot
//     the next time instead of from ::operator new, whose slow path was a
//     quarter of such a spawn. Once a worker has idled k_trim_idle_ns, it
//     frees the depot's surplus over k_keep_depot_batches per class a few
//     batches at a time (trim_task_depot, task_memory.hpp), as it returns
//     surplus stacks; so the memory a burst needed stays until the runtime
//     rests, no longer;
//   - a thread's cache goes to the depot when the thread exits, and
//     is retired then: tasks that other thread_local destructors of that
//     thread allocate or free afterwards use ::operator new/delete directly
//     (a retired cache must not hand out or take back blocks the depot
//     already owns);
//   - over-aligned tasks (alignof > __STDCPP_DEFAULT_NEW_ALIGNMENT__) use
//     the aligned ::operator new, never the lists.
//
// Ownership marks: in builds with assertions, a block on a free list holds
// k_free_mark in its second word, and an allocated block does not; taking a
// block that is not marked free, or freeing one that is, asserts. So a
// block owned twice (two live tasks in one block) stops the program at the
// second owner instead of corrupting both tasks.
//
// So the common case is a thread-local pop or push, and the cross-thread
// flow costs one lock per k_batch tasks. Larger tasks use ::operator new.
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "diagnostics/sanitizers.hpp"
#include "scheduling/task_memory.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t k_class_bytes = 64;
constexpr std::size_t k_classes = 8;  // 64 .. 512 bytes
constexpr std::size_t k_max_small = k_class_bytes * k_classes;
constexpr std::uint32_t k_batch = 64;
constexpr std::size_t k_keep_depot_batches = 1024;      // per class, kept at rest: 64 Ki blocks
constexpr std::size_t k_max_depot_bytes = 256u << 20;     // per class, kept while busy

struct FreeBlock {
  FreeBlock* next;
  std::uintptr_t mark;  // k_free_mark while on a free list (builds with assertions)
};
static_assert(sizeof(FreeBlock) <= k_class_bytes);

constexpr std::uintptr_t k_free_mark = 0x7A5C'F4EE'B10C'0000ull;

// A block leaves a free list for a new task.
void mark_taken(FreeBlock* b) noexcept {
  assert(b->mark == k_free_mark && "weft: a task block handed out twice");
#ifndef NDEBUG
  b->mark = 0;
#else
  (void)b;
#endif
}

// A block joins a free list.
void mark_free(FreeBlock* b) noexcept {
#ifndef NDEBUG
  assert(b->mark != k_free_mark && "weft: a task block freed twice");
  b->mark = k_free_mark;
#else
  (void)b;
#endif
}

std::size_t class_of(std::size_t size) noexcept { return (size - 1) / k_class_bytes; }
std::size_t bytes_of(std::size_t cls) noexcept { return (cls + 1) * k_class_bytes; }
std::size_t max_depot_batches(std::size_t cls) noexcept { return k_max_depot_bytes / (k_batch * bytes_of(cls)); }

// A block from ::operator new, for a class: not marked free (its memory
// may still hold the mark of a block freed earlier).
void* fresh_block(std::size_t cls) {
  auto* b = static_cast<FreeBlock*>(::operator new(bytes_of(cls)));
  b->mark = 0;
  return b;
}

void free_chain(FreeBlock* b, std::size_t cls) noexcept {
  while (b != nullptr) {
    FreeBlock* next = b->next;
    b->mark = 0;
    ::operator delete(b, bytes_of(cls));
    b = next;
  }
}

// A chain of blocks and its length.
struct Batch {
  FreeBlock* head = nullptr;
  std::uint32_t size = 0;
};

// Process-wide: batches per class.
class Depot {
 public:
  Batch take(std::size_t cls) noexcept {
    // A thread that only spawns (a burst: every task allocated before any
    // ends) finds the depot empty on every allocation; it must not pay the
    // mutex each time (~60 instructions of a ~950-instruction spawn).
    // relaxed: a hint; a batch given meanwhile is only missed this once.
    if (sizes_[cls].load(std::memory_order_relaxed) == 0) return {};
    std::lock_guard<std::mutex> guard(lock_);
    auto& batches = batches_[cls];
    if (batches.empty()) return {};
    const Batch b = batches.back();
    batches.pop_back();
    sizes_[cls].store(batches.size(), std::memory_order_relaxed);  // relaxed: see above
    return b;
  }
  // A chain of any length (a full batch, or a departing thread's rest).
  void give(std::size_t cls, Batch chain) noexcept {
    {
      std::lock_guard<std::mutex> guard(lock_);
      auto& batches = batches_[cls];
      if (batches.size() < max_depot_batches(cls)) {
        try {
          batches.push_back(chain);
          sizes_[cls].store(batches.size(), std::memory_order_relaxed);  // relaxed: see take()
          return;
        } catch (const std::bad_alloc&) {
          // No room to remember it: free it below.
        }
      }
    }
    free_chain(chain.head, cls);
  }

  // Whether some class holds more than k_keep_depot_batches. Lock-free.
  bool has_surplus() const noexcept {
    for (const auto& size : sizes_) {
      if (size.load(std::memory_order_relaxed) > k_keep_depot_batches) return true;  // relaxed: a hint
    }
    return false;
  }
  // Frees up to `max_batches` surplus batches; true if it freed any.
  bool trim(std::size_t max_batches) noexcept {
    bool freed = false;
    for (std::size_t cls = 0; cls < k_classes && max_batches > 0; ++cls) {
      while (max_batches > 0) {
        Batch b;
        {
          std::lock_guard<std::mutex> guard(lock_);
          auto& batches = batches_[cls];
          if (batches.size() <= k_keep_depot_batches) break;
          b = batches.back();
          batches.pop_back();
          sizes_[cls].store(batches.size(), std::memory_order_relaxed);  // relaxed: see take()
        }
        free_chain(b.head, cls);  // outside the lock: 64 frees
        freed = true;
        --max_batches;
      }
    }
    return freed;
  }

 private:
  std::mutex lock_;
  std::vector<Batch> batches_[k_classes];
  // batches_[cls].size(), stored under lock_: take()'s lock-free "empty".
  std::atomic<std::size_t> sizes_[k_classes] = {};
};

Depot& depot() {
  static Depot* d = new Depot;  // never destroyed: threads may exit after static destructors ran
  return *d;
}

// Trivially constructed and destroyed, so that reaching it is one
// thread-pointer-relative load: a thread_local with a destructor gets a
// guard variable that the compiler reaches through __tls_get_addr on every
// access (whatever tls_model the variable itself has). Its destructor's
// work is done by CacheFlusher below, registered once per thread.
struct ThreadCache {
  FreeBlock* head[k_classes];
  std::uint32_t count[k_classes];
  bool retired;   // the thread is exiting: its lists went to the depot
  bool flusher;   // CacheFlusher registered for this thread
};

// initial-exec: see current.cpp. constinit: zero-initialised, no guard.
__attribute__((tls_model("initial-exec"))) constinit thread_local ThreadCache t_cache{};

// At thread exit: the cached blocks go to the depot.
struct CacheFlusher {
  ~CacheFlusher() {
    ThreadCache& c = t_cache;
    for (std::size_t cls = 0; cls < k_classes; ++cls) {
      if (c.head[cls] != nullptr) depot().give(cls, Batch{c.head[cls], c.count[cls]});
      c.head[cls] = nullptr;
      c.count[cls] = 0;
    }
    c.retired = true;
  }
};

// Before the first block is kept in the cache: registers the flusher (the
// first touch of a thread_local with a destructor registers it).
__attribute__((noinline)) void register_flusher(ThreadCache& c) noexcept {
  static thread_local CacheFlusher flusher;
  (void)&flusher;
  c.flusher = true;
}

// Takes the first block of a non-empty list.
FreeBlock* take_head(ThreadCache& c, std::size_t cls) noexcept {
  FreeBlock* b = c.head[cls];
  mark_taken(b);
  c.head[cls] = b->next;
  --c.count[cls];
  return b;
}

// The slow halves of operator new and delete, out of line and cold: inlined,
// their calls and locals made every allocation and free save and restore
// six registers (issue 17: ~10 instructions each on the spawn path).

// operator new with an empty list: a batch from the depot, or a fresh block.
[[gnu::noinline, gnu::cold]] void* refill_and_take(ThreadCache& c, std::size_t cls) {
  if (c.retired) return fresh_block(cls);
  const Batch b = depot().take(cls);
  if (b.head == nullptr) return fresh_block(cls);
  if (!c.flusher) register_flusher(c);
  c.head[cls] = b.head;
  c.count[cls] = b.size;
  return take_head(c, cls);
}

// operator delete past 2 * k_batch blocks: keeps k_batch here, hands the
// older k_batch (the tail) to the depot.
[[gnu::noinline, gnu::cold]] void give_tail_to_depot(ThreadCache& c, std::size_t cls) noexcept {
  FreeBlock* last_kept = c.head[cls];
  for (std::uint32_t i = 1; i < k_batch; ++i) last_kept = last_kept->next;
  depot().give(cls, Batch{last_kept->next, k_batch});
  last_kept->next = nullptr;
  c.count[cls] = k_batch;
}

// operator delete's common case: the block joins this thread's list.
[[gnu::always_inline]] inline void keep_free(ThreadCache& c, void* p, std::size_t cls) noexcept {
  auto* b = static_cast<FreeBlock*>(p);
  mark_free(b);
  b->next = c.head[cls];
  c.head[cls] = b;
  if (++c.count[cls] < 2 * k_batch) return;
  give_tail_to_depot(c, cls);
}

// operator delete's first block on a thread: registers the flusher first.
// Out of line: the call made every free save registers.
[[gnu::noinline, gnu::cold]] void free_registering(ThreadCache& c, void* p, std::size_t cls) noexcept {
  register_flusher(c);
  keep_free(c, p, cls);
}

// operator delete on a thread whose cache has gone to the depot (it is
// exiting): straight back to ::operator delete.
[[gnu::noinline, gnu::cold]] void free_retired(void* p, std::size_t cls) noexcept {
  static_cast<FreeBlock*>(p)->mark = 0;
  ::operator delete(p, bytes_of(cls));
}

}  // namespace

bool task_depot_has_surplus() noexcept { return depot().has_surplus(); }

bool trim_task_depot(std::size_t max_batches) noexcept { return depot().trim(max_batches); }

void* TaskBase::operator new(std::size_t size) {
  // Sanitizer builds keep malloc, so ASan still sees a task used after free.
  if (WEFT_ASAN || WEFT_TSAN || size > k_max_small) return ::operator new(size);
  const std::size_t cls = class_of(size);
  ThreadCache& c = t_cache;
  if (c.head[cls] == nullptr) [[unlikely]] return refill_and_take(c, cls);
  return take_head(c, cls);
}

void TaskBase::operator delete(void* p, std::size_t size) noexcept {
  if (WEFT_ASAN || WEFT_TSAN || size > k_max_small) {
    ::operator delete(p, size);
    return;
  }
  const std::size_t cls = class_of(size);
  ThreadCache& c = t_cache;
  if (c.retired) [[unlikely]] {
    free_retired(p, cls);
    return;
  }
  if (!c.flusher) [[unlikely]] return free_registering(c, p, cls);  // a tail call: no frame here
  keep_free(c, p, cls);
}

void* TaskBase::operator new(std::size_t size, std::align_val_t align) {
  return ::operator new(size, align);
}

void TaskBase::operator delete(void* p, std::size_t size, std::align_val_t align) noexcept {
  ::operator delete(p, size, align);
}

}  // namespace weft::detail
