// TimerHeap: the process's timers. Every timed wait of a fiber, every
// weft::timeout channel and every Ticker arms a Timer here.
//
// Structure: shards, one per worker (modulo k_shards - 1) and shard 0 for
// plain threads. A timer goes into the shard of the thread that arms it.
// Each shard is a binary heap of Timer pointers ordered by (deadline, seq),
// in a vector under the shard's SpinLock. Each Timer records its shard and
// slot, so cancel is O(log n) (swap with the last, sift); seq breaks ties so
// that timers of one shard with the same deadline fire in the order they
// were armed. Shards keep a worker's arming and firing off the other
// workers' cache lines and locks (one heap made arming wait ~9 % of the
// timers workload's time for another worker's firing, docs/benchmarks.md).
//
// earliest_ is the earliest deadline over all shards, or lower (never
// later): arming lowers it, and whoever removes a shard's earliest timer
// raises it again to the minimum of the shards' own `earliest` (see the
// .cpp for why no arm is lost in between).
//
// Who fires timers (lesson 2: no tick, no polling thread):
//   - a worker, between two fibers, fires the due timers of its own shard
//     and of shard 0 (plain threads': nobody else's), and any other
//     shard's once they are k_foreign_late_ns overdue (their own worker is
//     running a long fiber);
//   - the driver: at most one sleeping thread that sleeps until the earliest
//     deadline instead of indefinitely, and fires every shard's due timers.
//     It is a worker that went to sleep while timers were armed and nobody
//     drove them (Worker::sleep), or, in a process with no running runtime,
//     a fallback thread started on first need. Arming a timer that becomes
//     the new earliest kicks the driver (a futex word bit) so it re-arms its
//     sleep; with no driver it kicks a sleeping worker, which then takes the
//     role. A plain thread's arm also kicks whenever nobody drives (earliest_
//     may hold a deadline left behind that nobody watches: see the .cpp).
// A driver that leaves the role (woken for work, or exiting) while timers
// are armed kicks someone else, so a long-running fiber on the old driver
// never holds timers back while another worker sleeps.
//
// Timer states: idle -> armed (in a shard) -> firing (taken out by a
// firer, callback running) -> idle, or back to armed for a periodic timer.
// The store that ends `firing` is the firer's last access to the Timer, and
// cancel() waits for it, so an owner may free its Timer once cancel() has
// returned.
//
// Deadlock detection: every armed timer counts as activity (activity.hpp):
// it will wake someone. arm enters, and a timer leaves when cancelled or
// after its callback ran, so a sleeping fiber means "not deadlocked".
//
// Contract: every function is for any thread and never parks; cancel() may
// spin (yielding the thread) while a callback runs elsewhere. Callbacks run
// outside the lock, must not block, and must not arm or cancel their own
// timer (they return the next deadline instead).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "weft/detail/deadline.hpp"
#include "weft/detail/spin_lock.hpp"

namespace weft::detail {

struct Timer {
  // Runs on the firing thread, outside every lock, once the deadline has
  // passed. Returns the next deadline for a periodic timer, else k_never.
  using FireFn = Nanos (*)(Timer* self, Nanos now) noexcept;

  explicit Timer(FireFn f) noexcept : fire(f) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  static constexpr std::uint32_t k_idle = 0;
  static constexpr std::uint32_t k_armed = 1;
  static constexpr std::uint32_t k_firing = 2;

  const FireFn fire;
  Nanos deadline = k_never;  // guarded by its shard's lock
  std::uint64_t seq = 0;     // guarded by its shard's lock
  std::size_t slot = 0;      // guarded by its shard's lock; valid while armed
  // The shard it is armed in. Written under that shard's lock while idle
  // (arm); read by cancel() before it takes the lock, then checked under it.
  // relaxed: cancel re-reads it under the lock it names (see cancel()).
  std::atomic<std::uint32_t> shard{0};
  // Written under its shard's lock, except the release store that ends
  // `firing` for a one-shot timer; read with acquire by cancel().
  std::atomic<std::uint32_t> state{k_idle};
};

class TimerHeap {
 public:
  // Bit the heap ORs into a driver's futex word to make it re-read the
  // earliest deadline (workers use bit 0 for "work").
  static constexpr std::uint32_t k_kick_bit = 2;
  // Shard 0 for plain threads, 1 .. k_shards - 1 for workers.
  static constexpr std::uint32_t k_shards = 64;
  // How overdue another worker's timer must be before a busy worker fires
  // it between two of its own fibers (its own worker fires it sooner unless
  // it runs one long fiber; a sleeping driver fires it on time).
  static constexpr Nanos k_foreign_late_ns = 10'000;

  // The calling thread's shard from now on (workers: Worker::run). Plain
  // threads use shard 0.
  static void set_thread_shard(std::uint32_t index) noexcept;
  // A worker's shard: index % (k_shards - 1) + 1.
  static std::uint32_t shard_of_worker(std::size_t worker_index) noexcept {
    return static_cast<std::uint32_t>(worker_index % (k_shards - 1)) + 1;
  }

  // Arms an idle timer in the calling thread's shard. Throws
  // std::bad_alloc (heap growth), leaving it idle.
  void arm(Timer* t, Nanos deadline);

  // Disarms: true if the timer was armed and is now idle without having
  // fired; false if it was idle or fired (waits for a running callback to
  // finish, and disarms a periodic timer it re-armed).
  bool cancel(Timer* t) noexcept;

  // Fires every timer whose deadline is <= now_ns(), in every shard.
  // `wait` false: skip a shard that another thread is firing. Returns how
  // many callbacks it ran (the tracer's timer events).
  std::size_t fire_due(bool wait) noexcept;

  // For a worker between two fibers: fires the calling thread's shard's due
  // timers, and other shards' that are k_foreign_late_ns overdue; skips a
  // shard another thread is firing. Returns how many callbacks it ran.
  std::size_t fire_own_due() noexcept;

  // Whether fire_own_due() would find work at `now` (two loads).
  bool own_due(Nanos now) const noexcept;

  // The earliest armed deadline or earlier (see above), or k_never when
  // nothing is armed. acquire: a reader that sees a deadline sees the timer
  // armed.
  Nanos earliest() const noexcept { return earliest_.load(std::memory_order_acquire); }
  // Timers in the shards (armed, not yet taken out to fire).
  std::size_t armed() const noexcept;

  // Driver role (see above). `word` is the caller's futex word; kicks OR
  // k_kick_bit into it and wake it. try_claim_driver fails when nothing is
  // armed or someone else drives.
  bool try_claim_driver(std::atomic<std::uint32_t>* word) noexcept;
  void release_driver(std::atomic<std::uint32_t>* word) noexcept;
  bool is_driver(std::atomic<std::uint32_t>* word) const noexcept {
    return driver_.load(std::memory_order_seq_cst) == word;
  }

  // Makes sure someone will fire the earliest timer: kicks the driver, or a
  // sleeping worker, or the fallback thread when no runtime runs.
  void kick() noexcept;

 private:
  // A heap slot keeps its timer's key, so that sifting compares within the
  // vector instead of following a pointer to each timer (timers live on
  // fiber stacks all over memory: one cache miss per comparison otherwise).
  struct Entry {
    Nanos deadline;
    std::uint64_t seq;
    Timer* timer;
  };
  static bool less(const Entry& a, const Entry& b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }

  struct alignas(64) Shard {
    mutable SpinLock lock;
    std::vector<Entry> heap;  // guarded by lock
    std::uint64_t next_seq = 0;  // guarded by lock
    // heap[0]'s deadline, or k_never. Stored under lock; seq_cst: the
    // armer's half of the Dekker pair with raise_earliest() (see the .cpp).
    std::atomic<Nanos> earliest{k_never};
    // Timers in this shard (armed, not yet taken out to fire), changed
    // under lock. seq_cst: the armer's half of the Dekker pair of
    // arm()/kick() with release_driver() (see the .cpp). A count per shard
    // keeps the arming worker's increment on its own cache line. Not
    // counting firing timers keeps it in step with `earliest`: while a
    // batch's callbacks run, nothing is armed for a driver to claim
    // (counting them once made a sleeping worker claim the role, find no
    // deadline, release it and kick itself again, round and round, until
    // the batch was done).
    std::atomic<std::size_t> armed{0};
    SpinLock firing;  // one firer of this shard at a time (keeps its firing order)

    void place(const Entry& e, std::size_t i) noexcept {
      heap[i] = e;
      e.timer->slot = i;
    }
    void sift_up(std::size_t i) noexcept;
    void sift_down(std::size_t i) noexcept;
    void remove_at(std::size_t i) noexcept;
    void insert_locked(Timer* t, Nanos deadline);
    void publish_earliest() noexcept;
  };

  // Fires shard s's due timers (the loop of fire_due). Returns how many ran.
  std::size_t fire_shard(std::uint32_t s, bool wait) noexcept;
  // earliest_ = min(earliest_, d). True if it lowered it.
  bool lower_earliest(Nanos d) noexcept;
  // earliest_ = the minimum of the shards' earliest, after a removal.
  void raise_earliest() noexcept;
  Nanos min_of_shards() const noexcept;

  Shard shards_[k_shards];
  // Shards 0 .. shards_used_ - 1 may hold timers (a max, only grows).
  // seq_cst: an armer raises it before its shard's store of `earliest`, so
  // a raiser's second read of the shards, which must see that store, also
  // scans that shard (see the .cpp).
  std::atomic<std::uint32_t> shards_used_{1};
  // See above. seq_cst: the Dekker pairs of the .cpp.
  std::atomic<Nanos> earliest_{k_never};
  std::atomic<std::atomic<std::uint32_t>*> driver_{nullptr};  // seq_cst, as Shard::armed
  SpinLock driver_lock_;  // serialises claim / release / kicking the driver
};

// The process's heap.
TimerHeap& timers() noexcept;

// For threads that drive timers: makes the kernel wake the calling thread's
// timed sleeps on time (timer slack of 1 ns instead of the default 50 us).
void set_precise_timer_slack() noexcept;

namespace testing {
// Test seam (tests/test_timer_heap.cpp): when set, called by a raise of
// earliest_ between its read of the shards and its CAS, to widen the window
// in which another shard's removal can fall between the two. nullptr in
// production. Atomic: the test sets it while other threads remove timers.
// relaxed: the hook synchronizes with the test by itself.
extern std::atomic<void (*)() noexcept> in_raise_earliest;
}  // namespace testing

}  // namespace weft::detail
