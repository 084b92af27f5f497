// select over channel cases (weft/select.hpp, detail/channel_core.hpp).
//
// The protocol is Go's selectgo, on weft's single-claim Waiter:
//  1. Lock every channel of the select, in address order (no lock-order
//     deadlock between selects; a channel named twice is locked once).
//  2. Poll the cases in a random permutation (or in order, for priority):
//     the first one that can complete now does, exactly as a try_send /
//     try_recv would; unlock; wake its counterpart; done.
//  3. Nothing ready: with a default case, unlock and return -1. With a
//     deadline, or a timeout channel among the cases (whose close timer is
//     armed only now, channel_core.hpp), a fiber unlocks, arms its timers,
//     locks again and polls again (the timer heap is never touched under a
//     channel lock: channel_core.hpp's lock discipline); a plain thread
//     waits until its deadline or the earliest close, and if the close
//     came first, starts over (a timeout channel past its close reads as
//     closed: its case commits). Then it queues one node per
//     case, all pointing at one Waiter, unlocks all, and parks.
//     While we hold every lock nobody can complete us, so queuing needs no
//     claim of our own waiter; afterwards the first party to claim the
//     waiter (a counterpart on one of the channels, or close) completes
//     exactly that case, and every other party finds the waiter claimed and
//     drops our node (claim_first).
//  4. Woken: take every node still queued off its channel, one lock at a
//     time, and report the node that fired. Nothing else was taken or
//     delivered, and nothing of ours is left on any wait list.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "diagnostics/activity.hpp"
#include "channels/channel_core.hpp"
#include "sync/waiter.hpp"
#include "weft/errors.hpp"

namespace weft::detail {

namespace {

constexpr std::size_t k_small = 8;  // cases handled without heap allocation

// The calling thread's generator for the random poll order; xorshift64*, seeded
// from the thread's address space so threads differ. Not inlined: a fiber may
// migrate between calls, and must not keep another thread's state.
__attribute__((noinline)) std::uint64_t next_random() noexcept {
  static thread_local std::uint64_t state = 0;
  asm volatile("" ::: "memory");
  if (state == 0) state = reinterpret_cast<std::uintptr_t>(&state) * 0x9E3779B97F4A7C15ull | 1;
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

// A buffer of n T's: inline when small, on the heap otherwise.
template <class T>
class SmallArray {
 public:
  explicit SmallArray(std::size_t n) : heap_(n > k_small ? std::make_unique<T[]>(n) : nullptr) {}
  T* data() noexcept { return heap_ ? heap_.get() : small_; }
  T& operator[](std::size_t i) noexcept { return data()[i]; }

 private:
  T small_[k_small]{};
  std::unique_ptr<T[]> heap_;
};

// Holds the locks of a sorted, de-duplicated set of channels.
class AllLocks {
 public:
  AllLocks(ChannelCore** channels, std::size_t n) : channels_(channels), n_(n) { acquire(); }
  ~AllLocks() { release(); }
  void acquire() noexcept {
    for (std::size_t i = 0; i < n_; ++i) channels_[i]->lock.lock();
    held_ = true;
  }
  void release() noexcept {
    if (!held_) return;
    for (std::size_t i = n_; i > 0; --i) channels_[i - 1]->lock.unlock();
    held_ = false;
  }

 private:
  ChannelCore** channels_;
  const std::size_t n_;
  bool held_ = false;
};

struct ParkedSelect {
  const ChanNode* nodes;
  std::size_t n;
};

void describe_select(const void* ctx, std::string& out) {
  const auto* s = static_cast<const ParkedSelect*>(ctx);
  if (s->n == 0) {
    out += "select with no channel cases";
    return;
  }
  out += "select on ";
  for (std::size_t i = 0; i < s->n; ++i) {
    if (i != 0) out += ", ";
    out += s->nodes[i].is_send ? "send on " : "recv on ";
    s->nodes[i].channel->describe(out);
  }
}

}  // namespace

int select_cases(SelectCase* cases, std::size_t n, bool has_default, bool priority, Nanos deadline) {
  // The first thing here: the inlined read (current.hpp). The retry below
  // calls this again only on a plain thread, which never changes thread.
  PlainCall plain{PlainCall::AtEntry{}};

  SmallArray<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  if (!priority) {
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[next_random() % i]);
  }
  SmallArray<ChannelCore*> channels(n);
  for (std::size_t i = 0; i < n; ++i) channels[i] = cases[i].channel;
  std::sort(channels.data(), channels.data() + n);
  const std::size_t distinct = static_cast<std::size_t>(std::unique(channels.data(), channels.data() + n) - channels.data());

  SmallArray<ChanNode> nodes(n);  // before any lock: may allocate (more than k_small cases)
  AllLocks locks(channels.data(), distinct);
  // Polls the cases in `order`. The first that completes: release the
  // locks, wake its counterpart, return its index. None: -1, locks held.
  auto poll = [&]() -> int {
    for (std::size_t k = 0; k < n; ++k) {
      SelectCase& c = cases[order[k]];
      Waiter* wake = nullptr;
      const ChannelOpResult r =
          c.is_send ? c.channel->try_send_locked(c.slot, &wake) : c.channel->try_recv_locked(c.slot, &wake);
      if (r == ChannelOpResult::would_block) continue;
      c.ok = r == ChannelOpResult::done;
      locks.release();
      if (wake != nullptr) wake->unpark();
      return static_cast<int>(order[k]);
    }
    return -1;
  };
  if (const int done = poll(); done >= 0) return done;
  if (has_default) return k_select_default;
  if (deadline != k_never && deadline <= now_ns()) return k_select_timed_out;

  // The earliest close of a timeout channel among the cases (k_never: none).
  Nanos close_at = k_never;
  for (std::size_t i = 0; i < distinct; ++i) close_at = std::min(close_at, channels[i]->close_at);
  Waiter waiter(ParkReason::select);
  if ((deadline != k_never || close_at != k_never) && waiter.fiber() != nullptr) {
    locks.release();
    waiter.set_deadline(deadline);  // may throw: nothing held, nothing queued
    for (std::size_t i = 0; i < distinct; ++i) {  // timeout channels' timers, lazily armed (channel_core.hpp)
      if (channels[i]->close_at != k_never) channels[i]->arm_close_timer();  // may throw: as above
    }
    locks.acquire();
    if (const int done = poll(); done >= 0) return done;  // ~Waiter cancels the timer
    if (waiter.outcome() != Waiter::Outcome::pending) {
      locks.release();  // before ~Waiter, which may wait for the timer's wake-up
      return k_select_timed_out;
    }
  } else {
    // A plain thread times itself, no timer, no allocation: until its
    // deadline or the earliest close_at (a fiber gets here with neither).
    waiter.set_deadline(std::min(deadline, close_at));
  }
  // Queued in the poll order: random for a plain select, so that a later
  // counterpart on a channel named in several cases meets them in random
  // order too (Go queues its sudogs in the shuffled order as well); in
  // argument order for a priority select.
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint32_t i = order[k];
    ChanNode& node = nodes[i];
    node.waiter = &waiter;
    node.channel = cases[i].channel;
    node.slot = cases[i].slot;
    node.is_send = cases[i].is_send;
    node.channel->enqueue_locked(&node);
  }
  const ParkedSelect parked{nodes.data(), n};
  waiter.set_description(&describe_select, &parked);
  locks.release();

  const Waiter::Outcome outcome = waiter.park();
  int fired = -1;
  for (std::size_t i = 0; i < n; ++i) {
    ChanNode& node = nodes[i];
    std::lock_guard<SpinLock> guard(node.channel->lock);
    node.channel->dequeue_locked(&node);  // no-op if a completer or close took it off
    if (node.fired) fired = static_cast<int>(i);
  }
  if (outcome == Waiter::Outcome::cancelled) throw_cancelled();
  if (outcome == Waiter::Outcome::timed_out) {
    // A plain thread that woke at a close_at before its own deadline starts
    // over (once: that attempt reads the timeout channel as closed, and its
    // case commits).
    if (waiter.fiber() == nullptr && close_at <= deadline) {
      return select_cases(cases, n, has_default, priority, deadline);
    }
    return k_select_timed_out;
  }
  cases[fired].ok = nodes[fired].ok;
  return fired;
}

}  // namespace weft::detail
