#include "scheduling/idle_workers.hpp"

#include <algorithm>

#include "diagnostics/sanitizers.hpp"

namespace weft::detail {

IdleWorkers::IdleWorkers(std::size_t num_workers)
    : num_workers_(num_workers), state_(k_awake_one * num_workers) {
  sleepers_.reserve(num_workers);
}

// The producer's half of the Dekker pair: [push] -> barrier -> read state_.
// The normal build uses a seq_cst fence and a plain load: the fence costs
// only the local core (no cache-line traffic on state_, which every worker
// reads after every push). ThreadSanitizer does not model standalone
// fences, so that build uses a seq_cst read-modify-write instead, which
// orders the same way through state_'s release sequence (the sleeper's side
// is an RMW too).
std::uint64_t IdleWorkers::state_after_push() noexcept {
#if WEFT_TSAN
  return state_.fetch_add(0, std::memory_order_seq_cst);
#elif defined(__x86_64__)
  // A locked no-op on our own stack is a full barrier on x86 (every locked
  // instruction is), and costs about half of MFENCE, which also waits for
  // non-temporal stores we do not have. The Linux kernel's smp_mb() does
  // the same.
  asm volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
  return state_.load(std::memory_order_relaxed);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return state_.load(std::memory_order_relaxed);
#endif
}

std::optional<std::size_t> IdleWorkers::worker_to_notify() { return notify_given(state_after_push()); }

std::optional<std::size_t> IdleWorkers::worker_to_notify_after_rmw() {
  // seq_cst load after the producer's seq_cst RMW (sequenced before it),
  // against the sleeper's seq_cst RMW of state_, seq_cst fence, then its
  // relaxed re-read of the queues: in the single total order S, either the
  // producer's RMW precedes the sleeper's fence (then the sleeper's re-read
  // sees the push: [atomics.order] p3.3's fence rule), or the fence
  // precedes it, and then the sleeper's RMW (before its fence) precedes
  // this load, which must see that RMW or a later change (p3.1). On x86 the
  // load is a plain mov and the RMW a locked instruction already paid for.
#if WEFT_TSAN
  // That sleeper has no fence (see state_after_push): the RMW path.
  return worker_to_notify();
#else
  return notify_given(state_.load(std::memory_order_seq_cst));
#endif
}

std::optional<std::size_t> IdleWorkers::notify_given(std::uint64_t s) {
  if (searching_of(s) != 0 || awake_of(s) >= num_workers_) return std::nullopt;
  std::lock_guard<std::mutex> guard(sleepers_lock_);
  // Re-read under the lock (relaxed: the lock orders us with begin_sleep,
  // which changes `awake` while holding it). A searcher may have started.
  s = state_.load(std::memory_order_relaxed);
  if (searching_of(s) != 0 || sleepers_.empty()) return std::nullopt;
  std::size_t index = sleepers_.back();
  sleepers_.pop_back();
  // seq_cst: the woken worker searches; producers that read this see a
  // searcher and need not wake another (I2 holds through it).
  state_.fetch_add(k_awake_one + k_searching_one, std::memory_order_seq_cst);
  return index;
}

bool IdleWorkers::try_begin_search() noexcept {
  // relaxed pre-check: only a throttle; the CAS below decides.
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (2 * searching_of(s) >= num_workers_ && num_workers_ > 1) return false;
    // seq_cst: producers that read the new count skip waking anyone, so
    // this searcher's scan must be ordered after their pushes (I2).
    if (state_.compare_exchange_weak(s, s + k_searching_one, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

bool IdleWorkers::end_search() noexcept {
  // seq_cst: pairs with worker_to_notify()'s read, as in begin_sleep().
  std::uint64_t prev = state_.fetch_sub(k_searching_one, std::memory_order_seq_cst);
  return searching_of(prev) == 1;
}

bool IdleWorkers::begin_sleep(std::size_t index, bool searching) {
  std::uint64_t prev;
  {
    std::lock_guard<std::mutex> guard(sleepers_lock_);
    // seq_cst RMW: the sleeper's half of the Dekker pair (see the header).
    prev = state_.fetch_sub(k_awake_one + (searching ? k_searching_one : 0), std::memory_order_seq_cst);
    sleepers_.push_back(index);
  }
#if !WEFT_TSAN
  // Pairs with the fence in state_after_push(): [decrement] -> barrier ->
  // the caller re-reads the queues.
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  return searching && searching_of(prev) == 1;
}

std::optional<std::size_t> IdleWorkers::peek_sleeper() {
  std::lock_guard<std::mutex> guard(sleepers_lock_);
  if (sleepers_.empty()) return std::nullopt;
  return sleepers_.back();
}

bool IdleWorkers::wake_self(std::size_t index) {
  std::lock_guard<std::mutex> guard(sleepers_lock_);
  auto it = std::find(sleepers_.begin(), sleepers_.end(), index);
  if (it == sleepers_.end()) return false;
  sleepers_.erase(it);
  // seq_cst: as every change of the awake count (quiescence and deadlock
  // checks read it seq_cst). Not searching: I2 is unaffected, since this
  // worker did not promise anyone to look at their queue.
  state_.fetch_add(k_awake_one, std::memory_order_seq_cst);
  return true;
}

std::vector<std::size_t> IdleWorkers::take_all_sleepers() {
  std::lock_guard<std::mutex> guard(sleepers_lock_);
  std::vector<std::size_t> all;
  all.swap(sleepers_);
  // seq_cst: as in worker_to_notify(); they wake as searchers.
  state_.fetch_add((k_awake_one + k_searching_one) * all.size(), std::memory_order_seq_cst);
  return all;
}

std::size_t IdleWorkers::num_awake() const noexcept {
  // seq_cst: used by the quiescence check, which pairs it with other
  // seq_cst accesses (Scheduler::quiescent()).
  return awake_of(state_.load(std::memory_order_seq_cst));
}

std::size_t IdleWorkers::num_searching() const noexcept {
  // relaxed: statistics and assertions only.
  return searching_of(state_.load(std::memory_order_relaxed));
}

}  // namespace weft::detail
