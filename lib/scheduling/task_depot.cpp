// The task depot: spans, where they come from, and the process-wide store
// of free blocks (task_depot.hpp).
//
//   - a span is 64 KiB, aligned to its size, of one size class; its header
//     (its first granules) says its class and holds a bitmap of its blocks
//     that are in the depot (bit g: the block that starts at granule g);
//   - per class, the depot keeps two lists of spans that have blocks in it:
//     partial (some of their blocks out: in use, cached by a thread, or not
//     yet carved) and full (all of them back). A take empties partial spans
//     first, lowest bits first, and then hands a full span whole, to be
//     carved like a new one; a give sets bits, moving a span to the full
//     list when its last block comes back;
//   - while the process is busy, the depot keeps full spans up to
//     k_max_depot_bytes per class (gives back the rest as they fill): the
//     next burst of spawns carves them instead of new memory. An idle
//     worker gives back the full spans beyond k_keep_blocks blocks per
//     class a few at a time (trim_task_depot), as it returns surplus
//     stacks, once they have sat full for k_task_span_rest_ns (a span
//     notes when it filled; the full list is in that order, the oldest at
//     its back); so the memory a burst needed stays a second after the
//     runtime comes to rest, no longer, and a burst after a shorter gap
//     finds it. A span with one block still in use (a long-lived task)
//     stays;
//   - spans come from 4 MiB regions mapped once and never unmapped; a span
//     given back returns its pages to the kernel (MADV_DONTNEED) but its
//     header's, which keeps its link on the list of spans to reuse.
//
// Why a bitmap: the threads' caches are last-in first-out, so the order in
// which a burst's tasks end (a worker's FIFO turn every 31st pick, thieves)
// became the order in which the next burst's tasks were allocated when the
// depot kept batches as chains; that order drifted further from the
// address order at every burst, and a burst of 100,000 tasks on one worker
// went from 31 to 125 ns per task over 27 bursts (docs/benchmarks.md,
// "task blocks that scatter over many bursts"). A bitmap forgets the order
// of the frees.
//
// One mutex guards the lists and every span's header; the relaxed atomics
// are hints read without it.
#include "scheduling/task_depot.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <mutex>
#include <new>

#include <sys/mman.h>

namespace weft::detail {

std::atomic<int> testing::failing_task_regions{0};

namespace {

constexpr std::size_t k_granule = k_task_granule;
constexpr std::size_t k_classes = k_task_classes;
constexpr std::size_t k_span_bytes = 64 * 1024;
constexpr std::size_t k_span_granules = k_span_bytes / k_granule;  // 1024
constexpr std::size_t k_bitmap_words = k_span_granules / 64;       // 16
constexpr std::size_t k_keep_blocks = 64 * 1024;                   // per class, kept at rest
constexpr std::size_t k_max_depot_bytes = 256u << 20;              // per class, kept while busy

// A span's header, in its first granules. Which list it is on, and its
// bitmap, change only under the depot's lock.
struct Span {
  Span* next;  // in its class's partial or full list (circular, a sentinel per list)
  Span* prev;
  std::uint32_t cls;
  std::uint32_t capacity;  // blocks
  std::uint32_t in_depot;  // blocks whose bit is set
  Nanos full_since;        // on the full list: when its last block came back (now_ns)
  // Bit g: the block that starts at granule g is in the depot.
  std::uint64_t bits[k_bitmap_words];
};
constexpr std::size_t k_header_granules = (sizeof(Span) + k_granule - 1) / k_granule;
static_assert(k_header_granules < k_span_granules / 2);

Span* span_of(const void* block) noexcept {
  return reinterpret_cast<Span*>(reinterpret_cast<std::uintptr_t>(block) & ~(k_span_bytes - 1));
}

std::size_t capacity_of(std::size_t cls) noexcept {
  return (k_span_granules - k_header_granules) * k_granule / task_block_bytes(cls);
}

// A list of spans: circular, doubly linked through a sentinel, so that a
// span leaves it in O(1) and the trim frees from the cold end.
struct SpanList {
  Span head{};
  std::size_t size = 0;

  SpanList() noexcept { head.next = head.prev = &head; }
  SpanList(const SpanList&) = delete;
  SpanList& operator=(const SpanList&) = delete;

  bool empty() const noexcept { return size == 0; }
  Span* front() noexcept { return head.next; }
  Span* back() noexcept { return head.prev; }
  void push_front(Span* s) noexcept {
    s->prev = &head;
    s->next = head.next;
    head.next->prev = s;
    head.next = s;
    ++size;
  }
  void remove(Span* s) noexcept {
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->next = s->prev = nullptr;
    --size;
  }
};

// Where spans come from: regions of k_region_bytes mapped once and never
// unmapped, carved into spans in address order. A span the trim frees gives
// its pages back (MADV_DONTNEED) but the first, which keeps its link on the
// list of spans to reuse; the next span taken is the last one freed. So a
// span costs no system call of its own while regions last (a mapping per
// span, through ::operator new's aligned form, was an mmap and later a
// munmap per 64 KiB, and scattered the spans over twice the address space).
class SpanSource {
 public:
  // Throws std::bad_alloc when no region can be mapped.
  Span* get() {
    std::lock_guard<std::mutex> guard(lock_);
    if (reusable_ != nullptr) {
      Span* s = reusable_;
      reusable_ = s->next;
      return s;
    }
    if (next_ == end_) map_region();
    auto* s = reinterpret_cast<Span*>(next_);
    next_ += k_span_bytes;
    return s;
  }

  void put(Span* s) noexcept {
    // Gives back all but the first page; a failure (it cannot fail on a
    // private anonymous mapping) only leaves the pages resident.
    (void)::madvise(reinterpret_cast<char*>(s) + k_page, k_span_bytes - k_page, MADV_DONTNEED);
    std::lock_guard<std::mutex> guard(lock_);
    s->next = reusable_;
    reusable_ = s;
  }

 private:
  static constexpr std::size_t k_region_bytes = 4u << 20;  // 64 spans
  static constexpr std::size_t k_page = 4096;

  // Under lock_: maps a region aligned to k_span_bytes (a larger mapping,
  // cut down to the aligned part).
  void map_region() {
    // relaxed: see testing::failing_task_regions.
    if (testing::failing_task_regions.load(std::memory_order_relaxed) > 0) [[unlikely]] {
      testing::failing_task_regions.fetch_sub(1, std::memory_order_relaxed);
      throw std::bad_alloc();
    }
    const std::size_t size = k_region_bytes + k_span_bytes;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    const auto raw = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t start = (raw + k_span_bytes - 1) & ~(k_span_bytes - 1);
    if (start > raw) (void)::munmap(p, start - raw);
    const std::uintptr_t tail = raw + size - (start + k_region_bytes);
    if (tail > 0) (void)::munmap(reinterpret_cast<void*>(start + k_region_bytes), tail);
    next_ = reinterpret_cast<char*>(start);
    end_ = next_ + k_region_bytes;
  }

  std::mutex lock_;
  Span* reusable_ = nullptr;  // freed spans, linked through Span::next
  char* next_ = nullptr;      // the current region's next span
  char* end_ = nullptr;
};

SpanSource& span_source() {
  static SpanSource* s = new SpanSource;  // never destroyed: threads may exit after static destructors ran
  return *s;
}

// A new span of `cls`, carved by the caller from its first block on: none
// of its blocks in the depot, on no list. Throws std::bad_alloc.
Span* new_span(std::size_t cls) {
  Span* s = span_source().get();
  s->next = s->prev = nullptr;
  s->cls = static_cast<std::uint32_t>(cls);
  s->capacity = static_cast<std::uint32_t>(capacity_of(cls));
  s->in_depot = 0;
  for (auto& w : s->bits) w = 0;
  return s;
}

void free_span(Span* s) noexcept { span_source().put(s); }

// The first block of a span, and the end of its last.
char* first_block(Span* s) noexcept { return reinterpret_cast<char*>(s) + k_header_granules * k_granule; }
char* blocks_end(Span* s) noexcept { return first_block(s) + s->capacity * task_block_bytes(s->cls); }

// Process-wide: per class, the spans with blocks in the depot. `partial_`
// holds those with some of their blocks out (in use, cached by a thread,
// or not yet carved), `full_` those with all of them back; only a full span
// can be given back, or handed to a thread whole.
class Depot {
 public:
  // Up to `want` blocks of a partial span of `cls` in address order (the
  // lowest set bits), then of the next partial span, until `want`; if no
  // span is partial, a full span, whole (`n` == 0): the caller carves it
  // from its first block like a new one, which touches no block before its
  // task does. Neither if the depot has none of `cls`. Partial spans go
  // first: they cannot be given back until their blocks are, and a full one
  // carves faster.
  TaskRefill take(std::size_t cls, void** out, std::size_t want) noexcept {
    // A thread that only spawns (a burst: every task allocated before any
    // ends) finds the depot empty on every refill; it need not pay the
    // mutex then. relaxed: a hint; blocks given meanwhile are only missed
    // this once.
    if (blocks_[cls].load(std::memory_order_relaxed) == 0) return {};
    std::lock_guard<std::mutex> guard(lock_);
    TaskRefill r;
    r.n = take_partial(cls, out, want);
    if (r.n == 0 && !full_[cls].empty()) {
      Span* s = full_[cls].front();  // the last to fill: the warmest
      full_[cls].remove(s);
      full_sizes_[cls].store(full_[cls].size, std::memory_order_relaxed);  // relaxed: see has_surplus()
      add_blocks(cls, 0 - std::size_t{s->in_depot});
      s->in_depot = 0;
      for (auto& w : s->bits) w = 0;
      r.carve = first_block(s);
      r.carve_end = blocks_end(s);
    }
    return r;
  }

  // `n` blocks of `cls` (a full batch, a departing thread's rest, or one
  // block). Sets their bits a run at a time: a batch's blocks ended one
  // after another, so it is mostly runs of neighbours (descending on a
  // worker that pops its newest task first), broken by the odd block that
  // a FIFO turn or a thief ended; a run's bits are a stride pattern, set a
  // word at a time (issue 17: a bit per block cost ~20 instructions a task
  // in a burst of a million). Frees the spans that fill beyond the busy
  // bound.
  void give(std::size_t cls, void* const* blocks, std::size_t n) noexcept {
    const auto* addr = reinterpret_cast<const std::uintptr_t*>(blocks);
    const std::uintptr_t stride = task_block_bytes(cls);
    Span* to_free = nullptr;  // full spans beyond the busy bound, freed after unlocking
    {
      std::lock_guard<std::mutex> guard(lock_);
      std::size_t added = 0, removed = 0;
      Nanos now = 0;  // read once a span fills, at most once a give
      for (std::size_t i = 0; i < n;) {
        // The run from i: neighbours a stride apart, all one way. It cannot
        // cross into another span: the next span's header lies between.
        std::size_t end = i + 1;
        std::uintptr_t lo = addr[i], hi = addr[i];
        if (end < n) {
          const std::uintptr_t step = addr[end] - addr[i];
          if (step == stride || step == 0 - stride) {
            // Four blocks a test while the run lasts (one compare and
            // branch for four), then one at a time to its end.
            std::uintptr_t next = addr[end] + step;
            ++end;
            while (end + 4 <= n && ((addr[end] ^ next) | (addr[end + 1] ^ (next + step)) |
                                    (addr[end + 2] ^ (next + 2 * step)) | (addr[end + 3] ^ (next + 3 * step))) == 0) {
              end += 4;
              next += 4 * step;
            }
            for (; end < n && addr[end] == next; ++end) next += step;
            const std::uintptr_t last = addr[end - 1];
            lo = step == stride ? addr[i] : last;
            hi = step == stride ? last : addr[i];
          }
        }
        const auto count = static_cast<std::uint32_t>(end - i);
        i = end;
        Span* s = span_of(reinterpret_cast<void*>(lo));
        assert(s->cls == cls && "weft: a task block freed with the wrong size");
        const auto base = reinterpret_cast<std::uintptr_t>(s);
        set_bits(s, (lo - base) / k_granule, (hi - base) / k_granule, cls);
        added += count;
        const std::uint32_t before = s->in_depot;
        s->in_depot = before + count;
        if (before == 0) partial_[cls].push_front(s);
        if (s->in_depot == s->capacity) {
          partial_[cls].remove(s);
          if (full_[cls].size * k_span_bytes < k_max_depot_bytes) {
            // Read under the lock, so the full list stays in time order.
            if (now == 0) now = now_ns();
            s->full_since = now;
            full_[cls].push_front(s);
          } else {
            removed += s->capacity;  // leaves the depot
            s->next = to_free;
            to_free = s;
          }
        }
      }
      add_blocks(cls, added - removed);
      full_sizes_[cls].store(full_[cls].size, std::memory_order_relaxed);  // relaxed: a hint, see has_surplus()
    }
    while (to_free != nullptr) {
      Span* next = to_free->next;
      free_span(to_free);
      to_free = next;
    }
  }

  // When trim(_, true) will find a span to free: the oldest surplus span's
  // fill time plus the rest, the earliest over the classes.
  Nanos rested_at() noexcept {
    Nanos at = k_never;
    std::lock_guard<std::mutex> guard(lock_);
    for (std::size_t cls = 0; cls < k_classes; ++cls) {
      if (full_[cls].size > keep_spans(cls)) at = std::min(at, full_[cls].back()->full_since + k_task_span_rest_ns);
    }
    return at;
  }

  // Whether some class holds more full spans than it keeps at rest. Lock-free.
  bool has_surplus() const noexcept {
    for (std::size_t cls = 0; cls < k_classes; ++cls) {
      // relaxed: a hint; a stale size only delays or repeats a trim pass.
      if (full_sizes_[cls].load(std::memory_order_relaxed) > keep_spans(cls)) return true;
    }
    return false;
  }

  // Frees up to `max_spans` surplus full spans, the coldest first (with
  // `rested`, only those full since k_task_span_rest_ns ago); true if it
  // freed any.
  bool trim(std::size_t max_spans, bool rested) noexcept {
    bool freed = false;
    const Nanos filled_by = rested ? now_ns() - k_task_span_rest_ns : k_never;
    for (std::size_t cls = 0; cls < k_classes && max_spans > 0; ++cls) {
      while (max_spans > 0) {
        Span* s;
        {
          std::lock_guard<std::mutex> guard(lock_);
          if (full_[cls].size <= keep_spans(cls)) break;
          s = full_[cls].back();
          if (s->full_since > filled_by) break;  // the oldest has not rested yet: nor have the others
          full_[cls].remove(s);
          add_blocks(cls, 0 - std::size_t{s->capacity});
          full_sizes_[cls].store(full_[cls].size, std::memory_order_relaxed);  // relaxed: see has_surplus()
        }
        free_span(s);  // outside the lock
        freed = true;
        --max_spans;
      }
    }
    return freed;
  }

 private:
  static std::size_t keep_spans(std::size_t cls) noexcept {
    return (k_keep_blocks + capacity_of(cls) - 1) / capacity_of(cls);
  }

  // Under lock_.
  void add_blocks(std::size_t cls, std::size_t delta) noexcept {
    // relaxed: the count is exact under lock_; take() reads it only as a hint.
    blocks_[cls].store(blocks_[cls].load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }

  // Under lock_: sets the bits of the blocks of `s` that start at granules
  // `first`, first + k, ... `last` (k: the class's block in granules), a
  // word of the bitmap at a time.
  static void set_bits(Span* s, std::size_t first, std::size_t last, std::size_t cls) noexcept {
    const std::size_t k = cls + 1;
    std::size_t g = first;
    for (;;) {
      const std::size_t w = g / 64;
      std::uint64_t mask = k_stride_pattern[cls] << (g % 64);
      const bool final_word = last / 64 == w;
      if (final_word) mask &= ~std::uint64_t{0} >> (63 - last % 64);
      assert((s->bits[w] & mask) == 0 && "weft: a task block given to the depot twice");
      s->bits[w] |= mask;
      if (final_word) return;
      // The word's last block, then the first that starts in the next word.
      g = w * 64 + static_cast<std::size_t>(63 - std::countl_zero(mask)) + k;
    }
  }

  // Per class: a bit every (cls + 1) granules from bit 0, the bits of a run
  // of neighbouring blocks.
  static constexpr auto k_stride_pattern = [] {
    std::array<std::uint64_t, k_classes> p{};
    for (std::size_t cls = 0; cls < k_classes; ++cls) {
      for (std::size_t b = 0; b < 64; b += cls + 1) p[cls] |= std::uint64_t{1} << b;
    }
    return p;
  }();

  // Under lock_: the lowest set bits of the first partial span, then of the
  // next, until `want`.
  std::size_t take_partial(std::size_t cls, void** out, std::size_t want) noexcept {
    std::size_t n = 0;
    while (n < want && !partial_[cls].empty()) {
      Span* s = partial_[cls].front();
      const auto base = reinterpret_cast<std::uintptr_t>(s);
      const std::size_t before = n;
      for (std::size_t w = 0; w < k_bitmap_words && n < want; ++w) {
        std::uint64_t word = s->bits[w];
        while (word != 0 && n < want) {
          const std::size_t g = w * 64 + static_cast<std::size_t>(std::countr_zero(word));
          word &= word - 1;
          out[n++] = reinterpret_cast<void*>(base + g * k_granule);
        }
        s->bits[w] = word;
      }
      s->in_depot -= static_cast<std::uint32_t>(n - before);
      if (s->in_depot == 0) partial_[cls].remove(s);
    }
    add_blocks(cls, 0 - n);
    return n;
  }

  std::mutex lock_;
  SpanList partial_[k_classes];
  SpanList full_[k_classes];
  // Blocks in the depot per class, stored under lock_: take()'s lock-free "empty".
  std::atomic<std::size_t> blocks_[k_classes] = {};
  // full_[cls].size, stored under lock_: has_surplus()'s lock-free read.
  std::atomic<std::size_t> full_sizes_[k_classes] = {};
};

Depot& depot() {
  static Depot* d = new Depot;  // never destroyed: threads may exit after static destructors ran
  return *d;
}

}  // namespace

TaskRefill take_task_blocks(std::size_t cls, void** out, std::size_t want) {
  TaskRefill r = depot().take(cls, out, want);
  if (r.n == 0 && r.carve == nullptr) {
    Span* s = new_span(cls);
    r.carve = first_block(s);
    r.carve_end = blocks_end(s);
  }
  return r;
}

void give_task_blocks(std::size_t cls, void* const* blocks, std::size_t n) noexcept {
  depot().give(cls, blocks, n);
}

bool task_depot_has_surplus() noexcept { return depot().has_surplus(); }

bool trim_task_depot(std::size_t max_spans, bool rested) noexcept { return depot().trim(max_spans, rested); }

Nanos task_depot_rested_at() noexcept { return depot().rested_at(); }

}  // namespace weft::detail
