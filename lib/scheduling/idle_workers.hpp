// IdleWorkers: which workers are awake, which of them are searching for work
// (stealing), and the stack of sleeping ones. Go's "spinning M" protocol, in
// the shape Tokio gives it.
//
// Counters, packed in one word so they change together:
//   awake      workers not asleep (N at start)
//   searching  awake workers currently looking for work to steal
//
// Invariants:
//   I1  searching <= awake <= N; N - awake == number of sleepers listed.
//   I2  (no lost wake-up) once a task is queued, either it is taken, or a
//       searching worker will look at its queue after the push, or a
//       sleeper is woken: work queued => searching >= 1 or a wake was sent.
//
// The producer side (may_need_notify_after_push, then notify_locked) runs
// after every push: if nobody is searching and someone sleeps, it wakes one
// sleeper and counts it as a searcher, so a burst of pushes wakes one
// worker, not all (no herd). A searcher that finds work and was the last
// searcher wakes the next one, which ramps the number of busy workers up
// one at a time.
//
// The sleeper side (begin_sleep) decrements the counters and lists itself;
// then it must re-check every queue, since a producer that read the counters
// before the decrement may have woken nobody: it saw a searcher (if this
// worker was the last one), or it saw every worker awake (this one included,
// busy or about to sleep). Checking only in the first case once lost a task
// pushed to a busy worker's own deque while the other worker fell asleep.
// The push/read-counters and decrement/read-queues pair is a
// store-buffering (Dekker) pattern; both sides put a full barrier between
// their write and their read (see the .cpp), so at least one of them sees
// the other: either the producer sees a sleeper and no searcher and wakes
// someone, or the sleeper's re-check sees the work. That proves I2.
//
// Own pushes: a worker's push onto its own deque (every spawn) is the one
// producer that runs millions of times a second, and its barrier was most of
// what a second worker cost fib (docs/benchmarks.md, "the spawner's barrier,
// paid by sleepers"). Where the heavy barrier is available
// (heavy_barrier.hpp), that push has none: a compiler barrier, then the
// plain read of the counters. The pair is then kept by the sleeper, in two
// steps: its re-check right after the decrement, as above, which sees every
// push whose store had left its core; and, if it is still asleep
// k_confirm_ns later and another worker was awake when it lay down (only an
// awake worker pushes onto its own deque), a confirmation: the heavy
// barrier, then the re-check again. After the heavy barrier every own push
// made before it is visible, and every one made after it reads the decrement
// as a push with a barrier would. So I2 holds for own pushes with
// "eventually" in it: a task such a push queued may wait up to k_confirm_ns
// for a worker that slept through it, never longer, and meanwhile its own
// worker is awake (it pushed) and runs it itself when it comes to it. Every
// other producer keeps its barrier.
//
// Contract: any thread may call the producer side; a worker calls the other
// transitions for itself only. None of them blocks beyond a short mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "diagnostics/sanitizers.hpp"
#include "scheduling/heavy_barrier.hpp"

namespace weft::detail {

namespace testing {
// Test seam (tests/test_sleep_confirm.cpp). When lose_races_with_sleepers is
// set, a worker that lies down with a confirmation due (Worker::sleep)
// raises sleeper_unconfirmed until it confirms or is woken, and while that
// is raised every own push wakes nobody: the worst that a race between such
// a push and the sleeper's re-check can do, stretched over the whole window
// in which the confirmation must make up for it. Atomics: the test reads
// and sets them while workers run. Both false in production.
extern std::atomic<bool> lose_races_with_sleepers;
extern std::atomic<bool> sleeper_unconfirmed;
}  // namespace testing

class IdleWorkers {
 public:
  explicit IdleWorkers(std::size_t num_workers);

  // Producer side, after work was made visible, in two steps, so that a
  // push that wakes nobody makes no call. First,
  // inline, the barrier and the read of the counters: false when a
  // searcher exists or every worker is awake (nobody to wake). Only when
  // that says true, notify_locked(): it takes the sleepers' lock, reads
  // the counters again under it and picks the worker to wake.
  bool may_need_notify_after_push() noexcept { return may_need_notify(state_after_push()); }
  // The first step for a producer whose push was a seq_cst
  // read-modify-write (Worker::push_woken's exchange): that RMW and a
  // seq_cst load of the counters are the producer's half of the Dekker
  // pair, so no barrier is added. In the single total order S of seq_cst
  // operations, either the producer's RMW precedes the sleeper's fence
  // (then the sleeper's re-read of the queues sees the push:
  // [atomics.order] p3.3's fence rule), or the fence precedes it, and then
  // the sleeper's RMW (before its fence) precedes this load, which must see
  // that RMW or a later change (p3.1). On x86 the load is a plain mov and
  // the RMW a locked instruction already paid for. Under ThreadSanitizer
  // the sleeper has no fence (see state_after_push): the barrier path.
  bool may_need_notify_after_rmw() noexcept {
#if WEFT_TSAN
    return may_need_notify_after_push();
#else
    return may_need_notify(state_.load(std::memory_order_seq_cst));
#endif
  }
  // The first step for a worker's push onto its own deque (a spawn), the
  // hottest producer: with the heavy barrier available (heavy_barrier.hpp),
  // no barrier here at all; a worker about to sleep pays for both sides
  // instead, but only later and only once per sleep that lasts
  // (confirm_sleep: "Own pushes" at the top). Otherwise as
  // may_need_notify_after_push().
  bool may_need_notify_after_own_push() noexcept {
    if (!asymmetric_) return may_need_notify_after_push();
    light_barrier();
    // relaxed: ordered against a sleeper's decrement by the heavy barrier
    // it issues before its confirming re-check, not by the C++ model.
    // The seam is read only when a notify would follow (rare): relaxed, a
    // test's switch that publishes nothing.
    return may_need_notify(state_.load(std::memory_order_relaxed)) &&
           !testing::sleeper_unconfirmed.load(std::memory_order_relaxed);
  }
  // Whether own pushes go without a barrier, so that a worker going to
  // sleep while another is awake must confirm its sleep (see the top).
  bool asymmetric() const noexcept { return asymmetric_; }
  // A sleeper's confirmation, k_confirm_ns into a sleep that began while
  // another worker was awake: the heavy barrier, after which every own
  // push made before it is visible to the caller's re-check of the queues,
  // and every own push after it sees this worker asleep (and wakes it).
  void confirm_sleep() noexcept { heavy_barrier(); }

  // The second step: the worker to wake (already removed from the sleepers
  // and counted as awake and searching), or nothing when a searcher exists
  // or nobody sleeps, read again under the sleepers' lock.
  std::optional<std::size_t> notify_locked();

  // A worker wants to steal. False when half the workers already search
  // (more searchers than that only burn CPU); the caller then sleeps.
  bool try_begin_search() noexcept;

  // A searcher found work. True if it was the last searcher: it should then
  // wake another worker to keep looking (there may be more work).
  bool end_search() noexcept;

  // The worker `index` is about to sleep. It must then re-check every
  // queue and, if anything is there, notify (see above). Returns whether it
  // was the last searcher.
  bool begin_sleep(std::size_t index, bool searching);

  // The most recent sleeper, left listed (the timer heap kicks it to drive
  // timers without waking it for work), or nothing.
  std::optional<std::size_t> peek_sleeper();

  // A sleeping worker gets up by itself (its timed sleep ended: timers are
  // due). True if it was still listed: it is now counted awake, not
  // searching. False if a waker already took it; that waker's token comes.
  bool wake_self(std::size_t index);

  // Removes every sleeper (for shutdown) and returns them.
  std::vector<std::size_t> take_all_sleepers();

  std::size_t num_awake() const noexcept;
  std::size_t num_searching() const noexcept;

 private:
  static constexpr std::uint64_t k_searching_one = 1;
  static constexpr std::uint64_t k_awake_one = std::uint64_t{1} << 32;
  static std::uint32_t searching_of(std::uint64_t s) { return static_cast<std::uint32_t>(s); }
  static std::uint32_t awake_of(std::uint64_t s) { return static_cast<std::uint32_t>(s >> 32); }
  // Counters `s` say nobody searches and someone sleeps.
  bool may_need_notify(std::uint64_t s) const noexcept {
    return searching_of(s) == 0 && awake_of(s) < num_workers_;
  }

  // The producer's half of the Dekker pair: [push] -> barrier -> read
  // state_. The normal build uses a barrier and a plain load: the barrier
  // costs only the local core (no cache-line traffic on state_, which every
  // worker reads after every push). ThreadSanitizer does not model
  // standalone fences, so that build uses a seq_cst read-modify-write
  // instead, which orders the same way through state_'s release sequence
  // (the sleeper's side is an RMW too).
  std::uint64_t state_after_push() noexcept {
#if WEFT_TSAN
    return state_.fetch_add(0, std::memory_order_seq_cst);
#elif defined(__x86_64__)
    // A locked no-op on our own stack is a full barrier on x86 (every
    // locked instruction is), and costs about half of MFENCE, which also
    // waits for non-temporal stores we do not have. The Linux kernel's
    // smp_mb() does the same. relaxed load: ordered by that barrier.
    asm volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
    return state_.load(std::memory_order_relaxed);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return state_.load(std::memory_order_relaxed);  // relaxed: ordered by the fence
#endif
  }

  const std::size_t num_workers_;
  const bool asymmetric_;  // own pushes without a barrier (may_need_notify_after_own_push)
  // Low 32 bits: searching; high 32 bits: awake. Transitions are seq_cst
  // RMWs; see each use for its pairing.
  std::atomic<std::uint64_t> state_;
  std::mutex sleepers_lock_;           // guards sleepers_ and the awake count's changes
  std::vector<std::size_t> sleepers_;  // LIFO: the most recent sleeper has the warmest cache
};

}  // namespace weft::detail
