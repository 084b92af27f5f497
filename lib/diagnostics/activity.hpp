// Activity: the process-wide record of who could still make progress, which
// deadlock detection (deadlock.cpp) reads. Fibers are covered by their
// runtime's workers (a worker that is awake may run and wake anything); this
// file adds everything outside the workers:
//
//   active  plain threads inside a weft call that may wake someone, plus
//           plain threads holding a weft::Mutex, plus live ExternalWakers
//   epoch   bumped whenever anything becomes active: a plain thread enters a
//           call, a waker hands activity to a plain thread it wakes, or a
//           sleeping worker is woken (Scheduler::notify_work)
//
// Both live in one 64-bit word (active in the low half), so one RMW changes
// them together and one load reads them together.
//
// Hand-off rule: activity is never dropped before it is passed on. A plain
// thread that blocks in a weft wait leaves (active - 1) after queuing its
// waiter; whoever wakes it enters on its behalf (active + 1) before waking
// it, and the thread leaves again when its call returns. A woken worker is
// counted as awake (IdleWorkers) before its waker stops being active.
// Hence: if at one moment active == 0 and every runtime is idle, nothing can
// become active again except a plain thread entering from outside weft, and
// any such entry (or any wake of a worker) after that moment bumps the epoch.
// The detector reads the word, checks the runtimes, reads it again, and
// trusts the idle state only if the word did not change (see deadlock.cpp).
//
// Watchers are plain threads waiting in block_on(): their waiters are poked
// (Waiter::poke, no claim) whenever the process may have become idle:
// active reached 0, or a runtime's last awake worker fell asleep. A watcher
// removes itself before its waiter dies, and pokes happen under the
// watchers' lock, so a poke never reaches a dead waiter.
//
// Contract: every function is for any thread; none parks or blocks beyond a
// short internal lock.
#pragma once

#include <cstdint>

#include "weft/detail/config.hpp"
#include "scheduling/current.hpp"

namespace weft::detail {

class Scheduler;
class Waiter;

namespace activity {

inline constexpr std::uint64_t k_active_one = 1;
inline constexpr std::uint64_t k_epoch_one = std::uint64_t{1} << 32;
inline std::uint32_t active_of(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word); }

void enter() noexcept;       // active + 1, epoch + 1
void leave() noexcept;       // active - 1; signals watchers when it reaches 0
void bump_epoch() noexcept;  // epoch + 1
std::uint64_t snapshot() noexcept;

void add_watcher(Waiter* waiter);
void remove_watcher(Waiter* waiter) noexcept;
void signal_watchers() noexcept;  // cheap when nobody watches

void register_scheduler(Scheduler* s);
void unregister_scheduler(Scheduler* s) noexcept;
// True if every registered runtime has all workers asleep and nothing queued.
bool all_runtimes_idle();

// For the timer heap: kicks one sleeping worker of some running runtime so
// that it drives the timers (timer_heap.hpp).
enum class Kick { kicked, all_busy, no_runtime };
Kick kick_sleeping_worker() noexcept;

}  // namespace activity

// True when the calling thread is not a weft worker (a plain thread).
// Not inlined (see current.hpp). Exported: Mutex's inline code calls it
// (weft/mutex.hpp declares it too).
WEFT_API bool on_plain_thread() noexcept;

// RAII: counts the calling thread as active for the duration of a weft call
// when it is a plain thread; does nothing on a worker (its fibers are
// covered by the worker being awake).
class PlainCall {
 public:
  PlainCall() noexcept : PlainCall(current_worker() == nullptr) {}  // on_plain_thread(), one call fewer
  // As above, with the worker read inlined: only as the first thing of a
  // library entry point (current_worker_at_entry's rule, current.hpp).
  struct AtEntry {};
  explicit PlainCall(AtEntry) noexcept : PlainCall(current_worker_at_entry() == nullptr) {}
  ~PlainCall() {
    if (counted_) activity::leave();
  }
  PlainCall(const PlainCall&) = delete;
  PlainCall& operator=(const PlainCall&) = delete;

 private:
  explicit PlainCall(bool on_plain_thread) noexcept : counted_(on_plain_thread) {
    if (counted_) activity::enter();
  }
  const bool counted_;
};

}  // namespace weft::detail
