// ChannelCore: the shared state behind every Channel<T> handle, type-erased
// (weft/detail/channel_core.hpp has the typed side and the entry points).
//
// Structure (Go's hchan): a ring buffer of up to `capacity` values, a FIFO
// of parked receivers and one of parked senders, a closed flag, all under
// one SpinLock. A parked party is a ChanNode on its own stack that points at
// its Waiter and at its value: a sender's T, or a receiver's empty
// std::optional<T>. Whoever completes a parked party moves the value
// directly between the two (no extra copy through the buffer), after
// winning the claim on its Waiter.
//
// Invariants, under `lock`, for live nodes (nodes whose waiter is still
// unclaimed; a select may leave claimed "stale" nodes behind until it takes
// them off, and whoever meets one first just drops it):
//   R  receivers parked  => count == 0              (else they'd take a value)
//   S  senders parked    => count == capacity and policy == block
//   C  closed            => no receivers and no senders parked
// FIFO: receivers are served in arrival order, and so are senders, so the
// values of one sender arrive in the order it sent them.
//
// Lock discipline: `lock` is held for a few dozen instructions plus one move
// of T; never while parking, waking (unpark), arming a timer, or allocating
// more than the buffer's growth. A timed operation of a fiber that must wait
// therefore unlocks, arms its deadline, locks again and retries before it
// queues (channel_op, select_cases). Builds with assertions check the
// parking and arming rules (detail/spin_lock.hpp). A select holds the locks of all its channels at once,
// always in address order, so two selects cannot deadlock each other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "time/timer_heap.hpp"
#include "weft/detail/channel_core.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/detail/wait_list.hpp"

namespace weft::detail {

// A parked send or receive (or one case of a parked select).
struct ChanNode : WaitNode {
  ChannelCore* channel = nullptr;
  void* slot = nullptr;  // sender: the T to send; receiver: std::optional<T> to fill
  bool is_send = false;
  bool ok = false;       // written by the completer: value moved (true) or channel closed (false)
  bool fired = false;    // written by the completer: this node is the one that completed
};

class ChannelCore {
 public:
  ChannelCore(const ElemOps* ops, ChannelBuffer buffer, std::string name);
  ~ChannelCore();  // destroys the values still buffered
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  // With `lock` held. Complete a send/receive now if possible, never park.
  // On `done` with a parked counterpart, *to_wake is its claimed waiter,
  // which the caller must unpark() after releasing the lock. May throw
  // std::bad_alloc (buffer growth), leaving everything unchanged.
  ChannelOpResult try_send_locked(void* src, Waiter** to_wake);
  ChannelOpResult try_recv_locked(void* dst, Waiter** to_wake);
  // Their bodies, always inlined: a send's or receive's first attempt
  // (channel_core.cpp, the only file that calls them) pays no call and no
  // frame of its own. The two above are their out-of-line copies.
  [[gnu::always_inline]] inline ChannelOpResult send_now(void* src, Waiter** to_wake);
  [[gnu::always_inline]] inline ChannelOpResult recv_now(void* dst, Waiter** to_wake);

  // With `lock` held: closes; returns the claimed waiters' nodes, chained
  // through `next`, to be unparked after the lock is released.
  WaitNode* close_locked() noexcept;

  void enqueue_locked(ChanNode* node) noexcept { (node->is_send ? senders_ : receivers_).push_back(node); }
  void dequeue_locked(ChanNode* node) noexcept { (node->is_send ? senders_ : receivers_).remove(node); }

  // Whether this is a timeout channel whose close_at has passed: then
  // try_send_locked / try_recv_locked report `closed` where they would
  // block, as after its timer had fired (only on those paths, so an
  // operation that completes pays nothing for it), and so does
  // channel_is_closed. Any thread, no lock.
  bool past_close_at() const noexcept { return close_at != k_never && now_ns() >= close_at; }
  // Unlocked, from a fiber about to park on a channel with a close_at: arms
  // the close timer unless that was done before. Throws std::bad_alloc
  // (timer heap growth) with nothing armed.
  void arm_close_timer();

  // Appends `channel "name" (0x...)` to out.
  void describe(std::string& out) const;

  mutable SpinLock lock;
  std::atomic<std::uint32_t> refs{1};  // handles; acq_rel decrement frees (channel_release)

  // The rest is guarded by `lock`.
  const ElemOps* const ops;
  const std::size_t capacity;
  const BufferPolicy policy;
  const std::string name;
  bool closed = false;
  std::uint64_t dropped = 0;
  WaitList receivers_;
  WaitList senders_;
  std::size_t count = 0;  // values buffered

  // weft::timeout's deadline (channel_close_at), k_never for every other
  // channel. Written once, before the first handle leaves weft::timeout, so
  // it is read without the lock (whatever handed a handle to another thread
  // ordered the write before that thread's reads).
  Nanos close_at = k_never;

  // The timer that closes the channel at close_at. Armed lazily (Go 1.23's
  // timer channels): only when a fiber is about to park on the channel, by
  // arm_close_timer(). A plain thread that waits on it times itself, and
  // an operation that finds a channel past its close_at reports it closed
  // (past_close_at) although `closed` may not be set yet (its parked
  // parties, if any, are woken by the timer or time themselves), so a
  // timeout channel nobody parks a fiber on never touches the timer heap.
  // Cancelled by the destructor.
  struct CloseTimer : Timer {
    CloseTimer() noexcept : Timer(&fire_close) {}
    static Nanos fire_close(Timer* t, Nanos now) noexcept;
    ChannelCore* core = nullptr;
    // Set by the one arm_close_timer() call that arms the timer. acq_rel
    // exchange: the destructor's acquire load sees it after the last
    // handle's release (channel_release), and of two fibers racing to arm,
    // exactly one does.
    std::atomic<bool> armed{false};
  };
  CloseTimer close_timer;

 private:
  void* slot_at(std::size_t i) const noexcept { return buf_ + ((head_ + i) & (slots_ - 1)) * stride_; }
  void push_value(void* src);  // count < capacity; may grow (bad_alloc)
  void pop_value_into(void* dst) noexcept;  // count > 0; dst: std::optional<T>*
  void grow();

  const std::size_t stride_;
  unsigned char* buf_ = nullptr;
  std::size_t slots_ = 0;  // allocated slots, a power of two (or 0)
  std::size_t head_ = 0;
};

}  // namespace weft::detail
