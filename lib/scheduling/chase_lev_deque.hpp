// ChaseLevDeque<T>: a growable single-owner work-stealing deque of T*.
//
// After "Correct and Efficient Work-Stealing for Weak Memory Models",
// N. M. Lê, A. Pop, A. Cohen, F. Zappa Nardelli, PPoPP 2013 (the C11 version
// of Chase and Lev, SPAA 2005).
//
// Who may call what:
//   push(), pop(),
//   pop_if_bottom()         the owner thread only (never concurrently with
//                           each other: one owner, one thread at a time)
//   steal(), size_approx()  any thread, concurrently with everything
// Nothing here blocks or parks; every call finishes in a bounded number of
// steps except push(), which allocates when the ring is full.
//
// Invariants (t = top_, b = bottom_):
//   I1  t <= b + 1 at all times, and t <= b whenever no pop() is in flight.
//   I2  the items are ring[t .. b-1]; the owner takes from the bottom (LIFO),
//       thieves take from the top (FIFO).
//   I3  top_ only increases, and only by a successful CAS; so each index is
//       handed out at most once, to whoever wins the CAS for it.
//   I4  a ring is never freed while the deque lives: a thief that loaded an
//       old ring still reads the (unchanged) items t .. b-1 it held.
//
// Where we depart from the paper: the paper orders pop() and steal() with
// standalone seq_cst fences between relaxed accesses. ThreadSanitizer does not
// model standalone fences, so we make the accesses themselves seq_cst
// (bottom_'s store in pop(), and both loads in pop()/steal()). On x86 this
// costs the same (an XCHG in place of MOV+MFENCE); the argument for each
// operation is given beside it.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace weft::detail {

inline constexpr std::size_t k_cache_line = 64;

template <class T>
class ChaseLevDeque {
 public:
  enum class StealStatus { success, empty, lost_race };
  struct StealResult {
    T* item;
    StealStatus status;
  };

  // `stealable` false: nobody but the owner thread will ever call steal()
  // (a runtime with one worker), so pop() needs no barrier and no CAS.
  static constexpr std::size_t k_default_capacity = 256;
  explicit ChaseLevDeque(std::size_t initial_capacity = k_default_capacity, bool stealable = true)
      : stealable_(stealable) {
    std::size_t cap = 2;
    while (cap < initial_capacity) cap *= 2;
    auto ring = std::make_unique<Ring>(static_cast<std::int64_t>(cap));
    ring_.store(ring.get(), std::memory_order_relaxed);  // relaxed: not yet shared
    rings_.push_back(std::move(ring));
  }
  ChaseLevDeque(const ChaseLevDeque&) = delete;
  ChaseLevDeque& operator=(const ChaseLevDeque&) = delete;

  // Owner only. Pushes at the bottom; grows the ring when full.
  void push(T* item) {
    if (!push_if_room(item)) [[unlikely]] push_reloading(item);
  }

  // Owner only. push(), when the ring has room by the last value of top_
  // this owner read: no load of top_ and no growth, so no call either (a
  // caller whose only other calls are tail calls saves no registers: the
  // spawn path). false, and nothing pushed, when it may not have room; then
  // push_reloading() does the rest.
  bool push_if_room(T* item) {
    // relaxed: only the owner writes bottom_.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // relaxed: only the owner writes ring_.
    Ring* r = ring_.load(std::memory_order_relaxed);
    // top_cache_ is a value of top_ this owner loaded before; top_ only
    // grows (I3), so b - top_cache_ counts at least the items present and
    // the ring can only look full too early. Only then is top_ loaded again
    // (push_reloading): the thieves' CAS writes its line on every steal, and
    // a load on every push pulled that line over and sent it back.
    if (b - top_cache_ > r->capacity - 1) return false;
    publish(r, b, item);
    return true;
  }

  // Owner only. push()'s rest, for when push_if_room() said no: reads top_
  // again and grows the ring if it is full. Correct whatever the ring holds
  // (it re-reads every word it uses). Out of line and cold, like grow().
  [[gnu::noinline, gnu::cold]] void push_reloading(T* item) {
    // relaxed: owner-only words, as in push_if_room.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    Ring* r = ring_.load(std::memory_order_relaxed);
    // acquire: pairs with the thieves' successful CASes on top_ (a chain
    // of RMWs, so the one we read carries the earlier ones), so their
    // reads of the slots we may be about to reuse happened before our
    // overwrite; a cached value was loaded the same way, earlier.
    top_cache_ = top_.load(std::memory_order_acquire);
    if (b - top_cache_ > r->capacity - 1) r = grow(r, top_cache_, b);
    publish(r, b, item);
  }

  // Owner only. Takes the most recently pushed item; nullptr when empty.
  T* pop() {
    // relaxed: only the owner writes bottom_ and ring_.
    return take_bottom(bottom_.load(std::memory_order_relaxed) - 1, ring_.load(std::memory_order_relaxed));
  }

  // Owner only. pop(), but only if the most recently pushed item is
  // `expected`: true if this call took it. Otherwise nothing changes and no
  // barrier is paid: an inline join's look at the bottom before its pop,
  // fused with the pop so that the owner-only words are read once.
  bool pop_if_bottom(const T* expected) {
    // relaxed: only the owner writes bottom_ and ring_.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    Ring* r = ring_.load(std::memory_order_relaxed);
    // relaxed: a stale top_ only makes the deque look non-empty;
    // take_bottom() decides.
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    if (t >= b || r->get(b - 1) != expected) return false;
    if (!stealable_) {
      // No thief (see pop()): top_ cannot have moved since that load.
      // relaxed: as pop()'s no-thief path.
      top_cache_ = t;
      bottom_.store(b - 1, std::memory_order_relaxed);
      return true;
    }
    // Only the owner writes slots, so slot b - 1 holds `expected` whoever
    // wins it: take_bottom() returns it or nullptr (a thief took it).
    return take_bottom(b - 1, r) != nullptr;
  }

  // Any thread. Takes the oldest item. lost_race means another thief or the
  // owner took it first; the caller may retry.
  StealResult steal() {
    // seq_cst loads in this order (the paper: acquire load of top_, seq_cst
    // fence, acquire load of bottom_): see pop() for the pairing argument.
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return {nullptr, StealStatus::empty};
    // acquire: pairs with grow()'s release store, so the copied slots of a
    // new ring are visible. An old ring is still valid (I4).
    Ring* r = ring_.load(std::memory_order_acquire);
    T* item = r->get(t);
    // seq_cst: claims index t against the owner's pop() and other thieves (I3).
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return {nullptr, StealStatus::lost_race};
    }
    return {item, StealStatus::success};
  }

  // Any thread. A snapshot that may be stale by the time it returns.
  std::size_t size_approx() const {
    // relaxed: an estimate; callers that need certainty use pop()/steal().
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? static_cast<std::size_t>(b - t) : 0;
  }

  // Owner only, or any thread once the owner has stopped.
  std::size_t capacity() const {
    return static_cast<std::size_t>(ring_.load(std::memory_order_relaxed)->capacity);
  }

 private:
  struct Ring {
    explicit Ring(std::int64_t cap)
        : capacity(cap), mask(cap - 1), slots(new std::atomic<T*>[static_cast<std::size_t>(cap)]) {}
    // Slots are atomics only so that a thief's read racing with the owner's
    // reuse of a slot is defined; relaxed suffices because bottom_/top_
    // carry the ordering (see push/steal).
    T* get(std::int64_t i) const { return slots[i & mask].load(std::memory_order_relaxed); }
    void put(std::int64_t i, T* x) { slots[i & mask].store(x, std::memory_order_relaxed); }

    const std::int64_t capacity;
    const std::int64_t mask;
    std::unique_ptr<std::atomic<T*>[]> slots;
  };

  // pop() with bottom_ - 1 and ring_ already read (owner-only words).
  T* take_bottom(std::int64_t b, Ring* r) {
    if (!stealable_) {
      // No thief: top_ moves only by this thread's own steal(), never during
      // a pop, so nothing can race for index b. relaxed everywhere: the
      // other threads that read top_ and bottom_ (size_approx) only count.
      // Taking the last item leaves t == b, empty, like the CAS path below.
      const std::int64_t t = top_.load(std::memory_order_relaxed);
      top_cache_ = t;
      if (t > b) return nullptr;
      bottom_.store(b, std::memory_order_relaxed);
      return r->get(b);
    }
    // seq_cst store then seq_cst load (the paper: relaxed store, seq_cst
    // fence, relaxed load). Both sit in the single total order S with the
    // thieves' seq_cst loads: a thief whose load of bottom_ follows this store
    // in S sees b, so it cannot take index b without the CAS below; one whose
    // load precedes it must then win a CAS on top_ that our load of top_
    // observes.
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    top_cache_ = t;  // a fresher value for push(), free here
    if (t > b) {  // was empty: restore bottom_ (relaxed: owner-only word)
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T* item = r->get(b);
    if (t == b) {
      // The last item: thieves may be after it too; a CAS on top_ decides.
      // seq_cst on success: orders the claim against the thieves' CAS (I3).
      // relaxed on failure: we only learn that a thief took it.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        item = nullptr;
      }
      // relaxed: owner-only word; top_ is now b + 1 either way (I1).
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  void publish(Ring* r, std::int64_t b, T* item) {
    r->put(b, item);
    // release: publishes slot b (and everything the caller wrote to *item)
    // to steal()'s seq_cst load of bottom_.
    bottom_.store(b + 1, std::memory_order_release);
  }

  // Owner only: doubles the ring, copying items t .. b-1 to the same indices.
  // Out of line and cold: inlined, its registers made every push() save and
  // restore six of them (issue 17: ~12 instructions per spawn).
  [[gnu::noinline, gnu::cold]] Ring* grow(Ring* old, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<Ring>(old->capacity * 2);
    for (std::int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
    Ring* r = bigger.get();
    rings_.push_back(std::move(bigger));  // the old ring is retired, not freed (I4)
    // release: publishes the copied slots to steal()'s acquire load of ring_.
    ring_.store(r, std::memory_order_release);
    return r;
  }

  alignas(k_cache_line) std::atomic<std::int64_t> top_{0};
  alignas(k_cache_line) std::atomic<std::int64_t> bottom_{0};
  std::int64_t top_cache_ = 0;  // owner only: a value top_ had (push, pop)
  const bool stealable_;        // set once: may threads other than the owner steal?
  alignas(k_cache_line) std::atomic<Ring*> ring_{nullptr};
  std::vector<std::unique_ptr<Ring>> rings_;  // owner only: every ring ever used
};

}  // namespace weft::detail
