// TimerHeap: the process's one min-heap of deadlines. Every timed wait of a
// fiber, every weft::timeout channel and every Ticker arms a Timer here.
//
// Structure: a binary heap of Timer pointers ordered by (deadline, seq), in
// a vector under one SpinLock. Each Timer records its slot, so cancel is
// O(log n) (swap with the last, sift); seq breaks ties so that timers with
// the same deadline fire in the order they were armed.
//
// Who fires timers (lesson 2: no tick, no polling thread):
//   - any awake worker, between two fibers, when the earliest deadline has
//     passed (one relaxed load when nothing is armed; a clock read when
//     something is);
//   - the driver: at most one sleeping thread that sleeps until the earliest
//     deadline instead of indefinitely. It is a worker that went to sleep
//     while timers were armed and nobody drove them (Worker::sleep), or, in a
//     process with no running runtime, a fallback thread started on first
//     need. Arming a timer that becomes the new earliest kicks the driver
//     (a futex word bit) so it re-arms its sleep; with no driver it kicks a
//     sleeping worker, which then takes the role.
// A driver that leaves the role (woken for work, or exiting) while timers
// are armed kicks someone else, so a long-running fiber on the old driver
// never holds timers back while another worker sleeps.
//
// Timer states: idle -> armed (in the heap) -> firing (taken out by a
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
  Nanos deadline = k_never;  // guarded by the heap's lock
  std::uint64_t seq = 0;     // guarded by the heap's lock
  std::size_t slot = 0;      // guarded by the heap's lock; valid while armed
  // Written under the heap's lock, except the release store that ends
  // `firing` for a one-shot timer; read with acquire by cancel().
  std::atomic<std::uint32_t> state{k_idle};
};

class TimerHeap {
 public:
  // Bit the heap ORs into a driver's futex word to make it re-read the
  // earliest deadline (workers use bit 0 for "work").
  static constexpr std::uint32_t k_kick_bit = 2;

  // Arms an idle timer. Throws std::bad_alloc (heap growth), leaving it idle.
  void arm(Timer* t, Nanos deadline);

  // Disarms: true if the timer was armed and is now idle without having
  // fired; false if it was idle or fired (waits for a running callback to
  // finish, and disarms a periodic timer it re-armed).
  bool cancel(Timer* t) noexcept;

  // Fires every timer whose deadline is <= now_ns(). `wait` false: return at
  // once if another thread is firing. Returns how many callbacks it ran
  // (the tracer's timer events).
  std::size_t fire_due(bool wait) noexcept;

  // The earliest armed deadline, or k_never. acquire: a reader that sees a
  // deadline sees the timer armed.
  Nanos earliest() const noexcept { return earliest_.load(std::memory_order_acquire); }
  std::size_t armed() const noexcept { return armed_.load(std::memory_order_seq_cst); }

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
  void place(const Entry& e, std::size_t i) noexcept {
    heap_[i] = e;
    e.timer->slot = i;
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void remove_at(std::size_t i) noexcept;
  void insert_locked(Timer* t, Nanos deadline);
  void publish_earliest() noexcept;

  mutable SpinLock lock_;
  std::vector<Entry> heap_;  // guarded by lock_
  std::uint64_t next_seq_ = 0;
  SpinLock firing_;           // one firer at a time (keeps firing order)
  // Written under lock_ (release); read lock-free by workers deciding
  // whether to fire (acquire).
  std::atomic<Nanos> earliest_{k_never};
  // Timers in the heap (armed, not yet taken out to fire). seq_cst: the
  // Dekker pair of arm()/kick() with release_driver() (see the .cpp). Not
  // counting firing timers keeps it in step with earliest_: while a batch's
  // callbacks run, nothing is armed for a driver to claim (counting them once
  // made a sleeping worker claim the role, find no deadline, release it and
  // kick itself again, round and round, until the batch was done).
  std::atomic<std::size_t> armed_{0};
  std::atomic<std::atomic<std::uint32_t>*> driver_{nullptr};  // seq_cst, as armed_
  SpinLock driver_lock_;  // serialises claim / release / kicking the driver
};

// The process's heap.
TimerHeap& timers() noexcept;

// For threads that drive timers: makes the kernel wake the calling thread's
// timed sleeps on time (timer slack of 1 ns instead of the default 50 us).
void set_precise_timer_slack() noexcept;

}  // namespace weft::detail
