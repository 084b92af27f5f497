#include "scheduling/idle_workers.hpp"

#include <algorithm>

namespace weft::detail {

std::atomic<bool> testing::lose_races_with_sleepers{false};
std::atomic<bool> testing::sleeper_unconfirmed{false};

IdleWorkers::IdleWorkers(std::size_t num_workers)
    : num_workers_(num_workers),
      // One worker has nobody to notify (a lone worker never calls the
      // producer side): no need to register the process.
      asymmetric_(num_workers > 1 && heavy_barrier_available()),
      state_(k_awake_one * num_workers) {
  sleepers_.reserve(num_workers);
}

std::optional<std::size_t> IdleWorkers::notify_locked() {
  std::lock_guard<std::mutex> guard(sleepers_lock_);
  // Re-read under the lock (relaxed: the lock orders us with begin_sleep,
  // which changes `awake` while holding it). A searcher may have started.
  const std::uint64_t s = state_.load(std::memory_order_relaxed);
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
  // seq_cst: pairs with the producer's read of the counters, as in begin_sleep().
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
  // seq_cst: as in notify_locked(); they wake as searchers.
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
